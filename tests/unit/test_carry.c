// SPDX-License-Identifier: LGPL-2.1-or-later
/* Converting counter keys and values of an earlier version's map layout (daemon/carry.c): plans
 * from BTF built here in memory (no kernel needed), field matching by name, width conversion,
 * out-of-range values, and every layout that cannot be converted, each with its message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <bpf/btf.h>

#include "carry.h"
#include "egress_abi.h"

struct types {
	struct btf *btf;
	int u8, u16, u32, u64, s32;
};

static void types_init(struct types *t)
{
	t->btf = btf__new_empty();
	assert_non_null(t->btf);
	t->u8 = btf__add_int(t->btf, "__u8", 1, 0);
	t->u16 = btf__add_int(t->btf, "__u16", 2, 0);
	t->u32 = btf__add_int(t->btf, "__u32", 4, 0);
	t->u64 = btf__add_int(t->btf, "__u64", 8, 0);
	t->s32 = btf__add_int(t->btf, "__s32", 4, BTF_INT_SIGNED);
	assert_true(t->u8 > 0 && t->u16 > 0 && t->u32 > 0 && t->u64 > 0 && t->s32 > 0);
}

struct member {
	const char *name;
	int type;
	uint32_t off; /* bytes */
	uint32_t bitfield; /* bits, 0 = none */
};

static int add_struct(struct btf *btf, const char *name, uint32_t size, const struct member *m)
{
	int id = btf__add_struct(btf, name, size);

	assert_true(id > 0);
	for (; m->name; m++)
		assert_int_equal(btf__add_field(btf, m->name, m->type, m->off * 8, m->bitfield), 0);
	return id;
}

/* This version's key and value, as bpf/egress.bpf.c declares them. */
static int new_key(struct types *t)
{
	return add_struct(t->btf, "egress_counter_key", sizeof(struct egress_counter_key),
			  (const struct member[]){
				  { "cgroup_id", t->u64, offsetof(struct egress_counter_key, cgroup_id), 0 },
				  { "policy_id", t->u32, offsetof(struct egress_counter_key, policy_id), 0 },
				  { "country", t->u16, offsetof(struct egress_counter_key, country), 0 },
				  { "proto", t->u8, offsetof(struct egress_counter_key, proto), 0 },
				  { "verdict", t->u8, offsetof(struct egress_counter_key, verdict), 0 },
				  {},
			  });
}

static int new_val(struct types *t)
{
	return add_struct(t->btf, "egress_counter_val", sizeof(struct egress_counter_val),
			  (const struct member[]){
				  { "connections", t->u64, offsetof(struct egress_counter_val, connections), 0 },
				  { "packets", t->u64, offsetof(struct egress_counter_val, packets), 0 },
				  { "bytes", t->u64, offsetof(struct egress_counter_val, bytes), 0 },
				  {},
			  });
}

/* An earlier layout: fields reordered, country 32 bits wide, a key field this version dropped
 * (hook) and a value field it dropped (legacy), no packets. */
struct old_key {
	uint32_t policy_id;
	uint8_t verdict;
	uint8_t proto;
	uint8_t hook;
	uint8_t pad;
	uint32_t country;
	uint32_t pad2;
	uint64_t cgroup_id;
};

struct old_val {
	uint64_t bytes;
	uint32_t connections;
	int32_t legacy;
};

static void test_reordered_and_resized(void **state)
{
	struct types o, n;
	struct carry_plan kp, vp;
	struct diag notes = {}, errors = {};
	struct old_key ok = { .policy_id = 7, .verdict = EGRESS_VERDICT_DENY, .proto = 17, .hook = 3,
			      .country = 123, .cgroup_id = 0x1122334455667788ULL };
	struct old_val ov = { .bytes = 1ULL << 40, .connections = 4000000000U, .legacy = -5 };
	struct egress_counter_key nk;
	struct egress_counter_val nv;
	int ok_id, ov_id;

	(void)state;
	types_init(&o);
	types_init(&n);
	ok_id = add_struct(o.btf, "egress_counter_key", sizeof(struct old_key),
			   (const struct member[]){
				   { "policy_id", o.u32, offsetof(struct old_key, policy_id), 0 },
				   { "verdict", o.u8, offsetof(struct old_key, verdict), 0 },
				   { "proto", o.u8, offsetof(struct old_key, proto), 0 },
				   { "hook", o.u8, offsetof(struct old_key, hook), 0 },
				   { "pad", o.u8, offsetof(struct old_key, pad), 0 },
				   { "country", o.u32, offsetof(struct old_key, country), 0 },
				   { "pad2", o.u32, offsetof(struct old_key, pad2), 0 },
				   { "cgroup_id", o.u64, offsetof(struct old_key, cgroup_id), 0 },
				   {},
			   });
	ov_id = add_struct(o.btf, "egress_counter_val", sizeof(struct old_val),
			   (const struct member[]){
				   { "bytes", o.u64, offsetof(struct old_val, bytes), 0 },
				   { "connections", o.u32, offsetof(struct old_val, connections), 0 },
				   { "legacy", o.s32, offsetof(struct old_val, legacy), 0 },
				   {},
			   });
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)ok_id, sizeof(struct old_key), n.btf,
					  (uint32_t)new_key(&n), sizeof(nk), "P key", &kp, &notes, &errors), 0);
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)ov_id, sizeof(struct old_val), n.btf,
					  (uint32_t)new_val(&n), sizeof(nv), "P value", &vp, &notes, &errors), 0);
	assert_int_equal(errors.n, 0);
	assert_int_equal(notes.n, 5);
	assert_string_equal(notes.msgs[0],
			    "P key: field hook is gone in this version: entries that differed only in it are added up");
	assert_string_equal(notes.msgs[1],
			    "P key: field pad is gone in this version: entries that differed only in it are added up");
	assert_string_equal(notes.msgs[2],
			    "P key: field pad2 is gone in this version: entries that differed only in it are added up");
	assert_string_equal(notes.msgs[3], "P value: field packets is new: carried-over entries have it 0");
	assert_string_equal(notes.msgs[4],
			    "P value: field legacy is gone in this version: its counts are not carried over");
	assert_int_equal(carry_convert(&kp, &ok, &nk), 0);
	assert_int_equal(nk.cgroup_id, 0x1122334455667788ULL);
	assert_int_equal(nk.policy_id, 7);
	assert_int_equal(nk.country, 123);
	assert_int_equal(nk.proto, 17);
	assert_int_equal(nk.verdict, EGRESS_VERDICT_DENY);
	assert_int_equal(carry_convert(&vp, &ov, &nv), 0);
	assert_int_equal(nv.connections, 4000000000U); /* 32 -> 64 bits: zero-extended */
	assert_int_equal(nv.packets, 0);
	assert_int_equal(nv.bytes, 1ULL << 40);

	/* A country id that does not fit this version's 16 bits: the entry is refused, not cut. */
	ok.country = 70000;
	assert_int_equal(carry_convert(&kp, &ok, &nk), -ERANGE);
	ok.country = 65535;
	assert_int_equal(carry_convert(&kp, &ok, &nk), 0);
	assert_int_equal(nk.country, 65535);
	diag_free(&notes);
	btf__free(o.btf);
	btf__free(n.btf);
}

/* Scalars (the __u64 of "stats"), signed sources, maps without BTF. */
static void test_scalars_and_no_btf(void **state)
{
	struct types o, n;
	struct carry_plan p;
	struct diag notes = {}, errors = {};
	uint32_t u32 = 0xfffffff0U;
	int32_t s32 = -1;
	uint64_t u64 = 0;
	unsigned char raw[24], out[24];

	(void)state;
	types_init(&o);
	types_init(&n);
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)o.u32, 4, n.btf, (uint32_t)n.u64, 8, "S value",
					  &p, &notes, &errors), 0);
	assert_int_equal(carry_convert(&p, &u32, &u64), 0);
	assert_int_equal(u64, 0xfffffff0U);
	/* A negative count is not a count. */
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)o.s32, 4, n.btf, (uint32_t)n.u64, 8, "S value",
					  &p, &notes, &errors), 0);
	assert_int_equal(carry_convert(&p, &s32, &u64), -ERANGE);
	s32 = 42;
	assert_int_equal(carry_convert(&p, &s32, &u64), 0);
	assert_int_equal(u64, 42);
	/* 64 -> 8 bits: fits or -ERANGE. */
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)o.u64, 8, n.btf, (uint32_t)n.u8, 1, "S key", &p,
					  &notes, &errors), 0);
	u64 = 255;
	assert_int_equal(carry_convert(&p, &u64, out), 0);
	assert_int_equal(out[0], 255);
	u64 = 256;
	assert_int_equal(carry_convert(&p, &u64, out), -ERANGE);
	/* No BTF: only the same size, copied as it is. */
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(i * 7 + 1);
	assert_int_equal(carry_plan_build(NULL, 0, 24, n.btf, (uint32_t)new_val(&n), 24, "R value", &p,
					  &notes, &errors), 0);
	assert_int_equal(carry_convert(&p, raw, out), 0);
	assert_memory_equal(raw, out, sizeof(raw));
	assert_int_equal(errors.n, 0);
	assert_int_equal(notes.n, 0);
	assert_int_equal(carry_plan_build(NULL, 0, 16, n.btf, (uint32_t)new_val(&n), 24, "R value", &p,
					  &notes, &errors), -EINVAL);
	assert_int_equal(errors.n, 1);
	assert_string_equal(errors.msgs[0], "R value: 16 bytes, 24 in this version, and no BTF to convert it by");
	diag_free(&errors);
	btf__free(o.btf);
	btf__free(n.btf);
}

/* Layouts no plan can convert: each refused with its reason, nothing half-planned. */
static void test_refused(void **state)
{
	struct types o, n;
	struct carry_plan p;
	struct diag notes = {}, errors = {};
	int arr8, arr4, nk, id;

	(void)state;
	types_init(&o);
	types_init(&n);
	nk = new_key(&n);
	/* struct before, scalar now */
	id = new_key(&o);
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)id, 16, n.btf, (uint32_t)n.u64, 8, "A key", &p,
					  &notes, &errors), -EINVAL);
	/* a union */
	id = btf__add_union(o.btf, "u", 8);
	assert_int_equal(btf__add_field(o.btf, "cgroup_id", o.u64, 0, 0), 0);
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)id, 8, n.btf, (uint32_t)nk, 16, "B key", &p, &notes,
					  &errors), -EINVAL);
	/* a bitfield */
	id = add_struct(o.btf, "bf", 16, (const struct member[]){ { "cgroup_id", o.u64, 0, 0 },
								 { "country", o.u32, 8, 12 },
								 {} });
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)id, 16, n.btf, (uint32_t)nk, 16, "C key", &p,
					  &notes, &errors), -EINVAL);
	/* a field that became an array of another size */
	arr8 = btf__add_array(o.btf, o.u32, o.u8, 8);
	arr4 = btf__add_array(n.btf, n.u32, n.u8, 4);
	id = add_struct(o.btf, "a8", 8, (const struct member[]){ { "addr", arr8, 0, 0 }, {} });
	nk = add_struct(n.btf, "a4", 4, (const struct member[]){ { "addr", arr4, 0, 0 }, {} });
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)id, 8, n.btf, (uint32_t)nk, 4, "D key", &p, &notes,
					  &errors), -EINVAL);
	/* an integer that became an array */
	id = add_struct(o.btf, "i4", 4, (const struct member[]){ { "addr", o.u32, 0, 0 }, {} });
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)id, 4, n.btf, (uint32_t)nk, 4, "E key", &p, &notes,
					  &errors), -EINVAL);
	assert_int_equal(errors.n, 5);
	assert_string_equal(errors.msgs[0], "A key: a struct before, a scalar in this version");
	assert_string_equal(errors.msgs[1], "B key: a union or an anonymous member cannot be converted");
	assert_string_equal(errors.msgs[2], "C key: field country is a bitfield and cannot be converted");
	assert_string_equal(errors.msgs[3], "D key: field addr changed kind or size and cannot be converted");
	assert_string_equal(errors.msgs[4], "E key: field addr changed kind or size and cannot be converted");
	/* The same array on both sides is copied byte for byte. */
	id = add_struct(o.btf, "a4", 4, (const struct member[]){ { "addr", btf__add_array(o.btf, o.u32, o.u8, 4), 0, 0 }, {} });
	assert_int_equal(carry_plan_build(o.btf, (uint32_t)id, 4, n.btf, (uint32_t)nk, 4, "F key", &p, &notes,
					  &errors), 0);
	{
		unsigned char in[4] = { 192, 0, 2, 1 }, out[4];

		assert_int_equal(carry_convert(&p, in, out), 0);
		assert_memory_equal(in, out, 4);
	}
	diag_free(&errors);
	diag_free(&notes);
	btf__free(o.btf);
	btf__free(n.btf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reordered_and_resized),
		cmocka_unit_test(test_scalars_and_no_btf),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
