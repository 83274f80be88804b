/* synthvisit.h - the synthetic visits the wire benchmarks send.
 *
 * Six fields, as a visit of the shipped form carries them: a beneficiary
 * (a fresh UUID each time), two dates, a type, a GPS point and notes of
 * ten words drawn from sixteen Serbian ones, Latin and Cyrillic.  Random
 * parts come from libsodium, so two runs differ but measure the same.
 * Not thread-safe only in that each caller owns its struct.
 */
#ifndef FS_BENCH_SYNTHVISIT_H
#define FS_BENCH_SYNTHVISIT_H

#include <stddef.h>
#include <stdint.h>

#include "sync/changeset.h"
#include "sync/uuid.h"

#define SYNTHVISIT_FIELDS 6

struct synthvisit {
	char id[UUID_TEXT_LEN + 1];
	char beneficiary[UUID_TEXT_LEN + 1];
	char date[16], next[16], gps[32], notes[256];
	const char *type;
	hlc_t hlc;
};

/* Visit number i, made at Unix ms. */
void synthvisit_make(struct synthvisit *v, uint64_t ms, int i);

/* When the visit after one at ms is made: 20 s to 2 h later, at random,
 * as a team's visits come.  A regular step would flatter a codec that
 * finds it in the HLCs and record ids. */
uint64_t synthvisit_later(uint64_t ms);

/* The length of the visit as one plain JSON object: the baseline the
 * wire is measured against. */
size_t synthvisit_raw_json_len(const struct synthvisit *v);

/* Fill c[0..SYNTHVISIT_FIELDS) with the visit's changes; each value is
 * a new cJSON string the caller frees (changes_free, or cJSON_Delete
 * one by one).  -1 when out of memory. */
int synthvisit_changes(const struct synthvisit *v, struct change *c);

/* Its field names and values, in the order of synthvisit_changes. */
void synthvisit_fields(const struct synthvisit *v, const char *names[SYNTHVISIT_FIELDS],
		       const char *vals[SYNTHVISIT_FIELDS]);

#endif
