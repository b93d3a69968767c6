/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * geo.c - GeoIP loaders: CSV range files and MMDB (libmaxminddb), each optionally gzip-compressed.
 *
 * Every file is read into memory once (hashed with SHA-256 as stored, inflated if it starts with
 * the gzip magic, capped at the maximum file size), sniffed (MMDB metadata marker in the last
 * 128 KiB, else CSV) and turned into rows (start, end, country, order). All rows of all files are
 * then resolved per family by a sweep over elementary intervals with a heap of the active rows
 * ordered by (width, later row first): the narrower range wins, among equal widths the later row.
 * The winner changes only where a row starts or where the current winner ends (expired rows are
 * popped lazily), so the sweep is O(n log n) and never paints per address. Adjacent spans of the
 * same country are merged; spans of country 0 (no data, pseudo-codes) are dropped.
 *
 * MMDB: a depth-first walk over the search tree (MMDB_read_node). In an IPv6 database the IPv4
 * space is the subtree at ::/96; the aliases MaxMind puts at ::ffff:0:0/96, 2001::/32 and 2002::/16
 * (records pointing at that same node) are skipped so IPv4 appears once, as IPv4.
 */
#include "geo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <maxminddb.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_ERRORS_PER_FILE 20
#define MAX_WARNINGS_PER_FILE 20
#define MMDB_MARKER "\xab\xcd\xefMaxMind.com"
#define MMDB_MARKER_LEN (sizeof(MMDB_MARKER) - 1)
#define MMDB_METADATA_WINDOW (128 * 1024)
#define FIELD_MAX 64

static uint64_t max_file_bytes = GEO_MAX_FILE_BYTES;

void geo_set_max_file_bytes(uint64_t bytes)
{
	max_file_bytes = bytes ? bytes : GEO_MAX_FILE_BYTES;
}

/* ---- small helpers ------------------------------------------------------------------------ */

static inline u128 family_max(int family)
{
	return family == 4 ? (u128)UINT32_MAX : ~(u128)0;
}

static unsigned ctz128(u128 v)
{
	uint64_t lo = (uint64_t)v;

	if (lo)
		return (unsigned)__builtin_ctzll(lo);
	if ((uint64_t)(v >> 64))
		return 64 + (unsigned)__builtin_ctzll((uint64_t)(v >> 64));
	return 128;
}

/* floor(log2(v)) for v > 0 */
static unsigned log2_128(u128 v)
{
	uint64_t hi = (uint64_t)(v >> 64);

	if (hi)
		return 127 - (unsigned)__builtin_clzll(hi);
	return 63 - (unsigned)__builtin_clzll((uint64_t)v);
}

/* mask of the low h bits, h <= 128 */
static inline u128 low_mask(unsigned h)
{
	return h >= 128 ? ~(u128)0 : (((u128)1 << h) - 1);
}

/* The 249 officially assigned ISO 3166-1 alpha-2 codes (ISO 3166 Maintenance Agency), plus AN
 * (Netherlands Antilles, transitionally reserved) and XK (Kosovo, user-assigned), which GeoIP data
 * uses. Sorted for bsearch. */
static const char iso_codes[][3] = {
	"AD", "AE", "AF", "AG", "AI", "AL", "AM", "AN", "AO", "AQ", "AR", "AS", "AT", "AU", "AW",
	"AX", "AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO",
	"BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI",
	"CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK",
	"DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO",
	"FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR",
	"GS", "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM",
	"IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM",
	"KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU",
	"LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP",
	"MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG",
	"NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL",
	"PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB",
	"SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
	"SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
	"TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG",
	"VI", "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
};

static int cmp_code(const void *a, const void *b)
{
	return memcmp(a, b, 2);
}

int geo_country_assigned(uint16_t id)
{
	char code[2];

	if (id == 0 || id >= 677)
		return 0;
	code[0] = (char)('A' + (id - 1) / 26);
	code[1] = (char)('A' + (id - 1) % 26);
	return bsearch(code, iso_codes, sizeof(iso_codes) / sizeof(iso_codes[0]), sizeof(iso_codes[0]),
		       cmp_code) != NULL;
}

int geo_country_id(const char *code, size_t len)
{
	static const char *const pseudo[] = { "ZZ", "EU", "AP", "A1", "A2", "O1" };
	char c[2];

	if (len == 0)
		return 0;
	if (len != 2)
		return -EINVAL;
	for (int i = 0; i < 2; i++) {
		char x = code[i];

		if (x >= 'a' && x <= 'z')
			x = (char)(x - 'a' + 'A');
		c[i] = x;
	}
	for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
		if (c[0] == pseudo[i][0] && c[1] == pseudo[i][1])
			return 0;
	if (c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z')
		return -EINVAL;
	return (c[0] - 'A') * 26 + (c[1] - 'A') + 1;
}

const char *geo_country_code(uint16_t id, char buf[8])
{
	if (id == 0) {
		strcpy(buf, "unknown");
	} else if (id > 676) {
		strcpy(buf, "invalid");
	} else {
		buf[0] = (char)('A' + (id - 1) / 26);
		buf[1] = (char)('A' + (id - 1) % 26);
		buf[2] = '\0';
	}
	return buf;
}

/* Strict dotted quad: four decimal octets 0..255 without leading zeros. */
static int parse_ipv4(const char *s, size_t len, u128 *ret)
{
	uint32_t a = 0;
	size_t i = 0;

	for (int octet = 0; octet < 4; octet++) {
		unsigned v = 0;
		size_t digits = 0;

		if (octet > 0) {
			if (i >= len || s[i] != '.')
				return -EINVAL;
			i++;
		}
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (digits > 0 && v == 0)
				return -EINVAL; /* leading zero */
			v = v * 10 + (unsigned)(s[i] - '0');
			if (v > 255)
				return -EINVAL;
			digits++;
			i++;
		}
		if (digits == 0)
			return -EINVAL;
		a = (a << 8) | v;
	}
	if (i != len)
		return -EINVAL;
	*ret = a;
	return 0;
}

static int parse_addr_n(const char *s, size_t len, u128 *ret_addr, int *ret_family)
{
	char buf[FIELD_MAX];
	unsigned char b[16];
	u128 a = 0;

	if (memchr(s, ':', len) == NULL) {
		if (parse_ipv4(s, len, &a) < 0)
			return -EINVAL;
		*ret_addr = a;
		*ret_family = 4;
		return 0;
	}
	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, b) != 1)
		return -EINVAL;
	for (int i = 0; i < 16; i++)
		a = (a << 8) | b[i];
	*ret_addr = a;
	*ret_family = 6;
	return 0;
}

int geo_parse_addr(const char *s, u128 *ret_addr, int *ret_family)
{
	if (!s)
		return -EINVAL;
	return parse_addr_n(s, strlen(s), ret_addr, ret_family);
}

const char *geo_format_addr(int family, u128 addr, char buf[46])
{
	unsigned char b[16];

	if (family == 4) {
		uint32_t v = htonl((uint32_t)addr);

		if (!inet_ntop(AF_INET, &v, buf, 46))
			strcpy(buf, "?");
		return buf;
	}
	for (int i = 15; i >= 0; i--) {
		b[i] = (unsigned char)addr;
		addr >>= 8;
	}
	if (!inet_ntop(AF_INET6, b, buf, 46))
		strcpy(buf, "?");
	return buf;
}

/* ---- range <-> prefix --------------------------------------------------------------------- */

int64_t geo_range_to_prefixes(u128 start, u128 end, unsigned bits,
			      int (*cb)(u128 start, unsigned plen, void *ctx), void *ctx)
{
	u128 cur = start;
	int64_t n = 0;

	if ((bits != 32 && bits != 128) || start > end || end > low_mask(bits))
		return -EINVAL;
	for (;;) {
		unsigned k; /* host bits of the block at cur */
		u128 rem = end - cur; /* block size - 1 may not exceed this */
		int r;

		if (rem == ~(u128)0) {
			k = 128; /* cur = 0, end = ::/0's end */
		} else {
			unsigned tz = ctz128(cur);
			unsigned sz = log2_128(rem + 1);

			k = tz < sz ? tz : sz;
			if (k > bits)
				k = bits;
		}
		if (cb) {
			r = cb(cur, bits - k, ctx);
			if (r < 0)
				return r;
		}
		n++;
		if (rem == low_mask(k)) /* the block reaches end exactly */
			return n;
		cur += low_mask(k) + 1;
	}
}

void geo_prefix_containing(u128 start, u128 end, u128 addr, unsigned bits, u128 *ret_start,
			   unsigned *ret_plen)
{
	if (bits != 32 && bits != 128)
		bits = 128;
	for (unsigned plen = 0; plen <= bits; plen++) {
		u128 m = low_mask(bits - plen);
		u128 s = addr & ~m;

		if (s >= start && s <= end && end - s >= m) {
			*ret_start = s;
			*ret_plen = plen;
			return;
		}
	}
	/* addr outside [start, end]: the host prefix of addr itself */
	*ret_start = addr;
	*ret_plen = bits;
}

const struct geo_span *geo_db_find(const struct geo_db *db, int family, u128 addr)
{
	const struct geo_span *v;
	size_t lo = 0, hi;

	if (!db)
		return NULL;
	if (family == 4) {
		v = db->v4;
		hi = db->n4;
	} else if (family == 6) {
		v = db->v6;
		hi = db->n6;
	} else {
		return NULL;
	}
	/* first span with start > addr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || v[lo - 1].end < addr)
		return NULL;
	return &v[lo - 1];
}

/* ---- rows --------------------------------------------------------------------------------- */

struct row {
	u128 start;
	u128 end;
	uint32_t seq; /* global order of the row over all files */
	uint32_t line; /* 1-based line in its file; 0 for MMDB networks */
	uint16_t country;
	uint16_t file; /* index into the load's sources */
};

struct rowvec {
	struct row *v;
	size_t n, cap;
};

struct loader {
	struct rowvec fam[2]; /* [0] IPv4, [1] IPv6 */
	uint32_t seq;
	struct diag *warnings;
	uint64_t warned[11]; /* country ids already warned about (bitset) */
	struct geo_source *sources;
	size_t nsources;
};

static int rowvec_push(struct rowvec *rv, const struct row *r)
{
	if (rv->n == rv->cap) {
		size_t cap = rv->cap ? rv->cap * 2 : 4096;
		struct row *v = realloc(rv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rv->v = v;
		rv->cap = cap;
	}
	rv->v[rv->n++] = *r;
	return 0;
}

/* Data codes as policies know them: UK (ISO-reserved for the United Kingdom at its request) is GB;
 * a code that is not an assigned ISO 3166-1 code (nor AN/XK) cannot match any AllowCountry= and
 * counts as unknown, with one warning per code and load. */
static uint16_t normalize_country(struct loader *L, const char *path, unsigned line, uint16_t cc)
{
	char code[8];

	if (cc == 0 || geo_country_assigned(cc))
		return cc;
	if (cc == ('U' - 'A') * 26 + ('K' - 'A') + 1)
		return ('G' - 'A') * 26 + ('B' - 'A') + 1;
	if (!(L->warned[cc / 64] & (1ULL << (cc % 64))) && L->warnings) {
		L->warned[cc / 64] |= 1ULL << (cc % 64);
		if (line)
			diag_add(L->warnings, "%s:%u: country code %s is not an assigned ISO 3166-1 code; "
				 "counted as unknown", path, line, geo_country_code(cc, code));
		else
			diag_add(L->warnings, "%s: country code %s is not an assigned ISO 3166-1 code; "
				 "counted as unknown", path, geo_country_code(cc, code));
	}
	return 0;
}

static int add_row(struct loader *L, int family, u128 start, u128 end, uint16_t country,
		   uint32_t line, uint16_t file)
{
	struct row r = {
		.start = start,
		.end = end,
		.seq = L->seq++,
		.line = line,
		.country = country,
		.file = file,
	};

	return rowvec_push(&L->fam[family == 4 ? 0 : 1], &r);
}

/* ---- CSV ---------------------------------------------------------------------------------- */

struct field {
	char s[FIELD_MAX];
	size_t len;
	bool too_long;
};

/* Error collection for one file: the first MAX_ERRORS_PER_FILE messages, then a count. */
struct errs {
	struct diag *d;
	const char *path;
	size_t n;
};

static void err_add(struct errs *e, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void err_add(struct errs *e, unsigned line, const char *fmt, ...)
{
	char *m = NULL;
	va_list ap;
	int r;

	e->n++;
	if (e->n > MAX_ERRORS_PER_FILE || !e->d)
		return;
	va_start(ap, fmt);
	r = vasprintf(&m, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	diag_add(e->d, "%s:%u: %s", e->path, line, m);
	free(m);
}

static void err_finish(struct errs *e)
{
	if (e->n > MAX_ERRORS_PER_FILE && e->d)
		diag_add(e->d, "%s: ... %zu more errors", e->path, e->n - MAX_ERRORS_PER_FILE);
}

/* Split one line (without its newline or CR) into fields. Fields may be double-quoted ("" inside
 * a quoted field is one quote); spaces and tabs around fields are trimmed. The first three fields
 * are copied to f[]; returns the number of fields, or -EINVAL for an unterminated quote. */
static int split_line(const char *p, const char *end, struct field f[3])
{
	int nf = 0;

	for (;;) {
		struct field tmp, *cur = nf < 3 ? &f[nf] : &tmp;

		cur->len = 0;
		cur->too_long = false;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p == '"') {
			p++;
			for (;;) {
				if (p >= end)
					return -EINVAL;
				if (*p == '"') {
					if (p + 1 < end && p[1] == '"') {
						p++;
					} else {
						p++;
						break;
					}
				}
				if (cur->len < FIELD_MAX - 1)
					cur->s[cur->len++] = *p;
				else
					cur->too_long = true;
				p++;
			}
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
			if (p < end && *p != ',')
				return -EINVAL; /* text after the closing quote */
		} else {
			const char *q = p;

			while (q < end && *q != ',')
				q++;
			const char *e = q;

			while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if ((size_t)(e - p) < FIELD_MAX) {
				memcpy(cur->s, p, (size_t)(e - p));
				cur->len = (size_t)(e - p);
			} else {
				memcpy(cur->s, p, FIELD_MAX - 1);
				cur->len = FIELD_MAX - 1;
				cur->too_long = true;
			}
			p = q;
		}
		cur->s[cur->len] = '\0';
		nf++;
		if (p >= end)
			return nf;
		p++; /* the comma */
	}
}

static bool is_header(const struct field *f)
{
	unsigned char c = (unsigned char)f->s[0];

	if (f->len == 0 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
		return false;
	return !memchr(f->s, '.', f->len) && !memchr(f->s, ':', f->len);
}

/* The field for a one-line message: control and non-ASCII bytes shown as '?'. */
static const char *show(struct field *f)
{
	if (f->too_long)
		return "(field too long)";
	for (size_t i = 0; i < f->len; i++)
		if ((unsigned char)f->s[i] < 0x20 || (unsigned char)f->s[i] >= 0x7f)
			f->s[i] = '?';
	f->len = strnlen(f->s, f->len);
	return f->s;
}

static int load_csv(struct loader *L, const char *path, const char *buf, size_t size,
		    uint16_t file, uint64_t *ret_rows, struct diag *errors)
{
	struct errs e = { .d = errors, .path = path };
	const char *p = buf, *end = buf + size;
	uint64_t rows = 0;
	unsigned line = 0;
	bool seen_content = false; /* a header may be the first line that is not blank or a comment */

	if (size >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		p += 3; /* UTF-8 byte order mark */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *ls = p;
		struct field f[3];
		u128 a, b;
		int fa, fb, cc, nf;

		/* The first data row failed: this is not a CSV range file (a binary file, another
		 * format); say so once instead of a message per line. */
		if (rows == 0 && e.n > 0)
			break;
		p = nl ? nl + 1 : end;
		line++;
		if (le > ls && le[-1] == '\r')
			le--;
		while (ls < le && (*ls == ' ' || *ls == '\t'))
			ls++;
		if (ls == le || *ls == '#')
			continue;
		nf = split_line(ls, le, f);
		if (nf < 0) {
			err_add(&e, line, "unterminated or malformed quoted field");
			continue;
		}
		if (!seen_content) {
			seen_content = true;
			if (is_header(&f[0]))
				continue;
		}

		if (nf < 3) {
			err_add(&e, line, "expected 3 columns (start,end,country), got %d", nf);
			continue;
		}
		if (f[0].too_long || parse_addr_n(f[0].s, f[0].len, &a, &fa) < 0) {
			err_add(&e, line, "invalid start address \"%s\"", show(&f[0]));
			continue;
		}
		if (f[1].too_long || parse_addr_n(f[1].s, f[1].len, &b, &fb) < 0) {
			err_add(&e, line, "invalid end address \"%s\"", show(&f[1]));
			continue;
		}
		if (fa != fb) {
			err_add(&e, line, "start %s is IPv%d but end %s is IPv%d", show(&f[0]), fa,
				show(&f[1]), fb);
			continue;
		}
		if (a > b) {
			err_add(&e, line, "start %s is after end %s", show(&f[0]), show(&f[1]));
			continue;
		}
		cc = f[2].too_long ? -EINVAL : geo_country_id(f[2].s, f[2].len);
		if (cc < 0) {
			err_add(&e, line, "invalid country code \"%s\" (expected two letters)",
				show(&f[2]));
			continue;
		}
		rows++;
		cc = normalize_country(L, path, line, (uint16_t)cc);
		if (e.n == 0 && add_row(L, fa, a, b, (uint16_t)cc, line, file) < 0)
			return -ENOMEM;
	}
	if (rows == 0 && e.n > 0) {
		diag_add(errors, "%s: not a CSV range file (start,end,country) nor an MMDB database", path);
		return -EINVAL;
	}
	err_finish(&e);
	if (e.n > 0)
		return -EINVAL;
	if (rows == 0) {
		diag_add(errors, "%s: no GeoIP data: not a CSV range file (start,end,country) with at least one row, "
			 "nor an MMDB database", path);
		return -EINVAL;
	}
	*ret_rows = rows;
	return 0;
}

/* ---- MMDB --------------------------------------------------------------------------------- */

struct cc_cache {
	uint32_t *key; /* data offset + 1; 0 = free slot */
	uint16_t *val;
	size_t cap, n;
};

static int cc_cache_get(struct cc_cache *c, uint32_t off, uint16_t *ret)
{
	if (!c->cap)
		return 0;
	for (size_t i = (off * 2654435761u) & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
		if (c->key[i] == 0)
			return 0;
		if (c->key[i] == off + 1) {
			*ret = c->val[i];
			return 1;
		}
	}
}

static int cc_cache_put(struct cc_cache *c, uint32_t off, uint16_t val)
{
	if ((c->n + 1) * 2 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		uint32_t *k = calloc(cap, sizeof(*k));
		uint16_t *v = calloc(cap, sizeof(*v));

		if (!k || !v) {
			free(k);
			free(v);
			return -ENOMEM;
		}
		for (size_t i = 0; i < c->cap; i++) {
			if (!c->key[i])
				continue;
			size_t j = ((c->key[i] - 1) * 2654435761u) & (cap - 1);

			while (k[j])
				j = (j + 1) & (cap - 1);
			k[j] = c->key[i];
			v[j] = c->val[i];
		}
		free(c->key);
		free(c->val);
		c->key = k;
		c->val = v;
		c->cap = cap;
	}
	size_t i = (off * 2654435761u) & (c->cap - 1);

	while (c->key[i])
		i = (i + 1) & (c->cap - 1);
	c->key[i] = off + 1;
	c->val[i] = val;
	c->n++;
	return 0;
}

/* Country of a data record: country.iso_code, else country_code, else
 * registered_country.iso_code; 0 if none. -EINVAL for a code that is not two letters. */
static int mmdb_country(MMDB_entry_s *entry, struct cc_cache *cache, uint16_t *ret)
{
	static const char *const paths[][3] = {
		{ "country", "iso_code", NULL },
		{ "country_code", NULL, NULL },
		{ "registered_country", "iso_code", NULL },
	};
	uint16_t id = 0;
	int r;

	if (cc_cache_get(cache, entry->offset, ret))
		return 0;
	for (size_t i = 0; i < 3; i++) {
		MMDB_entry_data_s d;

		if (MMDB_aget_value(entry, &d, paths[i]) != MMDB_SUCCESS || !d.has_data ||
		    d.type != MMDB_DATA_TYPE_UTF8_STRING)
			continue;
		r = geo_country_id(d.utf8_string, d.data_size);
		if (r < 0)
			return r;
		id = (uint16_t)r;
		break;
	}
	r = cc_cache_put(cache, entry->offset, id);
	if (r < 0)
		return r;
	*ret = id;
	return 0;
}

struct walk {
	uint32_t node;
	unsigned depth;
	u128 prefix;
};

static int load_mmdb(struct loader *L, const char *path, const char *open_path, uint16_t file,
		     struct geo_source *src, struct diag *errors)
{
	MMDB_s mmdb;
	struct cc_cache cache = { 0 };
	struct walk *stack = NULL;
	size_t nstack = 0, capstack = 0;
	uint64_t visits = 0, rows = 0;
	uint32_t v4start = UINT32_MAX;
	unsigned bits;
	int r, s;

	s = MMDB_open(open_path, MMDB_MODE_MMAP, &mmdb);
	if (s != MMDB_SUCCESS) {
		diag_add(errors, "%s: %s", path, MMDB_strerror(s));
		if (s == MMDB_OUT_OF_MEMORY_ERROR)
			return -ENOMEM;
		return s == MMDB_IO_ERROR ? -EIO : -EINVAL;
	}
	if (mmdb.metadata.ip_version != 4 && mmdb.metadata.ip_version != 6) {
		diag_add(errors, "%s: unsupported MMDB ip_version %u", path,
			 (unsigned)mmdb.metadata.ip_version);
		r = -EINVAL;
		goto out;
	}
	bits = mmdb.metadata.ip_version == 4 ? 32 : 128;
	if (bits == 128) {
		/* the IPv4 subtree: follow ::/96 (96 left records) from the root */
		uint32_t n = 0;
		unsigned d;

		for (d = 0; d < 96 && n < mmdb.metadata.node_count; d++) {
			MMDB_search_node_s sn;

			if (MMDB_read_node(&mmdb, n, &sn) != MMDB_SUCCESS ||
			    sn.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE)
				break;
			n = (uint32_t)sn.left_record;
		}
		if (d == 96)
			v4start = n;
	}

	r = -ENOMEM;
	capstack = 256;
	stack = malloc(capstack * sizeof(*stack));
	if (!stack)
		goto out;
	stack[nstack++] = (struct walk){ .node = 0, .depth = 0, .prefix = 0 };
	while (nstack > 0) {
		struct walk w = stack[--nstack];
		MMDB_search_node_s sn;

		if (++visits > 4 * (uint64_t)mmdb.metadata.node_count + 64) {
			diag_add(errors, "%s: search tree has cycles or shared subtrees", path);
			r = -EINVAL;
			goto out;
		}
		s = MMDB_read_node(&mmdb, w.node, &sn);
		if (s != MMDB_SUCCESS) {
			diag_add(errors, "%s: node %u: %s", path, w.node, MMDB_strerror(s));
			r = -EINVAL;
			goto out;
		}
		/* right first so that the left subtree is popped (and emitted) first */
		for (int side = 1; side >= 0; side--) {
			uint8_t type = side ? sn.right_record_type : sn.left_record_type;
			uint64_t rec = side ? sn.right_record : sn.left_record;
			MMDB_entry_s entry = side ? sn.right_record_entry : sn.left_record_entry;
			unsigned depth = w.depth + 1;
			u128 prefix = w.prefix | ((u128)side << (bits - depth));
			u128 last = prefix | low_mask(bits - depth);
			uint16_t cc;

			if (type == MMDB_RECORD_TYPE_EMPTY)
				continue;
			if (type == MMDB_RECORD_TYPE_SEARCH_NODE) {
				if (depth >= bits) {
					diag_add(errors, "%s: search tree deeper than %u bits",
						 path, bits);
					r = -EINVAL;
					goto out;
				}
				if (bits == 128 && rec == v4start &&
				    ((depth == 96 && prefix == (u128)0xffff << 32) ||
				     (depth == 32 && prefix == (u128)0x2001 << 112) ||
				     (depth == 16 && prefix == (u128)0x2002 << 112)))
					continue; /* alias of the IPv4 subtree */
				if (nstack == capstack) {
					struct walk *ns = realloc(stack,
								  2 * capstack * sizeof(*ns));

					if (!ns)
						goto out;
					stack = ns;
					capstack *= 2;
				}
				stack[nstack++] = (struct walk){ (uint32_t)rec, depth, prefix };
				continue;
			}
			if (type != MMDB_RECORD_TYPE_DATA) {
				diag_add(errors, "%s: node %u: invalid record %llu", path, w.node,
					 (unsigned long long)rec);
				r = -EINVAL;
				goto out;
			}
			rows++;
			s = mmdb_country(&entry, &cache, &cc);
			if (s >= 0)
				cc = normalize_country(L, path, 0, cc);
			if (s == -ENOMEM)
				goto out;
			if (s < 0) {
				char a[46];

				bool in4 = bits == 32 || (last <= UINT32_MAX);

				diag_add(errors, "%s: network %s/%u: invalid country code", path,
					 geo_format_addr(in4 ? 4 : 6, prefix, a),
					 bits == 128 && in4 ? depth - 96 : depth);
				r = -EINVAL;
				goto out;
			}
			if (bits == 32) {
				if (add_row(L, 4, prefix, last, cc, 0, file) < 0)
					goto out;
			} else if (last <= UINT32_MAX) {
				/* inside ::/96: the IPv4 space */
				if (add_row(L, 4, prefix, last, cc, 0, file) < 0)
					goto out;
			} else if (prefix == 0) {
				/* a record wider than ::/96 starting at ::: IPv4 plus the rest */
				if (add_row(L, 4, 0, UINT32_MAX, cc, 0, file) < 0 ||
				    add_row(L, 6, (u128)UINT32_MAX + 1, last, cc, 0, file) < 0)
					goto out;
			} else {
				if (add_row(L, 6, prefix, last, cc, 0, file) < 0)
					goto out;
			}
		}
	}
	if (mmdb.metadata.database_type) {
		src->database_type = strdup(mmdb.metadata.database_type);
		if (!src->database_type)
			goto out;
	}
	src->build_epoch = mmdb.metadata.build_epoch;
	src->rows = rows;
	if (rows == 0) {
		diag_add(errors, "%s: no GeoIP data: the MMDB database has no networks", path);
		r = -EINVAL;
		goto out;
	}
	r = 0;
out:
	free(stack);
	free(cache.key);
	free(cache.val);
	MMDB_close(&mmdb);
	return r;
}

/* ---- files -------------------------------------------------------------------------------- */

/* Next buffer size: double, but never more than limit + 1 bytes (one byte past the limit is
 * enough to detect that the input exceeds it). */
static size_t grow(size_t cap, uint64_t limit)
{
	uint64_t want = (uint64_t)cap * 2;

	if (want > limit + 1)
		want = limit + 1;
	if (want <= cap)
		want = cap + 1;
	return (size_t)want;
}

static int read_all(int fd, uint64_t limit, char **ret_buf, size_t *ret_size)
{
	size_t cap = limit + 1 < (1 << 16) ? (size_t)limit + 1 : (1 << 16), n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k;

		if (n == cap) {
			char *nb;

			size_t ncap = grow(cap, limit);

			if (n > limit)
				break;
			nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		k = read(fd, buf + n, cap - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			k = -errno;
			free(buf);
			return (int)k;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n > limit) {
		free(buf);
		return -EFBIG;
	}
	*ret_buf = buf;
	*ret_size = n;
	return 0;
}

/* Inflate a gzip stream (possibly several members) into a new buffer of at most limit bytes. */
static int gunzip(const char *in, size_t insize, uint64_t limit, char **ret_buf, size_t *ret_size,
		  const char **ret_msg)
{
	z_stream z = { 0 };
	size_t cap = insize * 4 + 4096, n = 0;
	char *out;
	int zr, r = 0;

	if (cap > limit + 1)
		cap = (size_t)limit + 1;

	if (inflateInit2(&z, 15 + 32) != Z_OK)
		return -ENOMEM;
	out = malloc(cap);
	if (!out) {
		inflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = 0;
	for (;;) {
		if (n == cap) {
			char *no;

			size_t ncap = grow(cap, limit);

			if (n > limit) {
				r = -EFBIG;
				break;
			}
			no = realloc(out, ncap);
			if (!no) {
				r = -ENOMEM;
				break;
			}
			out = no;
			cap = ncap;
		}
		if (z.avail_in == 0) {
			size_t left = insize - (size_t)((const char *)z.next_in - in);

			z.avail_in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
		}
		size_t room = cap - n;

		z.next_out = (Bytef *)out + n;
		z.avail_out = room > UINT32_MAX ? UINT32_MAX : (uInt)room;
		zr = inflate(&z, Z_NO_FLUSH);
		n = (size_t)((char *)z.next_out - out);
		if (n > limit) {
			r = -EFBIG;
			break;
		}
		if (zr == Z_STREAM_END) {
			size_t left = insize - (size_t)((const char *)z.next_in - in);

			if (left == 0 && z.avail_in == 0)
				break;
			if (inflateReset(&z) != Z_OK) { /* next gzip member */
				r = -EINVAL;
				*ret_msg = "gzip: cannot reset stream";
				break;
			}
			continue;
		}
		if (zr == Z_BUF_ERROR && z.avail_out > 0) {
			r = -EINVAL;
			*ret_msg = "gzip: unexpected end of file";
			break;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			r = zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
			*ret_msg = z.msg ? z.msg : "gzip: corrupt data";
			break;
		}
	}
	inflateEnd(&z);
	if (r < 0) {
		free(out);
		return r;
	}
	*ret_buf = out;
	*ret_size = n;
	return 0;
}

static int sha256_hex(const void *buf, size_t size, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(buf, size, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -EIO;
	for (unsigned i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[64] = '\0';
	return 0;
}

static bool is_mmdb(const char *buf, size_t size)
{
	size_t off = size > MMDB_METADATA_WINDOW ? size - MMDB_METADATA_WINDOW : 0;

	return memmem(buf + off, size - off, MMDB_MARKER, MMDB_MARKER_LEN) != NULL;
}

static int load_file(struct loader *L, const char *path, uint16_t file, struct geo_source *src,
		     struct diag *errors)
{
	char *raw = NULL, *plain = NULL;
	size_t rawsize = 0, plainsize = 0;
	const char *zmsg = NULL;
	int fd, memfd = -1, r;

	src->path = strdup(path);
	if (!src->path)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		diag_add(errors, "%s: %s", path, strerror(-r));
		return r;
	}
	r = read_all(fd, max_file_bytes, &raw, &rawsize);
	if (r < 0) {
		if (r == -EFBIG)
			diag_add(errors, "%s: file exceeds the limit of %llu bytes", path,
				 (unsigned long long)max_file_bytes);
		else if (r != -ENOMEM)
			diag_add(errors, "%s: %s", path, strerror(-r));
		goto out;
	}
	r = sha256_hex(raw, rawsize, src->sha256);
	if (r < 0) {
		diag_add(errors, "%s: cannot compute SHA-256", path);
		goto out;
	}
	if (rawsize >= 2 && (unsigned char)raw[0] == 0x1f && (unsigned char)raw[1] == 0x8b) {
		src->gzip = 1;
		r = gunzip(raw, rawsize, max_file_bytes, &plain, &plainsize, &zmsg);
		if (r == -EFBIG)
			diag_add(errors, "%s: decompressed size exceeds the limit of %llu bytes",
				 path, (unsigned long long)max_file_bytes);
		else if (r == -EINVAL)
			diag_add(errors, "%s: %s", path, zmsg);
		if (r < 0)
			goto out;
		free(raw);
		raw = NULL;
	} else {
		plain = raw;
		plainsize = rawsize;
		raw = NULL;
	}

	if (is_mmdb(plain, plainsize)) {
		char procpath[64];

		strcpy(src->format, "mmdb");
		if (src->gzip) {
			size_t off = 0;

			memfd = memfd_create("egressd-geo-mmdb", MFD_CLOEXEC);
			if (memfd < 0) {
				r = -errno;
				diag_add(errors, "%s: memfd_create: %s", path, strerror(-r));
				goto out;
			}
			while (off < plainsize) {
				ssize_t k = write(memfd, plain + off, plainsize - off);

				if (k < 0 && errno == EINTR)
					continue;
				if (k <= 0) {
					r = k < 0 ? -errno : -EIO;
					diag_add(errors, "%s: writing memfd: %s", path,
						 strerror(-r));
					goto out;
				}
				off += (size_t)k;
			}
		}
		free(plain);
		plain = NULL;
		snprintf(procpath, sizeof(procpath), "/proc/self/fd/%d", src->gzip ? memfd : fd);
		r = load_mmdb(L, path, procpath, file, src, errors);
	} else {
		strcpy(src->format, "csv");
		r = load_csv(L, path, plain, plainsize, file, &src->rows, errors);
	}
out:
	free(raw);
	free(plain);
	if (memfd >= 0)
		close(memfd);
	close(fd);
	return r;
}

/* ---- overlap resolution ------------------------------------------------------------------- */

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* true if row a beats row b: narrower, or equally wide and later */
static inline bool beats(const struct row *a, const struct row *b)
{
	u128 wa = a->end - a->start, wb = b->end - b->start;

	if (wa != wb)
		return wa < wb;
	return a->seq > b->seq;
}

struct heap {
	const struct row *rows;
	uint32_t *v;
	size_t n;
};

static void heap_push(struct heap *h, uint32_t idx)
{
	size_t i = h->n++;

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!beats(&h->rows[idx], &h->rows[h->v[parent]]))
			break;
		h->v[i] = h->v[parent];
		i = parent;
	}
	h->v[i] = idx;
}

static void heap_pop(struct heap *h)
{
	uint32_t last = h->v[--h->n];
	size_t i = 0;

	if (h->n == 0)
		return;
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && beats(&h->rows[h->v[c + 1]], &h->rows[h->v[c]]))
			c++;
		if (!beats(&h->rows[h->v[c]], &h->rows[last]))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	h->v[i] = last;
}

static int emit(struct geo_span **v, size_t *n, size_t *cap, u128 start, u128 end, uint16_t cc)
{
	if (cc == 0)
		return 0;
	if (*n > 0 && (*v)[*n - 1].country == cc && (*v)[*n - 1].end + 1 == start) {
		(*v)[*n - 1].end = end;
		return 0;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		struct geo_span *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = (struct geo_span){ .start = start, .end = end, .country = cc };
	return 0;
}

static void warn_duplicates(const struct rowvec *rv, int family, const struct geo_source *srcs,
			    size_t nsrcs, struct diag *warnings)
{
	size_t *count = calloc(nsrcs ? nsrcs : 1, sizeof(*count));

	if (!count || !warnings) {
		free(count);
		return;
	}
	for (size_t i = 1; i < rv->n; i++) {
		const struct row *a = &rv->v[i - 1], *b = &rv->v[i];
		char s[46], e[46];

		if (a->start != b->start || a->end != b->end)
			continue;
		/* b is later (sorted by seq within identical ranges) */
		if (++count[b->file] > MAX_WARNINGS_PER_FILE)
			continue;
		geo_format_addr(family, b->start, s);
		geo_format_addr(family, b->end, e);
		if (a->file == b->file && a->line) {
			diag_add(warnings,
				 "%s:%u: range %s-%s duplicates line %u; the later row wins",
				 srcs[b->file].path, b->line, s, e, a->line);
		} else if (a->line) {
			diag_add(warnings,
				 "%s:%u: range %s-%s duplicates %s:%u; the later row wins",
				 srcs[b->file].path, b->line, s, e, srcs[a->file].path, a->line);
		} else if (b->line) {
			diag_add(warnings, "%s:%u: range %s-%s duplicates a network of %s; the "
				 "later row wins", srcs[b->file].path, b->line, s, e,
				 srcs[a->file].path);
		} else {
			diag_add(warnings, "%s: network %s-%s duplicates a network of %s; the "
				 "later row wins", srcs[b->file].path, s, e, srcs[a->file].path);
		}
	}
	for (size_t f = 0; f < nsrcs; f++)
		if (count[f] > MAX_WARNINGS_PER_FILE)
			diag_add(warnings, "%s: ... %zu more warnings", srcs[f].path,
				 count[f] - MAX_WARNINGS_PER_FILE);
	free(count);
}

static int prefix_count_cb(u128 start, unsigned plen, void *ctx)
{
	return 0;
}

/* Resolve the rows of one family into sorted disjoint merged spans. */
static int resolve(struct rowvec *rv, int family, const struct geo_source *srcs, size_t nsrcs,
		   struct diag *warnings, struct geo_span **ret_v, size_t *ret_n,
		   uint64_t *ret_prefixes)
{
	struct heap h = { .rows = rv->v };
	struct geo_span *out = NULL;
	size_t nout = 0, capout = 0, i = 0;
	u128 pos = 0, fmax = family_max(family);
	uint64_t prefixes = 0;
	bool sorted = true;

	for (size_t k = 1; k < rv->n && sorted; k++)
		sorted = row_cmp(&rv->v[k - 1], &rv->v[k]) <= 0;
	if (!sorted)
		qsort(rv->v, rv->n, sizeof(*rv->v), row_cmp);
	warn_duplicates(rv, family, srcs, nsrcs, warnings);

	h.v = malloc((rv->n ? rv->n : 1) * sizeof(*h.v));
	if (!h.v)
		return -ENOMEM;
	while (i < rv->n || h.n > 0) {
		const struct row *top;
		u128 seg_end;

		if (h.n == 0)
			pos = rv->v[i].start;
		while (i < rv->n && rv->v[i].start <= pos)
			heap_push(&h, (uint32_t)i++);
		while (h.n > 0 && rv->v[h.v[0]].end < pos)
			heap_pop(&h);
		if (h.n == 0)
			continue;
		top = &rv->v[h.v[0]];
		seg_end = top->end;
		if (i < rv->n && rv->v[i].start - 1 < seg_end)
			seg_end = rv->v[i].start - 1;
		if (emit(&out, &nout, &capout, pos, seg_end, top->country) < 0) {
			free(h.v);
			free(out);
			return -ENOMEM;
		}
		if (seg_end == fmax)
			break;
		pos = seg_end + 1;
	}
	free(h.v);
	for (size_t k = 0; k < nout; k++)
		prefixes += (uint64_t)geo_range_to_prefixes(out[k].start, out[k].end,
							    family == 4 ? 32 : 128,
							    prefix_count_cb, NULL);
	*ret_v = out;
	*ret_n = nout;
	*ret_prefixes = prefixes;
	return 0;
}

/* ---- public ------------------------------------------------------------------------------- */

static void sources_free(struct geo_source *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].path);
		free(s[i].database_type);
	}
	free(s);
}

void geo_db_free(struct geo_db *db)
{
	if (!db)
		return;
	free(db->v4);
	free(db->v6);
	sources_free(db->sources, db->nsources);
	memset(db, 0, sizeof(*db));
}

int geo_load(const char *const *paths, size_t npaths, struct geo_db *ret, struct diag *errors,
	     struct diag *warnings)
{
	struct loader L = { 0 };
	struct geo_db db = { 0 };
	struct diag warn = { 0 }, errs_local = { 0 };
	int r = 0;

	if (!errors)
		errors = &errs_local; /* messages are dropped */

	if (npaths > UINT16_MAX)
		return -E2BIG;
	L.sources = calloc(npaths ? npaths : 1, sizeof(*L.sources));
	if (!L.sources)
		return -ENOMEM;
	L.nsources = npaths;
	L.warnings = &warn;
	for (size_t f = 0; f < npaths; f++) {
		int k = load_file(&L, paths[f], (uint16_t)f, &L.sources[f], errors);

		if (k == -ENOMEM) {
			r = k;
			break;
		}
		if (k < 0 && r == 0)
			r = k;
	}
	diag_free(&errs_local);
	if (r < 0)
		goto fail;
	r = resolve(&L.fam[0], 4, L.sources, L.nsources, &warn, &db.v4, &db.n4, &db.prefixes4);
	if (r < 0)
		goto fail;
	r = resolve(&L.fam[1], 6, L.sources, L.nsources, &warn, &db.v6, &db.n6, &db.prefixes6);
	if (r < 0)
		goto fail;
	free(L.fam[0].v);
	free(L.fam[1].v);
	db.sources = L.sources;
	db.nsources = L.nsources;
	if (warnings)
		diag_move(warnings, &warn);
	diag_free(&warn);
	*ret = db;
	return 0;
fail:
	diag_free(&warn);
	free(db.v4);
	free(db.v6);
	free(L.fam[0].v);
	free(L.fam[1].v);
	sources_free(L.sources, L.nsources);
	return r;
}
