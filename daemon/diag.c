/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void diag_add(struct diag *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_addv(d, fmt, ap);
	va_end(ap);
}

void diag_addv(struct diag *d, const char *fmt, va_list ap)
{
	char *s = NULL;
	char **v;

	if (vasprintf(&s, fmt, ap) < 0)
		return;
	v = realloc(d->msgs, (d->n + 1) * sizeof(*v));
	if (!v) {
		free(s);
		return;
	}
	d->msgs = v;
	d->msgs[d->n++] = s;
}

void diag_move(struct diag *dst, struct diag *src)
{
	for (size_t i = 0; i < src->n; i++) {
		char **v = realloc(dst->msgs, (dst->n + 1) * sizeof(*v));
		if (!v) {
			free(src->msgs[i]);
			continue;
		}
		dst->msgs = v;
		dst->msgs[dst->n++] = src->msgs[i];
	}
	free(src->msgs);
	src->msgs = NULL;
	src->n = 0;
}

void diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	d->msgs = NULL;
	d->n = 0;
}
