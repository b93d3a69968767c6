// SPDX-License-Identifier: (LGPL-2.1-or-later OR BSD-2-Clause)
/*
 * bench.bpf.c - programs of the benchmark suite (bench/run.sh), all on the cgroup socket hooks
 * egressd uses, all returning 1 (allow):
 *
 *   count_*   counter only: one per-CPU array increment, the floor every program pays;
 *   range_*   the same increment, indexed by the country egressd's range table gives
 *             (include/egress_lookup.h over the generation in slot 0 of "geo_gen", as
 *             bpf/egress.bpf.c does);
 *   fixed_*   range_* over a copy of the table in a fixed-size inner map without
 *             BPF_F_INNER_MAP ("geo_gen_fixed"), whose lookups the verifier inlines;
 *   lpm_*     the same increment, indexed by the country a kernel LPM trie holding the same data
 *             gives (prefixes from geo_range_to_prefixes, one trie per family).
 *
 * Net lookup cost = bpf_stats run_time_ns/run_cnt of range_* or lpm_* minus that of count_*.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress_abi.h"

/* Same declaration as bpf/egress.bpf.c. */
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

/* The same table in a fixed-size inner map without BPF_F_INNER_MAP: every inner map must then have
 * the template's max_entries, and in exchange the verifier inlines the lookups
 * (array_map_gen_lookup: a bounds check and an address computation instead of a helper call). */
#define BENCH_FIXED_WORDS (1U << 21) /* 16 MiB: the world table is ~2.0 M words */

struct egress_geo_fixed {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_FIXED_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct egress_geo_fixed);
} geo_gen_fixed SEC(".maps");

static __always_inline const __u64 *bench_table_word(void *inner, __u32 i)
{
	return bpf_map_lookup_elem(inner, &i);
}
#define EGRESS_TABLE_WORD(ctx, i) bench_table_word((ctx), (i))

#include "egress_lookup.h"

struct lpm4_key {
	__u32 prefixlen;
	__u8 addr[4]; /* network order */
};

struct lpm6_key {
	__u32 prefixlen;
	__u8 addr[16]; /* network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4 << 20);
	__type(key, struct lpm4_key);
	__type(value, __u32);
} lpm4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4 << 20);
	__type(key, struct lpm6_key);
	__type(value, __u32);
} lpm6 SEC(".maps");

/* Per-CPU hit counters by country id (counter-only programs: by the low address bits). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline int hit(__u32 k)
{
	__u64 *v;

	k &= 1023;
	v = bpf_map_lookup_elem(&hits, &k);
	if (v)
		*v += 1;
	return 1;
}

SEC("cgroup/sendmsg4")
int count_sendmsg4(struct bpf_sock_addr *ctx)
{
	return hit(bpf_ntohl(ctx->user_ip4) & 511);
}

SEC("cgroup/sendmsg6")
int count_sendmsg6(struct bpf_sock_addr *ctx)
{
	return hit(bpf_ntohl(ctx->user_ip6[3]) & 511);
}

SEC("cgroup/connect4")
int count_connect4(struct bpf_sock_addr *ctx)
{
	return hit(bpf_ntohl(ctx->user_ip4) & 511);
}

SEC("cgroup/connect6")
int count_connect6(struct bpf_sock_addr *ctx)
{
	return hit(bpf_ntohl(ctx->user_ip6[3]) & 511);
}

SEC("cgroup/sendmsg4")
int range_sendmsg4(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;
	void *inner = bpf_map_lookup_elem(&geo_gen, &zero);

	if (!inner)
		return hit(1000);
	return hit(egress_lookup4(inner, bpf_ntohl(ctx->user_ip4)));
}

SEC("cgroup/sendmsg6")
int range_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;
	void *inner = bpf_map_lookup_elem(&geo_gen, &zero);
	__u64 hi, lo;

	if (!inner)
		return hit(1000);
	hi = ((__u64)bpf_ntohl(ctx->user_ip6[0]) << 32) | bpf_ntohl(ctx->user_ip6[1]);
	lo = ((__u64)bpf_ntohl(ctx->user_ip6[2]) << 32) | bpf_ntohl(ctx->user_ip6[3]);
	return hit(egress_lookup6(inner, hi, lo));
}

SEC("cgroup/sendmsg4")
int fixed_sendmsg4(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;
	void *inner = bpf_map_lookup_elem(&geo_gen_fixed, &zero);

	if (!inner)
		return hit(1000);
	return hit(egress_lookup4(inner, bpf_ntohl(ctx->user_ip4)));
}

SEC("cgroup/sendmsg6")
int fixed_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;
	void *inner = bpf_map_lookup_elem(&geo_gen_fixed, &zero);
	__u64 hi, lo;

	if (!inner)
		return hit(1000);
	hi = ((__u64)bpf_ntohl(ctx->user_ip6[0]) << 32) | bpf_ntohl(ctx->user_ip6[1]);
	lo = ((__u64)bpf_ntohl(ctx->user_ip6[2]) << 32) | bpf_ntohl(ctx->user_ip6[3]);
	return hit(egress_lookup6(inner, hi, lo));
}

SEC("cgroup/sendmsg4")
int lpm_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct lpm4_key k = { .prefixlen = 32 };
	__u32 *v;

	__builtin_memcpy(k.addr, &ctx->user_ip4, 4);
	v = bpf_map_lookup_elem(&lpm4, &k);
	return hit(v ? *v : 0);
}

SEC("cgroup/sendmsg6")
int lpm_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct lpm6_key k = { .prefixlen = 128 };
	__u32 *v, w;

	/* ctx fields are read one 32-bit word at a time */
	w = ctx->user_ip6[0];
	__builtin_memcpy(&k.addr[0], &w, 4);
	w = ctx->user_ip6[1];
	__builtin_memcpy(&k.addr[4], &w, 4);
	w = ctx->user_ip6[2];
	__builtin_memcpy(&k.addr[8], &w, 4);
	w = ctx->user_ip6[3];
	__builtin_memcpy(&k.addr[12], &w, 4);
	v = bpf_map_lookup_elem(&lpm6, &k);
	return hit(v ? *v : 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
