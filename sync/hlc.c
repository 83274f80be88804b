/* hlc.c - hybrid logical clock arithmetic and text forms. */
#include "sync/hlc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t hlc_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t hlc_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

hlc_t hlc_next(hlc_t last, uint64_t wall_ms)
{
	/* Physical part is 48 bits: good until the year 10889. */
	hlc_t now = hlc_from_ms(wall_ms);

	/* last + 1 overflows the counter into the physical part, which just
	 * runs our clock one millisecond ahead: order is what matters. */
	return now > last ? now : last + 1;
}

int hlc_observe(hlc_t last, hlc_t remote, uint64_t wall_ms, uint64_t max_future_ms, hlc_t *ret_next)
{
	hlc_t next;

	if (hlc_physical_ms(remote) > wall_ms + max_future_ms)
		return -FS_ELIMIT;
	next = hlc_next(last, wall_ms);
	if (remote >= next)
		next = remote + 1;
	*ret_next = next;
	return 0;
}

void hlc_format(hlc_t t, char out[HLC_TEXT_LEN + 1])
{
	snprintf(out, HLC_TEXT_LEN + 1, "%016" PRIx64, t);
}

int hlc_parse(const char *text, hlc_t *ret_t)
{
	hlc_t t = 0;

	if (strlen(text) != HLC_TEXT_LEN)
		return -FS_EFORMAT;
	for (int i = 0; i < HLC_TEXT_LEN; i++) {
		char c = text[i];
		unsigned v;

		if (c >= '0' && c <= '9')
			v = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = (unsigned)(c - 'a' + 10);
		else
			return -FS_EFORMAT;
		t = (t << 4) | v;
	}
	*ret_t = t;
	return 0;
}

void hlc_format_time(hlc_t t, char out[HLC_TIME_LEN + 1])
{
	uint64_t ms = hlc_physical_ms(t);
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	/* strftime cannot overflow a field the way %02d of an int might in
	 * the compiler's eyes; years past 9999 simply do not fit and give
	 * "invalid". */
	if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999 ||
	    strftime(out, HLC_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
		snprintf(out, HLC_TIME_LEN + 1, "invalid");
		return;
	}
	snprintf(out + 19, HLC_TIME_LEN + 1 - 19, ".%03uZ", (unsigned)(ms % 1000));
}
