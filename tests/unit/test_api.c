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
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
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
#include <time.h>
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
static atomic_int counters_bump; /* added (times row number + 1) to connections on every call */
static atomic_int counters_calls;

/* The last refused request (access_denied), and how many there were. */
static pthread_mutex_t denial_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int n;
	uid_t uid;
	char method[16], path[64], role[16], reason[256];
} denial;

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
	int k = atomic_fetch_add(&counters_calls, 1) + 1;

	for (size_t i = 0; i < NROWS; i++) {
		v[i] = fake_rows[i];
		v[i].connections += (uint64_t)atomic_load(&counters_bump) * (i + 1) * (uint64_t)k;
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

#define PROV                                                                             \
	"{\"generation\":7,\"geo\":[{\"path\":\"/usr/share/egressd/geo/country.csv.gz\","   \
	"\"format\":\"csv\",\"sha256\":\"ab12\",\"build_epoch\":0}]}"

static int fake_provenance(void *userdata, json_object **ret)
{
	*ret = json_tokener_parse(PROV);
	return *ret ? 0 : -ENOMEM;
}

static void fake_access_denied(void *userdata, const struct api_denial *d)
{
	pthread_mutex_lock(&denial_lock);
	denial.n++;
	denial.uid = d->uid;
	snprintf(denial.method, sizeof(denial.method), "%s", d->method);
	snprintf(denial.path, sizeof(denial.path), "%s", d->path);
	snprintf(denial.role, sizeof(denial.role), "%s", d->role);
	snprintf(denial.reason, sizeof(denial.reason), "%s", d->reason);
	pthread_mutex_unlock(&denial_lock);
}

static const struct api_ops fake_ops = {
	.provenance = fake_provenance,
	.access_denied = fake_access_denied,
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
	int publish_fd; /* eventfd: write N to publish N events (publish_*) on the server thread */
	struct api *api;
	int metrics_port;
};

/* Events published on the server thread: event i has pid 1000 + i, cgroup publish_cgroup,
 * country DE for even i and US for odd i, verdict deny for even i, would_deny for odd i. */
static char publish_cgroup[64] = "system.slice/pay.service";
static atomic_int publishing; /* 1 while a burst is being published */

static int on_publish(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct server *srv = userdata;
	uint64_t n = 0;
	struct timespec ts;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	atomic_store(&publishing, 1);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (uint64_t i = 0; i < n; i++) {
		struct egress_event ev = {
			.ts_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
			.cgroup_id = 10,
			.pid = (uint32_t)(1000 + i),
			.tid = (uint32_t)(2000 + i),
			.uid = 33,
			.gid = 44,
			.policy_id = 1,
			.country = (i % 2) ? ID('U', 'S') : ID('D', 'E'),
			.dport = 443,
			.family = 2,
			.proto = 6,
			.verdict = (i % 2) ? EGRESS_VERDICT_WOULD_DENY : EGRESS_VERDICT_DENY,
			.hook = EGRESS_HOOK_CONNECT4,
			.addr = { 198, 51, 100, 10 },
			.comm = "curl",
		};
		struct event_view v = { .ev = &ev,
					.policy = "eu-residency",
					.cgroup = publish_cgroup,
					.unit = "pay.service",
					.generation = 7 };

		api_publish_event(srv->api, &v);
	}
	atomic_store(&publishing, 0);
	return 0;
}

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
		r = sd_event_add_io(e, NULL, srv->publish_fd, EPOLLIN, on_publish, srv);
	if (r >= 0)
		r = api_start(e, srv->path, srv->listen_fd, &fake_ops, &api);
	if (r >= 0 && srv->listen_fd < 0)
		r = api_socket_chown(api, READER_GID);
	if (r >= 0) {
		api_set_admin_gid(api, ADMIN_GID);
		api_set_reader_gid(api, READER_GID);
		srv->api = api;
		r = api_start_metrics(api, "127.0.0.1:0");
	}
	if (r >= 0)
		srv->metrics_port = api_metrics_port(api);
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
	srv->publish_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(srv->publish_fd >= 0);
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
	close(srv->publish_fd);
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
	if (strncmp(path, "http://", 7) == 0)
		snprintf(url, sizeof(url), "%s", path); /* TCP: the /metrics listener */
	else
		snprintf(url, sizeof(url), "http://localhost%s", path);
	if (sock)
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
	assert_reply(r, 200, "{\"provenance\":" PROV ",\"rows\":[" ROW_OTHER "," ROW_DE "," ROW_US "," ROW_BATCH "]}");
	r = req("GET", "/v1/counters?policy=eu-residency&verdict=deny");
	assert_reply(r, 200, "{\"provenance\":" PROV ",\"rows\":[" ROW_US "]}");
	r = req("GET", "/v1/counters?cgroup=system.slice%2Fpay.service&country=de");
	assert_reply(r, 200, "{\"provenance\":" PROV ",\"rows\":[" ROW_DE "]}");
	r = req("GET", "/v1/counters?cgroup=batch.service");
	assert_reply(r, 200, "{\"provenance\":" PROV ",\"rows\":[" ROW_BATCH "]}");
	r = req("GET", "/v1/counters?country=other");
	assert_reply(r, 200, "{\"provenance\":" PROV ",\"rows\":[" ROW_OTHER "]}");
	r = req("GET", "/v1/counters?country=unknown");
	assert_reply(r, 200, "{\"provenance\":" PROV ",\"rows\":[" ROW_BATCH "]}");
	r = req("GET", "/v1/counters?policy=nope");
	assert_reply(r, 200, "{\"provenance\":" PROV ",\"rows\":[]}");
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
	r = req("GET", "/v1/policies");
	assert_int_equal(r.status, 200);
	free(r.body);
}

/* POST /v1/reload from a child process with other credentials over a raw socket; returns the
 * HTTP status, the body in body. */
static int request_as(uid_t uid, gid_t gid, const gid_t *groups, int ngroups,
		      const char *method, const char *path, char *body, size_t size)
{
	char request[512];
	char buf[16384];
	size_t n = 0;
	int pfd[2], status, code = -1;
	pid_t pid;
	char *p;

	snprintf(request, sizeof(request),
		 "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
		 "Connection: close\r\n\r\n",
		 method, path);
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
		if (fd < 0)
			_exit(4);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(errno == EACCES ? 7 : 4);
		if (write(fd, request, strlen(request)) != (ssize_t)strlen(request))
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
	if (WEXITSTATUS(status) == 7)
		return -EACCES;
	assert_int_equal(WEXITSTATUS(status), 0);
	if (sscanf(buf, "HTTP/1.1 %d", &code) != 1)
		fail_msg("no status line in: %s", buf);
	p = strstr(buf, "\r\n\r\n");
	assert_non_null(p);
	snprintf(body, size, "%s", p + 4);
	return code;
}

static int reload_as(uid_t uid, gid_t gid, const gid_t *groups, int ngroups, char *body,
		     size_t size)
{
	return request_as(uid, gid, groups, ngroups, "POST", "/v1/reload", body, size);
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

/* ---- roles ----------------------------------------------------------------------------------- */

#define OUTSIDER_GID 5555
#define NO_ROLE_MSG                                                                             \
	"{\"error\":\"permission denied: uid 65534 is neither root nor a member of AdminGroup " \
	"(gid 4343) or ReaderGroup (gid 4242)\"}\n"

static void test_roles(void **state)
{
	static const struct {
		const char *method, *path;
	} eps[] = {
		{ "GET", "/v1/status" },   { "GET", "/v1/counters" },
		{ "GET", "/metrics" },	   { "GET", "/v1/events" },
		{ "GET", "/v1/lookup?addr=1.2.3.4" }, { "GET", "/v1/policies" },
		{ "HEAD", "/v1/status" },  { "POST", "/v1/reload" },
		{ "GET", "/v1/nope" },
	};
	const gid_t reader[] = { READER_GID };
	int before = atomic_load(&reloads), n0;
	char body[16384];

	if (geteuid() != 0) {
		print_message("SKIP: needs root to run clients as other users\n");
		skip();
	}
	/* An outsider gets 403 on every path, each refusal reported with its credentials. The
	 * socket mode (0660 root:ReaderGroup) keeps outsiders from connecting at all; open it up
	 * to see the second line of defence. */
	assert_int_equal(request_as(NOBODY, OUTSIDER_GID, NULL, 0, "GET", "/v1/status", NULL, 0),
			 -EACCES);
	assert_int_equal(chmod(sock_path, 0666), 0);
	for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
		char path[64];

		pthread_mutex_lock(&denial_lock);
		n0 = denial.n;
		pthread_mutex_unlock(&denial_lock);
		assert_int_equal(request_as(NOBODY, OUTSIDER_GID, NULL, 0, eps[i].method,
					    eps[i].path, body, sizeof(body)),
				 403);
		if (strcmp(eps[i].method, "HEAD") != 0)
			assert_string_equal(body, NO_ROLE_MSG);
		snprintf(path, sizeof(path), "%.*s", (int)strcspn(eps[i].path, "?"), eps[i].path);
		pthread_mutex_lock(&denial_lock);
		assert_int_equal(denial.n, n0 + 1);
		assert_int_equal(denial.uid, NOBODY);
		assert_string_equal(denial.method, eps[i].method);
		assert_string_equal(denial.path, path);
		assert_string_equal(denial.role, "none");
		pthread_mutex_unlock(&denial_lock);
	}
	assert_int_equal(chmod(sock_path, 0660), 0);
	/* A reader (primary or supplementary group) reads everything, and may not reload. */
	for (int k = 0; k < 2; k++) {
		gid_t gid = k ? OUTSIDER_GID : READER_GID;

		for (size_t i = 0; i + 2 < sizeof(eps) / sizeof(eps[0]); i++)
			assert_int_equal(request_as(NOBODY, gid, k ? reader : NULL, k ? 1 : 0,
						    eps[i].method, eps[i].path, body, sizeof(body)),
					 200);
		assert_int_equal(request_as(NOBODY, gid, k ? reader : NULL, k ? 1 : 0, "GET",
					    "/v1/nope", body, sizeof(body)),
				 404);
		assert_int_equal(request_as(NOBODY, gid, k ? reader : NULL, k ? 1 : 0, "POST",
					    "/v1/reload", body, sizeof(body)),
				 403);
		assert_string_equal(
			body, "{\"error\":\"reload: permission denied (needs uid 0 or group 4343)\"}\n");
		pthread_mutex_lock(&denial_lock);
		assert_string_equal(denial.role, "reader");
		assert_string_equal(denial.path, "/v1/reload");
		pthread_mutex_unlock(&denial_lock);
	}
	assert_int_equal(atomic_load(&reloads), before);
}

static void test_peer_role(void **state)
{
	struct api_peer p = { .uid = NOBODY, .gid = OUTSIDER_GID };
	gid_t g[] = { READER_GID };

	/* Socket credentials. */
	assert_int_equal(api_peer_role(&p, READER_GID, ADMIN_GID), API_ROLE_NONE);
	p.groups = g;
	p.ngroups = 1;
	assert_int_equal(api_peer_role(&p, READER_GID, ADMIN_GID), API_ROLE_READER);
	assert_int_equal(api_peer_role(&p, (gid_t)-1, READER_GID), API_ROLE_ADMIN);
	assert_int_equal(api_peer_role(&p, (gid_t)-1, (gid_t)-1), API_ROLE_NONE);
	p.ngroups = 0;
	p.gid = ADMIN_GID;
	assert_int_equal(api_peer_role(&p, READER_GID, ADMIN_GID), API_ROLE_ADMIN);
	/* The group database: nobody's passwd entry has primary group nogroup (65534), so uid
	 * 65534 is a member of 65534 even when its socket credentials do not say so. */
	p.gid = OUTSIDER_GID;
	if (getpwuid(NOBODY) && getpwuid(NOBODY)->pw_gid == 65534) {
		assert_int_equal(api_peer_role(&p, 65534, ADMIN_GID), API_ROLE_READER);
		assert_int_equal(api_peer_role(&p, READER_GID, 65534), API_ROLE_ADMIN);
	}
	p.uid = 0;
	assert_int_equal(api_peer_role(&p, (gid_t)-1, (gid_t)-1), API_ROLE_ADMIN);
	assert_string_equal(api_role_name(API_ROLE_NONE), "none");
	assert_string_equal(api_role_name(API_ROLE_READER), "reader");
	assert_string_equal(api_role_name(API_ROLE_ADMIN), "admin");
}

/* ---- events ---------------------------------------------------------------------------------- */

static void publish(const char *cgroup, uint64_t n)
{
	snprintf(publish_cgroup, sizeof(publish_cgroup), "%s", cgroup);
	assert_int_equal(write(main_srv.publish_fd, &n, sizeof(n)), sizeof(n));
}

/* Lines of an NDJSON body as parsed objects; returns the count. */
static size_t parse_lines(const char *body, json_object **out, size_t max)
{
	size_t n = 0;

	for (const char *p = body; *p && n < max;) {
		const char *e = strchr(p, '\n');
		char *line;

		assert_non_null(e);
		line = strndup(p, (size_t)(e - p));
		out[n] = json_tokener_parse(line);
		if (!out[n])
			fail_msg("not JSON: %s", line);
		free(line);
		n++;
		p = e + 1;
	}
	return n;
}

static json_object *getk(json_object *o, const char *k)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, k, &v);
	return v;
}

static void test_events_recent(void **state)
{
	json_object *ev[8];
	struct timespec now;
	struct resp r;
	size_t n = 0;
	uint64_t seq0 = 0;

	publish("test.slice/recent", 4);
	for (int tries = 0; tries < 200 && n < 4; tries++) {
		r = req("GET", "/v1/events?cgroup=test.slice/recent");
		assert_int_equal(r.status, 200);
		assert_string_equal(r.ctype, "application/x-ndjson");
		for (size_t i = 0; i < n; i++)
			json_object_put(ev[i]);
		n = parse_lines(r.body, ev, 8);
		free(r.body);
		if (n < 4)
			usleep(10000);
	}
	assert_int_equal(n, 4);
	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; i < 4; i++) {
		char want[1024], tbuf[64];
		json_object *w;
		int64_t t = json_object_get_int64(getk(ev[i], "time_ns"));
		int64_t nowns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
		time_t sec = (time_t)(t / 1000000000);
		struct tm tm;

		if (i == 0)
			seq0 = json_object_get_uint64(getk(ev[0], "seq"));
		assert_int_equal(json_object_get_uint64(getk(ev[i], "seq")), seq0 + i);
		/* realtime of the event: published just now */
		assert_true(t <= nowns && t > nowns - 10 * (int64_t)1000000000);
		gmtime_r(&sec, &tm);
		strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(tbuf + strlen(tbuf), sizeof(tbuf) - strlen(tbuf), ".%06dZ",
			 (int)(t % 1000000000 / 1000));
		assert_string_equal(json_object_get_string(getk(ev[i], "time")), tbuf);
		json_object_object_del(ev[i], "seq");
		json_object_object_del(ev[i], "time");
		json_object_object_del(ev[i], "time_ns");
		snprintf(want, sizeof(want),
			 "{\"pid\":%zu,\"tid\":%zu,\"uid\":33,\"gid\":44,\"comm\":\"curl\","
			 "\"cgroup_id\":10,\"cgroup\":\"test.slice/recent\",\"unit\":\"pay.service\","
			 "\"policy\":\"eu-residency\",\"country\":\"%s\",\"family\":\"ipv4\","
			 "\"dst\":\"198.51.100.10\",\"dport\":443,\"protocol\":\"tcp\","
			 "\"verdict\":\"%s\",\"hook\":\"connect4\",\"generation\":7,"
			 "\"provenance\":" PROV "}",
			 1000 + i, 2000 + i, i % 2 ? "US" : "DE", i % 2 ? "would_deny" : "deny");
		w = json_tokener_parse(want);
		assert_non_null(w);
		if (!json_object_equal(w, ev[i]))
			fail_msg("event %zu: %s, want %s", i, json_object_to_json_string(ev[i]),
				 want);
		json_object_put(w);
		json_object_put(ev[i]);
	}
	/* Filters as for counters. */
	r = req("GET", "/v1/events?cgroup=test.slice/recent&verdict=deny");
	n = parse_lines(r.body, ev, 8);
	assert_int_equal(n, 2);
	assert_int_equal(json_object_get_int(getk(ev[0], "pid")), 1000);
	assert_int_equal(json_object_get_int(getk(ev[1], "pid")), 1002);
	json_object_put(ev[0]);
	json_object_put(ev[1]);
	free(r.body);
	r = req("GET", "/v1/events?cgroup=test.slice/recent&country=us&policy=eu-residency");
	n = parse_lines(r.body, ev, 8);
	assert_int_equal(n, 2);
	assert_int_equal(json_object_get_int(getk(ev[0], "pid")), 1001);
	assert_int_equal(json_object_get_int(getk(ev[1], "pid")), 1003);
	json_object_put(ev[0]);
	json_object_put(ev[1]);
	free(r.body);
	r = req("GET", "/v1/events?cgroup=test.slice/recent&policy=other");
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "");
	free(r.body);
	r = req("HEAD", "/v1/events");
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "application/x-ndjson");
	free(r.body);
	r = req("GET", "/v1/events?follow=2");
	assert_reply(r, 400, "{\"error\":\"follow: must be 1 or 0\"}");
	r = req("GET", "/v1/events?verdict=blocked");
	assert_reply(r, 400, "{\"error\":\"verdict: must be allow, deny, would_deny or local\"}");
	r = req("GET", "/v1/events?since=1");
	assert_reply(r, 400, "{\"error\":\"unknown query parameter 'since'\"}");
}

/* A raw HTTP client of GET /v1/events?follow=1: reads the chunked body, counts event lines. */
struct follower_client {
	int fd;
	char *buf; /* raw bytes not yet parsed */
	size_t len, cap;
	int in_body;
	size_t chunk_left; /* bytes of the current chunk still to come */
	int chunk_crlf; /* 1: the CRLF after a chunk is expected */
	char line[4096];
	size_t llen;
	uint64_t events, missed, missed_lines, last_seq, seq_gaps;
	int last_was_missed;
	pthread_t thread;
	uint64_t want; /* stop after this many events */
};

static void fc_line(struct follower_client *fc)
{
	const char *p;

	/* No JSON parser here: the client must stay faster than the server it tests. */
	fc->line[fc->llen] = '\0';
	if (strncmp(fc->line, "{\"missed\":", 10) == 0) {
		fc->missed += strtoull(fc->line + 10, NULL, 10);
		fc->missed_lines++;
		fc->last_was_missed = 1;
	} else {
		uint64_t seq;

		p = strstr(fc->line, "{\"seq\":");
		if (p != fc->line || fc->line[fc->llen - 1] != '}')
			fail_msg("not an event: %s", fc->line);
		seq = strtoull(p + 7, NULL, 10);
		if (fc->events > 0 && seq != fc->last_seq + 1)
			fc->seq_gaps++;
		fc->last_seq = seq;
		fc->events++;
		fc->last_was_missed = 0;
	}
	fc->llen = 0;
}

/* Parse what is in fc->buf. */
static void fc_parse(struct follower_client *fc)
{
	size_t pos = 0;

	for (;;) {
		if (!fc->in_body) {
			char *e = memmem(fc->buf, fc->len, "\r\n\r\n", 4);

			if (!e)
				break;
			assert_true(strncmp(fc->buf, "HTTP/1.1 200", 12) == 0);
			pos = (size_t)(e - fc->buf) + 4;
			fc->in_body = 1;
			continue;
		}
		if (fc->chunk_crlf) {
			if (fc->len - pos < 2)
				break;
			pos += 2;
			fc->chunk_crlf = 0;
		}
		if (fc->chunk_left == 0) {
			char *e = memmem(fc->buf + pos, fc->len - pos, "\r\n", 2);

			if (!e)
				break;
			fc->chunk_left = strtoul(fc->buf + pos, NULL, 16);
			pos = (size_t)(e - fc->buf) + 2;
			if (fc->chunk_left == 0) {
				pos = fc->len; /* last chunk */
				break;
			}
			continue;
		}
		if (pos == fc->len)
			break;
		while (pos < fc->len && fc->chunk_left > 0) {
			char ch = fc->buf[pos++];

			fc->chunk_left--;
			if (ch == '\n')
				fc_line(fc);
			else if (fc->llen < sizeof(fc->line) - 1)
				fc->line[fc->llen++] = ch;
		}
		if (fc->chunk_left == 0)
			fc->chunk_crlf = 1;
	}
	memmove(fc->buf, fc->buf + pos, fc->len - pos);
	fc->len -= pos;
}

/* Read what arrives within timeout_ms; 0 on data, -1 on timeout or EOF. */
static int fc_read(struct follower_client *fc, int timeout_ms)
{
	struct pollfd pfd = { .fd = fc->fd, .events = POLLIN };
	ssize_t k;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -1;
	if (fc->cap - fc->len < 65536) {
		fc->cap = fc->cap * 2 + 65536;
		fc->buf = realloc(fc->buf, fc->cap);
		assert_non_null(fc->buf);
	}
	k = read(fc->fd, fc->buf + fc->len, fc->cap - fc->len);
	if (k <= 0)
		return -1;
	fc->len += (size_t)k;
	fc_parse(fc);
	return 0;
}

static void fc_open(struct follower_client *fc, const char *query)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char request[512];

	memset(fc, 0, sizeof(*fc));
	strcpy(sa.sun_path, sock_path);
	fc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fc->fd >= 0);
	assert_int_equal(connect(fc->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(request, sizeof(request), "GET /v1/events?%s HTTP/1.1\r\nHost: localhost\r\n\r\n",
		 query);
	assert_int_equal(write(fc->fd, request, strlen(request)), (ssize_t)strlen(request));
	/* the reply header comes at once (the queue is empty, the body waits for events) */
	while (!fc->in_body)
		if (fc_read(fc, 5000) < 0)
			fail_msg("no reply header for /v1/events?%s", query);
}

static void *fc_main(void *p)
{
	struct follower_client *fc = p;

	while (fc->events + fc->missed < fc->want)
		if (fc_read(fc, 30000) < 0)
			break;
	return NULL;
}

static atomic_int latency_stop;
static double worst_latency_ms;

static void *status_poller(void *p)
{
	while (!atomic_load(&latency_stop)) {
		struct timespec a, b;
		struct resp r;
		double ms;

		clock_gettime(CLOCK_MONOTONIC, &a);
		r = req("GET", "/v1/status");
		clock_gettime(CLOCK_MONOTONIC, &b);
		assert_int_equal(r.status, 200);
		free(r.body);
		ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
		if (ms > worst_latency_ms)
			worst_latency_ms = ms;
		usleep(1000);
	}
	return NULL;
}

/* 3 followers reading, 1 stalled (never reads until the burst is over), 10,000 events in one
 * burst on the server thread: the readers get every event in order, the stalled one gets what
 * fit in its queue and then {"missed":N} for the rest; /v1/status answers throughout. */
static void test_events_follow(void **state)
{
	enum { NEV = 10000, NRUN = 3 };
	struct follower_client run[NRUN], stalled;
	uint64_t published0, missed0, published1, missed1;
	pthread_t poller;

	for (int i = 0; i < NRUN; i++) {
		fc_open(&run[i], "follow=1&cgroup=burst.slice");
		run[i].want = NEV;
	}
	fc_open(&stalled, "follow=1&cgroup=burst.slice");
	/* a follower of another cgroup gets nothing */
	api_events_stats(main_srv.api, &published0, &missed0);
	for (int i = 0; i < NRUN; i++)
		assert_int_equal(pthread_create(&run[i].thread, NULL, fc_main, &run[i]), 0);
	atomic_store(&latency_stop, 0);
	worst_latency_ms = 0;
	assert_int_equal(pthread_create(&poller, NULL, status_poller, NULL), 0);
	publish("burst.slice", NEV);
	for (int i = 0; i < NRUN; i++)
		assert_int_equal(pthread_join(run[i].thread, NULL), 0);
	atomic_store(&latency_stop, 1);
	assert_int_equal(pthread_join(poller, NULL), 0);
	for (int i = 0; i < NRUN; i++) {
		free(run[i].buf);
		assert_int_equal(run[i].events, NEV);
		assert_int_equal(run[i].missed, 0);
		assert_int_equal(run[i].seq_gaps, 0);
		close(run[i].fd);
	}
	/* The stalled one now reads: what fit, then how many it missed. */
	while (stalled.events + stalled.missed < NEV)
		if (fc_read(&stalled, 5000) < 0)
			break;
	if (stalled.events + stalled.missed != NEV)
		free(stalled.buf);
	assert_int_equal(stalled.events + stalled.missed, NEV);
	assert_true(stalled.missed > 0);
	assert_true(stalled.events >= API_EVENTS_QUEUE);
	assert_int_equal(stalled.missed_lines, 1);
	assert_int_equal(stalled.last_was_missed, 1);
	assert_int_equal(stalled.seq_gaps, 0);
	api_events_stats(main_srv.api, &published1, &missed1);
	assert_int_equal(published1 - published0, NEV);
	assert_int_equal(missed1 - missed0, stalled.missed);
	print_message("   events: %d followers got %d events each; the stalled one got %" PRIu64
		      " and {\"missed\":%" PRIu64 "}; worst /v1/status latency %.1f ms\n",
		      NRUN, NEV, stalled.events, stalled.missed, worst_latency_ms);
	/* It keeps following: the next event comes after the notice. */
	publish("burst.slice", 1);
	while (stalled.events + stalled.missed < NEV + 1)
		if (fc_read(&stalled, 5000) < 0)
			break;
	assert_int_equal(stalled.events + stalled.missed, NEV + 1);
	assert_int_equal(stalled.last_was_missed, 0);
	close(stalled.fd);
	free(stalled.buf);
}

/* ---- /metrics on TCP ------------------------------------------------------------------------- */

static void test_metrics_listener(void **state)
{
	char url[128], file[PATH_MAX], cmd[PATH_MAX + 64];
	struct resp r, u;
	FILE *f;

	assert_true(main_srv.metrics_port > 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", main_srv.metrics_port);
	r = req_full("GET", url, 0, 0, NULL);
	u = req("GET", "/metrics");
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
	assert_string_equal(r.body, u.body);
	free(u.body);
	/* promtool (Debian package prometheus) accepts the exposition */
	snprintf(file, sizeof(file), "%s/metrics.txt", tmpdir);
	f = fopen(file, "we");
	assert_non_null(f);
	fputs(r.body, f);
	fclose(f);
	free(r.body);
	if (system("command -v promtool >/dev/null 2>&1") == 0) {
		snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s'", file);
		assert_int_equal(system(cmd), 0);
	} else {
		print_message("SKIP (promtool part): promtool not installed (scripts/deps.sh)\n");
	}
	/* Nothing else is served there, and no roles apply. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/status", main_srv.metrics_port);
	r = req_full("GET", url, 0, 0, NULL);
	assert_reply(r, 404, "{\"error\":\"path: no such resource '/v1/status'\"}");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/reload", main_srv.metrics_port);
	r = req_full("POST", url, 0, 0, NULL);
	assert_int_equal(r.status, 404);
	free(r.body);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", main_srv.metrics_port);
	r = req_full("POST", url, 0, 0, NULL);
	assert_int_equal(r.status, 405);
	free(r.body);
}

static void test_metrics_listen_parse(void **state)
{
	static const char *const bad[] = { "nonsense", "127.0.0.1",	"127.0.0.1:",
					   "1.2.3.4:99999", "[::1]9",	"localhost:80",
					   "[::1]:x",	    "127.0.0.1:-1", "[::1:80" };
	struct api *api = NULL;
	sd_event *e = NULL;
	char path[PATH_MAX];
	int r;

	assert_true(sd_event_new(&e) >= 0);
	snprintf(path, sizeof(path), "%s/m.sock", tmpdir);
	assert_int_equal(api_start(e, path, -1, &fake_ops, &api), 0);
	assert_int_equal(api_metrics_port(api), -ENOTCONN);
	assert_int_equal(api_start_metrics(api, ""), 0);
	assert_int_equal(api_start_metrics(api, NULL), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (api_start_metrics(api, bad[i]) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(api_metrics_port(api), -ENOTCONN);
	r = api_start_metrics(api, "[::1]:0");
	if (r == 0) {
		assert_true(api_metrics_port(api) > 0);
		assert_int_equal(api_start_metrics(api, "127.0.0.1:0"), -EALREADY);
	} else {
		assert_int_equal(r, -EADDRNOTAVAIL); /* no IPv6 loopback here */
		assert_int_equal(api_start_metrics(api, "127.0.0.1:0"), 0);
	}
	api_free(api);
	sd_event_unref(e);
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
			    *want = json_tokener_parse("{\"provenance\":" PROV ",\"rows\":[" ROW_DE "]}");

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

static void test_egressctl_events_top(void **state)
{
	struct run r;
	char *p;
	int lines = 0;

	if (!ctl_path[0]) {
		print_message("SKIP: egressctl not built next to the tests\n");
		skip();
	}
	publish("ctl.slice", 2);
	for (int tries = 0; tries < 200; tries++) {
		r = ctl(sock_path, "--json events --cgroup ctl.slice");
		if (strchr(r.out, '\n') && strchr(strchr(r.out, '\n') + 1, '\n'))
			break;
		usleep(10000);
	}
	assert_int_equal(r.code, 0);
	for (p = r.out; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, 2);
	assert_true(strncmp(r.out, "{\"seq\":", 7) == 0);
	r = ctl(sock_path, "events --cgroup ctl.slice --verdict would_deny");
	assert_int_equal(r.code, 0);
	/* TIME VERDICT POLICY CGROUP COMM[PID] uid=U -> DST:PORT/PROTO COUNTRY */
	p = strchr(r.out, ' ');
	assert_non_null(p);
	assert_string_equal(p, " would_deny eu-residency ctl.slice curl[1001] uid=33 -> "
			       "198.51.100.10:443/tcp US\n");
	assert_int_equal(r.out[4], '-');
	assert_int_equal(strlen(r.out) - strlen(p), 27); /* 2024-02-29T23:59:59.123456Z */
	r = ctl(sock_path, "events --verdict nope");
	assert_int_equal(r.code, 1);
	r = ctl(sock_path, "events --bogus");
	assert_int_equal(r.code, 1);

	/* Deltas: every counters() call adds (row + 1) connections to each row. */
	atomic_store(&counters_bump, 1);
	r = ctl(sock_path, "counters --interval 100ms");
	assert_int_equal(r.code, 0);
	p = strchr(r.out, '\n');
	assert_non_null(p);
	assert_true(strncmp(r.out, "increase over 0.", 16) == 0);
	assert_string_equal(
		p + 1,
		"POLICY        CGROUP                      COUNTRY  PROTO  VERDICT     CONNECTIONS  PACKETS  BYTES\n"
		"-             -                           other    tcp    allow                 4        0      0\n"
		"eu-residency  system.slice/pay.service    DE       tcp    allow                 1        0      0\n"
		"eu-residency  system.slice/pay.service    US       tcp    deny                  2        0      0\n"
		"monitor-all   system.slice/batch.service  unknown  udp    would_deny            3        0      0\n"
		"TOTAL                                                                          10        0      0\n");
	r = ctl(sock_path, "--json counters --interval 100ms --count 2 --verdict deny");
	assert_int_equal(r.code, 0);
	p = strchr(r.out, '\n');
	assert_non_null(p);
	assert_non_null(strstr(r.out, ",\"provenance\":" PROV ",\"rows\":[{\"cgroup\":"
				      "\"system.slice/pay.service\",\"unit\":\"pay.service\","
				      "\"policy\":\"eu-residency\",\"country\":\"US\",\"protocol\":"
				      "\"tcp\",\"verdict\":\"deny\",\"connections\":2,\"packets\":0,"
				      "\"bytes\":0}]}\n"));
	assert_non_null(strstr(p + 1, "\"connections\":2,"));
	r = ctl(sock_path, "counters --interval 0");
	assert_int_equal(r.code, 1);
	r = ctl(sock_path, "counters --count 2");
	assert_int_equal(r.code, 1);

	r = ctl(sock_path, "top --interval 100ms --iterations 2");
	atomic_store(&counters_bump, 0);
	assert_int_equal(r.code, 0);
	assert_string_equal(r.err, "");
	/* two frames, no escape sequences (not a terminal) */
	assert_null(strchr(r.out, '\033'));
	p = strstr(r.out, "\n\negressd top ");
	assert_non_null(p);
	assert_true(strncmp(r.out, "egressd top ", 12) == 0);
	{
		const char *want =
			"COUNTRY                                  CONNECTIONS     DENY WOULD_DENY     CONN/S\n"
			"other                                              4        0          0";
		const char *want2 =
			"CGROUP                                   CONNECTIONS     DENY WOULD_DENY     CONN/S\n"
			"-                                                  4        0          0";
		const char *unk = "\nunknown                                            3        0          3";
		const char *us = "\nUS                                                 2        2          0";
		const char *de = "\nDE                                                 1        0          0";
		const char *batch = "\nsystem.slice/batch.service                         3        0          3";
		const char *pay = "\nsystem.slice/pay.service                           3        2          0";

		for (const char *frame = r.out; frame; frame = frame == r.out ? p + 2 : NULL) {
			const char *c = strstr(frame, want), *g = strstr(frame, want2);

			assert_non_null(c);
			assert_non_null(g);
			assert_true(strstr(c, unk) && strstr(c, unk) < strstr(c, us) &&
				    strstr(c, us) < strstr(c, de) && strstr(c, de) < g);
			assert_true(strstr(g, batch) && strstr(g, batch) < strstr(g, pay));
		}
	}
	r = ctl(sock_path, "top --interval soon");
	assert_int_equal(r.code, 1);
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
		cmocka_unit_test(test_not_found_and_method),
		cmocka_unit_test(test_reload_root),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_reload_roles),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_peer_role),
		cmocka_unit_test(test_events_recent),
		cmocka_unit_test(test_events_follow),
		cmocka_unit_test(test_metrics_listener),
		cmocka_unit_test(test_metrics_listen_parse),
		cmocka_unit_test(test_peer_read),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test(test_inherited_socket),
		cmocka_unit_test(test_egressctl),
		cmocka_unit_test(test_curl_cli),
		cmocka_unit_test(test_egressctl_events_top),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
