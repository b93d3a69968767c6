// SPDX-License-Identifier: LGPL-2.1-or-later
/* An upgrade that changes the layout of the counting maps carries their counts over
 * (daemon/kern.c kern_carry_over, daemon/carry.c): against the real kernel, with maps of an
 * "earlier version" made here with their own BTF (fields reordered, narrower, one dropped, one
 * added; an array of another type without BTF; fewer statistics slots), pinned where egressd
 * finds its maps. Checks the warnings, the exact sums over all CPUs, that entries which do not fit
 * stay pinned and a later call resumes, that nothing is carried twice, and the cleanup.
 *
 * Runs in its own mount namespace with a private bpf filesystem: nothing outside this process
 * sees the pins, and they vanish with it. Built with AddressSanitizer (tests/kernel/carry.mk).
 * Needs root; prints SKIP and exits 77 without it. */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "diag.h"
#include "egress_abi.h"
#include "kern.h"
#include "tcheck.h"

#define NKEYS 300 /* more than map_keys()' first allocation (64): its growth is exercised */
#define PIN "/sys/fs/bpf/egressd-carry"



/* The earlier version's key and value. */
struct old_key {
	uint32_t policy_id;
	uint8_t verdict;
	uint8_t proto;
	uint8_t hook; /* dropped by this version: keys differing only here add up */
	uint8_t pad;
	uint32_t country; /* 16 bits now */
	uint32_t pad2;
	uint64_t cgroup_id;
};

struct old_val {
	uint64_t bytes;
	uint32_t connections; /* 64 bits now */
	uint32_t legacy; /* dropped */
};

static int ncpus;
static struct btf *btf;
static int t_u8, t_u32, t_u64, t_key, t_val;

static void btf_build(void)
{
	btf = btf__new_empty();
	t_u8 = btf__add_int(btf, "__u8", 1, 0);
	t_u32 = btf__add_int(btf, "__u32", 4, 0);
	t_u64 = btf__add_int(btf, "__u64", 8, 0);
	t_key = btf__add_struct(btf, "egress_counter_key", sizeof(struct old_key));
	btf__add_field(btf, "policy_id", t_u32, 0, 0);
	btf__add_field(btf, "verdict", t_u8, 32, 0);
	btf__add_field(btf, "proto", t_u8, 40, 0);
	btf__add_field(btf, "hook", t_u8, 48, 0);
	btf__add_field(btf, "pad", t_u8, 56, 0);
	btf__add_field(btf, "country", t_u32, 64, 0);
	btf__add_field(btf, "pad2", t_u32, 96, 0);
	btf__add_field(btf, "cgroup_id", t_u64, 128, 0);
	t_val = btf__add_struct(btf, "egress_counter_val", sizeof(struct old_val));
	btf__add_field(btf, "bytes", t_u64, 0, 0);
	btf__add_field(btf, "connections", t_u32, 64, 0);
	btf__add_field(btf, "legacy", t_u32, 96, 0);
}

static int map_with_btf(enum bpf_map_type type, const char *name, uint32_t ksize, uint32_t vsize,
			uint32_t max, int key_id, int val_id)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .btf_fd = (uint32_t)btf__fd(btf),
		    .btf_key_type_id = (uint32_t)key_id, .btf_value_type_id = (uint32_t)val_id);
	int fd = bpf_map_create(type, name, ksize, vsize, max, key_id ? &o : NULL);

	if (fd < 0) {
		perror(name);
		exit(1);
	}
	return fd;
}

/* Key i of the old map: keys 2k and 2k+1 differ only in the dropped field hook. */
static struct old_key old_key_of(int i)
{
	return (struct old_key){ .policy_id = 7, .verdict = (uint8_t)(i / 2 % 4), .proto = 6,
				 .hook = (uint8_t)(i % 2), .country = (uint32_t)(i / 2 % 600 + 1),
				 .cgroup_id = 1000 + (uint64_t)(i / 2) };
}

struct want {
	int n;
	uint64_t conns[NKEYS / 2], bytes[NKEYS / 2];
	int seen[NKEYS / 2];
};

static int read_cb(const struct egress_counter_key *key, const struct egress_counter_val *sum, void *userdata)
{
	struct want *w = userdata;
	uint64_t j = key->cgroup_id - 1000;

	if (key->cgroup_id < 1000 || j >= NKEYS / 2) {
		check(0, "unexpected counter key cgroup %llu", (unsigned long long)key->cgroup_id);
		return 0;
	}
	check(key->policy_id == 7 && key->proto == 6 && key->verdict == j % 4 && key->country == j % 600 + 1,
	      "key %llu converted wrongly: policy %u proto %u verdict %u country %u",
	      (unsigned long long)j, key->policy_id, key->proto, key->verdict, key->country);
	check(sum->connections == w->conns[j] && sum->bytes == w->bytes[j] && sum->packets == 0,
	      "key %llu: connections %llu bytes %llu packets %llu, want %llu %llu 0", (unsigned long long)j,
	      (unsigned long long)sum->connections, (unsigned long long)sum->bytes,
	      (unsigned long long)sum->packets, (unsigned long long)w->conns[j],
	      (unsigned long long)w->bytes[j]);
	w->seen[j]++;
	w->n++;
	return 0;
}

static int sum_cb(const struct egress_counter_key *key, const struct egress_counter_val *sum, void *userdata)
{
	(void)key;
	*(uint64_t *)userdata += sum->connections;
	return 0;
}

static int has(const struct diag *d, const char *a, const char *b)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->msgs[i], a) && (!b || strstr(d->msgs[i], b)))
			return 1;
	return 0;
}

static void dump(const char *what, const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "  %s: %s\n", what, d->msgs[i]);
}

static int pinned(const char *prefix)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ls %s | grep -q '^%s'", PIN, prefix);
	return system(cmd) == 0;
}

/* Path of the pin whose name starts with prefix (the first one), in buf; "" if none. */
static void pin_path_of(const char *prefix, char *buf, size_t size)
{
	char cmd[256];
	FILE *f;

	buf[0] = '\0';
	snprintf(cmd, sizeof(cmd), "ls %s/%s* 2>/dev/null", PIN, prefix);
	f = popen(cmd, "r");
	if (!f)
		return;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	pclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

/* The state a daemon killed right after program "carry" ran for old key i leaves: its counts in
 * the new "counters", its mark in "carry_marks", the entry still in the replaced map. */
static void fake_interrupted_carry(int i)
{
	char oldpin[256];
	struct old_key ok = old_key_of(i);
	struct egress_counter_key nk = { .cgroup_id = ok.cgroup_id, .policy_id = ok.policy_id,
					 .country = (uint16_t)ok.country, .proto = ok.proto,
					 .verdict = ok.verdict };
	struct egress_counter_val *v = calloc((size_t)ncpus, sizeof(*v));
	struct egress_carry_mark mark = { .src_key_size = sizeof(ok) };
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	uint8_t one = 1;
	int ofd, cfd, mfd;

	pin_path_of("counters-carry-", oldpin, sizeof(oldpin));
	ofd = bpf_obj_get(oldpin);
	cfd = bpf_obj_get(PIN "/counters");
	mfd = bpf_obj_get(PIN "/carry_marks");
	check(v && ofd >= 0 && cfd >= 0 && mfd >= 0 && bpf_obj_get_info_by_fd(ofd, &info, &len) == 0,
	      "opening the maps to fake an interrupted carry");
	for (int c = 0; v && c < ncpus; c++) {
		v[0].connections += (uint64_t)(i + c + 1);
		v[0].bytes += 1000ULL * (uint64_t)i + (uint64_t)c;
	}
	mark.src_map_id = info.id;
	memcpy(mark.src_key, &ok, sizeof(ok));
	check(v && bpf_map_update_elem(cfd, &nk, v, BPF_NOEXIST) == 0 &&
	      bpf_map_update_elem(mfd, &mark, &one, BPF_NOEXIST) == 0, "faking an interrupted carry: %s",
	      strerror(errno));
	free(v);
	close(ofd);
	close(cfd);
	close(mfd);
}

static int marks_left(void)
{
	int fd = bpf_obj_get(PIN "/carry_marks");
	struct egress_carry_mark m;
	int n = 0;

	if (fd < 0)
		return -1;
	n = bpf_map_get_next_key(fd, NULL, &m) == 0;
	close(fd);
	return n;
}

int main(void)
{
	struct old_val *vals;
	struct want *w;
	struct diag errors = {}, warnings = {}, notes = {};
	struct kern *k = NULL;
	uint64_t stats[EGRESS_STAT_COUNT] = {}, *svals;
	struct egress_counter_val over[EGRESS_VERDICT_COUNT], ov[4] = {};
	int fd, sfd, ofd, r;

	if (geteuid() != 0) {
		printf("SKIP: carry_check needs root (BPF, a private bpf filesystem)\n");
		return 77;
	}
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL) < 0) {
		printf("SKIP: cannot mount a private bpf filesystem: %s\n", strerror(errno));
		return 77;
	}
	ncpus = libbpf_num_possible_cpus();
	w = calloc(1, sizeof(*w));
	vals = calloc((size_t)ncpus, sizeof(*vals));
	svals = calloc((size_t)ncpus, sizeof(*svals));
	if (!w || !vals || !svals || mkdir(PIN, 0700) < 0)
		return 1;
	btf_build();
	if (btf__load_into_kernel(btf) < 0) {
		perror("loading the test BTF");
		return 1;
	}

	/* "counters" of the earlier version: per-CPU hash, 16-byte values, 1024 rows. */
	fd = map_with_btf(BPF_MAP_TYPE_PERCPU_HASH, "counters", sizeof(struct old_key), sizeof(struct old_val),
			  1024, t_key, t_val);
	for (int i = 0; i < NKEYS; i++) {
		struct old_key key = old_key_of(i);

		for (int c = 0; c < ncpus; c++) {
			vals[c].connections = (uint32_t)(i + c + 1);
			vals[c].bytes = 1000ULL * (uint64_t)i + (uint64_t)c;
			vals[c].legacy = 99;
			w->conns[i / 2] += vals[c].connections;
			w->bytes[i / 2] += vals[c].bytes;
		}
		check(bpf_map_update_elem(fd, &key, vals, BPF_NOEXIST) == 0, "filling the old map: %s", strerror(errno));
	}
	/* One row whose country id does not fit this version's 16 bits: not carried, stays pinned. */
	{
		struct old_key key = old_key_of(0);

		key.country = 70000;
		memset(vals, 0, (size_t)ncpus * sizeof(*vals));
		vals[0].connections = 5;
		check(bpf_map_update_elem(fd, &key, vals, BPF_NOEXIST) == 0, "filling the old map: %s", strerror(errno));
	}
	check(bpf_obj_pin(fd, PIN "/counters") == 0, "pin counters: %s", strerror(errno));
	close(fd);

	/* "stats": 4 slots instead of EGRESS_STAT_COUNT, __u32 values. */
	sfd = map_with_btf(BPF_MAP_TYPE_PERCPU_ARRAY, "stats", 4, 4, 4, t_u32, t_u32);
	{
		/* Per-CPU values of 4 bytes lie 8 bytes apart (round_up(value_size, 8)). */
		uint32_t idx = EGRESS_STAT_EVENTS_LOST, *v32 = calloc((size_t)ncpus, 8);

		for (int c = 0; v32 && c < ncpus; c++)
			v32[2 * c] = 5;
		check(v32 && bpf_map_update_elem(sfd, &idx, v32, BPF_ANY) == 0, "stats: %s", strerror(errno));
		free(v32);
	}
	check(bpf_obj_pin(sfd, PIN "/stats") == 0, "pin stats: %s", strerror(errno));
	close(sfd);

	/* "overflow": a plain (not per-CPU) array without BTF, same value size. */
	ofd = map_with_btf(BPF_MAP_TYPE_ARRAY, "overflow", 4, sizeof(struct egress_counter_val), 4, 0, 0);
	{
		uint32_t idx = EGRESS_VERDICT_DENY;

		ov[idx] = (struct egress_counter_val){ .connections = 3, .packets = 4, .bytes = 5 };
		check(bpf_map_update_elem(ofd, &idx, &ov[idx], BPF_ANY) == 0, "overflow: %s", strerror(errno));
	}
	check(bpf_obj_pin(ofd, PIN "/overflow") == 0, "pin overflow: %s", strerror(errno));
	close(ofd);

	/* A map an earlier version had under a name this version does not use (the geo table of an
	 * older image format): unpinned once the programs are switched. */
	fd = map_with_btf(BPF_MAP_TYPE_ARRAY, "geo_gen_v0", 4, 8, 1, 0, 0);
	check(bpf_obj_pin(fd, PIN "/geo_gen_v0") == 0, "pin geo_gen_v0: %s", strerror(errno));
	close(fd);

	/* This version starts on those pins. */
	r = kern_open_pinned(&k, NULL, PIN, &errors, &warnings);
	check(r == 0, "kern_open_pinned: %d", r);
	dump("open warning", &warnings);
	dump("open error", &errors);
	if (r < 0)
		return 1;
	check(has(&warnings, PIN "/counters: the pinned map's layout differs", "its counts are carried over"),
	      "no carry-over warning for counters");
	check(has(&warnings, "key_size 16 -> 16", NULL) == 0 && has(&warnings, "value_size 16 -> 24", NULL),
	      "the warning does not say what changed");
	check(has(&warnings, PIN "/stats: the pinned map's layout differs", NULL) &&
	      has(&warnings, PIN "/overflow: the pinned map's layout differs", NULL), "stats/overflow not replaced");
	check(kern_counters_continue(k) == 1, "kern_counters_continue: the counts of the earlier run continue");
	check(pinned("counters-carry-") && pinned("stats-carry-") && pinned("overflow-carry-"),
	      "the replaced maps are not kept pinned until carried");
	check(pinned("geo_gen_v0"), "an earlier version's map was unpinned before the switch");

	/* A daemon was killed after adding old key 2 but before removing it: the carry must skip it
	 * (its counts are in already) and still add old key 3, which merges into the same row. */
	fake_interrupted_carry(2);

	/* Carry: every fitting row, summed over CPUs; keys differing only in "hook" add up. */
	r = kern_carry_over(k, &notes, &errors);
	dump("carry note", &notes);
	dump("carry error", &errors);
	check(r == -ERANGE, "kern_carry_over: %d, want -ERANGE (one row does not fit)", r);
	check(has(&errors, "counters-carry-", "1 entries do not fit this version's layout; they stay pinned there (300 carried over)"),
	      "no error line for the row that does not fit");
	check(has(&notes, "key: field hook is gone", "added up") &&
	      has(&notes, "value: field packets is new", NULL) &&
	      has(&notes, "value: field legacy is gone", "not carried over"), "missing notes on dropped/new fields");
	check(has(&notes, "stats-carry-", "1 entries carried over") &&
	      has(&notes, "overflow-carry-", "1 entries carried over"), "stats/overflow not carried");
	check(kern_read_counters(k, read_cb, w) == 0, "kern_read_counters");
	check(w->n == NKEYS / 2, "%d counter rows after the carry, want %d", w->n, NKEYS / 2);
	r = kern_read_stats(k, stats);
	check(r == 0 && stats[EGRESS_STAT_EVENTS_LOST] == 5ULL * (uint64_t)ncpus,
	      "events_lost %llu, want %llu", (unsigned long long)stats[EGRESS_STAT_EVENTS_LOST],
	      5ULL * (uint64_t)ncpus);
	r = kern_read_overflow(k, over);
	check(r == 0 && over[EGRESS_VERDICT_DENY].connections == 3 &&
	      over[EGRESS_VERDICT_DENY].packets == 4 && over[EGRESS_VERDICT_DENY].bytes == 5,
	      "overflow deny %llu/%llu/%llu, want 3/4/5", (unsigned long long)over[EGRESS_VERDICT_DENY].connections,
	      (unsigned long long)over[EGRESS_VERDICT_DENY].packets, (unsigned long long)over[EGRESS_VERDICT_DENY].bytes);
	check(pinned("counters-carry-") && !pinned("stats-carry-") && !pinned("overflow-carry-"),
	      "after the carry: only the map with the row that does not fit stays pinned");
	check(!pinned("geo_gen_v0") && has(&notes, PIN "/geo_gen_v0: a map of an earlier version", NULL),
	      "an earlier version's map left pinned after the switch");
	check(access(PIN "/counters", F_OK) == 0 && access(PIN "/geo_gen", F_OK) == 0 &&
	      access(PIN "/policies", F_OK) == 0 && access(PIN "/cidr", F_OK) == 0,
	      "this version's maps are not all pinned");
	diag_free(&notes);
	diag_free(&errors);

	/* A second call carries nothing twice; with the bad row removed it finishes and unpins. */
	r = kern_carry_over(k, &notes, &errors);
	check(r == -ERANGE, "second kern_carry_over: %d, want -ERANGE again", r);
	diag_free(&notes);
	diag_free(&errors);
	{
		struct old_key key = old_key_of(0);
		char path[256];

		key.country = 70000;
		pin_path_of("counters-carry-", path, sizeof(path));
		fd = bpf_obj_get(path);
		check(fd >= 0 && bpf_map_delete_elem(fd, &key) == 0, "removing the bad row from %s", path);
		if (fd >= 0)
			close(fd);
	}
	r = kern_carry_over(k, &notes, &errors);
	check(r == 0 && errors.n == 0, "third kern_carry_over: %d, want 0 (nothing left)", r);
	check(!pinned("counters-carry-"), "the emptied map stays pinned");
	check(marks_left() == 0, "carry marks left behind after the carry finished");
	memset(w->seen, 0, sizeof(w->seen));
	w->n = 0;
	check(kern_read_counters(k, read_cb, w) == 0 && w->n == NKEYS / 2, "counters changed by the resumed carry");
	diag_free(&notes);
	diag_free(&errors);
	diag_free(&warnings);

	/* The next start finds this version's layout: everything reused, nothing to carry. */
	k = kern_close(k, 1);
	r = kern_open_pinned(&k, NULL, PIN, &errors, &warnings);
	check(r == 0 && warnings.n == 0 && kern_adopted(k) > 0, "restart on this version's pins: %d, %zu warnings",
	      r, warnings.n);
	dump("restart warning", &warnings);
	check(kern_carry_over(k, &notes, &errors) == 0, "nothing to carry on a plain restart");
	w->n = 0;
	check(kern_read_counters(k, read_cb, w) == 0 && w->n == NKEYS / 2, "counters lost over a plain restart");
	diag_free(&warnings);
	diag_free(&notes);
	diag_free(&errors);
	/* CounterEntries= smaller than the rows: the excess goes to the overflow slot, nothing lost. */
	{
		struct kern_sizes sz = { .counters = 100 };
		struct egress_counter_val o2[EGRESS_VERDICT_COUNT];
		uint64_t total = 0, got = 0;

		for (int j = 0; j < NKEYS / 2; j++)
			total += w->conns[j];
		total += 3; /* the overflow row carried above */
		k = kern_close(k, 1);
		r = kern_open_pinned(&k, &sz, PIN, &errors, &warnings);
		check(r == 0 && has(&warnings, "max_entries 65536 -> 100", NULL), "resize warning missing (%d)", r);
		r = kern_carry_over(k, &notes, &errors);
		dump("resize error", &errors);
		check(r == NKEYS / 2, "resize carry: %d entries, want %d", r, NKEYS / 2);
		check(kern_read_overflow(k, o2) == 0, "overflow");
		for (int v = 0; v < EGRESS_VERDICT_COUNT; v++)
			got += o2[v].connections;
		check(kern_read_counters(k, sum_cb, &got) == 0, "read");
		check(got == total, "after shrinking to 100 rows: %llu connections, want %llu",
		      (unsigned long long)got, (unsigned long long)total);
		/* The overflow statistic grew by the connections of the rows that went there (the
		 * deny row of 3 was carried into the overflow slot itself, not counted as overflow). */
		{
			uint64_t over_conns = 0;

			for (int v = 0; v < EGRESS_VERDICT_COUNT; v++)
				over_conns += o2[v].connections;
			r = kern_read_stats(k, stats);
			check(r == 0 && over_conns > 3 && stats[EGRESS_STAT_COUNTER_OVERFLOW] == over_conns - 3,
			      "counts_overflowed %llu, want the %llu connections of the 50 rows that did not fit",
			      (unsigned long long)stats[EGRESS_STAT_COUNTER_OVERFLOW],
			      (unsigned long long)(over_conns - 3));
		}
		diag_free(&warnings);
		diag_free(&notes);
		diag_free(&errors);
	}
	kern_close(k, 0);
	check(access(PIN, F_OK) != 0, "%s left behind", PIN);
	btf__free(btf);
	free(w);
	free(vals);
	free(svals);
	return tcheck_summary();
}
