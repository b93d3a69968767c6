/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * api.h - the HTTP/1.1 API on a Unix socket (libmicrohttpd in external epoll mode, driven by an
 * sd-event loop). Routes and reply schemas: docs/api.md. Everything runs on the event loop thread.
 */
#ifndef EGRESSD_API_H
#define EGRESSD_API_H

#include <sys/types.h>

#include <systemd/sd-event.h>

#include "events.h"
#include "model.h"

struct api;

/* Open connections served at once (per listening socket). On the Unix socket, peers other than
 * uid 0 may hold at most API_CONNECTIONS_PER_UID each and API_CONNECTIONS - API_CONNECTIONS_ROOT
 * together, so root always finds a free one; their further connections are closed at once
 * (reported once per episode through ops->access_denied, method "connect"). */
#define API_CONNECTIONS 256
#define API_CONNECTIONS_PER_UID 64
#define API_CONNECTIONS_ROOT 16

/* Largest request body accepted; a larger one gets 413. */
#define API_MAX_BODY (64 * 1024)

/* Events GET /v1/events replays (the most recent ones the API keeps). */
#define API_EVENTS_RECENT 1024
/* Events queued per /v1/events client; further events are dropped for that client only and
 * reported to it as {"missed":N} once it reads again. */
#define API_EVENTS_QUEUE 4096
/* While api_publish_event() is called in a burst, queued events are written to the clients after
 * every this many events (requests that arrive meanwhile wait until the burst ends). */
#define API_EVENTS_FLUSH 32

/* Start serving on socket_path. listen_fd >= 0: use that listening AF_UNIX stream socket (socket
 * activation; made non-blocking here, never unlinked, closed by api_free()); -1: unlink a stale
 * file at socket_path, bind a new socket there, chmod it 0660 and listen. ops (and what
 * ops->userdata points to) must outlive the api. POST /v1/reload is allowed to uid 0 only until
 * api_set_admin_gid() is called. Returns 0 and *ret, or a negative errno (-ENAMETOOLONG: path too
 * long for sun_path; -EEXIST: socket_path exists and is not a socket; -EINVAL: neither a path nor
 * an fd; errors of socket/bind/chmod/listen; -EIO if libmicrohttpd refuses to start; sd-event
 * errors). On failure an inherited listen_fd stays open.
 * Ownership of what the ops return: the api frees counter rows with counter_rows_free(), JSON
 * objects with json_object_put() and *ret_err with free(); it renders each reply at once, so the
 * pointers a metrics() callback puts in the snapshot (policies and their names) only need to stay
 * valid until that request is answered, on the same event loop iteration; the api frees none. */
int api_start(sd_event *e, const char *socket_path, int listen_fd, const struct api_ops *ops,
	      struct api **ret);

/* Stop serving: close all connections and the listening socket, remove the socket file if
 * api_start() bound it and it is still ours (same inode). Returns NULL; api may be NULL. */
struct api *api_free(struct api *api);

/* Give group gid (ReaderGroup) the socket file: chown(path, -1, gid). The mode stays 0660. Only for
 * sockets api_start() bound itself; returns 0, -EBADF for an inherited socket (set its group in the
 * .socket unit), or -errno of chown. */
int api_socket_chown(struct api *api, gid_t gid);

/* Roles (docs/api.md "Access"), decided for every request from the credentials of the socket
 * peer: admin = uid 0 or member of AdminGroup (reads everything, may POST); reader = member of
 * ReaderGroup (GET/HEAD only); anyone else gets 403 on every path, and ops->access_denied is told.
 * "Member of G": G is the peer's primary gid (SO_PEERCRED), one of its supplementary groups
 * (SO_PEERGROUPS), or one of the groups of its uid in the group database (getgrouplist(3) of the
 * uid's passwd entry; only consulted when the socket credentials do not already grant the role). */

/* Members of gid may POST /v1/reload (and read) besides uid 0. (gid_t)-1 = nobody but root (the
 * default). */
void api_set_admin_gid(struct api *api, gid_t gid);

/* Members of gid (ReaderGroup) may read (GET/HEAD). (gid_t)-1 (the default) = no readers: only
 * root and AdminGroup members get answers. */
void api_set_reader_gid(struct api *api, gid_t gid);

/* Hand one event (as read from the kernel ring buffer, with names resolved) to the API: it is
 * rendered once (render_event_json(), with the provenance of ops->provenance for v->generation and
 * the time converted from CLOCK_MONOTONIC to the realtime clock now), kept in the ring of the last
 * API_EVENTS_RECENT events, and queued for every /v1/events?follow=1 client whose filter it passes.
 * Never blocks: a client whose queue is full misses it (counted). Call on the event loop thread,
 * for every event, in order. Events that cannot be rendered (out of memory) are dropped and
 * counted in api_events_stats(). */
void api_publish_event(struct api *api, const struct event_view *v);

/* Totals since api_start: events published, and events dropped for clients whose queue was full
 * (summed over clients). Either pointer may be NULL. */
void api_events_stats(const struct api *api, uint64_t *ret_published, uint64_t *ret_missed);

/* Serve GET /metrics (nothing else: other paths 404, other methods 405) on a TCP listener for
 * Prometheus, without roles: bind it to loopback or a trusted network. listen is "ADDR:PORT"
 * (IPv4 "127.0.0.1:9419", IPv6 "[::1]:9419"; port 0 picks a free port, see api_metrics_port()).
 * NULL or "" does nothing and returns 0. Call at most once, after api_start(). Returns 0, or
 * -EINVAL (malformed listen), -EALREADY (already serving), errors of socket/bind/listen, -EIO if
 * libmicrohttpd refuses to start, sd-event errors. */
int api_start_metrics(struct api *api, const char *listen);

/* The TCP port of the /metrics listener (host order), or -ENOTCONN if there is none. */
int api_metrics_port(const struct api *api);

/* Credentials of a connected peer, read from the socket (never from the request). */
struct api_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid; /* primary group */
	gid_t *groups; /* supplementary groups (SO_PEERGROUPS), heap */
	size_t ngroups;
};

/* Read the credentials of the peer of connected socket fd: SO_PEERCRED, then SO_PEERGROUPS (Linux
 * >= 4.13; if the kernel lacks it the peer has no supplementary groups). Returns 0 and fills *ret
 * (release with api_peer_clear()), or -errno. */
int api_peer_read(int fd, struct api_peer *ret);

/* Free the groups of peer; it is left with none. */
void api_peer_clear(struct api_peer *peer);

/* 1 if peer is uid 0 or has gid as its primary or a supplementary group, else 0.
 * gid (gid_t)-1 matches no group (only root passes). Only the socket credentials are used. */
int api_peer_is_admin(const struct api_peer *peer, gid_t gid);

enum api_role {
	API_ROLE_NONE = 0,
	API_ROLE_READER = 1,
	API_ROLE_ADMIN = 2,
};

/* The role of peer (see "Roles" above): API_ROLE_ADMIN if uid 0 or a member of admin_gid,
 * API_ROLE_READER if a member of reader_gid, else API_ROLE_NONE. (gid_t)-1 matches nobody.
 * Consults the group database (getpwuid_r, getgrouplist) for the uid's groups when the socket
 * credentials alone give no role or not the highest one. */
enum api_role api_peer_role(const struct api_peer *peer, gid_t reader_gid, gid_t admin_gid);

/* Name of a role: "none", "reader", "admin". */
const char *api_role_name(enum api_role role);

#endif
