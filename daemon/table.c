/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * table.c - compile a geo_db into the GeoIP table image (layout: include/egress_abi.h) and search
 * it with the same functions the BPF programs use (include/egress_lookup.h).
 */
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "egress_abi.h"

/* Userspace word accessor for egress_lookup.h: a bounds-checked pointer into the image. */
static inline const __u64 *table_word(const struct table_image *img, __u32 i)
{
	if (i >= img->nwords)
		return NULL;
	return (const __u64 *)(const void *)&img->words[i];
}

#define EGRESS_TABLE_WORD(ctx, i) table_word((const struct table_image *)(ctx), (i))
#include "egress_lookup.h"

#define IDX_LAST (EGRESS_TABLE_IDX_ENTRIES - 1) /* 65536 */

/* One family's partition of the address space: n ranges, starts strictly increasing from 0. */
struct partition {
	u128 *start;
	uint16_t *cc;
	size_t n;
};

static void partition_free(struct partition *p)
{
	free(p->start);
	free(p->cc);
	p->start = NULL;
	p->cc = NULL;
	p->n = 0;
}

static void partition_push(struct partition *p, u128 start, uint16_t cc)
{
	if (p->n > 0 && p->cc[p->n - 1] == cc)
		return; /* same country as the range before: it extends that range */
	p->start[p->n] = start;
	p->cc[p->n] = cc;
	p->n++;
}

/* Spans (sorted, disjoint, inside 0..max) -> partition of 0..max. Gaps become country 0; spans
 * of country 0 are treated as gaps. Returns 0, -EINVAL, -ENOMEM or -E2BIG. */
static int partition_build(const struct geo_span *spans, size_t n, u128 max, struct partition *ret)
{
	struct partition p = {};
	u128 next = 0;
	int done = 0;

	if (n > EGRESS_TABLE_MAX_RANGES)
		return -E2BIG;
	p.start = malloc((2 * n + 1) * sizeof(*p.start));
	p.cc = malloc((2 * n + 1) * sizeof(*p.cc));
	if (!p.start || !p.cc) {
		partition_free(&p);
		return -ENOMEM;
	}

	for (size_t i = 0; i < n; i++) {
		const struct geo_span *s = &spans[i];

		if (done || s->start < next || s->end < s->start || s->end > max) {
			partition_free(&p);
			return -EINVAL;
		}
		if (s->start > next)
			partition_push(&p, next, 0);
		partition_push(&p, s->start, s->country);
		if (s->end == max)
			done = 1; /* next would wrap (IPv6) or leave the family (IPv4) */
		else
			next = s->end + 1;
	}
	if (!done)
		partition_push(&p, next, 0);

	if (p.n > EGRESS_TABLE_MAX_RANGES) {
		partition_free(&p);
		return -E2BIG;
	}
	*ret = p;
	return 0;
}

static void idx_set(uint64_t *idx, uint32_t h, uint32_t v)
{
	if (h & 1)
		idx[h >> 1] |= (uint64_t)v << 32;
	else
		idx[h >> 1] |= v;
}

static uint32_t idx_get(const uint64_t *idx, uint32_t h)
{
	return (uint32_t)(idx[h >> 1] >> ((h & 1) * 32));
}

/* Fill the (zeroed) packed index at idx: entry h = number of the range containing h << shift
 * (shift = family bits - 16), entry 65536 = n - 1. Returns the largest bucket's candidate count,
 * idx[h + 1] - idx[h] + 1. */
static uint64_t index_build(uint64_t *idx, const struct partition *p, unsigned shift)
{
	uint64_t max_bucket = 0;
	size_t r = 0;

	for (uint32_t h = 0; h < IDX_LAST; h++) {
		u128 a = (u128)h << shift;

		while (r + 1 < p->n && p->start[r + 1] <= a)
			r++;
		idx_set(idx, h, (uint32_t)r);
	}
	idx_set(idx, IDX_LAST, (uint32_t)(p->n - 1));

	for (uint32_t h = 0; h < IDX_LAST; h++) {
		uint64_t c = (uint64_t)idx_get(idx, h + 1) - idx_get(idx, h) + 1;

		if (c > max_bucket)
			max_bucket = c;
	}
	return max_bucket;
}

#define BLK_MIN_RANGES 4 /* a /16 met by this many ranges or more gets a second-level block */
#define V4_START(rng, i) ((uint32_t)((rng)[i] >> 32))
#define V4_CC(rng, i) ((uint32_t)((rng)[i] & EGRESS_TABLE_MULTI))

/* The IPv4 direct index and second-level blocks (egress_abi.h) of the n ranges at rng (valid: range
 * 0 starts at 0, starts increasing, country ids below 0x3ff). dir: EGRESS_TABLE_DIR_WORDS zeroed
 * words; blk: zeroed room for the blocks, the first one at word offset blk_off of the image, or
 * NULL to count only. Returns the number of blocks. */
static uint64_t dir4_build(const uint64_t *rng, uint64_t n, uint64_t *dir, uint64_t *blk,
			   uint64_t blk_off)
{
	uint64_t nblk = 0, r = 0;

	for (uint32_t h = 0; h < IDX_LAST; h++) {
		uint64_t a = (uint64_t)h << 16, end = a | 0xffff, k = 1, next, rr;
		uint64_t *b;

		while (r + 1 < n && V4_START(rng, r + 1) <= a)
			r++;
		while (r + k < n && V4_START(rng, r + k) <= end)
			k++; /* ranges r .. r + k - 1 meet the /16 */
		if (k == 1) {
			if (dir)
				idx_set(dir, h, EGRESS_TABLE_DIR_DIRECT | V4_CC(rng, r));
			continue;
		}
		if (k < BLK_MIN_RANGES)
			continue; /* entry 0: search idx[h] .. idx[h + 1] */
		if (dir)
			idx_set(dir, h,
				EGRESS_TABLE_DIR_BLOCK |
					(uint32_t)(blk_off + nblk * EGRESS_TABLE_BLK_WORDS));
		if (blk) {
			b = blk + nblk * EGRESS_TABLE_BLK_WORDS;
			rr = r;
			for (uint32_t j = 0; j < 256; j++) {
				uint64_t s24 = a | (uint64_t)j << 8;
				int one;

				while (rr + 1 < n && V4_START(rng, rr + 1) <= s24)
					rr++;
				one = rr + 1 >= n || V4_START(rng, rr + 1) > (s24 | 0xff);
				idx_set(b, j,
					(uint32_t)(rr << 10) |
						(one ? V4_CC(rng, rr) : EGRESS_TABLE_MULTI));
			}
			next = r + k - 1; /* the range containing end + 1 (= idx[h + 1]) */
			if (next + 1 < n && V4_START(rng, next + 1) == end + 1)
				next++;
			idx_set(b, 256, (uint32_t)(next << 10) | EGRESS_TABLE_MULTI);
		}
		nblk++;
	}
	return nblk;
}

int table_build(const struct geo_db *db, uint64_t generation, struct table_image *ret)
{
	struct partition p4 = {}, p6 = {};
	uint64_t *w = NULL, *rng4 = NULL, nblk;
	size_t off_v6_idx, off_v6_rng, off_v6_cc, off_v4_blk, nwords;
	int r;

	r = partition_build(db->v4, db->n4, (u128)UINT32_MAX, &p4);
	if (r < 0)
		return r;
	r = partition_build(db->v6, db->n6, ~(u128)0, &p6);
	if (r < 0)
		goto out;

	off_v6_idx = EGRESS_TABLE_V4_RNG + p4.n;
	off_v6_rng = off_v6_idx + EGRESS_TABLE_IDX_WORDS;
	off_v6_cc = off_v6_rng + 2 * p6.n;
	off_v4_blk = off_v6_cc + (p6.n + 3) / 4;

	/* the IPv4 ranges first: the number of blocks depends on them */
	rng4 = malloc(p4.n * sizeof(*rng4));
	if (!rng4) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < p4.n; i++)
		rng4[i] = ((uint64_t)p4.start[i] << 32) | p4.cc[i];
	nblk = dir4_build(rng4, p4.n, NULL, NULL, off_v4_blk);
	nwords = off_v4_blk + nblk * EGRESS_TABLE_BLK_WORDS;

	w = calloc(nwords, sizeof(*w));
	if (!w) {
		r = -ENOMEM;
		goto out;
	}
	w[0] = EGRESS_TABLE_MAGIC;
	w[1] = generation;
	w[2] = p4.n;
	w[3] = p6.n;
	w[EGRESS_TABLE_HDR_OFF_V6_IDX] = off_v6_idx;
	w[EGRESS_TABLE_HDR_OFF_V6_RNG] = off_v6_rng;
	w[EGRESS_TABLE_HDR_OFF_V6_CC] = off_v6_cc;
	w[EGRESS_TABLE_HDR_V4_BLOCKS] = nblk;

	if (index_build(w + EGRESS_TABLE_V4_IDX, &p4, 16) > (1ULL << EGRESS_TABLE_MAX_STEPS) ||
	    index_build(w + off_v6_idx, &p6, 112) > (1ULL << EGRESS_TABLE_MAX_STEPS)) {
		r = -E2BIG;
		goto out;
	}

	memcpy(w + EGRESS_TABLE_V4_RNG, rng4, p4.n * sizeof(*rng4));
	dir4_build(rng4, p4.n, w + EGRESS_TABLE_V4_DIR, w + off_v4_blk, off_v4_blk);
	for (size_t i = 0; i < p6.n; i++) {
		w[off_v6_rng + 2 * i] = (uint64_t)(p6.start[i] >> 64);
		w[off_v6_rng + 2 * i + 1] = (uint64_t)p6.start[i];
		w[off_v6_cc + i / 4] |= (uint64_t)p6.cc[i] << (16 * (i % 4));
	}

	*ret = (struct table_image){ .words = w, .nwords = nwords, .n4 = p4.n, .n6 = p6.n };
	w = NULL;
	r = 0;
out:
	free(w);
	free(rng4);
	partition_free(&p4);
	partition_free(&p6);
	return r;
}

void table_image_free(struct table_image *img)
{
	if (!img)
		return;
	free(img->words);
	*img = (struct table_image){};
}

static int table_usable(const struct table_image *img)
{
	return img && img->words && img->nwords >= EGRESS_TABLE_HDR_WORDS &&
	       img->words[0] == EGRESS_TABLE_MAGIC;
}

uint16_t table_lookup4(const struct table_image *img, uint32_t addr)
{
	if (!table_usable(img))
		return 0;
	return egress_lookup4((void *)img, addr);
}

uint16_t table_lookup6_u64(const struct table_image *img, uint64_t hi, uint64_t lo)
{
	if (!table_usable(img))
		return 0;
	return egress_lookup6((void *)img, hi, lo);
}

uint16_t table_lookup6(const struct table_image *img, const uint8_t addr[16])
{
	uint64_t hi = 0, lo = 0;

	for (int i = 0; i < 8; i++) {
		hi = hi << 8 | addr[i];
		lo = lo << 8 | addr[8 + i];
	}
	return table_lookup6_u64(img, hi, lo);
}

uint64_t table_image_bytes(const struct table_image *img)
{
	return img ? (uint64_t)img->nwords * sizeof(uint64_t) : 0;
}

uint32_t table_max_bucket(const struct table_image *img, int family)
{
	uint64_t off, max = 0;

	if (!img || !img->words || img->nwords < EGRESS_TABLE_HDR_WORDS)
		return 0;
	if (family == 4)
		off = EGRESS_TABLE_V4_IDX;
	else if (family == 6)
		off = img->words[EGRESS_TABLE_HDR_OFF_V6_IDX];
	else
		return 0;
	if (off > img->nwords || img->nwords - off < EGRESS_TABLE_IDX_WORDS)
		return 0;
	for (uint32_t h = 0; h < IDX_LAST; h++) {
		uint32_t a = idx_get(img->words + off, h), b = idx_get(img->words + off, h + 1);
		uint64_t c = b >= a ? (uint64_t)b - a + 1 : 0;

		if (c > max)
			max = c;
	}
	return max > UINT32_MAX ? UINT32_MAX : (uint32_t)max;
}

/* Start of range i of a family (already bounds-checked by the caller). */
static u128 range_start(const uint64_t *w, int family, uint64_t rng_off, uint64_t i)
{
	if (family == 4)
		return w[rng_off + i] >> 32;
	return (u128)w[rng_off + 2 * i] << 64 | w[rng_off + 2 * i + 1];
}

static uint16_t range_cc(const uint64_t *w, int family, uint64_t rng_off, uint64_t cc_off,
			 uint64_t i)
{
	if (family == 4)
		return (uint16_t)w[rng_off + i];
	return (uint16_t)(w[cc_off + i / 4] >> (16 * (i % 4)));
}

/* Checks of one family whose word ranges are already known to be inside the image. */
static int verify_family(const uint64_t *w, int family, uint64_t n, uint64_t idx_off,
			 uint64_t rng_off, uint64_t cc_off, struct diag *errors)
{
	unsigned shift = family == 4 ? 16 : 112;
	int bad = 0;

	if (family == 4) {
		for (uint64_t i = 0; i < n; i++)
			if ((w[rng_off + i] & 0xffffffff) >> 16) {
				diag_add(errors,
					 "table: IPv4 range %llu: bits 31..16 of its word not 0",
					 (unsigned long long)i);
				bad = 1;
				break;
			}
	}
	if (range_start(w, family, rng_off, 0) != 0) {
		diag_add(errors, "table: IPv%d range 0 does not start at address 0", family);
		bad = 1;
	}
	for (uint64_t i = 1; i < n; i++)
		if (range_start(w, family, rng_off, i) <= range_start(w, family, rng_off, i - 1)) {
			diag_add(errors,
				 "table: IPv%d range %llu: start not above the previous one",
				 family, (unsigned long long)i);
			bad = 1;
			break;
		}
	for (uint64_t i = 0; i < n; i++)
		if (range_cc(w, family, rng_off, cc_off, i) >= EGRESS_COUNTRY_MAX) {
			diag_add(errors, "table: IPv%d range %llu: country id %u out of range",
				 family, (unsigned long long)i,
				 range_cc(w, family, rng_off, cc_off, i));
			bad = 1;
			break;
		}
	if (family == 6)
		for (uint64_t i = n; i % 4; i++)
			if (range_cc(w, family, rng_off, cc_off, i) != 0) {
				diag_add(errors, "table: IPv6 country slot %llu past n6 not 0",
					 (unsigned long long)i);
				bad = 1;
				break;
			}

	for (uint32_t h = 0; h < EGRESS_TABLE_IDX_ENTRIES; h++) {
		uint64_t e = idx_get(w + idx_off, h), want;

		if (h == IDX_LAST) {
			want = n - 1;
		} else {
			u128 a = (u128)h << shift;

			if (e >= n || range_start(w, family, rng_off, e) > a ||
			    (e + 1 < n && range_start(w, family, rng_off, e + 1) <= a)) {
				diag_add(errors,
					 "table: IPv%d index entry %u: %llu is not the range "
					 "containing "
					 "its bucket's first address",
					 family, h, (unsigned long long)e);
				bad = 1;
				break;
			}
			want = e;
		}
		if (e != want) {
			diag_add(errors, "table: IPv%d index entry 65536 is %llu, not n - 1 = %llu",
				 family, (unsigned long long)e, (unsigned long long)want);
			bad = 1;
			break;
		}
		if (h < IDX_LAST && (uint64_t)idx_get(w + idx_off, h + 1) < e) {
			diag_add(errors, "table: IPv%d index entry %u decreases", family, h + 1);
			bad = 1;
			break;
		}
		if (h < IDX_LAST && (uint64_t)idx_get(w + idx_off, h + 1) - e + 1 >
					    (1ULL << EGRESS_TABLE_MAX_STEPS)) {
			diag_add(errors, "table: IPv%d bucket %u exceeds 2^%d ranges", family, h,
				 EGRESS_TABLE_MAX_STEPS);
			bad = 1;
			break;
		}
	}
	return bad ? -EINVAL : 0;
}

/* The IPv4 direct index and blocks of img equal those dir4_build computes from its (already
 * verified) IPv4 ranges. Returns 0 or -EINVAL (one message), -ENOMEM. */
static int verify_dir4(const struct table_image *img, uint64_t n4, uint64_t blk_off, uint64_t nblk,
		       struct diag *errors)
{
	const uint64_t *w = img->words, *rng = w + EGRESS_TABLE_V4_RNG;
	uint64_t *dir, *blk, want;
	int r = 0;

	want = dir4_build(rng, n4, NULL, NULL, blk_off);
	if (want != nblk) {
		diag_add(errors, "table: %llu IPv4 blocks, the ranges need %llu",
			 (unsigned long long)nblk, (unsigned long long)want);
		return -EINVAL;
	}
	dir = calloc(EGRESS_TABLE_DIR_WORDS + nblk * EGRESS_TABLE_BLK_WORDS, sizeof(*dir));
	if (!dir)
		return -ENOMEM;
	blk = dir + EGRESS_TABLE_DIR_WORDS;
	dir4_build(rng, n4, dir, blk, blk_off);
	if (memcmp(dir, w + EGRESS_TABLE_V4_DIR, EGRESS_TABLE_DIR_WORDS * sizeof(*dir)) != 0) {
		diag_add(errors, "table: IPv4 direct index differs from the ranges");
		r = -EINVAL;
	}
	if (memcmp(blk, w + blk_off, nblk * EGRESS_TABLE_BLK_WORDS * sizeof(*blk)) != 0) {
		diag_add(errors, "table: IPv4 second-level blocks differ from the ranges");
		r = -EINVAL;
	}
	free(dir);
	return r;
}

int table_verify(const struct table_image *img, struct diag *errors)
{
	struct diag none = {};
	const uint64_t *w;
	uint64_t n4, n6, off_idx, off_rng, off_cc, nblk;
	int r = 0;

	if (!errors)
		errors = &none;
	if (!img || !img->words || img->nwords < EGRESS_TABLE_V4_RNG + 1) {
		diag_add(errors, "table: image missing or shorter than header and IPv4 index");
		r = -EINVAL;
		goto out;
	}
	w = img->words;
	n4 = w[2];
	n6 = w[3];
	off_idx = w[EGRESS_TABLE_HDR_OFF_V6_IDX];
	off_rng = w[EGRESS_TABLE_HDR_OFF_V6_RNG];
	off_cc = w[EGRESS_TABLE_HDR_OFF_V6_CC];
	nblk = w[EGRESS_TABLE_HDR_V4_BLOCKS];
	if (w[0] != EGRESS_TABLE_MAGIC) {
		diag_add(errors, "table: bad magic 0x%016llx", (unsigned long long)w[0]);
		r = -EINVAL;
	}
	for (unsigned i = EGRESS_TABLE_HDR_V4_BLOCKS + 1; i < EGRESS_TABLE_HDR_WORDS; i++)
		if (w[i] != 0) {
			diag_add(errors, "table: reserved header word %u not 0", i);
			r = -EINVAL;
		}
	if (n4 < 1 || n4 > EGRESS_TABLE_MAX_RANGES || n6 < 1 || n6 > EGRESS_TABLE_MAX_RANGES) {
		diag_add(errors, "table: range counts n4=%llu n6=%llu outside 1..%u",
			 (unsigned long long)n4, (unsigned long long)n6, EGRESS_TABLE_MAX_RANGES);
		r = -EINVAL;
		goto out;
	}
	if (n4 != img->n4 || n6 != img->n6) {
		diag_add(errors, "table: header counts differ from the image's n4/n6");
		r = -EINVAL;
	}
	/* The counts are bounded above, so these sums cannot overflow. */
	if (off_idx != EGRESS_TABLE_V4_RNG + n4 || off_rng != off_idx + EGRESS_TABLE_IDX_WORDS ||
	    off_cc != off_rng + 2 * n6 || nblk > EGRESS_TABLE_IDX_ENTRIES ||
	    img->nwords != off_cc + (n6 + 3) / 4 + nblk * EGRESS_TABLE_BLK_WORDS) {
		diag_add(errors,
			 "table: offsets idx=%llu rng=%llu cc=%llu, %llu IPv4 blocks or size %zu "
			 "words do not match n4=%llu n6=%llu",
			 (unsigned long long)off_idx, (unsigned long long)off_rng,
			 (unsigned long long)off_cc, (unsigned long long)nblk, img->nwords,
			 (unsigned long long)n4, (unsigned long long)n6);
		r = -EINVAL;
		goto out;
	}
	if (verify_family(w, 4, n4, EGRESS_TABLE_V4_IDX, EGRESS_TABLE_V4_RNG, 0, errors) < 0)
		r = -EINVAL;
	else if (verify_dir4(img, n4, off_cc + (n6 + 3) / 4, nblk, errors) < 0)
		r = -EINVAL;
	if (verify_family(w, 6, n6, off_idx, off_rng, off_cc, errors) < 0)
		r = -EINVAL;
out:
	diag_free(&none);
	return r;
}
