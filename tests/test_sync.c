/* test_sync.c - sync/: hybrid logical clock, UUIDv7 ids, text folding,
 * the daemons' log lines. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/fold.h"
#include "sync/hlc.h"
#include "sync/log.h"
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
		"\xC0\xAF",	    /* overlong '/' */
		"\xED\xA0\x80",	    /* a surrogate */
		"\xF4\x90\x80\x80", /* beyond U+10FFFF */
		"Tut\xD0",	    /* cut short */
		"\x80",		    /* a lone continuation byte */
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

/* ---- log lines ------------------------------------------------------------ */

#define LOG_THREADS 4
#define LOG_PER_THREAD 300

static void *log_thread(void *arg)
{
	for (int i = 0; i < LOG_PER_THREAD; i++)
		log_msg(LOG_INFO, "thread %d line %d: Ђорђе Đorđe", (int)(intptr_t)arg, i);
	return NULL;
}

/* Read the file that stands in for stderr, from the start. */
static char *log_read(FILE *f)
{
	long n;
	char *buf;

	fflush(stderr);
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    !(buf = calloc(1, (size_t)n + 1)))
		return NULL;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		return NULL;
	}
	return buf;
}

TEST(log_lines_plain_or_for_the_journal)
{
	char path[] = "/tmp/fstest-log.XXXXXX", js[64], *text = NULL, *line, *save = NULL;
	static const char want[] = "fstest-log: plain Ђорђе\nfstest-log: still plain\n"
				   "<3>fstest-log: for the journal\n<7>fstest-log: xxx";
	char big[3 * LOG_LINE_MAX];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), n = 0;
	pthread_t th[LOG_THREADS];
	struct stat st;
	FILE *f;

	ASSERT_TRUE(fd >= 0 && saved >= 0);
	ASSERT_TRUE((f = fdopen(fd, "r")) != NULL);
	unlink(path);
	fflush(stderr);
	ASSERT_TRUE(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
	ASSERT_OK(fstat(fd, &st));
	/* Not the journal: plain lines. */
	unsetenv("JOURNAL_STREAM");
	log_open("fstest-log");
	log_msg(LOG_WARNING, "plain %s", "Ђорђе");
	/* Another stream is the journal, not ours: still plain. */
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	log_open("fstest-log");
	log_msg(LOG_ERR, "still plain");
	/* Ours is: the priority leads. */
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_open("fstest-log");
	log_msg(LOG_ERR, "for the journal");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_msg(LOG_DEBUG, "%s", big);
	unsetenv("JOURNAL_STREAM");
	log_open("fstest-log");
	for (int i = 0; i < LOG_THREADS; i++)
		ASSERT_OK(pthread_create(&th[i], NULL, log_thread, (void *)(intptr_t)i));
	for (int i = 0; i < LOG_THREADS; i++)
		ASSERT_OK(pthread_join(th[i], NULL));
	text = log_read(f);
	ASSERT_TRUE(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
	close(saved);
	fclose(f);
	log_open("fstest");
	ASSERT_TRUE(text != NULL);
	ASSERT_TRUE(!strncmp(text, want, strlen(want)));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int t, i;
		char tail[64];

		if (line[0] == '<' && line[1] == '7') {
			/* The long one: cut to the limit, and it says so. */
			ASSERT_EQ(strlen(line) + 1, LOG_LINE_MAX - 1);
			ASSERT_TRUE(!strcmp(line + strlen(line) - 6, " [cut]"));
			continue;
		}
		if (strncmp(line, "fstest-log: thread", 18))
			continue;
		/* Every thread's line whole: nothing of another inside it. */
		ASSERT_EQ(sscanf(line, "fstest-log: thread %d line %d: %63[^\n]", &t, &i, tail), 3);
		ASSERT_STR_EQ(tail, "Ђорђе Đorđe");
		n++;
	}
	ASSERT_EQ(n, LOG_THREADS * LOG_PER_THREAD);
	free(text);
}
