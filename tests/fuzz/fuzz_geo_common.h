/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz_geo_common.h - shared body of the GeoIP fuzz targets: the input becomes a file (a memfd,
 * opened through /proc/self/fd/N exactly as geo_load opens any path), is loaded with geo_load, and
 * the result is checked against the invariants geo.h promises (sorted, disjoint, merged spans of
 * a nonzero country, IPv4 spans inside 0 .. 2^32-1, geo_db_find consistent). Any violation aborts.
 */
#ifndef FUZZ_GEO_COMMON_H
#define FUZZ_GEO_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "geo.h"

static void check_spans(const struct geo_db *db, int family)
{
	const struct geo_span *v = family == 4 ? db->v4 : db->v6;
	size_t n = family == 4 ? db->n4 : db->n6;

	for (size_t i = 0; i < n; i++) {
		if (v[i].start > v[i].end || v[i].country == 0 || v[i].country > 676)
			abort();
		if (family == 4 && v[i].end > UINT32_MAX)
			abort();
		if (i > 0 && v[i - 1].end >= v[i].start)
			abort(); /* not sorted or not disjoint */
		if (i > 0 && v[i - 1].end + 1 == v[i].start && v[i - 1].country == v[i].country)
			abort(); /* adjacent spans of one country must be merged */
		if (geo_db_find(db, family, v[i].start) != &v[i] ||
		    geo_db_find(db, family, v[i].end) != &v[i])
			abort();
		if (geo_range_to_prefixes(v[i].start, v[i].end, family == 4 ? 32 : 128, NULL,
					  NULL) <= 0)
			abort();
	}
}

/* Load data as one GeoIP file; 0 always (libFuzzer's convention). */
static int fuzz_geo_load(const uint8_t *data, size_t size)
{
	struct geo_db db = { 0 };
	struct diag errors = { 0 }, warnings = { 0 };
	char path[64];
	const char *paths[] = { path };
	size_t off = 0;
	int fd, r;

	/* Keep each run small: a compressed input may not inflate past 4 MiB. */
	geo_set_max_file_bytes(4 << 20);
	fd = memfd_create("fuzz-geo", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	while (off < size) {
		ssize_t k = write(fd, data + off, size - off);

		if (k <= 0)
			abort();
		off += (size_t)k;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = geo_load(paths, 1, &db, &errors, &warnings);
	if (r == 0) {
		check_spans(&db, 4);
		check_spans(&db, 6);
		if (db.nsources != 1)
			abort();
		geo_db_free(&db);
	} else {
		/* failure: a reason was given, and only the documented errors occur */
		if (errors.n == 0 && r != -ENOMEM)
			abort();
		if (r != -EINVAL && r != -EFBIG && r != -ENOMEM && r != -EIO)
			abort();
	}
	for (size_t i = 0; i < errors.n; i++)
		if (strncmp(errors.msgs[i], path, strlen(path)) != 0 || strchr(errors.msgs[i], '\n'))
			abort(); /* every message is one line about this file */
	diag_free(&errors);
	diag_free(&warnings);
	close(fd);
	return 0;
}

#endif
