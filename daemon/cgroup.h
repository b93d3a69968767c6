/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cgroup.h - the cgroup v2 hierarchy as egressd needs it: where it is mounted, the id of a cgroup
 * (what bpf_get_current_cgroup_id() returns), its level, the path of an id, and the systemd unit
 * a cgroup belongs to or a unit's cgroup.
 *
 * Paths called "rel" are relative to the cgroup v2 mount, without leading or trailing '/':
 * "system.slice/nginx.service"; "" is the root of the hierarchy.
 */
#ifndef EGRESSD_CGROUP_H
#define EGRESSD_CGROUP_H

#include <stdint.h>

/* The mount point of the cgroup v2 hierarchy ("/sys/fs/cgroup" on pure-v2 hosts,
 * "/sys/fs/cgroup/unified" on hybrid ones), from /proc/self/mountinfo. Returns 0 and a heap
 * string in *ret_path, -ENOENT when no cgroup2 file system is mounted, -ENOMEM, or the errno of
 * opening the file. */
int cgroup_find_v2_mount(char **ret_path);

/* Same, reading the mountinfo file at path (proc(5) format: "ID PARENT MAJ:MIN ROOT MOUNTPOINT
 * OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"; octal escapes \040 \011 \012 \134 in paths are
 * decoded). The first line with file system type "cgroup2" wins. Returns as above; -EINVAL never
 * (malformed lines are skipped). */
int cgroup_find_v2_mount_in(const char *mountinfo_path, char **ret_path);

/* The cgroup v2 id of the cgroup directory abs_path: its inode number, which is the kernfs node
 * id the BPF helpers return (64-bit kernels). Returns 0, -ENOTDIR for a non-directory,
 * -EMEDIUMTYPE when abs_path is not on a cgroup2 file system, or the errno of stat(2)
 * (-ENOENT when the cgroup does not exist). */
int cgroup_id_of(const char *abs_path, uint64_t *ret_id);

/* Level of a rel path: the number of non-empty components ("" -> 0, "a.slice/b.service" -> 2).
 * This is the level bpf_get_current_ancestor_cgroup_id() takes. Never fails. */
int cgroup_level_of(const char *rel_path);

/* Find the cgroup with id under mount by walking the hierarchy (depth first, not following
 * mounts or symlinks). Returns 0 and a heap rel path ("" for the root itself), -ENOENT when no
 * cgroup has that id (e.g. it was removed), -ENOMEM, or the errno of opening mount. */
int cgroup_path_of_id(const char *mount, uint64_t id, char **ret_rel);

/* The systemd unit a rel path belongs to: the last component that ends in a unit suffix
 * (.service .scope .slice .socket .mount .swap .device .target .timer .path .automount), as
 * systemd derives it ("system.slice/nginx.service/worker" -> "nginx.service"). Returns a heap
 * string, "" when no component is a unit, or NULL on out-of-memory. */
char *cgroup_unit_of(const char *rel_path);

/* The rel cgroup path of a systemd unit. When PID 1 is systemd (/run/systemd/system exists), asks
 * it over D-Bus (org.freedesktop.systemd1.Manager.GetUnit, then the ControlGroup property of the
 * unit's type interface); when the unit is not loaded or has no cgroup now, and when PID 1 is not
 * systemd, derives the path as cgroup_unit_path_derive() does. Returns 0 and a heap string,
 * -EINVAL for an invalid unit name, -ENOMEM, or a negative errno from D-Bus. */
int cgroup_unit_path(const char *unit, char **ret_rel);

/* The default cgroup path systemd gives a unit, without asking it: slices nest by their dashes
 * ("a-b.slice" -> "a.slice/a-b.slice", "-.slice" -> ""), every other unit type goes to
 * "system.slice/NAME" (the default Slice= of system units). Returns 0 and a heap string, -EINVAL
 * when unit has no known suffix, contains '/', is empty, or is a slice with an empty dash part
 * ("a--b.slice", "-a.slice"), or -ENOMEM. Rules: systemd.slice(5), systemd.unit(5). */
int cgroup_unit_path_derive(const char *unit, char **ret_rel);

/* Has the kernel stopped matching sockets to cgroup v2 (so cgroup BPF programs, ours included,
 * no longer run for new sockets)? It does so, until reboot, once a cgroup v1 net_cls.classid or
 * net_prio.ifpriomap is written (kernel/cgroup/cgroup.c: cgroup_sk_alloc_disable). Checks the
 * kernel log (/dev/kmsg) for its message, then every cgroup v1 hierarchy with net_cls/net_prio
 * for a non-zero classid or priority (a value written and reset to 0 is only seen in the log).
 * Returns 1 and *ret_what (heap: the file or log that shows it), 0 if not, or a negative errno. */
int cgroup_netcls_active(char **ret_what);
/* The same from a given mountinfo file (tests; no kernel log). */
int cgroup_netcls_active_in(const char *mountinfo_path, char **ret_what);
/* 1 if the kernel log at kmsg_path (/dev/kmsg, or a file in tests) has that message, else 0, or
 * a negative errno when it cannot be read. */
int cgroup_kmsg_says_disabled(const char *kmsg_path);

#endif
