/* test_sync.c - sync/: hybrid logical clock and UUIDv7 ids. */
#include "sync/hlc.h"
#include "sync/uuid.h"
#include "tests/test.h"

TEST(hlc_monotonic_and_bounded)
{
	hlc_t t = 0, prev, next;
	char text[HLC_TEXT_LEN + 1], when[HLC_TIME_LEN + 1];
	uint64_t wall = 1795000000000ULL;

	t = hlc_next(t, wall);
	ASSERT_EQ(hlc_physical_ms(t), wall);
	/* The wall clock steps back an hour: timestamps still increase. */
	prev = t;
	for (int i = 0; i < 1000; i++) {
		t = hlc_next(t, wall - 3600 * 1000);
		ASSERT_GT(t, prev);
		prev = t;
	}
	ASSERT_EQ(hlc_physical_ms(t), wall);
	/* A remote clock a minute ahead is accepted and we move past it. */
	ASSERT_OK(hlc_observe(t, (wall + 60000) << 16, wall, HLC_MAX_FUTURE_MS, &next));
	ASSERT_GT(next, (wall + 60000) << 16);
	/* Ten minutes ahead is refused and changes nothing. */
	next = 7;
	ASSERT_EQ(hlc_observe(t, (wall + 600000) << 16, wall, HLC_MAX_FUTURE_MS, &next),
		  -FS_ELIMIT);
	ASSERT_EQ(next, 7);
	hlc_format(t, text);
	ASSERT_EQ(strlen(text), HLC_TEXT_LEN);
	ASSERT_OK(hlc_parse(text, &next));
	ASSERT_EQ(next, t);
	ASSERT_EQ(hlc_parse("0123456789abcdeg", &next), -FS_EFORMAT);
	ASSERT_EQ(hlc_parse("0123", &next), -FS_EFORMAT);
	hlc_format_time((hlc_t)1795000000123ULL << 16, when);
	ASSERT_STR_EQ(when, "2026-11-18T11:06:40.123Z");
}

TEST(uuid_v7_layout)
{
	char a[UUID_TEXT_LEN + 1], b[UUID_TEXT_LEN + 1], n[UUID_TEXT_LEN + 1];

	uuid_v7_new(0x0193a1b2c3d4ULL, a);
	ASSERT_EQ(strlen(a), UUID_TEXT_LEN);
	ASSERT_TRUE(!strncmp(a, "0193a1b2-c3d4-7", 15));
	ASSERT_TRUE(strchr("89ab", a[19]) != NULL);
	uuid_v7_new(0x0193a1b2c3d4ULL, b);
	ASSERT_TRUE(strcmp(a, b) != 0);
	/* Later milliseconds sort later. */
	uuid_v7_new(0x0193a1b2c3d5ULL, b);
	ASSERT_LT(strcmp(a, b), 0);
	ASSERT_OK(uuid_normalize("0193A1B2-C3D4-7ABC-8DEF-0123456789AB", n));
	ASSERT_STR_EQ(n, "0193a1b2-c3d4-7abc-8def-0123456789ab");
	ASSERT_EQ(uuid_normalize("0193a1b2c3d47abc8def0123456789ab", n), -FS_EFORMAT);
	ASSERT_EQ(uuid_normalize("0193a1b2-c3d4-7abc-8def-0123456789ag", n), -FS_EFORMAT);
	ASSERT_EQ(uuid_normalize("", n), -FS_EFORMAT);
}
