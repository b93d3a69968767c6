/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "events.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <systemd/sd-journal.h>

#include "geo.h"
#include "policy.h"
#include "render.h"

struct slot {
	int used;
	uint64_t cgroup_id;
	uint16_t country;
	uint8_t verdict;
	uint64_t window_start;
	uint64_t count; /* events in this window */
	uint64_t suppressed; /* events held back in this window */
	char *cgroup, *unit, *policy; /* names of the last event, for the summary */
};

struct events {
	int journal;
	struct slot slots[EVENTS_KEYS];
	struct slot overflow; /* keys that found the table full */
	uint64_t logged, suppressed;
};

struct events *events_new(int journal)
{
	struct events *e = calloc(1, sizeof(*e));

	if (e)
		e->journal = journal;
	return e;
}

static void slot_clear(struct slot *s)
{
	free(s->cgroup);
	free(s->unit);
	free(s->policy);
	memset(s, 0, sizeof(*s));
}

struct events *events_free(struct events *e)
{
	if (!e)
		return NULL;
	for (size_t i = 0; i < EVENTS_KEYS; i++)
		slot_clear(&e->slots[i]);
	slot_clear(&e->overflow);
	free(e);
	return NULL;
}

/* FNV-1a over the key fields, for the open-addressing table. */
static size_t slot_hash(uint64_t cgroup_id, uint16_t country, uint8_t verdict)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	uint8_t b[11];

	memcpy(b, &cgroup_id, 8);
	memcpy(b + 8, &country, 2);
	b[10] = verdict;
	for (size_t i = 0; i < sizeof(b); i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h % EVENTS_KEYS);
}

static struct slot *slot_get(struct events *e, const struct egress_event *ev)
{
	size_t h = slot_hash(ev->cgroup_id, ev->country, ev->verdict);

	for (size_t i = 0; i < EVENTS_KEYS; i++) {
		struct slot *s = &e->slots[(h + i) % EVENTS_KEYS];

		if (!s->used) {
			s->used = 1;
			s->cgroup_id = ev->cgroup_id;
			s->country = ev->country;
			s->verdict = ev->verdict;
			return s;
		}
		if (s->cgroup_id == ev->cgroup_id && s->country == ev->country && s->verdict == ev->verdict)
			return s;
	}
	e->overflow.used = 1;
	return &e->overflow;
}

static void set_name(char **dst, const char *src)
{
	if (*dst && strcmp(*dst, src) == 0)
		return;
	free(*dst);
	*dst = strdup(src);
}

static const char *proto_name(uint8_t proto, char buf[4])
{
	return render_proto_name(proto, buf);
}

static void write_event(struct events *e, const struct event_view *v)
{
	const struct egress_event *ev = v->ev;
	char addr[INET6_ADDRSTRLEN] = "?", code[8], pbuf[4], comm[17];
	const char *verdict = verdict_name(ev->verdict), *proto = proto_name(ev->proto, pbuf);
	int prio = ev->verdict == EGRESS_VERDICT_DENY ? LOG_WARNING : LOG_NOTICE;

	inet_ntop(ev->family == 2 ? AF_INET : AF_INET6, ev->addr, addr, sizeof(addr));
	geo_country_code(ev->country, code);
	memcpy(comm, ev->comm, 16);
	comm[16] = '\0';
	if (e->journal) {
		/* OBJECT_PID lets journald add the process's OBJECT_* fields while it still exists;
		 * EGRESSD_PID/COMM/UID are what the kernel saw, kept when the process is gone. */
		sd_journal_send("MESSAGE=%s: %s (pid %u, uid %u) in %s -> %s port %u/%s, country %s, policy %s", verdict,
				comm, ev->pid, ev->uid, v->cgroup, addr, ev->dport, proto, code, v->policy,
				"MESSAGE_ID=" EGRESSD_EVENT_MESSAGE_ID, "PRIORITY=%d", prio, "SYSLOG_IDENTIFIER=egressd",
				"EGRESSD_POLICY=%s", v->policy, "EGRESSD_COUNTRY=%s", code, "EGRESSD_DST=%s", addr,
				"EGRESSD_DPORT=%u", ev->dport, "EGRESSD_PROTO=%s", proto, "EGRESSD_VERDICT=%s", verdict,
				"EGRESSD_CGROUP=%s", v->cgroup, "EGRESSD_UNIT=%s", v->unit, "EGRESSD_PID=%u", ev->pid,
				"EGRESSD_COMM=%s", comm, "EGRESSD_UID=%u", ev->uid, "EGRESSD_GENERATION=%" PRIu64,
				v->generation, "OBJECT_PID=%u", ev->pid, NULL);
	} else {
		fprintf(stderr, "egressd: %s: %s (pid %u, uid %u) in %s -> %s port %u/%s, country %s, policy %s\n", verdict,
			comm, ev->pid, ev->uid, v->cgroup, addr, ev->dport, proto, code, v->policy);
	}
}

static void write_summary(struct events *e, const struct slot *s, uint64_t window_usec)
{
	char code[8];
	const char *verdict = verdict_name(s->verdict);
	const char *cg = s->cgroup ? s->cgroup : "", *unit = s->unit ? s->unit : "", *pol = s->policy ? s->policy : "";

	if (s == &e->overflow) {
		cg = "(other cgroups)";
		unit = "";
		pol = "";
		strcpy(code, "various");
	} else {
		geo_country_code(s->country, code);
	}
	if (e->journal)
		sd_journal_send("MESSAGE=%" PRIu64 " similar %s events suppressed in %.1f s (cgroup %s, country %s)",
				s->suppressed, verdict, window_usec / 1e6, cg, code,
				"MESSAGE_ID=" EGRESSD_SUPPRESSED_MESSAGE_ID, "PRIORITY=%d", LOG_NOTICE,
				"SYSLOG_IDENTIFIER=egressd", "EGRESSD_SUPPRESSED=%" PRIu64, s->suppressed,
				"EGRESSD_VERDICT=%s", verdict, "EGRESSD_CGROUP=%s", cg, "EGRESSD_UNIT=%s", unit,
				"EGRESSD_COUNTRY=%s", code, "EGRESSD_POLICY=%s", pol, NULL);
	else
		fprintf(stderr, "egressd: %" PRIu64 " similar %s events suppressed in %.1f s (cgroup %s, country %s)\n",
			s->suppressed, verdict, window_usec / 1e6, cg, code);
}

int events_log(struct events *e, const struct event_view *v, uint64_t now_usec)
{
	struct slot *s = slot_get(e, v->ev);

	if (s->count == 0 && s->suppressed == 0)
		s->window_start = now_usec;
	set_name(&s->cgroup, v->cgroup);
	set_name(&s->unit, v->unit);
	set_name(&s->policy, v->policy);
	if (s->count >= EVENTS_BURST) {
		s->suppressed++;
		e->suppressed++;
		return 0;
	}
	s->count++;
	e->logged++;
	write_event(e, v);
	return 1;
}

static int flush_slot(struct events *e, struct slot *s, uint64_t now_usec, int force)
{
	int n = 0;

	if (!s->used || (!force && now_usec - s->window_start < EVENTS_WINDOW_USEC))
		return 0;
	if (s->suppressed) {
		write_summary(e, s, now_usec - s->window_start);
		n = 1;
	}
	slot_clear(s);
	return n;
}

int events_flush(struct events *e, uint64_t now_usec, int force)
{
	int n = 0;

	for (size_t i = 0; i < EVENTS_KEYS; i++)
		n += flush_slot(e, &e->slots[i], now_usec, force);
	/* Clearing slots breaks probe chains of later keys; they start a new window, which at worst
	 * logs up to EVENTS_BURST more entries for them. */
	return n + flush_slot(e, &e->overflow, now_usec, force);
}

void events_totals(const struct events *e, uint64_t *ret_logged, uint64_t *ret_suppressed)
{
	*ret_logged = e->logged;
	*ret_suppressed = e->suppressed;
}
