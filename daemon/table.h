/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * table.h - compile a geo_db into the GeoIP table image the BPF programs search (layout in
 * include/egress_abi.h), and search it in userspace with the same algorithm.
 */
#ifndef EGRESSD_TABLE_H
#define EGRESSD_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "geo.h"

struct table_image {
	uint64_t *words; /* nwords host-order words, layout of egress_abi.h */
	size_t nwords;
	uint64_t n4, n6; /* ranges per family, gaps included */
};

/* Build the image of db for the given generation number. Returns 0, -ENOMEM, or -E2BIG when a
 * family has more than EGRESS_TABLE_MAX_RANGES ranges or a bucket more than the search bound. */
int table_build(const struct geo_db *db, uint64_t generation, struct table_image *ret);
void table_image_free(struct table_image *img);

/* Country id of an IPv4 address (host order) / IPv6 address (16 bytes, network order). */
uint16_t table_lookup4(const struct table_image *img, uint32_t addr);
uint16_t table_lookup6(const struct table_image *img, const uint8_t addr[16]);

#endif
