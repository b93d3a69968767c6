/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * egressctl - the command line client of egressd: HTTP/1.1 over the daemon's Unix socket (libcurl,
 * CURLOPT_UNIX_SOCKET_PATH), JSON replies (json-c) shown as aligned tables or, with --json, as is.
 *
 * Exit codes (DESIGN.md §4): 0 ok; 1 usage or validation error (bad argument, HTTP 400/413 from
 * the daemon, a reload that reports errors); 2 daemon unreachable or refused (connect failure, 403,
 * 404, 405, 5xx including 501 for features this daemon lacks).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#ifndef EGRESSD_VERSION
#define EGRESSD_VERSION "0.0.0"
#endif

#define DEFAULT_SOCKET "/run/egressd/egressd.sock"
#define MAX_REPLY (64u << 20) /* bytes of reply body accepted */

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_DAEMON = 2 };

static const char *arg_socket;
static int arg_json;

static void help(FILE *f)
{
	fputs("Usage: egressctl [--socket PATH] [--json] COMMAND [OPTIONS]\n"
	      "\n"
	      "Query and control egressd over its Unix socket.\n"
	      "\n"
	      "Commands:\n"
	      "  status                       daemon, GeoIP data, hooks and policies\n"
	      "  counters [--policy P] [--cgroup C] [--country CC] [--verdict V]\n"
	      "           [--interval DURATION [--count N]]\n"
	      "                               traffic counters; C is a cgroup path\n"
	      "                               (system.slice/x.service) or a unit name; CC a\n"
	      "                               country code, unknown or other; V allow, deny,\n"
	      "                               would_deny or local; --interval: the increase\n"
	      "                               over DURATION (5, 5s, 500ms, 2m), N times\n"
	      "  lookup ADDRESS [--cgroup C]  country, matching prefix and verdict for ADDRESS\n"
	      "  policies                     configured policies\n"
	      "  reload                       reload configuration, policies and GeoIP data\n"
	      "  events [-f, --follow] [--policy P] [--cgroup C] [--country CC] [--verdict V]\n"
	      "                               deny and would_deny events (recent ones, then\n"
	      "                               new ones with --follow); --json: NDJSON\n"
	      "  top [--interval DURATION] [--iterations N | --once]\n"
	      "                               live rates per country and per cgroup, denials\n"
	      "                               highlighted (default interval 2s, until ^C)\n"
	      "  help                         this text\n"
	      "\n"
	      "Options:\n"
	      "  --socket PATH  daemon socket (default: $EGRESSD_SOCKET, else\n"
	      "                 " DEFAULT_SOCKET ")\n"
	      "  --json         print the daemon's JSON reply instead of a table\n"
	      "  -h, --help     this text\n"
	      "  --version      print the version\n"
	      "\n"
	      "Exit status: 0 ok, 1 usage or validation error, 2 daemon unreachable or refused.\n",
	      f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("egressctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see egressctl --help)\n", stderr);
	return EXIT_USAGE;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

struct buf {
	char *p;
	size_t n;
	int too_big;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t len = size * nmemb;
	char *p;

	if (b->n + len > MAX_REPLY) {
		b->too_big = 1;
		return 0;
	}
	p = realloc(b->p, b->n + len + 1);
	if (!p)
		return 0;
	memcpy(p + b->n, data, len);
	b->n += len;
	p[b->n] = '\0';
	b->p = p;
	return len;
}

/* Do one request. Returns EXIT_OK with *ret_status and the body in b, or EXIT_DAEMON after printing
 * why the daemon could not be reached. */
/* One line on stderr for a failed transfer: the system error, or libcurl's reason. A connection
 * closed without a reply (right after the connect: libcurl then reports a connect failure with
 * no system error) is what egressd does to a user holding API_CONNECTIONS_PER_UID (64)
 * connections already: say so. */
static void report_transfer_error(CURLcode cr, long os_errno, const char *errbuf)
{
	if (cr == CURLE_GOT_NOTHING || (cr == CURLE_COULDNT_CONNECT && os_errno == 0))
		fprintf(stderr, "egressctl: egressd at %s closed the connection without a reply (it does "
			"that when this user holds 64 API connections, or all users but root 240; see its "
			"log)\n", arg_socket);
	else
		fprintf(stderr, "egressctl: cannot reach egressd at %s: %s\n", arg_socket,
			os_errno ? strerror((int)os_errno) : (errbuf[0] ? errbuf : curl_easy_strerror(cr)));
}

static int http(const char *method, const char *path, long *ret_status, struct buf *b)
{
	char errbuf[CURL_ERROR_SIZE] = "", *url = NULL;
	CURL *c;
	CURLcode cr;
	long os_errno = 0;
	int r = EXIT_DAEMON;

	c = curl_easy_init();
	if (!c) {
		fprintf(stderr, "egressctl: cannot initialise libcurl\n");
		return EXIT_DAEMON;
	}
	if (asprintf(&url, "http://localhost%s", path) < 0) {
		curl_easy_cleanup(c);
		fprintf(stderr, "egressctl: out of memory\n");
		return EXIT_DAEMON;
	}
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, arg_socket);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "egressctl/" EGRESSD_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	cr = curl_easy_perform(c);
	if (cr != CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
		if (b->too_big)
			fprintf(stderr, "egressctl: reply from egressd larger than %u bytes\n",
				MAX_REPLY);
		else
			report_transfer_error(cr, os_errno, errbuf);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_status);
	r = EXIT_OK;
out:
	free(url);
	curl_easy_cleanup(c);
	return r;
}

/* GET or POST path; on HTTP 200 returns EXIT_OK and the parsed JSON reply in *ret (unless
 * want_json is 0: then *ret stays NULL and the raw body is printed by the caller's printer). On an
 * HTTP error prints the daemon's error message and returns the exit code for it. */
static int request(const char *cmd, const char *method, const char *path, json_object **ret)
{
	struct buf b = { 0 };
	json_object *o = NULL, *e;
	long status = 0;
	int r;

	r = http(method, path, &status, &b);
	if (r != EXIT_OK) {
		free(b.p);
		return r;
	}
	if (b.p) {
		enum json_tokener_error jerr;

		o = json_tokener_parse_verbose(b.p, &jerr);
	}
	if (status == 200) {
		if (!o) {
			fprintf(stderr, "egressctl: %s: the daemon sent a reply that is not JSON\n",
				cmd);
			free(b.p);
			return EXIT_DAEMON;
		}
		free(b.p);
		*ret = o;
		return EXIT_OK;
	}
	if (o && json_object_object_get_ex(o, "error", &e) &&
	    json_object_is_type(e, json_type_string)) {
		if (status == 501)
			fprintf(stderr, "egressctl: %s: not yet supported by this egressd: %s\n",
				cmd, json_object_get_string(e));
		else
			fprintf(stderr, "egressctl: %s: %s (HTTP %ld)\n", cmd,
				json_object_get_string(e), status);
	} else {
		fprintf(stderr, "egressctl: %s: HTTP %ld from egressd\n", cmd, status);
	}
	json_object_put(o);
	free(b.p);
	return (status == 400 || status == 413 || status == 422) ? EXIT_USAGE : EXIT_DAEMON;
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* ---- generic printing ------------------------------------------------------------------------ */

static int is_scalar(json_object *v)
{
	return !json_object_is_type(v, json_type_object) &&
	       !json_object_is_type(v, json_type_array);
}

/* Text of a value for a table cell: strings as is, null "-", arrays of scalars joined by ",",
 * anything else compact JSON. Returns a heap string. */
/* The short text of an object in a table cell: a cgroup's "path", a CIDR exception's
 * "action:cidr" (in a static buffer until the next call), else NULL. */
static const char *short_text(json_object *o)
{
	static char buf[128];
	json_object *a = NULL, *b = NULL;

	if (!json_object_is_type(o, json_type_object))
		return NULL;
	if (json_object_object_get_ex(o, "path", &a) && json_object_is_type(a, json_type_string))
		return json_object_get_string(a)[0] ? json_object_get_string(a) : "/";
	if (json_object_object_get_ex(o, "cidr", &a) && json_object_object_get_ex(o, "action", &b)) {
		snprintf(buf, sizeof(buf), "%s:%s", json_object_get_string(b), json_object_get_string(a));
		return buf;
	}
	return NULL;
}

static char *cell_text(json_object *v)
{
	char *s = NULL;

	if (!v || json_object_is_type(v, json_type_null))
		return strdup("-");
	if (json_object_is_type(v, json_type_string))
		return strdup(json_object_get_string(v)[0] ? json_object_get_string(v) : "-");
	if (json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v), len = 0;
		FILE *f;
		int scalars = 1;

		for (size_t i = 0; i < n; i++)
			if (!is_scalar(json_object_array_get_idx(v, i)) && !short_text(json_object_array_get_idx(v, i)))
				scalars = 0;
		if (scalars) {
			f = open_memstream(&s, &len);
			if (!f)
				return NULL;
			for (size_t i = 0; i < n; i++) {
				json_object *e = json_object_array_get_idx(v, i);
				json_object *x = NULL;
				const char *t = short_text(e);

				fprintf(f, "%s%s", i ? "," : "", t ? t : json_object_get_string(e));
				/* a configured cgroup that does not exist (yet) */
				if (t && json_object_object_get_ex(e, "exists", &x) && !json_object_get_boolean(x))
					fputs("(absent)", f);
			}
			if (n == 0)
				fputs("-", f);
			fclose(f);
			return s;
		}
	}
	return strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int is_object_array(json_object *v)
{
	size_t n;

	if (!json_object_is_type(v, json_type_array))
		return 0;
	n = json_object_array_length(v);
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_object))
			return 0;
	return 1;
}

struct table {
	size_t ncols, nrows;
	char **head; /* ncols */
	char **cells; /* nrows * ncols */
	int *right; /* ncols: right-align */
};

static void table_print(const struct table *t, int indent)
{
	size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof(*w));

	if (!w)
		return;
	for (size_t c = 0; c < t->ncols; c++) {
		w[c] = strlen(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t l = strlen(t->cells[r * t->ncols + c]);

			if (l > w[c])
				w[c] = l;
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		printf("%*s", indent, "");
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = r == 0 ? t->head[c] : t->cells[(r - 1) * t->ncols + c];
			int last = c + 1 == t->ncols;

			if (t->right[c])
				printf("%*s%s", (int)w[c], s, last ? "" : "  ");
			else if (last)
				printf("%s", s);
			else
				printf("%-*s  ", (int)w[c], s);
		}
		putchar('\n');
	}
	free(w);
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->ncols; i++)
		free(t->head[i]);
	for (size_t i = 0; i < t->ncols * t->nrows; i++)
		free(t->cells[i]);
	free(t->head);
	free(t->cells);
	free(t->right);
}

/* An array of objects as a table; columns are the union of the keys in first-seen order. */
static void print_object_table(json_object *arr, int indent)
{
	struct table t = { 0 };
	size_t n = json_object_array_length(arr);
	const char **keys = NULL;

	for (size_t i = 0; i < n; i++) {
		json_object_object_foreach(json_object_array_get_idx(arr, i), k, v)
		{
			size_t j;

			(void)v;
			for (j = 0; j < t.ncols; j++)
				if (strcmp(keys[j], k) == 0)
					break;
			if (j == t.ncols) {
				const char **nk = realloc(keys, (t.ncols + 1) * sizeof(*keys));

				if (!nk)
					goto out;
				keys = nk;
				keys[t.ncols++] = k;
			}
		}
	}
	t.nrows = n;
	t.head = calloc(t.ncols, sizeof(*t.head));
	t.right = calloc(t.ncols, sizeof(*t.right));
	t.cells = calloc(t.ncols * n, sizeof(*t.cells));
	if (!t.head || !t.right || !t.cells)
		goto out;
	for (size_t c = 0; c < t.ncols; c++) {
		t.head[c] = strdup(keys[c]);
		if (!t.head[c])
			goto out;
		for (char *p = t.head[c]; *p; p++)
			*p = (*p == '_') ? ' ' : (char)toupper((unsigned char)*p);
	}
	for (size_t r = 0; r < n; r++) {
		json_object *row = json_object_array_get_idx(arr, r);

		for (size_t c = 0; c < t.ncols; c++) {
			json_object *v = NULL;

			json_object_object_get_ex(row, keys[c], &v);
			t.cells[r * t.ncols + c] = cell_text(v);
			if (!t.cells[r * t.ncols + c])
				goto out;
			if (v && (json_object_is_type(v, json_type_int) ||
				  json_object_is_type(v, json_type_double)))
				t.right[c] = 1;
		}
	}
	table_print(&t, indent);
out:
	if (t.head && t.cells && t.right)
		table_free(&t);
	else {
		free(t.head);
		free(t.cells);
		free(t.right);
	}
	free(keys);
}

static void print_duration(uint64_t s)
{
	if (s >= 86400)
		printf(" (%" PRIu64 "d %" PRIu64 "h)", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		printf(" (%" PRIu64 "h %" PRIu64 "m)", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		printf(" (%" PRIu64 "m %" PRIu64 "s)", s / 60, s % 60);
}

/* Any object: "key: value" lines with aligned values, nested objects indented, arrays of objects
 * as tables. */
static void print_object(json_object *o, int indent)
{
	size_t w = 0;

	json_object_object_foreach(o, k0, v0)
	{
		(void)v0;
		if (strlen(k0) > w)
			w = strlen(k0);
	}
	json_object_object_foreach(o, k, v)
	{
		if (v && json_object_is_type(v, json_type_object)) {
			printf("%*s%s:\n", indent, "", k);
			print_object(v, indent + 2);
		} else if (v && is_object_array(v)) {
			printf("%*s%s:\n", indent, "", k);
			print_object_table(v, indent + 2);
		} else {
			char *s = cell_text(v);

			printf("%*s%s:%*s %s", indent, "", k, (int)(w - strlen(k)), "",
			       s ? s : "?");
			free(s);
			if (strcmp(k, "uptime_s") == 0 && json_object_is_type(v, json_type_int))
				print_duration((uint64_t)json_object_get_int64(v));
			putchar('\n');
		}
	}
}

/* ---- commands -------------------------------------------------------------------------------- */

static int simple_get(const char *cmd, const char *path)
{
	json_object *o = NULL;
	int r;

	r = request(cmd, "GET", path, &o);
	if (r != EXIT_OK)
		return r;
	if (arg_json || !json_object_is_type(o, json_type_object))
		print_json(o);
	else
		print_object(o, 0);
	json_object_put(o);
	return EXIT_OK;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

static uint64_t get_u64(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_uint64(v);
}

static int counter_cmp(const void *a, const void *b)
{
	json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b;
	static const char *const keys[] = { "policy", "cgroup", "country", "protocol", "verdict" };
	int r;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((r = strcmp(get_str(x, keys[i]), get_str(y, keys[i]))))
			return r;
	return 0;
}

static char *u64_text(uint64_t v)
{
	char *s = NULL;

	return asprintf(&s, "%" PRIu64, v) < 0 ? NULL : s;
}

static void print_counters(json_object *o)
{
	static const char *const head[] = { "POLICY",  "CGROUP",      "COUNTRY", "PROTO",
					    "VERDICT", "CONNECTIONS", "PACKETS", "BYTES" };
	static const char *const skeys[] = { "policy", "cgroup", "country", "protocol", "verdict" };
	static const char *const nkeys[] = { "connections", "packets", "bytes" };
	json_object *rows = NULL, **v = NULL;
	uint64_t tot[3] = { 0 };
	struct table t = { .ncols = 8 };
	int right[8] = { 0, 0, 0, 0, 0, 1, 1, 1 };
	char *hd[8];
	size_t n = 0;

	if (json_object_object_get_ex(o, "rows", &rows) &&
	    json_object_is_type(rows, json_type_array))
		n = json_object_array_length(rows);
	v = calloc(n ? n : 1, sizeof(*v));
	t.cells = calloc((n + 1) * 8, sizeof(char *));
	if (!v || !t.cells) {
		free(v);
		free(t.cells);
		return;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_object_array_get_idx(rows, i);
	qsort(v, n, sizeof(*v), counter_cmp);
	for (size_t i = 0; i < n; i++) {
		for (size_t c = 0; c < 5; c++) {
			const char *s = get_str(v[i], skeys[c]);

			t.cells[i * 8 + c] = strdup(s[0] ? s : "-");
		}
		for (size_t c = 0; c < 3; c++) {
			uint64_t x = get_u64(v[i], nkeys[c]);

			tot[c] = tot[c] + x < tot[c] ? UINT64_MAX : tot[c] + x;
			t.cells[i * 8 + 5 + c] = u64_text(x);
		}
	}
	t.cells[n * 8] = strdup("TOTAL");
	for (size_t c = 1; c < 5; c++)
		t.cells[n * 8 + c] = strdup("");
	for (size_t c = 0; c < 3; c++)
		t.cells[n * 8 + 5 + c] = u64_text(tot[c]);
	t.nrows = n + 1;
	for (size_t i = 0; i < t.nrows * 8; i++)
		if (!t.cells[i])
			goto out;
	for (size_t c = 0; c < 8; c++)
		hd[c] = (char *)head[c];
	t.head = hd;
	t.right = right;
	table_print(&t, 0);
out:
	for (size_t i = 0; i < t.nrows * 8; i++)
		free(t.cells[i]);
	free(t.cells);
	free(v);
}

/* Reads "--name VALUE" or "--name=VALUE" at argv[*i]; returns 1 if matched (value in *ret), 0 if
 * not this option, -1 if the value is missing or empty (error printed). */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **ret)
{
	size_t l = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, l) != 0 || (a[l] != '\0' && a[l] != '='))
		return 0;
	if (a[l] == '=')
		*ret = a + l + 1;
	else if (*i + 1 < argc)
		*ret = argv[++*i];
	else
		*ret = NULL;
	if (!*ret || !**ret) {
		usage_error("option %s needs a value", name);
		return -1;
	}
	return 1;
}

/* Global options may also follow the command. 1 if argv[*i] was one, 0 if not, -1 on error. */
static int global_opt(int argc, char **argv, int *i)
{
	int r;

	if (strcmp(argv[*i], "--json") == 0) {
		arg_json = 1;
		return 1;
	}
	if (strcmp(argv[*i], "--help") == 0 || strcmp(argv[*i], "-h") == 0) {
		help(stdout);
		exit(EXIT_OK);
	}
	r = opt_value(argc, argv, i, "--socket", &arg_socket);
	return r;
}

static int append_query(char **q, const char *key, const char *value)
{
	char *e, *n = NULL;

	if (!value)
		return 0;
	e = curl_easy_escape(NULL, value, 0);
	if (!e)
		return -ENOMEM;
	if (asprintf(&n, "%s%c%s=%s", *q, strchr(*q, '?') ? '&' : '?', key, e) < 0) {
		curl_free(e);
		return -ENOMEM;
	}
	curl_free(e);
	free(*q);
	*q = n;
	return 0;
}

static int valid_country(const char *s)
{
	if (strcmp(s, "unknown") == 0 || strcmp(s, "other") == 0)
		return 1;
	return strlen(s) == 2 && ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z') &&
	       ((s[1] | 0x20) >= 'a' && (s[1] | 0x20) <= 'z');
}

static int valid_verdict(const char *s)
{
	return strcmp(s, "allow") == 0 || strcmp(s, "deny") == 0 || strcmp(s, "would_deny") == 0 ||
	       strcmp(s, "local") == 0;
}

static json_object *counters_delta(json_object *before, json_object *now);
static long long parse_duration(const char *s);
static double mono_s(void);
static void sleep_us(long long us);

/* counters --interval: the increase over each interval, count times. */
static int counters_interval(const char *path, long long us, long count)
{
	json_object *prev = NULL, *now = NULL, *delta, *prov;
	double t0, t1;
	int r;

	r = request("counters", "GET", path, &prev);
	if (r != EXIT_OK)
		return r;
	t0 = mono_s();
	for (long i = 0; i < count; i++) {
		sleep_us(us);
		r = request("counters", "GET", path, &now);
		if (r != EXIT_OK)
			break;
		t1 = mono_s();
		delta = counters_delta(prev, now);
		if (!delta) {
			json_object_put(now);
			r = EXIT_DAEMON;
			break;
		}
		if (arg_json) {
			json_object *o = json_object_new_object(), *rows = NULL;

			json_object_object_add(o, "interval_s", json_object_new_double(t1 - t0));
			if (json_object_object_get_ex(now, "provenance", &prov))
				json_object_object_add(o, "provenance", json_object_get(prov));
			json_object_object_get_ex(delta, "rows", &rows);
			json_object_object_add(o, "rows", json_object_get(rows));
			puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								       JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_put(o);
		} else {
			if (i > 0)
				putchar('\n');
			printf("increase over %.1f s:\n", t1 - t0);
			print_counters(delta);
		}
		fflush(stdout);
		json_object_put(delta);
		json_object_put(prev);
		prev = now;
		now = NULL;
		t0 = t1;
	}
	json_object_put(prev);
	return r;
}

static int cmd_counters(int argc, char **argv)
{
	const char *policy = NULL, *cgroup = NULL, *country = NULL, *verdict = NULL;
	const char *interval = NULL, *count = NULL;
	json_object *o = NULL;
	long long us = 0;
	long n = 1;
	char *path;
	int r;

	for (int i = 0; i < argc; i++) {
		if ((r = global_opt(argc, argv, &i)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--policy", &policy)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--cgroup", &cgroup)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--country", &country)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--verdict", &verdict)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--interval", &interval)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--count", &count)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
			continue;
		}
		return usage_error("counters: unknown argument '%s'", argv[i]);
	}
	if (interval && (us = parse_duration(interval)) < 0)
		return usage_error("--interval '%s': must be a duration (5, 5s, 500ms, 2m)",
				   interval);
	if (count) {
		char *end;

		if (!interval)
			return usage_error("--count needs --interval");
		n = strtol(count, &end, 10);
		if (*end || n < 1)
			return usage_error("--count '%s': must be a positive number", count);
	}
	if (country && !valid_country(country))
		return usage_error("--country '%s': must be a two-letter code, unknown or other",
				   country);
	if (verdict && !valid_verdict(verdict))
		return usage_error("--verdict '%s': must be allow, deny, would_deny or local",
				   verdict);
	path = strdup("/v1/counters");
	if (!path || append_query(&path, "policy", policy) < 0 ||
	    append_query(&path, "cgroup", cgroup) < 0 ||
	    append_query(&path, "country", country) < 0 ||
	    append_query(&path, "verdict", verdict) < 0) {
		free(path);
		fprintf(stderr, "egressctl: out of memory\n");
		return EXIT_DAEMON;
	}
	if (interval) {
		r = counters_interval(path, us, n);
		free(path);
		return r;
	}
	r = request("counters", "GET", path, &o);
	free(path);
	if (r != EXIT_OK)
		return r;
	if (arg_json)
		print_json(o);
	else
		print_counters(o);
	json_object_put(o);
	return EXIT_OK;
}

static int cmd_lookup(int argc, char **argv)
{
	const char *addr = NULL, *cgroup = NULL;
	unsigned char a[16];
	char *path;
	int r;

	for (int i = 0; i < argc; i++) {
		if ((r = global_opt(argc, argv, &i)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--cgroup", &cgroup)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return usage_error("lookup: unknown option '%s'", argv[i]);
		if (addr)
			return usage_error("lookup: one ADDRESS only ('%s')", argv[i]);
		addr = argv[i];
	}
	if (!addr)
		return usage_error("lookup: missing ADDRESS");
	if (inet_pton(AF_INET, addr, a) != 1 && inet_pton(AF_INET6, addr, a) != 1)
		return usage_error("lookup: ADDRESS '%s' is not an IPv4 or IPv6 address", addr);
	path = strdup("/v1/lookup");
	if (!path || append_query(&path, "addr", addr) < 0 ||
	    append_query(&path, "cgroup", cgroup) < 0) {
		free(path);
		fprintf(stderr, "egressctl: out of memory\n");
		return EXIT_DAEMON;
	}
	r = simple_get("lookup", path);
	free(path);
	return r;
}

static void print_reload_error(json_object *e)
{
	json_object *f, *l, *m;

	if (json_object_is_type(e, json_type_string))
		fprintf(stderr, "  %s\n", json_object_get_string(e));
	else if (json_object_object_get_ex(e, "message", &m)) {
		if (json_object_object_get_ex(e, "file", &f) &&
		    json_object_object_get_ex(e, "line", &l))
			fprintf(stderr, "  %s:%s: %s\n", json_object_get_string(f),
				json_object_get_string(l), json_object_get_string(m));
		else if (json_object_object_get_ex(e, "file", &f))
			fprintf(stderr, "  %s: %s\n", json_object_get_string(f),
				json_object_get_string(m));
		else
			fprintf(stderr, "  %s\n", json_object_get_string(m));
	} else
		fprintf(stderr, "  %s\n",
			json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
}

static int cmd_reload(int argc, char **argv)
{
	json_object *o = NULL, *ok, *errs, *gen;
	int r, good;

	for (int i = 0; i < argc; i++) {
		if ((r = global_opt(argc, argv, &i)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
			continue;
		}
		return usage_error("reload: unknown argument '%s'", argv[i]);
	}
	r = request("reload", "POST", "/v1/reload", &o);
	if (r != EXIT_OK)
		return r;
	good = json_object_object_get_ex(o, "ok", &ok) && json_object_get_boolean(ok);
	if (arg_json)
		print_json(o);
	if (good) {
		json_object *warns = NULL;

		if (!arg_json) {
			if (json_object_object_get_ex(o, "generation", &gen))
				printf("reload ok: generation %s\n", json_object_get_string(gen));
			else
				printf("reload ok\n");
			/* What the reload did not do although the files say so. */
			if (json_object_object_get_ex(o, "warnings", &warns) &&
			    json_object_is_type(warns, json_type_array))
				for (size_t i = 0; i < json_object_array_length(warns); i++)
					fprintf(stderr, "warning: %s\n",
						json_object_get_string(json_object_array_get_idx(warns, i)));
		}
	} else {
		if (json_object_object_get_ex(o, "generation", &gen))
			fprintf(stderr, "egressctl: reload failed; generation %s stays in place:\n",
				json_object_get_string(gen));
		else
			fprintf(stderr, "egressctl: reload failed:\n");
		if (json_object_object_get_ex(o, "errors", &errs) &&
		    json_object_is_type(errs, json_type_array))
			for (size_t i = 0; i < json_object_array_length(errs); i++)
				print_reload_error(json_object_array_get_idx(errs, i));
	}
	json_object_put(o);
	return good ? EXIT_OK : EXIT_USAGE;
}

static int cmd_noargs(const char *cmd, const char *path, int argc, char **argv)
{
	int r;

	for (int i = 0; i < argc; i++) {
		if ((r = global_opt(argc, argv, &i)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
			continue;
		}
		return usage_error("%s: unknown argument '%s'", cmd, argv[i]);
	}
	return simple_get(cmd, path);
}

/* ---- events --------------------------------------------------------------------------------- */

struct stream {
	CURL *c;
	char *line; /* partial line */
	size_t len, cap;
	struct buf err; /* body of a non-200 reply */
	int status_checked, ok;
	uint64_t events, missed;
};

/* One event as a line: TIME VERDICT POLICY CGROUP COMM[PID] uid=U -> DST:PORT/PROTO COUNTRY */
static void print_event_line(const char *line)
{
	json_object *o = json_tokener_parse(line), *m;

	if (!o) {
		printf("%s\n", line);
		return;
	}
	if (json_object_object_get_ex(o, "missed", &m)) {
		printf("-- missed %" PRIu64 " events (this client fell behind) --\n",
		       json_object_get_uint64(m));
	} else {
		const char *dst = get_str(o, "dst"), *fam = get_str(o, "family");
		const char *pol = get_str(o, "policy"), *cg = get_str(o, "cgroup");

		printf("%s %s %s %s %s[%" PRIu64 "] uid=%" PRIu64 " -> %s%s%s:%" PRIu64 "/%s %s\n",
		       get_str(o, "time"), get_str(o, "verdict"), pol[0] ? pol : "-",
		       cg[0] ? cg : "-", get_str(o, "comm"), get_u64(o, "pid"), get_u64(o, "uid"),
		       strcmp(fam, "ipv6") == 0 ? "[" : "", dst, strcmp(fam, "ipv6") == 0 ? "]" : "",
		       get_u64(o, "dport"), get_str(o, "protocol"), get_str(o, "country"));
	}
	json_object_put(o);
}

static void stream_line(struct stream *st)
{
	st->line[st->len] = '\0';
	if (strncmp(st->line, "{\"missed\":", 10) == 0)
		st->missed++;
	else
		st->events++;
	if (arg_json)
		printf("%s\n", st->line);
	else
		print_event_line(st->line);
	fflush(stdout);
	st->len = 0;
}

static size_t on_stream(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct stream *st = userdata;
	size_t len = size * nmemb;

	if (!st->status_checked) {
		long code = 0;

		curl_easy_getinfo(st->c, CURLINFO_RESPONSE_CODE, &code);
		st->ok = code == 200;
		st->status_checked = 1;
	}
	if (!st->ok)
		return on_data(data, size, nmemb, &st->err);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			stream_line(st);
			continue;
		}
		if (st->len + 2 > st->cap) {
			char *p = realloc(st->line, st->cap * 2 + 256);

			if (!p)
				return 0;
			st->line = p;
			st->cap = st->cap * 2 + 256;
		}
		st->line[st->len++] = data[i];
	}
	return len;
}

static int cmd_events(int argc, char **argv)
{
	const char *policy = NULL, *cgroup = NULL, *country = NULL, *verdict = NULL;
	struct stream st = { 0 };
	char errbuf[CURL_ERROR_SIZE] = "", *path = NULL, *url = NULL;
	long status = 0;
	CURLcode cr;
	int r, follow = 0;

	for (int i = 0; i < argc; i++) {
		if ((r = global_opt(argc, argv, &i)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--policy", &policy)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--cgroup", &cgroup)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--country", &country)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--verdict", &verdict)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
			continue;
		}
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
			follow = 1;
			continue;
		}
		return usage_error("events: unknown argument '%s'", argv[i]);
	}
	if (country && !valid_country(country))
		return usage_error("--country '%s': must be a two-letter code, unknown or other",
				   country);
	if (verdict && !valid_verdict(verdict))
		return usage_error("--verdict '%s': must be allow, deny, would_deny or local",
				   verdict);
	path = strdup(follow ? "/v1/events?follow=1" : "/v1/events");
	if (!path || append_query(&path, "policy", policy) < 0 ||
	    append_query(&path, "cgroup", cgroup) < 0 ||
	    append_query(&path, "country", country) < 0 ||
	    append_query(&path, "verdict", verdict) < 0 ||
	    asprintf(&url, "http://localhost%s", path) < 0) {
		free(path);
		fprintf(stderr, "egressctl: out of memory\n");
		return EXIT_DAEMON;
	}
	free(path);
	st.c = curl_easy_init();
	if (!st.c) {
		free(url);
		fprintf(stderr, "egressctl: cannot initialise libcurl\n");
		return EXIT_DAEMON;
	}
	curl_easy_setopt(st.c, CURLOPT_UNIX_SOCKET_PATH, arg_socket);
	curl_easy_setopt(st.c, CURLOPT_URL, url);
	curl_easy_setopt(st.c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(st.c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(st.c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(st.c, CURLOPT_TIMEOUT, follow ? 0L : 300L);
	curl_easy_setopt(st.c, CURLOPT_USERAGENT, "egressctl/" EGRESSD_VERSION);
	curl_easy_setopt(st.c, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(st.c, CURLOPT_WRITEDATA, &st);
	cr = curl_easy_perform(st.c);
	curl_easy_getinfo(st.c, CURLINFO_RESPONSE_CODE, &status);
	r = EXIT_OK;
	if (cr != CURLE_OK && !(st.status_checked && !st.ok)) {
		long os_errno = 0;

		curl_easy_getinfo(st.c, CURLINFO_OS_ERRNO, &os_errno);
		report_transfer_error(cr, os_errno, errbuf);
		r = EXIT_DAEMON;
	} else if (status != 200) {
		json_object *o = st.err.p ? json_tokener_parse(st.err.p) : NULL, *e;

		if (o && json_object_object_get_ex(o, "error", &e))
			fprintf(stderr, "egressctl: events: %s (HTTP %ld)\n",
				json_object_get_string(e), status);
		else
			fprintf(stderr, "egressctl: events: HTTP %ld from egressd\n", status);
		json_object_put(o);
		r = (status == 400 || status == 413) ? EXIT_USAGE : EXIT_DAEMON;
	} else if (st.len > 0) {
		stream_line(&st); /* a last line without newline */
	}
	free(st.err.p);
	free(st.line);
	free(url);
	curl_easy_cleanup(st.c);
	return r;
}

/* ---- deltas: counters --interval, top ---------------------------------------------------------- */

/* "5", "5s", "500ms", "2m", "1.5s" -> microseconds; -1 if malformed or not positive. */
static long long parse_duration(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !(v > 0))
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		v *= 1e6;
	else if (strcmp(end, "ms") == 0)
		v *= 1e3;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		v *= 60e6;
	else
		return -1;
	if (v < 1 || v > 86400e6)
		return -1;
	return (long long)v;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_us(long long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int same_row(json_object *a, json_object *b)
{
	static const char *const keys[] = { "policy", "cgroup",   "unit",
					    "country", "protocol", "verdict" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(get_str(a, keys[i]), get_str(b, keys[i])) != 0)
			return 0;
	return 1;
}

/* Rows of now minus the same rows of before (a row missing before counts from 0; counters that
 * went down, e.g. after a daemon restart, count from 0 too); rows without change are left out.
 * Returns a new {"rows": [...]} object, or NULL. */
static json_object *counters_delta(json_object *before, json_object *now)
{
	static const char *const nkeys[] = { "connections", "packets", "bytes" };
	json_object *out = json_object_new_object(), *arr = json_object_new_array(), *br = NULL,
		    *nr = NULL;

	if (!out || !arr) {
		json_object_put(out);
		json_object_put(arr);
		return NULL;
	}
	json_object_object_add(out, "rows", arr);
	json_object_object_get_ex(before, "rows", &br);
	json_object_object_get_ex(now, "rows", &nr);
	for (size_t i = 0; nr && i < json_object_array_length(nr); i++) {
		json_object *n = json_object_array_get_idx(nr, i), *b = NULL, *d;
		uint64_t dv[3];
		int any = 0;

		for (size_t k = 0; br && k < json_object_array_length(br); k++)
			if (same_row(json_object_array_get_idx(br, k), n)) {
				b = json_object_array_get_idx(br, k);
				break;
			}
		for (size_t k = 0; k < 3; k++) {
			uint64_t x = get_u64(n, nkeys[k]), y = b ? get_u64(b, nkeys[k]) : 0;

			dv[k] = x >= y ? x - y : x;
			any |= dv[k] != 0;
		}
		if (!any)
			continue;
		d = json_object_new_object();
		if (!d)
			break;
		json_object_object_foreach(n, key, val)
		{
			(void)val;
			if (strcmp(key, "connections") && strcmp(key, "packets") && strcmp(key, "bytes"))
				json_object_object_add(d, key, json_object_get(val));
		}
		for (size_t k = 0; k < 3; k++)
			json_object_object_add(d, nkeys[k], json_object_new_uint64(dv[k]));
		json_object_array_add(arr, d);
	}
	return out;
}

/* ---- top ------------------------------------------------------------------------------------- */

struct agg {
	char *name;
	uint64_t conn, deny, would;
};

static int agg_cmp(const void *a, const void *b)
{
	const struct agg *x = a, *y = b;

	if (x->conn != y->conn)
		return x->conn > y->conn ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Sum the delta rows by key ("country" or "cgroup"). */
static size_t aggregate(json_object *delta, const char *key, struct agg **ret)
{
	json_object *rows = NULL;
	struct agg *v = NULL;
	size_t n = 0;

	json_object_object_get_ex(delta, "rows", &rows);
	for (size_t i = 0; rows && i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		const char *name = get_str(r, key), *verdict = get_str(r, "verdict");
		uint64_t c = get_u64(r, "connections");
		size_t k;

		if (!name[0])
			name = "-";
		for (k = 0; k < n; k++)
			if (strcmp(v[k].name, name) == 0)
				break;
		if (k == n) {
			struct agg *nv = realloc(v, (n + 1) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
			v[n] = (struct agg){ .name = strdup(name) };
			if (!v[n].name)
				break;
			n++;
		}
		v[k].conn += c;
		if (strcmp(verdict, "deny") == 0)
			v[k].deny += c;
		else if (strcmp(verdict, "would_deny") == 0)
			v[k].would += c;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), agg_cmp);
	*ret = v;
	return n;
}

static void print_aggs(const char *title, struct agg *v, size_t n, double secs, int color)
{
	printf("%-40s %11s %8s %10s %10s\n", title, "CONNECTIONS", "DENY", "WOULD_DENY",
	       "CONN/S");
	for (size_t i = 0; i < n; i++) {
		const char *on = "", *off = "";

		if (color && v[i].deny)
			on = "\033[1;31m", off = "\033[0m";
		else if (color && v[i].would)
			on = "\033[33m", off = "\033[0m";
		printf("%s%-40s %11" PRIu64 " %8" PRIu64 " %10" PRIu64 " %10.1f%s\n", on,
		       v[i].name, v[i].conn, v[i].deny, v[i].would,
		       secs > 0 ? (double)v[i].conn / secs : 0.0, off);
		free(v[i].name);
	}
	if (n == 0)
		printf("(no connections)\n");
	free(v);
}

static int cmd_top(int argc, char **argv)
{
	const char *interval = NULL, *iters = NULL;
	json_object *prev = NULL, *now = NULL;
	long long us = 2000000;
	long iterations = 0;
	double t0, t1;
	int r, color = isatty(STDOUT_FILENO);

	for (int i = 0; i < argc; i++) {
		if ((r = global_opt(argc, argv, &i)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--interval", &interval)) != 0 ||
		    (r = opt_value(argc, argv, &i, "--iterations", &iters)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
			continue;
		}
		if (strcmp(argv[i], "--once") == 0) {
			iters = "1";
			continue;
		}
		return usage_error("top: unknown argument '%s'", argv[i]);
	}
	if (interval && (us = parse_duration(interval)) < 0)
		return usage_error("--interval '%s': must be a duration (5, 5s, 500ms, 2m)",
				   interval);
	if (iters) {
		char *end;

		iterations = strtol(iters, &end, 10);
		if (*end || iterations < 1)
			return usage_error("--iterations '%s': must be a positive number", iters);
	}
	r = request("top", "GET", "/v1/counters", &prev);
	if (r != EXIT_OK)
		return r;
	t0 = mono_s();
	for (long it = 0; iterations == 0 || it < iterations; it++) {
		json_object *delta;
		struct agg *v;
		size_t n;
		double secs;
		char tbuf[32];
		time_t tt = time(NULL);
		struct tm tm;

		sleep_us(us);
		r = request("top", "GET", "/v1/counters", &now);
		if (r != EXIT_OK)
			break;
		t1 = mono_s();
		secs = t1 - t0;
		delta = counters_delta(prev, now);
		json_object_put(prev);
		prev = now;
		now = NULL;
		t0 = t1;
		if (!delta) {
			r = EXIT_DAEMON;
			break;
		}
		localtime_r(&tt, &tm);
		strftime(tbuf, sizeof(tbuf), "%H:%M:%S", &tm);
		if (color)
			fputs("\033[H\033[2J", stdout);
		else if (it > 0)
			putchar('\n');
		printf("egressd top  %s  last %.1f s  (deny%s, would_deny%s)\n\n", tbuf, secs,
		       color ? " red" : "", color ? " yellow" : "");
		n = aggregate(delta, "country", &v);
		print_aggs("COUNTRY", v, n, secs, color);
		putchar('\n');
		n = aggregate(delta, "cgroup", &v);
		print_aggs("CGROUP", v, n, secs, color);
		fflush(stdout);
		json_object_put(delta);
	}
	json_object_put(prev);
	return r;
}

int main(int argc, char **argv)
{
	const char *cmd = NULL;
	int i, r;

	arg_socket = getenv("EGRESSD_SOCKET");
	if (!arg_socket || !arg_socket[0])
		arg_socket = DEFAULT_SOCKET;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			help(stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("egressctl %s\n", EGRESSD_VERSION);
			return EXIT_OK;
		}
		r = global_opt(argc, argv, &i);
		if (r < 0)
			return EXIT_USAGE;
		if (r > 0)
			continue;
		if (argv[i][0] == '-')
			return usage_error("unknown option '%s'", argv[i]);
		cmd = argv[i++];
		break;
	}
	if (!cmd)
		return usage_error("missing COMMAND");
	if (strcmp(cmd, "help") == 0) {
		help(stdout);
		return EXIT_OK;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "egressctl: cannot initialise libcurl\n");
		return EXIT_DAEMON;
	}
	argc -= i;
	argv += i;
	if (strcmp(cmd, "status") == 0)
		r = cmd_noargs("status", "/v1/status", argc, argv);
	else if (strcmp(cmd, "policies") == 0)
		r = cmd_noargs("policies", "/v1/policies", argc, argv);
	else if (strcmp(cmd, "counters") == 0)
		r = cmd_counters(argc, argv);
	else if (strcmp(cmd, "lookup") == 0)
		r = cmd_lookup(argc, argv);
	else if (strcmp(cmd, "reload") == 0)
		r = cmd_reload(argc, argv);
	else if (strcmp(cmd, "events") == 0)
		r = cmd_events(argc, argv);
	else if (strcmp(cmd, "top") == 0)
		r = cmd_top(argc, argv);
	else
		r = usage_error("unknown command '%s'", cmd);
	curl_global_cleanup();
	return r;
}
