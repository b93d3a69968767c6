/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tests of daemon/api.c: the real API (api_start) on a Unix socket in a temporary directory, driven
 * by an sd-event loop on a server thread, with fake api_ops returning fixed data; requests with
 * libcurl (CURLOPT_UNIX_SOCKET_PATH, as `curl --unix-socket`), with raw sockets from processes with
 * other credentials (403 path), and with the built egressctl binary end to end. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "api.h"
#include "egress_abi.h"
#include "render.h"

#define READER_GID 4242 /* group owning the socket (ReaderGroup) */
#define ADMIN_GID 4343 /* AdminGroup */
#define NOBODY 65534

static char tmpdir[64];
static char sock_path[PATH_MAX];
static char ctl_path[PATH_MAX]; /* built egressctl, or "" */

/* ---- fake daemon core ------------------------------------------------------------------------ */

static atomic_int reloads; /* reload() calls */
static atomic_int reload_fails; /* 1: reload() reports errors */
static atomic_int status_busy; /* 1: status() fails with -EBUSY */

#define ID(a, b) ((uint16_t)(((a) - 'A') * 26 + ((b) - 'A') + 1))

static const struct counter_row fake_rows[] = {
	{ 10, "system.slice/pay.service", "pay.service", "eu-residency", ID('D', 'E'), 6,
	  EGRESS_VERDICT_ALLOW, 0, 5, 50, 5000 },
	{ 10, "system.slice/pay.service", "pay.service", "eu-residency", ID('U', 'S'), 6,
	  EGRESS_VERDICT_DENY, 0, 2, 0, 0 },
	{ 12, "system.slice/batch.service", "batch.service", "monitor-all", EGRESS_COUNTRY_UNKNOWN,
	  17, EGRESS_VERDICT_WOULD_DENY, 0, 3, 4, 400 },
	{ 0, "", "", "", 0, 6, EGRESS_VERDICT_ALLOW, 1, 7, 0, 0 },
};
#define NROWS (sizeof(fake_rows) / sizeof(fake_rows[0]))

static const struct policy_gauge fake_gauges[] = { { "eu-residency", 1 }, { "monitor-all", 0 } };

static int fake_status(void *userdata, json_object **ret, char **ret_err)
{
	if (atomic_load(&status_busy)) {
		*ret_err = strdup("status: busy reloading");
		return -EBUSY;
	}
	*ret = json_tokener_parse(
		"{\"version\":\"1.2.3\",\"uptime_s\":3725,\"generation\":7,\"cgroup_mount\":\"/sys/fs/cgroup\","
		"\"hooks\":[\"connect4\",\"connect6\"],"
		"\"geo\":{\"sources\":[{\"path\":\"/usr/share/egressd/geo/country.csv.gz\",\"format\":\"csv\","
		"\"sha256\":\"ab12\",\"build_epoch\":0,\"rows\":1000}],"
		"\"prefixes\":{\"ipv4\":300,\"ipv6\":40},\"ranges\":{\"ipv4\":250,\"ipv6\":30}},"
		"\"policies\":[{\"name\":\"eu-residency\",\"mode\":\"enforce\",\"enforcing\":true,"
		"\"cgroups\":[\"system.slice/pay.service\"]}],"
		"\"events_lost\":1,\"counter_overflow\":2,\"reload_failures\":0}");
	return *ret ? 0 : -ENOMEM;
}

static int fake_counters(void *userdata, struct counter_rows *ret, char **ret_err)
{
	struct counter_row *v = calloc(NROWS, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < NROWS; i++) {
		v[i] = fake_rows[i];
		v[i].cgroup = strdup(fake_rows[i].cgroup);
		v[i].unit = strdup(fake_rows[i].unit);
		v[i].policy = strdup(fake_rows[i].policy);
	}
	ret->v = v;
	ret->n = NROWS;
	return 0;
}

static int fake_metrics(void *userdata, struct metrics_snapshot *ret, char **ret_err)
{
	*ret = (struct metrics_snapshot){
		.events_lost = 1,
		.counter_overflow = 2,
		.geo_prefixes4 = 300,
		.geo_prefixes6 = 40,
		.policy_generation = 7,
		.reload_failures = 0,
		.policies = fake_gauges,
		.npolicies = 2,
	};
	return 0;
}

static int fake_lookup(void *userdata, const char *addr, const char *cgroup, json_object **ret,
		       char **ret_err)
{
	json_object *o;

	if (strcmp(addr, "1.2.3.4") != 0 && strcmp(addr, "2001:db8::1") != 0) {
		*ret_err = strdup("addr: not an IPv4 or IPv6 address");
		return -EINVAL;
	}
	o = json_object_new_object();
	json_object_object_add(o, "addr", json_object_new_string(addr));
	json_object_object_add(o, "country", json_object_new_string("DE"));
	json_object_object_add(o, "prefix", json_object_new_string("1.2.3.0/24"));
	json_object_object_add(o, "cgroup", cgroup ? json_object_new_string(cgroup) : NULL);
	json_object_object_add(o, "verdict", json_object_new_string(cgroup ? "deny" : "allow"));
	*ret = o;
	return 0;
}

static int fake_policies(void *userdata, json_object **ret, char **ret_err)
{
	*ret = json_tokener_parse(
		"{\"policies\":[{\"name\":\"eu-residency\",\"mode\":\"enforce\","
		"\"enforcing\":true,\"cgroups\":[\"system.slice/pay.service\"]},"
		"{\"name\":\"monitor-all\",\"mode\":\"monitor\",\"enforcing\":false,"
		"\"cgroups\":[]}]}");
	return 0;
}

static int fake_reload(void *userdata, json_object **ret, char **ret_err)
{
	atomic_fetch_add(&reloads, 1);
	if (atomic_load(&reload_fails))
		*ret = json_tokener_parse(
			"{\"ok\":false,\"generation\":7,\"errors\":"
			"[\"/etc/egressd/policies.d/a.conf:3: unknown key 'Foo'\"]}");
	else
		*ret = json_tokener_parse("{\"ok\":true,\"generation\":8,\"errors\":[]}");
	return 0;
}

static const struct api_ops fake_ops = {
	.status = fake_status,
	.counters = fake_counters,
	.metrics = fake_metrics,
	.lookup = fake_lookup,
	.policies = fake_policies,
	.reload = fake_reload,
};

/* ---- server thread --------------------------------------------------------------------------- */

struct server {
	pthread_t thread;
	sem_t ready;
	int start_r; /* result of api_start */
	int stop_fd; /* eventfd: write to stop the loop */
	const char *path;
	int listen_fd;
};

static int on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void *server_main(void *p)
{
	struct server *srv = p;
	sd_event *e = NULL;
	struct api *api = NULL;
	int r;

	r = sd_event_new(&e);
	if (r >= 0)
		r = sd_event_add_io(e, NULL, srv->stop_fd, EPOLLIN, on_stop, NULL);
	if (r >= 0)
		r = api_start(e, srv->path, srv->listen_fd, &fake_ops, &api);
	if (r >= 0 && srv->listen_fd < 0)
		r = api_socket_chown(api, READER_GID);
	if (r >= 0)
		api_set_admin_gid(api, ADMIN_GID);
	srv->start_r = r;
	sem_post(&srv->ready);
	if (r >= 0)
		sd_event_loop(e);
	api_free(api);
	sd_event_unref(e);
	return NULL;
}

static int server_start(struct server *srv, const char *path, int listen_fd)
{
	srv->path = path;
	srv->listen_fd = listen_fd;
	srv->stop_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(srv->stop_fd >= 0);
	assert_int_equal(sem_init(&srv->ready, 0, 0), 0);
	assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
	while (sem_wait(&srv->ready) < 0 && errno == EINTR)
		;
	return srv->start_r;
}

static void server_stop(struct server *srv)
{
	uint64_t one = 1;

	assert_int_equal(write(srv->stop_fd, &one, sizeof(one)), sizeof(one));
	assert_int_equal(pthread_join(srv->thread, NULL), 0);
	close(srv->stop_fd);
	sem_destroy(&srv->ready);
}

static struct server main_srv;

/* ---- HTTP client ----------------------------------------------------------------------------- */

struct resp {
	long status;
	char *body;
	size_t len;
	char ctype[128];
	char allow[256];
};

static size_t on_body(char *d, size_t sz, size_t n, void *u)
{
	struct resp *r = u;
	char *p = realloc(r->body, r->len + sz * n + 1);

	if (!p)
		return 0;
	memcpy(p + r->len, d, sz * n);
	r->len += sz * n;
	p[r->len] = '\0';
	r->body = p;
	return sz * n;
}

static size_t on_header(char *d, size_t sz, size_t n, void *u)
{
	struct resp *r = u;
	size_t len = sz * n;
	char line[256];

	if (len >= sizeof(line))
		return len;
	memcpy(line, d, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncasecmp(line, "Allow: ", 7) == 0)
		snprintf(r->allow, sizeof(r->allow), "%s", line + 7);
	return len;
}

struct upload {
	size_t left;
};

static size_t on_read(char *buf, size_t sz, size_t n, void *u)
{
	struct upload *up = u;
	size_t k = sz * n < up->left ? sz * n : up->left;

	memset(buf, 'x', k);
	up->left -= k;
	return k;
}

/* body_len > 0: POST that many bytes; chunked: without Content-Length. */
static struct resp req_full(const char *method, const char *path, size_t body_len, int chunked,
			    const char *sock)
{
	struct resp r = { 0 };
	struct upload up = { body_len };
	struct curl_slist *hdrs = NULL;
	char url[512], *ct = NULL;
	CURL *c = curl_easy_init();
	CURLcode cr;

	assert_non_null(c);
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body_len > 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &up);
		if (chunked)
			hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
		else
			curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
		hdrs = curl_slist_append(hdrs, "Expect:");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	cr = curl_easy_perform(c);
	if (cr != CURLE_OK)
		fail_msg("curl %s %s: %s", method, path, curl_easy_strerror(cr));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(r.ctype, sizeof(r.ctype), "%s", ct ? ct : "");
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	if (!r.body)
		r.body = strdup("");
	return r;
}

static struct resp req(const char *method, const char *path)
{
	return req_full(method, path, 0, 0, sock_path);
}

#define assert_reply(r, code, text)                                 \
	do {                                                        \
		assert_int_equal((r).status, (code));               \
		assert_string_equal((r).body, text "\n");           \
		assert_string_equal((r).ctype, "application/json"); \
		free((r).body);                                     \
	} while (0)

/* ---- fixture --------------------------------------------------------------------------------- */

static int setup(void **state)
{
	char self[PATH_MAX];
	ssize_t n;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/egressd-test-api-XXXXXX");
	if (!mkdtemp(tmpdir) || chmod(tmpdir, 0711) < 0)
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/egressd.sock", tmpdir);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	if (server_start(&main_srv, sock_path, -1) < 0)
		return -1;
	/* build/tests/test_api -> build/egressctl */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		snprintf(ctl_path, sizeof(ctl_path), "%s/../egressctl", dirname(self));
		if (access(ctl_path, X_OK) < 0)
			ctl_path[0] = '\0';
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	server_stop(&main_srv);
	curl_global_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_socket_file(void **state)
{
	struct stat st;

	assert_int_equal(lstat(sock_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(st.st_gid, READER_GID);
}

static void test_status(void **state)
{
	struct resp r = req("GET", "/v1/status");

	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "application/json");
	assert_string_equal(
		r.body,
		"{\"version\":\"1.2.3\",\"uptime_s\":3725,\"generation\":7,\"cgroup_mount\":\"/sys/fs/cgroup\","
		"\"hooks\":[\"connect4\",\"connect6\"],"
		"\"geo\":{\"sources\":[{\"path\":\"/usr/share/egressd/geo/country.csv.gz\",\"format\":\"csv\","
		"\"sha256\":\"ab12\",\"build_epoch\":0,\"rows\":1000}],"
		"\"prefixes\":{\"ipv4\":300,\"ipv6\":40},\"ranges\":{\"ipv4\":250,\"ipv6\":30}},"
		"\"policies\":[{\"name\":\"eu-residency\",\"mode\":\"enforce\",\"enforcing\":true,"
		"\"cgroups\":[\"system.slice/pay.service\"]}],"
		"\"events_lost\":1,\"counter_overflow\":2,\"reload_failures\":0}\n");
	free(r.body);

	r = req("HEAD", "/v1/status");
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "");
	free(r.body);
}

static void test_status_error(void **state)
{
	struct resp r;

	atomic_store(&status_busy, 1);
	r = req("GET", "/v1/status");
	atomic_store(&status_busy, 0);
	assert_reply(r, 503, "{\"error\":\"status: busy reloading\"}");
}

#define ROW_DE                                                                                            \
	"{\"cgroup\":\"system.slice/pay.service\",\"unit\":\"pay.service\",\"policy\":\"eu-residency\","  \
	"\"country\":\"DE\",\"protocol\":\"tcp\",\"verdict\":\"allow\",\"connections\":5,\"packets\":50," \
	"\"bytes\":5000}"
#define ROW_US                                                                                           \
	"{\"cgroup\":\"system.slice/pay.service\",\"unit\":\"pay.service\",\"policy\":\"eu-residency\"," \
	"\"country\":\"US\",\"protocol\":\"tcp\",\"verdict\":\"deny\",\"connections\":2,\"packets\":0,"  \
	"\"bytes\":0}"
#define ROW_BATCH                                                                                           \
	"{\"cgroup\":\"system.slice/batch.service\",\"unit\":\"batch.service\",\"policy\":\"monitor-all\"," \
	"\"country\":\"unknown\",\"protocol\":\"udp\",\"verdict\":\"would_deny\",\"connections\":3,"        \
	"\"packets\":4,\"bytes\":400}"
#define ROW_OTHER                                                                                    \
	"{\"cgroup\":\"\",\"unit\":\"\",\"policy\":\"\",\"country\":\"other\",\"protocol\":\"tcp\"," \
	"\"verdict\":\"allow\",\"connections\":7,\"packets\":0,\"bytes\":0}"

static void test_counters(void **state)
{
	struct resp r;

	r = req("GET", "/v1/counters");
	assert_reply(r, 200, "{\"rows\":[" ROW_OTHER "," ROW_DE "," ROW_US "," ROW_BATCH "]}");
	r = req("GET", "/v1/counters?policy=eu-residency&verdict=deny");
	assert_reply(r, 200, "{\"rows\":[" ROW_US "]}");
	r = req("GET", "/v1/counters?cgroup=system.slice%2Fpay.service&country=de");
	assert_reply(r, 200, "{\"rows\":[" ROW_DE "]}");
	r = req("GET", "/v1/counters?cgroup=batch.service");
	assert_reply(r, 200, "{\"rows\":[" ROW_BATCH "]}");
	r = req("GET", "/v1/counters?country=other");
	assert_reply(r, 200, "{\"rows\":[" ROW_OTHER "]}");
	r = req("GET", "/v1/counters?country=unknown");
	assert_reply(r, 200, "{\"rows\":[" ROW_BATCH "]}");
	r = req("GET", "/v1/counters?policy=nope");
	assert_reply(r, 200, "{\"rows\":[]}");
}

static void test_counters_bad_query(void **state)
{
	struct resp r;

	r = req("GET", "/v1/counters?foo=1");
	assert_reply(r, 400, "{\"error\":\"unknown query parameter 'foo'\"}");
	r = req("GET", "/v1/counters?verdict=blocked");
	assert_reply(r, 400, "{\"error\":\"verdict: must be allow, deny, would_deny or local\"}");
	r = req("GET", "/v1/counters?country=DEU");
	assert_reply(r, 400,
		     "{\"error\":\"country: must be a two-letter code, unknown or other\"}");
	r = req("GET", "/v1/counters?verdict");
	assert_reply(r, 400, "{\"error\":\"query parameter 'verdict' needs a value\"}");
	r = req("GET", "/v1/counters?policy=");
	assert_reply(r, 400, "{\"error\":\"policy: must not be empty\"}");
	r = req("GET", "/v1/counters?bad%0Aname=1"); /* the error stays one line */
	assert_reply(r, 400, "{\"error\":\"unknown query parameter 'bad name'\"}");
}

static void test_metrics(void **state)
{
	struct counter_rows rows = { (struct counter_row *)fake_rows, NROWS };
	struct metrics_snapshot snap;
	struct resp r = req("GET", "/metrics");
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
	fake_metrics(NULL, &snap, NULL);
	snap.rows = &rows;
	assert_int_equal(render_metrics(&snap, &text, &len), 0);
	assert_int_equal(r.len, len);
	assert_string_equal(r.body, text);
	assert_non_null(strstr(r.body, "\negressd_connections_total{policy=\"eu-residency\","
				       "cgroup=\"system.slice/pay.service\",unit=\"pay.service\","
				       "country=\"US\",protocol=\"tcp\",verdict=\"deny\"} 2\n"));
	assert_non_null(strstr(r.body, "\negressd_policy_generation 7\n"));
	assert_non_null(strstr(r.body, "\negressd_enforcing{policy=\"eu-residency\"} 1\n"));
	free(text);
	free(r.body);
}

static void test_lookup(void **state)
{
	struct resp r;

	r = req("GET", "/v1/lookup?addr=1.2.3.4");
	assert_reply(r, 200,
		     "{\"addr\":\"1.2.3.4\",\"country\":\"DE\",\"prefix\":\"1.2.3.0/24\","
		     "\"cgroup\":null,\"verdict\":\"allow\"}");
	r = req("GET", "/v1/lookup?addr=2001%3Adb8%3A%3A1&cgroup=system.slice%2Fpay.service");
	assert_reply(r, 200,
		     "{\"addr\":\"2001:db8::1\",\"country\":\"DE\",\"prefix\":\"1.2.3.0/24\","
		     "\"cgroup\":\"system.slice/pay.service\",\"verdict\":\"deny\"}");
	r = req("GET", "/v1/lookup");
	assert_reply(r, 400, "{\"error\":\"addr: missing (an IPv4 or IPv6 address)\"}");
	r = req("GET", "/v1/lookup?addr=banana");
	assert_reply(r, 400, "{\"error\":\"addr: not an IPv4 or IPv6 address\"}");
	r = req("GET", "/v1/lookup?addr=1.2.3.4&zone=x");
	assert_reply(r, 400, "{\"error\":\"unknown query parameter 'zone'\"}");
}

static void test_policies(void **state)
{
	struct resp r = req("GET", "/v1/policies");

	assert_reply(r, 200,
		     "{\"policies\":[{\"name\":\"eu-residency\",\"mode\":\"enforce\","
		     "\"enforcing\":true,\"cgroups\":[\"system.slice/pay.service\"]},"
		     "{\"name\":\"monitor-all\",\"mode\":\"monitor\",\"enforcing\":false,"
		     "\"cgroups\":[]}]}");
}

static void test_events_501(void **state)
{
	struct resp r = req("GET", "/v1/events?follow=1");

	assert_reply(r, 501, "{\"error\":\"events: not supported by this version of egressd\"}");
}

static void test_not_found_and_method(void **state)
{
	struct resp r;

	r = req("GET", "/v1/nope");
	assert_reply(r, 404, "{\"error\":\"path: no such resource '/v1/nope'\"}");
	r = req("GET", "/v1/status/");
	assert_int_equal(r.status, 404);
	free(r.body);
	r = req("POST", "/v1/status");
	assert_string_equal(r.allow, "GET, HEAD");
	assert_reply(r, 405, "{\"error\":\"method: POST not allowed on /v1/status (use GET)\"}");
	r = req("DELETE", "/metrics");
	assert_string_equal(r.allow, "GET, HEAD");
	assert_int_equal(r.status, 405);
	free(r.body);
	r = req("GET", "/v1/reload");
	assert_string_equal(r.allow, "POST");
	assert_reply(r, 405, "{\"error\":\"method: GET not allowed on /v1/reload (use POST)\"}");
	assert_int_equal(atomic_load(&reloads), 0);
}

static void test_reload_root(void **state)
{
	int before = atomic_load(&reloads);
	struct resp r;

	r = req("POST", "/v1/reload");
	assert_reply(r, 200, "{\"ok\":true,\"generation\":8,\"errors\":[]}");
	assert_int_equal(atomic_load(&reloads), before + 1);
	r = req_full("POST", "/v1/reload", 10, 0, sock_path); /* small bodies are ignored */
	assert_reply(r, 200, "{\"ok\":true,\"generation\":8,\"errors\":[]}");
	assert_int_equal(atomic_load(&reloads), before + 2);
}

static void test_body_limit(void **state)
{
	int before = atomic_load(&reloads);
	struct resp r;

	r = req_full("POST", "/v1/reload", API_MAX_BODY, 0, sock_path);
	assert_reply(r, 200, "{\"ok\":true,\"generation\":8,\"errors\":[]}");
	r = req_full("POST", "/v1/reload", API_MAX_BODY + 1, 0, sock_path);
	assert_reply(r, 413, "{\"error\":\"body: larger than 65536 bytes\"}");
	r = req_full("POST", "/v1/reload", 100000, 1, sock_path); /* chunked: no Content-Length */
	assert_reply(r, 413, "{\"error\":\"body: larger than 65536 bytes\"}");
	assert_int_equal(atomic_load(&reloads), before + 1);
	/* The server still answers. */
	r = req("GET", "/v1/events");
	assert_int_equal(r.status, 501);
	free(r.body);
}

/* POST /v1/reload from a child process with other credentials over a raw socket; returns the
 * HTTP status, the body in body. */
static int reload_as(uid_t uid, gid_t gid, const gid_t *groups, int ngroups, char *body,
		     size_t size)
{
	static const char request[] = "POST /v1/reload HTTP/1.1\r\nHost: localhost\r\n"
				      "Content-Length: 0\r\nConnection: close\r\n\r\n";
	char buf[4096];
	size_t n = 0;
	int pfd[2], status, code = -1;
	pid_t pid;
	char *p;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd;
		ssize_t k;

		close(pfd[0]);
		if (setgroups((size_t)ngroups, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			_exit(3);
		memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(4);
		if (write(fd, request, sizeof(request) - 1) != (ssize_t)(sizeof(request) - 1))
			_exit(5);
		while ((k = read(fd, buf, sizeof(buf))) > 0)
			if (write(pfd[1], buf, (size_t)k) != k)
				_exit(6);
		_exit(0);
	}
	close(pfd[1]);
	for (ssize_t k; (k = read(pfd[0], buf + n, sizeof(buf) - 1 - n)) > 0;)
		n += (size_t)k;
	buf[n] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	if (sscanf(buf, "HTTP/1.1 %d", &code) != 1)
		fail_msg("no status line in: %s", buf);
	p = strstr(buf, "\r\n\r\n");
	assert_non_null(p);
	snprintf(body, size, "%s", p + 4);
	return code;
}

static void test_reload_roles(void **state)
{
	const gid_t reader[] = { READER_GID }, admin[] = { READER_GID, ADMIN_GID };
	int before = atomic_load(&reloads);
	char body[1024];

	if (geteuid() != 0) {
		print_message("SKIP: needs root to run clients as other users\n");
		skip();
	}
	/* A reader that is not an admin is refused, and nothing is reloaded. */
	assert_int_equal(reload_as(NOBODY, READER_GID, reader, 1, body, sizeof(body)), 403);
	assert_string_equal(
		body, "{\"error\":\"reload: permission denied (needs uid 0 or group 4343)\"}\n");
	assert_int_equal(atomic_load(&reloads), before);
	/* AdminGroup as a supplementary group (SO_PEERGROUPS). */
	assert_int_equal(reload_as(NOBODY, READER_GID, admin, 2, body, sizeof(body)), 200);
	assert_string_equal(body, "{\"ok\":true,\"generation\":8,\"errors\":[]}\n");
	assert_int_equal(atomic_load(&reloads), before + 1);
	/* AdminGroup as the primary group. */
	assert_int_equal(reload_as(NOBODY, ADMIN_GID, reader, 1, body, sizeof(body)), 200);
	assert_int_equal(atomic_load(&reloads), before + 2);
}

static void test_peer_read(void **state)
{
	struct api_peer peer = { 0 };
	gid_t groups[256];
	int sv[2], n;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(api_peer_read(sv[0], &peer), 0);
	assert_int_equal(peer.pid, getpid());
	assert_int_equal(peer.uid, geteuid());
	assert_int_equal(peer.gid, getegid());
	n = getgroups(256, groups);
	assert_true(n >= 0);
	assert_int_equal(peer.ngroups, (size_t)n);
	for (int i = 0; i < n; i++)
		assert_int_equal(peer.groups[i], groups[i]);
	api_peer_clear(&peer);
	assert_null(peer.groups);
	close(sv[0]);
	close(sv[1]);

	/* is_admin */
	{
		gid_t g[] = { 5, 7 };
		struct api_peer p = { .uid = 1000, .gid = 100, .groups = g, .ngroups = 2 };

		assert_int_equal(api_peer_is_admin(&p, 7), 1);
		assert_int_equal(api_peer_is_admin(&p, 100), 1);
		assert_int_equal(api_peer_is_admin(&p, 6), 0);
		assert_int_equal(api_peer_is_admin(&p, (gid_t)-1), 0);
		p.uid = 0;
		assert_int_equal(api_peer_is_admin(&p, (gid_t)-1), 1);
	}
	assert_int_equal(api_peer_read(-1, &peer), -EBADF);
}

static void test_start_errors(void **state)
{
	char path[PATH_MAX], longpath[200];
	struct api *api = NULL;
	sd_event *e = NULL;
	int fd;

	assert_true(sd_event_new(&e) >= 0);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(api_start(e, longpath, -1, &fake_ops, &api), -ENAMETOOLONG);
	assert_int_equal(api_start(e, NULL, -1, &fake_ops, &api), -EINVAL);
	/* A regular file is never removed. */
	snprintf(path, sizeof(path), "%s/regular", tmpdir);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(api_start(e, path, -1, &fake_ops, &api), -EEXIST);
	assert_int_equal(access(path, F_OK), 0);
	/* Missing directory. */
	snprintf(path, sizeof(path), "%s/nodir/x.sock", tmpdir);
	assert_int_equal(api_start(e, path, -1, &fake_ops, &api), -ENOENT);
	assert_null(api);
	/* A stale socket file is replaced; api_free removes the file. */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		struct stat st;

		snprintf(path, sizeof(path), "%s/stale.sock", tmpdir);
		strcpy(sa.sun_path, path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(fd);
		assert_int_equal(api_start(e, path, -1, &fake_ops, &api), 0);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0660);
		api = api_free(api);
		assert_null(api);
		assert_int_equal(access(path, F_OK), -1);
		assert_int_equal(errno, ENOENT);
	}
	sd_event_unref(e);
}

static void test_inherited_socket(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct server srv = { 0 };
	char path[PATH_MAX];
	struct resp r;
	int fd;

	/* As with socket activation: the caller binds and listens. */
	snprintf(path, sizeof(path), "%s/activated.sock", tmpdir);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(server_start(&srv, NULL, fd), 0);
	r = req_full("GET", "/v1/policies", 0, 0, path);
	assert_int_equal(r.status, 200);
	free(r.body);
	server_stop(&srv);
	/* The file of an inherited socket is left alone. */
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed by api_free */
	unlink(path);
}

/* ---- egressctl end to end -------------------------------------------------------------------- */

struct run {
	int code;
	char out[8192];
	char err[2048];
};

static void slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, size - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

static struct run ctl(const char *sock, const char *args)
{
	char cmd[PATH_MAX * 4], out[PATH_MAX], err[PATH_MAX];
	struct run r;
	int st;

	snprintf(out, sizeof(out), "%s/ctl.out", tmpdir);
	snprintf(err, sizeof(err), "%s/ctl.err", tmpdir);
	snprintf(cmd, sizeof(cmd), "env -u EGRESSD_SOCKET '%s' --socket '%s' %s >'%s' 2>'%s'",
		 ctl_path, sock, args, out, err);
	st = system(cmd);
	assert_true(WIFEXITED(st));
	r.code = WEXITSTATUS(st);
	slurp(out, r.out, sizeof(r.out));
	slurp(err, r.err, sizeof(r.err));
	return r;
}

static void test_egressctl(void **state)
{
	struct run r;
	int before;

	if (!ctl_path[0]) {
		print_message(
			"SKIP: egressctl not built next to the tests (make build/egressctl)\n");
		skip();
	}
	r = ctl(sock_path, "counters");
	assert_int_equal(r.code, 0);
	assert_string_equal(
		r.out,
		"POLICY        CGROUP                      COUNTRY  PROTO  VERDICT     CONNECTIONS  PACKETS  BYTES\n"
		"-             -                           other    tcp    allow                 7        0      0\n"
		"eu-residency  system.slice/pay.service    DE       tcp    allow                 5       50   5000\n"
		"eu-residency  system.slice/pay.service    US       tcp    deny                  2        0      0\n"
		"monitor-all   system.slice/batch.service  unknown  udp    would_deny            3        4    400\n"
		"TOTAL                                                                          17       54   5400\n");
	assert_string_equal(r.err, "");

	r = ctl(sock_path, "counters --verdict deny --cgroup system.slice/pay.service");
	assert_int_equal(r.code, 0);
	assert_string_equal(
		r.out,
		"POLICY        CGROUP                    COUNTRY  PROTO  VERDICT  CONNECTIONS  PACKETS  BYTES\n"
		"eu-residency  system.slice/pay.service  US       tcp    deny               2        0      0\n"
		"TOTAL                                                                      2        0      0\n");

	r = ctl(sock_path, "--json counters --country DE");
	assert_int_equal(r.code, 0);
	{
		json_object *o = json_tokener_parse(r.out),
			    *want = json_tokener_parse("{\"rows\":[" ROW_DE "]}");

		assert_non_null(o);
		assert_true(json_object_equal(o, want));
		json_object_put(o);
		json_object_put(want);
	}

	r = ctl(sock_path, "counters --verdict blocked");
	assert_int_equal(r.code, 1);
	assert_string_equal(r.err,
			    "egressctl: --verdict 'blocked': must be allow, deny, would_deny or "
			    "local (see egressctl --help)\n");
	r = ctl(sock_path, "counters --country Germany");
	assert_int_equal(r.code, 1);
	r = ctl(sock_path, "counters --bogus");
	assert_int_equal(r.code, 1);
	assert_string_equal(
		r.err, "egressctl: counters: unknown argument '--bogus' (see egressctl --help)\n");

	r = ctl(sock_path, "status");
	assert_int_equal(r.code, 0);
	assert_string_equal(
		r.out,
		"version:          1.2.3\n"
		"uptime_s:         3725 (1h 2m)\n"
		"generation:       7\n"
		"cgroup_mount:     /sys/fs/cgroup\n"
		"hooks:            connect4,connect6\n"
		"geo:\n"
		"  sources:\n"
		"    PATH                                   FORMAT  SHA256  BUILD EPOCH  ROWS\n"
		"    /usr/share/egressd/geo/country.csv.gz  csv     ab12              0  1000\n"
		"  prefixes:\n"
		"    ipv4: 300\n"
		"    ipv6: 40\n"
		"  ranges:\n"
		"    ipv4: 250\n"
		"    ipv6: 30\n"
		"policies:\n"
		"  NAME          MODE     ENFORCING  CGROUPS\n"
		"  eu-residency  enforce  true       system.slice/pay.service\n"
		"events_lost:      1\n"
		"counter_overflow: 2\n"
		"reload_failures:  0\n");

	r = ctl(sock_path, "lookup 1.2.3.4 --cgroup pay.service");
	assert_int_equal(r.code, 0);
	assert_string_equal(r.out, "addr:    1.2.3.4\n"
				   "country: DE\n"
				   "prefix:  1.2.3.0/24\n"
				   "cgroup:  pay.service\n"
				   "verdict: deny\n");
	r = ctl(sock_path, "lookup 1.2.3");
	assert_int_equal(r.code, 1);
	assert_string_equal(r.err,
			    "egressctl: lookup: ADDRESS '1.2.3' is not an IPv4 or IPv6 address "
			    "(see egressctl --help)\n");
	r = ctl(sock_path, "lookup");
	assert_int_equal(r.code, 1);

	r = ctl(sock_path, "policies");
	assert_int_equal(r.code, 0);
	assert_string_equal(r.out, "policies:\n"
				   "  NAME          MODE     ENFORCING  CGROUPS\n"
				   "  eu-residency  enforce  true       system.slice/pay.service\n"
				   "  monitor-all   monitor  false      -\n");

	before = atomic_load(&reloads);
	r = ctl(sock_path, "reload");
	assert_int_equal(r.code, 0);
	assert_string_equal(r.out, "reload ok: generation 8\n");
	atomic_store(&reload_fails, 1);
	r = ctl(sock_path, "reload");
	atomic_store(&reload_fails, 0);
	assert_int_equal(r.code, 1);
	assert_string_equal(r.err, "egressctl: reload failed; generation 7 stays in place:\n"
				   "  /etc/egressd/policies.d/a.conf:3: unknown key 'Foo'\n");
	assert_int_equal(atomic_load(&reloads), before + 2);

	r = ctl(sock_path, "events");
	assert_int_equal(r.code, 2);
	assert_string_equal(r.err,
			    "egressctl: events: not yet supported by this egressd: events: not "
			    "supported by this version of egressd\n");

	atomic_store(&status_busy, 1);
	r = ctl(sock_path, "status");
	atomic_store(&status_busy, 0);
	assert_int_equal(r.code, 2);
	assert_string_equal(r.err, "egressctl: status: status: busy reloading (HTTP 503)\n");

	r = ctl("/nonexistent/egressd.sock", "status");
	assert_int_equal(r.code, 2);
	assert_string_equal(r.err,
			    "egressctl: cannot reach egressd at /nonexistent/egressd.sock: No "
			    "such file or directory\n");

	r = ctl(sock_path, "frobnicate");
	assert_int_equal(r.code, 1);
	r = ctl(sock_path, "help");
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.out, "Usage: egressctl [--socket PATH] [--json] COMMAND"));
	r = ctl(sock_path, "--help");
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.out, "Exit status: 0 ok, 1 usage or validation error, 2 daemon"));
}

/* The literal check of DESIGN.md: curl --unix-socket ... http://localhost/metrics works. */
static void test_curl_cli(void **state)
{
	char cmd[3 * PATH_MAX], out[128], mpath[160], meta[256], body[8192];
	int st;

	if (system("command -v curl >/dev/null 2>&1") != 0) {
		print_message("SKIP: no curl command\n");
		skip();
	}
	snprintf(out, sizeof(out), "%s/curl.out", tmpdir);
	snprintf(mpath, sizeof(mpath), "%s/curl.meta", tmpdir);
	snprintf(cmd, sizeof(cmd),
		 "curl -sS --unix-socket '%s' -o '%s' -w '%%{http_code} %%{content_type}' "
		 "http://localhost/metrics > '%s'",
		 sock_path, out, mpath);
	st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	slurp(mpath, meta, sizeof(meta));
	assert_string_equal(meta, "200 text/plain; version=0.0.4; charset=utf-8");
	slurp(out, body, sizeof(body));
	assert_non_null(strstr(body, "# TYPE egressd_connections_total counter\n"));
	assert_non_null(strstr(body, "\negressd_geo_prefixes{family=\"ipv6\"} 40\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socket_file),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_status_error),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_counters_bad_query),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_policies),
		cmocka_unit_test(test_events_501),
		cmocka_unit_test(test_not_found_and_method),
		cmocka_unit_test(test_reload_root),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_reload_roles),
		cmocka_unit_test(test_peer_read),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test(test_inherited_socket),
		cmocka_unit_test(test_egressctl),
		cmocka_unit_test(test_curl_cli),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
