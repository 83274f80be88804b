/* backoff.h - retry delays: exponential with full jitter.
 *
 * After the n-th failure in a row the delay is uniform in
 * [0, min(max, min * 2^(n-1))]: spreading the retries of many devices
 * that lost HQ at the same moment, so they do not all come back at once
 * (the "full jitter" of Brooker's AWS analysis).  A Retry-After from HQ
 * is a floor on top.  Pure; thread-safe.
 */
#ifndef FS_BACKOFF_H
#define FS_BACKOFF_H

#include <stdint.h>

/* The upper bound of the delay after `failures` failures (>= 1), ms. */
uint64_t backoff_cap_ms(unsigned failures, unsigned min_s, unsigned max_s);

/* A delay in ms: uniform(n) must return a uniform value in [0, n). */
uint64_t backoff_delay_ms(unsigned failures, unsigned min_s, unsigned max_s, long retry_after_s,
			  uint32_t (*uniform)(uint32_t));

#endif
