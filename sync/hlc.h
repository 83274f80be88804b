/* hlc.h - hybrid logical clock.
 *
 * An HLC timestamp is a uint64: the upper 48 bits are milliseconds since
 * the Unix epoch (physical part), the lower 16 bits a logical counter.
 * Timestamps from one clock strictly increase, even when the wall clock
 * steps backwards.  Ordering across devices is (hlc, device id), the
 * merge rule's tie-break.  The text form is 16 lower-case hex digits, so
 * text order equals numeric order.
 *
 * Pure functions: the caller supplies the wall time (hlc_wall_ms() or a
 * test clock) and persists the last value.  Thread-safe.
 */
#ifndef FS_HLC_H
#define FS_HLC_H

#include <stdint.h>

#include "crypto/fserr.h"

typedef uint64_t hlc_t;

#define HLC_TEXT_LEN 16
#define HLC_TIME_LEN 24 /* "2026-11-24T18:31:31.123Z" */
/* Default bound on how far ahead of our wall clock a timestamp we accept
 * may be. */
#define HLC_MAX_FUTURE_MS (5ULL * 60 * 1000)

static inline uint64_t hlc_physical_ms(hlc_t t)
{
	return t >> 16;
}

/* The timestamp at the start of millisecond ms (counter 0); the physical
 * part keeps 48 bits. */
static inline hlc_t hlc_from_ms(uint64_t ms)
{
	return (ms & 0xffffffffffffULL) << 16;
}

/* Milliseconds since the epoch from CLOCK_REALTIME. */
uint64_t hlc_wall_ms(void);
/* Milliseconds of CLOCK_MONOTONIC: for durations and timers, never
 * stored (it restarts with the machine). */
uint64_t hlc_mono_ms(void);

/* Timestamp for a local event after last. */
hlc_t hlc_next(hlc_t last, uint64_t wall_ms);

/* Merge a remote timestamp into our clock.  Returns -FS_ELIMIT when the
 * remote physical time is more than max_future_ms ahead of wall_ms; the
 * clock is then unchanged. */
int hlc_observe(hlc_t last, hlc_t remote, uint64_t wall_ms, uint64_t max_future_ms,
		hlc_t *ret_next) FS_WUR;

void hlc_format(hlc_t t, char out[HLC_TEXT_LEN + 1]);
int hlc_parse(const char *text, hlc_t *ret_t) FS_WUR;

/* ISO 8601 UTC with milliseconds, from the physical part. */
void hlc_format_time(hlc_t t, char out[HLC_TIME_LEN + 1]);

#endif
