/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * state.h - counter snapshots in StateDirectory=, so counts survive a reboot (the pins under
 * PinPath= only survive a daemon restart).
 *
 * File STATE_FILE in the state directory: a 32-byte header, then the zlib-compressed payload.
 *   header: magic "EGRSNAP1" (8 bytes), version (__u32, little-endian, STATE_VERSION), CRC-32 of
 *           the uncompressed payload (__u32 LE, zlib crc32 = ISO-HDLC), payload length (__u64 LE),
 *           compressed length (__u64 LE)
 *   payload: records of struct egress_counter_key (16 bytes) + struct egress_counter_val
 *           (24 bytes), host order, as in include/egress_abi.h; overflow slots use cgroup_id 0,
 *           policy_id 0 and country 0xffff.
 * Written to a temporary file, fsync'd, renamed over the old one, directory fsync'd: a crash
 * leaves the old or the new snapshot, never a mix. A snapshot that fails any check is renamed to
 * STATE_FILE ".corrupt" and never half-loaded.
 */
#ifndef EGRESSD_STATE_H
#define EGRESSD_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "egress_abi.h"

#define STATE_FILE "counters.snapshot"
#define STATE_VERSION 1
#define STATE_OVERFLOW_COUNTRY 0xffff
#define STATE_MAX_RECORDS (16u << 20) /* refuse larger payloads (640 MiB) */

struct state_record {
	struct egress_counter_key key;
	struct egress_counter_val val;
};

/* Write n records to dir/STATE_FILE atomically (mkdir dir 0700 if missing). Returns 0 or a
 * negative errno, with one line in errors naming the file. */
int state_write(const char *dir, const struct state_record *v, size_t n, struct diag *errors);

/* Read STATE_FILE in dir. Returns 0 and *ret and *ret_n (caller frees *ret), -ENOENT when
 * there is none, or -EBADMSG when it is corrupt or truncated: then it has been renamed to STATE_FILE ".corrupt"
 * (one line in errors says so) and nothing is returned. Other negative errnos for I/O errors. */
int state_read(const char *dir, struct state_record **ret, size_t *ret_n, struct diag *errors);

#endif
