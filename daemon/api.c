/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "api.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "render.h"

/* A chunked body (no Content-Length) longer than this closes the connection instead of being
 * drained for a 413. */
#define API_MAX_DRAIN (16 * API_MAX_BODY)

/* One libmicrohttpd daemon driven by the event loop: the Unix socket API, or the TCP /metrics
 * listener (metrics_only). */
/* Open connections of one peer uid on the Unix socket (API_CONNECTIONS_PER_UID). */
struct uid_conns {
	uid_t uid;
	unsigned n;
	int reported; /* the daemon was told this uid reached the limit (until it drops below) */
};

struct server {
	struct api *api;
	struct MHD_Daemon *mhd;
	sd_event_source *io; /* MHD's epoll fd */
	sd_event_source *timer; /* MHD_get_timeout() */
	int metrics_only;
	int port; /* metrics_only: bound TCP port */
	struct uid_conns *uids; /* uids with open connections */
	size_t nuids;
	unsigned nonroot; /* connections of uids other than 0 */
	int nonroot_reported; /* the non-root total was reported full (until it drops below) */
};

/* One published event, shared (refcounted) by the recent ring and the client queues. */
struct api_event {
	unsigned refs;
	char *line; /* JSON + "\n" */
	size_t len;
	struct counter_row row; /* names, country and verdict, for the filters */
};

/* A client queue entry: an event, or (ev NULL) the notice {"missed":N}. */
struct qent {
	struct api_event *ev;
	uint64_t missed;
};

/* One GET /v1/events reply in progress (the cls of its content reader). */
struct follower {
	struct api *api;
	struct MHD_Connection *c;
	char *fbuf[4]; /* owned copies of the filter values */
	struct counter_filter f;
	int follow;
	int suspended;
	int gone; /* the client hung up while we waited for events */
	sd_event_source *hup; /* EPOLLRDHUP on the connection while it waits (MHD does not poll a
			       * suspended connection, so it would not see the client leave) */
	struct qent *q; /* ring of cap entries */
	size_t cap, head, n;
	size_t off; /* bytes of the head entry already given to MHD */
	uint64_t missed; /* dropped since the last notice */
	char mbuf[64]; /* text of a missed notice at the head */
	struct follower *prev, *next;
};

struct api {
	sd_event *event;
	struct server main; /* the Unix socket */
	struct server metrics; /* MetricsListen=, or mhd NULL */
	sd_event_source *defer; /* runs requests held back during a publish burst */
	const struct api_ops *ops;
	int listen_fd; /* ours; MHD has a dup of it */
	char *path; /* socket file we bound, or NULL for an inherited socket */
	dev_t dev;
	ino_t ino;
	gid_t admin_gid;
	gid_t reader_gid;
	/* events */
	struct api_event *recent[API_EVENTS_RECENT];
	size_t recent_head, recent_n;
	uint64_t seq, published, missed;
	struct follower *followers;
	char *prov; /* serialized provenance for prov_gen, or NULL */
	uint64_t prov_gen;
	int prov_valid;
	unsigned since_flush;
	int in_mhd; /* inside MHD_run (no recursion into it) */
	int in_flush; /* MHD_run from api_publish_event: requests wait (deferred) */
	struct req *deferred; /* requests suspended while in_flush */
	int stopping;
};

/* Per request state (MHD con_cls). */
struct req {
	size_t body; /* bytes of body received */
	int too_large;
	enum api_role role;
	struct MHD_Connection *c;
	struct req *dnext; /* in api->deferred */
	int deferred;
};

enum route {
	ROUTE_NONE,
	ROUTE_STATUS,
	ROUTE_COUNTERS,
	ROUTE_METRICS,
	ROUTE_EVENTS,
	ROUTE_LOOKUP,
	ROUTE_POLICIES,
	ROUTE_RELOAD,
};

static const struct {
	const char *path;
	enum route route;
	int post; /* 1: POST only; 0: GET and HEAD */
} routes[] = {
	{ "/v1/status", ROUTE_STATUS, 0 }, { "/v1/counters", ROUTE_COUNTERS, 0 },
	{ "/metrics", ROUTE_METRICS, 0 },  { "/v1/events", ROUTE_EVENTS, 0 },
	{ "/v1/lookup", ROUTE_LOOKUP, 0 }, { "/v1/policies", ROUTE_POLICIES, 0 },
	{ "/v1/reload", ROUTE_RELOAD, 1 },
	/* one per line */
};

/* ---- peer credentials ------------------------------------------------------------------------ */

int api_peer_read(int fd, struct api_peer *ret)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	gid_t *groups = NULL;
	size_t n = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (len != sizeof(uc))
		return -EIO;
	for (socklen_t glen = 16 * sizeof(gid_t);;) {
		gid_t *g = realloc(groups, glen ? glen : sizeof(gid_t));

		if (!g) {
			free(groups);
			return -ENOMEM;
		}
		groups = g;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
			n = glen / sizeof(gid_t);
			break;
		}
		if (errno == ERANGE && glen > 0)
			continue; /* glen now holds the size needed */
		if (errno == ENOPROTOOPT || errno == EINVAL) {
			n = 0; /* kernel without SO_PEERGROUPS */
			break;
		}
		free(groups);
		return -errno;
	}
	ret->pid = uc.pid;
	ret->uid = uc.uid;
	ret->gid = uc.gid;
	ret->groups = groups;
	ret->ngroups = n;
	return 0;
}

void api_peer_clear(struct api_peer *peer)
{
	free(peer->groups);
	peer->groups = NULL;
	peer->ngroups = 0;
}

static int peer_has_gid(const struct api_peer *peer, gid_t gid)
{
	if (gid == (gid_t)-1)
		return 0;
	if (peer->gid == gid)
		return 1;
	for (size_t i = 0; i < peer->ngroups; i++)
		if (peer->groups[i] == gid)
			return 1;
	return 0;
}

/* The groups of uid in the group database (getgrouplist of its passwd entry, which includes the
 * entry's primary group). Returns the count (>= 0) and a heap array in *ret, or -errno (-ENOENT:
 * no such user). */
static int db_groups(uid_t uid, gid_t **ret)
{
	struct passwd pw, *res = NULL;
	char *buf;
	gid_t *g = NULL;
	int n = 32, r;
	long bs = sysconf(_SC_GETPW_R_SIZE_MAX);

	if (bs < 4096)
		bs = 4096;
	buf = malloc((size_t)bs);
	if (!buf)
		return -ENOMEM;
	r = getpwuid_r(uid, &pw, buf, (size_t)bs, &res);
	if (r != 0 || !res) {
		free(buf);
		return r ? -r : -ENOENT;
	}
	for (int tries = 0; tries < 8; tries++) {
		gid_t *ng = realloc(g, (size_t)n * sizeof(*g));
		int want = n;

		if (!ng) {
			free(g);
			free(buf);
			return -ENOMEM;
		}
		g = ng;
		if (getgrouplist(pw.pw_name, pw.pw_gid, g, &want) >= 0) {
			free(buf);
			*ret = g;
			return want;
		}
		n = want > n ? want : 2 * n;
	}
	free(g);
	free(buf);
	return -E2BIG;
}

enum api_role api_peer_role(const struct api_peer *peer, gid_t reader_gid, gid_t admin_gid)
{
	enum api_role role = API_ROLE_NONE;
	gid_t *g = NULL;
	int n;

	if (peer->uid == 0 || peer_has_gid(peer, admin_gid))
		return API_ROLE_ADMIN;
	if (peer_has_gid(peer, reader_gid))
		role = API_ROLE_READER;
	if (admin_gid == (gid_t)-1 && (role == API_ROLE_READER || reader_gid == (gid_t)-1))
		return role; /* the database cannot give more */
	n = db_groups(peer->uid, &g);
	for (int i = 0; i < n; i++) {
		if (admin_gid != (gid_t)-1 && g[i] == admin_gid) {
			role = API_ROLE_ADMIN;
			break;
		}
		if (reader_gid != (gid_t)-1 && g[i] == reader_gid)
			role = API_ROLE_READER;
	}
	free(g);
	return role;
}

const char *api_role_name(enum api_role role)
{
	switch (role) {
	case API_ROLE_ADMIN:
		return "admin";
	case API_ROLE_READER:
		return "reader";
	default:
		return "none";
	}
}

int api_peer_is_admin(const struct api_peer *peer, gid_t gid)
{
	if (peer->uid == 0)
		return 1;
	if (gid == (gid_t)-1)
		return 0;
	if (peer->gid == gid)
		return 1;
	for (size_t i = 0; i < peer->ngroups; i++)
		if (peer->groups[i] == gid)
			return 1;
	return 0;
}

/* ---- replies --------------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *content_type,
			     const char *body, size_t len, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_object *o,
				  const char *allow)
{
	size_t len = 0;
	const char *s;
	char *body;
	enum MHD_Result r;

	s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!s)
		return MHD_NO;
	body = malloc(len + 1);
	if (!body)
		return MHD_NO;
	memcpy(body, s, len);
	body[len] = '\n';
	r = reply(c, status, "application/json", body, len + 1, allow);
	free(body);
	return r;
}

/* {"error":"..."}: the message is made one line (control characters become spaces). */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *allow,
				   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *allow,
				   const char *fmt, ...)
{
	json_object *o, *s;
	char *msg = NULL;
	enum MHD_Result r;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		return MHD_NO;
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	o = json_object_new_object();
	s = json_object_new_string(msg);
	free(msg);
	if (!o || !s || json_object_object_add(o, "error", s) < 0) {
		json_object_put(s);
		json_object_put(o);
		return MHD_NO;
	}
	r = reply_json(c, status, o, allow);
	json_object_put(o);
	return r;
}

/* Errors of an api_ops callback: -errno -> HTTP status. */
static unsigned errno_to_status(int err)
{
	switch (err) {
	case -EINVAL:
		return MHD_HTTP_BAD_REQUEST;
	case -EPERM:
	case -EACCES:
		return MHD_HTTP_FORBIDDEN;
	case -ENOENT:
		return MHD_HTTP_NOT_FOUND;
	case -EBUSY:
	case -EAGAIN:
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	case -EOPNOTSUPP:
		return MHD_HTTP_NOT_IMPLEMENTED;
	default:
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

static enum MHD_Result reply_op_error(struct MHD_Connection *c, const char *what, int err,
				      char *msg)
{
	enum MHD_Result r;

	if (msg && msg[0])
		r = reply_error(c, errno_to_status(err), NULL, "%s", msg);
	else
		r = reply_error(c, errno_to_status(err), NULL, "%s: %s", what, strerror(-err));
	free(msg);
	return r;
}

/* ---- query strings --------------------------------------------------------------------------- */

struct args_check {
	const char *const *allowed;
	const char *bad; /* first unknown or valueless key */
	int novalue;
};

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct args_check *ac = cls;

	for (const char *const *a = ac->allowed; *a; a++)
		if (strcmp(*a, key) == 0) {
			if (!value) {
				ac->bad = key;
				ac->novalue = 1;
				return MHD_NO;
			}
			return MHD_YES;
		}
	ac->bad = key;
	return MHD_NO;
}

/* 0 if every query parameter is in allowed and has a value, else replies 400 and returns -1. */
static int check_args(struct MHD_Connection *c, const char *const *allowed, enum MHD_Result *res)
{
	struct args_check ac = { .allowed = allowed };

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_arg, &ac);
	if (!ac.bad)
		return 0;
	if (ac.novalue)
		*res = reply_error(c, MHD_HTTP_BAD_REQUEST, NULL,
				   "query parameter '%.64s' needs a value", ac.bad);
	else
		*res = reply_error(c, MHD_HTTP_BAD_REQUEST, NULL, "unknown query parameter '%.64s'",
				   ac.bad);
	return -1;
}

static const char *arg(struct MHD_Connection *c, const char *key)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

/* ---- routes ---------------------------------------------------------------------------------- */

static enum MHD_Result reply_object_op(struct MHD_Connection *c, const char *what,
				       int (*op)(void *, json_object **, char **), void *userdata)
{
	json_object *o = NULL;
	char *err = NULL;
	enum MHD_Result res;
	int r;

	r = op(userdata, &o, &err);
	if (r < 0)
		return reply_op_error(c, what, r, err);
	free(err);
	if (!o)
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "%s: no reply", what);
	res = reply_json(c, MHD_HTTP_OK, o, NULL);
	json_object_put(o);
	return res;
}

static enum MHD_Result do_counters(struct api *api, struct MHD_Connection *c)
{
	static const char *const allowed[] = { "policy", "cgroup", "country", "verdict", NULL };
	struct counter_filter f;
	struct counter_rows rows = { 0 };
	json_object *o = NULL;
	const char *field;
	char *err = NULL;
	enum MHD_Result res;
	int r;

	if (check_args(c, allowed, &res) < 0)
		return res;
	f = (struct counter_filter){
		.policy = arg(c, "policy"),
		.cgroup = arg(c, "cgroup"),
		.country = arg(c, "country"),
		.verdict = arg(c, "verdict"),
	};
	if (render_filter_check(&f, &field) < 0) {
		if (strcmp(field, "verdict") == 0)
			return reply_error(c, MHD_HTTP_BAD_REQUEST, NULL,
					   "verdict: must be allow, deny, would_deny or local");
		if (strcmp(field, "country") == 0)
			return reply_error(c, MHD_HTTP_BAD_REQUEST, NULL,
					   "country: must be a two-letter code, unknown or other");
		return reply_error(c, MHD_HTTP_BAD_REQUEST, NULL, "%s: must not be empty", field);
	}
	r = api->ops->counters(api->ops->userdata, &rows, &err);
	if (r < 0)
		return reply_op_error(c, "counters", r, err);
	free(err);
	r = render_counters_json(&rows, &f, &o);
	counter_rows_free(&rows);
	if (r < 0)
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "counters: %s",
				   strerror(-r));
	if (api->ops->provenance) {
		json_object *prov = NULL, *top, *rows_o = NULL;

		r = api->ops->provenance(api->ops->userdata, &prov);
		if (r < 0 || !prov) {
			json_object_put(o);
			return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
					   "counters: provenance: %s",
					   strerror(r < 0 ? -r : EIO));
		}
		/* {"provenance": {...}, "rows": [...]}, in that order */
		top = json_object_new_object();
		json_object_object_get_ex(o, "rows", &rows_o);
		if (!top || json_object_object_add(top, "provenance", prov) < 0) {
			json_object_put(prov);
			json_object_put(top);
			json_object_put(o);
			return MHD_NO;
		}
		if (json_object_object_add(top, "rows", json_object_get(rows_o)) < 0) {
			json_object_put(rows_o);
			json_object_put(top);
			json_object_put(o);
			return MHD_NO;
		}
		json_object_put(o);
		o = top;
	}
	res = reply_json(c, MHD_HTTP_OK, o, NULL);
	json_object_put(o);
	return res;
}

static enum MHD_Result do_metrics(struct api *api, struct MHD_Connection *c)
{
	struct counter_rows rows = { 0 };
	struct metrics_snapshot snap = { 0 };
	char *err = NULL, *text = NULL;
	size_t len = 0;
	enum MHD_Result res;
	int r;

	r = api->ops->counters(api->ops->userdata, &rows, &err);
	if (r < 0)
		return reply_op_error(c, "counters", r, err);
	free(err);
	err = NULL;
	r = api->ops->metrics(api->ops->userdata, &snap, &err);
	if (r < 0) {
		counter_rows_free(&rows);
		return reply_op_error(c, "metrics", r, err);
	}
	free(err);
	snap.rows = &rows;
	r = render_metrics(&snap, &text, &len);
	counter_rows_free(&rows);
	if (r < 0)
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "metrics: %s",
				   strerror(-r));
	res = reply(c, MHD_HTTP_OK, RENDER_METRICS_CONTENT_TYPE, text, len, NULL);
	free(text);
	return res;
}

static enum MHD_Result do_lookup(struct api *api, struct MHD_Connection *c)
{
	static const char *const allowed[] = { "addr", "cgroup", NULL };
	json_object *o = NULL;
	const char *addr, *cgroup;
	char *err = NULL;
	enum MHD_Result res;
	int r;

	if (check_args(c, allowed, &res) < 0)
		return res;
	addr = arg(c, "addr");
	cgroup = arg(c, "cgroup");
	if (!addr || !addr[0])
		return reply_error(c, MHD_HTTP_BAD_REQUEST, NULL,
				   "addr: missing (an IPv4 or IPv6 address)");
	if (cgroup && !cgroup[0])
		return reply_error(c, MHD_HTTP_BAD_REQUEST, NULL, "cgroup: must not be empty");
	r = api->ops->lookup(api->ops->userdata, addr, cgroup, &o, &err);
	if (r < 0)
		return reply_op_error(c, "lookup", r, err);
	free(err);
	if (!o)
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "lookup: no reply");
	res = reply_json(c, MHD_HTTP_OK, o, NULL);
	json_object_put(o);
	return res;
}

/* ---- roles ----------------------------------------------------------------------------------- */

/* Tell the daemon about a refused request, then reply 403 with msg. */
static enum MHD_Result deny(struct api *api, struct MHD_Connection *c, const struct api_peer *peer,
			    enum api_role role, const char *method, const char *url, const char *msg)
{
	if (api->ops->access_denied) {
		struct api_denial d = {
			.pid = peer ? peer->pid : 0,
			.uid = peer ? peer->uid : (uid_t)-1,
			.gid = peer ? peer->gid : (gid_t)-1,
			.method = method,
			.path = url,
			.role = api_role_name(role),
			.reason = msg,
		};

		api->ops->access_denied(api->ops->userdata, &d);
	}
	return reply_error(c, MHD_HTTP_FORBIDDEN, NULL, "%s", msg);
}

static void gid_text(char *buf, size_t size, const char *what, gid_t gid)
{
	if (gid == (gid_t)-1)
		snprintf(buf, size, "%s (not set)", what);
	else
		snprintf(buf, size, "%s (gid %u)", what, (unsigned)gid);
}

/* Decide the role of the peer of c; on none, reply 403 (*res) and return -1. */
static int check_role(struct api *api, struct MHD_Connection *c, const char *method,
		      const char *url, enum api_role *ret_role, enum MHD_Result *res)
{
	const union MHD_ConnectionInfo *ci;
	struct api_peer peer = { 0 };
	char msg[256], a[48], rd[48];
	enum api_role role;
	int r;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci) {
		*res = deny(api, c, NULL, API_ROLE_NONE, method, url,
			    "permission denied: cannot get the connection socket");
		return -1;
	}
	r = api_peer_read(ci->connect_fd, &peer);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "permission denied: cannot read peer credentials: %s",
			 strerror(-r));
		*res = deny(api, c, NULL, API_ROLE_NONE, method, url, msg);
		return -1;
	}
	role = api_peer_role(&peer, api->reader_gid, api->admin_gid);
	if (role == API_ROLE_NONE) {
		gid_text(a, sizeof(a), "AdminGroup", api->admin_gid);
		gid_text(rd, sizeof(rd), "ReaderGroup", api->reader_gid);
		snprintf(msg, sizeof(msg),
			 "permission denied: uid %u is neither root nor a member of %s or %s",
			 (unsigned)peer.uid, a, rd);
		*res = deny(api, c, &peer, role, method, url, msg);
		api_peer_clear(&peer);
		return -1;
	}
	api_peer_clear(&peer);
	*ret_role = role;
	return 0;
}

static enum MHD_Result do_reload(struct api *api, struct MHD_Connection *c, struct req *req,
				 const char *method, const char *url)
{
	char msg[128];

	if (req->role != API_ROLE_ADMIN) {
		const union MHD_ConnectionInfo *ci;
		struct api_peer peer = { 0 };
		int have;

		if (api->admin_gid == (gid_t)-1)
			snprintf(msg, sizeof(msg), "reload: permission denied (needs uid 0)");
		else
			snprintf(msg, sizeof(msg),
				 "reload: permission denied (needs uid 0 or group %u)",
				 (unsigned)api->admin_gid);
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		have = ci && api_peer_read(ci->connect_fd, &peer) >= 0;
		{
			enum MHD_Result r = deny(api, c, have ? &peer : NULL, req->role, method,
						 url, msg);

			api_peer_clear(&peer);
			return r;
		}
	}
	return reply_object_op(c, "reload", api->ops->reload, api->ops->userdata);
}

/* ---- events ---------------------------------------------------------------------------------- */

static void event_unref(struct api_event *ev)
{
	if (!ev || --ev->refs > 0)
		return;
	free(ev->line);
	free(ev->row.cgroup);
	free(ev->row.unit);
	free(ev->row.policy);
	free(ev);
}

static void follower_push(struct follower *f, struct api_event *ev, uint64_t missed)
{
	struct qent *e = &f->q[(f->head + f->n) % f->cap];

	e->ev = ev;
	e->missed = missed;
	if (ev)
		ev->refs++;
	f->n++;
}

static void follower_pop(struct follower *f)
{
	event_unref(f->q[f->head].ev);
	f->q[f->head].ev = NULL;
	f->head = (f->head + 1) % f->cap;
	f->n--;
	f->off = 0;
}

/* Queue ev for f, or count it as missed when the queue is full; a pending missed notice goes in
 * first, at the place where events were lost. */
static void follower_offer(struct follower *f, struct api_event *ev)
{
	if (f->missed > 0 && f->n < f->cap) {
		follower_push(f, NULL, f->missed);
		f->missed = 0;
	}
	if (f->n < f->cap) {
		follower_push(f, ev, 0);
	} else {
		f->missed++;
		f->api->missed++;
	}
	if (f->suspended) {
		f->suspended = 0;
		MHD_resume_connection(f->c);
		/* external polling: MHD_run() must follow a resume (api->defer does it) */
		sd_event_source_set_enabled(f->api->defer, SD_EVENT_ONESHOT);
	}
}

/* The client of a waiting follower hung up: end its stream, which frees the connection (and its
 * share of API_CONNECTIONS_PER_UID) now rather than at the next matching event, if ever. */
static int on_follower_hup(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct follower *f = userdata;

	(void)s;
	(void)fd;
	(void)revents;
	f->gone = 1;
	if (f->suspended) {
		f->suspended = 0;
		MHD_resume_connection(f->c);
		sd_event_source_set_enabled(f->api->defer, SD_EVENT_ONESHOT);
	}
	return 0;
}

static void follower_watch_hup(struct follower *f)
{
	const union MHD_ConnectionInfo *ci;
	int fd;

	if (f->hup) {
		(void)sd_event_source_set_enabled(f->hup, SD_EVENT_ONESHOT);
		return;
	}
	/* On a dup of the socket: MHD closes its fd on its own schedule, and a new connection may get
	 * the same number; our own fd (closed with the source) watches this connection only. */
	ci = MHD_get_connection_info(f->c, MHD_CONNECTION_INFO_CONNECTION_FD);
	fd = ci ? fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 3) : -1;
	if (fd < 0)
		return;
	if (sd_event_add_io(f->api->event, &f->hup, fd, EPOLLRDHUP, on_follower_hup, f) < 0) {
		close(fd);
		return;
	}
	(void)sd_event_source_set_io_fd_own(f->hup, 1);
	(void)sd_event_source_set_enabled(f->hup, SD_EVENT_ONESHOT);
}

static ssize_t follower_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct follower *f = cls;
	size_t out = 0;

	if (f->gone)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (f->api->stopping)
		return MHD_CONTENT_READER_END_OF_STREAM;
	while (out < max) {
		const struct qent *e;
		const char *s;
		size_t len, k;

		if (f->n == 0) {
			if (f->missed == 0)
				break;
			follower_push(f, NULL, f->missed);
			f->missed = 0;
		}
		e = &f->q[f->head];
		if (e->ev) {
			s = e->ev->line;
			len = e->ev->len;
		} else {
			int m = snprintf(f->mbuf, sizeof(f->mbuf), "{\"missed\":%" PRIu64 "}\n",
					 e->missed);

			s = f->mbuf;
			len = m > 0 ? (size_t)m : 0;
		}
		k = len - f->off < max - out ? len - f->off : max - out;
		memcpy(buf + out, s + f->off, k);
		out += k;
		f->off += k;
		if (f->off == len)
			follower_pop(f);
	}
	if (out > 0)
		return (ssize_t)out;
	if (!f->follow)
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* Nothing queued: wait for api_publish_event() to resume us, or the client to leave. */
	f->suspended = 1;
	MHD_suspend_connection(f->c);
	follower_watch_hup(f);
	return 0;
}

static void follower_free(void *cls)
{
	struct follower *f = cls;

	if (!f)
		return;
	if (f->prev)
		f->prev->next = f->next;
	else if (f->api->followers == f)
		f->api->followers = f->next;
	if (f->next)
		f->next->prev = f->prev;
	sd_event_source_disable_unref(f->hup);
	while (f->n > 0)
		follower_pop(f);
	for (size_t i = 0; i < 4; i++)
		free(f->fbuf[i]);
	free(f->q);
	free(f);
}

static int event_match(const struct follower *f, const struct api_event *ev)
{
	return counter_filter_match(&f->f, &ev->row);
}

static char *dup_or_null(const char *s, int *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = 1;
	return d;
}

static enum MHD_Result do_events(struct api *api, struct MHD_Connection *c, int head)
{
	static const char *const allowed[] = { "follow", "policy", "cgroup",
					       "country", "verdict", NULL };
	struct counter_filter flt;
	struct MHD_Response *resp;
	struct follower *f;
	const char *field, *fv;
	enum MHD_Result res;
	int follow = 0, oom = 0;

	if (check_args(c, allowed, &res) < 0)
		return res;
	fv = arg(c, "follow");
	if (fv) {
		if (strcmp(fv, "1") == 0 || strcmp(fv, "true") == 0 || strcmp(fv, "yes") == 0)
			follow = 1;
		else if (!(strcmp(fv, "0") == 0 || strcmp(fv, "false") == 0 ||
			   strcmp(fv, "no") == 0))
			return reply_error(c, MHD_HTTP_BAD_REQUEST, NULL,
					   "follow: must be 1 or 0");
	}
	flt = (struct counter_filter){
		.policy = arg(c, "policy"),
		.cgroup = arg(c, "cgroup"),
		.country = arg(c, "country"),
		.verdict = arg(c, "verdict"),
	};
	if (render_filter_check(&flt, &field) < 0) {
		if (strcmp(field, "verdict") == 0)
			return reply_error(c, MHD_HTTP_BAD_REQUEST, NULL,
					   "verdict: must be allow, deny, would_deny or local");
		if (strcmp(field, "country") == 0)
			return reply_error(c, MHD_HTTP_BAD_REQUEST, NULL,
					   "country: must be a two-letter code, unknown or other");
		return reply_error(c, MHD_HTTP_BAD_REQUEST, NULL, "%s: must not be empty", field);
	}
	if (head)
		return reply(c, MHD_HTTP_OK, "application/x-ndjson", "", 0, NULL);
	f = calloc(1, sizeof(*f));
	if (!f)
		return MHD_NO;
	f->api = api;
	f->c = c;
	f->follow = follow;
	f->cap = API_EVENTS_QUEUE;
	f->q = calloc(f->cap, sizeof(*f->q));
	f->fbuf[0] = dup_or_null(flt.policy, &oom);
	f->fbuf[1] = dup_or_null(flt.cgroup, &oom);
	f->fbuf[2] = dup_or_null(flt.country, &oom);
	f->fbuf[3] = dup_or_null(flt.verdict, &oom);
	if (!f->q || oom) {
		follower_free(f);
		return MHD_NO;
	}
	f->f = (struct counter_filter){ f->fbuf[0], f->fbuf[1], f->fbuf[2], f->fbuf[3] };
	for (size_t i = 0; i < api->recent_n; i++) {
		struct api_event *ev = api->recent[(api->recent_head + i) % API_EVENTS_RECENT];

		if (event_match(f, ev))
			follower_push(f, ev, 0);
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, follower_read, f,
						 follower_free);
	if (!resp) {
		follower_free(f);
		return MHD_NO;
	}
	/* linked only now: follower_free() unlinks it when MHD drops the response */
	f->next = api->followers;
	if (f->next)
		f->next->prev = f;
	api->followers = f;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson") !=
		    MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	if (follow) /* a follower may wait long for events; it must not time out */
		MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)0);
	res = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return res;
}

/* ---- request dispatch ------------------------------------------------------------------------ */

static void defer_request(struct api *api, struct req *req)
{
	req->deferred = 1;
	req->dnext = api->deferred;
	api->deferred = req;
	MHD_suspend_connection(req->c);
	sd_event_source_set_enabled(api->defer, SD_EVENT_ONESHOT);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct server *srv = cls;
	struct api *api = srv->api;
	struct req *req = *con_cls;
	enum route route = ROUTE_NONE;
	int post = 0, is_get, is_post;

	if (!req) {
		const char *cl;
		enum MHD_Result res;

		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		req->c = c;
		/* Roles first: a peer without one learns nothing else (not even 404 or 413). */
		if (!srv->metrics_only && check_role(api, c, method, url, &req->role, &res) < 0)
			return res;
		/* A declared body that is too large is refused before it is sent. */
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			unsigned long long n;

			errno = 0;
			n = strtoull(cl, &end, 10);
			if (errno == 0 && end != cl && *end == '\0' && n > API_MAX_BODY) {
				req->too_large = 1;
				return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
						   "body: larger than %d bytes", API_MAX_BODY);
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		/* Bodies are not used: count and drop them. */
		req->body += *upload_data_size;
		*upload_data_size = 0;
		if (req->body > API_MAX_BODY)
			req->too_large = 1;
		if (req->body > API_MAX_DRAIN)
			return MHD_NO;
		return MHD_YES;
	}
	(void)upload_data;
	if (req->too_large)
		return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
				   "body: larger than %d bytes", API_MAX_BODY);
	if (api->stopping)
		return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "egressd is stopping");
	if (api->in_flush) {
		/* api_publish_event() is writing a burst of events: the daemon core is busy, so
		 * this request waits until the burst ends (api->defer). */
		defer_request(api, req);
		return MHD_YES;
	}
	req->deferred = 0;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(url, routes[i].path) == 0) {
			route = routes[i].route;
			post = routes[i].post;
			break;
		}
	if (srv->metrics_only && route != ROUTE_METRICS)
		route = ROUTE_NONE;
	if (route == ROUTE_NONE)
		return reply_error(c, MHD_HTTP_NOT_FOUND, NULL, "path: no such resource '%.128s'",
				   url);
	is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		 strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	if (post ? !is_post : !is_get)
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, post ? "POST" : "GET, HEAD",
				   "method: %.16s not allowed on %s (use %s)", method, url,
				   post ? "POST" : "GET");

	switch (route) {
	case ROUTE_STATUS:
		return reply_object_op(c, "status", api->ops->status, api->ops->userdata);
	case ROUTE_COUNTERS:
		return do_counters(api, c);
	case ROUTE_METRICS:
		return do_metrics(api, c);
	case ROUTE_EVENTS:
		return do_events(api, c, strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
	case ROUTE_LOOKUP:
		return do_lookup(api, c);
	case ROUTE_POLICIES:
		return reply_object_op(c, "policies", api->ops->policies, api->ops->userdata);
	case ROUTE_RELOAD:
		return do_reload(api, c, req, method, url);
	case ROUTE_NONE:
		break;
	}
	return MHD_NO;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct server *srv = cls;
	struct req *req = *con_cls;

	if (req && req->deferred) { /* only when MHD stops with it still suspended */
		for (struct req **p = &srv->api->deferred; *p; p = &(*p)->dnext)
			if (*p == req) {
				*p = req->dnext;
				break;
			}
	}
	free(req);
	*con_cls = NULL;
}

/* ---- event loop glue ------------------------------------------------------------------------- */

static void arm_timer(struct server *srv)
{
	struct api *api = srv->api;
	MHD_UNSIGNED_LONG_LONG ms;
	uint64_t now;

	/* At most 1 s between MHD_run() calls, also when MHD has no timeout: at its connection
	 * limit MHD takes the listening socket out of its epoll set and puts it back only at the
	 * start of a later MHD_run(); with nothing else to wake us (no connection left), the API
	 * would stop accepting for good (seen with >256 connections held, then closed). */
	if (MHD_get_timeout(srv->mhd, &ms) != MHD_YES || ms > 1000)
		ms = 1000;
	if (sd_event_now(api->event, CLOCK_MONOTONIC, &now) < 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	}
	if (ms > UINT64_MAX / 1000u - now)
		ms = (UINT64_MAX / 1000u - now);
	sd_event_source_set_time(srv->timer, now + ms * 1000u);
	sd_event_source_set_enabled(srv->timer, SD_EVENT_ONESHOT);
}

static void server_run(struct server *srv)
{
	struct api *api = srv->api;

	if (api->in_mhd)
		return;
	api->in_mhd = 1;
	MHD_run(srv->mhd);
	api->in_mhd = 0;
	arm_timer(srv);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	server_run(userdata);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	server_run(userdata);
	return 0;
}

/* After a publish burst: let the requests that waited run. */
static int on_defer(sd_event_source *s, void *userdata)
{
	struct api *api = userdata;

	while (api->deferred) {
		struct req *req = api->deferred;

		api->deferred = req->dnext;
		req->dnext = NULL;
		MHD_resume_connection(req->c);
	}
	server_run(&api->main);
	return 0;
}

/* MHD_OPTION_NOTIFY_CONNECTION: count the connections of each peer uid (SO_PEERCRED; Unix socket
 * only) and shut down those beyond API_CONNECTIONS_PER_UID at once, so one reader holding
 * connections (idle ones stay up to the 30 s timeout) cannot take all API_CONNECTIONS from the
 * others. uid 0 is not limited beyond the total. *socket_context: the counted uid (heap), or NULL. */
static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct server *srv = cls;
	const union MHD_ConnectionInfo *ci;
	struct uid_conns *u = NULL;
	struct ucred uc;
	socklen_t len = sizeof(uc);
	uid_t *held;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		held = *socket_context;
		if (held && srv->nonroot > 0 && --srv->nonroot < API_CONNECTIONS - API_CONNECTIONS_ROOT)
			srv->nonroot_reported = 0;
		for (size_t i = 0; held && i < srv->nuids; i++) {
			if (srv->uids[i].uid != *held)
				continue;
			if (--srv->uids[i].n == 0)
				srv->uids[i] = srv->uids[--srv->nuids];
			else if (srv->uids[i].n < API_CONNECTIONS_PER_UID)
				srv->uids[i].reported = 0;
			break;
		}
		free(held);
		*socket_context = NULL;
		return;
	}
	if (toe != MHD_CONNECTION_NOTIFY_STARTED || srv->metrics_only)
		return;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 || uc.uid == 0)
		return;
	for (size_t i = 0; i < srv->nuids && !u; i++)
		if (srv->uids[i].uid == uc.uid)
			u = &srv->uids[i];
	if (srv->nonroot >= API_CONNECTIONS - API_CONNECTIONS_ROOT) {
		(void)shutdown(ci->connect_fd, SHUT_RDWR);
		if (!srv->nonroot_reported && srv->api->ops->access_denied) {
			char msg[160];
			struct api_denial d = { .pid = uc.pid, .uid = uc.uid, .gid = uc.gid, .method = "connect",
						.path = srv->api->path ? srv->api->path : "(socket)", .role = "any",
						.reason = msg };

			snprintf(msg, sizeof(msg), "users other than root hold %d API connections, all but the %d "
				 "kept for root; further ones are closed until they hold fewer",
				 API_CONNECTIONS - API_CONNECTIONS_ROOT, API_CONNECTIONS_ROOT);
			srv->api->ops->access_denied(srv->api->ops->userdata, &d);
		}
		srv->nonroot_reported = 1;
		return;
	}
	if (u && u->n >= API_CONNECTIONS_PER_UID) {
		/* MHD reads EOF at once and closes it; the client sees the connection end. */
		(void)shutdown(ci->connect_fd, SHUT_RDWR);
		if (!u->reported && srv->api->ops->access_denied) {
			char msg[128];
			struct api_denial d = { .pid = uc.pid, .uid = uc.uid, .gid = uc.gid, .method = "connect",
						.path = srv->api->path ? srv->api->path : "(socket)", .role = "any",
						.reason = msg };

			snprintf(msg, sizeof(msg), "uid %u holds %d API connections, the limit per uid; "
				 "further ones are closed until it holds fewer", (unsigned)uc.uid,
				 API_CONNECTIONS_PER_UID);
			srv->api->ops->access_denied(srv->api->ops->userdata, &d);
		}
		u->reported = 1;
		return;
	}
	held = malloc(sizeof(*held));
	if (!held)
		return;
	if (!u) {
		struct uid_conns *nu = realloc(srv->uids, (srv->nuids + 1) * sizeof(*nu));

		if (!nu) {
			free(held);
			return;
		}
		srv->uids = nu;
		u = &srv->uids[srv->nuids++];
		*u = (struct uid_conns){ .uid = uc.uid };
	}
	u->n++;
	srv->nonroot++;
	*held = uc.uid;
	*socket_context = held;
}

static int server_start(struct api *api, struct server *srv, int fd, int metrics_only,
			const char *name)
{
	const union MHD_DaemonInfo *di;
	int r;

	srv->api = api;
	srv->metrics_only = metrics_only;
	srv->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
				    handle, srv, MHD_OPTION_LISTEN_SOCKET, fd,
				    MHD_OPTION_NOTIFY_COMPLETED, completed, srv,
				    MHD_OPTION_NOTIFY_CONNECTION, notify_connection, srv,
				    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				    MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONNECTIONS, MHD_OPTION_END);
	if (!srv->mhd) {
		close(fd); /* EBADF if MHD closed it already; nothing else runs in between */
		return -EIO;
	}
	di = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!di || di->epoll_fd < 0)
		return -EIO;
	r = sd_event_add_io(api->event, &srv->io, di->epoll_fd, EPOLLIN, on_io, srv);
	if (r < 0)
		return r;
	r = sd_event_source_set_description(srv->io, name);
	if (r < 0)
		return r;
	r = sd_event_add_time(api->event, &srv->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, srv);
	if (r < 0)
		return r;
	r = sd_event_source_set_description(srv->timer, "api-timer");
	if (r < 0)
		return r;
	arm_timer(srv);
	return 0;
}

/* ---- start / stop ---------------------------------------------------------------------------- */

static int bind_socket(const char *path, int *ret_fd, dev_t *ret_dev, ino_t *ret_ino)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST; /* never remove something that is not a socket */
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	if (chmod(path, 0660) < 0 || stat(path, &st) < 0)
		goto fail_unlink;
	if (listen(fd, SOMAXCONN) < 0)
		goto fail_unlink;
	*ret_fd = fd;
	*ret_dev = st.st_dev;
	*ret_ino = st.st_ino;
	return 0;
fail_unlink:
	r = -errno;
	unlink(path);
	close(fd);
	return r;
fail:
	r = -errno;
	close(fd);
	return r;
}

int api_start(sd_event *e, const char *socket_path, int listen_fd, const struct api_ops *ops,
	      struct api **ret)
{
	struct api *api;
	int mfd, r;

	if (!e || !ops || !ret || (listen_fd < 0 && !socket_path))
		return -EINVAL;
	api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	api->listen_fd = -1;
	api->admin_gid = (gid_t)-1;
	api->reader_gid = (gid_t)-1;
	api->ops = ops;
	api->event = sd_event_ref(e);

	if (listen_fd >= 0) {
		int fl = fcntl(listen_fd, F_GETFL);

		if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			r = -errno;
			goto fail;
		}
		api->listen_fd = listen_fd;
	} else {
		api->path = strdup(socket_path);
		if (!api->path) {
			r = -ENOMEM;
			goto fail;
		}
		r = bind_socket(socket_path, &api->listen_fd, &api->dev, &api->ino);
		if (r < 0) {
			free(api->path);
			api->path = NULL; /* nothing of ours to unlink */
			goto fail;
		}
	}
	r = sd_event_add_defer(e, &api->defer, on_defer, api);
	if (r < 0)
		goto fail;
	r = sd_event_source_set_enabled(api->defer, SD_EVENT_OFF);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_description(api->defer, "api-defer");

	/* MHD closes the socket it is given when it stops: give it a duplicate. */
	mfd = fcntl(api->listen_fd, F_DUPFD_CLOEXEC, 3);
	if (mfd < 0) {
		r = -errno;
		goto fail;
	}
	r = server_start(api, &api->main, mfd, 0, "api-mhd");
	if (r < 0)
		goto fail;
	*ret = api;
	return 0;
fail:
	if (listen_fd >= 0)
		api->listen_fd = -1; /* the caller's socket stays open on failure */
	api_free(api);
	return r;
}

static void server_stop(struct server *srv)
{
	sd_event_source_disable_unref(srv->io);
	sd_event_source_disable_unref(srv->timer);
	srv->io = srv->timer = NULL;
	if (srv->mhd)
		MHD_stop_daemon(srv->mhd); /* notifies every connection closed */
	srv->mhd = NULL;
	free(srv->uids);
	srv->uids = NULL;
	srv->nuids = 0;
}

struct api *api_free(struct api *api)
{
	struct stat st;

	if (!api)
		return NULL;
	/* MHD must not be stopped with suspended connections: resume them all; their readers
	 * and handlers see api->stopping. */
	api->stopping = 1;
	for (struct follower *f = api->followers; f; f = f->next)
		if (f->suspended) {
			f->suspended = 0;
			MHD_resume_connection(f->c);
		}
	while (api->deferred) {
		struct req *req = api->deferred;

		api->deferred = req->dnext;
		req->deferred = 0;
		MHD_resume_connection(req->c);
	}
	server_stop(&api->main);
	server_stop(&api->metrics);
	sd_event_source_disable_unref(api->defer);
	for (size_t i = 0; i < api->recent_n; i++)
		event_unref(api->recent[(api->recent_head + i) % API_EVENTS_RECENT]);
	free(api->prov);
	if (api->path && stat(api->path, &st) == 0 && st.st_dev == api->dev &&
	    st.st_ino == api->ino)
		unlink(api->path);
	if (api->listen_fd >= 0)
		close(api->listen_fd);
	free(api->path);
	sd_event_unref(api->event);
	free(api);
	return NULL;
}

int api_socket_chown(struct api *api, gid_t gid)
{
	if (!api->path)
		return -EBADF;
	if (chown(api->path, (uid_t)-1, gid) < 0)
		return -errno;
	return 0;
}

void api_set_admin_gid(struct api *api, gid_t gid)
{
	api->admin_gid = gid;
}

void api_set_reader_gid(struct api *api, gid_t gid)
{
	api->reader_gid = gid;
}

/* ---- publishing events ----------------------------------------------------------------------- */

static void refresh_provenance(struct api *api, uint64_t generation)
{
	json_object *o = NULL;
	const char *s;

	if (api->prov_valid && api->prov_gen == generation)
		return;
	free(api->prov);
	api->prov = NULL;
	api->prov_valid = 1;
	api->prov_gen = generation;
	if (!api->ops->provenance || api->ops->provenance(api->ops->userdata, &o) < 0 || !o)
		return;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
	api->prov = s ? strdup(s) : NULL;
	if (!api->prov)
		api->prov_valid = 0; /* try again with the next event */
	json_object_put(o);
}

void api_publish_event(struct api *api, const struct event_view *v)
{
	struct timespec rt, mt;
	struct api_event *ev;
	int64_t realtime_ns;
	int r;

	if (!api || !v || !v->ev || api->stopping)
		return;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	realtime_ns = (int64_t)v->ev->ts_ns + ((int64_t)rt.tv_sec - (int64_t)mt.tv_sec) *
							  1000000000 +
		      ((int64_t)rt.tv_nsec - (int64_t)mt.tv_nsec);
	refresh_provenance(api, v->generation);
	api->seq++;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return;
	r = render_event_json(v, api->seq, realtime_ns, api->prov, &ev->line, &ev->len);
	ev->row.cgroup = strdup(v->cgroup ? v->cgroup : "");
	ev->row.unit = strdup(v->unit ? v->unit : "");
	ev->row.policy = strdup(v->policy ? v->policy : "");
	ev->row.country = v->ev->country;
	ev->row.verdict = v->ev->verdict;
	ev->row.cgroup_id = v->ev->cgroup_id;
	ev->refs = 1; /* the recent ring's */
	if (r < 0 || !ev->row.cgroup || !ev->row.unit || !ev->row.policy) {
		event_unref(ev);
		return;
	}
	if (api->recent_n == API_EVENTS_RECENT) {
		event_unref(api->recent[api->recent_head]);
		api->recent[api->recent_head] = ev;
		api->recent_head = (api->recent_head + 1) % API_EVENTS_RECENT;
	} else {
		api->recent[(api->recent_head + api->recent_n) % API_EVENTS_RECENT] = ev;
		api->recent_n++;
	}
	api->published++;
	for (struct follower *f = api->followers; f; f = f->next)
		if (f->follow && event_match(f, ev))
			follower_offer(f, ev);
	/* In a burst (the daemon draining its ring buffer) write to the clients now and then, so
	 * a client that reads keeps up instead of overflowing its queue. */
	if (api->followers && ++api->since_flush >= API_EVENTS_FLUSH && !api->in_mhd) {
		api->since_flush = 0;
		api->in_flush = 1;
		server_run(&api->main);
		api->in_flush = 0;
	}
}

void api_events_stats(const struct api *api, uint64_t *ret_published, uint64_t *ret_missed)
{
	if (ret_published)
		*ret_published = api->published;
	if (ret_missed)
		*ret_missed = api->missed;
}

/* ---- /metrics on TCP ------------------------------------------------------------------------- */

static int parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *port;
	unsigned long p;
	char *end;
	size_t hl;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		port = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
		port = colon + 1;
	}
	if (!*port || *port < '0' || *port > '9')
		return -EINVAL;
	errno = 0;
	p = strtoul(port, &end, 10);
	if (errno || *end || p > 65535)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (s[0] != '[') {
		struct sockaddr_in *sin = (struct sockaddr_in *)ret;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		*ret_len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ret;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		*ret_len = sizeof(*sin6);
	}
	return 0;
}

int api_start_metrics(struct api *api, const char *listen_addr)
{
	struct sockaddr_storage ss, bound;
	socklen_t len = 0, blen = sizeof(bound);
	int fd, r, one = 1;

	if (!listen_addr || !listen_addr[0])
		return 0;
	if (api->metrics.mhd)
		return -EALREADY;
	r = parse_listen(listen_addr, &ss, &len);
	if (r < 0)
		return r;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &blen) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	api->metrics.port = ntohs(bound.ss_family == AF_INET ?
					  ((struct sockaddr_in *)&bound)->sin_port :
					  ((struct sockaddr_in6 *)&bound)->sin6_port);
	r = server_start(api, &api->metrics, fd, 1, "api-metrics");
	if (r < 0) {
		server_stop(&api->metrics);
		return r;
	}
	return 0;
}

int api_metrics_port(const struct api *api)
{
	return api->metrics.mhd ? api->metrics.port : -ENOTCONN;
}
