/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * events.h - deny and would_deny events from the ring buffer to the log: one journal entry per
 * event (MESSAGE_ID EGRESSD_EVENT_MESSAGE_ID, structured EGRESSD_* fields; catalog in
 * systemd/egressd.catalog), rate-limited per (cgroup, country, verdict) so a connect storm cannot
 * flood the journal; what a limit holds back is reported as "N similar events suppressed"
 * (MESSAGE_ID EGRESSD_SUPPRESSED_MESSAGE_ID) when its window ends, so nothing is hidden without a
 * count. Without the journal the same lines go to stderr.
 */
#ifndef EGRESSD_EVENTS_H
#define EGRESSD_EVENTS_H

#include <stdint.h>

#include "egress_abi.h"

#define EGRESSD_EVENT_MESSAGE_ID "098bd904eb594f61a659c4a4ce01355f"
#define EGRESSD_SUPPRESSED_MESSAGE_ID "bb926dc752ce42dba297fdd0499a7f01"

#define EVENTS_WINDOW_USEC (10 * 1000000ULL) /* rate-limit window per key */
#define EVENTS_BURST 10 /* entries per key and window */
#define EVENTS_KEYS 4096 /* keys tracked at once; further keys share one overflow key */

/* An event with the names the daemon resolved for it. */
struct event_view {
	const struct egress_event *ev;
	const char *policy; /* policy name, "" if unknown */
	const char *cgroup; /* cgroup path relative to the v2 mount, or "id:N" */
	const char *unit; /* systemd unit, "" if none */
	uint64_t generation; /* policy generation in force when the event was read */
};

struct events;

/* Returns NULL on out-of-memory. journal: 1 = journal entries (sd_journal_send), 0 = stderr. */
struct events *events_new(int journal);
struct events *events_free(struct events *e);

/* Log v (now_usec: CLOCK_MONOTONIC) unless its key exceeded EVENTS_BURST in the current window;
 * then it is counted as suppressed. Returns 1 if logged, 0 if suppressed. */
int events_log(struct events *e, const struct event_view *v, uint64_t now_usec);

/* Report and reset every key whose window has ended by now_usec (all keys if force). Returns
 * the number of suppression summaries written. */
int events_flush(struct events *e, uint64_t now_usec, int force);

/* Totals since events_new: events logged and events suppressed. */
void events_totals(const struct events *e, uint64_t *ret_logged, uint64_t *ret_suppressed);

#endif
