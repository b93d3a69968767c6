/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_MAX_DEPTH 64 /* walk bound for cgroup_path_of_id */

/* Decode the octal escapes of mountinfo (\040 space, \011 tab, \012 newline, \134 backslash) in
 * place. */
static void unescape_octal(char *s)
{
	char *w = s;

	for (const char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* Split line into white-space separated fields (in place). Returns the number of fields. */
static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " \t\n", &save); t && n < max;
	     t = strtok_r(NULL, " \t\n", &save))
		f[n++] = t;
	return n;
}

/* One mountinfo line (proc(5)): ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE
 * SOURCE SUPEROPTS. Returns 0 with the unescaped mount point, file system type and super options
 * (pointers into line), or -EINVAL for a line of another shape. */
static int mountinfo_parse(char *line, char **ret_mount, char **ret_fstype, char **ret_superopts)
{
	char *fields[64];
	size_t n = split_fields(line, fields, 64), sep;

	if (n < 9)
		return -EINVAL;
	for (sep = 6; sep < n; sep++)
		if (strcmp(fields[sep], "-") == 0)
			break;
	if (sep + 3 >= n)
		return -EINVAL;
	unescape_octal(fields[4]);
	*ret_mount = fields[4];
	*ret_fstype = fields[sep + 1];
	*ret_superopts = fields[sep + 3];
	return 0;
}

int cgroup_find_v2_mount_in(const char *mountinfo_path, char **ret_path)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	int r = -ENOENT;

	f = fopen(mountinfo_path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) >= 0) {
		char *mount, *fstype, *opts;

		if (mountinfo_parse(line, &mount, &fstype, &opts) < 0 || strcmp(fstype, "cgroup2") != 0)
			continue;
		*ret_path = strdup(mount);
		r = *ret_path ? 0 : -ENOMEM;
		break;
	}
	free(line);
	fclose(f);
	return r;
}

int cgroup_find_v2_mount(char **ret_path)
{
	return cgroup_find_v2_mount_in("/proc/self/mountinfo", ret_path);
}

/* ---- cgroup v1 net_cls / net_prio ------------------------------------------------------------ */

/* 1 if the file at path holds a non-zero net_cls.classid or a non-zero priority in a
 * net_prio.ifpriomap ("DEV PRIO" lines). */
static int netcls_file_active(const char *path, int priomap)
{
	char buf[4096];
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC), active = 0;

	if (fd < 0)
		return 0;
	k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (k <= 0)
		return 0;
	buf[k] = '\0';
	if (!priomap)
		return strtoull(buf, NULL, 0) != 0;
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l && !active; l = strtok_r(NULL, "\n", &save)) {
		char *sp = strrchr(l, ' ');

		active = sp && strtoul(sp + 1, NULL, 10) != 0;
	}
	return active;
}

/* Depth-limited walk of a v1 net_cls/net_prio hierarchy for the first active setting. */
static int netcls_walk(const char *dir, int depth, char **ret_what)
{
	static const char *const files[] = { "net_cls.classid", "net_prio.ifpriomap" };
	struct dirent *de;
	DIR *d;
	int r = 0;

	for (size_t i = 0; i < 2; i++) {
		char *p = NULL;

		if (asprintf(&p, "%s/%s", dir, files[i]) < 0)
			return -ENOMEM;
		if (netcls_file_active(p, i == 1)) {
			*ret_what = p;
			return 1;
		}
		free(p);
	}
	if (depth >= CGROUP_MAX_DEPTH)
		return 0;
	d = opendir(dir);
	if (!d)
		return 0;
	while (r == 0 && (de = readdir(d))) {
		char *sub = NULL;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		r = netcls_walk(sub, depth + 1, ret_what);
		free(sub);
	}
	closedir(d);
	return r;
}

int cgroup_netcls_active_in(const char *mountinfo_path, char **ret_what)
{
	FILE *f = fopen(mountinfo_path, "re");
	char *line = NULL;
	size_t cap = 0;
	int r = 0;

	if (!f)
		return -errno;
	while (r == 0 && getline(&line, &cap, f) >= 0) {
		char *mount, *fstype, *opts;

		if (mountinfo_parse(line, &mount, &fstype, &opts) < 0 || strcmp(fstype, "cgroup") != 0)
			continue;
		if (strstr(opts, "net_cls") || strstr(opts, "net_prio"))
			r = netcls_walk(mount, 0, ret_what);
	}
	free(line);
	fclose(f);
	return r;
}

int cgroup_kmsg_says_disabled(const char *kmsg_path)
{
	char buf[8192];
	int fd = open(kmsg_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), found = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		/* /dev/kmsg hands out one record per read; a regular file (tests) gives blocks. */
		ssize_t k = read(fd, buf, sizeof(buf) - 1);

		if (k < 0 && errno == EPIPE)
			continue; /* records were overwritten while we read */
		if (k <= 0)
			break;
		buf[k] = '\0';
		if (strstr(buf, "disabling cgroup2 socket matching")) {
			found = 1;
			break;
		}
	}
	close(fd);
	return found;
}

int cgroup_netcls_active(char **ret_what)
{
	int r = cgroup_kmsg_says_disabled("/dev/kmsg");

	if (r > 0) {
		*ret_what = strdup("the kernel log (\"disabling cgroup2 socket matching due to net_prio or net_cls "
				   "activation\")");
		return *ret_what ? 1 : -ENOMEM;
	}
	return cgroup_netcls_active_in("/proc/self/mountinfo", ret_what);
}

int cgroup_id_of(const char *abs_path, uint64_t *ret_id)
{
	struct statfs sfs;
	struct stat st;

	if (stat(abs_path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (statfs(abs_path, &sfs) < 0)
		return -errno;
	if ((unsigned long)sfs.f_type != CGROUP2_SUPER_MAGIC)
		return -EMEDIUMTYPE;
	*ret_id = (uint64_t)st.st_ino;
	return 0;
}

int cgroup_level_of(const char *rel_path)
{
	int n = 0;

	for (const char *p = rel_path; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		n++;
		while (*p && *p != '/')
			p++;
	}
	return n;
}

/* Depth-first search below dirfd (whose rel path is rel) for a directory with inode id. */
static int walk_for_id(int dir_fd, const char *rel, uint64_t id, dev_t dev, int depth,
		       char **ret_rel)
{
	DIR *d;
	struct dirent *de;
	int r = -ENOENT;

	if (depth > CGROUP_MAX_DEPTH) {
		close(dir_fd);
		return -ENOENT;
	}
	d = fdopendir(dir_fd);
	if (!d) {
		r = -errno;
		close(dir_fd);
		return r;
	}
	while ((de = readdir(d))) {
		struct stat st;
		char *sub;
		int fd;

		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || st.st_dev != dev)
			continue;
		if (asprintf(&sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		if ((uint64_t)st.st_ino == id) {
			*ret_rel = sub;
			r = 0;
			break;
		}
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			free(sub);
			continue; /* removed meanwhile */
		}
		r = walk_for_id(fd, sub, id, dev, depth + 1, ret_rel);
		free(sub);
		if (r != -ENOENT)
			break;
	}
	closedir(d);
	return r;
}

int cgroup_path_of_id(const char *mount, uint64_t id, char **ret_rel)
{
	struct stat st;
	int fd;

	fd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if ((uint64_t)st.st_ino == id) {
		close(fd);
		*ret_rel = strdup("");
		return *ret_rel ? 0 : -ENOMEM;
	}
	return walk_for_id(fd, "", id, st.st_dev, 1, ret_rel);
}

static const char *const unit_suffixes[] = {
	".service", ".scope",  ".slice", ".socket", ".mount",	  ".swap",
	".device",  ".target", ".timer", ".path",   ".automount",
};

/* The unit type suffix of name[0..len) ("service", ...), or NULL. The part before the suffix
 * must not be empty. */
static const char *unit_suffix(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(unit_suffixes) / sizeof(unit_suffixes[0]); i++) {
		size_t sl = strlen(unit_suffixes[i]);

		if (len > sl && memcmp(name + len - sl, unit_suffixes[i], sl) == 0)
			return unit_suffixes[i] + 1;
	}
	return NULL;
}

char *cgroup_unit_of(const char *rel_path)
{
	const char *best = NULL, *p = rel_path;
	size_t best_len = 0;

	while (*p) {
		const char *start;
		size_t len;

		while (*p == '/')
			p++;
		start = p;
		while (*p && *p != '/')
			p++;
		len = (size_t)(p - start);
		if (len && unit_suffix(start, len)) {
			best = start;
			best_len = len;
		}
	}
	return best ? strndup(best, best_len) : strdup("");
}

int cgroup_unit_path_derive(const char *unit, char **ret_rel)
{
	size_t len = strlen(unit);
	const char *suffix = unit_suffix(unit, len);
	char *out, *w;

	if (!suffix || strchr(unit, '/') || strcmp(unit, ".") == 0 || strcmp(unit, "..") == 0)
		return -EINVAL;
	if (strcmp(suffix, "slice") != 0) {
		if (asprintf(&out, "system.slice/%s", unit) < 0)
			return -ENOMEM;
		*ret_rel = out;
		return 0;
	}
	if (strcmp(unit, "-.slice") == 0) {
		out = strdup("");
		if (!out)
			return -ENOMEM;
		*ret_rel = out;
		return 0;
	}

	/* "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice": one level per dash prefix */
	size_t stem = len - strlen(".slice");

	if (unit[0] == '-' || unit[stem - 1] == '-')
		return -EINVAL;
	for (size_t i = 1; i < stem; i++)
		if (unit[i] == '-' && unit[i - 1] == '-')
			return -EINVAL;
	/* worst case: every prefix repeated: sum of lengths <= (stem + 7) * (dashes + 1) */
	size_t dashes = 0;

	for (size_t i = 0; i < stem; i++)
		dashes += unit[i] == '-';
	out = malloc((stem + 7) * (dashes + 1) + 1);
	if (!out)
		return -ENOMEM;
	w = out;
	for (size_t i = 0; i <= stem; i++) {
		if (i == stem || unit[i] == '-') {
			if (w != out)
				*w++ = '/';
			memcpy(w, unit, i);
			w += i;
			memcpy(w, ".slice", 6);
			w += 6;
		}
	}
	*w = '\0';
	*ret_rel = out;
	return 0;
}

/* Ask systemd for the ControlGroup of unit. Returns 0 with a heap rel path, -ENOENT when the unit
 * is not loaded or has no cgroup now, or another negative errno. */
static int unit_path_from_systemd(const char *unit, const char *suffix, char **ret_rel)
{
	sd_bus *bus = NULL;
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *object;
	char *cg = NULL, iface[64];
	int r;

	snprintf(iface, sizeof(iface), "org.freedesktop.systemd1.%c%s", suffix[0] - 'a' + 'A',
		 suffix + 1);
	if (strcmp(suffix, "automount") == 0)
		snprintf(iface, sizeof(iface), "org.freedesktop.systemd1.Automount");
	r = sd_bus_open_system(&bus);
	if (r < 0)
		return r;
	r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
			       "org.freedesktop.systemd1.Manager", "GetUnit", &err, &reply, "s",
			       unit);
	if (r < 0) {
		if (sd_bus_error_has_name(&err, "org.freedesktop.systemd1.NoSuchUnit"))
			r = -ENOENT;
		goto out;
	}
	r = sd_bus_message_read(reply, "o", &object);
	if (r < 0)
		goto out;
	r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", object, iface,
				       "ControlGroup", &err, &cg);
	if (r < 0)
		goto out;
	if (!cg[0]) {
		r = -ENOENT; /* loaded but not running: no cgroup now */
		goto out;
	}
	{
		const char *p = cg;
		size_t l;
		char *rel;

		while (*p == '/')
			p++;
		rel = strdup(p);
		if (!rel) {
			r = -ENOMEM;
			goto out;
		}
		l = strlen(rel);
		while (l && rel[l - 1] == '/')
			rel[--l] = '\0';
		*ret_rel = rel;
		r = 0;
	}
out:
	free(cg);
	sd_bus_message_unref(reply);
	sd_bus_error_free(&err);
	sd_bus_flush_close_unref(bus);
	return r;
}

int cgroup_unit_path(const char *unit, char **ret_rel)
{
	const char *suffix = unit_suffix(unit, strlen(unit));
	int r;

	if (!suffix || strchr(unit, '/'))
		return -EINVAL;
	if (access("/run/systemd/system", F_OK) == 0) {
		r = unit_path_from_systemd(unit, suffix, ret_rel);
		if (r != -ENOENT)
			return r;
	}
	return cgroup_unit_path_derive(unit, ret_rel);
}
