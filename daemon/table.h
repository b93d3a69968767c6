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

/* Build the image of db for the given generation number. Per family, the spans of db become a
 * partition of the whole address space (gaps become country-0 ranges, range 0 starts at address 0,
 * neighbours of equal country are merged); then the IPv4 direct index (a country per /16 inside one
 * range), the IPv4 second-level blocks (a country or a narrowed search per /24, for each /16 met by
 * at least 4 ranges), the two 65537-entry indexes and the words are laid out as in egress_abi.h.
 * Returns 0 and fills *ret (free with table_image_free), -ENOMEM, -EINVAL when the spans are not
 * sorted and disjoint (or an IPv4 span exceeds 2^32 - 1), or -E2BIG when a family has more than
 * EGRESS_TABLE_MAX_RANGES ranges or a bucket more than 2^EGRESS_TABLE_MAX_STEPS. *ret is untouched
 * on failure. */
int table_build(const struct geo_db *db, uint64_t generation, struct table_image *ret);

/* Free the words of img and zero it; NULL and a zeroed image are fine. */
void table_image_free(struct table_image *img);

/* Country id of an IPv4 address (host order) / IPv6 address (16 bytes, network order), searched
 * with the functions of include/egress_lookup.h that the BPF programs use. 0 = unknown, also
 * for an image without the magic word. */
uint16_t table_lookup4(const struct table_image *img, uint32_t addr);
uint16_t table_lookup6(const struct table_image *img, const uint8_t addr[16]);

/* Same as table_lookup6, with the address as two host-order halves (bits 127..64, 63..0). */
uint16_t table_lookup6_u64(const struct table_image *img, uint64_t hi, uint64_t lo);

/* Size of the image in bytes (nwords * 8): the value size times max_entries of the inner map. */
uint64_t table_image_bytes(const struct table_image *img);

/* Largest number of candidate ranges one search of the given family (4 or 6) can face:
 * max over buckets h of idx[h + 1] - idx[h] + 1. The search takes ceil(log2(that)) steps.
 * Returns 0 for another family or an image too short to hold the index. */
uint32_t table_max_bucket(const struct table_image *img, int family);

/* Check the invariants of an image: magic, header (counts, offsets, reserved words 0, total
 * size), range 0 of each family starts at address 0, starts strictly increasing, country ids below
 * EGRESS_COUNTRY_MAX, unused country slots 0, index entry h = the range containing
 * h << (bits - 16), entry 65536 = n - 1, no bucket beyond the search bound, IPv4 direct index and
 * blocks equal to those recomputed from the ranges (block count in header word 7). Returns 0, or
 * -EINVAL with one message per kind of problem appended to errors (if not NULL), "table: ...".
 * Linear in the image size (about 7 ms for the world data). */
int table_verify(const struct table_image *img, struct diag *errors);

#endif
