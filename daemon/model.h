/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * model.h - what the daemon core hands to the API and renderers: counter rows, filters, a
 * metrics snapshot, and the callbacks the API calls into the daemon with (struct api_ops).
 */
#ifndef EGRESSD_MODEL_H
#define EGRESSD_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "diag.h"

/* One counters row: the sum over CPUs of one kernel counter key, with names resolved. */
struct counter_row {
	uint64_t cgroup_id; /* cgroup v2 id */
	char *cgroup; /* path relative to the cgroup v2 mount ("system.slice/x.service"), or "" for the root */
	char *unit; /* systemd unit derived from the path ("x.service"), or "" */
	char *policy; /* policy name, or "" if the id is no longer configured */
	uint16_t country; /* country id (egress_abi.h); 0 = unknown */
	uint8_t proto; /* IP protocol number */
	uint8_t verdict; /* EGRESS_VERDICT_* */
	int overflow; /* 1: the overflow slot (country "other", no cgroup/policy) */
	uint64_t connections;
	uint64_t packets;
	uint64_t bytes;
};

struct counter_rows {
	struct counter_row *v;
	size_t n;
};
void counter_rows_free(struct counter_rows *rows);

/* Filters as in the CLI and the query string of /v1/counters; NULL = no filter. country is a code
 * ("DE"), "unknown" or "other"; verdict a verdict name. */
struct counter_filter {
	const char *policy;
	const char *cgroup;
	const char *country;
	const char *verdict;
};
/* 1 if row passes the filter, else 0. */
int counter_filter_match(const struct counter_filter *f, const struct counter_row *row);

struct policy_gauge {
	const char *name;
	int enforcing; /* 1 when programs are attached and the policy is in enforce mode */
};

/* Everything /metrics shows (DESIGN.md §4 metric names). */
struct metrics_snapshot {
	const struct counter_rows *rows;
	uint64_t events_lost; /* egressd_events_lost_total */
	uint64_t counter_overflow; /* counts that went to the overflow slot */
	uint64_t geo_prefixes4, geo_prefixes6; /* egressd_geo_prefixes{family="ipv4"|"ipv6"} */
	uint64_t policy_generation; /* egressd_policy_generation */
	uint64_t reload_failures; /* egressd_reload_failures_total */
	const struct policy_gauge *policies; /* egressd_enforcing{policy} */
	size_t npolicies;
};

/* A request the API refused with 403 (no role, or a reader calling a POST endpoint), for the daemon's
 * log. Credentials are those of the socket peer (SO_PEERCRED); strings are valid during the call. */
struct api_denial {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	const char *method; /* "GET", "POST", ... */
	const char *path; /* URL path, without the query */
	const char *role; /* what the peer is: "none" or "reader" */
	const char *reason; /* the one-line error sent to the client */
};

/* Callbacks of the daemon core, called from the API on the event loop thread. Each returns 0 or a
 * negative errno; on error *ret_err (if set) is a one-line message for the JSON error body. */
struct api_ops {
	void *userdata;
	/* GET /v1/status: the whole reply object. */
	int (*status)(void *userdata, json_object **ret, char **ret_err);
	/* GET /v1/counters and /metrics: all rows (the API filters). */
	int (*counters)(void *userdata, struct counter_rows *ret, char **ret_err);
	/* GET /metrics: everything but rows (rows come from counters()). */
	int (*metrics)(void *userdata, struct metrics_snapshot *ret, char **ret_err);
	/* GET /v1/lookup?addr=A[&cgroup=C]: -EINVAL with *ret_err naming the field on bad input. */
	int (*lookup)(void *userdata, const char *addr, const char *cgroup, json_object **ret, char **ret_err);
	/* GET /v1/policies. */
	int (*policies)(void *userdata, json_object **ret, char **ret_err);
	/* POST /v1/reload: *ret is the result object ({"ok":bool,"generation":N,"errors":[...]}). */
	int (*reload)(void *userdata, json_object **ret, char **ret_err);
	/* Provenance carried by every counters reply ("provenance" key) and every event: the object
	 * {"generation": N, "geo": [{"path": S, "format": "csv"|"mmdb", "sha256": S (hex),
	 * "build_epoch": N (s, 0 for CSV)}, ...]} (docs/api.md). Optional (NULL: replies and events
	 * carry no provenance); the API caches it for events per generation. */
	int (*provenance)(void *userdata, json_object **ret);
	/* Optional: told about every refused request (403), to log it. */
	void (*access_denied)(void *userdata, const struct api_denial *d);
};

#endif
