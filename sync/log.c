/* log.c - see log.h. */
#include "sync/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *program = "fieldsync";
static int to_journal;

void log_open(const char *name)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	program = name;
	/* "DEV:INO" of the stream systemd connected; stderr may since have
	 * been sent elsewhere, which the comparison catches. */
	to_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
		     fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
		     (unsigned long long)st.st_ino == ino;
}

void log_msgv(int priority, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = 0;
	int k;

	if (to_journal)
		n = (size_t)snprintf(line, sizeof(line), "<%d>", priority & 7);
	k = snprintf(line + n, sizeof(line) - n, "%s: ", program);
	n += k > 0 ? (size_t)k : 0;
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (k < 0)
		k = 0;
	if (n + (size_t)k + 2 > sizeof(line)) {
		static const char cut[] = " [cut]";

		n = sizeof(line) - sizeof(cut) - 1;
		memcpy(line + n, cut, sizeof(cut) - 1);
		n += sizeof(cut) - 1;
	} else {
		n += (size_t)k;
	}
	line[n++] = '\n';
	/* One write: a line from another thread never lands inside it. */
	flockfile(stderr);
	fwrite(line, 1, n, stderr);
	fflush(stderr);
	funlockfile(stderr);
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(priority, fmt, ap);
	va_end(ap);
}
