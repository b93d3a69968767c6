/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "render.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "egress_abi.h"
#include "geo.h"
#include "policy.h"

const char *render_country_name(uint16_t id, int overflow, char buf[8])
{
	if (overflow)
		return "other";
	if (id >= EGRESS_COUNTRY_MAX)
		return "unknown";
	return geo_country_code(id, buf);
}

const char *render_proto_name(uint8_t proto, char buf[4])
{
	switch (proto) {
	case 1:
		return "icmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 58:
		return "ipv6-icmp";
	default:
		snprintf(buf, 4, "%u", (unsigned)proto);
		return buf;
	}
}

const char *render_verdict_name(uint8_t verdict, char buf[4])
{
	if (verdict < EGRESS_VERDICT_COUNT)
		return verdict_name(verdict);
	snprintf(buf, 4, "%u", (unsigned)verdict);
	return buf;
}

int render_verdict_from_name(const char *name)
{
	for (int i = 0; i < EGRESS_VERDICT_COUNT; i++)
		if (strcmp(name, verdict_name((uint8_t)i)) == 0)
			return i;
	return -EINVAL;
}

static int is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

int render_filter_check(const struct counter_filter *f, const char **ret_field)
{
	const char *bad = NULL;

	if (f->policy && !f->policy[0])
		bad = "policy";
	else if (f->cgroup && !f->cgroup[0])
		bad = "cgroup";
	else if (f->country && strcmp(f->country, "unknown") != 0 &&
		 strcmp(f->country, "other") != 0 &&
		 !(strlen(f->country) == 2 && is_alpha(f->country[0]) && is_alpha(f->country[1])))
		bad = "country";
	else if (f->verdict && render_verdict_from_name(f->verdict) < 0)
		bad = "verdict";
	if (bad) {
		*ret_field = bad;
		return -EINVAL;
	}
	return 0;
}

/* One output row: names resolved, equal names summed. Strings point into the input rows. */
struct vrow {
	const char *policy, *cgroup, *unit;
	char country[8];
	uint8_t proto, verdict;
	uint64_t connections, packets, bytes;
};

static const char *nz(const char *s)
{
	return s ? s : "";
}

static int vrow_cmp(const void *a, const void *b)
{
	const struct vrow *x = a, *y = b;
	int r;

	if ((r = strcmp(x->policy, y->policy)) || (r = strcmp(x->cgroup, y->cgroup)) ||
	    (r = strcmp(x->unit, y->unit)) || (r = strcmp(x->country, y->country)))
		return r;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->verdict != y->verdict)
		return x->verdict < y->verdict ? -1 : 1;
	return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* Filter, name, sort and merge rows into a new array *ret of *ret_n entries (free()). */
static int build_view(const struct counter_rows *rows, const struct counter_filter *filter,
		      struct vrow **ret, size_t *ret_n)
{
	struct vrow *v;
	size_t n = 0, m = 0;
	size_t total = rows ? rows->n : 0;

	v = calloc(total ? total : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < total; i++) {
		const struct counter_row *r = &rows->v[i];
		char buf[8];

		if (filter && !counter_filter_match(filter, r))
			continue;
		v[n].policy = r->overflow ? "" : nz(r->policy);
		v[n].cgroup = r->overflow ? "" : nz(r->cgroup);
		v[n].unit = r->overflow ? "" : nz(r->unit);
		snprintf(v[n].country, sizeof(v[n].country), "%s",
			 render_country_name(r->country, r->overflow, buf));
		v[n].proto = r->proto;
		v[n].verdict = r->verdict;
		v[n].connections = r->connections;
		v[n].packets = r->packets;
		v[n].bytes = r->bytes;
		n++;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), vrow_cmp);
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && vrow_cmp(&v[m - 1], &v[i]) == 0) {
			v[m - 1].connections = sat_add(v[m - 1].connections, v[i].connections);
			v[m - 1].packets = sat_add(v[m - 1].packets, v[i].packets);
			v[m - 1].bytes = sat_add(v[m - 1].bytes, v[i].bytes);
			continue;
		}
		v[m++] = v[i];
	}
	*ret = v;
	*ret_n = m;
	return 0;
}

static int add_str(json_object *o, const char *key, const char *val)
{
	json_object *s = json_object_new_string(val);

	if (!s || json_object_object_add(o, key, s) < 0) {
		json_object_put(s);
		return -ENOMEM;
	}
	return 0;
}

static int add_u64(json_object *o, const char *key, uint64_t val)
{
	json_object *s = json_object_new_uint64(val);

	if (!s || json_object_object_add(o, key, s) < 0) {
		json_object_put(s);
		return -ENOMEM;
	}
	return 0;
}

int render_counters_json(const struct counter_rows *rows, const struct counter_filter *filter,
			 json_object **ret)
{
	json_object *top = NULL, *arr = NULL;
	struct vrow *v = NULL;
	size_t n = 0;
	int r;

	r = build_view(rows, filter, &v, &n);
	if (r < 0)
		return r;
	r = -ENOMEM;
	top = json_object_new_object();
	arr = json_object_new_array_ext((int)(n ? n : 1));
	if (!top || !arr)
		goto fail;
	if (json_object_object_add(top, "rows", arr) < 0)
		goto fail;
	arr = NULL; /* owned by top now; still reachable through it */
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		char pbuf[4], vbuf[4];

		if (!o)
			goto fail;
		if (json_object_array_add(json_object_object_get(top, "rows"), o) < 0) {
			json_object_put(o);
			goto fail;
		}
		if (add_str(o, "cgroup", v[i].cgroup) < 0 || add_str(o, "unit", v[i].unit) < 0 ||
		    add_str(o, "policy", v[i].policy) < 0 ||
		    add_str(o, "country", v[i].country) < 0 ||
		    add_str(o, "protocol", render_proto_name(v[i].proto, pbuf)) < 0 ||
		    add_str(o, "verdict", render_verdict_name(v[i].verdict, vbuf)) < 0 ||
		    add_u64(o, "connections", v[i].connections) < 0 ||
		    add_u64(o, "packets", v[i].packets) < 0 || add_u64(o, "bytes", v[i].bytes) < 0)
			goto fail;
	}
	free(v);
	*ret = top;
	return 0;
fail:
	json_object_put(arr);
	json_object_put(top);
	free(v);
	return r;
}

/* Label value escaping of the text format: \ -> \\, " -> \", newline -> \n. */
static void put_label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void put_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_row_labels(FILE *f, const struct vrow *r)
{
	char pbuf[4], vbuf[4];

	fputs("{policy=\"", f);
	put_label_value(f, r->policy);
	fputs("\",cgroup=\"", f);
	put_label_value(f, r->cgroup);
	fputs("\",unit=\"", f);
	put_label_value(f, r->unit);
	fputs("\",country=\"", f);
	put_label_value(f, r->country);
	fputs("\",protocol=\"", f);
	put_label_value(f, render_proto_name(r->proto, pbuf));
	fputs("\",verdict=\"", f);
	put_label_value(f, render_verdict_name(r->verdict, vbuf));
	fputs("\"}", f);
}

static int policy_gauge_cmp(const void *a, const void *b)
{
	const struct policy_gauge *x = a, *y = b;

	return strcmp(nz(x->name), nz(y->name));
}

int render_metrics(const struct metrics_snapshot *snap, char **ret_text, size_t *ret_len)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} row_families[] = {
		{ "egressd_connections_total",
		  "Connection decisions (connect, and sendmsg with an address) by workload, "
		  "destination country, protocol and verdict.",
		  offsetof(struct vrow, connections) },
		{ "egressd_packets_total",
		  "Packets sent, by workload, destination country, protocol and verdict.",
		  offsetof(struct vrow, packets) },
		{ "egressd_bytes_total",
		  "Bytes sent (IP length), by workload, destination country, protocol and verdict.",
		  offsetof(struct vrow, bytes) },
	};
	struct policy_gauge *pg = NULL;
	struct vrow *v = NULL;
	char *text = NULL;
	size_t n = 0, len = 0;
	FILE *f;
	int r;

	r = build_view(snap->rows, NULL, &v, &n);
	if (r < 0)
		return r;
	if (snap->npolicies > 0) {
		pg = malloc(snap->npolicies * sizeof(*pg));
		if (!pg) {
			free(v);
			return -ENOMEM;
		}
		memcpy(pg, snap->policies, snap->npolicies * sizeof(*pg));
		qsort(pg, snap->npolicies, sizeof(*pg), policy_gauge_cmp);
	}
	f = open_memstream(&text, &len);
	if (!f) {
		free(pg);
		free(v);
		return -ENOMEM;
	}
	for (size_t k = 0; k < sizeof(row_families) / sizeof(row_families[0]); k++) {
		put_family(f, row_families[k].name, "counter", row_families[k].help);
		for (size_t i = 0; i < n; i++) {
			uint64_t val;

			memcpy(&val, (const char *)&v[i] + row_families[k].off, sizeof(val));
			fputs(row_families[k].name, f);
			put_row_labels(f, &v[i]);
			fprintf(f, " %" PRIu64 "\n", val);
		}
	}
	put_family(f, "egressd_events_lost_total", "counter",
		   "Deny events dropped because the ring buffer was full.");
	fprintf(f, "egressd_events_lost_total %" PRIu64 "\n", snap->events_lost);
	put_family(f, "egressd_counts_overflowed_total", "counter",
		   "Counter updates (decisions, packet-hook runs) that went to the overflow row "
		   "(country \"other\") because the counter map was full.");
	fprintf(f, "egressd_counts_overflowed_total %" PRIu64 "\n", snap->counter_overflow);
	put_family(f, "egressd_geo_prefixes", "gauge",
		   "CIDR prefixes in the loaded GeoIP data, by address family.");
	fprintf(f, "egressd_geo_prefixes{family=\"ipv4\"} %" PRIu64 "\n", snap->geo_prefixes4);
	fprintf(f, "egressd_geo_prefixes{family=\"ipv6\"} %" PRIu64 "\n", snap->geo_prefixes6);
	put_family(f, "egressd_policy_generation", "gauge",
		   "Generation number of the installed policy and country tables.");
	fprintf(f, "egressd_policy_generation %" PRIu64 "\n", snap->policy_generation);
	put_family(f, "egressd_reload_failures_total", "counter",
		   "Reloads that failed and kept the running generation.");
	fprintf(f, "egressd_reload_failures_total %" PRIu64 "\n", snap->reload_failures);
	put_family(f, "egressd_enforcing", "gauge",
		   "1 when the programs are attached and the policy is in enforce mode, else 0.");
	for (size_t i = 0; i < snap->npolicies; i++) {
		fputs("egressd_enforcing{policy=\"", f);
		put_label_value(f, nz(pg[i].name));
		fprintf(f, "\"} %d\n", pg[i].enforcing ? 1 : 0);
	}
	r = ferror(f) ? -ENOMEM : 0;
	if (fclose(f) != 0)
		r = -ENOMEM;
	free(pg);
	free(v);
	if (r < 0) {
		free(text);
		return r;
	}
	*ret_text = text;
	*ret_len = len;
	return 0;
}

const char *render_hook_name(uint8_t hook, char buf[4])
{
	switch (hook) {
	case EGRESS_HOOK_CONNECT4:
		return "connect4";
	case EGRESS_HOOK_CONNECT6:
		return "connect6";
	case EGRESS_HOOK_SENDMSG4:
		return "sendmsg4";
	case EGRESS_HOOK_SENDMSG6:
		return "sendmsg6";
	case EGRESS_HOOK_SKB_EGRESS:
		return "egress";
	default:
		snprintf(buf, 4, "%u", (unsigned)hook);
		return buf;
	}
}

int render_event_json(const struct event_view *v, uint64_t seq, int64_t realtime_ns,
		      const char *provenance, char **ret_line, size_t *ret_len)
{
	const struct egress_event *ev = v->ev;
	char addr[INET6_ADDRSTRLEN] = "", comm[17], tbuf[64], code[8], pbuf[4], vbuf[4], hbuf[4];
	json_object *o = json_object_new_object();
	const char *js;
	char *line = NULL;
	struct tm tm;
	time_t sec;
	int64_t nsec;
	int n;

	if (!o)
		return -ENOMEM;
	sec = (time_t)(realtime_ns / 1000000000);
	nsec = realtime_ns % 1000000000;
	if (nsec < 0) {
		nsec += 1000000000;
		sec--;
	}
	if (!gmtime_r(&sec, &tm) || strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		tbuf[0] = '\0';
	snprintf(tbuf + strlen(tbuf), sizeof(tbuf) - strlen(tbuf), ".%06dZ", (int)(nsec / 1000));
	if (!inet_ntop(ev->family == 2 ? AF_INET : AF_INET6, ev->addr, addr, sizeof(addr)))
		addr[0] = '\0';
	memcpy(comm, ev->comm, 16);
	comm[16] = '\0';
	if (add_u64(o, "seq", seq) < 0 || add_str(o, "time", tbuf) < 0 ||
	    add_u64(o, "time_ns", (uint64_t)realtime_ns) < 0 || add_u64(o, "pid", ev->pid) < 0 ||
	    add_u64(o, "tid", ev->tid) < 0 || add_u64(o, "uid", ev->uid) < 0 ||
	    add_u64(o, "gid", ev->gid) < 0 || add_str(o, "comm", comm) < 0 ||
	    add_u64(o, "cgroup_id", ev->cgroup_id) < 0 || add_str(o, "cgroup", nz(v->cgroup)) < 0 ||
	    add_str(o, "unit", nz(v->unit)) < 0 || add_str(o, "policy", nz(v->policy)) < 0 ||
	    add_str(o, "country", render_country_name(ev->country, 0, code)) < 0 ||
	    add_str(o, "family", ev->family == 2 ? "ipv4" : "ipv6") < 0 ||
	    add_str(o, "dst", addr) < 0 || add_u64(o, "dport", ev->dport) < 0 ||
	    add_str(o, "protocol", render_proto_name(ev->proto, pbuf)) < 0 ||
	    add_str(o, "verdict", render_verdict_name(ev->verdict, vbuf)) < 0 ||
	    add_str(o, "hook", render_hook_name(ev->hook, hbuf)) < 0 ||
	    add_u64(o, "generation", v->generation) < 0) {
		json_object_put(o);
		return -ENOMEM;
	}
	js = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!js) {
		json_object_put(o);
		return -ENOMEM;
	}
	/* js ends with '}': splice the serialized provenance in before it. */
	if (provenance)
		n = asprintf(&line, "%.*s,\"provenance\":%s}\n", (int)(strlen(js) - 1), js,
			     provenance);
	else
		n = asprintf(&line, "%s\n", js);
	json_object_put(o);
	if (n < 0)
		return -ENOMEM;
	*ret_line = line;
	*ret_len = (size_t)n;
	return 0;
}
