/* test_main.c - the fstest runner.
 *
 * `fstest NAME` runs one test (this is how CTest calls it, one test per
 * process); `fstest` runs every test, each in a forked child, and prints
 * "N passed, N failed".  Each test gets a fresh temporary directory.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto/secmem.h"
#include "tests/test.h"

#define TEST_ENTRY(name) void test_##name(void);
#include "tests/test-list.h"
#undef TEST_ENTRY

struct test_case {
	const char *name;
	void (*fn)(void);
};

static const struct test_case tests[] = {
#define TEST_ENTRY(name) { #name, test_##name },
#include "tests/test-list.h"
#undef TEST_ENTRY
};

static char tmpdir[4096];

const char *test_tmpdir(void)
{
	return tmpdir;
}

const char *test_forms_dir(void)
{
	return FS_SOURCE_DIR "/conf/forms";
}

unsigned long test_timeout_ms(unsigned long base_ms)
{
	const char *s = getenv("FS_TEST_TIMEOUT_SCALE");
	char *end = NULL;
	unsigned long k = s && *s ? strtoul(s, &end, 10) : 1;

	if (!s || !*s || *end || k == 0 || k > 100)
		k = 1;
	return base_ms * k;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int run_one(const struct test_case *t)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/fstest-%s-XXXXXX", base ? base : "/tmp", t->name);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	t->fn();
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(int argc, char **argv)
{
	size_t n = sizeof(tests) / sizeof(tests[0]);
	int passed = 0, failed = 0;

	if (secmem_init() < 0) {
		fprintf(stderr, "fstest: libsodium failed to initialise\n");
		return 1;
	}
	if (argc == 2) {
		for (size_t i = 0; i < n; i++)
			if (!strcmp(tests[i].name, argv[1]))
				return run_one(&tests[i]);
		fprintf(stderr, "fstest: no test named %s\n", argv[1]);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		pid_t pid = fork();
		int st;

		if (pid == 0)
			_exit(run_one(&tests[i]));
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			printf("FAIL %s\n", tests[i].name);
			failed++;
		} else {
			printf("ok   %s\n", tests[i].name);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

/* A test vector file: hex digits, any number per line. */
size_t test_read_hex(const char *path, uint8_t *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	unsigned b;
	int c;

	ASSERT_TRUE(f != NULL);
	while ((c = fgetc(f)) != EOF) {
		char pair[3] = { (char)c, 0, 0 };

		if (c == '\n')
			continue;
		pair[1] = (char)fgetc(f);
		ASSERT_EQ(sscanf(pair, "%2x", &b), 1);
		ASSERT_LT(n, cap);
		out[n++] = (uint8_t)b;
	}
	fclose(f);
	return n;
}
