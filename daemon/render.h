/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * render.h - pure renderers of the daemon's data for the API: counters as JSON, all metrics in the
 * Prometheus text exposition format 0.0.4, and the names used for countries, protocols and verdicts
 * in both (and in the query filters of /v1/counters).
 */
#ifndef EGRESSD_RENDER_H
#define EGRESSD_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "events.h"
#include "model.h"

/* Country name of a counter row: "DE" for ids 1..676 (id = (c1-'A')*26 + (c2-'A') + 1, see
 * egress_abi.h), "unknown" for id 0 or an id out of range, "other" when overflow is non-zero (the
 * overflow slot). Returns buf or a static string; buf must hold 8 bytes. */
const char *render_country_name(uint16_t id, int overflow, char buf[8]);

/* Protocol name: "tcp" (6), "udp" (17), "icmp" (1), "ipv6-icmp" (58), else the decimal number.
 * Returns a static string or buf (4 bytes). */
const char *render_proto_name(uint8_t proto, char buf[4]);

/* Verdict name: "allow", "deny", "would_deny", "local" (EGRESS_VERDICT_*), else the decimal
 * number. Returns a static string or buf (4 bytes). */
const char *render_verdict_name(uint8_t verdict, char buf[4]);

/* Verdict name -> EGRESS_VERDICT_* (exact, lower case), or -EINVAL. */
int render_verdict_from_name(const char *name);

/* Check the values of a counter filter: verdict must be a verdict name, country two ASCII letters
 * (any case), "unknown" or "other"; policy and cgroup must not be empty. Returns 0, or -EINVAL and
 * sets *ret_field to the name of the first bad field ("verdict", "country", ...). */
int render_filter_check(const struct counter_filter *f, const char **ret_field);

/* Counters as the /v1/counters reply: {"rows":[{"cgroup":S,"unit":S,"policy":S,"country":S,
 * "protocol":S,"verdict":S,"connections":N,"packets":N,"bytes":N},...]} (docs/api.md). Rows that
 * do not pass filter (NULL = all) are left out; rows with the same names (e.g. two cgroup ids that
 * had the same path) are summed into one; rows are sorted by policy, cgroup, unit, country,
 * protocol number, verdict number. Returns 0 and a new object in *ret, or -ENOMEM. */
int render_counters_json(const struct counter_rows *rows, const struct counter_filter *filter,
			 json_object **ret);

/* All metrics of snap in the Prometheus text format 0.0.4 (families in a fixed order, each with one
 * # HELP and # TYPE line; samples sorted by label values; label values escaped for backslash,
 * double quote and newline; rows with equal label sets summed). snap->rows may be NULL (no rows).
 * Returns 0, a NUL-terminated heap string in *ret_text (free()) and its length without the NUL in
 * *ret_len; or -ENOMEM. */
int render_metrics(const struct metrics_snapshot *snap, char **ret_text, size_t *ret_len);

/* Hook name of an event: "connect4", "connect6", "sendmsg4", "sendmsg6", "egress"
 * (EGRESS_HOOK_*), else the decimal number. Returns a static string or buf (4 bytes). */
const char *render_hook_name(uint8_t hook, char buf[4]);

/* One event of GET /v1/events as one line of JSON followed by "\n" (docs/api.md, "Events"):
 * {"seq":N,"time":"2025-01-02T03:04:05.678901Z","time_ns":N,"pid":N,"tid":N,"uid":N,"gid":N,
 * "comm":S,"cgroup_id":N,"cgroup":S,"unit":S,"policy":S,"country":S,"family":"ipv4"|"ipv6",
 * "dst":S,"dport":N,"protocol":S,"verdict":S,"hook":S,"generation":N[,"provenance":{...}]}.
 * seq: the API's sequence number of the event; realtime_ns: the event time as nanoseconds since
 * the Unix epoch (UTC; the caller converts the kernel's CLOCK_MONOTONIC ev->ts_ns); provenance:
 * serialized JSON object appended as is, or NULL to leave the key out. comm is cut at the first
 * NUL (at most 16 bytes). Returns 0, a NUL-terminated heap string in *ret_line (free()) and its
 * length in *ret_len, or -ENOMEM. */
int render_event_json(const struct event_view *v, uint64_t seq, int64_t realtime_ns,
		      const char *provenance, char **ret_line, size_t *ret_len);

/* The Content-Type of render_metrics() output. */
#define RENDER_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
