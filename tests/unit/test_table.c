/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of daemon/table.c and include/egress_lookup.h: exact images and lookups for small
 * synthetic geo_dbs (edges of both address spaces, merging, crowded buckets, ranges crossing
 * buckets, size limits, damaged images), then the embedded world data against a brute-force
 * reference for millions of fixed-seed random addresses and every span edge.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "egress_abi.h"
#include "geo.h"
#include "table.h"

#define ID(a, b) ((uint16_t)(((a) - 'A') * 26 + ((b) - 'A') + 1))
#define V4(a, b, c, d) ((u128)(((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((c) << 8) | (d)))
#define V6(h, l) (((u128)(uint64_t)(h) << 64) | (uint64_t)(l))
#define ALL128 (~(u128)0)
#define IDX_WORDS EGRESS_TABLE_IDX_WORDS

/* ---- helpers -------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint16_t lookup6(const struct table_image *img, u128 a)
{
	uint8_t b[16];

	for (int i = 0; i < 16; i++)
		b[i] = (uint8_t)(a >> (8 * (15 - i)));
	return table_lookup6(img, b);
}

/* Lookup through both entry points of one family; the IPv6 ones must agree. */
static uint16_t lookup(const struct table_image *img, int family, u128 a)
{
	uint16_t c;

	if (family == 4)
		return table_lookup4(img, (uint32_t)a);
	c = lookup6(img, a);
	assert_int_equal(c, table_lookup6_u64(img, (uint64_t)(a >> 64), (uint64_t)a));
	return c;
}

/* Reference: the span containing a, by binary search over the spans (independent of table.c). */
static uint16_t ref_find(const struct geo_span *v, size_t n, u128 a)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && v[lo - 1].end >= a ? v[lo - 1].country : 0;
}

static void build_ok(const struct geo_db *db, struct table_image *img)
{
	struct diag errors = {};

	assert_int_equal(table_build(db, 7, img), 0);
	if (table_verify(img, &errors) < 0)
		for (size_t i = 0; i < errors.n; i++)
			fprintf(stderr, "%s\n", errors.msgs[i]);
	assert_int_equal(errors.n, 0);
	diag_free(&errors);
	assert_int_equal(table_verify(img, NULL), 0);
}

/* Header words and total size of an image with n4 / n6 ranges and nblk IPv4 blocks. */
static void check_header(const struct table_image *img, uint64_t n4, uint64_t n6, uint64_t nblk)
{
	const uint64_t *w = img->words;
	uint64_t off_idx = EGRESS_TABLE_V4_RNG + n4, off_rng = off_idx + IDX_WORDS,
		 off_cc = off_rng + 2 * n6;

	assert_int_equal(img->n4, n4);
	assert_int_equal(img->n6, n6);
	assert_int_equal(w[0], EGRESS_TABLE_MAGIC);
	assert_int_equal(w[1], 7);
	assert_int_equal(w[2], n4);
	assert_int_equal(w[3], n6);
	assert_int_equal(w[4], off_idx);
	assert_int_equal(w[5], off_rng);
	assert_int_equal(w[6], off_cc);
	assert_int_equal(w[7], nblk);
	for (int i = 8; i < EGRESS_TABLE_HDR_WORDS; i++)
		assert_int_equal(w[i], 0);
	assert_int_equal(img->nwords, off_cc + (n6 + 3) / 4 + nblk * EGRESS_TABLE_BLK_WORDS);
	assert_int_equal(table_image_bytes(img), img->nwords * 8);
}

static uint32_t idx_entry(const struct table_image *img, uint64_t off, uint32_t h)
{
	return (uint32_t)(img->words[off + h / 2] >> (32 * (h % 2)));
}

/* Every lookup of every address in [first, last] (family 4 or 6) equals the reference. */
static void check_span_exhaustive(const struct table_image *img, const struct geo_db *db,
				  int family, u128 first, u128 last)
{
	for (u128 a = first;; a++) {
		uint16_t want =
			family == 4 ? ref_find(db->v4, db->n4, a) : ref_find(db->v6, db->n6, a);

		assert_int_equal(lookup(img, family, a), want);
		if (a == last)
			break;
	}
}

/* ---- synthetic data ----------------------------------------------------------------------- */

static void test_empty(void **state)
{
	struct geo_db db = {};
	struct table_image img = {};

	build_ok(&db, &img);
	check_header(&img, 1, 1, 0);
	assert_int_equal(img.nwords,
			 16 + EGRESS_TABLE_DIR_WORDS + IDX_WORDS + 1 + IDX_WORDS + 2 + 1);
	/* every /16 inside the one range: direct entries, country 0 */
	for (uint32_t h = 0; h < 65536; h++)
		assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, h), EGRESS_TABLE_DIR_DIRECT);
	/* one range per family, starting at 0, country 0; every index entry 0 */
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG], 0);
	for (uint32_t h = 0; h < EGRESS_TABLE_IDX_ENTRIES; h++) {
		assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, h), 0);
		assert_int_equal(idx_entry(&img, img.words[4], h), 0);
	}
	assert_int_equal(table_max_bucket(&img, 4), 1);
	assert_int_equal(table_max_bucket(&img, 6), 1);
	assert_int_equal(lookup(&img, 4, 0), 0);
	assert_int_equal(lookup(&img, 4, UINT32_MAX), 0);
	assert_int_equal(lookup(&img, 6, 0), 0);
	assert_int_equal(lookup(&img, 6, ALL128), 0);
	table_image_free(&img);
	assert_null(img.words);
	assert_int_equal(img.nwords, 0);
	table_image_free(&img);
}

static void test_single_span(void **state)
{
	struct geo_span v4[] = { { V4(1, 2, 3, 0), V4(1, 2, 3, 255), ID('D', 'E') } };
	struct geo_span v6[] = { { V6(0x20010db800000000ULL, 0), V6(0x20010db8ffffffffULL, ~0ULL),
				   ID('F', 'R') } };
	struct geo_db db = { .v4 = v4, .n4 = 1, .v6 = v6, .n6 = 1 };
	struct table_image img = {};
	uint64_t off_rng;

	build_ok(&db, &img);
	check_header(&img, 3, 3, 0);
	/* exact range words: gap, span, gap */
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG + 0], 0);
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG + 1],
			 ((uint64_t)0x01020300 << 32) | ID('D', 'E'));
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG + 2], ((uint64_t)0x01020400 << 32) | 0);
	off_rng = img.words[5];
	assert_int_equal(img.words[off_rng + 0], 0);
	assert_int_equal(img.words[off_rng + 1], 0);
	assert_int_equal(img.words[off_rng + 2], 0x20010db800000000ULL);
	assert_int_equal(img.words[off_rng + 3], 0);
	assert_int_equal(img.words[off_rng + 4], 0x20010db900000000ULL);
	assert_int_equal(img.words[off_rng + 5], 0);
	assert_int_equal(img.words[img.words[6]], (uint64_t)ID('F', 'R') << 16);
	/* index: buckets up to 0x0102 -> range 0 (1.2.0.0 is in the gap), after it -> 2 */
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0101), 0);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0102), 0);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0103), 2);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 65536), 2);
	assert_int_equal(idx_entry(&img, img.words[4], 0x2001), 0);
	assert_int_equal(idx_entry(&img, img.words[4], 0x2002), 2);
	assert_int_equal(table_max_bucket(&img, 4), 3);
	assert_int_equal(table_max_bucket(&img, 6), 3);

	assert_int_equal(lookup(&img, 4, V4(0, 0, 0, 0)), 0);
	assert_int_equal(lookup(&img, 4, V4(1, 2, 2, 255)), 0);
	assert_int_equal(lookup(&img, 4, V4(1, 2, 3, 0)), ID('D', 'E'));
	assert_int_equal(lookup(&img, 4, V4(1, 2, 3, 77)), ID('D', 'E'));
	assert_int_equal(lookup(&img, 4, V4(1, 2, 3, 255)), ID('D', 'E'));
	assert_int_equal(lookup(&img, 4, V4(1, 2, 4, 0)), 0);
	assert_int_equal(lookup(&img, 4, V4(255, 255, 255, 255)), 0);
	assert_int_equal(lookup(&img, 6, V6(0x20010db7ffffffffULL, ~0ULL)), 0);
	assert_int_equal(lookup(&img, 6, V6(0x20010db800000000ULL, 0)), ID('F', 'R'));
	assert_int_equal(lookup(&img, 6, V6(0x20010db8ffffffffULL, ~0ULL)), ID('F', 'R'));
	assert_int_equal(lookup(&img, 6, V6(0x20010db900000000ULL, 0)), 0);
	assert_int_equal(lookup(&img, 6, ALL128), 0);
	check_span_exhaustive(&img, &db, 4, V4(1, 2, 0, 0), V4(1, 4, 0, 0));
	table_image_free(&img);
}

static void test_space_edges(void **state)
{
	struct geo_span v4[] = {
		{ 0, 0, ID('U', 'S') },
		{ V4(255, 255, 255, 255), V4(255, 255, 255, 255), ID('F', 'R') },
	};
	struct geo_span v6[] = {
		{ 0, 0, ID('U', 'S') },
		{ ALL128, ALL128, ID('F', 'R') },
	};
	struct geo_db db = { .v4 = v4, .n4 = 2, .v6 = v6, .n6 = 2 };
	struct table_image img = {};

	build_ok(&db, &img);
	check_header(&img, 3, 3, 0);
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG + 0], ID('U', 'S'));
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG + 1], ((uint64_t)1 << 32) | 0);
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG + 2], (0xffffffffULL << 32) | ID('F', 'R'));
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0), 0);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 1), 1);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 65535), 1);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 65536), 2);

	assert_int_equal(lookup(&img, 4, 0), ID('U', 'S'));
	assert_int_equal(lookup(&img, 4, 1), 0);
	assert_int_equal(lookup(&img, 4, 0xfffffffe), 0);
	assert_int_equal(lookup(&img, 4, 0xffffffff), ID('F', 'R'));
	assert_int_equal(lookup(&img, 6, 0), ID('U', 'S'));
	assert_int_equal(lookup(&img, 6, 1), 0);
	assert_int_equal(lookup(&img, 6, ALL128 - 1), 0);
	assert_int_equal(lookup(&img, 6, ALL128), ID('F', 'R'));
	check_span_exhaustive(&img, &db, 4, 0, 70000);
	check_span_exhaustive(&img, &db, 4, 0xffffffff - 70000, 0xffffffff);
	check_span_exhaustive(&img, &db, 6, 0, 1000);
	check_span_exhaustive(&img, &db, 6, ALL128 - 1000, ALL128);
	table_image_free(&img);
}

static void test_whole_space(void **state)
{
	struct geo_span v4[] = { { 0, UINT32_MAX, ID('D', 'E') } };
	struct geo_span v6[] = { { 0, ALL128, ID('C', 'H') } };
	struct geo_db db = { .v4 = v4, .n4 = 1, .v6 = v6, .n6 = 1 };
	struct table_image img = {};
	uint64_t s = 1;

	build_ok(&db, &img);
	check_header(&img, 1, 1, 0);
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG], ID('D', 'E'));
	assert_int_equal(img.words[img.words[6]], ID('C', 'H'));
	assert_int_equal(lookup(&img, 4, 0), ID('D', 'E'));
	assert_int_equal(lookup(&img, 4, UINT32_MAX), ID('D', 'E'));
	assert_int_equal(lookup(&img, 6, 0), ID('C', 'H'));
	assert_int_equal(lookup(&img, 6, ALL128), ID('C', 'H'));
	for (int i = 0; i < 10000; i++) {
		uint64_t r = splitmix64(&s);

		assert_int_equal(lookup(&img, 4, (uint32_t)r), ID('D', 'E'));
		assert_int_equal(lookup(&img, 6, V6(r, splitmix64(&s))), ID('C', 'H'));
	}
	table_image_free(&img);
}

static void test_merge(void **state)
{
	/* 10.0.0.0/24 DE + 10.0.1.0/24 DE adjacent: one range. 10.0.2.0/24 FR. Gap. 10.0.4.0/24
	 * FR: not merged with the FR before it (a country-0 gap lies between). A country-0 span is
	 * a gap and merges with the gap after it. */
	struct geo_span v4[] = {
		{ V4(10, 0, 0, 0), V4(10, 0, 0, 255), ID('D', 'E') },
		{ V4(10, 0, 1, 0), V4(10, 0, 1, 255), ID('D', 'E') },
		{ V4(10, 0, 2, 0), V4(10, 0, 2, 255), ID('F', 'R') },
		{ V4(10, 0, 4, 0), V4(10, 0, 4, 255), ID('F', 'R') },
		{ V4(10, 0, 5, 0), V4(10, 0, 5, 255), 0 },
	};
	struct geo_span v6[] = {
		{ V6(0x2a00000000000000ULL, 0), V6(0x2a00000000000000ULL, 5), ID('D', 'E') },
		{ V6(0x2a00000000000000ULL, 6), V6(0x2a00ffffffffffffULL, ~0ULL), ID('D', 'E') },
		{ V6(0x2a01000000000000ULL, 0), ALL128, ID('D', 'E') },
	};
	struct geo_db db = { .v4 = v4, .n4 = 5, .v6 = v6, .n6 = 3 };
	struct table_image img = {};
	uint64_t off_rng;

	build_ok(&db, &img);
	check_header(&img, 6, 2, 1); /* 10.0/16 meets 5 ranges: a block */
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG + 1],
			 ((uint64_t)0x0a000000 << 32) | ID('D', 'E'));
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG + 2],
			 ((uint64_t)0x0a000200 << 32) | ID('F', 'R'));
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG + 3], ((uint64_t)0x0a000300 << 32) | 0);
	assert_int_equal(img.words[EGRESS_TABLE_V4_RNG + 4],
			 ((uint64_t)0x0a000400 << 32) | ID('F', 'R'));
	off_rng = img.words[5];
	assert_int_equal(img.words[off_rng + 2], 0x2a00000000000000ULL);
	assert_int_equal(img.words[off_rng + 3], 0);
	assert_int_equal(img.words[img.words[6]], (uint64_t)ID('D', 'E') << 16);
	assert_int_equal(lookup(&img, 4, V4(10, 0, 1, 255)), ID('D', 'E'));
	assert_int_equal(lookup(&img, 4, V4(10, 0, 3, 0)), 0);
	assert_int_equal(lookup(&img, 4, V4(10, 0, 5, 0)), 0);
	assert_int_equal(lookup(&img, 6, ALL128), ID('D', 'E'));
	assert_int_equal(lookup(&img, 6, V6(0x2a00000000000000ULL, 5)), ID('D', 'E'));
	assert_int_equal(lookup(&img, 6, V6(0x29ffffffffffffffULL, ~0ULL)), 0);
	check_span_exhaustive(&img, &db, 4, V4(9, 255, 255, 0), V4(10, 1, 0, 0));
	table_image_free(&img);
}

static void test_crowded_bucket(void **state)
{
	/* 3000 spans of 10 addresses every 20 inside 10.11.0.0/16, and 3000 IPv6 spans inside
	 * 2001:db8::/32, half of them differing only in the low 64 bits. */
	enum { N = 3000 };
	struct geo_span *v4 = calloc(N, sizeof(*v4)), *v6 = calloc(N, sizeof(*v6));
	struct geo_db db = { .v4 = v4, .n4 = N, .v6 = v6, .n6 = N };
	struct table_image img = {};
	uint64_t s = 42;

	assert_non_null(v4);
	assert_non_null(v6);
	for (unsigned k = 0; k < N; k++) {
		uint16_t c = (uint16_t)(k % 676 + 1);

		v4[k] = (struct geo_span){ V4(10, 11, 0, 0) + 20 * k, V4(10, 11, 0, 0) + 20 * k + 9,
					   c };
		if (k < N / 2)
			v6[k] = (struct geo_span){ V6(0x20010db800000000ULL, 1000ULL * k),
						   V6(0x20010db800000000ULL, 1000ULL * k + 499),
						   c };
		else
			v6[k] = (struct geo_span){ V6(0x20010db800000000ULL + k, 0),
						   V6(0x20010db800000000ULL + k, 1ULL << 63), c };
	}
	build_ok(&db, &img);
	check_header(&img, 2 * N + 1, 2 * N + 1, 1);
	/* bucket 10.11: range containing 10.11.0.0 is span 0 (range 1) up to the last gap (2N) */
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0a0b), 1);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0a0c), 2 * N);
	assert_int_equal(table_max_bucket(&img, 4), 2 * N);
	assert_int_equal(table_max_bucket(&img, 6), 2 * N + 1); /* 2001:: is in range 0 */
	check_span_exhaustive(&img, &db, 4, V4(10, 10, 255, 0), V4(10, 12, 0, 10));
	for (unsigned k = 0; k < N; k++) {
		for (int d = -1; d <= 1; d++) {
			assert_int_equal(lookup(&img, 6, v6[k].start + d),
					 ref_find(v6, N, v6[k].start + d));
			assert_int_equal(lookup(&img, 6, v6[k].end + d),
					 ref_find(v6, N, v6[k].end + d));
		}
		assert_int_equal(lookup(&img, 6, v6[k].start), v6[k].country);
		assert_int_equal(lookup(&img, 6, v6[k].end), v6[k].country);
	}
	for (int i = 0; i < 100000; i++) {
		u128 a = V6(0x20010db800000000ULL + splitmix64(&s) % (N + 2), splitmix64(&s));

		if (i % 2)
			a = V6(0x20010db800000000ULL, splitmix64(&s) % (1000ULL * N));
		assert_int_equal(lookup(&img, 6, a), ref_find(v6, N, a));
	}
	table_image_free(&img);
	free(v4);
	free(v6);
}

static void test_cross_buckets(void **state)
{
	/* Spans that start in one bucket and end several buckets later, one ending exactly at a
	 * bucket's last address, one starting exactly at a bucket's first. */
	struct geo_span v4[] = {
		{ V4(1, 0, 255, 0), V4(1, 3, 0, 255), ID('J', 'P') },
		{ V4(1, 3, 1, 0), V4(1, 4, 255, 255), ID('K', 'R') },
		{ V4(1, 6, 0, 0), V4(1, 6, 0, 0), ID('C', 'N') },
	};
	struct geo_span v6[] = {
		{ V6(0x2400ff0000000000ULL, 0), V6(0x2403000000000000ULL, 17), ID('J', 'P') },
		{ V6(0x2403000000000000ULL, 18), V6(0x2404ffffffffffffULL, ~0ULL), ID('K', 'R') },
		{ V6(0x2406000000000000ULL, 0), V6(0x2406000000000000ULL, 0), ID('C', 'N') },
	};
	struct geo_db db = { .v4 = v4, .n4 = 3, .v6 = v6, .n6 = 3 };
	struct table_image img = {};

	build_ok(&db, &img);
	check_header(&img, 6, 6, 0);
	/* two ranges meet each of 1.0/16, 1.3/16, 1.6/16: searched; 1.4/16 inside KR: direct */
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, 0x0100), 0);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, 0x0103), 0);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, 0x0104),
			 EGRESS_TABLE_DIR_DIRECT | ID('K', 'R'));
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, 0x0106), 0);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0100), 0);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0101), 1);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0103), 1);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0104), 2);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0105), 3);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0106), 4);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_IDX, 0x0107), 5);
	assert_int_equal(lookup(&img, 4, V4(1, 0, 254, 255)), 0);
	assert_int_equal(lookup(&img, 4, V4(1, 0, 255, 0)), ID('J', 'P'));
	assert_int_equal(lookup(&img, 4, V4(1, 1, 0, 0)), ID('J', 'P'));
	assert_int_equal(lookup(&img, 4, V4(1, 2, 255, 255)), ID('J', 'P'));
	assert_int_equal(lookup(&img, 4, V4(1, 3, 0, 255)), ID('J', 'P'));
	assert_int_equal(lookup(&img, 4, V4(1, 3, 1, 0)), ID('K', 'R'));
	assert_int_equal(lookup(&img, 4, V4(1, 4, 255, 255)), ID('K', 'R'));
	assert_int_equal(lookup(&img, 4, V4(1, 5, 0, 0)), 0);
	assert_int_equal(lookup(&img, 4, V4(1, 6, 0, 0)), ID('C', 'N'));
	assert_int_equal(lookup(&img, 4, V4(1, 6, 0, 1)), 0);
	check_span_exhaustive(&img, &db, 4, V4(1, 0, 0, 0), V4(1, 7, 0, 0));
	assert_int_equal(lookup(&img, 6, V6(0x2400feffffffffffULL, ~0ULL)), 0);
	assert_int_equal(lookup(&img, 6, V6(0x2400ff0000000000ULL, 0)), ID('J', 'P'));
	assert_int_equal(lookup(&img, 6, V6(0x2402000000000000ULL, 0)), ID('J', 'P'));
	assert_int_equal(lookup(&img, 6, V6(0x2403000000000000ULL, 17)), ID('J', 'P'));
	assert_int_equal(lookup(&img, 6, V6(0x2403000000000000ULL, 18)), ID('K', 'R'));
	assert_int_equal(lookup(&img, 6, V6(0x2404ffffffffffffULL, ~0ULL)), ID('K', 'R'));
	assert_int_equal(lookup(&img, 6, V6(0x2405000000000000ULL, 0)), 0);
	assert_int_equal(lookup(&img, 6, V6(0x2406000000000000ULL, 0)), ID('C', 'N'));
	assert_int_equal(lookup(&img, 6, V6(0x2406000000000000ULL, 1)), 0);
	table_image_free(&img);
}

static void test_invalid_input(void **state)
{
	struct geo_span overlap[] = { { 10, 20, 1 }, { 20, 30, 2 } };
	struct geo_span unsorted[] = { { 30, 40, 1 }, { 10, 20, 2 } };
	struct geo_span reversed[] = { { 30, 20, 1 } };
	struct geo_span too_high[] = { { 10, (u128)UINT32_MAX + 1, 1 } };
	struct geo_span after_end[] = { { 0, ALL128, 1 }, { 5, 6, 2 } };
	struct table_image img = { .words = (uint64_t *)&img, .nwords = 99 };
	struct geo_db db;

	db = (struct geo_db){ .v4 = overlap, .n4 = 2 };
	assert_int_equal(table_build(&db, 1, &img), -EINVAL);
	db = (struct geo_db){ .v6 = unsorted, .n6 = 2 };
	assert_int_equal(table_build(&db, 1, &img), -EINVAL);
	db = (struct geo_db){ .v4 = reversed, .n4 = 1 };
	assert_int_equal(table_build(&db, 1, &img), -EINVAL);
	db = (struct geo_db){ .v4 = too_high, .n4 = 1 };
	assert_int_equal(table_build(&db, 1, &img), -EINVAL);
	db = (struct geo_db){ .v6 = too_high, .n6 = 1 };
	assert_int_equal(table_build(&db, 1, &img), 0);
	table_image_free(&img);
	img = (struct table_image){ .words = (uint64_t *)&img, .nwords = 99 };
	db = (struct geo_db){ .v6 = after_end, .n6 = 2 };
	assert_int_equal(table_build(&db, 1, &img), -EINVAL);
	/* untouched on failure */
	assert_ptr_equal(img.words, (uint64_t *)&img);
	assert_int_equal(img.nwords, 99);
}

static void test_limits(void **state)
{
	/* 2^21 one-address IPv4 spans at even addresses from 0: exactly 2^22 ranges (span, gap,
	 * ..., span, gap up to the end) -> accepted; one span more -> 2^22 + 2 ranges -> -E2BIG. */
	size_t n = (size_t)EGRESS_TABLE_MAX_RANGES / 2;
	struct geo_span *v = calloc(n + 1, sizeof(*v));
	struct table_image img = {};
	struct geo_db db = { .v4 = v, .n4 = n };

	assert_non_null(v);
	for (size_t i = 0; i <= n; i++)
		v[i] = (struct geo_span){ 2 * i, 2 * i, (uint16_t)(i % 676 + 1) };
	assert_int_equal(table_build(&db, 1, &img), 0);
	assert_int_equal(img.n4, EGRESS_TABLE_MAX_RANGES);
	assert_int_equal(table_verify(&img, NULL), 0);
	assert_int_equal(table_max_bucket(&img, 4), 65537);
	assert_int_equal(lookup(&img, 4, 2 * (n - 1)), (n - 1) % 676 + 1);
	assert_int_equal(lookup(&img, 4, 2 * (n - 1) + 1), 0);
	assert_int_equal(lookup(&img, 4, 12345 * 2), 12345 % 676 + 1);
	table_image_free(&img);

	db.n4 = n + 1;
	img = (struct table_image){ .words = (uint64_t *)&img, .nwords = 99 };
	assert_int_equal(table_build(&db, 1, &img), -E2BIG);
	assert_ptr_equal(img.words, (uint64_t *)&img);
	/* more spans than ranges allowed: refused before any allocation */
	db.n4 = (size_t)EGRESS_TABLE_MAX_RANGES + 1;
	assert_int_equal(table_build(&db, 1, &img), -E2BIG);
	free(v);
}

static void test_damaged_images(void **state)
{
	struct geo_span v4[] = { { V4(1, 2, 3, 0), V4(1, 2, 3, 255), ID('D', 'E') },
				 { V4(1, 2, 5, 0), V4(1, 2, 5, 255), ID('F', 'R') } };
	struct geo_span v6[] = { { V6(0x2001000000000000ULL, 0), V6(0x2001000000000000ULL, 9),
				   ID('F', 'R') } };
	struct geo_db db = { .v4 = v4, .n4 = 2, .v6 = v6, .n6 = 1 };
	struct table_image img = {};
	struct diag errors = {};
	uint64_t save, save_dir;
	size_t nw;

	build_ok(&db, &img);
	assert_int_equal(lookup(&img, 4, V4(1, 2, 5, 1)), ID('F', 'R'));

	/* bad magic: verify fails, userspace lookups answer 0 */
	save = img.words[0];
	img.words[0] ^= 1;
	assert_int_equal(table_verify(&img, &errors), -EINVAL);
	assert_int_equal(errors.n, 1);
	assert_string_equal(errors.msgs[0], "table: bad magic 0x3230424c54524744");
	diag_free(&errors);
	assert_int_equal(lookup(&img, 4, V4(1, 2, 3, 1)), 0);
	img.words[0] = save;

	/* index entry pointing far outside the image: verify fails, lookup answers 0 (no read out
	 * of bounds: ASan would report it). 1.2/16 has a block (5 ranges): its direct entry is set
	 * to "search" so that the lookup reads the index. */
	save_dir = img.words[EGRESS_TABLE_V4_DIR + 0x0102 / 2];
	assert_int_equal(save_dir >> 63, 0); /* entry 0x0102 is the low half */
	img.words[EGRESS_TABLE_V4_DIR + 0x0102 / 2] = save_dir & 0xffffffff00000000ULL;
	assert_int_equal(lookup(&img, 4, V4(1, 2, 3, 1)), ID('D', 'E'));
	save = img.words[EGRESS_TABLE_V4_IDX + 0x0102 / 2];
	img.words[EGRESS_TABLE_V4_IDX + 0x0102 / 2] = 0x7ffffff07ffffff0ULL;
	assert_int_equal(table_verify(&img, NULL), -EINVAL);
	assert_int_equal(lookup(&img, 4, V4(1, 2, 3, 1)), 0);
	img.words[EGRESS_TABLE_V4_IDX + 0x0102 / 2] = 0x00000000fffffff0ULL;
	assert_int_equal(lookup(&img, 4, V4(1, 2, 3, 1)), 0); /* idx[h] > idx[h + 1] */
	img.words[EGRESS_TABLE_V4_IDX + 0x0102 / 2] = save;
	assert_int_equal(lookup(&img, 4, V4(1, 2, 3, 1)), ID('D', 'E'));
	img.words[EGRESS_TABLE_V4_DIR + 0x0102 / 2] = save_dir;
	assert_int_equal(table_verify(&img, NULL), 0);

	/* starts out of order */
	save = img.words[EGRESS_TABLE_V4_RNG + 2];
	img.words[EGRESS_TABLE_V4_RNG + 2] = (uint64_t)0x01020300 << 32;
	assert_int_equal(table_verify(&img, NULL), -EINVAL);
	img.words[EGRESS_TABLE_V4_RNG + 2] = save;

	/* IPv6 offsets beyond the image: lookups answer 0 */
	save = img.words[5];
	img.words[5] = 1ULL << 31;
	assert_int_equal(table_verify(&img, NULL), -EINVAL);
	assert_int_equal(lookup(&img, 6, V6(0x2001000000000000ULL, 3)), 0);
	img.words[5] = save;

	/* truncated image: the last words are out of reach */
	nw = img.nwords;
	img.nwords = img.words[6];
	assert_int_equal(table_verify(&img, NULL), -EINVAL);
	assert_int_equal(lookup(&img, 6, V6(0x2001000000000000ULL, 3)), 0);
	img.nwords = nw;
	assert_int_equal(lookup(&img, 6, V6(0x2001000000000000ULL, 3)), ID('F', 'R'));

	/* country id out of range, reserved header word */
	img.words[EGRESS_TABLE_V4_RNG + 1] |= 700;
	assert_int_equal(table_verify(&img, NULL), -EINVAL);
	img.words[EGRESS_TABLE_V4_RNG + 1] &= ~(uint64_t)700;
	img.words[EGRESS_TABLE_V4_RNG + 1] |= ID('D', 'E');
	img.words[9] = 1;
	assert_int_equal(table_verify(&img, NULL), -EINVAL);
	img.words[9] = 0;
	assert_int_equal(table_verify(&img, NULL), 0);

	assert_int_equal(table_lookup4(NULL, 1), 0);
	assert_int_equal(table_verify(NULL, NULL), -EINVAL);
	table_image_free(&img);
}

static void test_direct_index(void **state)
{
	/* Ranges: 0 gap, 1 DE 2.0/16, 2 gap, 3 FR 3.3.0/24, 4 IT 3.3.1.0/25, 5 ES 3.3.1.128/25,
	 * 6 PL 3.3.2.0 - 3.3.255.255, 7 gap, 8 GB 4.4.0/24, 9 SE 4.4.1/24, 10 gap. */
	struct geo_span v4[] = {
		{ V4(2, 0, 0, 0), V4(2, 0, 255, 255), ID('D', 'E') },
		{ V4(3, 3, 0, 0), V4(3, 3, 0, 255), ID('F', 'R') },
		{ V4(3, 3, 1, 0), V4(3, 3, 1, 127), ID('I', 'T') },
		{ V4(3, 3, 1, 128), V4(3, 3, 1, 255), ID('E', 'S') },
		{ V4(3, 3, 2, 0), V4(3, 3, 255, 255), ID('P', 'L') },
		{ V4(4, 4, 0, 0), V4(4, 4, 0, 255), ID('G', 'B') },
		{ V4(4, 4, 1, 0), V4(4, 4, 1, 255), ID('S', 'E') },
	};
	struct geo_span v6[] = { { V6(0x2001000000000000ULL, 0), V6(0x2001000000000000ULL, 9),
				   ID('F', 'R') } };
	struct geo_db db = { .v4 = v4, .n4 = 7, .v6 = v6, .n6 = 1 };
	struct table_image img = {};
	struct diag errors = {};
	uint64_t blk, save;

	build_ok(&db, &img);
	check_header(&img, 11, 3, 1);
	blk = img.words[6] + 1; /* after ceil(3 / 4) country words */
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, 0x0000), EGRESS_TABLE_DIR_DIRECT);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, 0x0200),
			 EGRESS_TABLE_DIR_DIRECT | ID('D', 'E'));
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, 0x0201), EGRESS_TABLE_DIR_DIRECT);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, 0x0303),
			 EGRESS_TABLE_DIR_BLOCK | blk);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, 0x0404), 0);
	assert_int_equal(idx_entry(&img, EGRESS_TABLE_V4_DIR, 0xffff), EGRESS_TABLE_DIR_DIRECT);
	assert_int_equal(idx_entry(&img, blk, 0), 3 << 10 | ID('F', 'R'));
	assert_int_equal(idx_entry(&img, blk, 1), 4 << 10 | EGRESS_TABLE_MULTI);
	assert_int_equal(idx_entry(&img, blk, 2), 6 << 10 | ID('P', 'L'));
	assert_int_equal(idx_entry(&img, blk, 255), 6 << 10 | ID('P', 'L'));
	assert_int_equal(idx_entry(&img, blk, 256), 7 << 10 | EGRESS_TABLE_MULTI);
	assert_int_equal(idx_entry(&img, blk, 257), 0);

	assert_int_equal(lookup(&img, 4, V4(2, 0, 9, 9)), ID('D', 'E'));
	assert_int_equal(lookup(&img, 4, V4(3, 3, 1, 5)), ID('I', 'T'));
	assert_int_equal(lookup(&img, 4, V4(3, 3, 1, 200)), ID('E', 'S'));
	assert_int_equal(lookup(&img, 4, V4(4, 4, 1, 9)), ID('S', 'E'));
	check_span_exhaustive(&img, &db, 4, V4(3, 2, 255, 0), V4(3, 4, 1, 0));
	check_span_exhaustive(&img, &db, 4, V4(4, 3, 255, 0), V4(4, 4, 3, 0));

	/* a direct entry with another country: verify names it */
	save = img.words[EGRESS_TABLE_V4_DIR + 0x0200 / 2];
	img.words[EGRESS_TABLE_V4_DIR + 0x0200 / 2] = save ^ 1;
	assert_int_equal(table_verify(&img, &errors), -EINVAL);
	assert_int_equal(errors.n, 1);
	assert_string_equal(errors.msgs[0], "table: IPv4 direct index differs from the ranges");
	diag_free(&errors);
	img.words[EGRESS_TABLE_V4_DIR + 0x0200 / 2] = save;

	/* a block entry changed, then a block offset outside the image: lookups answer 0 */
	img.words[blk] ^= 1ULL << 40;
	assert_int_equal(table_verify(&img, &errors), -EINVAL);
	assert_int_equal(errors.n, 1);
	assert_string_equal(errors.msgs[0],
			    "table: IPv4 second-level blocks differ from the ranges");
	diag_free(&errors);
	img.words[blk] ^= 1ULL << 40;
	save = img.words[EGRESS_TABLE_V4_DIR + 0x0303 / 2];
	img.words[EGRESS_TABLE_V4_DIR + 0x0303 / 2] = save | 0x7fffffff00000000ULL;
	assert_int_equal(table_verify(&img, NULL), -EINVAL);
	assert_int_equal(lookup(&img, 4, V4(3, 3, 0, 1)), 0);
	img.words[EGRESS_TABLE_V4_DIR + 0x0303 / 2] = save;

	/* block count in the header that does not match the size */
	img.words[7] = 2;
	assert_int_equal(table_verify(&img, NULL), -EINVAL);
	img.words[7] = 1;
	assert_int_equal(table_verify(&img, NULL), 0);
	table_image_free(&img);
}

/* ---- world data ----------------------------------------------------------------------------- */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_world(void **state)
{
	const char *path = TEST_SRCDIR "/data/geo/country.csv.gz";
	struct diag errors = {}, warnings = {};
	struct geo_db db = {};
	struct table_image img = {};
	uint64_t s = 0x5eed2024, n4 = 0, n6 = 0, bad4 = 0, bad6 = 0, edges4 = 0, edges6 = 0;
	double t0, t1, tbest = 1e9;
	int r;

	r = geo_load(&path, 1, &db, &errors, &warnings);
	for (size_t i = 0; i < errors.n; i++)
		fprintf(stderr, "%s\n", errors.msgs[i]);
	assert_int_equal(r, 0);
	diag_free(&errors);
	diag_free(&warnings);
	assert_true(db.n4 > 100000);
	assert_true(db.n6 > 100000);

	/* build time: best of 3 */
	for (int i = 0; i < 3; i++) {
		table_image_free(&img);
		t0 = now_ms();
		assert_int_equal(table_build(&db, 1, &img), 0);
		t1 = now_ms();
		if (t1 - t0 < tbest)
			tbest = t1 - t0;
	}
	t0 = now_ms();
	assert_int_equal(table_verify(&img, NULL), 0);
	t1 = now_ms();
	printf("world: %zu IPv4 spans -> %llu ranges, %zu IPv6 spans -> %llu ranges\n", db.n4,
	       (unsigned long long)img.n4, db.n6, (unsigned long long)img.n6);
	printf("world: image %llu bytes (%zu words), max bucket IPv4 %u IPv6 %u ranges\n",
	       (unsigned long long)table_image_bytes(&img), img.nwords, table_max_bucket(&img, 4),
	       table_max_bucket(&img, 6));
	printf("world: table_build %.1f ms (best of 3), table_verify %.1f ms\n", tbest, t1 - t0);

	/* every span start and end, and their neighbours */
	for (size_t i = 0; i < db.n4; i++) {
		const struct geo_span *sp = &db.v4[i];

		for (int d = -1; d <= 1; d++) {
			u128 a[2] = { sp->start + d, sp->end + d };

			for (int j = 0; j < 2; j++) {
				uint32_t x = (uint32_t)a[j]; /* wraps at the ends of the space */

				edges4++;
				bad4 += table_lookup4(&img, x) != ref_find(db.v4, db.n4, x);
			}
		}
		bad4 += table_lookup4(&img, (uint32_t)sp->start) != sp->country;
		bad4 += table_lookup4(&img, (uint32_t)sp->end) != sp->country;
	}
	for (size_t i = 0; i < db.n6; i++) {
		const struct geo_span *sp = &db.v6[i];

		for (int d = -1; d <= 1; d++) {
			u128 a[2] = { sp->start + d, sp->end + d };

			for (int j = 0; j < 2; j++) {
				edges6++;
				bad6 += lookup6(&img, a[j]) != ref_find(db.v6, db.n6, a[j]);
			}
		}
		bad6 += lookup6(&img, sp->start) != sp->country;
		bad6 += lookup6(&img, sp->end) != sp->country;
	}

	/* 1,000,000 uniform IPv4 */
	for (int i = 0; i < 1000000; i++) {
		uint32_t x = (uint32_t)splitmix64(&s);

		n4++;
		bad4 += table_lookup4(&img, x) != ref_find(db.v4, db.n4, x);
	}
	/* 1,000,000 IPv6: 1/2 uniform in 2000::/3, 1/4 at span edges +-1, 1/4 uniform */
	for (int i = 0; i < 1000000; i++) {
		uint64_t hi = splitmix64(&s), lo = splitmix64(&s);
		u128 a;

		if (i % 4 < 2) {
			a = V6((hi & 0x1fffffffffffffffULL) | 0x2000000000000000ULL, lo);
		} else if (i % 4 == 2) {
			const struct geo_span *sp = &db.v6[hi % db.n6];

			a = (lo & 1 ? sp->end : sp->start) + (int)((lo >> 1) % 3) - 1;
		} else {
			a = V6(hi, lo);
		}
		n6++;
		bad6 += lookup6(&img, a) != ref_find(db.v6, db.n6, a);
	}
	printf("world: IPv4 %llu random + %llu edge lookups, %llu mismatches\n",
	       (unsigned long long)n4, (unsigned long long)edges4, (unsigned long long)bad4);
	printf("world: IPv6 %llu random + %llu edge lookups, %llu mismatches\n",
	       (unsigned long long)n6, (unsigned long long)edges6, (unsigned long long)bad6);
	assert_int_equal(bad4, 0);
	assert_int_equal(bad6, 0);

	/* the reference agrees with geo_db_find on a sample (guards the reference itself) */
	for (int i = 0; i < 100000; i++) {
		uint32_t x = (uint32_t)splitmix64(&s);
		const struct geo_span *sp = geo_db_find(&db, 4, x);

		assert_int_equal(ref_find(db.v4, db.n4, x), sp ? sp->country : 0);
	}

	table_image_free(&img);
	geo_db_free(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_single_span),
		cmocka_unit_test(test_space_edges),
		cmocka_unit_test(test_whole_space),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_crowded_bucket),
		cmocka_unit_test(test_cross_buckets),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_damaged_images),
		cmocka_unit_test(test_direct_index),
		cmocka_unit_test(test_world),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
