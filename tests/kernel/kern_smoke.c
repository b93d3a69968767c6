/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kern_smoke - end-to-end check of daemon/kern.c and bpf/egress.bpf.c without the daemon.
 *
 * Creates its own cgroups under the cgroup v2 mount
 * (egressd-smoke-PID-RANDOM/{enf,enf/nested,mon}), loads the programs, installs a hand-made
 * GeoIP table image (egress_abi.h layout), pushes three policies, attaches, and runs every case
 * in a child that joins one of the cgroups and a fresh network namespace with only lo up. Public
 * destinations are documentation prefixes; with no route an allowed connect fails with
 * ENETUNREACH after the hook, a denied one with EPERM from the hook; no packet leaves the
 * namespace. Each case checks the exact results, the exact counter delta and the deny events.
 * Cases: tests/data/cases/sockets-dual-stack.md, sockets-udp.md, plus local destinations, CIDR
 * exceptions, unknown country, monitor mode, nested policies, table swap, missing table, missing
 * policy, cgroup re-creation, refusal of the cgroup root.
 *
 * Exit 0 all passed, 1 a failure, 77 (SKIP) when not root or no cgroup v2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "diag.h"
#include "egress_abi.h"
#include "kern.h"
#include "tcheck.h"
#include "table.h"

#define CC_DE ((('D' - 'A') * 26) + ('E' - 'A') + 1)
#define CC_US ((('U' - 'A') * 26) + ('S' - 'A') + 1)
#define CC_FR ((('F' - 'A') * 26) + ('R' - 'A') + 1)

/* enforce: DE, AllowCIDR 198.51.100.128/25, DenyCIDR 192.0.2.128/25, Unknown=deny */
#define POL_E 0x1001u
#define POL_M 0x1002u /* monitor: same */
#define POL_N 0x1003u /* nested, enforce: US, Unknown=allow */

#define A4 "192.0.2.10" /* DE */
#define B4 "198.51.100.10" /* US */
#define A6 "2001:db8:1::10" /* DE */
#define B6 "2001:db8:2::10" /* US */

static char *cgmount;
static char cg_top[512], cg_enf[600], cg_nest[700], cg_mon[600];
static char rel_enf[300], rel_nest[300], rel_mon[300];
static uint64_t id_enf, id_nest, id_mon;

static void cleanup(void)
{
	/* deepest first; EBUSY only if a child is still alive */
	if (cg_nest[0])
		(void)rmdir(cg_nest);
	if (cg_enf[0])
		(void)rmdir(cg_enf);
	if (cg_mon[0])
		(void)rmdir(cg_mon);
	if (cg_top[0])
		(void)rmdir(cg_top);
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}


/* ---- a hand-made table image (egress_abi.h layout) ------------------------------------------ */

struct r4 {
	uint32_t start;
	uint16_t cc;
};
struct r6 {
	uint64_t hi, lo;
	uint16_t cc;
};

static void idx_set(uint64_t *w, size_t off, uint32_t e, uint32_t v)
{
	uint64_t *p = &w[off + e / 2];

	if (e & 1)
		*p = (*p & 0xffffffffULL) | ((uint64_t)v << 32);
	else
		*p = (*p & ~0xffffffffULL) | v;
}

static int build_image(const struct r4 *r4, size_t n4, const struct r6 *r6, size_t n6, uint64_t gen,
		       struct table_image *img)
{
	size_t off_v6_idx = EGRESS_TABLE_V4_RNG + n4,
	       off_v6_rng = off_v6_idx + EGRESS_TABLE_IDX_WORDS;
	size_t off_v6_cc = off_v6_rng + 2 * n6, nwords = off_v6_cc + (n6 + 3) / 4;
	uint64_t *w = calloc(nwords, sizeof(*w));
	size_t i;

	if (!w)
		return -ENOMEM;
	w[0] = EGRESS_TABLE_MAGIC;
	w[1] = gen;
	w[2] = n4;
	w[3] = n6;
	w[4] = off_v6_idx;
	w[5] = off_v6_rng;
	w[6] = off_v6_cc;
	i = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		while (i + 1 < n4 && r4[i + 1].start <= (h << 16))
			i++;
		idx_set(w, EGRESS_TABLE_V4_IDX, h, (uint32_t)i);
	}
	idx_set(w, EGRESS_TABLE_V4_IDX, 65536, (uint32_t)(n4 - 1));
	for (i = 0; i < n4; i++)
		w[EGRESS_TABLE_V4_RNG + i] = ((uint64_t)r4[i].start << 32) | r4[i].cc;
	i = 0;
	for (uint64_t h = 0; h < 65536; h++) {
		while (i + 1 < n6 && r6[i + 1].hi <= (h << 48) &&
		       (r6[i + 1].hi < (h << 48) || r6[i + 1].lo == 0))
			i++;
		idx_set(w, off_v6_idx, (uint32_t)h, (uint32_t)i);
	}
	idx_set(w, off_v6_idx, 65536, (uint32_t)(n6 - 1));
	for (i = 0; i < n6; i++) {
		w[off_v6_rng + 2 * i] = r6[i].hi;
		w[off_v6_rng + 2 * i + 1] = r6[i].lo;
		w[off_v6_cc + i / 4] |= (uint64_t)r6[i].cc << (16 * (i % 4));
	}
	img->words = w;
	img->nwords = nwords;
	img->n4 = n4;
	img->n6 = n6;
	return 0;
}

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return ntohl(a.s_addr);
}

/* us_country: country of 198.51.100.0/24 (US normally; DE in the swapped generation). */
static int make_table(uint16_t us_country, uint64_t gen, struct table_image *img)
{
	const struct r4 r4[] = {
		{ 0, 0 },
		{ ip4("192.0.2.0"), CC_DE },
		{ ip4("192.0.3.0"), 0 },
		{ ip4("198.51.100.0"), us_country },
		{ ip4("198.51.101.0"), 0 },
		{ ip4("203.0.113.0"), CC_FR },
		{ ip4("203.0.114.0"), 0 },
	};
	const struct r6 r6[] = {
		{ 0, 0, 0 },
		{ 0x20010db800010000ULL, 0, CC_DE },
		{ 0x20010db800020000ULL, 0, CC_US },
		{ 0x20010db800030000ULL, 0, 0 },
	};

	return build_image(r4, sizeof(r4) / sizeof(r4[0]), r6, sizeof(r6) / sizeof(r6[0]), gen,
			   img);
}

/* ---- policies ------------------------------------------------------------------------------- */

static struct policy_cidr cidrs[2];

static void set_country(struct egress_policy *p, unsigned cc)
{
	p->allowed[cc / 64] |= 1ULL << (cc % 64);
}

static int sync_policies(struct kern *k, int with_e, int with_n)
{
	struct kern_policy p[3];
	size_t n = 0;

	memset(p, 0, sizeof(p));
	memset(cidrs, 0, sizeof(cidrs));
	cidrs[0] = (struct policy_cidr){ .family = 4, .plen = 25, .action = EGRESS_CIDR_ALLOW };
	inet_pton(AF_INET, "198.51.100.128", cidrs[0].addr);
	cidrs[1] = (struct policy_cidr){ .family = 4, .plen = 25, .action = EGRESS_CIDR_DENY };
	inet_pton(AF_INET, "192.0.2.128", cidrs[1].addr);

	if (with_e) {
		p[n].bpf = (struct egress_policy){ .policy_id = POL_E,
						   .mode = EGRESS_MODE_ENFORCE,
						   .unknown = EGRESS_UNKNOWN_DENY };
		set_country(&p[n].bpf, CC_DE);
		p[n].cidrs = cidrs;
		p[n].ncidrs = 2;
		p[n].cgroup_ids = &id_enf;
		p[n].ncgroup_ids = 1;
		p[n].max_level = (uint32_t)cgroup_level_of(rel_enf);
		n++;
	}
	p[n].bpf = (struct egress_policy){ .policy_id = POL_M,
					   .mode = EGRESS_MODE_MONITOR,
					   .unknown = EGRESS_UNKNOWN_DENY };
	set_country(&p[n].bpf, CC_DE);
	p[n].cidrs = cidrs;
	p[n].ncidrs = 2;
	p[n].cgroup_ids = &id_mon;
	p[n].ncgroup_ids = 1;
	p[n].max_level = (uint32_t)cgroup_level_of(rel_mon);
	n++;
	if (with_n) {
		p[n].bpf = (struct egress_policy){ .policy_id = POL_N,
						   .mode = EGRESS_MODE_ENFORCE,
						   .unknown = EGRESS_UNKNOWN_ALLOW };
		set_country(&p[n].bpf, CC_US);
		p[n].cgroup_ids = &id_nest;
		p[n].ncgroup_ids = 1;
		p[n].max_level = (uint32_t)cgroup_level_of(rel_nest);
		n++;
	}
	return kern_sync_policies(k, p, n);
}

/* ---- counters and events -------------------------------------------------------------------- */

#define MAX_ROWS 256

struct row {
	struct egress_counter_key key;
	uint64_t connections;
};

struct snapshot {
	struct row v[MAX_ROWS];
	size_t n;
};

static int snap_cb(const struct egress_counter_key *key, const struct egress_counter_val *sum,
		   void *userdata)
{
	struct snapshot *s = userdata;

	if (s->n == MAX_ROWS)
		return -E2BIG;
	s->v[s->n].key = *key;
	s->v[s->n].connections = sum->connections;
	s->n++;
	return 0;
}

static uint64_t snap_get(const struct snapshot *s, const struct egress_counter_key *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(&s->v[i].key, key, sizeof(*key)) == 0)
			return s->v[i].connections;
	return 0;
}

#define MAX_EVENTS 64

struct evlist {
	struct egress_event v[MAX_EVENTS];
	size_t n;
};

static int ev_cb(const struct egress_event *ev, void *userdata)
{
	struct evlist *l = userdata;

	if (l->n < MAX_EVENTS)
		l->v[l->n++] = *ev;
	return 0;
}

/* ---- cases ---------------------------------------------------------------------------------- */

enum op {
	TCP4_CONNECT,
	TCP6_CONNECT, /* V6ONLY=0 */
	UDP4_CONNECT,
	UDP4_SENDTO,
	UDP6_SENDTO,
	UDP6_SENDTO_SIN, /* AF_INET6 socket, struct sockaddr_in */
	UDP6_CONNECT_SIN,
	UDP4_CONNECT_SEND100, /* results: connect, number of failed sends */
	UDP4_CONNECT_THEN_SENDTO, /* addr, then addr2 */
	UDP4_SENDMMSG_ABA, /* addr, addr2, addr: result = return value */
};

struct expect_count {
	uint16_t country;
	uint8_t proto;
	uint8_t verdict;
	uint64_t n;
};

struct kcase {
	const char *name;
	int cg; /* 0 enf, 1 nested, 2 mon */
	enum op op;
	const char *addr, *addr2;
	int port;
	int sink; /* add addr to lo and bind a UDP socket on it (UDP cases that need a route) */
	int want[2]; /* errno (0 = ok) per result; for SENDMMSG want[0] = return value */
	uint32_t policy; /* policy id in the counter keys */
	struct expect_count counts[3];
	int events; /* number of deny/would_deny events */
	uint8_t ev_hook; /* hook of the first event (0 = do not check) */
	uint8_t ev_family; /* family of the first event */
};

static void lo_setup(const char *sink_addr)
{
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		_exit(90);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		_exit(91);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		_exit(92);
	if (sink_addr) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo:1");
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, sink_addr, &sin->sin_addr);
		if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
			_exit(93);
		inet_pton(AF_INET, "255.255.255.255", &sin->sin_addr);
		if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
			_exit(94);
	}
	close(fd);
}

static void fill4(struct sockaddr_in *s, const char *a, int port)
{
	memset(s, 0, sizeof(*s));
	s->sin_family = AF_INET;
	s->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, a, &s->sin_addr);
}

static void fill6(struct sockaddr_in6 *s, const char *a, int port)
{
	memset(s, 0, sizeof(*s));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons((uint16_t)port);
	inet_pton(AF_INET6, a, &s->sin6_addr);
}

static int errno_of(long r)
{
	return r < 0 ? errno : 0;
}

/* Blocking-free connect: EINPROGRESS waits for the outcome (ECONNREFUSED on lo). */
static int conn(int fd, const void *sa, socklen_t len)
{
	fd_set w;
	struct timeval tv = { .tv_sec = 1 };
	int err = 0;
	socklen_t el = sizeof(err);

	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno;
	FD_ZERO(&w);
	FD_SET(fd, &w);
	if (select(fd + 1, NULL, &w, NULL, &tv) <= 0)
		return 0;
	(void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	return err;
}

static void child_ops(const struct kcase *c, int out[2])
{
	struct sockaddr_in s4, s4b;
	struct sockaddr_in6 s6;
	static const char msg[] = "kern_smoke";
	int fd, zero = 0;

	out[0] = out[1] = -1;
	switch (c->op) {
	case TCP4_CONNECT:
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		fill4(&s4, c->addr, c->port);
		out[0] = conn(fd, &s4, sizeof(s4));
		break;
	case TCP6_CONNECT:
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		fill6(&s6, c->addr, c->port);
		out[0] = conn(fd, &s6, sizeof(s6));
		break;
	case UDP4_CONNECT:
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		fill4(&s4, c->addr, c->port);
		out[0] = errno_of(connect(fd, (struct sockaddr *)&s4, sizeof(s4)));
		break;
	case UDP4_SENDTO:
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		fill4(&s4, c->addr, c->port);
		out[0] = errno_of(
			sendto(fd, msg, sizeof(msg), 0, (struct sockaddr *)&s4, sizeof(s4)));
		break;
	case UDP6_SENDTO:
		fd = socket(AF_INET6, SOCK_DGRAM, 0);
		fill6(&s6, c->addr, c->port);
		out[0] = errno_of(
			sendto(fd, msg, sizeof(msg), 0, (struct sockaddr *)&s6, sizeof(s6)));
		break;
	case UDP6_SENDTO_SIN:
		fd = socket(AF_INET6, SOCK_DGRAM, 0);
		fill4(&s4, c->addr, c->port);
		out[0] = errno_of(
			sendto(fd, msg, sizeof(msg), 0, (struct sockaddr *)&s4, sizeof(s4)));
		break;
	case UDP6_CONNECT_SIN:
		fd = socket(AF_INET6, SOCK_DGRAM, 0);
		fill4(&s4, c->addr, c->port);
		out[0] = errno_of(connect(fd, (struct sockaddr *)&s4, sizeof(s4)));
		break;
	case UDP4_CONNECT_SEND100:
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		fill4(&s4, c->addr, c->port);
		out[0] = errno_of(connect(fd, (struct sockaddr *)&s4, sizeof(s4)));
		out[1] = 0;
		for (int i = 0; i < 100 && out[0] == 0; i++)
			out[1] += send(fd, msg, sizeof(msg), 0) < 0;
		break;
	case UDP4_CONNECT_THEN_SENDTO:
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		fill4(&s4, c->addr, c->port);
		fill4(&s4b, c->addr2, c->port);
		out[0] = errno_of(connect(fd, (struct sockaddr *)&s4, sizeof(s4)));
		out[1] = errno_of(
			sendto(fd, msg, sizeof(msg), 0, (struct sockaddr *)&s4b, sizeof(s4b)));
		break;
	case UDP4_SENDMMSG_ABA: {
		struct sockaddr_in to[3];
		struct iovec iov[3];
		struct mmsghdr m[3];

		memset(m, 0, sizeof(m));
		fill4(&to[0], c->addr, c->port);
		fill4(&to[1], c->addr2, c->port);
		fill4(&to[2], c->addr, c->port);
		for (int i = 0; i < 3; i++) {
			iov[i] = (struct iovec){ .iov_base = (void *)msg, .iov_len = sizeof(msg) };
			m[i].msg_hdr.msg_name = &to[i];
			m[i].msg_hdr.msg_namelen = sizeof(to[i]);
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
		}
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		out[0] = sendmmsg(fd, m, 3, 0);
		if (out[0] < 0)
			out[0] = -errno;
		break;
	}
	}
}

/* Fork a child that joins the cgroup, a new network namespace, and runs the case. */
static int run_child(const char *cgdir, const struct kcase *c, int out[2])
{
	int p[2];
	pid_t pid;
	int st;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char path[800];
		int fd, res[2];

		close(p[0]);
		snprintf(path, sizeof(path), "%s/cgroup.procs", cgdir);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			_exit(80);
		close(fd);
		if (unshare(CLONE_NEWNET) < 0)
			_exit(81);
		lo_setup(c->sink ? c->addr : NULL);
		if (c->sink) {
			struct sockaddr_in s;
			int sfd = socket(AF_INET, SOCK_DGRAM, 0), big = 1 << 22;

			fill4(&s, c->addr, c->port);
			(void)setsockopt(sfd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
			if (bind(sfd, (struct sockaddr *)&s, sizeof(s)) < 0)
				_exit(82);
		}
		child_ops(c, res);
		if (write(p[1], res, sizeof(res)) != sizeof(res))
			_exit(83);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], out, 2 * sizeof(int)) != 2 * sizeof(int))
		out[0] = out[1] = -999;
	close(p[0]);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -ECHILD;
	return pid;
}

static const char *cg_path(int cg)
{
	return cg == 0 ? cg_enf : cg == 1 ? cg_nest : cg_mon;
}

static uint64_t cg_id(int cg)
{
	return cg == 0 ? id_enf : cg == 1 ? id_nest : id_mon;
}

static void run_case(struct kern *k, const struct kcase *c)
{
	static struct snapshot before, after;
	struct evlist ev = {};
	int out[2] = { -1, -1 }, pid;
	uint64_t expect_total = 0, got_total = 0;

	before.n = after.n = 0;
	(void)kern_events_consume(k, ev_cb, &ev); /* drain */
	ev.n = 0;
	if (kern_read_counters(k, snap_cb, &before) < 0) {
		check(0, "%s: reading counters failed", c->name);
		return;
	}
	pid = run_child(cg_path(c->cg), c, out);
	if (pid < 0) {
		check(0, "%s: child failed: %s", c->name, strerror(-pid));
		return;
	}
	check(out[0] == c->want[0], "%s: result 0: got %d (%s), want %d (%s)", c->name, out[0],
	      out[0] > 0 ? strerrorname_np(out[0]) : "", c->want[0],
	      c->want[0] > 0 ? strerrorname_np(c->want[0]) : "");
	if (c->op == UDP4_CONNECT_SEND100 || c->op == UDP4_CONNECT_THEN_SENDTO)
		check(out[1] == c->want[1], "%s: result 1: got %d, want %d", c->name, out[1],
		      c->want[1]);
	if (kern_read_counters(k, snap_cb, &after) < 0) {
		check(0, "%s: reading counters failed", c->name);
		return;
	}
	for (size_t i = 0; i < 3 && c->counts[i].n; i++) {
		struct egress_counter_key key = { .cgroup_id = cg_id(c->cg),
						  .policy_id = c->policy,
						  .country = c->counts[i].country,
						  .proto = c->counts[i].proto,
						  .verdict = c->counts[i].verdict };
		uint64_t d = snap_get(&after, &key) - snap_get(&before, &key);

		check(d == c->counts[i].n,
		      "%s: counter (country %u, proto %u, verdict %u): delta %" PRIu64
		      ", want %" PRIu64,
		      c->name, key.country, key.proto, key.verdict, d, c->counts[i].n);
		expect_total += c->counts[i].n;
	}
	for (size_t i = 0; i < after.n; i++)
		got_total += after.v[i].connections - snap_get(&before, &after.v[i].key);
	check(got_total == expect_total,
	      "%s: total counted %" PRIu64 ", want %" PRIu64 " (counted twice or elsewhere?)",
	      c->name, got_total, expect_total);

	(void)kern_events_consume(k, ev_cb, &ev);
	check(ev.n == (size_t)c->events, "%s: %zu events, want %d", c->name, ev.n, c->events);
	if (ev.n > 0 && c->events > 0) {
		const struct egress_event *e = &ev.v[0];

		check(e->pid == (uint32_t)pid && e->cgroup_id == cg_id(c->cg) &&
			      e->policy_id == c->policy,
		      "%s: event pid %u cgroup %" PRIu64 " policy %#x, want %d %" PRIu64 " %#x",
		      c->name, e->pid, (uint64_t)e->cgroup_id, e->policy_id, pid, cg_id(c->cg), c->policy);
		check(e->dport == c->port, "%s: event port %u, want %d", c->name, e->dport,
		      c->port);
		check(strncmp(e->comm, "kern_smoke", 10) == 0, "%s: event comm %.16s", c->name,
		      e->comm);
		if (c->ev_hook)
			check(e->hook == c->ev_hook, "%s: event hook %u, want %u", c->name, e->hook,
			      c->ev_hook);
		if (c->ev_family) {
			char buf[INET6_ADDRSTRLEN];
			const char *want =
				c->op == UDP4_SENDMMSG_ABA || c->op == UDP4_CONNECT_THEN_SENDTO
					? c->addr2
					: c->addr;

			check(e->family == c->ev_family, "%s: event family %u, want %u", c->name,
			      e->family, c->ev_family);
			inet_ntop(e->family == 2 ? AF_INET : AF_INET6, e->addr, buf, sizeof(buf));
			/* the event carries the canonical address: the IPv4 part of mapped/NAT64 */
			if (strchr(want, '.') && strrchr(want, ':'))
				want = strrchr(want, ':') + 1;
			check(strcmp(buf, want) == 0, "%s: event addr %s, want %s", c->name, buf,
			      want);
		}
		if (e->verdict != EGRESS_VERDICT_DENY && e->verdict != EGRESS_VERDICT_WOULD_DENY)
			check(0, "%s: event verdict %u", c->name, e->verdict);
	}
}

#define T 6
#define U 17
#define ALLOW EGRESS_VERDICT_ALLOW
#define DENY EGRESS_VERDICT_DENY
#define WDENY EGRESS_VERDICT_WOULD_DENY
#define LOCAL EGRESS_VERDICT_LOCAL

/* clang-format off */
static const struct kcase enforce_cases[] = {
	{ "tcp4 allowed country", 0, TCP4_CONNECT, A4, NULL, 443, 0, { ENETUNREACH }, POL_E,
	  { { CC_DE, T, ALLOW, 1 } }, 0, 0, 0 },
	{ "tcp4 denied country", 0, TCP4_CONNECT, B4, NULL, 443, 0, { EPERM }, POL_E,
	  { { CC_US, T, DENY, 1 } }, 1, EGRESS_HOOK_CONNECT4, 2 },
	{ "tcp6 allowed country", 0, TCP6_CONNECT, A6, NULL, 443, 0, { ENETUNREACH }, POL_E,
	  { { CC_DE, T, ALLOW, 1 } }, 0, 0, 0 },
	{ "tcp6 denied country", 0, TCP6_CONNECT, B6, NULL, 443, 0, { EPERM }, POL_E,
	  { { CC_US, T, DENY, 1 } }, 1, EGRESS_HOOK_CONNECT6, 10 },
	{ "unknown country (no data), Unknown=deny", 0, TCP4_CONNECT, "100.64.0.1", NULL, 443, 0,
	  { EPERM }, POL_E, { { 0, T, DENY, 1 } }, 1, EGRESS_HOOK_CONNECT4, 2 },
	{ "AllowCIDR beats the country", 0, TCP4_CONNECT, "198.51.100.200", NULL, 443, 0,
	  { ENETUNREACH }, POL_E, { { CC_US, T, ALLOW, 1 } }, 0, 0, 0 },
	{ "DenyCIDR beats the country", 0, TCP4_CONNECT, "192.0.2.200", NULL, 443, 0, { EPERM },
	  POL_E, { { CC_DE, T, DENY, 1 } }, 1, EGRESS_HOOK_CONNECT4, 2 },
	{ "loopback is local", 0, TCP4_CONNECT, "127.0.0.1", NULL, 9, 0, { ECONNREFUSED }, POL_E,
	  { { 0, T, LOCAL, 1 } }, 0, 0, 0 },
	{ "::1 is local", 0, TCP6_CONNECT, "::1", NULL, 9, 0, { ECONNREFUSED }, POL_E,
	  { { 0, T, LOCAL, 1 } }, 0, 0, 0 },
	{ "169.254/16 is local", 0, UDP4_SENDTO, "169.254.1.1", NULL, 53, 0, { ENETUNREACH }, POL_E,
	  { { 0, U, LOCAL, 1 } }, 0, 0, 0 },
	{ "fe80::/10 is local", 0, UDP6_SENDTO, "fe80::1", NULL, 53, 0, { ENETUNREACH }, POL_E,
	  { { 0, U, LOCAL, 1 } }, 0, 0, 0 },
	/* connect() to the unspecified address reaches this host (the kernel routes it to 127.0.0.1
	 * or ::1): one local connection, not a second one for the rewritten destination. */
	{ "0.0.0.0 is local, counted once", 0, TCP4_CONNECT, "0.0.0.0", NULL, 9, 0, { ECONNREFUSED },
	  POL_E, { { 0, T, LOCAL, 1 } }, 0, 0, 0 },
	{ ":: is local, counted once", 0, TCP6_CONNECT, "::", NULL, 9, 0, { ECONNREFUSED }, POL_E,
	  { { 0, T, LOCAL, 1 } }, 0, 0, 0 },
	{ "224.0.0.251 (mDNS) is local", 0, UDP4_SENDTO, "224.0.0.251", NULL, 5353, 0, { ENETUNREACH },
	  POL_E, { { 0, U, LOCAL, 1 } }, 0, 0, 0 },
	{ "255.255.255.255 is local", 0, UDP4_SENDTO, "255.255.255.255", NULL, 67, 0, { ENETUNREACH },
	  POL_E, { { 0, U, LOCAL, 1 } }, 0, 0, 0 },
	{ "ff02::fb (mDNS) is local", 0, UDP6_SENDTO, "ff02::fb", NULL, 5353, 0, { ENETUNREACH },
	  POL_E, { { 0, U, LOCAL, 1 } }, 0, 0, 0 },
	{ "224.0.1.1 is not local", 0, UDP4_SENDTO, "224.0.1.1", NULL, 123, 0, { EPERM }, POL_E,
	  { { 0, U, DENY, 1 } }, 1, EGRESS_HOOK_SENDMSG4, 2 },
	{ "ff05::1:3 is not local", 0, UDP6_SENDTO, "ff05::1:3", NULL, 547, 0, { EPERM }, POL_E,
	  { { 0, U, DENY, 1 } }, 1, EGRESS_HOOK_SENDMSG6, 10 },
	{ "::ffff:127.0.0.1 is local", 0, TCP6_CONNECT, "::ffff:127.0.0.1", NULL, 9, 0,
	  { ECONNREFUSED }, POL_E, { { 0, T, LOCAL, 1 } }, 0, 0, 0 },
	/* sockets-dual-stack.md */
	{ "dual-stack 1: v6 TCP to ::ffff:B", 0, TCP6_CONNECT, "::ffff:" B4, NULL, 443, 0,
	  { EPERM }, POL_E, { { CC_US, T, DENY, 1 } }, 1, EGRESS_HOOK_CONNECT6, 2 },
	{ "dual-stack 2: v6 TCP to ::ffff:A", 0, TCP6_CONNECT, "::ffff:" A4, NULL, 443, 0,
	  { ENETUNREACH }, POL_E, { { CC_DE, T, ALLOW, 1 } }, 0, 0, 0 },
	{ "dual-stack 3: udp6 sendto ::ffff:B", 0, UDP6_SENDTO, "::ffff:" B4, NULL, 53, 0,
	  { EPERM }, POL_E, { { CC_US, U, DENY, 1 } }, 1, EGRESS_HOOK_SENDMSG4, 2 },
	{ "dual-stack 4: udp6 sendto sockaddr_in B", 0, UDP6_SENDTO_SIN, B4, NULL, 53, 0, { EPERM },
	  POL_E, { { CC_US, U, DENY, 1 } }, 1, EGRESS_HOOK_SENDMSG4, 2 },
	{ "dual-stack 5: NAT64 64:ff9b::B", 0, TCP6_CONNECT, "64:ff9b::" B4, NULL, 443, 0,
	  { EPERM }, POL_E, { { CC_US, T, DENY, 1 } }, 1, EGRESS_HOOK_CONNECT6, 2 },
	{ "dual-stack: udp6 connect sockaddr_in B", 0, UDP6_CONNECT_SIN, B4, NULL, 53, 0, { EPERM },
	  POL_E, { { CC_US, U, DENY, 1 } }, 1, EGRESS_HOOK_CONNECT4, 2 },
	/* sockets-udp.md */
	{ "udp 1: sendto B", 0, UDP4_SENDTO, B4, NULL, 53, 0, { EPERM }, POL_E,
	  { { CC_US, U, DENY, 1 } }, 1, EGRESS_HOOK_SENDMSG4, 2 },
	{ "udp 2: connect B", 0, UDP4_CONNECT, B4, NULL, 53, 0, { EPERM }, POL_E,
	  { { CC_US, U, DENY, 1 } }, 1, EGRESS_HOOK_CONNECT4, 2 },
	{ "udp 3: connect A, send 100x: one decision", 0, UDP4_CONNECT_SEND100, A4, NULL, 53, 1,
	  { 0, 0 }, POL_E, { { CC_DE, U, ALLOW, 1 } }, 0, 0, 0 },
	{ "udp 4: connected to A, sendto B", 0, UDP4_CONNECT_THEN_SENDTO, A4, B4, 53, 1,
	  { 0, EPERM }, POL_E, { { CC_DE, U, ALLOW, 1 }, { CC_US, U, DENY, 1 } }, 1,
	  EGRESS_HOOK_SENDMSG4, 2 },
	{ "udp 5: sendmmsg A, B, A", 0, UDP4_SENDMMSG_ABA, A4, B4, 53, 1, { 1 }, POL_E,
	  { { CC_DE, U, ALLOW, 1 }, { CC_US, U, DENY, 1 } }, 1, EGRESS_HOOK_SENDMSG4, 2 },
	/* nested cgroup with its own policy: the deepest configured ancestor wins, counted once */
	{ "nested: own policy allows US", 1, TCP4_CONNECT, B4, NULL, 443, 0, { ENETUNREACH }, POL_N,
	  { { CC_US, T, ALLOW, 1 } }, 0, 0, 0 },
	{ "nested: own policy denies DE", 1, TCP4_CONNECT, A4, NULL, 443, 0, { EPERM }, POL_N,
	  { { CC_DE, T, DENY, 1 } }, 1, EGRESS_HOOK_CONNECT4, 2 },
	{ "nested: Unknown=allow", 1, TCP4_CONNECT, "100.64.0.1", NULL, 443, 0, { ENETUNREACH },
	  POL_N, { { 0, T, ALLOW, 1 } }, 0, 0, 0 },
	/* monitor */
	{ "monitor: denied country -> would_deny", 2, TCP4_CONNECT, B4, NULL, 443, 0,
	  { ENETUNREACH }, POL_M, { { CC_US, T, WDENY, 1 } }, 1, EGRESS_HOOK_CONNECT4, 2 },
	{ "monitor: ::ffff:B -> would_deny", 2, TCP6_CONNECT, "::ffff:" B4, NULL, 443, 0,
	  { ENETUNREACH }, POL_M, { { CC_US, T, WDENY, 1 } }, 1, EGRESS_HOOK_CONNECT6, 2 },
	{ "monitor: NAT64 B -> would_deny", 2, TCP6_CONNECT, "64:ff9b::" B4, NULL, 443, 0,
	  { ENETUNREACH }, POL_M, { { CC_US, T, WDENY, 1 } }, 1, EGRESS_HOOK_CONNECT6, 2 },
	{ "monitor: udp sendto B", 2, UDP4_SENDTO, B4, NULL, 53, 0, { ENETUNREACH }, POL_M,
	  { { CC_US, U, WDENY, 1 } }, 1, EGRESS_HOOK_SENDMSG4, 2 },
	{ "monitor: allowed stays allow", 2, TCP4_CONNECT, A4, NULL, 443, 0, { ENETUNREACH }, POL_M,
	  { { CC_DE, T, ALLOW, 1 } }, 0, 0, 0 },
	{ "monitor: DenyCIDR -> would_deny", 2, TCP4_CONNECT, "192.0.2.200", NULL, 443, 0,
	  { ENETUNREACH }, POL_M, { { CC_DE, T, WDENY, 1 } }, 1, EGRESS_HOOK_CONNECT4, 2 },
};
/* clang-format on */

static int mkcg(char *buf, size_t len, const char *parent, const char *name)
{
	snprintf(buf, len, "%s/%s", parent, name);
	if (mkdir(buf, 0755) < 0) {
		buf[0] = '\0';
		return -errno;
	}
	return 0;
}

static int stat_get(struct kern *k, unsigned idx, uint64_t *ret)
{
	uint64_t s[EGRESS_STAT_COUNT];
	int r = kern_read_stats(k, s);

	if (r >= 0)
		*ret = s[idx];
	return r;
}

int main(void)
{
	struct kern *k = NULL;
	struct diag errors = {};
	struct table_image img = {}, img2 = {};
	char name[64];
	const char *paths[3];
	uint64_t s0, s1;
	int r;

	if (geteuid() != 0) {
		printf("SKIP: kern_smoke needs root (BPF, cgroups, network namespaces)\n");
		return 77;
	}
	r = cgroup_find_v2_mount(&cgmount);
	if (r < 0) {
		printf("SKIP: no cgroup v2 mount: %s\n", strerror(-r));
		return 77;
	}
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	snprintf(name, sizeof(name), "egressd-smoke-%d-%d", (int)getpid(), rand() % 100000);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	if (mkcg(cg_top, sizeof(cg_top), cgmount, name) < 0 ||
	    mkcg(cg_enf, sizeof(cg_enf), cg_top, "enf") < 0 ||
	    mkcg(cg_nest, sizeof(cg_nest), cg_enf, "nested") < 0 ||
	    mkcg(cg_mon, sizeof(cg_mon), cg_top, "mon") < 0) {
		fprintf(stderr, "FAIL: cannot create the test cgroups under %s: %s\n", cgmount,
			strerror(errno));
		return 1;
	}
	snprintf(rel_enf, sizeof(rel_enf), "%s/enf", name);
	snprintf(rel_nest, sizeof(rel_nest), "%s/enf/nested", name);
	snprintf(rel_mon, sizeof(rel_mon), "%s/mon", name);
	if (cgroup_id_of(cg_enf, &id_enf) < 0 || cgroup_id_of(cg_nest, &id_nest) < 0 ||
	    cgroup_id_of(cg_mon, &id_mon) < 0) {
		fprintf(stderr, "FAIL: cgroup ids\n");
		return 1;
	}

	r = kern_open(&k, &errors);
	for (size_t i = 0; i < errors.n; i++)
		fprintf(stderr, "%s\n", errors.msgs[i]);
	diag_free(&errors);
	if (r < 0) {
		fprintf(stderr, "FAIL: kern_open: %s\n", strerror(-r));
		return 1;
	}

	/* Policies and attachments; no table yet. */
	r = sync_policies(k, 1, 1);
	check(r == 0, "kern_sync_policies: %s", strerror(-r));
	paths[0] = rel_enf;
	paths[1] = rel_nest;
	paths[2] = rel_mon;
	r = kern_sync_attachments(k, cgmount, paths, 3, &errors);
	check(r == 2, "kern_sync_attachments: %d, want 2 (enf covers nested)", r);
	for (size_t i = 0; i < errors.n; i++)
		fprintf(stderr, "  %s\n", errors.msgs[i]);
	diag_free(&errors);
	{
		const char *p0 = NULL, *p1 = NULL;
		uint64_t i0 = 0, i1 = 0;

		check(kern_attached_count(k) == 2 && kern_attached(k, 0, &p0, &i0) == 0 &&
			      kern_attached(k, 1, &p1, &i1) == 0 &&
			      kern_attached(k, 2, NULL, NULL) == -ENOENT,
		      "kern_attached");
		check(p0 && p1 && strcmp(p0, rel_enf) == 0 && i0 == id_enf &&
			      strcmp(p1, rel_mon) == 0 && i1 == id_mon,
		      "attached: %s %s", p0 ? p0 : "-", p1 ? p1 : "-");
	}

	/* Root refused, nothing changed. */
	{
		const char *root[] = { rel_enf, "/" };

		r = kern_sync_attachments(k, cgmount, root, 2, &errors);
		check(r == -EINVAL && errors.n == 1 && strstr(errors.msgs[0], "root"), "root: %d",
		      r);
		check(kern_attached_count(k) == 2, "root refusal changed attachments");
		diag_free(&errors);
	}

	/* No table: country 0 -> Unknown=deny, NO_TABLE counted. */
	{
		/* clang-format off */
		const struct kcase c = { "no table: country 0, Unknown=deny", 0, TCP4_CONNECT, A4,
			NULL, 443, 0, { EPERM }, POL_E, { { 0, T, DENY, 1 } }, 1,
			EGRESS_HOOK_CONNECT4, 2 };
		/* clang-format on */

		(void)stat_get(k, EGRESS_STAT_NO_TABLE, &s0);
		run_case(k, &c);
		(void)stat_get(k, EGRESS_STAT_NO_TABLE, &s1);
		check(s1 - s0 == 1, "NO_TABLE stat delta %" PRIu64 ", want 1", s1 - s0);
	}

	r = make_table(CC_US, 1, &img);
	check(r == 0, "make_table");
	r = kern_install_table(k, &img);
	check(r == 0, "kern_install_table: %s", strerror(-r));
	{
		struct table_image bad = img;
		uint64_t magic = img.words[0];

		img.words[0] = 0;
		bad.words = img.words;
		check(kern_install_table(k, &bad) == -EINVAL, "install of a bad image accepted");
		img.words[0] = magic;
	}

	for (size_t i = 0; i < sizeof(enforce_cases) / sizeof(enforce_cases[0]); i++)
		run_case(k, &enforce_cases[i]);

	/* Table swap: 198.51.100.0/24 becomes DE: B is allowed now. */
	r = make_table(CC_DE, 2, &img2);
	check(r == 0 && kern_install_table(k, &img2) == 0, "install generation 2");
	{
		/* clang-format off */
		const struct kcase c = { "generation 2: B is DE", 0, TCP4_CONNECT, B4, NULL, 443, 0,
			{ ENETUNREACH }, POL_E, { { CC_DE, T, ALLOW, 1 } }, 0, 0, 0 };
		/* clang-format on */
		run_case(k, &c);
	}
	check(kern_install_table(k, &img) == 0, "reinstall generation 1");

	/* Nested policy removed: the ancestor's enforce policy applies, counted under nested. */
	r = sync_policies(k, 1, 0);
	check(r == 0, "sync without the nested policy: %s", strerror(-r));
	{
		/* clang-format off */
		const struct kcase c = { "nested without own policy: ancestor's policy", 1,
			TCP4_CONNECT, B4, NULL, 443, 0, { EPERM }, POL_E, { { CC_US, T, DENY, 1 } },
			1, EGRESS_HOOK_CONNECT4, 2 };
		/* clang-format on */
		run_case(k, &c);
	}

	/* Enforce policy removed while still attached: no policy -> allowed, not counted. */
	r = sync_policies(k, 0, 0);
	check(r == 0, "sync without the enforce policy: %s", strerror(-r));
	{
		/* clang-format off */
		const struct kcase c = { "no policy: allowed, not counted", 0, TCP4_CONNECT, B4,
			NULL, 443, 0, { ENETUNREACH }, POL_E, { { 0 } }, 0, 0, 0 };
		/* clang-format on */

		(void)stat_get(k, EGRESS_STAT_NO_POLICY, &s0);
		run_case(k, &c);
		(void)stat_get(k, EGRESS_STAT_NO_POLICY, &s1);
		check(s1 - s0 == 1, "NO_POLICY stat delta %" PRIu64 ", want 1", s1 - s0);
	}

	/* The monitor cgroup is removed and created again (a unit restart): new id, re-attached. */
	{
		uint64_t old = id_mon;
		const char *p = NULL;
		uint64_t id = 0;
		size_t i;

		check(rmdir(cg_mon) == 0 && mkdir(cg_mon, 0755) == 0, "re-create %s: %s", cg_mon,
		      strerror(errno));
		check(cgroup_id_of(cg_mon, &id_mon) == 0 && id_mon != old, "new cgroup id");
		r = sync_policies(k, 1, 1);
		check(r == 0, "sync after re-creation");
		r = kern_sync_attachments(k, cgmount, paths, 3, &errors);
		check(r == 2, "re-attach: %d", r);
		diag_free(&errors);
		for (i = 0; kern_attached(k, i, &p, &id) == 0; i++)
			if (strcmp(p, rel_mon) == 0)
				break;
		check(i < 2 && id == id_mon, "attached id %" PRIu64 ", want %" PRIu64, id, id_mon);
		run_case(k, &enforce_cases[sizeof(enforce_cases) / sizeof(enforce_cases[0]) - 6]);
	}

	/* Counters survive policy syncs: totals are still there. Detach all: hooks stop. */
	{
		const char *none[1] = { NULL };
		/* clang-format off */
		const struct kcase c = { "detached: no hook", 0, TCP4_CONNECT, B4, NULL, 443, 0,
			{ ENETUNREACH }, POL_E, { { 0 } }, 0, 0, 0 };
		/* clang-format on */
		struct egress_counter_val ov[EGRESS_VERDICT_COUNT];

		r = kern_sync_attachments(k, cgmount, none, 0, &errors);
		check(r == 0 && kern_attached_count(k) == 0, "detach all: %d", r);
		run_case(k, &c);
		check(kern_read_overflow(k, ov) == 0 && ov[0].connections == 0 &&
			      ov[1].connections == 0,
		      "overflow slot used");
		(void)stat_get(k, EGRESS_STAT_EVENTS_LOST, &s0);
		check(s0 == 0, "events lost: %" PRIu64, s0);
	}

	kern_free(k);
	free(img.words);
	free(img2.words);
	cleanup();
	return tcheck_summary();
}
