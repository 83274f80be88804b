/* skew.c - see skew.h. */
#include "agent/skew.h"

#include <stdio.h>

/* The skew as kept in meta "clock_skew": "<skew ms> <measured at ms>". */
int skew_save(struct store *s, int64_t skew_ms, struct fs_error *err)
{
	char v[64];

	snprintf(v, sizeof(v), "%lld %llu", (long long)skew_ms,
		 (unsigned long long)store_wall_ms(s));
	return store_meta_put(s, "clock_skew", v, err);
}

int skew_load(struct store *s, int64_t *ret_skew_ms, uint64_t *ret_at_ms, int *ret_found,
	      struct fs_error *err)
{
	char v[64];
	long long skew;
	unsigned long long at;
	int r, found = 0;

	if ((r = store_meta_get(s, "clock_skew", v, sizeof(v), &found, err)) < 0)
		return r;
	if (found && sscanf(v, "%lld %llu", &skew, &at) != 2)
		return fs_error_set(err, -FS_ECORRUPT, "clock skew in %s: unreadable",
				    store_path(s));
	*ret_found = found;
	if (found) {
		*ret_skew_ms = skew;
		*ret_at_ms = at;
	}
	return 0;
}

void skew_text(int64_t skew_ms, char out[SKEW_TEXT_MAX])
{
	uint64_t a = skew_ms < 0 ? (uint64_t) - (skew_ms + 1) + 1 : (uint64_t)skew_ms;
	const char *dir = skew_ms < 0 ? "behind" : "ahead of";
	/* Rounded at the last unit shown: the measurement is good to a
	 * round trip, and "1094 d 23 h" for a clock set 3 years off reads
	 * wrong. */
	uint64_t h = (a + 1800000) / 3600000, m = (a + 30000) / 60000, s = (a + 500) / 1000;

	if (a < 1000)
		snprintf(out, SKEW_TEXT_MAX, "within 1 s of HQ");
	else if (h >= 24)
		snprintf(out, SKEW_TEXT_MAX, "%llu d %llu h %s HQ", (unsigned long long)(h / 24),
			 (unsigned long long)(h % 24), dir);
	else if (m >= 60)
		snprintf(out, SKEW_TEXT_MAX, "%llu h %llu min %s HQ", (unsigned long long)(m / 60),
			 (unsigned long long)(m % 60), dir);
	else if (s >= 60)
		snprintf(out, SKEW_TEXT_MAX, "%llu min %llu s %s HQ", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60), dir);
	else
		snprintf(out, SKEW_TEXT_MAX, "%llu s %s HQ", (unsigned long long)s, dir);
}

int skew_from_answer(const cJSON *answer, uint64_t sent_ms, int64_t *ret_skew_ms)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(answer, "hq_time");

	/* An upload's length is not skew: HQ stamps the headers' arrival. */
	if (!cJSON_IsNumber(t) || t->valuedouble < 0 || t->valuedouble >= (double)(1ULL << 48))
		return 0;
	*ret_skew_ms = (int64_t)sent_ms - (int64_t)t->valuedouble;
	return 1;
}

int skew_warning(int64_t skew_ms, char out[SKEW_WARNING_MAX])
{
	char text[SKEW_TEXT_MAX];

	if (skew_ms <= (int64_t)SKEW_REPORT_MS && skew_ms >= -(int64_t)SKEW_REPORT_MS)
		return 0;
	skew_text(skew_ms, text);
	snprintf(out, SKEW_WARNING_MAX, "this device's clock is %s: set it right%s", text,
		 skew_ms > 0 ? ", then run `fieldsync status --verify-hq`; HQ quarantines changes "
			       "stamped more than 5 min ahead of its clock"
			     : "; meanwhile new changes are ordered after HQ's time");
	return 1;
}

/* Keep the store's clock in step with HQ's, inside the receipt's
 * transaction.  HQ's signed receipt time moves it forward, so a device
 * whose wall clock is behind orders its next writes after what HQ had; but
 * not past what HQ's clock says now (a receipt time ahead of that is not
 * believed).  A clock that ran far ahead of HQ's while the wall clock was
 * wrong is set back once the wall clock agrees with HQ again. */
void skew_follow_hq(struct store *s, int64_t skew, const uint64_t *accepted_ms)
{
	int64_t wall = (int64_t)store_wall_ms(s), hq_now = wall - skew;

	if (skew <= (int64_t)SKEW_REPORT_MS && skew >= -(int64_t)SKEW_REPORT_MS &&
	    (int64_t)store_hlc_physical_ms(s) > hq_now + (int64_t)SKEW_REPORT_MS)
		store_hlc_rewind(s, (uint64_t)wall);
	if (accepted_ms && (int64_t)*accepted_ms <= hq_now + (int64_t)SKEW_REPORT_MS)
		store_hlc_observe(s, *accepted_ms);
}

int skew_check(struct store *s, int64_t skew_ms, struct fs_error *err)
{
	int r;

	if ((r = store_begin(s, err)) < 0)
		return r;
	/* No receipt: an unsigned time may set the clock back to our own
	 * wall clock, never forward. */
	skew_follow_hq(s, skew_ms, NULL);
	if ((r = skew_save(s, skew_ms, err)) < 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s, err);
}
