/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * api.h - the HTTP/1.1 API on a Unix socket (libmicrohttpd in external epoll mode, driven by an
 * sd-event loop). Routes and reply schemas: docs/api.md. Everything runs on the event loop thread.
 */
#ifndef EGRESSD_API_H
#define EGRESSD_API_H

#include <sys/types.h>

#include <systemd/sd-event.h>

#include "model.h"

struct api;

/* Largest request body accepted; a larger one gets 413. */
#define API_MAX_BODY (64 * 1024)

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

/* Members of gid (primary or supplementary group of the peer process, from SO_PEERCRED and
 * SO_PEERGROUPS) may POST /v1/reload besides uid 0. (gid_t)-1 = nobody but root (the default). */
void api_set_admin_gid(struct api *api, gid_t gid);

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
 * gid (gid_t)-1 matches no group (only root passes). */
int api_peer_is_admin(const struct api_peer *peer, gid_t gid);

#endif
