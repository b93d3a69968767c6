/* SPDX-License-Identifier: (LGPL-2.1-or-later OR BSD-2-Clause) */
/*
 * egress_lookup.h - the GeoIP table search, written once for the BPF programs (clang -target bpf)
 * and the daemon (gcc). The image layout is in egress_abi.h ("GeoIP table image").
 *
 * The includer defines, before including this file,
 *
 *     EGRESS_TABLE_WORD(ctx, i)   ->  const __u64 * to word i of the image, or NULL
 *
 * BPF:       ({ __u32 __k = (i); (const __u64 *)bpf_map_lookup_elem((ctx), &__k); })
 *            where ctx is the inner array map taken from slot 0 of "geo_gen";
 * userspace: a bounds-checked pointer into the image (daemon/table.c).
 *
 * Every word access may fail; a failed access makes the lookup return country 0 (unknown). Indexes
 * read from the image are only ever used as word numbers passed to EGRESS_TABLE_WORD, never as
 * pointer offsets, so a damaged image gives wrong countries but no out-of-bounds access, and every
 * loop is bounded by EGRESS_TABLE_MAX_STEPS.
 *
 * The header magic is not checked here: the daemon builds the image, checks it with table_verify()
 * and only then installs it, and the map is writable by the daemon only; checking would cost one
 * more map lookup per search.
 *
 * Cost (BPF: one bpf_map_lookup_elem call per word read; inner maps of map-in-map are not inlined):
 *   IPv4: 1 direct-index word for a /16 inside one range; + 1 block word for a /24 inside one
 *         range; otherwise + 1 more block word (odd /24) or 1-2 index words (/16 without a block)
 *         + one range word per search step + 1 word at the end only when no step moved the lower
 *         bound (the country is in the range word already read otherwise).
 *   IPv6: 2 header words (index and range offsets) + 1-2 index words + per step the high start
 *         word, and the low start word only when the high words are equal, + 2 words at the end
 *         (country-id offset, country word).
 */
#ifndef EGRESS_LOOKUP_H
#define EGRESS_LOOKUP_H

#include <linux/types.h>

#include "egress_abi.h"

#ifndef EGRESS_TABLE_WORD
#error "define EGRESS_TABLE_WORD(ctx, i) before including egress_lookup.h"
#endif

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Header words (egress_abi.h): used by the IPv6 search, and by the daemon (block count). */
#define EGRESS_TABLE_HDR_OFF_V6_IDX 4
#define EGRESS_TABLE_HDR_OFF_V6_RNG 5
#define EGRESS_TABLE_HDR_OFF_V6_CC 6
#define EGRESS_TABLE_HDR_V4_BLOCKS 7

/* Read index entries h and h + 1 (h < 65536) of the packed index that starts at word idx_off:
 * one word when h is even, two when it is odd. Returns 0, or -1 when a word cannot be read. */
static __always_inline int egress_table_idx_pair(void *ctx, __u32 idx_off, __u32 h, __u32 *ret_lo,
						 __u32 *ret_hi)
{
	const __u64 *w;
	__u32 lo;

	w = EGRESS_TABLE_WORD(ctx, idx_off + (h >> 1));
	if (!w)
		return -1;
	if (!(h & 1)) {
		*ret_lo = (__u32)*w;
		*ret_hi = (__u32)(*w >> 32);
		return 0;
	}
	lo = (__u32)(*w >> 32);
	w = EGRESS_TABLE_WORD(ctx, idx_off + (h >> 1) + 1);
	if (!w)
		return -1;
	*ret_lo = lo;
	*ret_hi = (__u32)*w;
	return 0;
}

/* The country of the last range in [lo, hi] whose start <= addr (IPv4, host order), by binary
 * search; the caller guarantees start[lo] <= addr. Returns 0 when a word cannot be read or the
 * bounds are inconsistent (lo > hi, or a bucket beyond EGRESS_TABLE_MAX_STEPS steps). */
static __always_inline __u16 egress_search4(void *ctx, __u32 addr, __u32 lo, __u32 hi)
{
	const __u64 *w;
	__u32 mid, i;
	__u16 cc = 0;
	int have_cc = 0;

	/* Invariant: start[lo] <= addr; the answer is in [lo, hi]. Each step at least halves
	 * hi - lo, so EGRESS_TABLE_MAX_STEPS steps settle buckets of up to 2^MAX_STEPS ranges. */
	for (i = 0; i < EGRESS_TABLE_MAX_STEPS; i++) {
		if (lo >= hi)
			break;
		mid = lo + ((hi - lo + 1) >> 1);
		w = EGRESS_TABLE_WORD(ctx, EGRESS_TABLE_V4_RNG + mid);
		if (!w)
			return 0;
		if ((__u32)(*w >> 32) <= addr) {
			lo = mid;
			cc = (__u16)*w;
			have_cc = 1;
		} else {
			hi = mid - 1;
		}
	}
	if (lo != hi)
		return 0; /* lo > hi or a bucket beyond the bound: not a valid image */
	if (have_cc)
		return cc;
	w = EGRESS_TABLE_WORD(ctx, EGRESS_TABLE_V4_RNG + lo);
	return w ? (__u16)*w : 0;
}

/* Country id of IPv4 address addr (host order) in the image behind ctx (egress_abi.h, "Lookup,
 * IPv4"): the direct index entry of addr's /16 answers for a /16 inside one range; else the entry
 * of addr's /24 in the /16's block answers for a /24 inside one range; else a binary search over
 * the ranges that meet the /24 (block entries j, j + 1) or the /16 (idx[h], idx[h + 1]). Returns 0
 * (unknown) for addresses without data and whenever a word cannot be read or the image is
 * inconsistent. */
static __always_inline __u16 egress_lookup4(void *ctx, __u32 addr)
{
	const __u64 *w;
	__u32 e, lo, hi, j, blk;

	w = EGRESS_TABLE_WORD(ctx, EGRESS_TABLE_V4_DIR + (addr >> 17));
	if (!w)
		return 0;
	e = (__u32)(*w >> (((addr >> 16) & 1) * 32));
	if (!(e & EGRESS_TABLE_DIR_BLOCK)) {
		if (e & EGRESS_TABLE_DIR_DIRECT)
			return (__u16)(e & EGRESS_TABLE_MULTI);
		if (egress_table_idx_pair(ctx, EGRESS_TABLE_V4_IDX, addr >> 16, &lo, &hi) < 0)
			return 0;
		return egress_search4(ctx, addr, lo, hi);
	}
	blk = e & 0x7fffffffU;
	j = (addr >> 8) & 0xff;
	w = EGRESS_TABLE_WORD(ctx, blk + (j >> 1));
	if (!w)
		return 0;
	e = (__u32)(*w >> ((j & 1) * 32));
	if ((e & EGRESS_TABLE_MULTI) != EGRESS_TABLE_MULTI)
		return (__u16)(e & EGRESS_TABLE_MULTI);
	if (j & 1) {
		w = EGRESS_TABLE_WORD(ctx, blk + (j >> 1) + 1);
		if (!w)
			return 0;
		hi = (__u32)*w;
	} else {
		hi = (__u32)(*w >> 32);
	}
	return egress_search4(ctx, addr, e >> 10, hi >> 10);
}

/* Country id of the IPv6 address hi:lo (bits 127..64 and 63..0, host order) in the image behind
 * ctx; same search as egress_lookup4 over the top 16 bits. Returns 0 (unknown) for addresses
 * without data and whenever a word cannot be read or the image is inconsistent. */
static __always_inline __u16 egress_lookup6(void *ctx, __u64 hi, __u64 lo)
{
	const __u64 *w;
	__u32 idx_off, rng_off, cc_off, first, last, mid, i;
	int le;

	w = EGRESS_TABLE_WORD(ctx, EGRESS_TABLE_HDR_OFF_V6_IDX);
	if (!w)
		return 0;
	idx_off = (__u32)*w;
	w = EGRESS_TABLE_WORD(ctx, EGRESS_TABLE_HDR_OFF_V6_RNG);
	if (!w)
		return 0;
	rng_off = (__u32)*w;

	if (egress_table_idx_pair(ctx, idx_off, (__u32)(hi >> 48), &first, &last) < 0)
		return 0;

	for (i = 0; i < EGRESS_TABLE_MAX_STEPS; i++) {
		if (first >= last)
			break;
		mid = first + ((last - first + 1) >> 1);
		w = EGRESS_TABLE_WORD(ctx, rng_off + 2 * mid);
		if (!w)
			return 0;
		if (*w != hi) {
			le = *w < hi;
		} else {
			w = EGRESS_TABLE_WORD(ctx, rng_off + 2 * mid + 1);
			if (!w)
				return 0;
			le = *w <= lo;
		}
		if (le)
			first = mid;
		else
			last = mid - 1;
	}
	if (first != last)
		return 0;

	w = EGRESS_TABLE_WORD(ctx, EGRESS_TABLE_HDR_OFF_V6_CC);
	if (!w)
		return 0;
	cc_off = (__u32)*w;
	w = EGRESS_TABLE_WORD(ctx, cc_off + (first >> 2));
	if (!w)
		return 0;
	return (__u16)(*w >> ((first & 3) * 16));
}

#endif /* EGRESS_LOOKUP_H */
