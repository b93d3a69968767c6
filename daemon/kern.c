/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kern.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <syslog.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "carry.h"
#include "cgroup.h"
#include "egress.skel.h"

const char *const kern_hook_names[KERN_NHOOKS] = {
	"cgroup/connect4",
	"cgroup/connect6",
	"cgroup/sendmsg4",
	"cgroup/sendmsg6",
	"cgroup_skb/egress",
};

struct kern_att {
	char *path; /* rel path */
	uint64_t cgid;
	struct bpf_link *links[KERN_NHOOKS];
};

/* A counting map of an earlier run whose layout differs from this version's, pinned as
 * PinPath/NAME-carry-ID (ID: the kernel's map id; bpffs names may not contain a dot) until its counts are in this version's map (kern_carry_over). */
struct kern_carry {
	char *pin;
	char name[32]; /* NAME: "counters", "overflow", "stats" or "events" */
	int fd;
	struct bpf_map_info info;
	int drain; /* events: unpin after the next kern_events_consume */
};

struct kern {
	char *pin_path; /* NULL: nothing pinned */
	int adopted; /* maps reused from pins of an earlier run */
	int counters_reused; /* "counters" was reused from a pin */
	struct kern_carry *carry;
	size_t ncarry;
	struct egress *skel;
	struct ring_buffer *rb;
	int ncpus;
	struct kern_att *att;
	size_t natt;
	/* set for the duration of kern_events_consume */
	int (*ev_cb)(const struct egress_event *ev, void *userdata);
	void *ev_userdata;
	int ev_err;
};

/* ---- libbpf messages ------------------------------------------------------------------------- */

static void (*log_fn)(int level, const char *line);
static char last_warning[256]; /* last LIBBPF_WARN line, for the one-line load error */
static char verifier_error[256]; /* the verifier's reason: last log line before "processed N insns" */

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[4096], *line, *save = NULL;
	int lvl = level == LIBBPF_WARN ? LOG_INFO : LOG_DEBUG;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		static int in_log;
		static char prev[256];

		if (strstr(line, "-- BEGIN PROG LOAD LOG --")) {
			in_log = 1;
			prev[0] = '\0';
		} else if (strstr(line, "-- END PROG LOAD LOG --")) {
			in_log = 0;
			if (prev[0])
				snprintf(verifier_error, sizeof(verifier_error), "%s", prev);
		} else if (in_log && strncmp(line, "processed ", 10) != 0 && strncmp(line, "verification time", 17) != 0) {
			snprintf(prev, sizeof(prev), "%s", line);
		}
		if (level == LIBBPF_WARN && !in_log && !strstr(line, "PROG LOAD LOG"))
			snprintf(last_warning, sizeof(last_warning), "%s", line);
		if (log_fn)
			log_fn(lvl, line);
	}
	return 0;
}

void kern_set_log(void (*fn)(int level, const char *line))
{
	log_fn = fn;
	libbpf_set_print(libbpf_print);
}

/* ---- open / free ----------------------------------------------------------------------------- */

static int ringbuf_handler(void *ctx, void *data, size_t size)
{
	struct kern *k = ctx;
	struct egress_event ev;
	int r;

	if (size < sizeof(ev) || !k->ev_cb)
		return 0;
	memcpy(&ev, data, sizeof(ev));
	r = k->ev_cb(&ev, k->ev_userdata);
	if (r < 0) {
		k->ev_err = r;
		return r;
	}
	return 0;
}

/* ---- pins ------------------------------------------------------------------------------------ */

#define BPF_FS_MAGIC_ 0xcafe4a11 /* linux/magic.h BPF_FS_MAGIC */

int kern_check_pin_path(const char *pin_path, struct diag *errors)
{
	char *parent = strdup(pin_path), *slash;
	struct statfs sfs;
	int bpffs, sysfsbpf;

	if (!parent)
		return -ENOMEM;
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	bpffs = statfs(parent, &sfs) == 0 && (unsigned long)sfs.f_type == BPF_FS_MAGIC_;
	sysfsbpf = strcmp(parent, "/sys/fs/bpf") == 0;
	if (!bpffs)
		diag_add(errors, "PinPath=%s: %s is not a bpf filesystem%s", pin_path, parent,
			 sysfsbpf ? " (mount it: mount -t bpf bpf /sys/fs/bpf)" : "");
	free(parent);
	return bpffs ? 0 : -ENOTSUP;
}

/* pin_path must be a directory on a bpf filesystem (created here, mode 0700, with links/). */
static int pin_dir_prepare(const char *pin_path, struct diag *errors)
{
	char *links = NULL;
	int r;

	r = kern_check_pin_path(pin_path, errors);
	if (r < 0)
		return r;
	if (mkdir(pin_path, 0700) < 0 && errno != EEXIST)
		r = -errno;
	if (r == 0 && asprintf(&links, "%s/links", pin_path) < 0)
		r = -ENOMEM;
	if (r == 0 && mkdir(links, 0700) < 0 && errno != EEXIST)
		r = -errno;
	if (r < 0)
		diag_add(errors, "PinPath=%s: %s", pin_path, strerror(-r));
	free(links);
	return r;
}

/* Maps whose contents are counts (kept over a layout change, kern_carry_over); the other maps
 * are derived from the configuration and rebuilt at every start. */
static const char *const carried_maps[] = { "counters", "overflow", "stats", "events" };

static int is_carried(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(carried_maps) / sizeof(carried_maps[0]); i++)
		if (strlen(carried_maps[i]) == len && strncmp(name, carried_maps[i], len) == 0)
			return 1;
	return 0;
}

/* "max_entries 4096 -> 8192, ..." for the attributes of info that differ from m's. */
static void layout_diff(const struct bpf_map_info *info, const struct bpf_map *m, char *buf, size_t size)
{
	const struct { const char *name; uint32_t was, is; } a[] = {
		{ "type", info->type, bpf_map__type(m) },
		{ "key_size", info->key_size, bpf_map__key_size(m) },
		{ "value_size", info->value_size, bpf_map__value_size(m) },
		{ "max_entries", info->max_entries, bpf_map__max_entries(m) },
		{ "map_flags", info->map_flags, bpf_map__map_flags(m) },
	};
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]) && len < size; i++)
		if (a[i].was != a[i].is)
			len += (size_t)snprintf(buf + len, size - len, "%s%s %u -> %u", len ? ", " : "",
						a[i].name, a[i].was, a[i].is);
}

/* Register every PinPath/NAME-carry-ID pin (this start's and those an interrupted earlier start
 * left) in k->carry. */
static int carry_scan(struct kern *k, struct diag *warnings)
{
	DIR *d = opendir(k->pin_path);
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		const char *dot = strstr(de->d_name, "-carry-");
		struct kern_carry c = { .fd = -1 };
		uint32_t len = sizeof(c.info);
		struct kern_carry *nc;

		if (!dot || !is_carried(de->d_name, (size_t)(dot - de->d_name)))
			continue;
		snprintf(c.name, sizeof(c.name), "%.*s", (int)(dot - de->d_name), de->d_name);
		if (asprintf(&c.pin, "%s/%s", k->pin_path, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		c.fd = bpf_obj_get(c.pin);
		if (c.fd < 0 || bpf_obj_get_info_by_fd(c.fd, &c.info, &len) < 0) {
			diag_add(warnings, "%s: cannot open the replaced map: %s", c.pin, strerror(errno));
			if (c.fd >= 0)
				close(c.fd);
			free(c.pin);
			continue;
		}
		nc = realloc(k->carry, (k->ncarry + 1) * sizeof(*nc));
		if (!nc) {
			close(c.fd);
			free(c.pin);
			r = -ENOMEM;
			break;
		}
		k->carry = nc;
		k->carry[k->ncarry++] = c;
	}
	closedir(d);
	return r;
}

/* Give every (non-internal) map a pin path; libbpf then reuses a compatible pinned map at load
 * and pins new ones. A pinned map whose layout differs (an upgrade changed it) is unpinned first,
 * so a new one is made; a counting map (carried_maps) is pinned again as NAME-carry-ID first, so
 * its counts survive until kern_carry_over() adds them to the new map. Returns the number of maps
 * that will be reused. */
static int pins_assign(struct kern *k, struct diag *errors)
{
	struct bpf_map *m;
	int reused = 0;

	bpf_object__for_each_map(m, k->skel->obj) {
		struct bpf_map_info info = {};
		uint32_t len = sizeof(info);
		char *path = NULL;
		int fd, r;

		if (bpf_map__is_internal(m))
			continue;
		if (asprintf(&path, "%s/%s", k->pin_path, bpf_map__name(m)) < 0)
			return -ENOMEM;
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			r = bpf_obj_get_info_by_fd(fd, &info, &len);
			if (r == 0 && info.type == bpf_map__type(m) && info.key_size == bpf_map__key_size(m) &&
			    info.value_size == bpf_map__value_size(m) &&
			    info.max_entries == bpf_map__max_entries(m) && info.map_flags == bpf_map__map_flags(m)) {
				reused++;
				if (m == k->skel->maps.counters)
					k->counters_reused = 1;
			} else if (r == 0 && is_carried(bpf_map__name(m), strlen(bpf_map__name(m)))) {
				char diff[160], *keep = NULL;

				layout_diff(&info, m, diff, sizeof(diff));
				if (asprintf(&keep, "%s-carry-%u", path, info.id) < 0) {
					close(fd);
					free(path);
					return -ENOMEM;
				}
				/* Pin under the new name before the old name goes: a crash in between
				 * leaves both names, never none. */
				if (bpf_obj_pin(fd, keep) < 0 && errno != EEXIST) {
					diag_add(errors, "%s: the pinned map's layout differs from this version's (%s) "
						 "and pinning it as %s failed (%s): it is replaced and its counts are "
						 "not carried over", path, diff, keep, strerror(errno));
				} else if (m == k->skel->maps.events) {
					diag_add(errors, "%s: the pinned ring buffer's layout differs from this version's "
						 "(%s): it is replaced; its unread events are read from %s", path, diff,
						 keep);
				} else {
					diag_add(errors, "%s: the pinned map's layout differs from this version's (%s): "
						 "it is replaced, its counts are carried over from %s once the "
						 "programs are switched", path, diff, keep);
				}
				free(keep);
				(void)unlink(path);
			} else {
				diag_add(errors, "%s: the pinned map's layout differs from this version's; it is replaced "
					 "and rebuilt from the configuration", path);
				(void)unlink(path);
			}
			close(fd);
		}
		r = bpf_map__set_pin_path(m, path);
		free(path);
		if (r < 0)
			return r;
	}
	return reused;
}

int kern_open_sized(struct kern **ret, const struct kern_sizes *sizes, struct diag *errors)
{
	return kern_open_pinned(ret, sizes, NULL, errors, NULL);
}

int kern_open_pinned(struct kern **ret, const struct kern_sizes *sizes, const char *pin_path,
		     struct diag *errors, struct diag *warnings)
{
	struct kern_sizes sz = sizes ? *sizes : (struct kern_sizes){};
	struct kern *k;
	int r;

	libbpf_set_print(libbpf_print);
	last_warning[0] = '\0';
	verifier_error[0] = '\0';
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->ncpus = libbpf_num_possible_cpus();
	if (k->ncpus <= 0) {
		r = k->ncpus < 0 ? k->ncpus : -EINVAL;
		diag_add(errors, "BPF: cannot count the possible CPUs: %s (errno %d)", strerror(-r),
			 -r);
		goto fail;
	}
	k->skel = egress__open();
	if (!k->skel) {
		r = -errno;
		diag_add(errors, "BPF: opening the embedded object failed: %s (errno %d)",
			 strerror(-r), -r);
		goto fail;
	}
	r = 0;
	if (sz.counters)
		r = r ?: bpf_map__set_max_entries(k->skel->maps.counters, sz.counters);
	if (sz.cgroup_policy)
		r = r ?: bpf_map__set_max_entries(k->skel->maps.cgroup_policy, sz.cgroup_policy);
	if (sz.policies)
		r = r ?: bpf_map__set_max_entries(k->skel->maps.policies, sz.policies);
	if (sz.cidr)
		r = r ?: bpf_map__set_max_entries(k->skel->maps.cidr, sz.cidr);
	if (sz.events)
		r = r ?: bpf_map__set_max_entries(k->skel->maps.events, sz.events);
	if (r < 0) {
		diag_add(errors, "BPF: setting the map sizes failed: %s (errno %d)", strerror(-r),
			 -r);
		goto fail;
	}
	if (pin_path) {
		struct diag w = {};

		k->pin_path = strdup(pin_path);
		if (!k->pin_path) {
			r = -ENOMEM;
			goto fail;
		}
		r = pin_dir_prepare(pin_path, errors);
		if (r < 0)
			goto fail;
		r = pins_assign(k, &w);
		if (r >= 0) {
			k->adopted = r;
			r = carry_scan(k, &w);
		}
		if (warnings)
			diag_move(warnings, &w);
		diag_free(&w);
		if (r < 0) {
			diag_add(errors, "PinPath=%s: %s", pin_path, strerror(-r));
			goto fail;
		}
	}
	r = egress__load(k->skel);
	if (r < 0) {
		r = r == -1 ? -errno : r;
		diag_add(errors, "BPF: loading the programs failed: %s (errno %d)%s%s%s%s", strerror(-r), -r,
			 verifier_error[0] ? "; verifier: " : "", verifier_error,
			 last_warning[0] && !verifier_error[0] ? "; last libbpf message: " : "",
			 verifier_error[0] ? "" : last_warning);
		goto fail;
	}
	k->rb = ring_buffer__new(bpf_map__fd(k->skel->maps.events), ringbuf_handler, k, NULL);
	if (!k->rb) {
		r = -errno;
		diag_add(errors, "BPF: setting up the event ring buffer failed: %s (errno %d)",
			 strerror(-r), -r);
		goto fail;
	}
	/* Events still unread in a replaced ring buffer are read with this run's. */
	for (size_t i = 0; i < k->ncarry; i++) {
		struct kern_carry *c = &k->carry[i];

		if (strcmp(c->name, "events") != 0 || c->info.type != BPF_MAP_TYPE_RINGBUF)
			continue;
		r = ring_buffer__add(k->rb, c->fd, ringbuf_handler, k);
		if (r < 0) {
			diag_add(errors, "%s: reading the replaced event ring buffer failed: %s (errno %d)",
				 c->pin, strerror(-r), -r);
			goto fail;
		}
	}
	*ret = k;
	return 0;
fail:
	kern_close(k, 1); /* a failed open must not remove what an earlier run left enforcing */
	return r;
}

void kern_sizes_get(const struct kern *k, struct kern_sizes *ret)
{
	*ret = (struct kern_sizes){};
	if (!k)
		return;
	ret->counters = bpf_map__max_entries(k->skel->maps.counters);
	ret->cgroup_policy = bpf_map__max_entries(k->skel->maps.cgroup_policy);
	ret->policies = bpf_map__max_entries(k->skel->maps.policies);
	ret->cidr = bpf_map__max_entries(k->skel->maps.cidr);
	ret->events = bpf_map__max_entries(k->skel->maps.events);
}

int kern_adopted(const struct kern *k)
{
	return k ? k->adopted : 0;
}

int kern_open(struct kern **ret, struct diag *errors)
{
	return kern_open_sized(ret, NULL, errors);
}

/* keep: leave the links attached (and pinned); else unpin and detach them. */
static void att_release(struct kern_att *a, int keep)
{
	for (size_t h = 0; h < KERN_NHOOKS; h++) {
		if (!a->links[h])
			continue;
		if (keep)
			bpf_link__disconnect(a->links[h]);
		else if (bpf_link__pin_path(a->links[h]))
			(void)bpf_link__unpin(a->links[h]);
		bpf_link__destroy(a->links[h]);
	}
	free(a->path);
	memset(a, 0, sizeof(*a));
}

static void att_destroy(struct kern_att *a)
{
	att_release(a, 0);
}

/* Remove every pin under pin_path (maps, stale links) and the directories. */
static void pins_remove(const char *pin_path)
{
	char *links = NULL;
	DIR *d;
	struct dirent *de;

	if (asprintf(&links, "%s/links", pin_path) < 0)
		return;
	for (int pass = 0; pass < 2; pass++) {
		const char *dir = pass == 0 ? links : pin_path;

		d = opendir(dir);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			char *p = NULL;

			if (de->d_name[0] == '.' || (pass == 1 && strcmp(de->d_name, "links") == 0))
				continue;
			if (asprintf(&p, "%s/%s", dir, de->d_name) >= 0)
				(void)unlink(p);
			free(p);
		}
		closedir(d);
		(void)rmdir(dir);
	}
	free(links);
}

struct kern *kern_close(struct kern *k, int keep)
{
	if (!k)
		return NULL;
	if (!k->pin_path)
		keep = 0; /* nothing holds the programs without pins */
	for (size_t i = 0; i < k->natt; i++)
		att_release(&k->att[i], keep);
	free(k->att);
	ring_buffer__free(k->rb);
	for (size_t i = 0; i < k->ncarry; i++) {
		if (k->carry[i].fd >= 0)
			close(k->carry[i].fd);
		free(k->carry[i].pin);
	}
	free(k->carry);
	egress__destroy(k->skel);
	if (k->pin_path && !keep)
		pins_remove(k->pin_path);
	else if (k->pin_path) {
		/* Empty directories of a start that pinned nothing; fails harmlessly otherwise. */
		char *links = NULL;

		if (asprintf(&links, "%s/links", k->pin_path) >= 0 && rmdir(links) == 0)
			(void)rmdir(k->pin_path);
		free(links);
	}
	free(k->pin_path);
	free(k);
	return NULL;
}

struct kern *kern_free(struct kern *k)
{
	return kern_close(k, 0);
}

/* ---- GeoIP table ----------------------------------------------------------------------------- */

int kern_install_table(struct kern *k, const struct table_image *img)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	size_t bytes, pagesz = (size_t)sysconf(_SC_PAGESIZE), maplen;
	uint32_t zero = 0;
	void *mem;
	int fd, outer, r;

	if (!img || !img->words || img->nwords <= EGRESS_TABLE_V4_RNG || img->nwords > UINT32_MAX ||
	    img->words[0] != EGRESS_TABLE_MAGIC)
		return -EINVAL;
	bytes = img->nwords * sizeof(uint64_t);
	maplen = (bytes + pagesz - 1) / pagesz * pagesz;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "egress_geo", sizeof(uint32_t), sizeof(uint64_t),
			    (uint32_t)img->nwords, &opts);
	if (fd < 0)
		return fd == -1 ? -errno : fd;
	mem = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	memcpy(mem, img->words, bytes);
	if (munmap(mem, maplen) < 0) {
		r = -errno;
		goto out;
	}
	/* No further writes from userspace: programs only read, the daemon never changes a
	 * generation once built. */
	r = bpf_map_freeze(fd);
	if (r < 0)
		goto out;
	outer = bpf_map__fd(k->skel->maps.geo_gen);
	r = bpf_map_update_elem(outer, &zero, &fd, BPF_ANY);
out:
	close(fd); /* the outer map holds its own reference */
	return r < 0 ? (r == -1 ? -errno : r) : 0;
}

/* ---- policies -------------------------------------------------------------------------------- */

/* Validated policy_cidr_key(): -EINVAL for a family, length or action the trie cannot hold. */
static int cidr_key_of(uint32_t policy_id, const struct policy_cidr *c, struct egress_cidr_key *ret)
{
	if ((c->family != 4 || c->plen > 32) && (c->family != 6 || c->plen > 128))
		return -EINVAL;
	if (c->action != EGRESS_CIDR_ALLOW && c->action != EGRESS_CIDR_DENY)
		return -EINVAL;
	policy_cidr_key(policy_id, c, ret);
	return 0;
}

/* All keys of a map (key_size bytes each) in a heap array. */
static int map_keys(int fd, size_t key_size, void **ret, size_t *ret_n)
{
	unsigned char *keys = NULL;
	size_t n = 0, cap = 0;
	int r;

	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			unsigned char *nk = realloc(keys, ncap * key_size);

			if (!nk) {
				free(keys);
				return -ENOMEM;
			}
			keys = nk;
			cap = ncap;
		}
		/* The previous key by index: realloc above may have moved the array. */
		r = bpf_map_get_next_key(fd, n ? keys + (n - 1) * key_size : NULL, keys + n * key_size);
		if (r < 0) {
			if (errno == ENOENT)
				break;
			r = -errno;
			free(keys);
			return r;
		}
		n++;
	}
	*ret = keys;
	*ret_n = n;
	return 0;
}

static int set_max_level(struct kern *k, uint32_t level)
{
	struct egress_config cfg = { .max_level = level };
	uint32_t zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(k->skel->maps.config), &zero, &cfg, BPF_ANY) < 0)
		return -errno;
	return 0;
}

static int get_max_level(struct kern *k, uint32_t *ret)
{
	struct egress_config cfg;
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(k->skel->maps.config), &zero, &cfg) < 0)
		return -errno;
	*ret = cfg.max_level;
	return 0;
}

static int policy_wanted(const struct kern_policy *p, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (p[i].bpf.policy_id == id)
			return 1;
	return 0;
}

static int cgroup_wanted(const struct kern_policy *p, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < p[i].ncgroup_ids; j++)
			if (p[i].cgroup_ids[j] == id)
				return 1;
	return 0;
}

static int cidr_wanted(const struct kern_policy *p, size_t n, const struct egress_cidr_key *key)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i].bpf.policy_id != key->policy_id)
			continue;
		for (size_t j = 0; j < p[i].ncidrs; j++) {
			struct egress_cidr_key want;

			if (cidr_key_of(p[i].bpf.policy_id, &p[i].cidrs[j], &want) == 0 &&
			    memcmp(&want, key, sizeof(want)) == 0)
				return 1;
		}
	}
	return 0;
}

static int delete_stale(int fd, size_t key_size,
			int (*wanted)(const struct kern_policy *, size_t, const void *),
			const struct kern_policy *p, size_t n)
{
	void *keys = NULL;
	size_t nkeys = 0;
	int r;

	r = map_keys(fd, key_size, &keys, &nkeys);
	if (r < 0)
		return r;
	for (size_t i = 0; i < nkeys; i++) {
		const void *key = (const unsigned char *)keys + i * key_size;

		if (wanted(p, n, key))
			continue;
		if (bpf_map_delete_elem(fd, key) < 0 && errno != ENOENT) {
			r = -errno;
			break;
		}
	}
	free(keys);
	return r;
}

static int wanted_policy_key(const struct kern_policy *p, size_t n, const void *key)
{
	uint32_t id;

	memcpy(&id, key, sizeof(id));
	return policy_wanted(p, n, id);
}

static int wanted_cgroup_key(const struct kern_policy *p, size_t n, const void *key)
{
	uint64_t id;

	memcpy(&id, key, sizeof(id));
	return cgroup_wanted(p, n, id);
}

static int wanted_cidr_key(const struct kern_policy *p, size_t n, const void *key)
{
	struct egress_cidr_key k;

	memcpy(&k, key, sizeof(k));
	return cidr_wanted(p, n, &k);
}

static int map_err(void)
{
	return errno == E2BIG || errno == ENOSPC ? -E2BIG : -errno;
}

int kern_sync_policies(struct kern *k, const struct kern_policy *p, size_t n)
{
	int fd_pol = bpf_map__fd(k->skel->maps.policies), fd_cidr = bpf_map__fd(k->skel->maps.cidr);
	int fd_cg = bpf_map__fd(k->skel->maps.cgroup_policy);
	uint32_t level = 0, cur = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		if (p[i].max_level > EGRESS_MAX_CGROUP_LEVEL)
			return -E2BIG;
		if (p[i].max_level > level)
			level = p[i].max_level;
		for (size_t j = 0; j < p[i].ncidrs; j++) {
			struct egress_cidr_key key;

			r = cidr_key_of(p[i].bpf.policy_id, &p[i].cidrs[j], &key);
			if (r < 0)
				return r;
		}
	}
	r = get_max_level(k, &cur);
	if (r < 0)
		return r;
	if (level > cur) {
		r = set_max_level(k, level);
		if (r < 0)
			return r;
	}

	for (size_t i = 0; i < n; i++) {
		struct egress_policy v = p[i].bpf;

		v.has_cidr = p[i].ncidrs > 0;
		v.pad = 0;
		if (bpf_map_update_elem(fd_pol, &v.policy_id, &v, BPF_ANY) < 0)
			return map_err();
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < p[i].ncidrs; j++) {
			struct egress_cidr_key key;
			uint32_t action = p[i].cidrs[j].action;

			(void)cidr_key_of(p[i].bpf.policy_id, &p[i].cidrs[j], &key);
			if (bpf_map_update_elem(fd_cidr, &key, &action, BPF_ANY) < 0)
				return map_err();
		}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < p[i].ncgroup_ids; j++) {
			uint32_t id = p[i].bpf.policy_id;

			if (bpf_map_update_elem(fd_cg, &p[i].cgroup_ids[j], &id, BPF_ANY) < 0)
				return map_err();
		}

	r = delete_stale(fd_cg, sizeof(uint64_t), wanted_cgroup_key, p, n);
	if (r < 0)
		return r;
	r = delete_stale(fd_cidr, sizeof(struct egress_cidr_key), wanted_cidr_key, p, n);
	if (r < 0)
		return r;
	r = delete_stale(fd_pol, sizeof(uint32_t), wanted_policy_key, p, n);
	if (r < 0)
		return r;
	if (level < cur)
		return set_max_level(k, level);
	return 0;
}

/* ---- attachments ----------------------------------------------------------------------------- */

/* rel without leading/trailing '/', in a heap string. */
static char *normalize_rel(const char *rel)
{
	size_t l;
	char *s;

	while (*rel == '/')
		rel++;
	s = strdup(rel);
	if (!s)
		return NULL;
	l = strlen(s);
	while (l && s[l - 1] == '/')
		s[--l] = '\0';
	return s;
}

/* 1 if a is a proper ancestor of b (component-wise). */
static int is_ancestor(const char *a, const char *b)
{
	size_t la = strlen(a);

	return strncmp(a, b, la) == 0 && b[la] == '/';
}

static int has_dotdot(const char *rel)
{
	for (const char *p = rel; (p = strstr(p, "..")); p += 2)
		if ((p == rel || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return 1;
	return 0;
}

static int attach_one(struct kern *k, const char *mount, const char *rel, uint64_t cgid,
		      struct kern_att *ret, struct diag *errors)
{
	struct bpf_program *progs[KERN_NHOOKS] = {
		k->skel->progs.egress_connect4,
		k->skel->progs.egress_connect6,
		k->skel->progs.egress_sendmsg4,
		k->skel->progs.egress_sendmsg6,
		k->skel->progs.egress_skb,
	};
	struct kern_att a = {};
	char *abs = NULL;
	int fd, r = 0;

	if (asprintf(&abs, "%s/%s", mount, rel) < 0)
		return -ENOMEM;
	fd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r != -ENOENT)
			diag_add(errors, "%s: cannot open the cgroup: %s", abs, strerror(-r));
		free(abs);
		return r;
	}
	for (size_t h = 0; h < KERN_NHOOKS; h++) {
		char *pin = NULL;

		if (k->pin_path && asprintf(&pin, "%s/links/%llu-%zu", k->pin_path, (unsigned long long)cgid, h) < 0) {
			r = -ENOMEM;
			break;
		}
		/* A link an earlier run left attached: give it this run's program, in place (no gap,
		 * no second attachment). */
		if (pin && access(pin, F_OK) == 0 && (a.links[h] = bpf_link__open(pin))) {
			if (bpf_link__update_program(a.links[h], progs[h]) == 0) {
				free(pin);
				continue;
			}
			(void)bpf_link__unpin(a.links[h]);
			bpf_link__destroy(a.links[h]);
		}
		a.links[h] = bpf_program__attach_cgroup(progs[h], fd);
		if (!a.links[h]) {
			r = -errno;
			diag_add(errors, "%s: attaching %s failed: %s (errno %d)", abs,
				 kern_hook_names[h], strerror(-r), -r);
			free(pin);
			break;
		}
		if (pin && (r = bpf_link__pin(a.links[h], pin)) < 0) {
			diag_add(errors, "%s: pinning the %s link at %s failed: %s", abs, kern_hook_names[h], pin,
				 strerror(-r));
			free(pin);
			break;
		}
		free(pin);
	}
	close(fd);
	free(abs);
	a.path = strdup(rel);
	if (r == 0 && !a.path)
		r = -ENOMEM;
	if (r < 0) {
		att_destroy(&a);
		return r;
	}
	a.cgid = cgid;
	*ret = a;
	return 0;
}

/* Unpin (and so detach) pinned links no current attachment owns: cgroups an earlier run
 * attached to that this configuration no longer names, or that are gone. */
static void links_prune(struct kern *k)
{
	char *dir = NULL;
	struct dirent *de;
	DIR *d;

	if (!k->pin_path || asprintf(&dir, "%s/links", k->pin_path) < 0)
		return;
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		unsigned long long cgid;
		size_t h;
		int owned = 0;

		if (de->d_name[0] == '.')
			continue;
		if (sscanf(de->d_name, "%llu-%zu", &cgid, &h) == 2)
			for (size_t i = 0; i < k->natt && !owned; i++)
				owned = k->att[i].cgid == cgid && h < KERN_NHOOKS && k->att[i].links[h];
		if (!owned) {
			char *p = NULL;

			if (asprintf(&p, "%s/%s", dir, de->d_name) >= 0)
				(void)unlink(p); /* the last reference: the kernel detaches it */
			free(p);
		}
	}
	if (d)
		closedir(d);
	free(dir);
}

int kern_sync_attachments(struct kern *k, const char *cgroup_mount, const char *const *rel_paths,
			  size_t n, struct diag *errors)
{
	char **rel = calloc(n ? n : 1, sizeof(*rel));
	uint64_t *ids = calloc(n ? n : 1, sizeof(*ids));
	struct kern_att *natt = calloc(n ? n : 1, sizeof(*natt));
	unsigned char *keep = calloc(k->natt ? k->natt : 1, 1);
	size_t nnew = 0;
	int r = 0, first_err = 0;

	if (!rel || !ids || !natt || !keep) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rel[i] = normalize_rel(rel_paths[i]);
		if (!rel[i]) {
			r = -ENOMEM;
			goto out;
		}
		if (!rel[i][0]) {
			diag_add(errors,
				 "%s: refusing to attach to the cgroup v2 root; name a cgroup "
				 "below it",
				 cgroup_mount);
			r = -EINVAL;
		} else if (has_dotdot(rel[i])) {
			diag_add(errors, "%s/%s: cgroup paths may not contain \"..\"", cgroup_mount,
				 rel[i]);
			r = -EINVAL;
		}
	}
	if (r < 0)
		goto out;

	/* Current ids; 0 = does not exist now. */
	for (size_t i = 0; i < n; i++) {
		char *abs = NULL;

		if (asprintf(&abs, "%s/%s", cgroup_mount, rel[i]) < 0) {
			r = -ENOMEM;
			goto out;
		}
		if (cgroup_id_of(abs, &ids[i]) < 0)
			ids[i] = 0;
		free(abs);
	}

	for (size_t i = 0; i < n; i++) {
		int covered = 0, dup = 0;
		size_t j;

		if (!ids[i])
			continue;
		for (j = 0; j < n && !covered; j++)
			covered = ids[j] && is_ancestor(rel[j], rel[i]);
		for (j = 0; j < i && !dup; j++)
			dup = strcmp(rel[j], rel[i]) == 0;
		if (covered || dup)
			continue;
		for (j = 0; j < k->natt; j++)
			if (!keep[j] && k->att[j].cgid == ids[i] &&
			    strcmp(k->att[j].path, rel[i]) == 0)
				break;
		if (j < k->natt) {
			keep[j] = 1;
			continue;
		}
		r = attach_one(k, cgroup_mount, rel[i], ids[i], &natt[nnew], errors);
		if (r == -ENOENT)
			continue; /* removed since we looked: like a missing cgroup */
		if (r < 0) {
			if (!first_err)
				first_err = r;
			continue;
		}
		nnew++;
	}

	/* New links are in place; now drop what is no longer wanted. */
	for (size_t j = 0; j < k->natt; j++) {
		if (keep[j])
			natt[nnew++] = k->att[j];
		else
			att_destroy(&k->att[j]);
	}
	free(k->att);
	k->att = natt;
	k->natt = nnew;
	natt = NULL;
	links_prune(k);
	r = first_err ? first_err : (int)k->natt;
out:
	if (rel)
		for (size_t i = 0; i < n; i++)
			free(rel[i]);
	free(rel);
	free(ids);
	free(natt);
	free(keep);
	return r;
}

size_t kern_attached_count(const struct kern *k)
{
	return k ? k->natt : 0;
}

int kern_attached(const struct kern *k, size_t i, const char **ret_path, uint64_t *ret_id)
{
	if (!k || i >= k->natt)
		return -ENOENT;
	if (ret_path)
		*ret_path = k->att[i].path;
	if (ret_id)
		*ret_id = k->att[i].cgid;
	return 0;
}

/* ---- counters, stats, events ----------------------------------------------------------------- */

static void sum_vals(const struct egress_counter_val *v, int ncpus, struct egress_counter_val *ret)
{
	struct egress_counter_val s = {};

	for (int c = 0; c < ncpus; c++) {
		s.connections += v[c].connections;
		s.packets += v[c].packets;
		s.bytes += v[c].bytes;
	}
	*ret = s;
}

int kern_read_counters(struct kern *k,
		       int (*cb)(const struct egress_counter_key *key,
				 const struct egress_counter_val *sum, void *userdata),
		       void *userdata)
{
	int fd = bpf_map__fd(k->skel->maps.counters);
	struct egress_counter_val *vals, sum;
	struct egress_counter_key key, next;
	int r = 0, have = 0;

	vals = calloc((size_t)k->ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (;;) {
		if (bpf_map_get_next_key(fd, have ? &key : NULL, &next) < 0) {
			if (errno != ENOENT)
				r = -errno;
			break;
		}
		key = next;
		have = 1;
		if (bpf_map_lookup_elem(fd, &key, vals) < 0) {
			if (errno == ENOENT)
				continue; /* counters are never deleted, but be safe */
			r = -errno;
			break;
		}
		sum_vals(vals, k->ncpus, &sum);
		r = cb(&key, &sum, userdata);
		if (r < 0)
			break;
		r = 0;
	}
	free(vals);
	return r;
}

int kern_read_overflow(struct kern *k, struct egress_counter_val ret[EGRESS_VERDICT_COUNT])
{
	int fd = bpf_map__fd(k->skel->maps.overflow);
	struct egress_counter_val *vals, out[EGRESS_VERDICT_COUNT];
	int r = 0;

	vals = calloc((size_t)k->ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (uint32_t v = 0; v < EGRESS_VERDICT_COUNT; v++) {
		if (bpf_map_lookup_elem(fd, &v, vals) < 0) {
			r = -errno;
			break;
		}
		sum_vals(vals, k->ncpus, &out[v]);
	}
	free(vals);
	if (r == 0)
		memcpy(ret, out, sizeof(out));
	return r;
}

int kern_read_stats(struct kern *k, uint64_t ret[EGRESS_STAT_COUNT])
{
	int fd = bpf_map__fd(k->skel->maps.stats);
	uint64_t *vals, out[EGRESS_STAT_COUNT] = {};
	int r = 0;

	vals = calloc((size_t)k->ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (uint32_t i = 0; i < EGRESS_STAT_COUNT; i++) {
		if (bpf_map_lookup_elem(fd, &i, vals) < 0) {
			r = -errno;
			break;
		}
		for (int c = 0; c < k->ncpus; c++)
			out[i] += vals[c];
	}
	free(vals);
	if (r == 0)
		memcpy(ret, out, sizeof(out));
	return r;
}

int kern_events_fd(struct kern *k)
{
	return ring_buffer__epoll_fd(k->rb);
}

int kern_events_consume(struct kern *k, int (*cb)(const struct egress_event *ev, void *userdata),
			void *userdata)
{
	int r;

	k->ev_cb = cb;
	k->ev_userdata = userdata;
	k->ev_err = 0;
	r = ring_buffer__consume(k->rb);
	k->ev_cb = NULL;
	k->ev_userdata = NULL;
	if (k->ev_err < 0)
		return k->ev_err;
	/* A replaced ring buffer no program writes any more has just been read to the end. */
	for (size_t i = 0; r >= 0 && i < k->ncarry; i++)
		if (k->carry[i].drain == 1 && unlink(k->carry[i].pin) == 0)
			k->carry[i].drain = 2;
	return r;
}

/* ---- counter snapshots ----------------------------------------------------------------------- */

int kern_restore_counters(struct kern *k, const struct egress_counter_key *keys,
			  const struct egress_counter_val *vals, size_t n, size_t stride)
{
	struct egress_counter_val *percpu = calloc((size_t)k->ncpus, sizeof(*percpu));
	int fd = bpf_map__fd(k->skel->maps.counters), ofd = bpf_map__fd(k->skel->maps.overflow);
	int r = 0;

	if (!percpu)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct egress_counter_key *key = (const void *)((const char *)keys + i * stride);
		const struct egress_counter_val *val = (const void *)((const char *)vals + i * stride);

		/* The whole count goes to CPU 0's slot; readers sum over CPUs. */
		memset(percpu, 0, (size_t)k->ncpus * sizeof(*percpu));
		percpu[0] = *val;
		if (key->country == 0xffff && key->cgroup_id == 0 && key->policy_id == 0) {
			uint32_t idx = key->verdict;

			if (idx < EGRESS_VERDICT_COUNT && bpf_map_update_elem(ofd, &idx, percpu, BPF_ANY) < 0)
				r = r ?: -errno;
		} else if (bpf_map_update_elem(fd, key, percpu, BPF_NOEXIST) < 0) {
			r = r ?: -errno; /* -EEXIST: already counted since start; -E2BIG: map full */
		}
	}
	free(percpu);
	return r;
}

/* ---- carrying counts over a layout change ---------------------------------------------------- */

int kern_counters_continue(const struct kern *k)
{
	if (!k)
		return 0;
	for (size_t i = 0; i < k->ncarry; i++)
		if (strcmp(k->carry[i].name, "counters") == 0)
			return 1;
	return k->counters_reused;
}

/* Return once every BPF program that was running when called has finished: an update of a
 * map-in-map makes the kernel wait for an RCU grace period (kernel/bpf/syscall.c,
 * maybe_wait_bpf_programs()), and cgroup programs run inside rcu_read_lock(). */
static int bpf_programs_quiesce(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	uint32_t zero = 0;
	int inner, outer = -1, r;

	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "egress_quiesce", 4, 4, 1, NULL);
	if (inner < 0)
		return -errno;
	opts.inner_map_fd = inner;
	outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "egress_quiesce", 4, 4, 1, &opts);
	r = outer < 0 ? -errno : 0;
	if (r == 0 && bpf_map_update_elem(outer, &zero, &inner, BPF_ANY) < 0)
		r = -errno;
	if (outer >= 0)
		close(outer);
	close(inner);
	return r;
}

/* Run program "carry" on ctx: returns its EGRESS_CARRY_* code, or a negative errno. */
static int carry_run(struct kern *k, const struct egress_carry *ctx)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = ctx, .ctx_size_in = sizeof(*ctx));

	if (bpf_prog_test_run_opts(bpf_program__fd(k->skel->progs.carry), &o) < 0)
		return -errno;
	return (int)o.retval;
}

/* Delete every mark of the replaced map map_id from "carry_marks" (its entries are all removed). */
static void carry_marks_clear(struct kern *k, uint32_t map_id)
{
	int fd = bpf_map__fd(k->skel->maps.carry_marks);
	struct egress_carry_mark *marks = NULL;
	size_t n = 0;

	if (map_keys(fd, sizeof(*marks), (void **)&marks, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (marks[i].src_map_id == map_id)
			(void)bpf_map_delete_elem(fd, &marks[i]);
	free(marks);
}

/* Carry one replaced map c into this version's map of the same name. Per entry: program "carry"
 * adds the counts and sets the entry's mark in one run; then the entry is removed from (hash) or
 * zeroed in (array) the old map, then the mark is deleted. A daemon killed at any point resumes
 * where it stopped: an entry still in the old map but marked was added already and is only
 * removed, so nothing is added twice or lost.
 * Returns the number of entries carried, or a negative errno with one line in errors; entries
 * that could not be converted stay in the old map. */
static int carry_map(struct kern *k, struct kern_carry *c, struct diag *notes, struct diag *errors)
{
	const struct bpf_map *nm = strcmp(c->name, "counters") == 0 ? k->skel->maps.counters :
				   strcmp(c->name, "overflow") == 0 ? k->skel->maps.overflow : k->skel->maps.stats;
	int hash = nm == k->skel->maps.counters;
	uint32_t t = c->info.type;
	int percpu = t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
		     t == BPF_MAP_TYPE_PERCPU_ARRAY;
	int is_hash = t == BPF_MAP_TYPE_HASH || t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_HASH ||
		      t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	size_t ncopies = percpu ? (size_t)k->ncpus : 1, stride = ((size_t)c->info.value_size + 7) / 8 * 8;
	struct carry_plan kp, vp;
	struct btf *old_btf = NULL, *new_btf = bpf_object__btf(k->skel->obj);
	unsigned char *keys = NULL, *vals = NULL, *zeros = NULL;
	int mfd = bpf_map__fd(k->skel->maps.carry_marks);
	size_t nkeys = 0, bad = 0;
	char what[PATH_MAX + 16];
	int carried = 0, overflowed = 0, r;

	if (hash ? !is_hash : (t != BPF_MAP_TYPE_ARRAY && t != BPF_MAP_TYPE_PERCPU_ARRAY)) {
		diag_add(errors, "%s: a map of type %u cannot be carried into \"%s\"; it stays pinned", c->pin,
			 t, c->name);
		return -EINVAL;
	}
	if (c->info.key_size > EGRESS_CARRY_KEY_MAX) {
		diag_add(errors, "%s: keys of %u bytes are longer than a carry mark holds (%d); it stays pinned",
			 c->pin, c->info.key_size, EGRESS_CARRY_KEY_MAX);
		return -E2BIG;
	}
	if (c->info.btf_id) {
		old_btf = btf__load_from_kernel_by_id(c->info.btf_id);
		if (!old_btf) {
			r = -errno;
			diag_add(errors, "%s: reading its BTF (id %u) failed: %s; it stays pinned", c->pin,
				 c->info.btf_id, strerror(-r));
			return r;
		}
	}
	snprintf(what, sizeof(what), "%s key", c->pin);
	if (hash)
		r = carry_plan_build(old_btf, c->info.btf_key_type_id, c->info.key_size, new_btf,
				     bpf_map__btf_key_type_id(nm), sizeof(struct egress_counter_key), what,
				     &kp, notes, errors);
	else
		r = c->info.key_size == sizeof(uint32_t) ? 0 : -EINVAL;
	snprintf(what, sizeof(what), "%s value", c->pin);
	if (r == 0)
		r = carry_plan_build(old_btf, c->info.btf_value_type_id, c->info.value_size, new_btf,
				     bpf_map__btf_value_type_id(nm), bpf_map__value_size(nm), what, &vp, notes,
				     errors);
	btf__free(old_btf);
	if (r < 0) {
		diag_add(errors, "%s: its entries cannot be converted to this version's layout; it stays pinned",
			 c->pin);
		return r;
	}
	if (is_hash) {
		r = map_keys(c->fd, c->info.key_size, (void **)&keys, &nkeys);
	} else {
		nkeys = c->info.max_entries;
		keys = calloc(nkeys ? nkeys : 1, sizeof(uint32_t));
		r = keys ? 0 : -ENOMEM;
		for (uint32_t i = 0; r == 0 && i < nkeys; i++)
			memcpy(keys + i * sizeof(uint32_t), &i, sizeof(i));
	}
	vals = calloc(ncopies, stride);
	zeros = calloc(ncopies, stride);
	if (r == 0 && (!vals || !zeros))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < nkeys; i++) {
		const unsigned char *key = keys + i * c->info.key_size;
		struct egress_carry ctx = { .mark = { .src_map_id = c->info.id,
						      .src_key_size = c->info.key_size } };
		int nonzero = 0, bad_entry = 0, marked;
		uint8_t one;

		if (bpf_map_lookup_elem(c->fd, key, vals) < 0) {
			if (errno != ENOENT)
				r = -errno;
			continue;
		}
		ctx.map = hash ? EGRESS_CARRY_COUNTERS :
			  nm == k->skel->maps.overflow ? EGRESS_CARRY_OVERFLOW : EGRESS_CARRY_STATS;
		memcpy(&ctx.index, key, sizeof(ctx.index) <= c->info.key_size ? sizeof(ctx.index) : 0);
		if (hash && carry_convert(&kp, key, &ctx.key) < 0)
			bad_entry = 1;
		for (size_t cpu = 0; !bad_entry && cpu < ncopies; cpu++) {
			struct egress_counter_val v = {};
			uint64_t u = 0;

			if (carry_convert(&vp, vals + cpu * stride, ctx.map == EGRESS_CARRY_STATS ? (void *)&u :
					  (void *)&v) < 0) {
				bad_entry = 1;
				break;
			}
			if (ctx.map == EGRESS_CARRY_STATS)
				v.connections = u;
			ctx.val.connections += v.connections;
			ctx.val.packets += v.packets;
			ctx.val.bytes += v.bytes;
		}
		nonzero = ctx.val.connections || ctx.val.packets || ctx.val.bytes;
		memcpy(ctx.mark.src_key, key, c->info.key_size);
		/* Marked: added by a run that died before removing the entry. */
		marked = bpf_map_lookup_elem(mfd, &ctx.mark, &one) == 0;
		if (!bad_entry && nonzero && !marked) {
			int rr = carry_run(k, &ctx);

			if (rr == EGRESS_CARRY_RANGE)
				bad_entry = 1; /* an array index or verdict this version does not have */
			else if (rr == EGRESS_CARRY_OVERFLOWED)
				overflowed++;
			else if (rr == EGRESS_CARRY_MARKED)
				r = -ENOSPC; /* "carry_marks" full: stale marks (cleared below) */
			else if (rr < 0)
				r = rr;
		}
		if (bad_entry) {
			bad++;
			continue;
		}
		if (r < 0)
			break;
		if (nonzero)
			carried++;
		if (is_hash ? bpf_map_delete_elem(c->fd, key) < 0 && errno != ENOENT :
			      nonzero && bpf_map_update_elem(c->fd, key, zeros, BPF_ANY) < 0)
			r = -errno;
		else if (bpf_map_delete_elem(mfd, &ctx.mark) < 0 && errno != ENOENT)
			r = -errno;
	}
	if (r == 0 && !bad)
		carry_marks_clear(k, c->info.id); /* of a run that died between removal and unmarking */
	free(keys);
	free(vals);
	free(zeros);
	if (r < 0) {
		diag_add(errors, "%s: carrying its counts over failed after %d entries: %s; the rest stays pinned",
			 c->pin, carried, strerror(-r));
		return r;
	}
	if (bad) {
		diag_add(errors, "%s: %zu entries do not fit this version's layout; they stay pinned there "
			 "(%d carried over)", c->pin, bad, carried);
		return -ERANGE;
	}
	if (overflowed)
		diag_add(notes, "%s: %d of its entries did not fit this version's \"%s\" map (%u rows) and "
			 "went to the overflow row of their verdict (country \"other\")", c->pin, overflowed,
			 c->name, bpf_map__max_entries(nm));
	return carried;
}

/* Unpin every map pin in PinPath that no map of this version owns (a map an earlier version had,
 * or had under another name because its contents changed meaning, egress_abi.h): after the switch
 * no attached program uses it, and the kernel frees it with its last reference. */
static void pins_prune_stale(struct kern *k, struct diag *notes)
{
	DIR *d = opendir(k->pin_path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct bpf_map *m;
		int ours = de->d_name[0] == '.' || strcmp(de->d_name, "links") == 0 ||
			   strstr(de->d_name, "-carry-") != NULL;
		char *p = NULL;

		bpf_object__for_each_map(m, k->skel->obj)
			if (!ours && !bpf_map__is_internal(m) && strcmp(bpf_map__name(m), de->d_name) == 0)
				ours = 1;
		if (ours || asprintf(&p, "%s/%s", k->pin_path, de->d_name) < 0)
			continue;
		if (unlink(p) == 0)
			diag_add(notes, "%s: a map of an earlier version that this version does not use; unpinned", p);
		free(p);
	}
	closedir(d);
}

int kern_carry_over(struct kern *k, struct diag *notes, struct diag *errors)
{
	int total = 0, first = 0, pending = 0, r;

	if (!k->pin_path)
		return 0;
	pins_prune_stale(k, notes);

	for (size_t i = 0; i < k->ncarry; i++)
		pending += strcmp(k->carry[i].name, "events") != 0 && k->carry[i].fd >= 0;
	if (pending) {
		r = bpf_programs_quiesce();
		if (r < 0) {
			diag_add(errors, "PinPath=%s: waiting for the replaced programs to finish failed: %s; "
				 "the replaced maps stay pinned", k->pin_path, strerror(-r));
			return r;
		}
	}
	for (size_t i = 0; i < k->ncarry; i++) {
		struct kern_carry *c = &k->carry[i];

		if (c->fd < 0 || c->drain)
			continue;
		if (strcmp(c->name, "events") == 0) {
			c->drain = 1; /* unpinned once read to the end (kern_events_consume) */
			continue;
		}
		r = carry_map(k, c, notes, errors);
		if (r < 0) {
			first = first ?: r;
			continue;
		}
		total += r;
		diag_add(notes, "%s: %d entries carried over into this version's \"%s\" map", c->pin, r,
			 c->name);
		if (unlink(c->pin) < 0 && errno != ENOENT)
			diag_add(errors, "%s: unpinning the emptied map failed: %s", c->pin, strerror(errno));
		close(c->fd);
		c->fd = -1;
	}
	return first ?: total;
}
