// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lookup_cost - the lookup, reload and data parts of the benchmark suite (bench/run.sh).
 *
 *   lookup_cost lookup BPF_OBJ GEO CGROUP REPS N_COLD N_WARM
 *       Run inside a private network namespace with only lo up (every sendto fails with
 *       ENETUNREACH after the hook ran). Builds egressd's table image of GEO and installs it as
 *       the daemon does (daemon/kern.c), fills one LPM trie per family with the same data
 *       (geo_range_to_prefixes), moves itself into CGROUP (a directory the caller created), and for
 *       REPS interleaved repetitions, per family, per temperature, attaches
 *       count_/range_/lpm_/fixed_sendmsgN (bench/bench.bpf.c) in turn and sends datagrams from one
 *       unconnected UDP socket:
 *         cold  N_COLD random destinations, a 64 MiB buffer read between two sends (caches
 *               evicted);
 *         warm  N_WARM random destinations back to back (working set: the whole table);
 *         hot   N_WARM sends to one destination.
 *       Random destinations: a uniformly chosen span of the data, a uniform address inside it.
 *       Cost per run from bpf_stats (kernel.bpf_stats_enabled must be 1). Prints medians:
 *         lookup FAMILY TEMP count=NS range=NS lpm=NS fixed=NS range_net=NS lpm_net=NS fixed_net=NS
 *       (fixed: the same table in a fixed-size inner map without BPF_F_INNER_MAP, lookups inlined)
 *       and the kernel memory of the maps:  memory range=BYTES lpm4=BYTES lpm6=BYTES fixed=BYTES
 *   lookup_cost reload GEO REPS
 *       Times the daemon's reload steps for GEO: parse (geo_load), compile (table_build +
 *       table_verify), fill (create the mmapable array, copy, freeze), flip (update slot 0 of an
 *       array of maps). Prints medians in seconds: reload parse=S compile=S fill=S flip=S total=S
 *   lookup_cost countries GEO
 *       One IPv4 address inside the largest span of each country in GEO: "CC A.B.C.D" lines.
 *   lookup_cost nft GEO CC...
 *       An nftables ruleset (for `nft -f`) as nftables-geoip builds it: interval maps from every
 *       span of GEO to its country id as packet mark (table inet egressd_bench, maps geo4 and
 *       geo6), an output chain that sets the mark from the destination and drops packets whose mark
 *       is not one of the given countries' ids.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "egress_abi.h"
#include "geo.h"
#include "table.h"

#define EVICT_BYTES (64u << 20)
#define MAX_REPS 64

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

__attribute__((format(printf, 2, 0))) static int libbpf_print(enum libbpf_print_level level,
							      const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int load_geo(const char *path, struct geo_db *db)
{
	struct diag errors = {}, warnings = {};
	int r = geo_load(&path, 1, db, &errors, &warnings);

	if (r < 0) {
		for (size_t i = 0; i < errors.n; i++)
			fprintf(stderr, "%s\n", errors.msgs[i]);
		fprintf(stderr, "lookup_cost: %s: %s\n", path, strerror(-r));
	}
	diag_free(&errors);
	diag_free(&warnings);
	return r;
}

/* The daemon's install (daemon/kern.c kern_install_table): mmapable inner array filled through
 * mmap, frozen. Returns the map fd or -errno. */
static int table_map(const struct table_image *img)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	size_t bytes = img->nwords * sizeof(uint64_t);
	void *mem;
	int fd, r;

	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_geo", 4, 8, (uint32_t)img->nwords, &opts);
	if (fd < 0)
		return -errno;
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	memcpy(mem, img->words, bytes);
	munmap(mem, bytes);
	if (bpf_map_freeze(fd) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* The table in a fixed-size array of BENCH_FIXED_WORDS words without BPF_F_INNER_MAP (bench.bpf.c
 * "geo_gen_fixed"), filled through mmap. Returns the map fd or -errno. */
#define BENCH_FIXED_WORDS (1U << 21)
static int table_map_fixed(const struct table_image *img)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
	size_t bytes = img->nwords * sizeof(uint64_t), len = (size_t)BENCH_FIXED_WORDS * 8;
	void *mem;
	int fd, r;

	if (img->nwords > BENCH_FIXED_WORDS)
		return -E2BIG;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_geo_fixed", 4, 8, BENCH_FIXED_WORDS, &opts);
	if (fd < 0)
		return -errno;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	memcpy(mem, img->words, bytes);
	munmap(mem, len);
	return fd;
}

/* Kernel memory of a map: the "memlock:" line of its fdinfo. */
static unsigned long long map_memlock(int fd)
{
	char path[64], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

struct lpm_fill {
	int fd;
	int family;
	uint32_t country;
	uint64_t n;
};

static int lpm_add(u128 start, unsigned plen, void *ctx)
{
	struct lpm_fill *f = ctx;
	unsigned char key[4 + 16] = {};
	unsigned bytes = f->family == 4 ? 4 : 16;

	memcpy(key, &plen, 4);
	for (unsigned i = 0; i < bytes; i++)
		key[4 + i] = (unsigned char)(start >> (8 * (bytes - 1 - i)));
	if (bpf_map_update_elem(f->fd, key, &f->country, BPF_ANY) < 0)
		return -errno;
	f->n++;
	return 0;
}

static int lpm_fill(int fd, int family, const struct geo_span *s, size_t n, uint64_t *ret_n)
{
	struct lpm_fill f = { .fd = fd, .family = family };

	for (size_t i = 0; i < n; i++) {
		int64_t r;

		f.country = s[i].country;
		r = geo_range_to_prefixes(s[i].start, s[i].end, family == 4 ? 32 : 128, lpm_add,
					  &f);
		if (r < 0)
			return (int)r;
	}
	*ret_n = f.n;
	return 0;
}

/* A uniform address inside a uniformly chosen span. */
static u128 random_addr(const struct geo_span *s, size_t n, uint64_t *seed)
{
	const struct geo_span *sp = &s[splitmix64(seed) % n];
	u128 size = sp->end - sp->start + 1; /* 0: the whole space */
	u128 rnd = (u128)splitmix64(seed) << 64 | splitmix64(seed);

	return sp->start + (size ? rnd % size : rnd);
}

static int prog_stats(int fd, uint64_t *ret_ns, uint64_t *ret_cnt)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return -errno;
	*ret_ns = info.run_time_ns;
	*ret_cnt = info.run_cnt;
	return 0;
}

static volatile uint64_t evict_sink;

static void evict(const unsigned char *buf)
{
	uint64_t s = 0;

	for (size_t i = 0; i < EVICT_BYTES; i += 64)
		s += buf[i];
	evict_sink += s;
}

/* ns per run of prog (attached to cgroup cg_fd for the duration) over n sends. */
static int measure(int prog_fd, int cg_fd, enum bpf_attach_type type, int sock, int family,
		   const u128 *addrs, size_t n, int cold, const unsigned char *evbuf, double *ret)
{
	uint64_t ns0 = 0, c0 = 0, ns1 = 0, c1 = 0;
	char byte = 0;
	int r;

	if (bpf_prog_attach(prog_fd, cg_fd, type, 0) < 0)
		return -errno;
	r = prog_stats(prog_fd, &ns0, &c0);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(53) };
		struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(53) };

		if (cold)
			evict(evbuf);
		if (family == 4) {
			s4.sin_addr.s_addr = htonl((uint32_t)addrs[i]);
			(void)!sendto(sock, &byte, 1, 0, (struct sockaddr *)&s4, sizeof(s4));
		} else {
			for (int k = 0; k < 16; k++)
				s6.sin6_addr.s6_addr[k] = (uint8_t)(addrs[i] >> (120 - 8 * k));
			(void)!sendto(sock, &byte, 1, 0, (struct sockaddr *)&s6, sizeof(s6));
		}
	}
	if (r == 0)
		r = prog_stats(prog_fd, &ns1, &c1);
	if (bpf_prog_detach2(prog_fd, cg_fd, type) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		return r;
	if (c1 - c0 != n) {
		fprintf(stderr, "lookup_cost: %llu runs for %zu sends (bpf_stats_enabled=1?)\n",
			(unsigned long long)(c1 - c0), n);
		return -EIO;
	}
	if (ns1 == ns0) {
		fprintf(stderr,
			"lookup_cost: run_time_ns did not move: kernel.bpf_stats_enabled=0?\n");
		return -EIO;
	}
	*ret = (double)(ns1 - ns0) / (double)n;
	return 0;
}

static int cmd_lookup(int argc, char **argv)
{
	const char *obj_path = argv[2], *geo = argv[3], *cg = argv[4];
	int reps = atoi(argv[5]);
	size_t n_cold = strtoul(argv[6], NULL, 10), n_warm = strtoul(argv[7], NULL, 10);
	static const char *const temps[] = { "cold", "warm", "hot" };
	static const char *const kinds[] = { "count", "range", "lpm", "fixed" };
	/* res[family 0/1][temp][kind][rep] */
	static double res[2][3][4][MAX_REPS];
	struct geo_db db = {};
	struct table_image img = {};
	struct bpf_object *obj = NULL;
	int progs[2][4], tbl_fd = -1, fixed_fd = -1, cg_fd = -1, socks[2] = { -1, -1 }, ret = 1, r;
	int lpm_fd[2];
	u128 *addrs[2] = {}, *hot = NULL;
	unsigned char *evbuf = NULL;
	uint64_t seed = 42, nlpm[2];
	uint32_t zero = 0;
	char procs[4096];
	FILE *f;

	if (reps < 1 || reps > MAX_REPS || n_cold < 1 || n_warm < n_cold) {
		fprintf(stderr, "lookup_cost: bad REPS/N_COLD/N_WARM\n");
		return 2;
	}
	if (load_geo(geo, &db) < 0)
		return 1;
	r = table_build(&db, 1, &img);
	if (r < 0 || table_verify(&img, NULL) < 0) {
		fprintf(stderr, "lookup_cost: table_build: %s\n", strerror(r < 0 ? -r : EINVAL));
		goto out;
	}
	obj = bpf_object__open_file(obj_path, NULL);
	if (!obj || bpf_object__load(obj) < 0) {
		fprintf(stderr, "lookup_cost: load %s failed\n", obj_path);
		goto out;
	}
	for (int fam = 0; fam < 2; fam++)
		for (int k = 0; k < 4; k++) {
			char name[32];
			struct bpf_program *p;

			snprintf(name, sizeof(name), "%s_sendmsg%d", kinds[k], fam ? 6 : 4);
			p = bpf_object__find_program_by_name(obj, name);
			progs[fam][k] = p ? bpf_program__fd(p) : -1;
			if (progs[fam][k] < 0) {
				fprintf(stderr, "lookup_cost: no program %s\n", name);
				goto out;
			}
		}
	lpm_fd[0] = bpf_object__find_map_fd_by_name(obj, "lpm4");
	lpm_fd[1] = bpf_object__find_map_fd_by_name(obj, "lpm6");
	tbl_fd = table_map(&img);
	if (tbl_fd < 0 || bpf_map_update_elem(bpf_object__find_map_fd_by_name(obj, "geo_gen"),
					      &zero, &tbl_fd, 0) < 0) {
		fprintf(stderr, "lookup_cost: install table: %s\n", strerror(errno));
		goto out;
	}
	fixed_fd = table_map_fixed(&img);
	if (fixed_fd < 0 ||
	    bpf_map_update_elem(bpf_object__find_map_fd_by_name(obj, "geo_gen_fixed"), &zero,
				&fixed_fd, 0) < 0) {
		fprintf(stderr, "lookup_cost: install fixed-size table: %s\n", strerror(errno));
		goto out;
	}
	if (lpm_fill(lpm_fd[0], 4, db.v4, db.n4, &nlpm[0]) < 0 ||
	    lpm_fill(lpm_fd[1], 6, db.v6, db.n6, &nlpm[1]) < 0) {
		fprintf(stderr, "lookup_cost: fill LPM tries: %s\n", strerror(errno));
		goto out;
	}
	printf("data v4_spans=%zu v6_spans=%zu v4_ranges=%llu v6_ranges=%llu lpm4_prefixes=%llu "
	       "lpm6_prefixes=%llu\n",
	       db.n4, db.n6, (unsigned long long)img.n4, (unsigned long long)img.n6,
	       (unsigned long long)nlpm[0], (unsigned long long)nlpm[1]);
	printf("memory range=%llu lpm4=%llu lpm6=%llu fixed=%llu\n", map_memlock(tbl_fd),
	       map_memlock(lpm_fd[0]), map_memlock(lpm_fd[1]), map_memlock(fixed_fd));

	for (int fam = 0; fam < 2; fam++) {
		addrs[fam] = malloc(n_warm * sizeof(u128));
		if (!addrs[fam])
			goto out;
		for (size_t i = 0; i < n_warm; i++)
			addrs[fam][i] = fam ? random_addr(db.v6, db.n6, &seed)
					    : random_addr(db.v4, db.n4, &seed);
	}
	evbuf = malloc(EVICT_BYTES);
	if (!evbuf)
		goto out;
	memset(evbuf, 1, EVICT_BYTES);

	/* this process into the benchmark cgroup */
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	f = fopen(procs, "we");
	if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f) != 0) {
		fprintf(stderr, "lookup_cost: join %s: %s\n", procs, strerror(errno));
		goto out;
	}
	cg_fd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	socks[0] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socks[1] = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (cg_fd < 0 || socks[0] < 0 || socks[1] < 0) {
		perror("lookup_cost: open");
		goto out;
	}

	/* hot: one destination (that of the repetition), n_warm times */
	hot = malloc(n_warm * sizeof(u128));
	if (!hot)
		goto out;
	/* interleaved: repetition, family, temperature, program (innermost) */
	for (int m = 0; m < reps * 2 * 3 * 4; m++) {
		int rep = m / 24, fam = m / 12 % 2, t = m / 4 % 3, k = m % 4;
		size_t n = t == 0 ? n_cold : n_warm;
		const u128 *a = addrs[fam] + (size_t)rep * 7 % (n_warm - n + 1);
		enum bpf_attach_type type = fam ? BPF_CGROUP_UDP6_SENDMSG : BPF_CGROUP_UDP4_SENDMSG;

		if (t == 2) {
			for (size_t i = 0; i < n; i++)
				hot[i] = addrs[fam][rep];
			a = hot;
		}
		r = measure(progs[fam][k], cg_fd, type, socks[fam], fam ? 6 : 4, a, n, t == 0,
			    evbuf, &res[fam][t][k][rep]);
		if (r < 0) {
			fprintf(stderr, "lookup_cost: measure: %s\n", strerror(-r));
			goto out;
		}
	}

	for (int fam = 0; fam < 2; fam++)
		for (int t = 0; t < 3; t++) {
			double m[4], net[3][MAX_REPS];

			for (int rep = 0; rep < reps; rep++)
				for (int k = 1; k < 4; k++)
					net[k - 1][rep] = res[fam][t][k][rep] - res[fam][t][0][rep];
			for (int k = 0; k < 4; k++)
				m[k] = median(res[fam][t][k], reps);
			printf("lookup %d %s count=%.1f range=%.1f lpm=%.1f fixed=%.1f "
			       "range_net=%.1f lpm_net=%.1f fixed_net=%.1f\n",
			       fam ? 6 : 4, temps[t], m[0], m[1], m[2], m[3], median(net[0], reps),
			       median(net[1], reps), median(net[2], reps));
		}
	ret = 0;
out:
	free(evbuf);
	free(hot);
	free(addrs[0]);
	free(addrs[1]);
	for (int i = 0; i < 2; i++)
		if (socks[i] >= 0)
			close(socks[i]);
	if (cg_fd >= 0)
		close(cg_fd);
	if (tbl_fd >= 0)
		close(tbl_fd);
	if (fixed_fd >= 0)
		close(fixed_fd);
	bpf_object__close(obj);
	table_image_free(&img);
	geo_db_free(&db);
	return ret;
}

static int cmd_reload(int argc, char **argv)
{
	const char *geo = argv[2];
	int reps = atoi(argv[3]), ret = 1;
	double ph[5][MAX_REPS];

	if (reps < 1 || reps > MAX_REPS)
		return 2;
	for (int rep = 0; rep < reps; rep++) {
		LIBBPF_OPTS(bpf_map_create_opts, oopts);
		struct geo_db db = {};
		struct table_image img = {};
		double t0, t1, tc, t2, t3, t4;
		uint32_t zero = 0;
		int tmpl, outer, fd, r;

		t0 = now_s();
		if (load_geo(geo, &db) < 0)
			return 1;
		t1 = now_s();
		r = table_build(&db, (uint64_t)rep + 1, &img);
		if (r == 0)
			r = table_verify(&img, NULL);
		tc = now_s();
		if (r < 0) {
			fprintf(stderr, "lookup_cost: table_build: %s\n", strerror(-r));
			geo_db_free(&db);
			return 1;
		}
		/* the outer map, as in bpf/egress.bpf.c (template: a one-word inner array) */
		{
			LIBBPF_OPTS(bpf_map_create_opts, topts,
				    .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);

			tmpl = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_tmpl", 4, 8, 1, &topts);
		}
		oopts.inner_map_fd = tmpl;
		outer = tmpl < 0 ? -1 :
				   bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "bench_gen", 4, 4, 1,
						  &oopts);
		t2 = now_s(); /* creating the outer map is not part of a reload */
		fd = table_map(&img);
		t3 = now_s();
		r = fd >= 0 && outer >= 0 ? bpf_map_update_elem(outer, &zero, &fd, 0) : -1;
		t4 = now_s();
		if (r < 0 || fd < 0)
			fprintf(stderr, "lookup_cost: fill/flip: %s\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		if (outer >= 0)
			close(outer);
		if (tmpl >= 0)
			close(tmpl);
		table_image_free(&img);
		geo_db_free(&db);
		if (r < 0 || fd < 0)
			return 1;
		ph[0][rep] = t1 - t0;
		ph[1][rep] = tc - t1;
		ph[2][rep] = t3 - t2;
		ph[3][rep] = t4 - t3;
		ph[4][rep] = (tc - t0) + (t4 - t2);
	}
	printf("reload parse=%.3f compile=%.3f fill=%.3f flip=%.6f total=%.3f\n",
	       median(ph[0], reps), median(ph[1], reps), median(ph[2], reps), median(ph[3], reps),
	       median(ph[4], reps));
	ret = 0;
	return ret;
}

static int cmd_countries(int argc, char **argv)
{
	struct geo_db db = {};
	size_t best[EGRESS_COUNTRY_MAX] = {};
	int have[EGRESS_COUNTRY_MAX] = {};

	if (load_geo(argv[2], &db) < 0)
		return 1;
	for (size_t i = 0; i < db.n4; i++) {
		uint16_t c = db.v4[i].country;

		if (c >= EGRESS_COUNTRY_MAX)
			continue;
		if (!have[c] || db.v4[i].end - db.v4[i].start >
					db.v4[best[c]].end - db.v4[best[c]].start) {
			best[c] = i;
			have[c] = 1;
		}
	}
	for (uint16_t c = 1; c < EGRESS_COUNTRY_MAX; c++) {
		char code[8];
		struct in_addr a;

		if (!have[c])
			continue;
		/* the middle of the span: never a network or broadcast address */
		a.s_addr = htonl((uint32_t)(db.v4[best[c]].start +
					    (db.v4[best[c]].end - db.v4[best[c]].start) / 2));
		printf("%s %s\n", geo_country_code(c, code), inet_ntoa(a));
	}
	geo_db_free(&db);
	return 0;
}

static void nft_map(const char *name, const char *type, int family, const struct geo_span *s,
		    size_t n)
{
	char a[46], b[46];

	printf("\tmap %s {\n\t\ttype %s : mark\n\t\tflags interval\n\t\telements = {\n", name,
	       type);
	for (size_t i = 0; i < n; i++) {
		geo_format_addr(family, s[i].start, a);
		if (s[i].start == s[i].end)
			printf("\t\t\t%s : %u,\n", a, s[i].country);
		else
			printf("\t\t\t%s-%s : %u,\n", a, geo_format_addr(family, s[i].end, b),
			       s[i].country);
	}
	printf("\t\t}\n\t}\n");
}

static int cmd_nft(int argc, char **argv)
{
	struct geo_db db = {};

	if (load_geo(argv[2], &db) < 0)
		return 1;
	printf("table inet egressd_bench {\n");
	nft_map("geo4", "ipv4_addr", 4, db.v4, db.n4);
	nft_map("geo6", "ipv6_addr", 6, db.v6, db.n6);
	printf("\tset allowed {\n\t\ttype mark\n\t\telements = {");
	for (int i = 3; i < argc; i++) {
		int id = geo_country_id(argv[i], strlen(argv[i]));

		if (id <= 0) {
			fprintf(stderr, "lookup_cost: bad country %s\n", argv[i]);
			geo_db_free(&db);
			return 1;
		}
		printf("%s%d", i > 3 ? ", " : " ", id);
	}
	printf(" }\n\t}\n");
	printf("\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n"
	       "\t\tmeta mark set ip daddr map @geo4\n"
	       "\t\tmeta mark set ip6 daddr map @geo6\n"
	       "\t\tmeta mark != @allowed drop\n\t}\n}\n");
	geo_db_free(&db);
	return 0;
}

int main(int argc, char **argv)
{
	libbpf_set_print(libbpf_print);
	if (argc == 8 && !strcmp(argv[1], "lookup"))
		return cmd_lookup(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "reload"))
		return cmd_reload(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "countries"))
		return cmd_countries(argc, argv);
	if (argc >= 4 && !strcmp(argv[1], "nft"))
		return cmd_nft(argc, argv);
	fprintf(stderr, "usage: lookup_cost lookup BPF_OBJ GEO CGROUP REPS N_COLD N_WARM\n"
			"       lookup_cost reload GEO REPS\n"
			"       lookup_cost countries GEO\n"
			"       lookup_cost nft GEO CC...\n");
	return 2;
}
