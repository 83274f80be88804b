/* test_sync.c - sync/: hybrid logical clock, UUIDv7 ids, text folding. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync/fold.h"
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

static void fold_is(const char *in, const char *want)
{
	char *key = NULL;

	ASSERT_OK(fold_text(in, strlen(in), &key));
	ASSERT_STR_EQ(key, want);
	free(key);
}

/* One key for a name in either script, any case, with or without its
 * diacritics and with stray spaces. */
TEST(fold_serbian_scripts_and_case)
{
	fold_is("Бујановац", "bujanovac");
	fold_is("BUJANOVAC", "bujanovac");
	fold_is("  Sremska \t Mitrovica ", "sremska mitrovica");
	fold_is("Сремска Митровица", "sremska mitrovica");
	fold_is("Đorđe", "djordje");
	fold_is("Ђорђе", "djordje");
	fold_is("Šćepanović Žaklina", "scepanovic zaklina");
	fold_is("Шћепановић Жаклина", "scepanovic zaklina");
	fold_is("Љубовија Његош Џеп", "ljubovija njegos dzep");
	fold_is("Čačak Ćuprija", "cacak cuprija");
	fold_is("Preševo", "presevo");
	fold_is("Fürth Ñandú", "furth nandu");
	/* What the rule does not know stays as it is. */
	fold_is("Щука 東京", "Щuka 東京");
	fold_is("", "");
	ASSERT_EQ(fold_equal("Tutin", "ТУТИН"), 1);
	ASSERT_EQ(fold_equal("Tutin", "Sjenica"), 0);
	ASSERT_EQ(fold_equal("Novi Pazar", "NoviPazar"), 0);
}

TEST(fold_refuses_what_is_not_utf8)
{
	static const char *const bad[] = {
		"\xC0\xAF",          /* overlong '/' */
		"\xED\xA0\x80",      /* a surrogate */
		"\xF4\x90\x80\x80", /* beyond U+10FFFF */
		"Tut\xD0",           /* cut short */
		"\x80",              /* a lone continuation byte */
	};
	char *key = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(fold_text(bad[i], strlen(bad[i]), &key), -FS_EFORMAT);
		ASSERT_TRUE(key == NULL);
	}
	/* A NUL inside the length is not a name. */
	ASSERT_EQ(fold_text("Tu\0tin", 6, &key), -FS_EFORMAT);
	ASSERT_EQ(fold_equal("Tut\xD0", "Tut\xD0"), 0);
}
