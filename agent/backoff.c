/* backoff.c - see backoff.h. */
#include "agent/backoff.h"

uint64_t backoff_cap_ms(unsigned failures, unsigned min_s, unsigned max_s)
{
	uint64_t cap = (uint64_t)min_s * 1000, max = (uint64_t)max_s * 1000;

	for (unsigned i = 1; i < failures && cap < max; i++)
		cap *= 2;
	return cap < max ? cap : max;
}

uint64_t backoff_delay_ms(unsigned failures, unsigned min_s, unsigned max_s, long retry_after_s,
			  uint32_t (*uniform)(uint32_t))
{
	uint64_t cap = backoff_cap_ms(failures ? failures : 1, min_s, max_s);
	uint64_t d = cap >= UINT32_MAX ? uniform(UINT32_MAX) : uniform((uint32_t)cap + 1);
	uint64_t floor = retry_after_s > 0 ? (uint64_t)retry_after_s * 1000 : 0;

	return d > floor ? d : floor;
}
