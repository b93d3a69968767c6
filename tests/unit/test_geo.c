/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_geo.c - unit tests of daemon/geo.c: CSV and MMDB loaders, overlap resolution, range ->
 * prefix conversion, the handed cases in tests/data/cases/geo-*.csv (+ .expected), the embedded
 * world data.
 *
 * Test inputs: tests/data/geo/ (the *.mmdb files are made by tests/tools/mkmmdb.py from the
 * *.json next to them: `python3 tests/tools/mkmmdb.py X.json X.mmdb`; v4.mmdb.gz and small.csv.gz
 * by `gzip -9nc`). Inputs whose exact bytes matter (CRLF, sizes) are written at run time into a
 * temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "geo.h"

#define SRC(p) TEST_SRCDIR "/" p
#define GEO(p) SRC("tests/data/geo/" p)

static char tmpdir[64];

/* ---- helpers ------------------------------------------------------------------------------ */

static u128 A(const char *s)
{
	u128 a = 0;
	int fam = 0;

	assert_int_equal(geo_parse_addr(s, &a, &fam), 0);
	return a;
}

static int fam_of(const char *s)
{
	u128 a;
	int fam = 0;

	assert_int_equal(geo_parse_addr(s, &a, &fam), 0);
	return fam;
}

static uint16_t CC(const char *code)
{
	int id = geo_country_id(code, strlen(code));

	assert_true(id > 0);
	return (uint16_t)id;
}

static char *tmpfile_path(const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

static char *write_tmp(const char *name, const void *data, size_t len)
{
	char *p = tmpfile_path(name);
	FILE *f = fopen(p, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return p;
}

static char *write_tmp_str(const char *name, const char *s)
{
	return write_tmp(name, s, strlen(s));
}

static char *write_tmp_gz(const char *name, const void *data, size_t len)
{
	char *p = tmpfile_path(name);
	gzFile g = gzopen(p, "wb9");

	assert_non_null(g);
	assert_int_equal(gzwrite(g, data, (unsigned)len), (int)len);
	assert_int_equal(gzclose(g), Z_OK);
	return p;
}

static int load(const char *path, struct geo_db *db, struct diag *errs, struct diag *warns)
{
	const char *paths[] = { path };

	return geo_load(paths, 1, db, errs, warns);
}

/* Load a file that must load without errors and warnings. */
static void load_ok(const char *path, struct geo_db *db)
{
	struct diag e = { 0 }, w = { 0 };
	int r = load(path, db, &e, &w);

	for (size_t i = 0; i < e.n; i++)
		print_error("unexpected error: %s\n", e.msgs[i]);
	for (size_t i = 0; i < w.n; i++)
		print_error("unexpected warning: %s\n", w.msgs[i]);
	assert_int_equal(r, 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(w.n, 0);
	diag_free(&e);
	diag_free(&w);
}

/* Assert span i of a family is exactly [start, end] with country cc. */
static void span_is(const struct geo_db *db, int family, size_t i, const char *start,
		    const char *end, const char *cc)
{
	const struct geo_span *v = family == 4 ? db->v4 : db->v6;
	size_t n = family == 4 ? db->n4 : db->n6;
	char b1[46], b2[46], c[8];

	assert_true(i < n);
	if (v[i].start != A(start) || v[i].end != A(end) || v[i].country != CC(cc))
		fail_msg("span %zu is %s-%s %s, expected %s-%s %s", i,
			 geo_format_addr(family, v[i].start, b1),
			 geo_format_addr(family, v[i].end, b2),
			 geo_country_code(v[i].country, c), start, end, cc);
}

/* Assert the country found for addr (cc NULL or "-": no data). */
static void lookup_is(const struct geo_db *db, const char *addr, const char *cc)
{
	const struct geo_span *s = geo_db_find(db, fam_of(addr), A(addr));
	char c[8];

	if (!cc || strcmp(cc, "-") == 0) {
		if (s)
			fail_msg("lookup %s: got %s, expected no data", addr,
				 geo_country_code(s->country, c));
		return;
	}
	if (!s)
		fail_msg("lookup %s: no data, expected %s", addr, cc);
	if (s->country != CC(cc))
		fail_msg("lookup %s: got %s, expected %s", addr, geo_country_code(s->country, c),
			 cc);
}

static void diag_is(const struct diag *d, const char *const *expected, size_t n)
{
	for (size_t i = 0; i < d->n && i < n; i++)
		if (strcmp(d->msgs[i], expected[i]) != 0)
			fail_msg("message %zu:\n  got      %s\n  expected %s", i, d->msgs[i],
				 expected[i]);
	if (d->n != n) {
		for (size_t i = 0; i < d->n; i++)
			print_error("message: %s\n", d->msgs[i]);
		fail_msg("%zu messages, expected %zu", d->n, n);
	}
}

/* ---- prefixes ----------------------------------------------------------------------------- */

struct plist {
	char s[300][60];
	size_t n;
	int family;
	unsigned bits;
	int bad;
};

static int collect_cb(u128 start, unsigned plen, void *ctx)
{
	struct plist *l = ctx;
	char b[46];

	if (plen > l->bits)
		l->bad = 1;
	if (l->n < 300)
		snprintf(l->s[l->n], sizeof(l->s[0]), "%s/%u", geo_format_addr(l->family, start, b),
			 plen);
	l->n++;
	return 0;
}

static int strp_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* The prefixes of [start, end] as sorted strings. */
static void prefixes_of(const char *start, const char *end, struct plist *l)
{
	int64_t n;

	memset(l, 0, sizeof(*l));
	l->family = fam_of(start);
	l->bits = l->family == 4 ? 32 : 128;
	n = geo_range_to_prefixes(A(start), A(end), l->bits, collect_cb, l);
	assert_true(n >= 0);
	assert_int_equal((size_t)n, l->n);
	assert_false(l->bad);
	assert_true(l->n <= 300);
	qsort(l->s, l->n, sizeof(l->s[0]), strp_cmp);
}

static void prefixes_are(const char *start, const char *end, const char *expected)
{
	struct plist l, e = { 0 };
	char *copy = strdup(expected), *save = NULL;

	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
		snprintf(e.s[e.n++], sizeof(e.s[0]), "%s", t);
	free(copy);
	qsort(e.s, e.n, sizeof(e.s[0]), strp_cmp);
	prefixes_of(start, end, &l);
	if (l.n != e.n)
		fail_msg("%s-%s: %zu prefixes (first %s), expected %zu (%s)", start, end, l.n,
			 l.s[0], e.n, expected);
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.s[i], e.s[i]) != 0)
			fail_msg("%s-%s: got %s, expected %s", start, end, l.s[i], e.s[i]);
}

static void test_range_to_prefixes_edges(void **state)
{
	struct plist l;

	prefixes_are("0.0.0.0", "255.255.255.255", "0.0.0.0/0");
	prefixes_are("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0");
	prefixes_are("255.255.255.254", "255.255.255.255", "255.255.255.254/31");
	prefixes_are("255.255.255.255", "255.255.255.255", "255.255.255.255/32");
	prefixes_are("0.0.0.0", "0.0.0.0", "0.0.0.0/32");
	prefixes_are("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
		     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
	prefixes_are("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	prefixes_are("0.0.0.1", "255.255.255.255", "0.0.0.1/32 0.0.0.2/31 0.0.0.4/30 "
		     "0.0.0.8/29 0.0.0.16/28 0.0.0.32/27 0.0.0.64/26 0.0.0.128/25 0.0.1.0/24 "
		     "0.0.2.0/23 0.0.4.0/22 0.0.8.0/21 0.0.16.0/20 0.0.32.0/19 0.0.64.0/18 "
		     "0.0.128.0/17 0.1.0.0/16 0.2.0.0/15 0.4.0.0/14 0.8.0.0/13 0.16.0.0/12 "
		     "0.32.0.0/11 0.64.0.0/10 0.128.0.0/9 1.0.0.0/8 2.0.0.0/7 4.0.0.0/6 8.0.0.0/5 "
		     "16.0.0.0/4 32.0.0.0/3 64.0.0.0/2 128.0.0.0/1");
	prefixes_are("0.0.0.0", "255.255.255.254", "0.0.0.0/1 128.0.0.0/2 192.0.0.0/3 224.0.0.0/4 "
		     "240.0.0.0/5 248.0.0.0/6 252.0.0.0/7 254.0.0.0/8 255.0.0.0/9 255.128.0.0/10 "
		     "255.192.0.0/11 255.224.0.0/12 255.240.0.0/13 255.248.0.0/14 255.252.0.0/15 "
		     "255.254.0.0/16 255.255.0.0/17 255.255.128.0/18 255.255.192.0/19 "
		     "255.255.224.0/20 255.255.240.0/21 255.255.248.0/22 255.255.252.0/23 "
		     "255.255.254.0/24 255.255.255.0/25 255.255.255.128/26 255.255.255.192/27 "
		     "255.255.255.224/28 255.255.255.240/29 255.255.255.248/30 "
		     "255.255.255.252/31 255.255.255.254/32");
	prefixes_are("10.0.0.1", "10.0.0.6", "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32");

	/* ::1 .. max needs 128 prefixes, :: .. max-1 too */
	prefixes_of("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &l);
	assert_int_equal(l.n, 128);
	prefixes_of("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", &l);
	assert_int_equal(l.n, 128);
	{
		int has_first = 0, has_last = 0;

		for (size_t i = 0; i < l.n; i++) {
			has_first += !strcmp(l.s[i], "::/1");
			has_last += !strcmp(l.s[i], "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128");
		}
		assert_int_equal(has_first, 1);
		assert_int_equal(has_last, 1);
	}

	/* invalid input */
	assert_int_equal(geo_range_to_prefixes(2, 1, 32, NULL, NULL), -EINVAL);
	assert_int_equal(geo_range_to_prefixes(0, (u128)1 << 32, 32, NULL, NULL), -EINVAL);
	assert_int_equal(geo_range_to_prefixes(0, 1, 64, NULL, NULL), -EINVAL);
	assert_int_equal(geo_range_to_prefixes(0, UINT32_MAX, 32, NULL, NULL), 1);
}

static int fail_third_cb(u128 start, unsigned plen, void *ctx)
{
	int *n = ctx;

	return ++*n == 3 ? -ENOSPC : 0;
}

static void test_range_to_prefixes_cb_error(void **state)
{
	int n = 0;

	assert_int_equal(geo_range_to_prefixes(A("10.0.0.1"), A("10.0.0.6"), 32, fail_third_cb, &n),
			 -ENOSPC);
	assert_int_equal(n, 3);
}

struct cover {
	u128 next;
	unsigned bits;
	int bad;
	uint64_t n;
};

static int cover_cb(u128 start, unsigned plen, void *ctx)
{
	struct cover *c = ctx;
	unsigned h = c->bits - plen;
	u128 m = h >= 128 ? ~(u128)0 : (((u128)1 << h) - 1);

	if (plen > c->bits || start != c->next || (start & m) != 0)
		c->bad = 1;
	c->next = start + m + 1; /* wraps to 0 at the top, which ends the range anyway */
	c->n++;
	return 0;
}

/* Property check on pseudo-random ranges: prefixes are aligned, contiguous from start, end at
 * end, and no two adjacent ones could be merged (minimality of the greedy cover). */
static void test_range_to_prefixes_random(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	for (int i = 0; i < 20000; i++) {
		unsigned bits = i % 2 ? 128 : 32;
		u128 a = 0, b = 0, mask = bits == 32 ? UINT32_MAX : ~(u128)0;
		struct cover c = { .bits = bits };
		int64_t n;

		for (int k = 0; k < 4; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			a = (a << 64) ^ x;
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			b = (b << 64) ^ x;
		}
		a &= mask;
		b &= mask;
		if (i % 5 == 0) { /* short ranges: unaligned neighbours */
			u128 len = b & 0xffff;

			b = a + len > mask || a + len < a ? mask : a + len;
		}
		if (a > b) {
			u128 t = a;

			a = b;
			b = t;
		}
		c.next = a;
		n = geo_range_to_prefixes(a, b, bits, cover_cb, &c);
		assert_true(n > 0);
		assert_false(c.bad);
		assert_int_equal((uint64_t)n, c.n);
		assert_true(n <= 2 * (int64_t)bits);
		if (b == mask)
			assert_true(c.next == 0 || (bits == 32 && c.next == (u128)1 << 32));
		else
			assert_true(c.next == b + 1);
	}
}

static void test_prefix_containing(void **state)
{
	u128 s = 0;
	unsigned plen = 99;

	geo_prefix_containing(A("10.0.0.1"), A("10.0.0.6"), A("10.0.0.5"), 32, &s, &plen);
	assert_true(s == A("10.0.0.4"));
	assert_int_equal(plen, 31);
	geo_prefix_containing(A("10.0.0.1"), A("10.0.0.6"), A("10.0.0.1"), 32, &s, &plen);
	assert_true(s == A("10.0.0.1"));
	assert_int_equal(plen, 32);
	geo_prefix_containing(0, UINT32_MAX, A("192.0.2.1"), 32, &s, &plen);
	assert_true(s == 0);
	assert_int_equal(plen, 0);
	geo_prefix_containing(0, ~(u128)0, A("2001:db8::1"), 128, &s, &plen);
	assert_true(s == 0);
	assert_int_equal(plen, 0);
	geo_prefix_containing(A("255.255.255.254"), UINT32_MAX, UINT32_MAX, 32, &s, &plen);
	assert_true(s == A("255.255.255.254"));
	assert_int_equal(plen, 31);
	geo_prefix_containing(A("::1"), ~(u128)0, ~(u128)0, 128, &s, &plen);
	assert_true(s == A("8000::"));
	assert_int_equal(plen, 1);
	geo_prefix_containing(A("::1"), ~(u128)0, A("::1"), 128, &s, &plen);
	assert_true(s == 1);
	assert_int_equal(plen, 128);
	geo_prefix_containing(A("::1"), ~(u128)0, A("::2"), 128, &s, &plen);
	assert_true(s == 2);
	assert_int_equal(plen, 127);
	/* outside the range: the host prefix of addr */
	geo_prefix_containing(A("10.0.0.1"), A("10.0.0.6"), A("10.0.0.9"), 32, &s, &plen);
	assert_true(s == A("10.0.0.9"));
	assert_int_equal(plen, 32);
}

/* ---- small pure helpers ------------------------------------------------------------------- */

static void test_country_ids(void **state)
{
	char b[8];

	assert_int_equal(geo_country_id("AA", 2), 1);
	assert_int_equal(geo_country_id("DE", 2), 3 * 26 + 4 + 1);
	assert_int_equal(geo_country_id("de", 2), 83);
	assert_int_equal(geo_country_id("ZW", 2), 25 * 26 + 22 + 1);
	assert_int_equal(geo_country_id("ZZ", 2), 0);
	assert_int_equal(geo_country_id("zz", 2), 0);
	assert_int_equal(geo_country_id("EU", 2), 0);
	assert_int_equal(geo_country_id("AP", 2), 0);
	assert_int_equal(geo_country_id("A1", 2), 0);
	assert_int_equal(geo_country_id("A2", 2), 0);
	assert_int_equal(geo_country_id("O1", 2), 0);
	assert_int_equal(geo_country_id("", 0), 0);
	assert_int_equal(geo_country_id("D", 1), -EINVAL);
	assert_int_equal(geo_country_id("DEU", 3), -EINVAL);
	assert_int_equal(geo_country_id("D1", 2), -EINVAL);
	assert_int_equal(geo_country_id("A3", 2), -EINVAL);
	assert_int_equal(geo_country_id("\xc3\x84", 2), -EINVAL);
	assert_string_equal(geo_country_code(83, b), "DE");
	assert_string_equal(geo_country_code(1, b), "AA");
	assert_string_equal(geo_country_code(676, b), "ZZ");
	assert_string_equal(geo_country_code(0, b), "unknown");
	assert_string_equal(geo_country_code(677, b), "invalid");
	/* round trip; the letter pseudo-codes AP, EU, ZZ map to 0 */
	for (int id = 1; id <= 676; id++) {
		const char *c = geo_country_code((uint16_t)id, b);
		int pseudo = !strcmp(c, "AP") || !strcmp(c, "EU") || !strcmp(c, "ZZ");

		assert_int_equal(geo_country_id(c, 2), pseudo ? 0 : id);
	}
}

static void test_addr(void **state)
{
	const char *bad[] = { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3",
			      "1.2.3.4 ", "::g", "1:2:3:4:5:6:7:8:9", "2001:db8:::1", "x" };
	char b[46];
	u128 a = 7;
	int fam = 9;

	assert_int_equal(geo_parse_addr("0.0.0.0", &a, &fam), 0);
	assert_true(a == 0);
	assert_int_equal(fam, 4);
	assert_int_equal(geo_parse_addr("255.255.255.255", &a, &fam), 0);
	assert_true(a == UINT32_MAX);
	assert_int_equal(geo_parse_addr("192.0.2.1", &a, &fam), 0);
	assert_true(a == 0xc0000201);
	assert_string_equal(geo_format_addr(4, a, b), "192.0.2.1");
	assert_int_equal(geo_parse_addr("2001:db8::1", &a, &fam), 0);
	assert_int_equal(fam, 6);
	assert_true(a == (((u128)0x20010db8 << 96) | 1));
	assert_string_equal(geo_format_addr(6, a, b), "2001:db8::1");
	assert_int_equal(geo_parse_addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &a, &fam), 0);
	assert_true(a == ~(u128)0);
	assert_int_equal(geo_parse_addr("::ffff:1.2.3.4", &a, &fam), 0);
	assert_int_equal(fam, 6);
	assert_true(a == (((u128)0xffff << 32) | 0x01020304));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = 7;
		fam = 9;
		if (geo_parse_addr(bad[i], &a, &fam) != -EINVAL)
			fail_msg("\"%s\" parsed", bad[i]);
		assert_true(a == 7);
		assert_int_equal(fam, 9);
	}
}

/* ---- handed cases ------------------------------------------------------------------------- */

/* Data row n (1-based; blank and '#' lines skipped) of a CSV: its first two fields. */
static void csv_row(const char *path, unsigned n, char *start, char *end)
{
	FILE *f = fopen(path, "r");
	char line[512];
	unsigned k = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *c1, *c2;

		line[strcspn(line, "\r\n")] = '\0';
		if (*p == '\0' || *p == '#')
			continue;
		if (++k != n)
			continue;
		c1 = strchr(p, ',');
		assert_non_null(c1);
		c2 = strchr(c1 + 1, ',');
		assert_non_null(c2);
		snprintf(start, 64, "%.*s", (int)(c1 - p), p);
		snprintf(end, 64, "%.*s", (int)(c2 - c1 - 1), c1 + 1);
		fclose(f);
		return;
	}
	fclose(f);
	fail_msg("%s has no row %u", path, n);
}

/* "warnings: at least one, naming lines 5 and 6": some warning names every listed line (as
 * "FILE:N:" or "line N"); "warnings: none" or no such line: no warning at all. */
static void check_warnings(const char *spec, const struct diag *w)
{
	unsigned nums[8];
	size_t nn = 0;

	for (const char *p = spec; *p && nn < 8; p++)
		if (isdigit((unsigned char)*p) && (p == spec || !isdigit((unsigned char)p[-1])))
			nums[nn++] = (unsigned)strtoul(p, NULL, 10);
	if (nn == 0) {
		assert_int_equal(w->n, 0);
		return;
	}
	for (size_t i = 0; i < w->n; i++) {
		size_t found = 0;

		for (size_t k = 0; k < nn; k++) {
			char a[32], b[32];

			snprintf(a, sizeof(a), ":%u:", nums[k]);
			snprintf(b, sizeof(b), "line %u;", nums[k]);
			if (strstr(w->msgs[i], a) || strstr(w->msgs[i], b))
				found++;
		}
		if (found == nn)
			return;
	}
	fail_msg("no warning names all lines of \"%s\" (%zu warnings)", spec, w->n);
}

static void run_case(const char *csv)
{
	char expected[512], line[1024];
	struct diag e = { 0 }, w = { 0 };
	struct geo_db db;
	const char *warn_spec = "none";
	char *warn_copy = NULL;
	unsigned checks = 0;
	FILE *f;
	int r;

	snprintf(expected, sizeof(expected), "%.*s.expected", (int)(strlen(csv) - 4), csv);
	f = fopen(expected, "r");
	if (!f)
		fail_msg("%s: missing %s", csv, expected);
	r = load(csv, &db, &e, &w);
	for (size_t i = 0; i < e.n; i++)
		print_error("%s\n", e.msgs[i]);
	assert_int_equal(r, 0);
	while (fgets(line, sizeof(line), f)) {
		char a[64], b[64], cc[16];
		unsigned n;
		int off = 0;

		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (sscanf(line, "row %u:%n", &n, &off) == 1 && off > 0) {
			csv_row(csv, n, a, b);
			prefixes_are(a, b, line + off);
		} else if (sscanf(line, "lookup %63s %15s", a, cc) == 2) {
			lookup_is(&db, a, cc);
		} else if (strncmp(line, "warnings:", 9) == 0) {
			free(warn_copy);
			warn_copy = strdup(line + 9);
			warn_spec = warn_copy;
		} else {
			fail_msg("%s: cannot parse \"%s\"", expected, line);
		}
		checks++;
	}
	fclose(f);
	assert_true(checks > 0);
	check_warnings(warn_spec, &w);
	free(warn_copy);
	geo_db_free(&db);
	diag_free(&e);
	diag_free(&w);
}

static void test_handed_cases(void **state)
{
	const char *dir = SRC("tests/data/cases");
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort), ran = 0;

	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		char path[512];

		if (fnmatch("geo-*.csv", names[i]->d_name, 0) == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			print_message("case %s\n", names[i]->d_name);
			run_case(path);
			ran++;
		}
		free(names[i]);
	}
	free(names);
	assert_true(ran >= 2); /* geo-edges, geo-overlap at least */
}

static void test_whole_space(void **state)
{
	struct geo_db db;

	load_ok(GEO("whole4.csv"), &db);
	assert_int_equal(db.n4, 1);
	assert_int_equal(db.n6, 0);
	span_is(&db, 4, 0, "0.0.0.0", "255.255.255.255", "AU");
	assert_int_equal(db.prefixes4, 1);
	assert_int_equal(db.prefixes6, 0);
	lookup_is(&db, "0.0.0.0", "AU");
	lookup_is(&db, "255.255.255.255", "AU");
	lookup_is(&db, "::", "-");
	geo_db_free(&db);
	prefixes_are("0.0.0.0", "255.255.255.255", "0.0.0.0/0");

	load_ok(GEO("whole6.csv"), &db);
	assert_int_equal(db.n4, 0);
	assert_int_equal(db.n6, 1);
	span_is(&db, 6, 0, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "AU");
	assert_int_equal(db.prefixes6, 1);
	lookup_is(&db, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "AU");
	lookup_is(&db, "0.0.0.0", "-");
	geo_db_free(&db);
	prefixes_are("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0");
}

/* ---- CSV syntax, errors ------------------------------------------------------------------- */

static void test_malformed(void **state)
{
	const char *p = GEO("bad-rows.csv");
	const char *expected[] = {
		GEO("bad-rows.csv") ":3: start 1.0.1.255 is after end 1.0.1.0",
		GEO("bad-rows.csv") ":4: start 1.0.2.0 is IPv4 but end 2001:db8:: is IPv6",
		GEO("bad-rows.csv") ":5: invalid start address \"1.0.256.0\"",
		GEO("bad-rows.csv") ":6: invalid end address \"1.0.4\"",
		GEO("bad-rows.csv") ":7: invalid country code \"CHN\" (expected two letters)",
		GEO("bad-rows.csv") ":8: invalid country code \"C1\" (expected two letters)",
		GEO("bad-rows.csv") ":9: expected 3 columns (start,end,country), got 2",
		GEO("bad-rows.csv") ":10: invalid start address \"2001:db8::g\"",
		GEO("bad-rows.csv") ":11: unterminated or malformed quoted field",
		GEO("bad-rows.csv") ":13: invalid start address \"01.0.10.0\"",
		GEO("bad-rows.csv") ":14: invalid start address \"start\"",
		GEO("bad-rows.csv") ":15: start 2001:db8::2 is after end 2001:db8::1",
	};
	struct diag e = { 0 }, w = { 0 };
	struct geo_db db, before;

	memset(&db, 0xa5, sizeof(db));
	before = db;
	assert_int_equal(load(p, &db, &e, &w), -EINVAL);
	assert_memory_equal(&db, &before, sizeof(db));
	diag_is(&e, expected, sizeof(expected) / sizeof(expected[0]));
	assert_int_equal(w.n, 0);
	diag_free(&e);
}

static void test_error_cap(void **state)
{
	char buf[4096] = "", *p, expected[21][300];
	const char *ex[21];
	struct diag e = { 0 };
	struct geo_db db;

	/* A good first row: a bad first data row means "not a CSV file" and stops (test_not_csv). */
	snprintf(buf, sizeof(buf), "2.0.0.0,2.0.0.255,AU\n");
	for (int i = 0; i < 25; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "1.0.0.%d,1.0.0.0,AU\n",
			 i + 1);
	p = write_tmp_str("cap.csv", buf);
	for (int i = 0; i < 20; i++) {
		snprintf(expected[i], sizeof(expected[i]),
			 "%s:%d: start 1.0.0.%d is after end 1.0.0.0", p, i + 2, i + 1);
		ex[i] = expected[i];
	}
	snprintf(expected[20], sizeof(expected[20]), "%s: ... 5 more errors", p);
	ex[20] = expected[20];
	assert_int_equal(load(p, &db, &e, NULL), -EINVAL);
	diag_is(&e, ex, 21);
	diag_free(&e);
	free(p);
}

static void test_unreadable(void **state)
{
	const char *p = GEO("does-not-exist.csv");
	const char *ex[] = { GEO("does-not-exist.csv") ": No such file or directory" };
	const char *two[] = { GEO("small.csv"), GEO("does-not-exist.csv") };
	struct diag e = { 0 };
	struct geo_db db, before;

	memset(&db, 0x5a, sizeof(db));
	before = db;
	assert_int_equal(load(p, &db, &e, NULL), -ENOENT);
	assert_memory_equal(&db, &before, sizeof(db));
	diag_is(&e, ex, 1);
	diag_free(&e);
	/* one bad file fails the whole load */
	assert_int_equal(geo_load(two, 2, &db, &e, NULL), -ENOENT);
	assert_memory_equal(&db, &before, sizeof(db));
	diag_is(&e, ex, 1);
	diag_free(&e);
	/* a directory */
	assert_int_equal(load(SRC("tests/data/geo"), &db, &e, NULL), -EISDIR);
	assert_memory_equal(&db, &before, sizeof(db));
	assert_int_equal(e.n, 1);
	assert_string_equal(e.msgs[0], SRC("tests/data/geo") ": Is a directory");
	diag_free(&e);
}

static void test_pseudo_codes(void **state)
{
	struct geo_db db;
	char s[32], t[32];

	load_ok(GEO("pseudo.csv"), &db);
	assert_int_equal(db.n4, 8);
	span_is(&db, 4, 0, "10.0.0.0", "10.0.255.255", "DE");
	for (int i = 1; i < 7; i++) {
		snprintf(s, sizeof(s), "10.%d.1.0", i + 1);
		snprintf(t, sizeof(t), "10.%d.255.255", i + 1);
		span_is(&db, 4, (size_t)i, s, t, "DE");
	}
	span_is(&db, 4, 7, "10.8.1.0", "10.255.255.255", "DE");
	lookup_is(&db, "10.1.2.3", "-");
	lookup_is(&db, "10.5.0.255", "-");
	lookup_is(&db, "10.8.0.0", "-");
	lookup_is(&db, "10.8.1.0", "DE");
	assert_int_equal(db.sources[0].rows, 9);
	geo_db_free(&db);
}

static void test_tolerant_syntax(void **state)
{
	static const char csv[] = "\xef\xbb\xbfip_start,ip_end,country_code\r\n"
				  "\r\n"
				  "# comment\r\n"
				  "  # indented comment\r\n"
				  "\"1.0.0.0\",\"1.0.0.255\",\"AU\"\r\n"
				  "1.0.1.0,1.0.1.255,cn,extra,\"col,umns\"\r\n"
				  " 1.0.2.0 , 1.0.2.255 , JP \r\n"
				  "\n"
				  "2001:db8::,2001:db8::ffff,NL";
	char *p = write_tmp("tolerant.csv", csv, sizeof(csv) - 1);
	struct geo_db db;

	load_ok(p, &db);
	assert_int_equal(db.n4, 3);
	span_is(&db, 4, 0, "1.0.0.0", "1.0.0.255", "AU");
	span_is(&db, 4, 1, "1.0.1.0", "1.0.1.255", "CN");
	span_is(&db, 4, 2, "1.0.2.0", "1.0.2.255", "JP");
	assert_int_equal(db.n6, 1);
	span_is(&db, 6, 0, "2001:db8::", "2001:db8::ffff", "NL");
	assert_int_equal(db.nsources, 1);
	assert_string_equal(db.sources[0].path, p);
	assert_string_equal(db.sources[0].format, "csv");
	assert_int_equal(db.sources[0].gzip, 0);
	assert_int_equal(db.sources[0].rows, 4);
	assert_null(db.sources[0].database_type);
	assert_int_equal(db.sources[0].build_epoch, 0);
	geo_db_free(&db);
	free(p);
}

static void test_header_only_on_line_1(void **state)
{
	struct diag e = { 0 };
	struct geo_db db;
	/* A header may follow comments (the first content line), but not a data row. */
	char *p = write_tmp_str("hdr1.csv", "# comment\n\nstart,end,country\n1.0.0.0,1.0.0.255,AU\n");
	char *q = write_tmp_str("hdr2.csv", "1.0.0.0,1.0.0.255,AU\nstart,end,country\n");
	char ex[300];
	const char *exs[] = { ex };

	assert_int_equal(load(p, &db, &e, NULL), 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(db.n4, 1);
	geo_db_free(&db);
	snprintf(ex, sizeof(ex), "%s:2: invalid start address \"start\"", q);
	assert_int_equal(load(q, &db, &e, NULL), -EINVAL);
	diag_is(&e, exs, 1);
	diag_free(&e);
	free(p);
	free(q);
}

static void test_resolution(void **state)
{
	/* partial overlap of equal width: the later row wins; the narrower row listed first
	 * still wins over a wider later row; unsorted input; adjacent equal countries merge */
	char *p = write_tmp_str("res.csv", "1.0.0.0,1.0.0.255,AU\n"
					   "1.0.0.128,1.0.1.127,NZ\n"
					   "10.0.0.0,10.0.0.255,DE\n"
					   "10.0.0.0,10.255.255.255,FR\n"
					   "9.0.0.0,9.255.255.255,FR\n"
					   "20.0.0.0,20.0.0.9,US\n"
					   "20.0.0.10,20.0.0.19,US\n"
					   "20.0.0.5,20.0.0.14,CA\n");
	struct geo_db db;

	load_ok(p, &db);
	assert_int_equal(db.n4, 8);
	span_is(&db, 4, 0, "1.0.0.0", "1.0.0.127", "AU");
	span_is(&db, 4, 1, "1.0.0.128", "1.0.1.127", "NZ");
	span_is(&db, 4, 2, "9.0.0.0", "9.255.255.255", "FR");
	span_is(&db, 4, 3, "10.0.0.0", "10.0.0.255", "DE");
	span_is(&db, 4, 4, "10.0.1.0", "10.255.255.255", "FR");
	span_is(&db, 4, 5, "20.0.0.0", "20.0.0.4", "US");
	span_is(&db, 4, 6, "20.0.0.5", "20.0.0.14", "CA"); /* later of three equal widths */
	span_is(&db, 4, 7, "20.0.0.15", "20.0.0.19", "US");
	/* 1.0.0.0-1.0.0.127 /25, 1.0.0.128/25 + 1.0.1.0/25, 9/8, 10.0.0.0/24, 10.0.1.0 .. 10.255:
	 * 8 (/24../17 = 8 prefixes: 10.0.1/24 10.0.2/23 10.0.4/22 10.0.8/21 10.0.16/20 10.0.32/19
	 * 10.0.64/18 10.0.128/17) + 10.1/16 10.2/15 10.4/14 10.8/13 10.16/12 10.32/11 10.64/10
	 * 10.128/9 = 16; 20.0.0.0/30 + 20.0.0.4/32 = 2; 20.0.0.5-14: .5/32 .6/31 .8/30 .12/31
	 * .14/32 = 5; 20.0.0.15-19: .15/32 .16/30 = 2 */
	assert_int_equal(db.prefixes4, 1 + 2 + 1 + 1 + 16 + 2 + 5 + 2);
	geo_db_free(&db);
	free(p);
}

static void test_multiple_files(void **state)
{
	char *a = write_tmp_str("a.csv", "1.0.0.0,1.0.0.255,AU\n2001:db8::,2001:db8::ff,DE\n");
	char *b = write_tmp_str("b.csv", "# later file\n1.0.0.0,1.0.0.255,NZ\n");
	const char *paths[] = { a, b };
	struct diag e = { 0 }, w = { 0 };
	struct geo_db db;
	char ex[600];
	const char *exs[] = { ex };

	assert_int_equal(geo_load(paths, 2, &db, &e, &w), 0);
	assert_int_equal(e.n, 0);
	snprintf(ex, sizeof(ex),
		 "%s:2: range 1.0.0.0-1.0.0.255 duplicates %s:1; the later row wins", b, a);
	diag_is(&w, exs, 1);
	assert_int_equal(db.n4, 1);
	span_is(&db, 4, 0, "1.0.0.0", "1.0.0.255", "NZ");
	assert_int_equal(db.n6, 1);
	assert_int_equal(db.nsources, 2);
	assert_string_equal(db.sources[0].path, a);
	assert_string_equal(db.sources[1].path, b);
	assert_int_equal(db.sources[0].rows, 2);
	assert_int_equal(db.sources[1].rows, 1);
	geo_db_free(&db);
	diag_free(&w);
	free(a);
	free(b);
}

/* An empty (or comment-only) file must not load as "no data": with Unknown=deny that would block
 * everything after a failed data refresh. */
static void test_empty_file(void **state)
{
	char *p = write_tmp_str("empty.csv", "");
	char *q = write_tmp_str("comments.csv", "# nothing\nstart,end,country\n");
	char ex[300], ex2[300];
	const char *exs[] = { ex }, *exs2[] = { ex2 };
	struct diag e = { 0 };
	struct geo_db db;

	snprintf(ex, sizeof(ex), "%s: no GeoIP data: not a CSV range file (start,end,country) with at "
		 "least one row, nor an MMDB database", p);
	assert_int_equal(load(p, &db, &e, NULL), -EINVAL);
	diag_is(&e, exs, 1);
	diag_free(&e);
	snprintf(ex2, sizeof(ex2), "%s: no GeoIP data: not a CSV range file (start,end,country) with at "
		 "least one row, nor an MMDB database", q);
	assert_int_equal(load(q, &db, &e, NULL), -EINVAL);
	diag_is(&e, exs2, 1);
	diag_free(&e);
	free(p);
	free(q);
}

/* A binary or foreign file: one message for its first line and one verdict, not one per line. */
static void test_not_csv(void **state)
{
	char *p = write_tmp_str("garbage.bin", "\x7f""ELF\x02\x01\x01 binary junk\nmore,junk,here\nand more\n");
	char ex0[300], ex1[300];
	const char *exs[] = { ex0, ex1 };
	struct diag e = { 0 };
	struct geo_db db;

	snprintf(ex0, sizeof(ex0), "%s:1: expected 3 columns (start,end,country), got 1", p);
	snprintf(ex1, sizeof(ex1), "%s: not a CSV range file (start,end,country) nor an MMDB database", p);
	assert_int_equal(load(p, &db, &e, NULL), -EINVAL);
	diag_is(&e, exs, 2);
	diag_free(&e);
	free(p);
}

/* UK is read as GB; codes no policy can name (unassigned) count as unknown with one warning per
 * code; lower case is accepted. */
static void test_country_normalisation(void **state)
{
	char *p = write_tmp_str("codes.csv", "1.0.0.0,1.0.0.255,uk\n2.0.0.0,2.0.0.255,QQ\n"
					     "3.0.0.0,3.0.0.255,QQ\n4.0.0.0,4.0.0.255,de\n");
	char ex[300];
	const char *exs[] = { ex };
	struct diag w = { 0 };
	struct geo_db db;

	assert_int_equal(load(p, &db, NULL, &w), 0);
	snprintf(ex, sizeof(ex), "%s:2: country code QQ is not an assigned ISO 3166-1 code; counted as unknown", p);
	diag_is(&w, exs, 1);
	assert_int_equal(db.n4, 2);
	span_is(&db, 4, 0, "1.0.0.0", "1.0.0.255", "GB");
	span_is(&db, 4, 1, "4.0.0.0", "4.0.0.255", "DE");
	diag_free(&w);
	geo_db_free(&db);
	free(p);
}

/* ---- gzip --------------------------------------------------------------------------------- */

static void check_small(const struct geo_db *db)
{
	assert_int_equal(db->n4, 2);
	span_is(db, 4, 0, "1.0.0.0", "1.0.0.255", "AU");
	span_is(db, 4, 1, "1.0.1.0", "1.0.3.255", "CN");
	assert_int_equal(db->n6, 1);
	span_is(db, 6, 0, "2001:200::", "2001:200:ffff:ffff:ffff:ffff:ffff:ffff", "JP");
	assert_int_equal(db->prefixes4, 3); /* 1.0.0.0/24, 1.0.1.0/24, 1.0.2.0/23 */
	assert_int_equal(db->prefixes6, 1);
	assert_int_equal(db->sources[0].rows, 3);
	assert_string_equal(db->sources[0].format, "csv");
}

static void test_gzip(void **state)
{
	struct geo_db db;
	FILE *f;
	char buf[1024];
	size_t n;
	char *p;

	load_ok(GEO("small.csv.gz"), &db);
	check_small(&db);
	assert_int_equal(db.sources[0].gzip, 1);
	/* sha256sum tests/data/geo/small.csv.gz */
	assert_string_equal(db.sources[0].sha256,
			    "07aac56ae31258bdd03c557f7275378e4ff38185052b499f121903c6a7841252");
	geo_db_free(&db);

	/* same content uncompressed; a gzip file named .txt; two concatenated gzip members */
	load_ok(GEO("small.csv"), &db);
	check_small(&db);
	assert_int_equal(db.sources[0].gzip, 0);
	geo_db_free(&db);

	f = fopen(GEO("small.csv"), "rb");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	p = write_tmp_gz("gz-named.txt", buf, n);
	load_ok(p, &db);
	check_small(&db);
	assert_int_equal(db.sources[0].gzip, 1);
	geo_db_free(&db);
	free(p);

	{
		char *p1 = write_tmp_gz("m1.gz", buf, 60);
		char *p2 = write_tmp_gz("m2.gz", buf + 60, n - 60);
		char both[4096];
		size_t l1, l2;

		f = fopen(p1, "rb");
		l1 = fread(both, 1, sizeof(both), f);
		fclose(f);
		f = fopen(p2, "rb");
		l2 = fread(both + l1, 1, sizeof(both) - l1, f);
		fclose(f);
		p = write_tmp("multi.gz", both, l1 + l2);
		load_ok(p, &db);
		check_small(&db);
		geo_db_free(&db);
		free(p);
		free(p1);
		free(p2);
	}
}

static void test_gzip_corrupt(void **state)
{
	char buf[4096];
	struct diag e = { 0 };
	struct geo_db db, before;
	char ex[300];
	const char *exs[] = { ex };
	FILE *f = fopen(GEO("small.csv.gz"), "rb");
	size_t n;
	char *p;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	p = write_tmp("trunc.gz", buf, n / 2);
	memset(&db, 0x11, sizeof(db));
	before = db;
	assert_int_equal(load(p, &db, &e, NULL), -EINVAL);
	assert_memory_equal(&db, &before, sizeof(db));
	snprintf(ex, sizeof(ex), "%s: gzip: unexpected end of file", p);
	diag_is(&e, exs, 1);
	diag_free(&e);
	free(p);
}

/* A 10 GiB gzip bomb at the real limit: 10240 gzip members of 1 MiB of zeros each (gzip
 * concatenation, RFC 1952 2.2), ~10 MB on disk. The load stops one byte past GEO_MAX_FILE_BYTES
 * of output and reports the limit; it never inflates (or allocates) the 10 GiB. */
static void test_gzip_bomb_10g(void **state)
{
	size_t mib = 1 << 20, mlen;
	char *zeros = calloc(1, mib), *m, *p, *member, ex[300];
	const char *exs[] = { ex };
	struct diag e = { 0 };
	struct geo_db db, before;
	struct timespec t0, t1;
	FILE *f;

	assert_non_null(zeros);
	m = write_tmp_gz("member.gz", zeros, mib);
	f = fopen(m, "rb");
	assert_non_null(f);
	member = malloc(65536);
	assert_non_null(member);
	mlen = fread(member, 1, 65536, f);
	fclose(f);
	assert_true(mlen > 18 && mlen < 65536);
	p = tmpfile_path("bomb-10g.gz");
	f = fopen(p, "wb");
	assert_non_null(f);
	for (int i = 0; i < 10240; i++)
		assert_int_equal(fwrite(member, 1, mlen, f), mlen);
	assert_int_equal(fclose(f), 0);

	memset(&db, 0x77, sizeof(db));
	before = db;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(load(p, &db, &e, NULL), -EFBIG);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_memory_equal(&db, &before, sizeof(db));
	snprintf(ex, sizeof(ex), "%s: decompressed size exceeds the limit of %llu bytes", p,
		 (unsigned long long)GEO_MAX_FILE_BYTES);
	diag_is(&e, exs, 1);
	assert_int_equal(GEO_MAX_FILE_BYTES, 536870912ULL);
	print_message("10 GiB gzip bomb (%zu bytes on disk) refused in %.2f s\n", 10240 * mlen,
		      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	diag_free(&e);
	unlink(p);
	unlink(m);
	free(member);
	free(zeros);
	free(m);
	free(p);
}

static void test_gzip_bomb(void **state)
{
	size_t big = 4 << 20;
	char *zeros = calloc(1, big), *p, *q, ex[300];
	const char *exs[] = { ex };
	struct diag e = { 0 };
	struct geo_db db, before;

	assert_non_null(zeros);
	p = write_tmp_gz("bomb.gz", zeros, big);
	/* and a gzip of that gzip-bomb-like file: the outer layer is what we inflate */
	{
		FILE *f = fopen(p, "rb");
		char inner[65536];
		size_t n;

		assert_non_null(f);
		n = fread(inner, 1, sizeof(inner), f);
		fclose(f);
		assert_true(n < 65536);
		q = write_tmp_gz("bomb.gz.gz", inner, n);
	}
	geo_set_max_file_bytes(1 << 20);
	memset(&db, 0x77, sizeof(db));
	before = db;
	assert_int_equal(load(p, &db, &e, NULL), -EFBIG);
	assert_memory_equal(&db, &before, sizeof(db));
	snprintf(ex, sizeof(ex), "%s: decompressed size exceeds the limit of 1048576 bytes", p);
	diag_is(&e, exs, 1);
	diag_free(&e);

	/* plain file above the limit */
	free(p);
	p = write_tmp("big.csv", zeros, (1 << 20) + 1);
	assert_int_equal(load(p, &db, &e, NULL), -EFBIG);
	snprintf(ex, sizeof(ex), "%s: file exceeds the limit of 1048576 bytes", p);
	diag_is(&e, exs, 1);
	diag_free(&e);
	assert_memory_equal(&db, &before, sizeof(db));

	/* gzip inside gzip: the outer layer is small, its content is gzip data -> not a CSV */
	assert_int_equal(load(q, &db, &e, NULL), -EINVAL);
	assert_memory_equal(&db, &before, sizeof(db));
	assert_true(e.n >= 1);
	assert_true(strncmp(e.msgs[0], q, strlen(q)) == 0);
	assert_non_null(strstr(e.msgs[0], ":1: "));
	diag_free(&e);
	geo_set_max_file_bytes(0);
	free(zeros);
	free(p);
	free(q);
}

/* ---- MMDB --------------------------------------------------------------------------------- */

static void check_v6_aliased(const struct geo_db *db)
{
	assert_int_equal(db->n4, 7);
	span_is(db, 4, 0, "0.0.0.0", "0.255.255.255", "JP");
	span_is(db, 4, 1, "1.0.0.0", "1.0.0.255", "AU");
	span_is(db, 4, 2, "1.0.1.0", "1.0.1.255", "CN");
	span_is(db, 4, 3, "8.8.8.0", "8.8.8.255", "US"); /* country wins over registered */
	span_is(db, 4, 4, "192.0.2.0", "192.0.2.255", "DE"); /* two /25 merged */
	span_is(db, 4, 5, "198.51.100.0", "198.51.100.255", "FR"); /* registered_country only */
	span_is(db, 4, 6, "255.255.255.0", "255.255.255.255", "SE");
	/* the IPv4 subtree appears once: nothing under ::ffff:0:0/96, 2001::/32, 2002::/16 */
	assert_int_equal(db->n6, 4);
	span_is(db, 6, 0, "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "NL");
	span_is(db, 6, 1, "2a00::", "2a0f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "GB");
	span_is(db, 6, 2, "2c0f:f000::", "2c0f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ZA");
	span_is(db, 6, 3, "ffff:ffff:ffff:ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "SE");
	lookup_is(db, "::ffff:8.8.8.8", "-");
	lookup_is(db, "2001:0:808:808::", "-");
	lookup_is(db, "2002:808:808::", "-");
	lookup_is(db, "::808:808", "-");
	lookup_is(db, "203.0.113.1", "-"); /* data without any country */
	assert_int_equal(db->prefixes4, 7);
	assert_int_equal(db->prefixes6, 4);
	assert_string_equal(db->sources[0].format, "mmdb");
	assert_string_equal(db->sources[0].database_type, "Test-Country-V6");
	assert_int_equal(db->sources[0].build_epoch, 1700000000);
	assert_int_equal(db->sources[0].rows, 13);
}

static void test_mmdb_v6_aliased(void **state)
{
	struct geo_db db;
	FILE *f;
	char *buf, *p;
	long n;

	load_ok(GEO("v6-aliased.mmdb"), &db);
	check_v6_aliased(&db);
	assert_int_equal(db.sources[0].gzip, 0);
	geo_db_free(&db);

	/* format from content, not name; gzip-compressed MMDB (memfd) */
	f = fopen(GEO("v6-aliased.mmdb"), "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	p = write_tmp("mmdb-named.csv", buf, (size_t)n);
	load_ok(p, &db);
	check_v6_aliased(&db);
	geo_db_free(&db);
	free(p);
	p = write_tmp_gz("v6.csv.gz", buf, (size_t)n);
	load_ok(p, &db);
	check_v6_aliased(&db);
	assert_int_equal(db.sources[0].gzip, 1);
	geo_db_free(&db);
	free(p);
	free(buf);
}

static void check_v4(const struct geo_db *db)
{
	assert_int_equal(db->n4, 4);
	span_is(db, 4, 0, "0.0.0.0", "0.0.0.0", "JP");
	span_is(db, 4, 1, "10.0.0.0", "11.255.255.255", "DE");
	span_is(db, 4, 2, "12.0.0.0", "12.255.255.255", "FR");
	span_is(db, 4, 3, "255.255.255.254", "255.255.255.255", "AU");
	assert_int_equal(db->n6, 0);
	assert_int_equal(db->prefixes4, 4);
	assert_string_equal(db->sources[0].database_type, "Test-Country-V4");
	assert_int_equal(db->sources[0].build_epoch, 1600000000);
	assert_int_equal(db->sources[0].rows, 5);
}

static void test_mmdb_v4(void **state)
{
	struct geo_db db;

	load_ok(GEO("v4.mmdb"), &db);
	check_v4(&db);
	assert_int_equal(db.sources[0].gzip, 0);
	/* sha256sum tests/data/geo/v4.mmdb */
	assert_string_equal(db.sources[0].sha256,
			    "2345f8dd3d9dace06ebdad8dd381eaf806d63398653aa33316bc60aa8b371640");
	geo_db_free(&db);
	load_ok(GEO("v4.mmdb.gz"), &db);
	check_v4(&db);
	assert_int_equal(db.sources[0].gzip, 1);
	assert_string_equal(db.sources[0].format, "mmdb");
	/* sha256sum tests/data/geo/v4.mmdb.gz: the file as stored */
	assert_string_equal(db.sources[0].sha256,
			    "f75525a6691e6f09092b0f9cd6b8f42d4c8d76b447bf3b1fa35a3c618226ebb7");
	geo_db_free(&db);
}

static void test_mmdb_country_code(void **state)
{
	struct geo_db db;

	load_ok(GEO("country-code.mmdb"), &db);
	assert_int_equal(db.n4, 2);
	span_is(&db, 4, 0, "1.1.1.0", "1.1.1.255", "CH");
	span_is(&db, 4, 1, "5.0.0.0", "5.255.255.255", "IT"); /* "it": case-insensitive */
	lookup_is(&db, "1.1.2.1", "-"); /* ZZ */
	assert_int_equal(db.n6, 1);
	span_is(&db, 6, 0, "2606:4700::", "2606:4700:ffff:ffff:ffff:ffff:ffff:ffff", "CH");
	assert_string_equal(db.sources[0].database_type, "ipinfo-lite");
	assert_int_equal(db.sources[0].rows, 4);
	geo_db_free(&db);
}

static void test_mmdb_registered(void **state)
{
	struct geo_db db;

	load_ok(GEO("registered.mmdb"), &db);
	assert_int_equal(db.n4, 1);
	span_is(&db, 4, 0, "9.9.9.0", "9.9.9.255", "CH");
	assert_int_equal(db.n6, 1);
	span_is(&db, 6, 0, "2620:fe::", "2620:fe:0:ffff:ffff:ffff:ffff:ffff", "CH");
	geo_db_free(&db);
}

static void test_mmdb_bad(void **state)
{
	const char *ex[] = { GEO("bad-code.mmdb") ": network 1.2.3.0/24: invalid country code" };
	struct diag e = { 0 };
	struct geo_db db, before;
	char buf[8192], exb[300];
	const char *exs[] = { exb };
	FILE *f;
	size_t n;
	char *p;

	memset(&db, 0x33, sizeof(db));
	before = db;
	assert_int_equal(load(GEO("bad-code.mmdb"), &db, &e, NULL), -EINVAL);
	assert_memory_equal(&db, &before, sizeof(db));
	diag_is(&e, ex, 1);
	diag_free(&e);

	/* the metadata marker but a cut search tree: libmaxminddb's error, file named */
	f = fopen(GEO("v4.mmdb"), "rb");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	p = write_tmp("cut.mmdb", buf + 40, n - 40);
	assert_int_equal(load(p, &db, &e, NULL), -EINVAL);
	assert_memory_equal(&db, &before, sizeof(db));
	snprintf(exb, sizeof(exb), "%s: ", p);
	assert_int_equal(e.n, 1);
	assert_true(strncmp(e.msgs[0], exb, strlen(exb)) == 0);
	(void)exs;
	diag_free(&e);
	free(p);
}

/* CSV and MMDB mixed: the later file's identical network wins, narrower CSV rows punch in. */
static void test_mixed_sources(void **state)
{
	char *c = write_tmp_str("over.csv", "8.8.8.0,8.8.8.255,CA\n8.8.8.8,8.8.8.8,MX\n");
	const char *paths[] = { GEO("v6-aliased.mmdb"), c };
	struct diag e = { 0 }, w = { 0 };
	struct geo_db db;

	assert_int_equal(geo_load(paths, 2, &db, &e, &w), 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.msgs[0], ":1: range 8.8.8.0-8.8.8.255 duplicates a network of "));
	lookup_is(&db, "8.8.8.7", "CA");
	lookup_is(&db, "8.8.8.8", "MX");
	lookup_is(&db, "8.8.8.9", "CA");
	lookup_is(&db, "1.0.0.1", "AU");
	assert_int_equal(db.nsources, 2);
	geo_db_free(&db);
	diag_free(&w);
	free(c);
}

/* ---- world data --------------------------------------------------------------------------- */

struct wrow {
	u128 start, end;
	uint16_t cc;
};

static int wrow_cmp(const void *a, const void *b)
{
	const struct wrow *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static void test_world(void **state)
{
	const char *path = SRC("data/geo/country.csv.gz");
	char line[512], sha[80] = "";
	unsigned long n4rows = 0, n6rows = 0;
	struct wrow *rows[2] = { NULL, NULL };
	size_t nrows[2] = { 0, 0 }, cap[2] = { 0, 0 }, dups = 0, isolated = 0;
	struct diag e = { 0 }, w = { 0 };
	struct geo_db db;
	FILE *f;
	gzFile g;

	/* expected identity from PROVENANCE (written with the data) */
	f = fopen(SRC("data/geo/PROVENANCE"), "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *q;

		if (sscanf(line, "SHA256=%64s", sha) == 1)
			continue;
		if (strncmp(line, "Files=", 6) == 0) {
			q = strstr(line, "(");
			assert_non_null(q);
			n4rows = strtoul(q + 1, NULL, 10);
			q = strstr(q + 1, "(");
			assert_non_null(q);
			n6rows = strtoul(q + 1, NULL, 10);
		}
	}
	fclose(f);
	assert_int_equal(strlen(sha), 64);
	assert_true(n4rows > 0 && n6rows > 0);

	assert_int_equal(load(path, &db, &e, &w), 0);
	assert_int_equal(e.n, 0);
	assert_string_equal(db.sources[0].sha256, sha);
	assert_string_equal(db.sources[0].format, "csv");
	assert_int_equal(db.sources[0].gzip, 1);
	assert_int_equal(db.sources[0].rows, n4rows + n6rows);
	assert_true(db.n4 > 100000 && db.n4 <= n4rows);
	assert_true(db.n6 > 100000 && db.n6 <= n6rows);
	assert_true(db.prefixes4 >= db.n4 && db.prefixes6 >= db.n6);
	print_message("world: n4=%zu n6=%zu prefixes4=%llu prefixes6=%llu warnings=%zu\n", db.n4,
		      db.n6, (unsigned long long)db.prefixes4, (unsigned long long)db.prefixes6,
		      w.n);

	/* from the file's own rows (zcat data/geo/country.csv.gz | grep -n ...) */
	lookup_is(&db, "8.8.8.8", "US"); /* 8295: 6.0.0.0,8.10.5.255,US */
	lookup_is(&db, "1.1.1.1", "AU"); /* 10: 1.1.1.0,1.1.1.255,AU */
	lookup_is(&db, "193.0.6.139", "NL"); /* 263876: 193.0.0.0,193.0.23.255,NL */
	lookup_is(&db, "2001:4860:4860::8888", "US"); /* 357017: 2001:4860::/32 US */
	lookup_is(&db, "2606:4700:4700::1111", "US"); /* 391248: 2606:4700::/32 US */
	lookup_is(&db, "2a00:1450:4001::1", "IE"); /* 416004: 2a00:1450::-2a00:1457:... IE */
	/* overlaps in the file: the narrower row wins; identical rows: the later wins */
	lookup_is(&db, "2.58.197.15", "BE"); /* 762 inside 761 (DE) */
	lookup_is(&db, "2.58.197.14", "DE");
	lookup_is(&db, "2.58.197.16", "DE");
	lookup_is(&db, "3.2.35.40", "TR"); /* 926 inside 925 (DE) */
	lookup_is(&db, "3.2.35.48", "GR"); /* 927 inside 925 */
	/* identical rows upstream (DE then US, GB then CH): the shipped data keeps the later one */
	lookup_is(&db, "108.165.88.1", "US");
	lookup_is(&db, "176.241.251.40", "CH");
	lookup_is(&db, "5.61.192.1", "SK"); /* 2679 inside 2678 (FR) */
	lookup_is(&db, "5.61.196.1", "CZ"); /* 2681 inside 2678 */
	lookup_is(&db, "0.0.0.1", "-");
	lookup_is(&db, "255.255.255.255", "-");
	/* special-purpose blocks are cut out of the shipped data (scripts/geo-filter.py) */
	lookup_is(&db, "192.168.1.1", "-");
	lookup_is(&db, "172.16.0.1", "-");
	lookup_is(&db, "203.0.113.7", "-");
	lookup_is(&db, "198.51.100.7", "-");
	lookup_is(&db, "2001:db8::1", "-");

	/* independent check: every row that overlaps no other row maps to its own country at both
	 * ends; identical rows are exactly the warnings */
	g = gzopen(path, "rb");
	assert_non_null(g);
	while (gzgets(g, line, sizeof(line))) {
		char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
		struct wrow r;
		int fa, fb, k;

		assert_non_null(c2);
		*c1 = *c2 = '\0';
		c2[1 + strcspn(c2 + 1, ",\r\n")] = '\0';
		assert_int_equal(geo_parse_addr(line, &r.start, &fa), 0);
		assert_int_equal(geo_parse_addr(c1 + 1, &r.end, &fb), 0);
		assert_int_equal(fa, fb);
		k = geo_country_id(c2 + 1, strlen(c2 + 1));
		assert_true(k >= 0);
		r.cc = (uint16_t)k;
		k = fa == 4 ? 0 : 1;
		if (nrows[k] == cap[k]) {
			cap[k] = cap[k] ? cap[k] * 2 : 65536;
			rows[k] = realloc(rows[k], cap[k] * sizeof(*rows[k]));
			assert_non_null(rows[k]);
		}
		rows[k][nrows[k]++] = r;
	}
	gzclose(g);
	assert_int_equal(nrows[0], n4rows);
	assert_int_equal(nrows[1], n6rows);
	for (int k = 0; k < 2; k++) {
		u128 maxend = 0;

		qsort(rows[k], nrows[k], sizeof(*rows[k]), wrow_cmp);
		for (size_t i = 0; i < nrows[k]; i++) {
			const struct wrow *r = &rows[k][i];
			bool iso = (i == 0 || maxend < r->start) &&
				   (i + 1 == nrows[k] || r->end < rows[k][i + 1].start);

			const struct wrow *prev = i > 0 ? &rows[k][i - 1] : NULL;

			if (prev && prev->start == r->start && prev->end == r->end)
				dups++;
			if (i == 0 || r->end > maxend)
				maxend = r->end;
			if (!iso)
				continue;
			isolated++;
			for (int end = 0; end < 2; end++) {
				const struct geo_span *s =
					geo_db_find(&db, k ? 6 : 4, end ? r->end : r->start);

				if (r->cc == 0)
					assert_null(s);
				else if (!s || s->country != r->cc)
					fail_msg("row %zu of family %d: wrong country", i, k);
			}
		}
		free(rows[k]);
	}
	assert_true(isolated > (n4rows + n6rows) * 9 / 10);
	assert_int_equal(w.n, dups);
	geo_db_free(&db);
	diag_free(&w);
}

/* ---- main --------------------------------------------------------------------------------- */

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_geo.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	struct dirent **names = NULL;
	int n = scandir(tmpdir, &names, NULL, NULL);

	for (int i = 0; i < n; i++) {
		char p[512];

		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]->d_name);
			unlink(p);
		}
		free(names[i]);
	}
	free(names);
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_country_ids),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_range_to_prefixes_edges),
		cmocka_unit_test(test_range_to_prefixes_cb_error),
		cmocka_unit_test(test_range_to_prefixes_random),
		cmocka_unit_test(test_prefix_containing),
		cmocka_unit_test(test_handed_cases),
		cmocka_unit_test(test_whole_space),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_pseudo_codes),
		cmocka_unit_test(test_tolerant_syntax),
		cmocka_unit_test(test_header_only_on_line_1),
		cmocka_unit_test(test_resolution),
		cmocka_unit_test(test_multiple_files),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_not_csv),
		cmocka_unit_test(test_country_normalisation),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_gzip_corrupt),
		cmocka_unit_test(test_gzip_bomb),
		cmocka_unit_test(test_gzip_bomb_10g),
		cmocka_unit_test(test_mmdb_v6_aliased),
		cmocka_unit_test(test_mmdb_v4),
		cmocka_unit_test(test_mmdb_country_code),
		cmocka_unit_test(test_mmdb_registered),
		cmocka_unit_test(test_mmdb_bad),
		cmocka_unit_test(test_mixed_sources),
		cmocka_unit_test(test_world),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
