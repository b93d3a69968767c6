/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of daemon/render.c and the counter helpers of daemon/model.c: exact JSON and exact
 * Prometheus text for a fixed snapshot, and a check of the text against the exposition grammar. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "egress_abi.h"
#include "render.h"

#define ID(a, b) ((uint16_t)(((a) - 'A') * 26 + ((b) - 'A') + 1))

/* The fixed snapshot. Rows 0 and 2 have the same names (a restarted unit got a new cgroup id) and
 * are summed; row 3 needs escaping; row 4 is the overflow slot. */
static struct counter_row fixed_rows[] = {
	{ 10, "system.slice/pay.service", "pay.service", "eu-residency", ID('D', 'E'), 6,
	  EGRESS_VERDICT_ALLOW, 0, 5, 50, 5000 },
	{ 10, "system.slice/pay.service", "pay.service", "eu-residency", ID('U', 'S'), 6,
	  EGRESS_VERDICT_DENY, 0, 2, 0, 0 },
	{ 11, "system.slice/pay.service", "pay.service", "eu-residency", ID('D', 'E'), 6,
	  EGRESS_VERDICT_ALLOW, 0, 1, 10, 1000 },
	{ 12, "odd\"na\\me\nx", "", "p\"1", EGRESS_COUNTRY_UNKNOWN, 17, EGRESS_VERDICT_WOULD_DENY,
	  0, 3, 4, 400 },
	{ 0, NULL, NULL, NULL, 0, 6, EGRESS_VERDICT_ALLOW, 1, 7, 0, 0 },
	{ 1, "", "", "eu-residency", ID('C', 'H'), 47, EGRESS_VERDICT_LOCAL, 0, 1, 1, 84 },
};
static const struct counter_rows fixed = { fixed_rows, sizeof(fixed_rows) / sizeof(fixed_rows[0]) };

static const char expected_json[] =
	"{\"rows\":["
	"{\"cgroup\":\"\",\"unit\":\"\",\"policy\":\"\",\"country\":\"other\",\"protocol\":\"tcp\","
	"\"verdict\":\"allow\",\"connections\":7,\"packets\":0,\"bytes\":0},"
	"{\"cgroup\":\"\",\"unit\":\"\",\"policy\":\"eu-residency\",\"country\":\"CH\",\"protocol\":\"47\","
	"\"verdict\":\"local\",\"connections\":1,\"packets\":1,\"bytes\":84},"
	"{\"cgroup\":\"system.slice/pay.service\",\"unit\":\"pay.service\",\"policy\":\"eu-residency\","
	"\"country\":\"DE\",\"protocol\":\"tcp\",\"verdict\":\"allow\",\"connections\":6,\"packets\":60,"
	"\"bytes\":6000},"
	"{\"cgroup\":\"system.slice/pay.service\",\"unit\":\"pay.service\",\"policy\":\"eu-residency\","
	"\"country\":\"US\",\"protocol\":\"tcp\",\"verdict\":\"deny\",\"connections\":2,\"packets\":0,"
	"\"bytes\":0},"
	"{\"cgroup\":\"odd\\\"na\\\\me\\nx\",\"unit\":\"\",\"policy\":\"p\\\"1\",\"country\":\"unknown\","
	"\"protocol\":\"udp\",\"verdict\":\"would_deny\",\"connections\":3,\"packets\":4,\"bytes\":400}"
	"]}";

#define L_OTHER \
	"{policy=\"\",cgroup=\"\",unit=\"\",country=\"other\",protocol=\"tcp\",verdict=\"allow\"}"
#define L_CH \
	"{policy=\"eu-residency\",cgroup=\"\",unit=\"\",country=\"CH\",protocol=\"47\",verdict=\"local\"}"
#define L_DE                                                                                 \
	"{policy=\"eu-residency\",cgroup=\"system.slice/pay.service\",unit=\"pay.service\"," \
	"country=\"DE\",protocol=\"tcp\",verdict=\"allow\"}"
#define L_US                                                                                 \
	"{policy=\"eu-residency\",cgroup=\"system.slice/pay.service\",unit=\"pay.service\"," \
	"country=\"US\",protocol=\"tcp\",verdict=\"deny\"}"
#define L_ODD                                                                              \
	"{policy=\"p\\\"1\",cgroup=\"odd\\\"na\\\\me\\nx\",unit=\"\",country=\"unknown\"," \
	"protocol=\"udp\",verdict=\"would_deny\"}"

static const char expected_metrics[] =
	"# HELP egressd_connections_total Connection decisions (connect, and sendmsg with an address) by "
	"workload, destination country, protocol and verdict.\n"
	"# TYPE egressd_connections_total counter\n"
	"egressd_connections_total" L_OTHER " 7\n"
	"egressd_connections_total" L_CH " 1\n"
	"egressd_connections_total" L_DE " 6\n"
	"egressd_connections_total" L_US " 2\n"
	"egressd_connections_total" L_ODD " 3\n"
	"# HELP egressd_packets_total Packets sent, by workload, destination country, protocol and verdict.\n"
	"# TYPE egressd_packets_total counter\n"
	"egressd_packets_total" L_OTHER " 0\n"
	"egressd_packets_total" L_CH " 1\n"
	"egressd_packets_total" L_DE " 60\n"
	"egressd_packets_total" L_US " 0\n"
	"egressd_packets_total" L_ODD " 4\n"
	"# HELP egressd_bytes_total Bytes sent (IP length), by workload, destination country, protocol and "
	"verdict.\n"
	"# TYPE egressd_bytes_total counter\n"
	"egressd_bytes_total" L_OTHER " 0\n"
	"egressd_bytes_total" L_CH " 84\n"
	"egressd_bytes_total" L_DE " 6000\n"
	"egressd_bytes_total" L_US " 0\n"
	"egressd_bytes_total" L_ODD " 400\n"
	"# HELP egressd_events_lost_total Deny events dropped because the ring buffer was full.\n"
	"# TYPE egressd_events_lost_total counter\n"
	"egressd_events_lost_total 1\n"
	"# HELP egressd_counts_overflowed_total Counter updates (decisions, packet-hook runs) that went to the "
	"overflow row (country \"other\") because the counter map was full.\n"
	"# TYPE egressd_counts_overflowed_total counter\n"
	"egressd_counts_overflowed_total 2\n"
	"# HELP egressd_geo_prefixes CIDR prefixes in the loaded GeoIP data, by address family.\n"
	"# TYPE egressd_geo_prefixes gauge\n"
	"egressd_geo_prefixes{family=\"ipv4\"} 300\n"
	"egressd_geo_prefixes{family=\"ipv6\"} 40\n"
	"# HELP egressd_policy_generation Generation number of the installed policy and country tables.\n"
	"# TYPE egressd_policy_generation gauge\n"
	"egressd_policy_generation 5\n"
	"# HELP egressd_reload_failures_total Reloads that failed and kept the running generation.\n"
	"# TYPE egressd_reload_failures_total counter\n"
	"egressd_reload_failures_total 6\n"
	"# HELP egressd_enforcing 1 when the programs are attached and the policy is in enforce mode, "
	"else 0.\n"
	"# TYPE egressd_enforcing gauge\n"
	"egressd_enforcing{policy=\"a\\\\b\"} 0\n"
	"egressd_enforcing{policy=\"eu-residency\"} 1\n"
	"egressd_enforcing{policy=\"zz\"} 0\n";

static const struct policy_gauge fixed_policies[] = { { "zz", 0 },
						      { "eu-residency", 1 },
						      { "a\\b", 0 } };

static const struct metrics_snapshot fixed_snap = {
	.rows = &fixed,
	.events_lost = 1,
	.counter_overflow = 2,
	.geo_prefixes4 = 300,
	.geo_prefixes6 = 40,
	.policy_generation = 5,
	.reload_failures = 6,
	.policies = fixed_policies,
	.npolicies = 3,
};

/* ---- a small checker of the text exposition format 0.0.4 ----------------------------------
 * Source: https://prometheus.io/docs/instrumenting/exposition_formats/ (text format details).
 * Checks: every line ends in \n; comments are "# HELP name text" or "# TYPE name type" (type in
 * counter|gauge|histogram|summary|untyped), at most one of each per family, TYPE before the first
 * sample; metric and label names match the grammar; label values use only the escapes \\ \" \n;
 * the value is a number; no two samples have the same name and labels; a family's samples are
 * contiguous. Returns 0 or the 1-based number of the first bad line. */
static int is_name_start(int c, int colon)
{
	return isalpha(c) || c == '_' || (colon && c == ':');
}

static int is_name_char(int c, int colon)
{
	return is_name_start(c, colon) || isdigit(c);
}

static const char *parse_name(const char *p, int colon)
{
	if (!is_name_start((unsigned char)*p, colon))
		return NULL;
	while (is_name_char((unsigned char)*p, colon))
		p++;
	return p;
}

#define MAXF 64
static int exposition_check(const char *text)
{
	char types[MAXF][128], helps[MAXF][128], seen[MAXF][128];
	size_t ntypes = 0, nhelps = 0, nseen = 0;
	char **series = NULL;
	size_t nseries = 0;
	char last[128] = "";
	int lineno = 0, bad = 0;
	const char *p = text;

	while (*p && !bad) {
		const char *nl = strchr(p, '\n'), *q, *e;
		char line[1024], name[128];

		lineno++;
		if (!nl || (size_t)(nl - p) >= sizeof(line)) {
			bad = lineno;
			break;
		}
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		p = nl + 1;
		if (line[0] == '#') {
			int is_type;

			if (strncmp(line, "# HELP ", 7) == 0)
				is_type = 0;
			else if (strncmp(line, "# TYPE ", 7) == 0)
				is_type = 1;
			else
				continue; /* other comments are allowed */
			q = line + 7;
			e = parse_name(q, 1);
			if (!e || *e != ' ' || (size_t)(e - q) >= sizeof(name)) {
				bad = lineno;
				break;
			}
			memcpy(name, q, (size_t)(e - q));
			name[e - q] = '\0';
			if (is_type) {
				const char *t = e + 1;

				if (strcmp(t, "counter") && strcmp(t, "gauge") &&
				    strcmp(t, "histogram") && strcmp(t, "summary") &&
				    strcmp(t, "untyped"))
					bad = lineno;
				for (size_t i = 0; i < ntypes; i++)
					if (strcmp(types[i], name) == 0)
						bad = lineno;
				for (size_t i = 0; i < nseen; i++)
					if (strcmp(seen[i], name) == 0)
						bad = lineno; /* TYPE after samples */
				if (ntypes < MAXF)
					strcpy(types[ntypes++], name);
			} else {
				for (const char *h = e + 1; *h; h++)
					if (*h == '\\' && h[1] != '\\' && h[1] != 'n')
						bad = lineno;
				for (size_t i = 0; i < nhelps; i++)
					if (strcmp(helps[i], name) == 0)
						bad = lineno;
				if (nhelps < MAXF)
					strcpy(helps[nhelps++], name);
			}
			continue;
		}
		/* sample: name [{labels}] value */
		q = line;
		e = parse_name(q, 1);
		if (!e || (size_t)(e - q) >= sizeof(name)) {
			bad = lineno;
			break;
		}
		memcpy(name, q, (size_t)(e - q));
		name[e - q] = '\0';
		{
			int typed = 0;

			for (size_t i = 0; i < ntypes; i++)
				if (strcmp(types[i], name) == 0)
					typed = 1;
			if (!typed)
				bad = lineno;
		}
		if (strcmp(last, name) != 0) {
			for (size_t i = 0; i < nseen; i++)
				if (strcmp(seen[i], name) == 0)
					bad = lineno; /* family not contiguous */
			if (nseen < MAXF)
				strcpy(seen[nseen++], name);
			strcpy(last, name);
		}
		if (*e == '{') {
			e++;
			while (*e != '}') {
				e = parse_name(e, 0);
				if (!e || *e != '=' || e[1] != '"') {
					bad = lineno;
					break;
				}
				e += 2;
				while (*e && *e != '"') {
					if (*e == '\\') {
						if (e[1] != '\\' && e[1] != '"' && e[1] != 'n') {
							bad = lineno;
							break;
						}
						e++;
					}
					e++;
				}
				if (bad || *e != '"') {
					bad = lineno;
					break;
				}
				e++;
				if (*e == ',')
					e++;
				else if (*e != '}') {
					bad = lineno;
					break;
				}
			}
			if (bad)
				break;
			e++;
		}
		if (*e != ' ') {
			bad = lineno;
			break;
		}
		{
			char *end;
			size_t keylen = (size_t)(e - line);

			strtod(e + 1, &end);
			if (end == e + 1 || (*end != '\0' && *end != ' '))
				bad = lineno;
			for (size_t i = 0; i < nseries; i++)
				if (strlen(series[i]) == keylen &&
				    strncmp(series[i], line, keylen) == 0)
					bad = lineno; /* duplicate series */
			series = realloc(series, (nseries + 1) * sizeof(*series));
			assert_non_null(series);
			series[nseries] = strndup(line, keylen);
			assert_non_null(series[nseries]);
			nseries++;
		}
	}
	for (size_t i = 0; i < nseries; i++)
		free(series[i]);
	free(series);
	return bad;
}

static void test_exposition_checker_rejects(void **state)
{
	/* The checker itself must be able to fail. */
	assert_int_equal(exposition_check("# TYPE a counter\na 1\n"), 0);
	assert_int_equal(exposition_check("a 1\n"), 1); /* no TYPE */
	assert_int_equal(exposition_check("# TYPE a counter\na{x=\"\\q\"} 1\n"),
			 2); /* bad escape */
	assert_int_equal(exposition_check("# TYPE a counter\na{x=\"1\"} 1\na{x=\"1\"} 2\n"), 3);
	assert_int_equal(exposition_check("# TYPE a counter\na x\n"), 2); /* not a number */
	assert_int_equal(exposition_check("# TYPE a counter\na 1"), 2); /* no final newline */
	assert_int_equal(
		exposition_check("# TYPE a counter\n# TYPE b gauge\na 1\nb 1\na{y=\"\"} 1\n"), 5);
	assert_int_equal(exposition_check("# TYPE a counter\na{x=\"a\nb\"} 1\n"),
			 2); /* raw newline */
}

static void test_names(void **state)
{
	char buf[8], b4[4];

	assert_string_equal(render_country_name(0, 0, buf), "unknown");
	assert_string_equal(render_country_name(1, 0, buf), "AA");
	assert_string_equal(render_country_name(ID('D', 'E'), 0, buf), "DE");
	assert_int_equal(ID('D', 'E'), 83);
	assert_string_equal(render_country_name(676, 0, buf), "ZZ");
	assert_string_equal(render_country_name(677, 0, buf), "unknown");
	assert_string_equal(render_country_name(ID('D', 'E'), 1, buf), "other");
	assert_string_equal(render_proto_name(6, b4), "tcp");
	assert_string_equal(render_proto_name(17, b4), "udp");
	assert_string_equal(render_proto_name(1, b4), "icmp");
	assert_string_equal(render_proto_name(58, b4), "ipv6-icmp");
	assert_string_equal(render_proto_name(255, b4), "255");
	assert_string_equal(render_proto_name(0, b4), "0");
	assert_string_equal(render_verdict_name(EGRESS_VERDICT_ALLOW, b4), "allow");
	assert_string_equal(render_verdict_name(EGRESS_VERDICT_DENY, b4), "deny");
	assert_string_equal(render_verdict_name(EGRESS_VERDICT_WOULD_DENY, b4), "would_deny");
	assert_string_equal(render_verdict_name(EGRESS_VERDICT_LOCAL, b4), "local");
	assert_string_equal(render_verdict_name(9, b4), "9");
	assert_int_equal(render_verdict_from_name("would_deny"), EGRESS_VERDICT_WOULD_DENY);
	assert_int_equal(render_verdict_from_name("local"), EGRESS_VERDICT_LOCAL);
	assert_int_equal(render_verdict_from_name("Deny"), -EINVAL);
	assert_int_equal(render_verdict_from_name(""), -EINVAL);
}

static void test_filter_check(void **state)
{
	const char *field = NULL;
	struct counter_filter f = { 0 };

	assert_int_equal(render_filter_check(&f, &field), 0);
	f = (struct counter_filter){
		.policy = "p", .cgroup = "a/b", .country = "de", .verdict = "deny"
	};
	assert_int_equal(render_filter_check(&f, &field), 0);
	f.country = "unknown";
	assert_int_equal(render_filter_check(&f, &field), 0);
	f.country = "other";
	assert_int_equal(render_filter_check(&f, &field), 0);
	f.country = "DEU";
	assert_int_equal(render_filter_check(&f, &field), -EINVAL);
	assert_string_equal(field, "country");
	f.country = "D1";
	assert_int_equal(render_filter_check(&f, &field), -EINVAL);
	f.country = NULL;
	f.verdict = "blocked";
	field = NULL;
	assert_int_equal(render_filter_check(&f, &field), -EINVAL);
	assert_string_equal(field, "verdict");
	f.verdict = NULL;
	f.policy = "";
	assert_int_equal(render_filter_check(&f, &field), -EINVAL);
	assert_string_equal(field, "policy");
	f.policy = NULL;
	f.cgroup = "";
	assert_int_equal(render_filter_check(&f, &field), -EINVAL);
	assert_string_equal(field, "cgroup");
}

static void test_filter_match(void **state)
{
	struct counter_filter f = { 0 };

	assert_int_equal(counter_filter_match(NULL, &fixed_rows[0]), 1);
	assert_int_equal(counter_filter_match(&f, &fixed_rows[4]), 1);
	f.policy = "eu-residency";
	assert_int_equal(counter_filter_match(&f, &fixed_rows[0]), 1);
	assert_int_equal(counter_filter_match(&f, &fixed_rows[3]), 0);
	assert_int_equal(counter_filter_match(&f, &fixed_rows[4]), 0); /* overflow: no policy */
	f = (struct counter_filter){ .cgroup = "pay.service" }; /* unit name */
	assert_int_equal(counter_filter_match(&f, &fixed_rows[0]), 1);
	assert_int_equal(counter_filter_match(&f, &fixed_rows[5]), 0);
	f.cgroup = "/system.slice/pay.service"; /* path, leading slash ignored */
	assert_int_equal(counter_filter_match(&f, &fixed_rows[1]), 1);
	f.cgroup = "system.slice";
	assert_int_equal(counter_filter_match(&f, &fixed_rows[1]), 0); /* exact, no subtree */
	f.cgroup = "/"; /* the root cgroup */
	assert_int_equal(counter_filter_match(&f, &fixed_rows[5]), 1);
	assert_int_equal(counter_filter_match(&f, &fixed_rows[0]), 0);
	f = (struct counter_filter){ .country = "de" };
	assert_int_equal(counter_filter_match(&f, &fixed_rows[0]), 1);
	assert_int_equal(counter_filter_match(&f, &fixed_rows[1]), 0);
	f.country = "unknown";
	assert_int_equal(counter_filter_match(&f, &fixed_rows[3]), 1);
	assert_int_equal(counter_filter_match(&f, &fixed_rows[4]), 0); /* overflow is "other" */
	f.country = "other";
	assert_int_equal(counter_filter_match(&f, &fixed_rows[4]), 1);
	assert_int_equal(counter_filter_match(&f, &fixed_rows[3]), 0);
	f = (struct counter_filter){ .verdict = "would_deny" };
	assert_int_equal(counter_filter_match(&f, &fixed_rows[3]), 1);
	assert_int_equal(counter_filter_match(&f, &fixed_rows[0]), 0);
}

static void test_counters_json(void **state)
{
	json_object *o = NULL;
	const char *s;

	assert_int_equal(render_counters_json(&fixed, NULL, &o), 0);
	s = json_object_to_json_string_ext(o,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	assert_string_equal(s, expected_json);
	json_object_put(o);
}

static void test_counters_json_filtered(void **state)
{
	struct counter_filter f = { .policy = "eu-residency", .verdict = "allow" };
	json_object *o = NULL;

	assert_int_equal(render_counters_json(&fixed, &f, &o), 0);
	assert_string_equal(
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
		"{\"rows\":[{\"cgroup\":\"system.slice\\/pay.service\",\"unit\":\"pay.service\","
		"\"policy\":\"eu-residency\",\"country\":\"DE\",\"protocol\":\"tcp\",\"verdict\":\"allow\","
		"\"connections\":6,\"packets\":60,\"bytes\":6000}]}");
	json_object_put(o);
	f = (struct counter_filter){ .country = "XX" };
	assert_int_equal(render_counters_json(&fixed, &f, &o), 0);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"rows\":[]}");
	json_object_put(o);
	assert_int_equal(render_counters_json(NULL, NULL, &o), 0);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"rows\":[]}");
	json_object_put(o);
}

static void test_counters_json_big_values(void **state)
{
	struct counter_row r[] = {
		{ 1, "a", "", "p", ID('F', 'R'), 6, 0, 0, UINT64_MAX, UINT64_MAX - 1, 1 },
		{ 2, "a", "", "p", ID('F', 'R'), 6, 0, 0, 5, 1, 2 },
	};
	struct counter_rows rows = { r, 2 };
	json_object *o = NULL;

	/* Summing saturates instead of wrapping. */
	assert_int_equal(render_counters_json(&rows, NULL, &o), 0);
	assert_string_equal(
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
		"{\"rows\":[{\"cgroup\":\"a\",\"unit\":\"\",\"policy\":\"p\",\"country\":\"FR\","
		"\"protocol\":\"tcp\",\"verdict\":\"allow\",\"connections\":18446744073709551615,"
		"\"packets\":18446744073709551615,\"bytes\":3}]}");
	json_object_put(o);
}

static void test_metrics_exact(void **state)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(render_metrics(&fixed_snap, &text, &len), 0);
	assert_string_equal(text, expected_metrics);
	assert_int_equal(len, strlen(expected_metrics));
	assert_int_equal(exposition_check(text), 0);
	free(text);
}

static void test_metrics_empty(void **state)
{
	struct metrics_snapshot s = { 0 };
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(render_metrics(&s, &text, &len), 0);
	assert_int_equal(exposition_check(text), 0);
	assert_non_null(strstr(
		text, "# TYPE egressd_connections_total counter\n# HELP egressd_packets_total"));
	assert_non_null(strstr(text, "\negressd_policy_generation 0\n"));
	assert_non_null(strstr(text, "# TYPE egressd_enforcing gauge\n"));
	assert_int_equal(text[len - 1], '\n');
	assert_null(strstr(text, "egressd_enforcing{"));
	free(text);
}

static void test_event_json(void **state)
{
	struct egress_event ev = {
		.ts_ns = 5,
		.cgroup_id = 77,
		.pid = 4321,
		.tid = 4322,
		.uid = 1000,
		.gid = 1001,
		.country = (uint16_t)(('U' - 'A') * 26 + ('S' - 'A') + 1),
		.dport = 443,
		.family = 10,
		.proto = 17,
		.verdict = EGRESS_VERDICT_WOULD_DENY,
		.hook = EGRESS_HOOK_SENDMSG6,
		.addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 },
		.comm = "0123456789abcdef", /* 16 bytes, no NUL */
	};
	struct event_view v = { .ev = &ev, .policy = "p\"q", .cgroup = "a.slice/b.service",
				.unit = "b.service", .generation = 12 };
	char *line = NULL;
	size_t len = 0;
	char hb[4];

	/* 2024-02-29T23:59:59.123456789Z */
	assert_int_equal(render_event_json(&v, 9, 1709251199123456789LL, "{\"generation\":12}",
					   &line, &len),
			 0);
	assert_string_equal(
		line,
		"{\"seq\":9,\"time\":\"2024-02-29T23:59:59.123456Z\",\"time_ns\":1709251199123456789,"
		"\"pid\":4321,\"tid\":4322,\"uid\":1000,\"gid\":1001,\"comm\":\"0123456789abcdef\","
		"\"cgroup_id\":77,\"cgroup\":\"a.slice/b.service\",\"unit\":\"b.service\","
		"\"policy\":\"p\\\"q\",\"country\":\"US\",\"family\":\"ipv6\",\"dst\":\"2001:db8::1\","
		"\"dport\":443,\"protocol\":\"udp\",\"verdict\":\"would_deny\",\"hook\":\"sendmsg6\","
		"\"generation\":12,\"provenance\":{\"generation\":12}}\n");
	assert_int_equal(len, strlen(line));
	free(line);
	/* IPv4, unknown country, no provenance, the epoch itself */
	ev.family = 2;
	memcpy(ev.addr, (uint8_t[]){ 192, 0, 2, 1 }, 4);
	ev.country = 0;
	ev.verdict = EGRESS_VERDICT_DENY;
	ev.hook = EGRESS_HOOK_CONNECT4;
	ev.proto = 6;
	memcpy(ev.comm, "sh\0", 3);
	assert_int_equal(render_event_json(&v, 1, 0, NULL, &line, &len), 0);
	assert_string_equal(
		line,
		"{\"seq\":1,\"time\":\"1970-01-01T00:00:00.000000Z\",\"time_ns\":0,\"pid\":4321,"
		"\"tid\":4322,\"uid\":1000,\"gid\":1001,\"comm\":\"sh\",\"cgroup_id\":77,"
		"\"cgroup\":\"a.slice/b.service\",\"unit\":\"b.service\",\"policy\":\"p\\\"q\","
		"\"country\":\"unknown\",\"family\":\"ipv4\",\"dst\":\"192.0.2.1\",\"dport\":443,"
		"\"protocol\":\"tcp\",\"verdict\":\"deny\",\"hook\":\"connect4\",\"generation\":12}\n");
	free(line);
	assert_string_equal(render_hook_name(EGRESS_HOOK_CONNECT6, hb), "connect6");
	assert_string_equal(render_hook_name(EGRESS_HOOK_SENDMSG4, hb), "sendmsg4");
	assert_string_equal(render_hook_name(EGRESS_HOOK_SKB_EGRESS, hb), "egress");
	assert_string_equal(render_hook_name(99, hb), "99");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exposition_checker_rejects),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_filter_check),
		cmocka_unit_test(test_filter_match),
		cmocka_unit_test(test_counters_json),
		cmocka_unit_test(test_counters_json_filtered),
		cmocka_unit_test(test_counters_json_big_values),
		cmocka_unit_test(test_metrics_exact),
		cmocka_unit_test(test_metrics_empty),
		cmocka_unit_test(test_event_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
