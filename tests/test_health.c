/* test_health.c - which device HQ's console flags red (hq/health.h):
 * never seen, not seen for too long, or a change unsent for too long;
 * and the facts of a device's report, aged to now. */
#include <string.h>

#include "hq/health.h"
#include "tests/test.h"

#define HOUR_MS 3600000ULL
#define NOW (1800000000000ULL)

static const char *why_of(const char *json)
{
	static char why[64];
	cJSON *d = cJSON_Parse(json);
	const char *w = NULL;
	int red;

	if (!d)
		TEST_FAIL("test JSON does not parse: %s", json);
	red = health_red(d, NOW, 72, 24, &w);
	snprintf(why, sizeof(why), "%s", w);
	if (red != (why[0] != '\0'))
		TEST_FAIL("red and why disagree for %s", json);
	cJSON_Delete(d);
	return why;
}

TEST(health_red_rules)
{
	char json[256];
	cJSON *d;

	ASSERT_STR_EQ(why_of("{\"last_seen_ms\":null}"), "never seen");
	snprintf(json, sizeof(json), "{\"last_seen_ms\":%llu,\"oldest_unsent_age_s\":null}",
		 (unsigned long long)(NOW - HOUR_MS));
	ASSERT_STR_EQ(why_of(json), "");
	snprintf(json, sizeof(json), "{\"last_seen_ms\":%llu}",
		 (unsigned long long)(NOW - 73 * HOUR_MS));
	ASSERT_STR_EQ(why_of(json), "not seen for too long");
	snprintf(json, sizeof(json), "{\"last_seen_ms\":%llu,\"oldest_unsent_age_s\":%d}",
		 (unsigned long long)(NOW - HOUR_MS), 25 * 3600);
	ASSERT_STR_EQ(why_of(json), "changes waiting to be sent for too long");
	snprintf(json, sizeof(json), "{\"last_seen_ms\":%llu,\"oldest_unsent_age_s\":%d}",
		 (unsigned long long)(NOW - HOUR_MS), 23 * 3600);
	ASSERT_STR_EQ(why_of(json), "");
	/* A report's age grows with the time since it was made. */
	d = cJSON_CreateObject();
	ASSERT_OK(health_add_facts(d,
				   "{\"pending_changes\":7,\"oldest_unsent_age_s\":600,"
				   "\"last_error\":\"refused\",\"agent_version\":\"1.0\","
				   "\"form_version\":{\"visits\":2},\"clock_skew_ms\":-40,"
				   "\"free_disk_bytes\":1000}",
				   (int64_t)(NOW - 2 * HOUR_MS), NOW));
	ASSERT_EQ(cJSON_GetObjectItem(d, "oldest_unsent_age_s")->valuedouble, 600 + 7200);
	ASSERT_EQ(cJSON_GetObjectItem(d, "pending_changes")->valuedouble, 7);
	ASSERT_STR_EQ(cJSON_GetObjectItem(d, "last_error")->valuestring, "refused");
	ASSERT_TRUE(cJSON_IsString(cJSON_GetObjectItem(d, "reported_at")));
	cJSON_Delete(d);
	/* No report yet: every fact is null. */
	d = cJSON_CreateObject();
	ASSERT_OK(health_add_facts(d, NULL, -1, NOW));
	ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(d, "pending_changes")));
	ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(d, "free_disk_bytes")));
	ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(d, "reported_at")));
	cJSON_Delete(d);
}
