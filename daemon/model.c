/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "model.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "render.h"

void counter_rows_free(struct counter_rows *rows)
{
	if (!rows)
		return;
	for (size_t i = 0; i < rows->n; i++) {
		free(rows->v[i].cgroup);
		free(rows->v[i].unit);
		free(rows->v[i].policy);
	}
	free(rows->v);
	rows->v = NULL;
	rows->n = 0;
}

/* Filter semantics (docs/api.md): policy exact; cgroup the exact path relative to the cgroup mount
 * (leading slashes ignored) or the exact unit name; country a code (case-insensitive), "unknown" or
 * "other"; verdict a verdict name. The overflow row has no policy, cgroup or unit. */
int counter_filter_match(const struct counter_filter *f, const struct counter_row *row)
{
	char buf[8];

	if (!f)
		return 1;
	if (f->policy && (row->overflow || !row->policy || strcmp(row->policy, f->policy) != 0))
		return 0;
	if (f->cgroup) {
		const char *want = f->cgroup;

		while (*want == '/')
			want++;
		if (row->overflow)
			return 0;
		if (!((row->cgroup && strcmp(row->cgroup, want) == 0) ||
		      (row->unit && row->unit[0] && strcmp(row->unit, f->cgroup) == 0)))
			return 0;
	}
	if (f->country &&
	    strcasecmp(render_country_name(row->country, row->overflow, buf), f->country) != 0)
		return 0;
	if (f->verdict) {
		char vbuf[4];

		if (strcmp(render_verdict_name(row->verdict, vbuf), f->verdict) != 0)
			return 0;
	}
	return 1;
}
