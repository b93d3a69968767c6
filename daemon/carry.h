/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * carry.h - convert keys and values of a map pinned by an earlier version of egressd into this
 * version's layout, so an upgrade that changes a counting map's layout carries its counts over
 * instead of dropping them.
 *
 * The conversion is planned from the BTF (BPF Type Format, kernel doc
 * Documentation/bpf/btf.rst) that libbpf attaches to every map it creates: the kernel keeps the
 * old map's key and value types (bpf_map_info.btf_id, btf_key_type_id, btf_value_type_id), and
 * this version's types come from the object being loaded. Fields are matched by name:
 *   - integer and enum fields convert between widths (host byte order, as the maps hold them);
 *     a value that does not fit the narrower field makes carry_convert() fail with -ERANGE;
 *   - other fields (arrays, nested structs) are copied byte for byte when kind and size agree;
 *   - a field only the new type has starts at 0; a field only the old type has is dropped
 *     (for a key, entries that differed only in that field then add up under one key).
 * Both sides plain integers (a __u64 statistics value) is a one-field plan. Without old BTF
 * (btf NULL) only an unchanged size is accepted, copied as it is.
 */
#ifndef EGRESSD_CARRY_H
#define EGRESSD_CARRY_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"

struct btf;

#define CARRY_MAX_FIELDS 32

struct carry_field {
	uint32_t src_off, src_size; /* bytes */
	uint32_t dst_off, dst_size;
	uint8_t integer; /* 1: integer conversion; 0: byte copy (src_size == dst_size) */
	uint8_t src_signed; /* the old integer is signed (sign-extended, must be >= 0 to convert) */
};

struct carry_plan {
	size_t src_size, dst_size; /* bytes of one old / new key or value */
	size_t n;
	struct carry_field f[CARRY_MAX_FIELDS];
};

/* Plan the conversion of the old type old_id of old_btf (size old_size bytes; old_btf NULL = the
 * old map has no BTF) into the new type new_id of new_btf (size new_size). what names the pair in
 * messages ("PATH key"). Fields added or dropped are one line each in notes. Returns 0, or
 * -EINVAL with one line in errors when the types cannot be converted (a field of another kind or
 * size, a bitfield, a union, an anonymous member, no BTF and another size, more than CARRY_MAX_FIELDS fields). */
int carry_plan_build(const struct btf *old_btf, uint32_t old_id, size_t old_size,
		     const struct btf *new_btf, uint32_t new_id, size_t new_size, const char *what,
		     struct carry_plan *ret, struct diag *notes, struct diag *errors);

/* Convert one old key or value src (plan->src_size bytes) into dst (plan->dst_size bytes, zeroed
 * first). Returns 0, or -ERANGE when an integer does not fit its new field (dst is then
 * undefined). */
int carry_convert(const struct carry_plan *plan, const void *src, void *dst);

#endif
