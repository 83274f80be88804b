/* test_users.c - logging in to HQ's console (hq/users.h): the right
 * password lets an account in with its role and municipalities; a wrong
 * one, or a wrong name, does not and says the same; failures pause the
 * account, and the address, even for the right password, until the
 * pause ends; a new password ends it; every attempt is audited, no
 * password ever is. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "hq/hqdb.h"
#include "hq/users.h"
#include "tests/fixture.h"
#include "tests/test.h"

#define GOOD "konj-baterija-spajalica"
#define T0 1800000000000ULL

static struct hqsql *fresh_db(void)
{
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;

	if (mkdir(fixture_data_dir(), 0700) < 0 ||
	    hqdb_open(fixture_data_dir(), HQDB_CREATE, &db, &err) < 0)
		TEST_FAIL("create HQ's database: %s", err.msg);
	return db;
}

static int login(struct hqsql *db, const char *name, const char *pw, const char *addr, uint64_t now,
		 struct users_account *acc, uint64_t *retry)
{
	static const struct users_limits lim = { .tries = 5, .addr_tries = 8, .pause_ms = 60000 };
	struct fs_error err = { 0 };
	int r = users_login(db, name, pw, strlen(pw), addr, &lim, now, acc, retry, &err);

	if (r < 0 && strstr(err.msg, GOOD))
		TEST_FAIL("a message shows the password: %s", err.msg);
	return r;
}

TEST(users_login_checks_and_pauses)
{
	struct hqsql *db = fresh_db();
	struct users_account acc = { 0 };
	struct fs_error err = { 0 };
	uint64_t retry = 0;

	ASSERT_OK(
		users_add(db, "tutin.viewer", USERS_VIEWER, "Tutin", GOOD, strlen(GOOD), T0, &err));
	ASSERT_OK(users_add(db, "ana.admin", USERS_ADMIN, NULL, GOOD, strlen(GOOD), T0, &err));
	/* The right password: the account, its role and what it sees. */
	ASSERT_OK(login(db, "tutin.viewer", GOOD, "127.0.0.1", T0, &acc, &retry));
	ASSERT_EQ(acc.role, USERS_VIEWER);
	ASSERT_STR_EQ(cJSON_GetArrayItem(acc.municipalities, 0)->valuestring, "Tutin");
	users_account_clear(&acc);
	ASSERT_OK(login(db, "ana.admin", GOOD, "127.0.0.1", T0, &acc, &retry));
	ASSERT_EQ(acc.role, USERS_ADMIN);
	users_account_clear(&acc);
	/* Wrong password and wrong name are the same error. */
	ASSERT_EQ(login(db, "ana.admin", "not-the-password", "127.0.0.1", T0, &acc, &retry),
		  -FS_EAUTH);
	ASSERT_EQ(login(db, "nobody", GOOD, "127.0.0.2", T0, &acc, &retry), -FS_EAUTH);
	ASSERT_EQ(login(db, "Bad Name!", GOOD, "127.0.0.2", T0, &acc, &retry), -FS_EAUTH);
	/* Five failures pause the account, even with the right password. */
	for (int i = 1; i < 5; i++)
		ASSERT_EQ(login(db, "ana.admin", "wrong-wrong-wrong", "10.0.0.1", T0 + i, &acc,
				&retry),
			  -FS_EAUTH);
	ASSERT_EQ(login(db, "ana.admin", GOOD, "10.0.0.9", T0 + 10, &acc, &retry), -EBUSY);
	ASSERT_TRUE(retry > 0 && retry <= 60000);
	/* Another account from the same address still logs in. */
	ASSERT_OK(login(db, "tutin.viewer", GOOD, "10.0.0.1", T0 + 11, &acc, &retry));
	users_account_clear(&acc);
	/* The pause ends. */
	ASSERT_OK(login(db, "ana.admin", GOOD, "10.0.0.9", T0 + 60000 + 10, &acc, &retry));
	users_account_clear(&acc);
	/* Eight failures from one address pause it for every account. */
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(login(db, i % 2 ? "x" : "y", "wrong-wrong-wrong", "10.9.9.9",
				T0 + 100000 + (uint64_t)i, &acc, &retry),
			  -FS_EAUTH);
	ASSERT_EQ(login(db, "tutin.viewer", GOOD, "10.9.9.9", T0 + 100010, &acc, &retry), -EBUSY);
	/* A new password ends an account's pause. */
	for (int i = 0; i < 5; i++)
		(void)login(db, "tutin.viewer", "wrong-wrong-wrong", "10.1.1.1",
			    T0 + 200000 + (uint64_t)i, &acc, &retry);
	ASSERT_EQ(login(db, "tutin.viewer", GOOD, "10.1.1.2", T0 + 200010, &acc, &retry), -EBUSY);
	ASSERT_OK(users_passwd(db, "tutin.viewer", "another-long-one", 16, T0 + 200020, &err));
	ASSERT_OK(login(db, "tutin.viewer", "another-long-one", "10.1.1.2", T0 + 200030, &acc,
			&retry));
	users_account_clear(&acc);
	/* Every attempt is in the audit log, by outcome; no password. */
	{
		struct hqsql_stmt *st = NULL;

		ASSERT_OK(hqsql_prepare(db,
					"SELECT sum(type = 'login'), sum(type = 'login_failed'), "
					"sum(type = 'login_paused'), sum(instr(detail, ?1) > 0) "
					"FROM events",
					&st, &err));
		hqsql_bind_text(st, 1, GOOD);
		ASSERT_EQ(hqsql_step(st), HQSQL_ROW);
		ASSERT_EQ(hqsql_column_int64(st, 0), 5);
		ASSERT_EQ(hqsql_column_int64(st, 1), 3 + 4 + 8 + 5);
		ASSERT_EQ(hqsql_column_int64(st, 2), 3);
		ASSERT_EQ(hqsql_column_int64(st, 3), 0);
		hqsql_finalize(st);
	}
	hqdb_close(db);
}
