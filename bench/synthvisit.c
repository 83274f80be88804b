/* synthvisit.c - see synthvisit.h. */
#include "bench/synthvisit.h"

#include <stdio.h>
#include <string.h>
#include <sodium.h>

static const char *const visit_types[] = { "needs_assessment",	  "housing_construction",
					   "prefab_installation", "sme_grant_followup",
					   "vocational_training", "legal_assistance" };
static const char *const words[] = { "kuća",  "krov",	  "prozor",    "dokumenta",
				     "pomoć", "porodica", "deca",      "zima",
				     "ogrev", "voda",	  "struja",    "opština",
				     "кућа",  "помоћ",	  "документи", "породица" };

void synthvisit_make(struct synthvisit *v, uint64_t ms, int i)
{
	size_t n = 0;

	uuid_v7_new(ms, v->id);
	uuid_v7_new(ms - 86400000ULL * 30, v->beneficiary);
	snprintf(v->date, sizeof(v->date), "2026-11-%02d", 1 + i % 28);
	snprintf(v->next, sizeof(v->next), "2026-12-%02d", 1 + i % 28);
	snprintf(v->gps, sizeof(v->gps), "44.%04u,19.%04u", randombytes_uniform(10000),
		 randombytes_uniform(10000));
	v->type = visit_types[i % 6];
	for (int w = 0; w < 10; w++)
		n += (size_t)snprintf(v->notes + n, sizeof(v->notes) - n, "%s%s", w ? " " : "",
				      words[randombytes_uniform(16)]);
	v->hlc = (hlc_t)ms << 16;
}

uint64_t synthvisit_later(uint64_t ms)
{
	return ms + 20000 + randombytes_uniform(2 * 3600 * 1000 - 20000);
}

size_t synthvisit_raw_json_len(const struct synthvisit *v)
{
	char buf[1024];

	return (size_t)snprintf(
		buf, sizeof(buf),
		"{\"id\":\"%s\",\"collection\":\"visits\",\"fields\":{"
		"\"beneficiary_id\":\"%s\",\"visit_date\":\"%s\",\"visit_type\":\"%s\","
		"\"notes\":\"%s\",\"gps\":\"%s\",\"next_visit\":\"%s\"}}",
		v->id, v->beneficiary, v->date, v->type, v->notes, v->gps, v->next);
}

void synthvisit_fields(const struct synthvisit *v, const char *names[SYNTHVISIT_FIELDS],
		       const char *vals[SYNTHVISIT_FIELDS])
{
	static const char *const field_names[SYNTHVISIT_FIELDS] = {
		"beneficiary_id", "visit_date", "visit_type", "notes", "gps", "next_visit"
	};
	const char *field_vals[SYNTHVISIT_FIELDS] = { v->beneficiary, v->date, v->type,
						      v->notes,	      v->gps,  v->next };

	memcpy(names, field_names, sizeof(field_names));
	memcpy(vals, field_vals, sizeof(field_vals));
}

int synthvisit_changes(const struct synthvisit *v, struct change *c)
{
	const char *names[SYNTHVISIT_FIELDS], *vals[SYNTHVISIT_FIELDS];

	synthvisit_fields(v, names, vals);
	for (int f = 0; f < SYNTHVISIT_FIELDS; f++) {
		strcpy(c[f].record_id, v->id);
		strcpy(c[f].collection, "visits");
		strcpy(c[f].field, names[f]);
		c[f].value = cJSON_CreateString(vals[f]);
		c[f].hlc = v->hlc;
		if (!c[f].value)
			return -1;
	}
	return 0;
}
