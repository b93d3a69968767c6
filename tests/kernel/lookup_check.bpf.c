// SPDX-License-Identifier: (LGPL-2.1-or-later OR BSD-2-Clause)
/*
 * lookup_check.bpf.c - runs include/egress_lookup.h in the kernel over a batch of addresses, for
 * tests/kernel/lookup_check.c to compare with the userspace search (BPF_PROG_TEST_RUN).
 *
 * The GeoIP table is declared as in the real programs: an ARRAY_OF_MAPS "geo_gen" with one slot
 * holding a BPF_F_MMAPABLE | BPF_F_INNER_MAP array of __u64 words (any size).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define EGRESS_TABLE_WORD(ctx, i)                                                                  \
	({                                                                                         \
		__u32 __k = (i);                                                                   \
		(const __u64 *)bpf_map_lookup_elem((ctx), &__k);                                   \
	})
#include "egress_lookup.h"

#define LOOKUP_CHECK_BATCH 65536

struct geo_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct geo_table);
} geo_gen SEC(".maps");

/* Input address: IPv4 in lo (host order), IPv6 as hi:lo (host-order halves). */
struct lookup_addr {
	__u64 hi;
	__u64 lo;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, LOOKUP_CHECK_BATCH);
	__type(key, __u32);
	__type(value, struct lookup_addr);
} addrs SEC(".maps");

/* Output: the country id for each input (__u64 so that the mmap stride is the value size). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, LOOKUP_CHECK_BATCH);
	__type(key, __u32);
	__type(value, __u64);
} countries SEC(".maps");

/* Control: family (4, 6, or 0 = no lookup, to time the loop itself), batch size; the program
 * writes back how many addresses it processed and whether the table was missing. */
struct lookup_ctl {
	__u32 family;
	__u32 n;
	__u32 done;
	__u32 no_table;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lookup_ctl);
} ctl SEC(".maps");

struct loop_ctx {
	__u32 family;
	__u32 no_table;
};

static long lookup_one(__u32 i, void *data)
{
	struct loop_ctx *c = data;
	struct lookup_addr *a;
	__u32 zero = 0, k = i;
	__u64 *out;
	void *tbl;

	a = bpf_map_lookup_elem(&addrs, &k);
	out = bpf_map_lookup_elem(&countries, &k);
	if (!a || !out)
		return 1;
	/* as the real programs: one generation per lookup, taken from slot 0 */
	tbl = bpf_map_lookup_elem(&geo_gen, &zero);
	if (!tbl) {
		c->no_table = 1;
		return 1;
	}
	if (c->family == 4)
		*out = egress_lookup4(tbl, (__u32)a->lo);
	else if (c->family == 6)
		*out = egress_lookup6(tbl, a->hi, a->lo);
	else
		*out = a->lo & 0xffff;
	return 0;
}

SEC("tc")
int lookup_batch(struct __sk_buff *skb)
{
	struct loop_ctx c = {};
	struct lookup_ctl *p;
	__u32 zero = 0;
	long r;

	p = bpf_map_lookup_elem(&ctl, &zero);
	if (!p)
		return 0;
	c.family = p->family;
	r = bpf_loop(p->n > LOOKUP_CHECK_BATCH ? LOOKUP_CHECK_BATCH : p->n, lookup_one, &c, 0);
	p->done = r < 0 ? 0 : (__u32)r;
	p->no_table = c.no_table;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
