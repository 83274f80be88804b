/* test.h - the assertion macros and registry of the fstest runner.
 *
 * Each test is `TEST(name) { ... }` in tests/test_<module>.c and is listed
 * in tests/test-list.h.  ASSERT_* print both sides and abort the test
 * (the runner forks per test, so an abort fails one test only).
 */
#ifndef FS_TEST_H
#define FS_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST(name)                                                                                 \
	void test_##name(void);                                                                    \
	void test_##name(void)

#define TEST_FAIL(...)                                                                             \
	do {                                                                                       \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                    \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

#define ASSERT_TRUE(c)                                                                             \
	do {                                                                                       \
		if (!(c))                                                                          \
			TEST_FAIL("assertion failed: %s", #c);                                     \
	} while (0)

#define ASSERT_INT_OP(a, op, b)                                                                    \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (!(a_ op b_))                                                                   \
			TEST_FAIL("%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_);                  \
	} while (0)

#define ASSERT_EQ(a, b) ASSERT_INT_OP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_INT_OP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_INT_OP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_INT_OP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_INT_OP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_INT_OP(a, >=, b)
#define ASSERT_OK(r) ASSERT_EQ(r, 0)

#define ASSERT_STR_EQ(a, b)                                                                        \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                                             \
			TEST_FAIL("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_ ? a_ : "(null)",        \
				  b_ ? b_ : "(null)");                                             \
	} while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                                           \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (!h_ || !strstr(h_, n_))                                                        \
			TEST_FAIL("%s does not contain \"%s\": \"%s\"", #hay, n_,                  \
				  h_ ? h_ : "(null)");                                             \
	} while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
	do {                                                                                       \
		if (memcmp((a), (b), (n)) != 0)                                                    \
			TEST_FAIL("%s and %s differ in their first %zu bytes", #a, #b,             \
				  (size_t)(n));                                                    \
	} while (0)

/* A fresh empty directory for this test; removed by the runner. */
const char *test_tmpdir(void);
/* Path of the source tree's conf/forms directory. */
const char *test_forms_dir(void);
/* BASE_MS multiplied by FS_TEST_TIMEOUT_SCALE (a whole number, default 1):
 * the limit on a wait for an event, which a slow build may stretch.  Never
 * an assertion about speed. */
unsigned long test_timeout_ms(unsigned long base_ms);
/* Read a hex vector file (tests/vectors/) into out; fails the test if it
 * is malformed or longer than cap. */
size_t test_read_hex(const char *path, uint8_t *out, size_t cap);

#endif
