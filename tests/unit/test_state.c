// SPDX-License-Identifier: LGPL-2.1-or-later
/* Counter snapshots (daemon/state.c): round trip, atomic replacement, and every kind of damage
 * (truncation, a flipped bit, a foreign file, a wrong version) set aside, never half-loaded. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "state.h"

static char dir[64];

static int rm_cb(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(p);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_state.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static struct state_record *records(size_t n)
{
	struct state_record *v = calloc(n, sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		v[i].key = (struct egress_counter_key){ .cgroup_id = 1000 + i, .policy_id = 0xa6191df6,
							.country = (uint16_t)(i % 677), .proto = 6,
							.verdict = (uint8_t)(i % 4) };
		v[i].val = (struct egress_counter_val){ .connections = i * 3 + 1, .packets = i, .bytes = i << 20 };
	}
	return v;
}

static void test_round_trip(void **state)
{
	struct state_record *v = records(5000), *got = NULL;
	struct diag e = { 0 };
	size_t n = 0;

	assert_int_equal(state_write(dir, v, 5000, &e), 0);
	assert_int_equal(state_read(dir, &got, &n, &e), 0);
	assert_int_equal(n, 5000);
	assert_memory_equal(got, v, 5000 * sizeof(*v));
	free(got);
	/* replaced whole by a second write */
	assert_int_equal(state_write(dir, v, 3, &e), 0);
	assert_int_equal(state_read(dir, &got, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(got, v, 3 * sizeof(*v));
	assert_int_equal(e.n, 0);
	free(got);
	free(v);
}

static void test_missing(void **state)
{
	char sub[128];
	struct state_record *got = NULL;
	struct diag e = { 0 };
	size_t n = 0;

	snprintf(sub, sizeof(sub), "%s/none", dir);
	assert_int_equal(state_read(sub, &got, &n, &e), -ENOENT);
	assert_int_equal(e.n, 0);
	assert_null(got);
}

/* Damage the file with fn, read it: -EBADMSG, the expected message, the file set aside. */
static void damaged(const char *name, void (*fn)(const char *path), const char *why)
{
	char sub[128], path[160], aside[180], want[400];
	struct state_record *v = records(100), *got = NULL;
	struct diag e = { 0 };
	size_t n = 7;

	snprintf(sub, sizeof(sub), "%s/%s", dir, name);
	snprintf(path, sizeof(path), "%s/" STATE_FILE, sub);
	snprintf(aside, sizeof(aside), "%s.corrupt", path);
	assert_int_equal(state_write(sub, v, 100, &e), 0);
	fn(path);
	assert_int_equal(state_read(sub, &got, &n, &e), -EBADMSG);
	assert_null(got);
	assert_int_equal(n, 7);
	snprintf(want, sizeof(want), "%s: %s; set aside as %s, counters start from zero", path, why, aside);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.msgs[0], want);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(aside, F_OK), 0);
	/* the next start finds no snapshot, not the bad one again */
	assert_int_equal(state_read(sub, &got, &n, &e), -ENOENT);
	diag_free(&e);
	free(v);
}

static void truncate_half(const char *p)
{
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(truncate(p, st.st_size / 2), 0);
}

static void flip_payload_bit(const char *p)
{
	int fd = open(p, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, 40), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, 40), 1);
	close(fd);
}

static void flip_crc(const char *p)
{
	int fd = open(p, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, 12), 1);
	b ^= 1;
	assert_int_equal(pwrite(fd, &b, 1, 12), 1);
	close(fd);
}

static void foreign(const char *p)
{
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs("not a snapshot at all, but long enough to fill a header\n", f);
	fclose(f);
}

static void version(const char *p)
{
	int fd = open(p, O_RDWR);
	uint8_t b = 99;

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &b, 1, 8), 1);
	close(fd);
}

static void test_truncated(void **state)
{
	damaged("trunc", truncate_half, "truncated or inconsistent snapshot");
}

static void test_bit_flip(void **state)
{
	/* a flipped bit in the deflate stream fails decompression or the CRC */
	char sub[128], path[160];
	struct state_record *v = records(100), *got = NULL;
	struct diag e = { 0 };
	size_t n = 0;
	int r;

	snprintf(sub, sizeof(sub), "%s/flip", dir);
	snprintf(path, sizeof(path), "%s/" STATE_FILE, sub);
	assert_int_equal(state_write(sub, v, 100, &e), 0);
	flip_payload_bit(path);
	r = state_read(sub, &got, &n, &e);
	assert_int_equal(r, -EBADMSG);
	assert_null(got);
	assert_int_equal(e.n, 1);
	assert_true(strstr(e.msgs[0], "does not decompress") || strstr(e.msgs[0], "CRC mismatch"));
	diag_free(&e);
	free(v);
}

static void test_crc(void **state)
{
	damaged("crc", flip_crc, "snapshot CRC mismatch");
}

static void test_foreign(void **state)
{
	damaged("foreign", foreign, "not an egressd counter snapshot (bad header)");
}

static void test_version(void **state)
{
	damaged("version", version, "snapshot version not understood");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip), cmocka_unit_test(test_missing), cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bit_flip),   cmocka_unit_test(test_crc),	   cmocka_unit_test(test_foreign),
		cmocka_unit_test(test_version),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
