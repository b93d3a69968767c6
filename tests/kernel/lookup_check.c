/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lookup_check - kernel cross-check of include/egress_lookup.h: builds the GeoIP table image of the
 * embedded world data, installs it as the real daemon does (an mmap-filled BPF_F_MMAPABLE |
 * BPF_F_INNER_MAP array in slot 0 of an ARRAY_OF_MAPS), runs tests/kernel/lookup_check.bpf.c over
 * random addresses and every span edge of both families with BPF_PROG_TEST_RUN, and compares each
 * country with table_lookup4/6. Then times batches with the kernel's BPF run-time statistics.
 *
 * Usage: lookup_check [BPF_OBJECT [GEO_DATA]]
 * Exit: 0 all equal, 1 mismatch or error, 77 "SKIP: reason" (not root, BPF unavailable).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "egress_abi.h"
#include "geo.h"
#include "table.h"

/* A second userspace instance of the search whose accessor counts word reads (each one is a
 * bpf_map_lookup_elem call in the kernel), to explain the timings. */
struct counting_ctx {
	const struct table_image *img;
	uint64_t reads;
};

static inline const __u64 *counting_word(struct counting_ctx *c, __u32 i)
{
	c->reads++;
	return i < c->img->nwords ? (const __u64 *)(const void *)&c->img->words[i] : NULL;
}

#define EGRESS_TABLE_WORD(ctx, i) counting_word((struct counting_ctx *)(ctx), (i))
#include "egress_lookup.h"

#ifndef LOOKUP_CHECK_BPF_OBJ
#define LOOKUP_CHECK_BPF_OBJ "build/tests/lookup_check.bpf"
#endif
#ifndef LOOKUP_CHECK_GEO
#define LOOKUP_CHECK_GEO "data/geo/country.csv.gz"
#endif

#define BATCH 65536 /* LOOKUP_CHECK_BATCH of the BPF program */
#define RANDOM_PER_FAMILY 200000
#define TIMING_RUNS 20

struct lookup_addr {
	uint64_t hi;
	uint64_t lo;
};

struct lookup_ctl {
	uint32_t family;
	uint32_t n;
	uint32_t done;
	uint32_t no_table;
};

struct checker {
	int prog_fd, ctl_fd;
	struct lookup_addr *in; /* mmap of map "addrs" */
	uint64_t *out; /* mmap of map "countries" */
	const struct table_image *img;
	uint64_t checked, mismatches;
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

__attribute__((format(printf, 2, 0))) static int libbpf_print(enum libbpf_print_level level,
							      const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Run the program over in[0..n) for family (4, 6, or 0 = loop only). */
static int run_batch(struct checker *c, uint32_t family, uint32_t n, uint32_t repeat)
{
	struct lookup_ctl ctl = { .family = family, .n = n };
	unsigned char pkt[64] = {};
	uint32_t zero = 0;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .repeat = repeat);
	int r;

	if (bpf_map_update_elem(c->ctl_fd, &zero, &ctl, 0) < 0)
		return -errno;
	r = bpf_prog_test_run_opts(c->prog_fd, &opts);
	if (r < 0)
		return r;
	if (bpf_map_lookup_elem(c->ctl_fd, &zero, &ctl) < 0)
		return -errno;
	if (ctl.no_table || ctl.done != n) {
		fprintf(stderr, "lookup_check: program processed %u of %u (no_table=%u)\n",
			ctl.done, n, ctl.no_table);
		return -EIO;
	}
	return 0;
}

/* Check in[0..n) against the userspace search. */
static int check_batch(struct checker *c, int family, uint32_t n)
{
	int r = run_batch(c, family, n, 1);

	if (r < 0)
		return r;
	for (uint32_t i = 0; i < n; i++) {
		uint16_t want = family == 4 ? table_lookup4(c->img, (uint32_t)c->in[i].lo)
					    : table_lookup6_u64(c->img, c->in[i].hi, c->in[i].lo);

		c->checked++;
		if (c->out[i] != want) {
			if (c->mismatches < 10)
				fprintf(stderr,
					"MISMATCH IPv%d %016llx:%016llx kernel %llu userspace %u\n",
					family, (unsigned long long)c->in[i].hi,
					(unsigned long long)c->in[i].lo,
					(unsigned long long)c->out[i], want);
			c->mismatches++;
		}
	}
	return 0;
}

/* Feed addresses one at a time; a full batch is run and checked. */
struct feeder {
	struct checker *c;
	int family;
	uint32_t n;
	int err;
};

static void feed(struct feeder *f, u128 a)
{
	if (f->err)
		return;
	f->c->in[f->n].hi = (uint64_t)(a >> 64);
	f->c->in[f->n].lo = (uint64_t)a;
	if (f->family == 4)
		f->c->in[f->n].hi = 0;
	if (++f->n == BATCH) {
		f->err = check_batch(f->c, f->family, f->n);
		f->n = 0;
	}
}

static int feed_end(struct feeder *f)
{
	if (!f->err && f->n > 0)
		f->err = check_batch(f->c, f->family, f->n);
	f->n = 0;
	return f->err;
}

/* 1/2 uniform in 2000::/3, 1/4 at span edges +-1, 1/4 uniform over the whole space. */
static u128 random6(const struct geo_db *db, uint64_t *s, unsigned i)
{
	uint64_t hi = splitmix64(s), lo = splitmix64(s);

	if (i % 4 < 2)
		return (u128)((hi & 0x1fffffffffffffffULL) | 0x2000000000000000ULL) << 64 | lo;
	if (i % 4 == 2) {
		const struct geo_span *sp = &db->v6[hi % db->n6];

		return (lo & 1 ? sp->end : sp->start) + (int)((lo >> 1) % 3) - 1;
	}
	return (u128)hi << 64 | lo;
}

static int prog_stats(int prog_fd, uint64_t *ret_ns, uint64_t *ret_cnt)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) < 0)
		return -errno;
	*ret_ns = info.run_time_ns;
	*ret_cnt = info.run_cnt;
	return 0;
}

/* Average ns per run of the program over TIMING_RUNS runs of a full batch, from run_time_ns and
 * run_cnt (kernel.bpf_stats_enabled). */
static int time_batch(struct checker *c, uint32_t family, double *ret_ns_per_run, double *ret_reads)
{
	struct counting_ctx cc = { .img = c->img };
	uint64_t ns0, cnt0, ns1, cnt1;
	int r;

	for (uint32_t i = 0; i < BATCH; i++) {
		if (family == 4)
			egress_lookup4(&cc, (uint32_t)c->in[i].lo);
		else if (family == 6)
			egress_lookup6(&cc, c->in[i].hi, c->in[i].lo);
	}
	*ret_reads = (double)cc.reads / BATCH;

	r = prog_stats(c->prog_fd, &ns0, &cnt0);
	if (r < 0)
		return r;
	r = run_batch(c, family, BATCH, TIMING_RUNS);
	if (r < 0)
		return r;
	r = prog_stats(c->prog_fd, &ns1, &cnt1);
	if (r < 0)
		return r;
	if (cnt1 - cnt0 != TIMING_RUNS)
		return -EIO;
	*ret_ns_per_run = (double)(ns1 - ns0) / (double)(cnt1 - cnt0);
	return 0;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* kernel.bpf_stats_enabled: read, set, restore. */
static int stats_sysctl(const char *value, char *ret_old, size_t oldsize)
{
	FILE *f = fopen("/proc/sys/kernel/bpf_stats_enabled", "r+");
	int r = 0;

	if (!f)
		return -errno;
	if (ret_old && !fgets(ret_old, (int)oldsize, f))
		r = -EIO;
	if (r == 0 && (fseek(f, 0, SEEK_SET) < 0 || fputs(value, f) < 0))
		r = -errno;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

static int timing(struct checker *c, const struct geo_db *db)
{
	char old[16] = "0\n";
	double t_loop, t4, t6, t6u, u4, u6, u6u, t0, rd_loop, rd4, rd6, rd6u;
	volatile uint16_t sink = 0;
	uint64_t s = 77;
	int r;

	r = stats_sysctl("1\n", old, sizeof(old));
	if (r < 0) {
		fprintf(stderr, "lookup_check: cannot enable kernel.bpf_stats_enabled: %s\n",
			strerror(-r));
		return r;
	}
	for (uint32_t i = 0; i < BATCH; i++)
		c->in[i] = (struct lookup_addr){ 0, (uint32_t)splitmix64(&s) };
	r = time_batch(c, 0, &t_loop, &rd_loop);
	if (r == 0)
		r = time_batch(c, 4, &t4, &rd4);
	t0 = now_ns();
	for (int k = 0; k < TIMING_RUNS; k++)
		for (uint32_t i = 0; i < BATCH; i++)
			sink += table_lookup4(c->img, (uint32_t)c->in[i].lo);
	u4 = (now_ns() - t0) / TIMING_RUNS / BATCH;
	for (uint32_t i = 0; i < BATCH; i++) {
		uint64_t hi = splitmix64(&s);

		c->in[i] =
			(struct lookup_addr){ (hi & 0x1fffffffffffffffULL) | 0x2000000000000000ULL,
					      splitmix64(&s) };
	}
	if (r == 0)
		r = time_batch(c, 6, &t6, &rd6);
	t0 = now_ns();
	for (int k = 0; k < TIMING_RUNS; k++)
		for (uint32_t i = 0; i < BATCH; i++)
			sink += table_lookup6_u64(c->img, c->in[i].hi, c->in[i].lo);
	u6 = (now_ns() - t0) / TIMING_RUNS / BATCH;
	/* IPv6 addresses drawn from the spans of the data (where real traffic goes) */
	for (uint32_t i = 0; i < BATCH; i++) {
		const struct geo_span *sp = &db->v6[splitmix64(&s) % db->n6];
		u128 size = sp->end - sp->start + 1; /* 0: the whole space */
		uint64_t rhi = splitmix64(&s), rlo = splitmix64(&s);
		u128 rnd = (u128)rhi << 64 | rlo;
		u128 a = sp->start + (size ? rnd % size : rnd);

		c->in[i] = (struct lookup_addr){ (uint64_t)(a >> 64), (uint64_t)a };
	}
	if (r == 0)
		r = time_batch(c, 6, &t6u, &rd6u);
	t0 = now_ns();
	for (int k = 0; k < TIMING_RUNS; k++)
		for (uint32_t i = 0; i < BATCH; i++)
			sink += table_lookup6_u64(c->img, c->in[i].hi, c->in[i].lo);
	u6u = (now_ns() - t0) / TIMING_RUNS / BATCH;
	(void)sink;

	if (stats_sysctl(old, NULL, 0) < 0)
		fprintf(stderr, "lookup_check: could not restore kernel.bpf_stats_enabled=%s", old);
	if (r < 0)
		return r;
	printf("timing (bpf_stats run_time_ns/run_cnt, %d runs of %d lookups each):\n", TIMING_RUNS,
	       BATCH);
	printf("  loop only (bpf_loop + map reads/writes, no search): %.1f ns per address\n",
	       t_loop / BATCH);
	printf("  IPv4 uniform:           %6.1f ns per address, %6.1f ns per lookup net of the "
	       "loop, "
	       "%.2f word reads/lookup; userspace %.1f ns\n",
	       t4 / BATCH, (t4 - t_loop) / BATCH, rd4, u4);
	printf("  IPv6 uniform 2000::/3:  %6.1f ns per address, %6.1f ns per lookup net of the "
	       "loop, "
	       "%.2f word reads/lookup; userspace %.1f ns\n",
	       t6 / BATCH, (t6 - t_loop) / BATCH, rd6, u6);
	printf("  IPv6 in random spans:   %6.1f ns per address, %6.1f ns per lookup net of the "
	       "loop, "
	       "%.2f word reads/lookup; userspace %.1f ns\n",
	       t6u / BATCH, (t6u - t_loop) / BATCH, rd6u, u6u);
	(void)rd_loop;
	return 0;
}

static void *map_mmap(int fd, size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv)
{
	const char *obj_path = argc > 1 ? argv[1] : LOOKUP_CHECK_BPF_OBJ;
	const char *geo_path = argc > 2 ? argv[2] : LOOKUP_CHECK_GEO;
	struct diag errors = {}, warnings = {};
	struct geo_db db = {};
	struct table_image img = {};
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	struct checker c = { .prog_fd = -1 };
	struct feeder f;
	LIBBPF_OPTS(bpf_map_create_opts, mopts, .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	int inner_fd = -1, probe_fd, r, ret = 1;
	uint64_t s = 2024, n_rand4 = 0, n_rand6 = 0, n_edge4 = 0, n_edge6 = 0, m4, c4;
	size_t tbl_bytes = 0;
	void *tbl = NULL;
	uint32_t zero = 0;

	if (geteuid() != 0) {
		printf("SKIP: lookup_check needs root (BPF maps and BPF_PROG_TEST_RUN)\n");
		return 77;
	}
	probe_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "lc_probe", 4, 8, 1, NULL);
	if (probe_fd < 0) {
		printf("SKIP: BPF unavailable: bpf_map_create: %s\n", strerror(errno));
		return 77;
	}
	close(probe_fd);
	libbpf_set_print(libbpf_print);

	r = geo_load(&geo_path, 1, &db, &errors, &warnings);
	if (r < 0) {
		for (size_t i = 0; i < errors.n; i++)
			fprintf(stderr, "%s\n", errors.msgs[i]);
		fprintf(stderr, "lookup_check: geo_load %s: %s\n", geo_path, strerror(-r));
		goto out;
	}
	r = table_build(&db, 1, &img);
	if (r < 0 || (r = table_verify(&img, &errors)) < 0) {
		fprintf(stderr, "lookup_check: table_build/verify: %s\n", strerror(-r));
		goto out;
	}
	printf("world table: %llu IPv4 + %llu IPv6 ranges, %llu bytes, max bucket %u / %u\n",
	       (unsigned long long)img.n4, (unsigned long long)img.n6,
	       (unsigned long long)table_image_bytes(&img), table_max_bucket(&img, 4),
	       table_max_bucket(&img, 6));

	obj = bpf_object__open_file(obj_path, NULL);
	if (!obj) {
		fprintf(stderr, "lookup_check: open %s: %s\n", obj_path, strerror(errno));
		goto out;
	}
	r = bpf_object__load(obj);
	if (r < 0) {
		fprintf(stderr, "lookup_check: load %s: %s\n", obj_path, strerror(-r));
		goto out;
	}
	prog = bpf_object__find_program_by_name(obj, "lookup_batch");
	c.prog_fd = prog ? bpf_program__fd(prog) : -1;
	c.ctl_fd = bpf_object__find_map_fd_by_name(obj, "ctl");
	c.img = &img;
	c.in = map_mmap(bpf_object__find_map_fd_by_name(obj, "addrs"), BATCH * sizeof(*c.in));
	c.out = map_mmap(bpf_object__find_map_fd_by_name(obj, "countries"), BATCH * sizeof(*c.out));
	if (c.prog_fd < 0 || c.ctl_fd < 0 || !c.in || !c.out) {
		fprintf(stderr, "lookup_check: program or maps missing in %s\n", obj_path);
		goto out;
	}

	/* the generation map, as the daemon installs it */
	inner_fd =
		bpf_map_create(BPF_MAP_TYPE_ARRAY, "geo_tbl", 4, 8, (uint32_t)img.nwords, &mopts);
	if (inner_fd < 0) {
		fprintf(stderr, "lookup_check: create table map (%zu words): %s\n", img.nwords,
			strerror(errno));
		goto out;
	}
	tbl_bytes = table_image_bytes(&img);
	tbl = map_mmap(inner_fd, tbl_bytes);
	if (!tbl) {
		fprintf(stderr, "lookup_check: mmap table map: %s\n", strerror(errno));
		goto out;
	}
	memcpy(tbl, img.words, tbl_bytes);
	if (bpf_map_update_elem(bpf_object__find_map_fd_by_name(obj, "geo_gen"), &zero, &inner_fd,
				0) < 0) {
		fprintf(stderr, "lookup_check: install table in geo_gen[0]: %s\n", strerror(errno));
		goto out;
	}

	/* IPv4: random, then every span start and end and their neighbours */
	f = (struct feeder){ .c = &c, .family = 4 };
	for (unsigned i = 0; i < RANDOM_PER_FAMILY; i++, n_rand4++)
		feed(&f, (uint32_t)splitmix64(&s));
	for (size_t i = 0; i < db.n4; i++)
		for (int d = -1; d <= 1; d++) {
			feed(&f, (uint32_t)(db.v4[i].start + d));
			feed(&f, (uint32_t)(db.v4[i].end + d));
			n_edge4 += 2;
		}
	if (feed_end(&f) < 0)
		goto run_failed;
	m4 = c.mismatches;
	c4 = c.checked;
	printf("IPv4: %llu random + %llu edge addresses checked, %llu mismatches\n",
	       (unsigned long long)n_rand4, (unsigned long long)n_edge4, (unsigned long long)m4);

	f = (struct feeder){ .c = &c, .family = 6 };
	for (unsigned i = 0; i < RANDOM_PER_FAMILY; i++, n_rand6++)
		feed(&f, random6(&db, &s, i));
	for (size_t i = 0; i < db.n6; i++)
		for (int d = -1; d <= 1; d++) {
			feed(&f, db.v6[i].start + d);
			feed(&f, db.v6[i].end + d);
			n_edge6 += 2;
		}
	if (feed_end(&f) < 0)
		goto run_failed;
	printf("IPv6: %llu random + %llu edge addresses checked, %llu mismatches\n",
	       (unsigned long long)n_rand6, (unsigned long long)n_edge6,
	       (unsigned long long)(c.mismatches - m4));
	if (c.checked - c4 != n_rand6 + n_edge6 || c4 != n_rand4 + n_edge4) {
		fprintf(stderr, "lookup_check: checked %llu addresses, expected %llu\n",
			(unsigned long long)c.checked,
			(unsigned long long)(n_rand4 + n_edge4 + n_rand6 + n_edge6));
		goto out;
	}

	r = timing(&c, &db);
	if (r < 0)
		fprintf(stderr, "lookup_check: timing failed: %s\n", strerror(-r));
	ret = c.mismatches == 0 ? 0 : 1;
	printf("%s: %llu kernel lookups, %llu mismatches\n", ret == 0 ? "PASS" : "FAIL",
	       (unsigned long long)c.checked, (unsigned long long)c.mismatches);
	goto out;

run_failed:
	fprintf(stderr, "lookup_check: BPF_PROG_TEST_RUN failed: %s\n",
		strerror(-(f.err ? f.err : EIO)));
out:
	if (tbl)
		munmap(tbl, tbl_bytes);
	if (c.in)
		munmap(c.in, BATCH * sizeof(*c.in));
	if (c.out)
		munmap(c.out, BATCH * sizeof(*c.out));
	if (inner_fd >= 0)
		close(inner_fd);
	bpf_object__close(obj);
	table_image_free(&img);
	geo_db_free(&db);
	diag_free(&errors);
	diag_free(&warnings);
	return ret;
}
