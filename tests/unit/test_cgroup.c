/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests of daemon/cgroup.c: mountinfo parsing (hybrid, pure v2, escapes and optional fields,
 * no cgroup2), levels, unit names of paths, systemd's default unit paths and slice nesting, and
 * the file-system functions (ids, path of an id) against the real hierarchy when there is one.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"

#define DATA TEST_SRCDIR "/tests/data/cgroup/"

static void mount_is(const char *file, const char *want)
{
	char *p = (char *)0x1;

	assert_int_equal(cgroup_find_v2_mount_in(file, &p), 0);
	assert_string_equal(p, want);
	free(p);
}

static void test_mountinfo(void **state)
{
	char *p = NULL;

	mount_is(DATA "mountinfo-hybrid", "/sys/fs/cgroup/unified");
	mount_is(DATA "mountinfo-v2", "/sys/fs/cgroup");
	/* tmpfs with source "cgroup2" skipped; optional fields; \040 \011 \134 decoded */
	mount_is(DATA "mountinfo-escaped", "/mnt/my cg\tx\\y");
	assert_int_equal(cgroup_find_v2_mount_in(DATA "mountinfo-v1", &p), -ENOENT);
	assert_null(p);
	assert_int_equal(cgroup_find_v2_mount_in(DATA "no-such-file", &p), -ENOENT);
	assert_null(p);
}

static void test_levels(void **state)
{
	assert_int_equal(cgroup_level_of(""), 0);
	assert_int_equal(cgroup_level_of("/"), 0);
	assert_int_equal(cgroup_level_of("system.slice"), 1);
	assert_int_equal(cgroup_level_of("system.slice/nginx.service"), 2);
	assert_int_equal(cgroup_level_of("/a//b/c/"), 3);
}

static void unit_of_is(const char *path, const char *want)
{
	char *u = cgroup_unit_of(path);

	assert_non_null(u);
	assert_string_equal(u, want);
	free(u);
}

static void test_unit_of(void **state)
{
	unit_of_is("system.slice/nginx.service", "nginx.service");
	unit_of_is("system.slice/nginx.service/worker", "nginx.service");
	unit_of_is("user.slice/user-1000.slice/session-2.scope", "session-2.scope");
	unit_of_is("system.slice", "system.slice");
	unit_of_is("system.slice/docker-abc.scope/init.scope", "init.scope");
	unit_of_is("system.slice/sshd.socket", "sshd.socket");
	unit_of_is("egressd-test/enf", "");
	unit_of_is("a/.service", "");
	unit_of_is("", "");
}

static void derive_is(const char *unit, const char *want)
{
	char *p = NULL;

	assert_int_equal(cgroup_unit_path_derive(unit, &p), 0);
	assert_string_equal(p, want);
	free(p);
}

static void derive_fails(const char *unit)
{
	char *p = NULL;

	assert_int_equal(cgroup_unit_path_derive(unit, &p), -EINVAL);
	assert_null(p);
}

static void test_unit_path(void **state)
{
	char *p = NULL, *q = NULL;

	derive_is("nginx.service", "system.slice/nginx.service");
	derive_is("payments@1.service", "system.slice/payments@1.service");
	derive_is("run-u7.scope", "system.slice/run-u7.scope");
	derive_is("system.slice", "system.slice");
	derive_is("a-b.slice", "a.slice/a-b.slice");
	derive_is("a-b-c.slice", "a.slice/a-b.slice/a-b-c.slice");
	derive_is("user-1000.slice", "user.slice/user-1000.slice");
	derive_is("-.slice", "");
	derive_fails("a--b.slice");
	derive_fails("-a.slice");
	derive_fails("a-.slice");
	derive_fails("nginx");
	derive_fails(".service");
	derive_fails("a/b.service");
	derive_fails("");

	assert_int_equal(cgroup_unit_path("x/y.service", &p), -EINVAL);
	assert_int_equal(cgroup_unit_path("nosuffix", &p), -EINVAL);
	assert_null(p);
	if (access("/run/systemd/system", F_OK) != 0) {
		/* PID 1 is not systemd: the derived path. */
		assert_int_equal(cgroup_unit_path("a-b.slice", &p), 0);
		assert_int_equal(cgroup_unit_path_derive("a-b.slice", &q), 0);
		assert_string_equal(p, q);
		free(p);
		free(q);
	}
}

static void test_fs(void **state)
{
	char tmpl[] = "/tmp/test_cgroup.XXXXXX", file[64], *mount = NULL, *rel = NULL;
	uint64_t id = 0;
	struct stat st;
	int fd;

	assert_non_null(mkdtemp(tmpl));
	snprintf(file, sizeof(file), "%s/f", tmpl);
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(cgroup_id_of(tmpl, &id), -EMEDIUMTYPE);
	assert_int_equal(cgroup_id_of(file, &id), -ENOTDIR);
	assert_int_equal(id, 0);
	unlink(file);
	rmdir(tmpl);
	assert_int_equal(cgroup_id_of(tmpl, &id), -ENOENT);

	if (cgroup_find_v2_mount(&mount) < 0)
		return; /* no cgroup v2 here: nothing more to check */
	assert_int_equal(cgroup_id_of(mount, &id), 0);
	assert_int_equal(stat(mount, &st), 0);
	assert_true(id == (uint64_t)st.st_ino);
	assert_int_equal(cgroup_path_of_id(mount, id, &rel), 0);
	assert_string_equal(rel, "");
	free(rel);
	rel = NULL;
	assert_int_equal(cgroup_path_of_id(mount, UINT64_C(1) << 62, &rel), -ENOENT);
	assert_null(rel);

	if (geteuid() == 0) {
		/* Our own cgroup two levels down; removed at the end. */
		char top[512], sub[600], want[128];
		uint64_t sid;

		snprintf(top, sizeof(top), "%s/egressd-unit-%d", mount, (int)getpid());
		snprintf(sub, sizeof(sub), "%s/child", top);
		snprintf(want, sizeof(want), "egressd-unit-%d/child", (int)getpid());
		if (mkdir(top, 0755) == 0) {
			int ok = mkdir(sub, 0755) == 0;

			if (ok && cgroup_id_of(sub, &sid) == 0 &&
			    cgroup_path_of_id(mount, sid, &rel) == 0) {
				ok = strcmp(rel, want) == 0;
				free(rel);
			} else {
				ok = 0;
			}
			rmdir(sub);
			rmdir(top);
			assert_true(ok);
		}
	}
	free(mount);
}

static void put(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

/* cgroup v1 net_cls/net_prio in use turns cgroup v2 socket matching off for good; the check
 * runs on a fake hierarchy (setting a real classid would disable it on this machine until
 * reboot, and every kernel test with it). */
static void test_netcls(void **state)
{
	char dir[] = "/tmp/test_cgroup.XXXXXX", p[256], mi[256], *what = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(mi, sizeof(mi), "%s/mountinfo", dir);
	snprintf(p, sizeof(p), "%s/net_cls", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	{
		char line[512];

		snprintf(line, sizeof(line),
			 "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
			 "42 31 0:39 / %s rw,relatime shared:5 - cgroup cgroup rw,net_cls,net_prio\n", p);
		put(mi, line);
	}
	snprintf(p, sizeof(p), "%s/net_cls/net_cls.classid", dir);
	put(p, "0\n");
	snprintf(p, sizeof(p), "%s/net_cls/net_prio.ifpriomap", dir);
	put(p, "lo 0\neth0 0\n");
	snprintf(p, sizeof(p), "%s/net_cls/a", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/net_cls/a/net_cls.classid", dir);
	put(p, "0\n");
	assert_int_equal(cgroup_netcls_active_in(mi, &what), 0);
	/* a classid deep in the tree */
	put(p, "1048577\n");
	assert_int_equal(cgroup_netcls_active_in(mi, &what), 1);
	assert_string_equal(what, p);
	free(what);
	put(p, "0\n");
	/* a priority */
	snprintf(p, sizeof(p), "%s/net_cls/net_prio.ifpriomap", dir);
	put(p, "lo 0\neth0 5\n");
	assert_int_equal(cgroup_netcls_active_in(mi, &what), 1);
	assert_string_equal(what, p);
	free(what);
	/* the kernel's own message */
	snprintf(p, sizeof(p), "%s/kmsg", dir);
	put(p, "6,100,5,-;eth0: link up\n4,101,6,-;cgroup: cgroup: disabling cgroup2 socket matching due to "
	       "net_prio or net_cls activation\n");
	assert_int_equal(cgroup_kmsg_says_disabled(p), 1);
	put(p, "6,100,5,-;eth0: link up\n");
	assert_int_equal(cgroup_kmsg_says_disabled(p), 0);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		assert_int_equal(system(cmd), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mountinfo), cmocka_unit_test(test_levels),
		cmocka_unit_test(test_unit_of),	  cmocka_unit_test(test_unit_path),
		cmocka_unit_test(test_fs),	  cmocka_unit_test(test_netcls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
