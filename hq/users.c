/* users.c - the HQ console's accounts (hq/users.h).
 *
 * Sections: rules; writing accounts; listing; logging in.
 */
#include "hq/users.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "hq/audit.h"
#include "hq/scope.h"
#include "sync/hlc.h"

/* ---- rules ---------------------------------------------------------------- */

static const char *const ROLE_NAMES[] = { [USERS_VIEWER] = "viewer", [USERS_ADMIN] = "admin" };

int users_role_parse(const char *text, enum users_role *ret, struct fs_error *err)
{
	for (int i = 0; i < 2; i++)
		if (text && !strcmp(text, ROLE_NAMES[i])) {
			*ret = (enum users_role)i;
			return 0;
		}
	return fs_error_set(err, -FS_EUSAGE, "a role is admin or viewer");
}

/* [a-z0-9][a-z0-9._@-]{0,63}: a name that prints safely in a log. */
static int name_check(const char *name, struct fs_error *err)
{
	size_t n = name ? strlen(name) : 0;

	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      (i && (c == '.' || c == '_' || c == '@' || c == '-'))))
			n = 0;
	}
	if (n < 1 || n > USERS_MAX_NAME)
		return fs_error_set(
			err, -FS_EUSAGE,
			"an account name is 1 to %d of a-z, 0-9 and . _ @ - (not first)",
			USERS_MAX_NAME);
	return 0;
}

static int password_check(const char *password, size_t len, struct fs_error *err)
{
	if (!password || len < USERS_MIN_PASSWORD || len > USERS_MAX_PASSWORD ||
	    memchr(password, '\0', len))
		return fs_error_set(err, -FS_EUSAGE, "a password is %d to %d bytes, without NUL",
				    USERS_MIN_PASSWORD, USERS_MAX_PASSWORD);
	return 0;
}

/* Argon2id, interactive limits: out holds crypto_pwhash_STRBYTES. */
static int hash_password(const char *password, size_t len, char out[crypto_pwhash_STRBYTES],
			 struct fs_error *err)
{
	if (crypto_pwhash_str(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return fs_error_set(err, -ENOMEM, "hash the password: out of memory");
	return 0;
}

/* ---- writing accounts ------------------------------------------------------- */

/* Run one statement with name as ?1 and up to three more texts or
 * times; *ret_changes gets the rows it changed.  In a transaction with
 * the audit entry (event "user", detail {action, user, ...}). */
struct user_write {
	const char *sql;
	const char *also;    /* then this, with name as ?1, when sql changed a row */
	const char *text[3]; /* ?2.. ?4 when not NULL */
	uint64_t now_ms;     /* ?5 */
	const char *action;  /* for the audit log */
	const char *role;    /* for the audit log, or NULL */
};

static int user_write(struct hqsql *db, const char *name, const struct user_write *w,
		      int64_t *ret_changes, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		return r;
	if ((r = hqsql_prepare(db, w->sql, &st, err)) < 0)
		goto out;
	hqsql_bind_text(st, 1, name);
	for (int i = 0; i < 3; i++)
		if (w->text[i])
			hqsql_bind_text(st, i + 2, w->text[i]);
	hqsql_bind_int64(st, 5, (int64_t)w->now_ms);
	rc = hqsql_step(st);
	if (rc != HQSQL_DONE) {
		r = hqsql_fail(db, "write the account", err);
		goto out;
	}
	*ret_changes = hqsql_changes(st);
	if (*ret_changes > 0 && w->also) {
		hqsql_finalize(st);
		st = NULL;
		if ((r = hqsql_prepare(db, w->also, &st, err)) < 0)
			goto out;
		hqsql_bind_text(st, 1, name);
		if (hqsql_step(st) != HQSQL_DONE) {
			r = hqsql_fail(db, "write the account", err);
			goto out;
		}
	}
	if (*ret_changes > 0)
		r = audit_append_strings(db, w->now_ms, "user", NULL, err, "action", w->action,
					 "user", name, "role", w->role, (const char *)NULL);
out:
	hqsql_finalize(st);
	if (r == 0 && *ret_changes > 0)
		r = hqsql_commit(db, err);
	if (r < 0 || *ret_changes <= 0)
		hqsql_rollback(db);
	return r;
}

int users_add(struct hqsql *db, const char *name, enum users_role role, const char *municipalities,
	      const char *password, size_t len, uint64_t now_ms, struct fs_error *err)
{
	char hash[crypto_pwhash_STRBYTES];
	cJSON *munis = NULL;
	char *munis_text = NULL;
	int64_t changed = 0;
	int r;

	if ((r = name_check(name, err)) < 0 || (r = password_check(password, len, err)) < 0)
		return r;
	if (role == USERS_VIEWER && (!municipalities || !strcmp(municipalities, SCOPE_ALL)))
		return fs_error_set(err, -FS_EUSAGE,
				    "a viewer sees only its municipalities: give --municipality");
	if ((r = scope_parse(municipalities ? municipalities : SCOPE_ALL, &munis, err)) < 0)
		return r;
	if (!(munis_text = cJSON_PrintUnformatted(munis))) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = hash_password(password, len, hash, err)) < 0)
		goto out;
	r = user_write(db, name,
		       &(struct user_write){
			       .sql = "INSERT INTO users(name, role, municipalities, pwhash, "
				      "created_at, changed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5) "
				      "ON CONFLICT(name) DO NOTHING",
			       .text = { ROLE_NAMES[role], munis_text, hash },
			       .now_ms = now_ms,
			       .action = "add",
			       .role = ROLE_NAMES[role],
		       },
		       &changed, err);
	if (r == 0 && changed == 0)
		r = fs_error_set(err, -FS_EEXIST, "account %s exists already", name);
out:
	sodium_memzero(hash, sizeof(hash));
	cJSON_free(munis_text);
	cJSON_Delete(munis);
	return r;
}

int users_passwd(struct hqsql *db, const char *name, const char *password, size_t len,
		 uint64_t now_ms, struct fs_error *err)
{
	char hash[crypto_pwhash_STRBYTES];
	int64_t changed = 0;
	int r;

	if ((r = name_check(name, err)) < 0 || (r = password_check(password, len, err)) < 0 ||
	    (r = hash_password(password, len, hash, err)) < 0)
		return r;
	/* A new password also ends a pause on the account: the
	 * administrator who set it has spoken for it. */
	r = user_write(
		db, name,
		&(struct user_write){
			.sql = "UPDATE users SET pwhash = ?2, changed_at = ?5 WHERE name = ?1",
			.also = "DELETE FROM login_failures WHERE key = 'user:' || ?1",
			.text = { hash },
			.now_ms = now_ms,
			.action = "passwd",
		},
		&changed, err);
	sodium_memzero(hash, sizeof(hash));
	if (r == 0 && changed == 0)
		r = fs_error_set(err, -FS_ENOTFOUND, "no account %s", name);
	return r;
}

int users_remove(struct hqsql *db, const char *name, uint64_t now_ms, struct fs_error *err)
{
	int64_t changed = 0;
	int r;

	if ((r = name_check(name, err)) < 0)
		return r;
	r = user_write(db, name,
		       &(struct user_write){
			       .sql = "DELETE FROM users WHERE name = ?1",
			       .now_ms = now_ms,
			       .action = "remove",
		       },
		       &changed, err);
	if (r == 0 && changed == 0)
		r = fs_error_set(err, -FS_ENOTFOUND, "no account %s", name);
	return r;
}

/* ---- listing ---------------------------------------------------------------- */

int users_list(struct hqsql *db, int json, FILE *out, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	if ((r = hqsql_prepare(db,
			       "SELECT name, role, municipalities, created_at, changed_at FROM "
			       "users ORDER BY name",
			       &st, err)) < 0)
		return r;
	if (!json)
		fprintf(out, "%-24s %-7s %-24s %-24s %s\n", "NAME", "ROLE", "CREATED", "CHANGED",
			"MUNICIPALITIES");
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		char created[HLC_TIME_LEN + 1], changed[HLC_TIME_LEN + 1];
		cJSON *o = NULL;
		char *line;

		hlc_format_time((hlc_t)hqsql_column_int64(st, 3) << 16, created);
		hlc_format_time((hlc_t)hqsql_column_int64(st, 4) << 16, changed);
		if (!json) {
			fprintf(out, "%-24s %-7s %-24s %-24s %s\n", hqsql_column_text(st, 0),
				hqsql_column_text(st, 1), created, changed,
				hqsql_column_text(st, 2));
			continue;
		}
		if (!(o = cJSON_CreateObject()) ||
		    !cJSON_AddStringToObject(o, "name", hqsql_column_text(st, 0)) ||
		    !cJSON_AddStringToObject(o, "role", hqsql_column_text(st, 1)) ||
		    !cJSON_AddItemToObject(o, "municipalities",
					   cJSON_Parse(hqsql_column_text(st, 2))) ||
		    !cJSON_AddStringToObject(o, "created", created) ||
		    !cJSON_AddStringToObject(o, "changed", changed) ||
		    !(line = cJSON_PrintUnformatted(o))) {
			cJSON_Delete(o);
			r = fs_error_set(err, -ENOMEM, "out of memory");
			break;
		}
		fprintf(out, "%s\n", line);
		cJSON_free(line);
		cJSON_Delete(o);
	}
	if (r == 0 && rc != HQSQL_DONE)
		r = hqsql_fail(db, "list the accounts", err);
	hqsql_finalize(st);
	return r;
}

/* ---- logging in ------------------------------------------------------------- */

/* The pause on key (0: none) as of now. */
static int paused_until(struct hqsql *db, const char *key, uint64_t now_ms, uint64_t *ret,
			struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	*ret = 0;
	if ((r = hqsql_prepare(db, "SELECT paused_until FROM login_failures WHERE key = ?1", &st,
			       err)) < 0)
		return r;
	hqsql_bind_text(st, 1, key);
	rc = hqsql_step(st);
	if (rc == HQSQL_ROW && (uint64_t)hqsql_column_int64(st, 0) > now_ms)
		*ret = (uint64_t)hqsql_column_int64(st, 0);
	else if (rc != HQSQL_ROW && rc != HQSQL_DONE)
		r = hqsql_fail(db, "read failed logins", err);
	hqsql_finalize(st);
	return r;
}

/* Count a failure on key: a new window when the last has passed, a
 * pause when it reaches tries. */
static int count_failure(struct hqsql *db, const char *key, unsigned tries, uint64_t window_ms,
			 uint64_t now_ms, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(db,
			       "INSERT INTO login_failures(key, failures, first_at, paused_until) "
			       "VALUES (?1, 1, ?2, CASE WHEN ?3 <= 1 THEN ?2 + ?4 ELSE 0 END) "
			       "ON CONFLICT(key) DO UPDATE SET "
			       "failures = CASE WHEN login_failures.first_at + ?4 < ?2 THEN 1 "
			       "  ELSE login_failures.failures + 1 END, "
			       "first_at = CASE WHEN login_failures.first_at + ?4 < ?2 THEN ?2 "
			       "  ELSE login_failures.first_at END, "
			       "paused_until = CASE WHEN login_failures.first_at + ?4 >= ?2 AND "
			       "  login_failures.failures + 1 >= ?3 THEN ?2 + ?4 "
			       "  ELSE login_failures.paused_until END",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, key);
	hqsql_bind_int64(st, 2, (int64_t)now_ms);
	hqsql_bind_int64(st, 3, (int64_t)tries);
	hqsql_bind_int64(st, 4, (int64_t)window_ms);
	if (hqsql_step(st) != HQSQL_DONE)
		r = hqsql_fail(db, "count a failed login", err);
	hqsql_finalize(st);
	return r;
}

/* The account's hash and what it may see; found 0 when there is none. */
static int account_read(struct hqsql *db, const char *name, char hash[crypto_pwhash_STRBYTES],
			struct users_account *ret, int *found, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r, rc;

	*found = 0;
	if ((r = hqsql_prepare(db, "SELECT role, municipalities, pwhash FROM users WHERE name = ?1",
			       &st, err)) < 0)
		return r;
	hqsql_bind_text(st, 1, name);
	rc = hqsql_step(st);
	if (rc == HQSQL_ROW) {
		snprintf(ret->name, sizeof(ret->name), "%s", name);
		ret->role = !strcmp(hqsql_column_text(st, 0), "admin") ? USERS_ADMIN : USERS_VIEWER;
		ret->municipalities = cJSON_Parse(hqsql_column_text(st, 1));
		snprintf(hash, crypto_pwhash_STRBYTES, "%s", hqsql_column_text(st, 2));
		*found = 1;
		if (!cJSON_IsArray(ret->municipalities))
			r = fs_error_set(err, -FS_ECORRUPT, "account %s: bad municipalities", name);
	} else if (rc != HQSQL_DONE) {
		r = hqsql_fail(db, "read the account", err);
	}
	hqsql_finalize(st);
	return r;
}

static int forget_failures(struct hqsql *db, const char *key, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r = hqsql_prepare(db, "DELETE FROM login_failures WHERE key = ?1", &st, err);

	if (r < 0)
		return r;
	hqsql_bind_text(st, 1, key);
	if (hqsql_step(st) != HQSQL_DONE)
		r = hqsql_fail(db, "forget failed logins", err);
	hqsql_finalize(st);
	return r;
}

/* The keys an attempt counts under: the account's and the address's. */
struct login_keys {
	char user[USERS_MAX_NAME + 8], addr[128];
};

static void login_keys(const char *name, const char *addr, struct login_keys *k)
{
	snprintf(k->user, sizeof(k->user), "user:%s", name);
	snprintf(k->addr, sizeof(k->addr), "addr:%s", addr);
}

/* The audit entry and counters of one attempt, in one transaction: a
 * failure counts against the account and the address, a login clears
 * the account's count. */
static int login_outcome(struct hqsql *db, const char *event, const char *name, const char *addr,
			 const struct users_limits *lim, int failed, uint64_t now_ms,
			 struct fs_error *err)
{
	struct login_keys k;
	int r;

	login_keys(name, addr, &k);
	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		return r;
	if (failed)
		r = count_failure(db, k.user, lim->tries, lim->pause_ms, now_ms, err);
	if (r == 0 && failed)
		r = count_failure(db, k.addr, lim->addr_tries, lim->pause_ms, now_ms, err);
	if (r == 0 && !failed && !strcmp(event, "login"))
		r = forget_failures(db, k.user, err);
	if (r == 0)
		r = audit_append_strings(db, now_ms, event, NULL, err, "user", name, "address",
					 addr, (const char *)NULL);
	if (r == 0)
		r = hqsql_commit(db, err);
	if (r < 0)
		hqsql_rollback(db);
	return r;
}

int users_login(struct hqsql *db, const char *name, const char *password, size_t len,
		const char *addr, const struct users_limits *lim, uint64_t now_ms,
		struct users_account *ret, uint64_t *ret_retry_ms, struct fs_error *err)
{
	char hash[crypto_pwhash_STRBYTES];
	struct users_account acc = { 0 };
	struct login_keys k;
	uint64_t until_user = 0, until_addr = 0;
	int r, found = 0, good;

	*ret_retry_ms = 0;
	if (name_check(name, NULL) < 0)
		name = "(invalid)";
	login_keys(name, addr, &k);
	if ((r = paused_until(db, k.user, now_ms, &until_user, err)) < 0 ||
	    (r = paused_until(db, k.addr, now_ms, &until_addr, err)) < 0)
		return r;
	if (until_user || until_addr) {
		uint64_t until = until_user > until_addr ? until_user : until_addr;

		if ((r = login_outcome(db, "login_paused", name, addr, lim, 0, now_ms, err)) < 0)
			return r;
		*ret_retry_ms = until - now_ms;
		return fs_error_set(err, -EBUSY, "logins paused after failed attempts");
	}
	if ((r = account_read(db, name, hash, &acc, &found, err)) < 0) {
		users_account_clear(&acc);
		return r;
	}
	/* Outside any transaction: Argon2 takes a while, and the writer
	 * must not wait on it.  Without an account, the same work is done
	 * (hashing it), so that a wrong name costs what a wrong password
	 * does and tells nothing. */
	if (found) {
		good = crypto_pwhash_str_verify(hash, password ? password : "",
						password ? len : 0) == 0 &&
		       password_check(password, len, NULL) == 0;
	} else {
		(void)hash_password(password ? password : "", password ? len : 0, hash, NULL);
		good = 0;
	}
	sodium_memzero(hash, sizeof(hash));
	if ((r = login_outcome(db, good ? "login" : "login_failed", name, addr, lim, !good, now_ms,
			       err)) < 0 ||
	    !good) {
		users_account_clear(&acc);
		return r < 0 ? r : fs_error_set(err, -FS_EAUTH, "wrong account name or password");
	}
	*ret = acc;
	return 0;
}

void users_account_clear(struct users_account *a)
{
	if (!a)
		return;
	cJSON_Delete(a->municipalities);
	memset(a, 0, sizeof(*a));
}
