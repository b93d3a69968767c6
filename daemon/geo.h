/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * geo.h - GeoIP loaders: CSV range files (start,end,CC; ip-location-db / DB-IP lite layout, an
 * optional header line), MMDB (libmaxminddb), each optionally gzip-compressed. The format is
 * sniffed from the content, never from the file name.
 *
 * The result is, per family, a sorted list of disjoint spans with a country id; overlapping rows
 * are resolved (the narrower range wins; for identical ranges the later row wins with a warning).
 */
#ifndef EGRESSD_GEO_H
#define EGRESSD_GEO_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"

typedef unsigned __int128 u128;

/* An inclusive address range, host order. IPv4 spans live in 0 .. 2^32-1. */
struct geo_span {
	u128 start;
	u128 end;
	uint16_t country; /* country id (egress_abi.h), never 0 in a geo_db */
};

/* Identity of one loaded source file, for provenance. */
struct geo_source {
	char *path;
	char format[8]; /* "csv" or "mmdb" */
	int gzip; /* 1 if the file was gzip-compressed */
	char sha256[65]; /* hex digest of the file as stored on disk */
	char *database_type; /* MMDB metadata database_type, or NULL */
	uint64_t build_epoch; /* MMDB metadata build_epoch (s since 1970), 0 for CSV */
	uint64_t rows; /* CSV rows or MMDB networks read */
};

struct geo_db {
	struct geo_span *v4; /* sorted by start, disjoint, adjacent spans of equal country merged */
	size_t n4;
	struct geo_span *v6;
	size_t n6;
	uint64_t prefixes4; /* number of CIDR prefixes needed to express v4 (range -> prefix) */
	uint64_t prefixes6;
	struct geo_source *sources;
	size_t nsources;
};

/* Load and merge the given files (later files' rows count as later rows). Returns 0 and fills
 * *ret (which the caller frees with geo_db_free), or a negative errno: -EINVAL when the data is
 * malformed (each problem appended to errors as "FILE:LINE: message"), -ENOENT/-EACCES/... when a
 * file cannot be read (also appended to errors), -ENOMEM, -EFBIG when a decompressed file exceeds
 * GEO_MAX_FILE_BYTES. Non-fatal findings (identical ranges) go to warnings. *ret is untouched on
 * failure. Messages: "FILE:LINE: ..." for rows, "FILE: ..." for whole files (e.g. "FILE: No such
 * file or directory"); at most 20 errors and 20 warnings per file, then "FILE: ... N more errors".
 * errors and warnings may be NULL (messages dropped). */
int geo_load(const char *const *paths, size_t npaths, struct geo_db *ret, struct diag *errors,
	     struct diag *warnings);
/* 512 MiB per file, as stored and after decompression: the world CSV is ~40 MB, the largest
 * commercial MMDBs ~100 MB. Inflation stops one byte past the limit, so a gzip bomb costs at most
 * this much memory and the time to inflate it (documented in egressd.conf(5), LIMITS). */
#define GEO_MAX_FILE_BYTES (512ULL << 20)

/* Override the per-file size limit (bytes, applied to the file as stored and to its decompressed
 * content) for all later geo_load calls in this process; 0 restores GEO_MAX_FILE_BYTES. Meant for
 * tests (a small gzip bomb). Not thread-safe. */
void geo_set_max_file_bytes(uint64_t bytes);

/* Free everything db owns (spans, sources); db is left zeroed. NULL is accepted. */
void geo_db_free(struct geo_db *db);

/* Country code "DE" -> id 1..676; pseudo-codes (ZZ, EU, AP, A1, A2, O1) and "" -> 0.
 * Case-insensitive. Returns -EINVAL for anything else (not two ASCII letters). */
int geo_country_id(const char *code, size_t len);

/* 1 if id is one of the 249 assigned ISO 3166-1 alpha-2 codes (ISO 3166 Maintenance Agency) or
 * AN / XK, which GeoIP data uses; else 0. The loaders count any other code as unknown (0), with a
 * warning, and read UK (reserved for the United Kingdom) as GB. */
int geo_country_assigned(uint16_t id);

/* Id -> "DE" (3-byte buffer incl. NUL); id 0 -> "unknown" needs 8 bytes: buf must hold 8.
 * Ids above 676 give "invalid". Returns buf. */
const char *geo_country_code(uint16_t id, char buf[8]);

/* Span of db containing addr (family 4 or 6, host order), or NULL if no data covers it. */
const struct geo_span *geo_db_find(const struct geo_db *db, int family, u128 addr);

/* Range -> CIDR prefixes: calls cb(start, prefix_len, ctx) for the minimal prefix cover of
 * [start, end], in address order; bits = 32 or 128. Exact at both ends of the address space.
 * Returns the number of prefixes, or the first negative value cb returned, or -EINVAL if
 * start > end, end does not fit in bits, or bits is not 32/128. cb may be NULL (count only).
 * Algorithm: greedy, at each step the largest aligned block starting at the current address
 * (min of its trailing zero bits and floor(log2(remaining))), which gives the minimal cover. */
int64_t geo_range_to_prefixes(u128 start, u128 end, unsigned bits,
			      int (*cb)(u128 start, unsigned plen, void *ctx), void *ctx);

/* The largest prefix that contains addr and lies inside [start, end]: writes its start and
 * length. bits = 32 or 128. addr must lie in [start, end]; otherwise writes addr and bits. */
void geo_prefix_containing(u128 start, u128 end, u128 addr, unsigned bits, u128 *ret_start,
			   unsigned *ret_plen);

/* Address helpers: parse an IPv4 or IPv6 text address into host-order u128 and family (4/6);
 * format back. Return 0 or -EINVAL. buf must hold 46 bytes (INET6_ADDRSTRLEN). */
int geo_parse_addr(const char *s, u128 *ret_addr, int *ret_family);
const char *geo_format_addr(int family, u128 addr, char buf[46]);

#endif
