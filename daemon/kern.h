/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kern.h - the BPF side of egressd seen from the daemon: load the programs (skeleton of
 * bpf/egress.bpf.c), install GeoIP table generations, push policies, attach to cgroups with
 * bpf_link, read counters, statistics and deny events.
 *
 * Nothing here logs. Errors come back as negative errno values, with one-line messages in a
 * struct diag where the caller needs the reason; libbpf's own messages go to the callback set
 * with kern_set_log().
 *
 * With PinPath= everything is pinned and outlives the process (kern_open_pinned); without it,
 * everything lives as long as the struct kern (kern_free detaches). The state of the policy maps is
 * read back from the maps themselves (not from memory), so adopted pinned maps need no special case.
 */
#ifndef EGRESSD_KERN_H
#define EGRESSD_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "egress_abi.h"
#include "policy.h"
#include "table.h"

struct kern;

/* Hooks the programs are attached to, in the order of kern_hook_names. */
#define KERN_NHOOKS 5
extern const char *const kern_hook_names[KERN_NHOOKS]; /* "cgroup/connect4", ...,
							 * "cgroup_skb/egress" */

/* Receives libbpf's messages (verifier logs included), one line at a time, at a syslog(3)
 * level one lower than libbpf's: LIBBPF_WARN -> LOG_INFO, LIBBPF_INFO and LIBBPF_DEBUG ->
 * LOG_DEBUG. fn NULL (the default) drops them. Process-wide (libbpf_set_print). */
void kern_set_log(void (*fn)(int level, const char *line));

/* Map sizes (entries; events: bytes, a power of two >= page size). 0 = the default of
 * bpf/egress.bpf.c: counters 65536, cgroup_policy 16384, policies 4096, cidr 65536,
 * events 1 MiB. */
struct kern_sizes {
	uint32_t counters;
	uint32_t cgroup_policy;
	uint32_t policies;
	uint32_t cidr;
	uint32_t events;
};

/* Open the skeleton, size the maps, load (verify) the programs, set up the ring buffer reader.
 * Nothing is attached and no table is installed: until kern_install_table() every lookup gives
 * country 0 (and counts EGRESS_STAT_NO_TABLE). Returns 0 and *ret, or a negative errno with one
 * line in errors ("BPF: loading the programs failed: REASON (errno N); last libbpf message: ...").
 * Needs CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN (or root). */
int kern_open(struct kern **ret, struct diag *errors);
/* Same with map sizes (sizes NULL = defaults). */
int kern_open_sized(struct kern **ret, const struct kern_sizes *sizes, struct diag *errors);

/* kern_open_sized with everything pinned under pin_path (PinPath=, a directory on a bpf
 * filesystem, created mode 0700 with a links/ subdirectory): maps as pin_path/MAPNAME, links as
 * pin_path/links/CGROUPID-N (N: index in kern_hook_names). Pinned maps of an earlier run are reused when their layout matches
 * (counters, policies, the GeoIP generation and unread events carry over; kern_adopted() > 0);
 * a map whose layout changed is replaced, with a line in warnings: a counting map is kept pinned
 * as PinPath/NAME-carry-ID for kern_carry_over(), the others are rebuilt from the configuration.
 * pin_path NULL: no pinning.
 * -ENOTSUP with one line in errors when pin_path's parent is not a bpf filesystem. A failed open
 * leaves existing pins alone. */
int kern_open_pinned(struct kern **ret, const struct kern_sizes *sizes, const char *pin_path,
		     struct diag *errors, struct diag *warnings);

/* 0 if pin_path's parent directory is on a bpf filesystem, else -ENOTSUP with one line in errors
 * (also used by egressd --check). */
int kern_check_pin_path(const char *pin_path, struct diag *errors);

/* The map sizes in force (entries; events: bytes) in *ret; all 0 when k is NULL. */
void kern_sizes_get(const struct kern *k, struct kern_sizes *ret);

/* Number of maps reused from pins (0: a fresh start). */
int kern_adopted(const struct kern *k);

/* 1 when the counts of an earlier run continue in this one: its "counters" map was reused, or
 * replaced (layout change) and waiting for kern_carry_over(); then a snapshot must not be restored
 * on top. 0 otherwise (k NULL too). */
int kern_counters_continue(const struct kern *k);

/* After an upgrade changed the layout of a counting map ("counters", "overflow", "stats"; see
 * kern_open_pinned), add the counts of the earlier run's map, kept pinned as
 * PinPath/NAME-carry-ID, to this version's map, then unpin it. Call once the earlier run's links
 * carry this run's programs (after kern_sync_attachments): it first waits until no earlier program
 * is still running (an RCU grace period), so no count arrives in the old map afterwards. Keys and
 * values are converted field by field by name using both maps' BTF (daemon/carry.h) and added
 * with the atomic adds of the hooks (program "carry", BPF_PROG_TEST_RUN), so concurrent counting
 * loses nothing; a full "counters" sends the excess to the overflow slot, as the hooks do. A
 * replaced "events" ring buffer is read along with the live one and unpinned once read to the end.
 * Pins in PinPath that no map of this version owns (an earlier version's maps) are unpinned.
 * Notes (what was carried, fields added or dropped) go to notes. Returns the number of entries
 * carried (0: nothing to do), or the first negative errno with one line per problem in errors; a
 * map that could not be carried entirely stays pinned with what is left, and the next start tries
 * again. */
int kern_carry_over(struct kern *k, struct diag *notes, struct diag *errors);

/* keep (and pinned): leave programs attached and maps pinned for the next start (OnExit=keep,
 * and on a failed start after an adoption); else detach everything and remove the pins.
 * Returns NULL. k may be NULL. */
struct kern *kern_close(struct kern *k, int keep);

/* kern_close(k, 0): detach every program, close all maps, remove the pins. */
struct kern *kern_free(struct kern *k);

/* Install img as the current GeoIP generation: create a BPF_F_MMAPABLE | BPF_F_INNER_MAP array
 * "egress_geo" of img->nwords __u64 words, copy the image in through mmap, freeze it (read-only
 * for syscalls), then replace slot 0 of "geo_gen" in one map update, so programs see either the
 * old or the new generation, never a mix. The previous generation is freed by the kernel when the
 * last program using it returns. Returns 0, -EINVAL when img is not a table image (magic, size),
 * or the errno of the failing bpf()/mmap() call. */
int kern_install_table(struct kern *k, const struct table_image *img);

/* A policy as the kernel needs it. */
struct kern_policy {
	struct egress_policy bpf; /* map "policies" value; bpf.policy_id is the key */
	const struct policy_cidr *cidrs; /* exceptions (family 4/6, plen, action, addr) */
	size_t ncidrs;
	const uint64_t
		*cgroup_ids; /* cgroup v2 ids that carry this policy now (existing cgroups) */
	size_t ncgroup_ids;
	uint32_t max_level; /* deepest level among those cgroups (cgroup_level_of of their paths) */
};

/* Make the maps policies, cidr, cgroup_policy and config describe exactly p[0..n). Order, so a
 * concurrent connect() never sees a cgroup pointing to a missing policy: raise config.max_level
 * if needed; insert/update policies, then CIDR entries, then cgroup_policy entries; delete stale
 * cgroup_policy entries, then stale CIDR entries, then stale policies; lower config.max_level if
 * needed. Stale = present in the map but not in p (read back from the maps). Counters are never
 * touched. When a cgroup id appears in two policies, the later one wins. Returns 0, -E2BIG when a
 * max_level exceeds EGRESS_MAX_CGROUP_LEVEL or a map is too small, -EINVAL for a bad CIDR, or the
 * errno of the failing map operation (the maps may then hold a mix; call again with the old set to
 * restore). */
int kern_sync_policies(struct kern *k, const struct kern_policy *p, size_t n);

/* With pins, a link that an earlier run pinned for the same cgroup id and hook is adopted and
 * given this run's program with bpf_link__update_program (no second attachment, no gap); pinned
 * links no current attachment owns are unpinned, which detaches them.
 * Attach the KERN_NHOOKS programs (bpf_link, multi-attach: other programs on the same cgroups are
 * kept) to the topmost existing cgroups among rel_paths (paths relative to cgroup_mount;
 * duplicates, missing cgroups and paths below another listed path are fine: the latter are covered
 * by the ancestor's attachment, the programs pick the deepest policy themselves). Links already
 * attached to the same path and cgroup id are kept; a path whose cgroup id changed (removed and
 * created again) is re-attached; links of cgroups no longer wanted or gone are destroyed. New
 * links are made before old ones are destroyed (no gap; a connection in that instant may be
 * counted at both). Returns the number of cgroups attached, -EINVAL (nothing changed) when a path
 * is the cgroup v2 root ("" or "/") or contains "..", or the first attach error (other paths are
 * still processed); each problem is one line in errors. */
int kern_sync_attachments(struct kern *k, const char *cgroup_mount, const char *const *rel_paths,
			  size_t n, struct diag *errors);

/* Attached cgroups, for /v1/status: the number, and entry i (< count) as its rel path (valid until
 * the next kern_sync_attachments) and cgroup id. Each has all KERN_NHOOKS hooks attached.
 * kern_attached returns 0 or -ENOENT when i >= count. */
size_t kern_attached_count(const struct kern *k);
int kern_attached(const struct kern *k, size_t i, const char **ret_path, uint64_t *ret_id);

/* Call cb for every key of "counters" with the sum over all possible CPUs. A negative return of
 * cb stops the walk and is returned. Keys inserted during the walk may or may not be seen.
 * Returns 0 or a negative errno. */
int kern_read_counters(struct kern *k,
		       int (*cb)(const struct egress_counter_key *key,
				 const struct egress_counter_val *sum, void *userdata),
		       void *userdata);

/* Put counts of an earlier boot (a snapshot, daemon/state.h) into the counter maps: n keys and
 * values at keys[i * stride], vals[i * stride] (stride in bytes, so an array of
 * struct state_record serves). Key country 0xffff with cgroup 0 and policy 0 = the overflow slot of
 * that verdict. Only for a fresh start (keys must not exist yet). Returns 0 or the first negative
 * errno (the other records are still written). */
int kern_restore_counters(struct kern *k, const struct egress_counter_key *keys,
			  const struct egress_counter_val *vals, size_t n, size_t stride);

/* The overflow slot (counts that found the counter map full), per verdict, summed over CPUs. */
int kern_read_overflow(struct kern *k, struct egress_counter_val ret[EGRESS_VERDICT_COUNT]);

/* The "stats" array (EGRESS_STAT_*), summed over CPUs. */
int kern_read_stats(struct kern *k, uint64_t ret[EGRESS_STAT_COUNT]);

/* The ring buffer's epoll fd: readable when events are waiting (for sd_event_add_io, EPOLLIN). */
int kern_events_fd(struct kern *k);

/* Hand every waiting event to cb (in order). Returns the number consumed, or a negative errno
 * (a negative return of cb stops consumption and is returned). */
int kern_events_consume(struct kern *k, int (*cb)(const struct egress_event *ev, void *userdata),
			void *userdata);

#endif
