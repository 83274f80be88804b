/* log.h - how both daemons log: fieldsync's agent and fieldsync-hq serve.
 *
 * A message is one line on standard error, "PROGRAM: message", written
 * whole (one write per line, so threads' lines never interleave).  When
 * standard error is the journal (systemd sets JOURNAL_STREAM to its
 * device and inode, systemd.exec(5)), the line starts with its priority
 * as sd-daemon(3) spells it ("<3>"), and journald files it under that
 * priority; on a terminal, in a file or a pipe it does not, so a test or
 * an operator reads plain lines.  Priorities are syslog's: LOG_ERR,
 * LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG.
 *
 * Messages follow the project's rule: they name what failed, the object
 * and why, and never a secret or a field value.  A line longer than
 * LOG_LINE_MAX is cut, and says so.
 *
 * log_open() runs once at start, before threads; log_msg() is then
 * thread-safe.
 */
#ifndef FS_LOG_H
#define FS_LOG_H

#include <stdarg.h>
#include <syslog.h>

#define LOG_LINE_MAX 2048

/* program: the name each line starts with (kept, not copied). */
void log_open(const char *program);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_msgv(int priority, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
