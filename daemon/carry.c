/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "carry.h"

#include <errno.h>
#include <string.h>

#include <bpf/btf.h>

/* One field of a flattened top-level type. */
struct field {
	const char *name; /* "" for a top-level scalar */
	uint32_t off, size; /* bytes */
	int kind; /* BTF_KIND_INT (enums too) or the kind of anything else */
	int is_signed;
	int bitfield; /* a bitfield or a sub-byte integer: not convertible */
};

/* Describe the scalar type id (modifiers and typedefs resolved) as a field. */
static int scalar_of(const struct btf *btf, uint32_t id, struct field *f)
{
	const struct btf_type *t;
	int64_t sz;
	int rid = btf__resolve_type(btf, id);

	if (rid < 0)
		return -EINVAL;
	t = btf__type_by_id(btf, (uint32_t)rid);
	sz = btf__resolve_size(btf, (uint32_t)rid);
	if (!t || sz <= 0 || sz > UINT32_MAX)
		return -EINVAL;
	f->size = (uint32_t)sz;
	f->kind = btf_kind(t);
	f->is_signed = 0;
	f->bitfield = 0;
	if (btf_is_int(t)) {
		f->is_signed = (btf_int_encoding(t) & BTF_INT_SIGNED) != 0;
		f->bitfield = btf_int_offset(t) != 0 || btf_int_bits(t) != 8 * f->size;
	} else if (btf_is_enum(t) || btf_is_enum64(t)) {
		f->kind = BTF_KIND_INT;
		f->is_signed = btf_kflag(t);
	}
	if (f->kind == BTF_KIND_INT && f->size != 1 && f->size != 2 && f->size != 4 && f->size != 8)
		f->bitfield = 1;
	return 0;
}

/* Flatten type id: a struct into its members, anything else into one unnamed field. */
static int fields_of(const struct btf *btf, uint32_t id, struct field *out, size_t *n, int *is_struct)
{
	const struct btf_type *t;
	const struct btf_member *m;
	int rid = btf__resolve_type(btf, id);

	if (rid < 0 || !(t = btf__type_by_id(btf, (uint32_t)rid)))
		return -EINVAL;
	*n = 0;
	*is_struct = btf_is_struct(t);
	if (btf_is_union(t))
		return -EINVAL;
	if (!*is_struct) {
		out[0].name = "";
		out[0].off = 0;
		*n = 1;
		return scalar_of(btf, id, &out[0]);
	}
	m = btf_members(t);
	if (btf_vlen(t) > CARRY_MAX_FIELDS)
		return -E2BIG;
	for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
		uint32_t bit = btf_member_bit_offset(t, i);
		struct field *f = &out[i];

		f->name = btf__name_by_offset(btf, m->name_off);
		if (!f->name || !*f->name)
			return -EINVAL; /* anonymous members cannot be matched by name */
		if (scalar_of(btf, m->type, f) < 0)
			return -EINVAL;
		if (btf_member_bitfield_size(t, i) || bit % 8)
			f->bitfield = 1;
		f->off = bit / 8;
		*n = i + 1u;
	}
	return 0;
}

int carry_plan_build(const struct btf *old_btf, uint32_t old_id, size_t old_size,
		     const struct btf *new_btf, uint32_t new_id, size_t new_size, const char *what,
		     struct carry_plan *ret, struct diag *notes, struct diag *errors)
{
	struct field of[CARRY_MAX_FIELDS], nf[CARRY_MAX_FIELDS];
	size_t on = 0, nn = 0;
	int os = 0, ns = 0, r;
	struct carry_plan p = { .src_size = old_size, .dst_size = new_size };

	if (!old_btf || !old_id || !new_btf || !new_id) {
		if (old_size != new_size) {
			diag_add(errors, "%s: %zu bytes, %zu in this version, and no BTF to convert it by",
				 what, old_size, new_size);
			return -EINVAL;
		}
		p.n = 1;
		p.f[0] = (struct carry_field){ .src_size = (uint32_t)old_size,
					       .dst_size = (uint32_t)new_size };
		*ret = p;
		return 0;
	}
	r = fields_of(old_btf, old_id, of, &on, &os);
	if (r == 0)
		r = fields_of(new_btf, new_id, nf, &nn, &ns);
	if (r < 0) {
		diag_add(errors, "%s: %s", what, r == -E2BIG ? "more fields than can be converted" :
			 "a union or an anonymous member cannot be converted");
		return -EINVAL;
	}
	if (os != ns) {
		diag_add(errors, "%s: a %s before, a %s in this version", what, os ? "struct" : "scalar",
			 ns ? "struct" : "scalar");
		return -EINVAL;
	}
	for (size_t i = 0; i < nn; i++) {
		const struct field *d = &nf[i], *s = NULL;

		for (size_t j = 0; j < on && !s; j++)
			if (strcmp(of[j].name, d->name) == 0)
				s = &of[j];
		if (!s) {
			diag_add(notes, "%s: field %s is new: carried-over entries have it 0", what, d->name);
			continue;
		}
		if (s->bitfield || d->bitfield) {
			diag_add(errors, "%s: field %s is a bitfield and cannot be converted", what, d->name);
			return -EINVAL;
		}
		if (s->kind != d->kind ||
		    (s->kind != BTF_KIND_INT && s->size != d->size) ||
		    s->off + s->size > old_size || d->off + d->size > new_size) {
			diag_add(errors, "%s: field %s%schanged kind or size and cannot be converted", what,
				 d->name, *d->name ? " " : "");
			return -EINVAL;
		}
		p.f[p.n++] = (struct carry_field){
			.src_off = s->off, .src_size = s->size, .dst_off = d->off, .dst_size = d->size,
			.integer = s->kind == BTF_KIND_INT, .src_signed = (uint8_t)s->is_signed,
		};
	}
	for (size_t j = 0; j < on; j++) {
		int found = 0;

		for (size_t i = 0; i < nn && !found; i++)
			found = strcmp(of[j].name, nf[i].name) == 0;
		if (!found)
			diag_add(notes, "%s: field %s is gone in this version: %s", what, of[j].name,
				 strstr(what, "key") ? "entries that differed only in it are added up" :
				 "its counts are not carried over");
	}
	*ret = p;
	return 0;
}

static uint64_t load_uint(const unsigned char *p, uint32_t size, int is_signed)
{
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64 = 0;

	switch (size) {
	case 1:
		memcpy(&u8, p, 1);
		return is_signed ? (uint64_t)(int64_t)(int8_t)u8 : u8;
	case 2:
		memcpy(&u16, p, 2);
		return is_signed ? (uint64_t)(int64_t)(int16_t)u16 : u16;
	case 4:
		memcpy(&u32, p, 4);
		return is_signed ? (uint64_t)(int64_t)(int32_t)u32 : u32;
	default:
		memcpy(&u64, p, 8);
		return u64;
	}
}

int carry_convert(const struct carry_plan *plan, const void *src, void *dst)
{
	const unsigned char *s = src;
	unsigned char *d = dst;

	memset(dst, 0, plan->dst_size);
	for (size_t i = 0; i < plan->n; i++) {
		const struct carry_field *f = &plan->f[i];
		uint64_t v;

		if (!f->integer) {
			memcpy(d + f->dst_off, s + f->src_off, f->src_size);
			continue;
		}
		v = load_uint(s + f->src_off, f->src_size, f->src_signed);
		if (f->src_signed && (int64_t)v < 0)
			return -ERANGE; /* counts and ids are never negative */
		if (f->dst_size < 8 && v >> (8 * f->dst_size))
			return -ERANGE;
		switch (f->dst_size) {
		case 1: { uint8_t x = (uint8_t)v; memcpy(d + f->dst_off, &x, 1); break; }
		case 2: { uint16_t x = (uint16_t)v; memcpy(d + f->dst_off, &x, 2); break; }
		case 4: { uint32_t x = (uint32_t)v; memcpy(d + f->dst_off, &x, 4); break; }
		default: memcpy(d + f->dst_off, &v, 8); break;
		}
	}
	return 0;
}
