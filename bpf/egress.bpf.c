// SPDX-License-Identifier: (LGPL-2.1-or-later OR BSD-2-Clause)
/*
 * egress.bpf.c - the hooks of egressd: cgroup/connect4, cgroup/connect6, cgroup/sendmsg4,
 * cgroup/sendmsg6 (decisions per call) and cgroup_skb/egress (packets and bytes; decisions for
 * traffic no sock_addr hook saw).
 *
 * For every connect() and every sendto()/sendmsg() that names an address, the program
 *   1. canonicalises the destination (IPv4-mapped ::ffff:a.b.c.d and NAT64 64:ff9b::a.b.c.d are
 *      treated as the embedded IPv4 address),
 *   2. finds the policy of the task: the deepest ancestor of the task's cgroup (levels 1..
 *      config.max_level) that has an entry in "cgroup_policy",
 *   3. looks the country up in the current GeoIP generation (slot 0 of "geo_gen"),
 *   4. decides: local > longest CIDR exception > allowed country > Unknown= for country 0 > deny,
 *   5. counts the decision per (cgroup, policy, country, protocol, verdict) and sends an event for
 *      deny and would_deny.
 * Only a deny in enforce mode returns 0 (the caller gets EPERM). A decision other than deny is
 * stored in the socket's local storage ("sk_decision") with its canonical destination.
 *
 * cgroup_skb/egress runs for every IP packet of a socket whose cgroup is at or below an attached
 * cgroup. When the socket's stored decision is for the packet's destination, it only adds packets
 * and bytes to that decision's counter (no second lookup). Otherwise (ICMP ping sockets, raw
 * sockets, accepted sockets, a connected UDP socket that sent elsewhere in between) it decides
 * itself, with the policy of the socket's cgroup (the one the kernel ran the program for; the
 * sending task is unknown in softirq context), drops a denied packet in enforce mode and counts
 * would_deny in monitor mode.
 *
 * Maps and their layouts: include/egress_abi.h. The daemon attaches the programs only at the
 * topmost configured cgroups, so one decision is taken (and counted) once per call.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress_abi.h"

/* libc constants, not part of the BPF UAPI headers. */
#define EGRESS_AF_INET 2
#define EGRESS_AF_INET6 10
#define EGRESS_SOCK_STREAM 1
#define EGRESS_SOCK_DGRAM 2
#define EGRESS_IPPROTO_TCP 6
#define EGRESS_IPPROTO_UDP 17
#define EGRESS_TCP_LISTEN 10 /* BPF_TCP_LISTEN, struct bpf_sock state */
#define EGRESS_ETH_P_IP 0x0800
#define EGRESS_ETH_P_IPV6 0x86dd

/* Default sizes; the daemon may change them with bpf_map__set_max_entries() before load. */
#define EGRESS_COUNTERS_MAX 65536
#define EGRESS_CGROUP_POLICY_MAX 16384
#define EGRESS_POLICIES_MAX 4096
#define EGRESS_CIDR_MAX 65536
#define EGRESS_EVENTS_BYTES (1U << 20)

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct egress_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_POLICIES_MAX);
	__type(key, __u32);
	__type(value, struct egress_policy);
} policies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_CGROUP_POLICY_MAX);
	__type(key, __u64);
	__type(value, __u32);
} cgroup_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, EGRESS_CIDR_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct egress_cidr_key);
	__type(value, __u32);
} cidr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, EGRESS_COUNTERS_MAX);
	__type(key, struct egress_counter_key);
	__type(value, struct egress_counter_val);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EGRESS_VERDICT_COUNT);
	__type(key, __u32);
	__type(value, struct egress_counter_val);
} overflow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EGRESS_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EGRESS_EVENTS_BYTES);
} events SEC(".maps");

/* Decision per socket: struct egress_sk_decision (egress_abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct egress_sk_decision);
} sk_decision SEC(".maps");

/* One GeoIP generation: the table image of egress_abi.h as an array of __u64 words. The inner
 * map's size comes from each generation (BPF_F_INNER_MAP lets sizes differ). */
struct egress_geo_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct egress_geo_inner);
} geo_gen SEC(".maps");

/* Word i of the table image, for egress_lookup.h: ctx is the inner map of the current
 * generation. Evaluates to a const __u64 * or NULL when i is out of range. */
static __always_inline const __u64 *egress_table_word(void *inner, __u32 i)
{
	return bpf_map_lookup_elem(inner, &i);
}
#define EGRESS_TABLE_WORD(ctx, i) egress_table_word((ctx), (i))

#include "egress_lookup.h"

/* A destination after canonicalisation. */
struct dest {
	__u32 w[4]; /* network order; IPv4 in w[0] */
	__u8 family; /* EGRESS_AF_INET or EGRESS_AF_INET6 */
	__u16 port; /* host order */
};

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	/* Atomic for the same reason as the counters (see count()). */
	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline void stat_inc(__u32 idx)
{
	stat_add(idx, 1);
}

/* Destinations that never leave the host or its link, whatever the policy: loopback (127/8, ::1),
 * unspecified (0.0.0.0, ::), link-local unicast (169.254/16 RFC 3927, fe80::/10 RFC 4291), the
 * limited broadcast 255.255.255.255 (RFC 919: never forwarded), IPv4 multicast in the Local
 * Network Control Block 224.0.0.0/24 (RFC 5771: not forwarded; mDNS, VRRP, OSPF) and IPv6
 * multicast of scope 0-2 (reserved, interface-local, link-local: ff00::/16, ff01::/16, ff02::/16
 * with any flags, RFC 4291 2.7). daemon/policy.c is_local() is the same test. */
static __always_inline int is_local4(__u32 a /* host order */)
{
	return (a >> 24) == 127 || a == 0 || (a >> 16) == 0xa9fe || a == 0xffffffff ||
	       (a >> 8) == 0xe00000;
}

static __always_inline int is_local6(const struct dest *d)
{
	__u32 w0 = bpf_ntohl(d->w[0]);

	if ((w0 & 0xffc00000) == 0xfe800000) /* fe80::/10 */
		return 1;
	if ((w0 >> 24) == 0xff && ((w0 >> 16) & 0xf) <= 2) /* multicast, scope <= link-local */
		return 1;
	if (d->w[0] || d->w[1] || d->w[2])
		return 0;
	return d->w[3] == 0 || d->w[3] == bpf_htonl(1); /* :: and ::1 */
}

/* The policy of the current task (skb NULL) or of the socket of skb: deepest configured ancestor
 * at levels 1..config.max_level. Level 0 (the root) never carries a policy. */
static __always_inline struct egress_policy *find_policy(struct __sk_buff *skb)
{
	struct egress_config *cfg;
	__u32 zero = 0, max_level, found = 0, have = 0;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return NULL;
	max_level = cfg->max_level;
	if (max_level > EGRESS_MAX_CGROUP_LEVEL)
		max_level = EGRESS_MAX_CGROUP_LEVEL;

	for (__u32 level = 1; level <= EGRESS_MAX_CGROUP_LEVEL; level++) {
		__u64 id;
		__u32 *pid;

		if (level > max_level)
			break;
		id = skb ? bpf_skb_ancestor_cgroup_id(skb, (int)level) :
			   bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			break; /* the task's cgroup is shallower than level */
		pid = bpf_map_lookup_elem(&cgroup_policy, &id);
		if (pid) {
			found = *pid;
			have = 1;
		}
	}
	if (!have)
		return NULL;
	return bpf_map_lookup_elem(&policies, &found);
}

static __always_inline __u16 country_of(const struct dest *d)
{
	__u32 zero = 0;
	void *inner;

	inner = bpf_map_lookup_elem(&geo_gen, &zero);
	if (!inner) {
		stat_inc(EGRESS_STAT_NO_TABLE);
		return EGRESS_COUNTRY_UNKNOWN;
	}
	if (d->family == EGRESS_AF_INET)
		return egress_lookup4(inner, bpf_ntohl(d->w[0]));
	return egress_lookup6(inner, ((__u64)bpf_ntohl(d->w[0]) << 32) | bpf_ntohl(d->w[1]),
			      ((__u64)bpf_ntohl(d->w[2]) << 32) | bpf_ntohl(d->w[3]));
}

/* Longest CIDR exception of policy_id for d: EGRESS_CIDR_* or 0 when none matches. */
static __always_inline __u32 cidr_action(__u32 policy_id, const struct dest *d)
{
	struct egress_cidr_key key = {};
	__u32 *v;

	key.prefixlen = 32 + 128;
	key.policy_id = policy_id;
	if (d->family == EGRESS_AF_INET) {
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], &d->w[0], 4);
	} else {
		__builtin_memcpy(key.addr, d->w, 16);
	}
	v = bpf_map_lookup_elem(&cidr, &key);
	return v ? *v : 0;
}

static __always_inline __u8 proto_of(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;

	if (proto)
		return (__u8)proto;
	if (ctx->type == EGRESS_SOCK_DGRAM)
		return EGRESS_IPPROTO_UDP;
	if (ctx->type == EGRESS_SOCK_STREAM)
		return EGRESS_IPPROTO_TCP;
	return 0;
}

/* This CPU's value of key's counter, inserted when missing; when "counters" is full, the overflow
 * slot of key's verdict (*ret_over set to 1 if ret_over), and n is added to
 * EGRESS_STAT_COUNTER_OVERFLOW. NULL only for a bad verdict. */
static __always_inline struct egress_counter_val *counter_slot(const struct egress_counter_key *key,
								__u64 n, int *ret_over)
{
	struct egress_counter_val *v, zero = {};
	__u32 idx = key->verdict;

	v = bpf_map_lookup_elem(&counters, key);
	if (!v) {
		(void)bpf_map_update_elem(&counters, key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counters, key);
	}
	if (!v) {
		v = bpf_map_lookup_elem(&overflow, &idx);
		stat_add(EGRESS_STAT_COUNTER_OVERFLOW, n);
		if (ret_over)
			*ret_over = 1;
	}
	return v;
}

/* Add conns decisions, pkts packets and nbytes bytes to key's counter (or the overflow slot). */
static __always_inline void count(const struct egress_counter_key *key, __u64 conns, __u64 pkts,
				  __u64 nbytes)
{
	struct egress_counter_val *v = counter_slot(key, 1, NULL);

	if (!v)
		return;
	/* Atomic: sock_addr programs run with migration, not preemption, disabled, so two tasks on
	 * one CPU may update the same per-CPU value; a plain += could lose a count. The packet hook
	 * may also interrupt a sock_addr program on the same CPU. */
	if (conns)
		__sync_fetch_and_add(&v->connections, conns);
	if (pkts) {
		__sync_fetch_and_add(&v->packets, pkts);
		__sync_fetch_and_add(&v->bytes, nbytes);
	}
}

/* skb: the packet hook's packet (uid and gid of the socket's owner: the task running may be any
 * task in softirq context), NULL for the sock_addr hooks (the calling task). */
static __always_inline void send_event(const struct egress_counter_key *key, const struct dest *d,
				       __u8 hook, struct __sk_buff *skb)
{
	struct egress_event *e;
	__u64 pid_tgid, uid_gid;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(EGRESS_STAT_EVENTS_LOST);
		return;
	}
	pid_tgid = bpf_get_current_pid_tgid();
	uid_gid = bpf_get_current_uid_gid();
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = key->cgroup_id;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	if (skb) {
		e->uid = bpf_get_socket_uid(skb);
		e->gid = 0xffffffff; /* unknown: no helper gives the socket's gid */
	}
	e->policy_id = key->policy_id;
	e->country = key->country;
	e->dport = d->port;
	e->family = d->family;
	e->proto = key->proto;
	e->verdict = key->verdict;
	e->hook = hook;
	__builtin_memcpy(e->addr, d->w, 16);
	if (d->family == EGRESS_AF_INET)
		__builtin_memset(&e->addr[4], 0, 12);
	if (bpf_get_current_comm(e->comm, sizeof(e->comm)) < 0)
		e->comm[0] = '\0';
	/* Waking the reader on every event costs an irq_work self-IPI that is charged to this program
	 * (~1-2 us per connect measured here). Wake it only once 1/8 of the ring is filled; the daemon
	 * also drains the ring on a short timer, so an event waits at most that long. */
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >=
				      bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 8 ?
				      BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline int country_allowed(const struct egress_policy *pol, __u16 cc)
{
	__u32 word = cc >> 6;

	/* Keep the bound check on the index itself: clang otherwise folds the shift into the byte
	 * offset in a way the verifier cannot bound. */
	asm volatile("" : "+r"(word));
	if (cc >= EGRESS_COUNTRY_MAX || word >= EGRESS_COUNTRY_WORDS)
		return 0;
	return (pol->allowed[word] >> (cc & 63)) & 1;
}

/* The verdict of pol for d; sets key->country and key->verdict. */
static __always_inline void verdict_of(const struct egress_policy *pol, const struct dest *d,
				       struct egress_counter_key *key)
{
	__u8 verdict;

	if (d->family == EGRESS_AF_INET ? is_local4(bpf_ntohl(d->w[0])) : is_local6(d)) {
		key->country = EGRESS_COUNTRY_UNKNOWN;
		verdict = EGRESS_VERDICT_LOCAL;
	} else {
		__u8 deny = pol->mode == EGRESS_MODE_ENFORCE ? EGRESS_VERDICT_DENY
							     : EGRESS_VERDICT_WOULD_DENY;
		__u32 action = 0;
		__u16 cc;

		cc = country_of(d);
		key->country = cc;
		if (pol->has_cidr)
			action = cidr_action(pol->policy_id, d);
		if (action == EGRESS_CIDR_ALLOW)
			verdict = EGRESS_VERDICT_ALLOW;
		else if (action == EGRESS_CIDR_DENY)
			verdict = deny;
		else if (cc == EGRESS_COUNTRY_UNKNOWN)
			verdict =
				pol->unknown == EGRESS_UNKNOWN_ALLOW ? EGRESS_VERDICT_ALLOW : deny;
		else if (country_allowed(pol, cc))
			verdict = EGRESS_VERDICT_ALLOW;
		else
			verdict = deny;
	}
	key->verdict = verdict;
}

/* Remember a decision for the socket, so its packets are counted without a lookup. */
static __always_inline void store_decision(struct egress_sk_decision *sd,
					   const struct egress_counter_key *key,
					   const struct dest *d, __u8 hook)
{
	sd->key = *key;
	__builtin_memcpy(sd->addr, d->w, 16);
	sd->family = d->family;
	sd->hook = hook;
}

/* Decide, count, report. Returns 1 (let the call proceed) or 0 (EPERM). */
static __always_inline int decide(struct bpf_sock_addr *ctx, const struct dest *d, __u8 hook)
{
	struct egress_counter_key key = {};
	struct egress_sk_decision *sd;
	struct egress_policy *pol;
	struct bpf_sock *sk;

	pol = find_policy(NULL);
	if (!pol) {
		/* The socket's cgroup runs the programs but the task has no policy (it moved, or
		 * the socket came over SCM_RIGHTS): the packet hook decides by the socket's cgroup. */
		stat_inc(EGRESS_STAT_NO_POLICY);
		return 1;
	}

	key.cgroup_id = bpf_get_current_cgroup_id();
	key.policy_id = pol->policy_id;
	key.proto = proto_of(ctx);
	verdict_of(pol, d, &key);
	count(&key, 1, 0, 0);
	if (key.verdict == EGRESS_VERDICT_DENY || key.verdict == EGRESS_VERDICT_WOULD_DENY)
		send_event(&key, d, hook, NULL);
	if (key.verdict == EGRESS_VERDICT_DENY)
		return 0;
	sk = ctx->sk;
	if (sk) {
		sd = bpf_sk_storage_get(&sk_decision, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
		if (sd)
			store_decision(sd, &key, d, hook);
	}
	return 1;
}

static __always_inline void dest4(struct bpf_sock_addr *ctx, struct dest *d)
{
	d->w[0] = ctx->user_ip4;
	d->w[1] = d->w[2] = d->w[3] = 0;
	d->family = EGRESS_AF_INET;
	d->port = bpf_ntohs((__u16)ctx->user_port);
}

/* IPv4-mapped ::ffff:0:0/96 and NAT64 64:ff9b::/96 become the embedded IPv4 address. */
static __always_inline void canon6(struct dest *d)
{
	d->family = EGRESS_AF_INET6;
	if ((d->w[0] == 0 && d->w[1] == 0 && d->w[2] == bpf_htonl(0xffff)) ||
	    (d->w[0] == bpf_htonl(0x0064ff9b) && d->w[1] == 0 && d->w[2] == 0)) {
		d->w[0] = d->w[3];
		d->w[1] = d->w[2] = d->w[3] = 0;
		d->family = EGRESS_AF_INET;
	}
}

static __always_inline void dest6(struct bpf_sock_addr *ctx, struct dest *d)
{
	d->w[0] = ctx->user_ip6[0];
	d->w[1] = ctx->user_ip6[1];
	d->w[2] = ctx->user_ip6[2];
	d->w[3] = ctx->user_ip6[3];
	d->port = bpf_ntohs((__u16)ctx->user_port);
	canon6(d);
}

SEC("cgroup/connect4")
int egress_connect4(struct bpf_sock_addr *ctx)
{
	struct dest d;

#ifdef EGRESS_TEST_VERIFIER_REJECT
	/* Only in the build of tests/system/failmodes.py (BPF_EXTRA_CFLAGS): a load through a
	 * scalar, which the verifier must reject, to prove egressd then refuses to start. */
	if (*(volatile __u32 *)(long)ctx->user_ip4)
		return 0;
#endif
	dest4(ctx, &d);
	return decide(ctx, &d, EGRESS_HOOK_CONNECT4);
}

SEC("cgroup/connect6")
int egress_connect6(struct bpf_sock_addr *ctx)
{
	struct dest d;

	dest6(ctx, &d);
	return decide(ctx, &d, EGRESS_HOOK_CONNECT6);
}

SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct dest d;

	dest4(ctx, &d);
	return decide(ctx, &d, EGRESS_HOOK_SENDMSG4);
}

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct dest d;

	dest6(ctx, &d);
	return decide(ctx, &d, EGRESS_HOOK_SENDMSG6);
}

/* ---- cgroup_skb/egress ----------------------------------------------------------------------- */

/* What the packet hook needs of a packet. */
struct pkt {
	struct dest d; /* canonical destination; port 0 */
	__u32 l4off; /* offset of the L4 header (IPv6: 40, extension headers not followed) */
	__u8 proto; /* IPv4 protocol / IPv6 next header */
	__u8 to_self; /* destination address == source address (a packet to this host) */
};

/* Parse the IP header at the start of skb (cgroup_skb programs see the packet from its network
 * header). Returns 0, or -1 for a packet that is not IPv4/IPv6 or too short. */
static __always_inline int parse_pkt(struct __sk_buff *skb, struct pkt *p)
{
	__u8 b[40] __attribute__((aligned(8)));

	p->d.port = 0;
	if (skb->protocol == bpf_htons(EGRESS_ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 0, b, 20) < 0)
			return -1;
		p->proto = b[9];
		p->l4off = (b[0] & 0x0f) * 4;
		__builtin_memcpy(&p->d.w[0], &b[16], 4);
		p->d.w[1] = p->d.w[2] = p->d.w[3] = 0;
		p->to_self = *(__u32 *)&b[12] == *(__u32 *)&b[16];
		p->d.family = EGRESS_AF_INET;
		return 0;
	}
	if (skb->protocol == bpf_htons(EGRESS_ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 0, b, 40) < 0)
			return -1;
		p->proto = b[6];
		p->l4off = 40;
		__builtin_memcpy(p->d.w, &b[24], 16);
		p->to_self = *(__u64 *)&b[8] == *(__u64 *)&b[24] && *(__u64 *)&b[16] == *(__u64 *)&b[32];
		canon6(&p->d);
		return 0;
	}
	return -1;
}

/* Packets and bytes of skb as IP packets on the wire: a GSO packet becomes gso_segs packets, each
 * with its own copy of the IP and TCP/UDP headers. */
static __always_inline void pkt_size(struct __sk_buff *skb, const struct pkt *p, __u64 *ret_pkts,
				     __u64 *ret_bytes)
{
	__u32 segs = skb->gso_segs, hdr = p->l4off;
	__u8 doff;

	*ret_pkts = 1;
	*ret_bytes = skb->len;
	if (segs <= 1)
		return;
	if (p->proto == EGRESS_IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, p->l4off + 12, &doff, 1) < 0)
			return;
		hdr += (doff >> 4) * 4;
	} else if (p->proto == EGRESS_IPPROTO_UDP) {
		hdr += 8;
	}
	*ret_pkts = segs;
	*ret_bytes = skb->len + (__u64)(segs - 1) * hdr;
}

static __always_inline int same_dest(const struct egress_sk_decision *sd, const struct dest *d)
{
	return sd->family == d->family && sd->addr[0] == d->w[0] && sd->addr[1] == d->w[1] &&
	       sd->addr[2] == d->w[2] && sd->addr[3] == d->w[3];
}

/* Destination port of a TCP/UDP packet (host order), 0 for other protocols. */
static __always_inline __u16 pkt_dport(struct __sk_buff *skb, const struct pkt *p)
{
	__u16 port;

	if (p->proto != EGRESS_IPPROTO_TCP && p->proto != EGRESS_IPPROTO_UDP)
		return 0;
	if (bpf_skb_load_bytes(skb, p->l4off + 2, &port, 2) < 0)
		return 0;
	return bpf_ntohs(port);
}

SEC("cgroup_skb/egress")
int egress_skb(struct __sk_buff *skb)
{
	struct egress_counter_key key = {};
	struct egress_sk_decision *sd = NULL;
	struct egress_policy *pol;
	struct bpf_sock *sk, *fs;
	__u64 pkts, nbytes;
	struct pkt p;
	int full = 0, listener = 0;

	if (parse_pkt(skb, &p) < 0)
		return 1;
	pkt_size(skb, &p, &pkts, &nbytes);
	sk = skb->sk;
	if (sk) {
		/* NULL for request and timewait sockets (SYN-ACKs, ACKs after close). */
		sd = bpf_sk_storage_get(&sk_decision, sk, NULL, 0);
		if (sd && same_dest(sd, &p.d)) {
			count(&sd->key, 0, pkts, nbytes);
			return 1;
		}
		/* Decided for the unspecified address (local), and the packet goes to this host: the
		 * kernel sent the connection there (127.0.0.1, ::1, or the bound source address;
		 * ip_route_output_key_hash_rcu). The same connection: its packets count on that
		 * decision, which now names the destination the packets carry. Any other
		 * destination (a ping socket's sendto() after connect(0.0.0.0)) is decided below. */
		if (sd && !(sd->addr[0] | sd->addr[1] | sd->addr[2] | sd->addr[3]) &&
		    (p.to_self || (p.d.family == EGRESS_AF_INET ? is_local4(bpf_ntohl(p.d.w[0])) :
							    is_local6(&p.d)))) {
			__builtin_memcpy(sd->addr, p.d.w, 16);
			sd->family = p.d.family;
			count(&sd->key, 0, pkts, nbytes);
			return 1;
		}
		fs = bpf_sk_fullsock(sk);
		full = fs != NULL;
		/* A SYN-ACK: the cgroup hook passes the listener for the request socket
		 * (__cgroup_bpf_run_filter_skb, sk_to_full_sk). Not a connection of its own: the
		 * accepted socket counts it, with its first packet. */
		listener = fs && fs->state == EGRESS_TCP_LISTEN;
	}

	/* A destination this socket has no decision for: decide by the socket's cgroup. */
	pol = find_policy(skb);
	if (!pol) {
		stat_inc(EGRESS_STAT_NO_POLICY);
		return 1;
	}
	key.cgroup_id = bpf_skb_cgroup_id(skb);
	key.policy_id = pol->policy_id;
	key.proto = p.proto;
	verdict_of(pol, &p.d, &key);
	/* A decision counts as a connection only for a full socket (not for the SYN-ACK of a request
	 * socket or a packet of a timewait socket). */
	/* A denied SYN-ACK is dropped: no accepted socket will ever count this attempt, so each
	 * dropped SYN-ACK (first and retransmitted) is one denied attempt, with its event. */
	count(&key, full && (!listener || key.verdict == EGRESS_VERDICT_DENY), pkts, nbytes);
	/* A listener's would_deny is reported by the accepted socket; a deny here is the block. */
	if (key.verdict == EGRESS_VERDICT_DENY ||
	    (key.verdict == EGRESS_VERDICT_WOULD_DENY && !listener)) {
		p.d.port = pkt_dport(skb, &p);
		send_event(&key, &p.d, EGRESS_HOOK_SKB_EGRESS, skb);
	}
	if (key.verdict == EGRESS_VERDICT_DENY)
		return 0;
	if (full && !listener) {
		if (!sd)
			sd = bpf_sk_storage_get(&sk_decision, sk, NULL,
						BPF_SK_STORAGE_GET_F_CREATE);
		if (sd)
			store_decision(sd, &key, &p.d, EGRESS_HOOK_SKB_EGRESS);
	}
	return 1;
}

/* Entries of replaced maps whose counts were added but which are not yet removed from them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_CARRY_MARKS_MAX);
	__type(key, struct egress_carry_mark);
	__type(value, __u8);
} carry_marks SEC(".maps");

/* Add the counts of a replaced map (struct egress_carry, include/egress_abi.h) to the live maps,
 * atomically, as the hooks do, and set the entry's mark in "carry_marks" in the same run: run by
 * the daemon with BPF_PROG_TEST_RUN after an upgrade changed a counting map's layout. Returns an
 * EGRESS_CARRY_* code; nothing is changed unless it is OK or OVERFLOWED. */
SEC("syscall")
int carry(struct egress_carry *ctx)
{
	struct egress_counter_key key = ctx->key;
	struct egress_counter_val val = ctx->val, *v = NULL;
	struct egress_carry_mark mark = ctx->mark;
	__u32 map = ctx->map, idx = ctx->index;
	__u8 one = 1;
	int over = 0;
	__u64 *s = NULL;

	/* Check what can fail before the mark is set. */
	if (map == EGRESS_CARRY_STATS)
		s = bpf_map_lookup_elem(&stats, &idx);
	else if (map == EGRESS_CARRY_OVERFLOW)
		v = bpf_map_lookup_elem(&overflow, &idx);
	if (map == EGRESS_CARRY_STATS ? !s : map == EGRESS_CARRY_OVERFLOW ? !v :
	    map != EGRESS_CARRY_COUNTERS || key.verdict >= EGRESS_VERDICT_COUNT)
		return EGRESS_CARRY_RANGE;
	if (bpf_map_update_elem(&carry_marks, &mark, &one, BPF_NOEXIST) < 0)
		return EGRESS_CARRY_MARKED;
	if (s) {
		__sync_fetch_and_add(s, val.connections);
		return EGRESS_CARRY_OK;
	}
	/* A row that no longer fits adds its connections to the overflow statistic, as the hooks
	 * would have one by one (at least 1: a row of packets only). */
	if (map == EGRESS_CARRY_COUNTERS)
		v = counter_slot(&key, val.connections ? val.connections : 1, &over);
	if (!v)
		return EGRESS_CARRY_RANGE; /* not reached: the verdict was checked */
	__sync_fetch_and_add(&v->connections, val.connections);
	__sync_fetch_and_add(&v->packets, val.packets);
	__sync_fetch_and_add(&v->bytes, val.bytes);
	return over ? EGRESS_CARRY_OVERFLOWED : EGRESS_CARRY_OK;
}
