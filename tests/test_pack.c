/* test_pack.c - agent/pack.c: the outbox becomes a contiguous chain of
 * change sets that HQ can open, each change in exactly one set, also
 * when packing is killed at any moment.
 *
 * Sections: helpers; checking the chain; tests.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/pack.h"
#include "agent/records.h"
#include "agent/store.h"
#include "crypto/secmem.h"
#include "sync/changeset.h"
#include "tests/fixture.h"
#include "tests/test.h"

/* ---- helpers ---------------------------------------------------------- */

static uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES], hq_box_sk[crypto_box_SECRETKEYBYTES];

/* Add n beneficiaries in one transaction; every third is then edited and
 * every seventh deleted, so the outbox holds edits and tombstones too. */
static void pk_add_people(struct store *s, int n)
{
	static const char *const names[] = { "Ružičić Đorđe", "Ружичић Ђорђе", "Šćepanović Žaklina",
					     "Јовановић Милица" };
	struct form *f = fixture_form("beneficiaries");
	struct fs_error err = { 0 };

	ASSERT_OK(store_begin(s, &err));
	for (int i = 0; i < n; i++) {
		char id[UUID_TEXT_LEN + 1];
		cJSON *o = cJSON_CreateObject(), *ch;

		cJSON_AddStringToObject(o, "full_name", names[i % 4]);
		cJSON_AddStringToObject(o, "municipality", "Sremska Mitrovica");
		cJSON_AddStringToObject(o, "status", "refugee");
		cJSON_AddNumberToObject(o, "household_size", 1 + i % 9);
		cJSON_AddTrueToObject(o, "consent");
		if (records_add(s, f, o, NULL, id, &err) < 0)
			TEST_FAIL("records_add: %s", err.msg);
		cJSON_Delete(o);
		if (i % 3 == 0) {
			ch = cJSON_CreateObject();
			cJSON_AddNumberToObject(ch, "household_size", 10);
			ASSERT_OK(records_edit(s, f, id, ch, &err));
			cJSON_Delete(ch);
		}
		if (i % 7 == 0)
			ASSERT_OK(records_delete(s, f, id, &err));
	}
	ASSERT_OK(store_commit(s, &err));
	form_free(f);
}

/* ---- checking the chain ------------------------------------------------ */

/* The outgoing sets must be seq 1..n with a correct hash chain, each
 * opening with the HQ key to exactly its outbox rows, in order; packed
 * rows must be a prefix of the outbox, each in one set.  Returns n. */
static long long pk_check_chain(struct store *s, size_t max_per_set)
{
	const struct identity *id = store_identity(s);
	uint8_t prev[CHANGESET_HASH_BYTES] = { 0 }, device[CHANGESET_DEVICE_BYTES];
	sqlite3_stmt *sets = NULL, *rows = NULL;
	long long n = 0, packed_rows = 0;
	struct fs_error err = { 0 };
	size_t dlen = 0;

	ASSERT_OK(
		sodium_hex2bin(device, sizeof(device), id->id, strlen(id->id), NULL, &dlen, NULL));
	ASSERT_EQ(sqlite3_prepare_v2(store_db(s),
				     "SELECT seq, hash, body, changes FROM outgoing "
				     "ORDER BY seq",
				     -1, &sets, NULL),
		  SQLITE_OK);
	ASSERT_EQ(sqlite3_prepare_v2(store_db(s),
				     "SELECT record_id, collection, field, value, hlc "
				     "FROM outbox WHERE changeset = ?1 ORDER BY seq",
				     -1, &rows, NULL),
		  SQLITE_OK);
	while (sqlite3_step(sets) == SQLITE_ROW) {
		const uint8_t *body = sqlite3_column_blob(sets, 2);
		size_t len = (size_t)sqlite3_column_bytes(sets, 2), nch = 0, i = 0;
		uint8_t hash[CHANGESET_HASH_BYTES];
		struct changeset_header h;
		struct change *ch = NULL;

		n++;
		ASSERT_EQ(sqlite3_column_int64(sets, 0), n);
		ASSERT_OK(changeset_parse(body, len, &h, &err));
		ASSERT_EQ(h.seq, n);
		ASSERT_MEM_EQ(h.prev, prev, sizeof(prev));
		ASSERT_MEM_EQ(h.device, device, sizeof(device));
		ASSERT_OK(changeset_verify(body, len, id->sign_pk));
		if (changeset_open(body, len, hq_box_pk, hq_box_sk, &ch, &nch, &err) < 0)
			TEST_FAIL("changeset_open set %lld: %s", n, err.msg);
		ASSERT_EQ(nch, sqlite3_column_int64(sets, 3));
		ASSERT_GE(nch, 1);
		ASSERT_LE(nch, max_per_set);
		changeset_hash(body, len, hash);
		ASSERT_EQ(sqlite3_column_bytes(sets, 1), CHANGESET_HASH_BYTES);
		ASSERT_MEM_EQ(sqlite3_column_blob(sets, 1), hash, sizeof(hash));
		memcpy(prev, hash, sizeof(prev));
		sqlite3_reset(rows);
		sqlite3_bind_int64(rows, 1, n);
		for (; sqlite3_step(rows) == SQLITE_ROW; i++) {
			const char *value = (const char *)sqlite3_column_text(rows, 3);
			char *printed;

			ASSERT_LT(i, nch);
			ASSERT_STR_EQ(ch[i].record_id, (const char *)sqlite3_column_text(rows, 0));
			ASSERT_STR_EQ(ch[i].collection, (const char *)sqlite3_column_text(rows, 1));
			ASSERT_STR_EQ(ch[i].field, (const char *)sqlite3_column_text(rows, 2));
			ASSERT_EQ(ch[i].hlc, sqlite3_column_int64(rows, 4));
			printed = cJSON_PrintUnformatted(ch[i].value);
			ASSERT_STR_EQ(printed, value ? value : "null");
			if (!strcmp(ch[i].field, "_deleted"))
				ASSERT_TRUE(cJSON_IsTrue(ch[i].value));
			cJSON_free(printed);
		}
		ASSERT_EQ(i, nch);
		packed_rows += (long long)nch;
		changes_free(ch, nch);
	}
	sqlite3_finalize(sets);
	sqlite3_finalize(rows);
	/* Every packed row is in a set that exists, and packed rows come
	 * before every unpacked one. */
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox WHERE changeset IS NOT NULL"),
		  packed_rows);
	ASSERT_EQ(fixture_count(
			  s,
			  "SELECT count(*) FROM outbox WHERE changeset IS NOT NULL AND seq > "
			  "(SELECT coalesce(min(seq), 1e18) FROM outbox WHERE changeset IS NULL)"),
		  0);
	ASSERT_EQ(fixture_count(
			  s, "SELECT count(*) FROM (SELECT changeset, max(changeset) OVER (ORDER "
			     "BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS m FROM "
			     "outbox) WHERE changeset < m"),
		  0);
	return n;
}

static void pk_hq_keys(void)
{
	crypto_box_keypair(hq_box_pk, hq_box_sk);
}

/* ---- tests ------------------------------------------------------------- */

TEST(pack_outbox_chain_opens_to_outbox)
{
	struct store *s;
	struct fs_error err = { 0 };
	unsigned long long made = 0;
	long long total, sets;

	pk_hq_keys();
	s = fixture_store(NULL, NULL, 1);
	pk_add_people(s, 40);
	total = fixture_count(s, "SELECT count(*) FROM outbox");
	ASSERT_OK(pack_outbox(s, hq_box_pk, 7, 0, &made, &err));
	ASSERT_EQ(made, (total + 6) / 7);
	sets = pk_check_chain(s, 7);
	ASSERT_EQ(sets, (long long)made);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox WHERE changeset IS NULL"), 0);

	/* Nothing left: no new set.  New changes continue the chain. */
	ASSERT_OK(pack_outbox(s, hq_box_pk, 7, 0, &made, &err));
	ASSERT_EQ(made, 0);
	pk_add_people(s, 5);
	ASSERT_OK(pack_outbox(s, hq_box_pk, 0, 0, &made, &err));
	ASSERT_EQ(made, 1);
	ASSERT_EQ(pk_check_chain(s, PACK_DEFAULT_CHANGES), sets + 1);

	/* Packing deletes nothing: the store and its outbox still check. */
	ASSERT_OK(store_check(s, &err));
	ASSERT_OK(records_verify_outbox(s, &err));
	/* Inside a transaction is a usage error. */
	ASSERT_OK(store_begin(s, &err));
	ASSERT_EQ(pack_outbox(s, hq_box_pk, 0, 0, &made, &err), -FS_EUSAGE);
	store_rollback(s);
	store_close(s);
}

TEST(pack_outbox_bounds_respected)
{
	struct store *s;
	struct fs_error err = { 0 };
	unsigned long long made = 0;
	long long total, before;
	char sql[128];

	pk_hq_keys();
	s = fixture_store(NULL, NULL, 1);
	pk_add_people(s, 10);
	total = fixture_count(s, "SELECT count(*) FROM outbox");
	/* A byte bound smaller than one change: one change per set. */
	ASSERT_OK(pack_outbox(s, hq_box_pk, 1000, 1, &made, &err));
	ASSERT_EQ(made, total);
	ASSERT_EQ(pk_check_chain(s, 1), total);
	ASSERT_EQ(fixture_count(s, "SELECT max(changes) FROM outgoing"), 1);

	/* The change-count bound, and a byte bound of a few changes. */
	pk_add_people(s, 30);
	ASSERT_OK(pack_outbox(s, hq_box_pk, 3, 0, &made, &err));
	ASSERT_EQ(fixture_count(s, "SELECT max(changes) FROM outgoing"), 3);
	pk_add_people(s, 30);
	before = fixture_count(s, "SELECT max(seq) FROM outgoing");
	ASSERT_OK(pack_outbox(s, hq_box_pk, 1000, 400, &made, &err));
	ASSERT_GT(made, 1);
	snprintf(sql, sizeof(sql), "SELECT max(changes) FROM outgoing WHERE seq > %lld", before);
	ASSERT_LE(fixture_count(s, sql), 8); /* about 110 bytes a change */
	pk_check_chain(s, 1000);
	/* Every set is well under the wire limit. */
	ASSERT_LE(fixture_count(s, "SELECT max(length(body)) FROM outgoing"), CHANGESET_MAX_BYTES);
	store_close(s);
}

/* ---- kill -9 while packing --------------------------------------------- */

static long kill_after; /* wall_ms calls before the child kills itself */

static uint64_t killing_clock(void)
{
	if (--kill_after <= 0)
		raise(SIGKILL);
	return hlc_wall_ms();
}

/* Run pack_outbox in a child that is killed: by itself at its n-th clock
 * read (in the middle of a set's transaction) when n > 0, else by us
 * after delay_us.  Returns 1 when the child was killed. */
static int pk_pack_killed(long n, long delay_us)
{
	pid_t pid = fork();
	int st;

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct store_options opt = { .wall_ms = n > 0 ? killing_clock : NULL };
		struct fs_error err = { 0 };
		struct store *s;

		kill_after = n;
		s = fixture_store(NULL, &opt, 0);
		if (pack_outbox(s, hq_box_pk, 10, 0, NULL, &err) < 0) {
			fprintf(stderr, "pack_outbox: %s\n", err.msg);
			_exit(1);
		}
		store_close(s);
		_exit(0);
	}
	if (n <= 0) {
		usleep((useconds_t)delay_us);
		kill(pid, SIGKILL);
	}
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st))
		ASSERT_EQ(WEXITSTATUS(st), 0);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

TEST(pack_outbox_kill9_packs_whole_sets)
{
	unsigned long long made = 0;
	struct fs_error err = { 0 };
	long long total, sets = 0, before;
	int killed = 0;
	struct store *s;

	pk_hq_keys();
	s = fixture_store(NULL, NULL, 1);
	pk_add_people(s, 400);
	total = fixture_count(s, "SELECT count(*) FROM outbox");
	store_close(s);
	srand((unsigned)time(NULL));
	for (int round = 0; round < 12; round++) {
		/* Even rounds: killed inside a set's transaction; odd: at a
		 * random moment from outside. */
		long n = round % 2 == 0 ? 1 + rand() % 20 : 0;

		killed += pk_pack_killed(n, 1000 + rand() % 60000);
		s = fixture_store(NULL, NULL, 0);
		before = sets;
		sets = pk_check_chain(s, 10);
		ASSERT_GE(sets, before);
		ASSERT_OK(store_check(s, &err));
		store_close(s);
	}
	ASSERT_GT(killed, 0);
	s = fixture_store(NULL, NULL, 0);
	ASSERT_OK(pack_outbox(s, hq_box_pk, 10, 0, &made, &err));
	ASSERT_EQ(pk_check_chain(s, 10), (total + 9) / 10);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox WHERE changeset IS NULL"), 0);
	ASSERT_OK(records_verify_outbox(s, &err));
	store_close(s);
}
