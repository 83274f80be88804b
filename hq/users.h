/* users.h - the HQ console's accounts: who may look and who may act.
 *
 * An account has a name, a role and the municipalities it sees:
 *   admin   sees every municipality and may act (resolve, release,
 *           revoke, enrol);
 *   viewer  sees only its municipalities (scope_parse's list; "*" is
 *           every one) and may not act.
 * Passwords are hashed with Argon2id (libsodium's crypto_pwhash_str, its
 * interactive limits: a login is a person waiting) and never stored,
 * logged or echoed.  Adding, changing and removing an account, every
 * login and every failed one go to the audit log (hq/audit.h) with the
 * account's name and, for logins, the peer's address, never a password.
 *
 * Failed logins are limited per account and per address, in the
 * database so that every HQ process counts them: after tries failures
 * within pause_ms of the first, logins for that account (or from that
 * address, after addr_tries) are refused for pause_ms, even with the
 * right password, and each refusal is audited.
 *
 * Errors: -FS_EUSAGE for a bad name, role, municipality list or
 * password (err says which rule, never the password); -FS_EEXIST for a
 * name taken; -FS_ENOTFOUND for no such account; -FS_EAUTH for a wrong
 * name or password (the same for both, and as slow); -EBUSY while
 * paused (*ret_retry_ms says for how long); database errors otherwise.
 * Each call runs its own transactions.  Thread safety: as the
 * database handle.
 */
#ifndef FS_USERS_H
#define FS_USERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "crypto/fserr.h"
#include "hq/hqsql.h"

#define USERS_MAX_NAME 64
#define USERS_MIN_PASSWORD 12 /* bytes */
#define USERS_MAX_PASSWORD 1024

/* The tables (hq/hqdb.c, version 6).  users.municipalities is the JSON
 * array scope_parse gives; failures counts failed logins per key
 * ("user:NAME" or "addr:ADDRESS") since first_at. */
#define USERS_TABLES_SQL                                                                           \
	"CREATE TABLE users("                                                                      \
	"  name TEXT PRIMARY KEY,"                                                                 \
	"  role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),"                                \
	"  municipalities TEXT NOT NULL,"                                                          \
	"  pwhash TEXT NOT NULL,"                                                                  \
	"  created_at INTEGER NOT NULL,"                                                           \
	"  changed_at INTEGER NOT NULL"                                                            \
	") STRICT;"                                                                                \
	"CREATE TABLE login_failures("                                                             \
	"  key TEXT PRIMARY KEY,"                                                                  \
	"  failures INTEGER NOT NULL,"                                                             \
	"  first_at INTEGER NOT NULL,"                                                             \
	"  paused_until INTEGER NOT NULL DEFAULT 0"                                                \
	") STRICT;"

enum users_role { USERS_VIEWER, USERS_ADMIN };

/* An account, as a login finds it. */
struct users_account {
	char name[USERS_MAX_NAME + 1];
	enum users_role role;
	cJSON *municipalities; /* owned: a JSON array of names, or ["*"] */
};

struct users_limits {
	unsigned tries;	     /* failures per account before a pause */
	unsigned addr_tries; /* failures per address before a pause */
	uint64_t pause_ms;   /* the window, and the pause */
};

/* Parse "admin" or "viewer". */
int users_role_parse(const char *text, enum users_role *ret, struct fs_error *err) FS_WUR;

/* Add an account.  municipalities: scope_parse's list; NULL or "*" for
 * every one, which a viewer must not be given implicitly: a viewer
 * needs a list. */
int users_add(struct hqsql *db, const char *name, enum users_role role, const char *municipalities,
	      const char *password, size_t len, uint64_t now_ms, struct fs_error *err) FS_WUR;

/* Set a new password; the account's failures are forgotten. */
int users_passwd(struct hqsql *db, const char *name, const char *password, size_t len,
		 uint64_t now_ms, struct fs_error *err) FS_WUR;

int users_remove(struct hqsql *db, const char *name, uint64_t now_ms, struct fs_error *err) FS_WUR;

/* Name, role, municipalities, created and changed (RFC 3339), as a
 * table or JSON lines. */
int users_list(struct hqsql *db, int json, FILE *out, struct fs_error *err) FS_WUR;

/* Check a login from addr (the peer's address, text).  On success
 * *ret is the account (free with users_account_clear). */
int users_login(struct hqsql *db, const char *name, const char *password, size_t len,
		const char *addr, const struct users_limits *lim, uint64_t now_ms,
		struct users_account *ret, uint64_t *ret_retry_ms, struct fs_error *err) FS_WUR;

void users_account_clear(struct users_account *a);

#endif
