/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "api.h"

#include <errno.h>
#include <fcntl.h>
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

struct api {
	sd_event *event;
	sd_event_source *io; /* MHD's epoll fd */
	sd_event_source *timer; /* MHD_get_timeout() */
	struct MHD_Daemon *mhd;
	const struct api_ops *ops;
	int listen_fd; /* ours; MHD has a dup of it */
	char *path; /* socket file we bound, or NULL for an inherited socket */
	dev_t dev;
	ino_t ino;
	gid_t admin_gid;
};

/* Per request state (MHD con_cls). */
struct req {
	size_t body; /* bytes of body received */
	int too_large;
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

static enum MHD_Result do_reload(struct api *api, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;
	struct api_peer peer = { 0 };
	int r, admin;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				   "reload: cannot get the connection socket");
	r = api_peer_read(ci->connect_fd, &peer);
	if (r < 0)
		return reply_error(c, MHD_HTTP_FORBIDDEN, NULL,
				   "reload: cannot read peer credentials: %s", strerror(-r));
	admin = api_peer_is_admin(&peer, api->admin_gid);
	api_peer_clear(&peer);
	if (!admin) {
		if (api->admin_gid == (gid_t)-1)
			return reply_error(c, MHD_HTTP_FORBIDDEN, NULL,
					   "reload: permission denied (needs uid 0)");
		return reply_error(c, MHD_HTTP_FORBIDDEN, NULL,
				   "reload: permission denied (needs uid 0 or group %u)",
				   (unsigned)api->admin_gid);
	}
	return reply_object_op(c, "reload", api->ops->reload, api->ops->userdata);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct api *api = cls;
	struct req *req = *con_cls;
	enum route route = ROUTE_NONE;
	int post = 0, is_get, is_post;

	if (!req) {
		const char *cl;

		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
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

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(url, routes[i].path) == 0) {
			route = routes[i].route;
			post = routes[i].post;
			break;
		}
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
		return reply_error(c, MHD_HTTP_NOT_IMPLEMENTED, NULL,
				   "events: not supported by this version of egressd");
	case ROUTE_LOOKUP:
		return do_lookup(api, c);
	case ROUTE_POLICIES:
		return reply_object_op(c, "policies", api->ops->policies, api->ops->userdata);
	case ROUTE_RELOAD:
		return do_reload(api, c);
	case ROUTE_NONE:
		break;
	}
	return MHD_NO;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	free(*con_cls);
	*con_cls = NULL;
}

/* ---- event loop glue ------------------------------------------------------------------------- */

static void arm_timer(struct api *api)
{
	MHD_UNSIGNED_LONG_LONG ms;
	uint64_t now;

	if (MHD_get_timeout(api->mhd, &ms) != MHD_YES) {
		sd_event_source_set_enabled(api->timer, SD_EVENT_OFF);
		return;
	}
	if (sd_event_now(api->event, CLOCK_MONOTONIC, &now) < 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	}
	if (ms > UINT64_MAX / 1000u - now)
		ms = (UINT64_MAX / 1000u - now);
	sd_event_source_set_time(api->timer, now + ms * 1000u);
	sd_event_source_set_enabled(api->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct api *api = userdata;

	MHD_run(api->mhd);
	arm_timer(api);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct api *api = userdata;

	MHD_run(api->mhd);
	arm_timer(api);
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
	const union MHD_DaemonInfo *di;
	struct api *api;
	int mfd, r;

	if (!e || !ops || !ret || (listen_fd < 0 && !socket_path))
		return -EINVAL;
	api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	api->listen_fd = -1;
	api->admin_gid = (gid_t)-1;
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

	/* MHD closes the socket it is given when it stops: give it a duplicate. */
	mfd = fcntl(api->listen_fd, F_DUPFD_CLOEXEC, 3);
	if (mfd < 0) {
		r = -errno;
		goto fail;
	}
	api->mhd = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, handle, api,
				    MHD_OPTION_LISTEN_SOCKET, mfd, MHD_OPTION_NOTIFY_COMPLETED,
				    completed, api, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				    MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_END);
	if (!api->mhd) {
		close(mfd); /* EBADF if MHD closed it already; nothing else runs in between */
		r = -EIO;
		goto fail;
	}
	di = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!di || di->epoll_fd < 0) {
		r = -EIO;
		goto fail;
	}
	r = sd_event_add_io(e, &api->io, di->epoll_fd, EPOLLIN, on_io, api);
	if (r < 0)
		goto fail;
	r = sd_event_source_set_description(api->io, "api-mhd");
	if (r < 0)
		goto fail;
	r = sd_event_add_time(e, &api->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, api);
	if (r < 0)
		goto fail;
	r = sd_event_source_set_description(api->timer, "api-timer");
	if (r < 0)
		goto fail;
	arm_timer(api);
	*ret = api;
	return 0;
fail:
	if (listen_fd >= 0)
		api->listen_fd = -1; /* the caller's socket stays open on failure */
	api_free(api);
	return r;
}

struct api *api_free(struct api *api)
{
	struct stat st;

	if (!api)
		return NULL;
	sd_event_source_disable_unref(api->io);
	sd_event_source_disable_unref(api->timer);
	if (api->mhd)
		MHD_stop_daemon(api->mhd);
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
