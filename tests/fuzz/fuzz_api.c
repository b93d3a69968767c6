// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_api.c - libFuzzer target for the API request handling (daemon/api.c behind
 * libmicrohttpd): the input is sent as raw bytes of one HTTP/1.1 connection (request line, query
 * string, headers, Content-Length or chunked body; several pipelined requests are fine) to a real
 * api_start() server on a Unix socket in a private directory, driven by an sd-event loop in this
 * thread, with fixed api_ops. The reply is read until the server closes the connection; every
 * reply must be an HTTP/1.x status line, and every JSON reply a complete JSON object.
 * Seeds: tests/fuzz/seeds/api/ (one request per file: every route, filters, bodies).
 * Built and run by `make fuzz` (tests/fuzz/fuzz.mk).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api.h"
#include "egress_abi.h"

static int op_status(void *userdata, json_object **ret, char **ret_err)
{
	*ret = json_tokener_parse("{\"version\":\"0\",\"events_lost\":0,\"events_seen\":0}");
	return *ret ? 0 : -ENOMEM;
}

static int op_counters(void *userdata, struct counter_rows *ret, char **ret_err)
{
	struct counter_row *v = calloc(2, sizeof(*v));

	if (!v)
		return -ENOMEM;
	v[0] = (struct counter_row){ .cgroup_id = 7, .country = 4 * 26 + 5, .proto = 6,
				     .verdict = EGRESS_VERDICT_DENY, .connections = 3 };
	v[0].cgroup = strdup("system.slice/pay.service");
	v[0].unit = strdup("pay.service");
	v[0].policy = strdup("eu");
	v[1] = (struct counter_row){ .proto = 17, .verdict = EGRESS_VERDICT_ALLOW, .overflow = 1,
				     .connections = 1 };
	v[1].cgroup = strdup("");
	v[1].unit = strdup("");
	v[1].policy = strdup("");
	ret->v = v;
	ret->n = 2;
	if (!v[0].cgroup || !v[0].unit || !v[0].policy || !v[1].cgroup || !v[1].unit ||
	    !v[1].policy) {
		counter_rows_free(ret);
		return -ENOMEM;
	}
	return 0;
}

static const struct policy_gauge gauges[] = { { "eu", 1 } };

static int op_metrics(void *userdata, struct metrics_snapshot *ret, char **ret_err)
{
	*ret = (struct metrics_snapshot){ .events_lost = 1, .policies = gauges, .npolicies = 1 };
	return 0;
}

static int op_lookup(void *userdata, const char *addr, const char *cgroup, json_object **ret,
		     char **ret_err)
{
	json_object *o;

	if (strcmp(addr, "1.2.3.4") != 0) {
		*ret_err = strdup("addr: not an IPv4 or IPv6 address");
		return -EINVAL;
	}
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "addr", json_object_new_string(addr));
	json_object_object_add(o, "cgroup", cgroup ? json_object_new_string(cgroup) : NULL);
	*ret = o;
	return 0;
}

static int op_policies(void *userdata, json_object **ret, char **ret_err)
{
	*ret = json_tokener_parse("{\"policies\":[]}");
	return *ret ? 0 : -ENOMEM;
}

static int op_reload(void *userdata, json_object **ret, char **ret_err)
{
	*ret = json_tokener_parse("{\"ok\":true,\"generation\":1,\"errors\":[]}");
	return *ret ? 0 : -ENOMEM;
}

static const struct api_ops ops = {
	.status = op_status,
	.counters = op_counters,
	.metrics = op_metrics,
	.lookup = op_lookup,
	.policies = op_policies,
	.reload = op_reload,
};

static sd_event *event;
static struct api *api;
static char dir[64], sock_path[128];

static void cleanup(void)
{
	api = api_free(api);
	event = sd_event_unref(event);
	if (dir[0])
		rmdir(dir);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fuzz_api.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/api.sock", dir);
	if (sd_event_new(&event) < 0 || api_start(event, sock_path, -1, &ops, &api) < 0)
		abort();
	atexit(cleanup);
}

/* The reply bytes: every response starts with "HTTP/1." and a 3-digit status; a JSON body (the
 * text after the blank line, when Content-Type is application/json) parses as an object. Only
 * the first response is checked in depth (pipelined replies follow it). */
static void check_reply(const char *r, size_t n)
{
	const char *body, *ct;

	if (n == 0)
		return; /* the server may close a connection it cannot parse without replying */
	if (n < 12 || memcmp(r, "HTTP/1.", 7) != 0 || r[8] != ' ' || r[9] < '1' || r[9] > '5')
		abort();
	body = memmem(r, n, "\r\n\r\n", 4);
	if (!body)
		return; /* cut short by a close: nothing to check */
	body += 4;
	ct = memmem(r, (size_t)(body - r), "Content-Type: application/json", 30);
	if (ct && (size_t)(body - r) < n) {
		json_tokener *tok = json_tokener_new();
		json_object *o;

		if (!tok)
			abort();
		o = json_tokener_parse_ex(tok, body, (int)(n - (size_t)(body - r)));
		if (o && !json_object_is_type(o, json_type_object))
			abort();
		json_object_put(o);
		json_tokener_free(tok);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static char reply[1 << 20];
	size_t sent = 0, got = 0;
	int fd, done = 0, wr_closed = 0;

	if (!api)
		setup();
	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		abort();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	/* Turns of the loop until the server closes the connection, or, once all input is sent, 16
	 * turns in a row without progress: a request the server keeps waiting on (an incomplete
	 * request line, a body shorter than its Content-Length) ends there (MHD would close it after
	 * its 30 s connection timeout). MHD answers within the turn that reads a request. */
	for (int turn = 0, idle = 0; turn < 100000 && !done && idle < 16; turn++) {
		int progress = 0;

		if (sent < size) {
			ssize_t k = send(fd, data + sent, size - sent, MSG_NOSIGNAL);

			if (k > 0) {
				sent += (size_t)k;
				progress = 1;
			} else if (k < 0 && errno != EAGAIN) {
				sent = size; /* the server closed early (413 etc.) */
			}
		}
		if (sent == size && !wr_closed) {
			shutdown(fd, SHUT_WR);
			wr_closed = 1;
		}
		if (sd_event_run(event, 0) < 0)
			abort();
		for (;;) {
			ssize_t k = recv(fd, reply + got, sizeof(reply) - got, 0);

			if (k > 0) {
				got += (size_t)k;
				progress = 1;
				if (got == sizeof(reply))
					got = 0; /* keep reading; only a prefix is checked */
				continue;
			}
			if (k == 0 || (errno != EAGAIN && errno != EINTR))
				done = 1;
			break;
		}
		idle = progress || !wr_closed ? 0 : idle + 1;
	}
	close(fd);
	/* let the server notice the close and free the connection */
	for (int i = 0; i < 4; i++)
		sd_event_run(event, 0);
	check_reply(reply, got);
	return 0;
}
