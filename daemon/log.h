/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.h - the daemon's logger: journal entries (PRIORITY, SYSLOG_IDENTIFIER) when running under
 * systemd, else one line per message on stderr.
 */
#ifndef EGRESSD_LOG_H
#define EGRESSD_LOG_H

#include <syslog.h>

/* Messages above this syslog level (LOG_ERR..LOG_DEBUG) are dropped. Default LOG_INFO. */
void log_set_level(int level);
int log_get_level(void);
/* "err", "warning", "notice", "info", "debug" (or 0..7) -> level; -EINVAL otherwise. */
int log_level_from_string(const char *s);

/* 1 when messages go to the journal (sd_journal_send with structured fields): EGRESSD_LOG_TARGET=
 * journal, or (no EGRESSD_LOG_TARGET=console) stderr is the journal stream systemd gave us
 * (JOURNAL_STREAM matches stderr's device and inode, see systemd.exec(5)). */
int log_to_journal(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
