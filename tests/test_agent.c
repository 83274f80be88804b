/* test_agent.c - agent/: retry backoff, control-socket framing, the sync
 * log, and a second store connection for the push thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/backoff.h"
#include "agent/ctl.h"
#include "agent/store.h"
#include "agent/synclog.h"
#include "crypto/bytes.h"
#include "tests/fixture.h"
#include "tests/test.h"

/* ---- backoff ------------------------------------------------------------ */

static uint32_t top(uint32_t n)
{
	return n - 1; /* the largest value uniform() may return */
}

static uint32_t bottom(uint32_t n)
{
	(void)n;
	return 0;
}

TEST(backoff_exponential_capped_full_jitter)
{
	/* The bound doubles from min and stops at max. */
	ASSERT_EQ(backoff_cap_ms(1, 2, 60), 2000);
	ASSERT_EQ(backoff_cap_ms(2, 2, 60), 4000);
	ASSERT_EQ(backoff_cap_ms(5, 2, 60), 32000);
	ASSERT_EQ(backoff_cap_ms(6, 2, 60), 60000);
	ASSERT_EQ(backoff_cap_ms(1000, 2, 60), 60000);
	/* Full jitter: anywhere from 0 to the bound, inclusive. */
	ASSERT_EQ(backoff_delay_ms(3, 1, 4, 0, top), 4000);
	ASSERT_EQ(backoff_delay_ms(3, 1, 4, 0, bottom), 0);
	/* Retry-After is a floor, never lowered by jitter. */
	ASSERT_EQ(backoff_delay_ms(1, 1, 4, 30, bottom), 30000);
	ASSERT_EQ(backoff_delay_ms(1, 1, 4, 30, top), 30000);
	/* Over many draws the real generator stays in range and spreads. */
	{
		uint64_t lo = UINT64_MAX, hi = 0;

		for (int i = 0; i < 2000; i++) {
			uint64_t d = backoff_delay_ms(4, 1, 300, 0, randombytes_uniform);

			ASSERT_LE(d, 8000);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		ASSERT_LT(lo, 1000);
		ASSERT_GT(hi, 7000);
	}
}

/* ---- control socket framing ---------------------------------------------- */

TEST(ctl_command_roundtrip_and_malformed)
{
	char *argv_in[] = { "visit", "add", "--json", "/tmp/x.json", "notes=Ђурђевдан", NULL };
	unsigned idx[CTL_MAX_FILES] = { 3 }, got_idx[CTL_MAX_FILES];
	uint8_t buf[512];
	char **argv = NULL;
	size_t len;
	int argc;

	ASSERT_OK(ctl_build_command(5, argv_in, idx, 1, buf, sizeof(buf), &len));
	ASSERT_OK(ctl_parse_command(buf, len, 1, &argc, &argv, got_idx));
	ASSERT_EQ(argc, 5);
	for (int i = 0; i < 5; i++)
		ASSERT_STR_EQ(argv[i], argv_in[i]);
	ASSERT_TRUE(argv[5] == NULL);
	ASSERT_EQ(got_idx[0], 3);
	free(argv);

	/* The descriptor count must match what arrived with the frame. */
	ASSERT_EQ(ctl_parse_command(buf, len, 0, &argc, &argv, got_idx), -EPROTO);
	ASSERT_EQ(ctl_parse_command(buf, len, 2, &argc, &argv, got_idx), -EPROTO);
	/* Every truncation is refused, never read past. */
	for (size_t n = 0; n < len; n++)
		ASSERT_EQ(ctl_parse_command(buf, n, 1, &argc, &argv, got_idx), -EPROTO);
	/* Trailing bytes, an index past argc, a zero argc. */
	buf[len] = 'x';
	ASSERT_EQ(ctl_parse_command(buf, len + 1, 1, &argc, &argv, got_idx), -EPROTO);
	bytes_put_be(buf + 3, 5, 2);
	ASSERT_EQ(ctl_parse_command(buf, len, 1, &argc, &argv, got_idx), -EPROTO);
	bytes_put_be(buf, 0, 2);
	ASSERT_EQ(ctl_parse_command(buf, len, 1, &argc, &argv, got_idx), -EPROTO);
	/* Too long for the buffer: an error, not an overflow. */
	ASSERT_EQ(ctl_build_command(5, argv_in, idx, 1, buf, 20, &len), -EMSGSIZE);
}

TEST(ctl_frames_carry_descriptors_and_exit_status)
{
	int sv[2], out[2], fd, status = -1;
	uint8_t hdr[CTL_HEADER], payload[3];
	char got[64] = "";
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctrl;
	struct iovec iov = { hdr, sizeof(hdr) };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = ctrl.buf,
			      .msg_controllen = sizeof(ctrl.buf) };

	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_OK(pipe(out));
	/* A request frame with a descriptor: the pipe's write end. */
	ASSERT_OK(ctl_send(sv[0], CTL_LOCK, "abc", 3, &out[1], 1));
	ASSERT_EQ(recvmsg(sv[1], &msg, 0), CTL_HEADER);
	ASSERT_EQ(hdr[0], CTL_LOCK);
	ASSERT_EQ(bytes_get_be(hdr + 1, 4), 3);
	ASSERT_EQ(read(sv[1], payload, 3), 3);
	ASSERT_TRUE(CMSG_FIRSTHDR(&msg) && CMSG_FIRSTHDR(&msg)->cmsg_type == SCM_RIGHTS);
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(fd));
	ASSERT_EQ(write(fd, "via-fd", 6), 6);
	close(fd);
	/* An answer: output, then the exit status. */
	ASSERT_OK(ctl_send(sv[1], CTL_STDOUT, "izlaz\n", 6, NULL, 0));
	ASSERT_OK(ctl_send(sv[1], CTL_EXIT, "\x03", 1, NULL, 0));
	ASSERT_OK(ctl_client_answer(sv[0], out[1], out[1], &status));
	ASSERT_EQ(status, 3);
	close(out[1]);
	ASSERT_EQ(read(out[0], got, sizeof(got) - 1), 12);
	ASSERT_STR_EQ(got, "via-fdizlaz\n");
	/* An agent that goes away before the exit frame is an error. */
	ASSERT_OK(ctl_send(sv[1], CTL_STDERR, "x", 1, NULL, 0));
	close(sv[1]);
	ASSERT_EQ(ctl_client_answer(sv[0], out[0], out[0], &status), -ECONNRESET);
	close(sv[0]);
	close(out[0]);
}

/* ---- the sync log and a second connection --------------------------------- */

static struct store *make_store(void)
{
	struct keystore_secret *secret = NULL;
	struct store *s;

	ASSERT_OK(keystore_secret_from_passphrase("lozinka-za-test", 15, &secret));
	s = fixture_store(secret, NULL, 1);
	keystore_secret_free(secret);
	return s;
}

static int collect(const cJSON *e, void *ctx)
{
	cJSON *arr = ctx;

	return cJSON_AddItemToArray(arr, cJSON_Duplicate(e, 1)) ? 0 : -ENOMEM;
}

static cJSON *log_rows(struct store *s)
{
	struct fs_error err = { 0 };
	cJSON *arr = cJSON_CreateArray();

	if (synclog_list(s, 0, collect, arr, &err) < 0)
		TEST_FAIL("synclog_list: %s", err.msg);
	return arr;
}

static double member(const cJSON *arr, int i, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, i), name);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

TEST(synclog_folds_repeated_failures)
{
	struct store *s = make_store(), *second = NULL;
	struct synclog_entry fail1 = { .at_ms = 1000,
				       .event = "push",
				       .result = "unreachable",
				       .detail = "HQ unreachable at http://127.0.0.1:9" };
	struct synclog_entry ok = { .at_ms = 5000,
				    .event = "push",
				    .result = "ok",
				    .sets = 2,
				    .changes = 7,
				    .bytes = 900,
				    .duration_ms = 12 };
	struct fs_error err = { 0 };
	cJSON *rows;

	for (int i = 0; i < 3; i++) {
		fail1.at_ms = 1000 + (uint64_t)i * 1000;
		ASSERT_OK(synclog_add(s, &fail1, &err));
	}
	/* The push thread writes through its own connection. */
	ASSERT_OK(store_reopen(s, &second, &err));
	ASSERT_OK(synclog_add(second, &ok, &err));
	ASSERT_OK(synclog_add(second, &ok, &err)); /* successes never fold */
	fail1.result = "busy";
	ASSERT_OK(synclog_add(second, &fail1, &err));
	rows = log_rows(s);
	ASSERT_EQ(cJSON_GetArraySize(rows), 4);
	ASSERT_EQ(member(rows, 0, "repeats"), 3);
	ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(rows, 0), "last_at")
			      ->valuestring,
		      "1970-01-01T00:00:03.000Z");
	ASSERT_EQ(member(rows, 1, "sets"), 2);
	ASSERT_EQ(member(rows, 1, "bytes"), 900);
	ASSERT_EQ(member(rows, 1, "repeats"), -1);
	ASSERT_EQ(member(rows, 3, "repeats"), -1);
	ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(rows, 3), "result")
			      ->valuestring,
		      "busy");
	cJSON_Delete(rows);
	store_close(second);
	store_close(s);
}

TEST(synclog_keeps_newest_rows)
{
	struct store *s = make_store();
	struct synclog_entry ok = { .event = "push", .result = "ok", .sets = 1 };
	struct fs_error err = { 0 };
	cJSON *rows;

	for (int i = 0; i < SYNCLOG_KEEP + 5; i++) {
		ok.at_ms = (uint64_t)i;
		ASSERT_OK(synclog_add(s, &ok, &err));
	}
	rows = log_rows(s);
	ASSERT_EQ(cJSON_GetArraySize(rows), SYNCLOG_KEEP);
	ASSERT_EQ(member(rows, 0, "id"), 6); /* the five oldest went */
	cJSON_Delete(rows);
	store_close(s);
}
