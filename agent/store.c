/* store.c - opening, creating and checking the encrypted local store.
 *
 * Sections: paths and errors; schema; opening the database; create and
 * open; transactions and the HLC; disk room; meta; statement cache; checks.
 */
#include "agent/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include <cjson/cJSON.h>

#include "agent/ballast.h"
#include "agent/vfs.h"
#include "sync/dberr.h"
#include "sync/fold.h"
#include "crypto/keyfile.h"
#include "crypto/secmem.h"

struct store {
	sqlite3 *db;		       /* open through vfs */
	struct fsvfs *vfs;	       /* owns the page key */
	struct identity *ident;	       /* this device's keys */
	uint8_t *key;		       /* data key, secure memory,
					  for store_reopen() */
	uint8_t id[KEYSTORE_ID_BYTES]; /* store id */
	char data_dir[PATH_MAX];
	char path[PATH_MAX];		       /* .../store.db, for messages */
	uint64_t (*wall_ms)(void);	       /* clock */
	hlc_t hlc;			       /* last HLC, valid in a transaction */
	int hlc_dirty;			       /* hlc must be written at commit */
	sqlite3_stmt *stmts[STORE_STMT_SLOTS]; /* see store_stmt() */
	struct ballast *ballast;	       /* disk room kept for delivery */
	uint64_t ballast_bytes;		       /* its configured size */
	unsigned cache_mib;		       /* page cache, for store_reopen() */
};

/* ---- paths and errors ------------------------------------------------- */

static int dir_file(char *out, size_t len, const char *dir, const char *name, struct fs_error *err)
{
	if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
		return fs_error_set(err, -ENAMETOOLONG, "data directory %s: path too long", dir);
	return 0;
}

/* Build the error for a failed call; with any_fault, a VFS fault is used
 * whatever SQLite's code (integrity_check reports failed pages as rows). */
static int fail_with(struct store *s, const char *what, int any_fault, struct fs_error *err)
{
	int rc = sqlite3_extended_errcode(s->db);
	const char *fault = s->vfs ? fsvfs_last_fault(s->vfs) : NULL;

	/* Only an I/O failure can have come from the VFS; a fault left over
	 * from an earlier call must not relabel a BUSY or FULL. */
	if (fault && !any_fault && (rc & 0xff) != SQLITE_IOERR && (rc & 0xff) != SQLITE_CANTOPEN)
		fault = NULL;
	if (fault) {
		/* The VFS knows the page; SQLite only knows "I/O error". */
		fs_error_set(err, -FS_ECORRUPT, "%s %s: %s", what, s->path, fault);
		fsvfs_clear_fault(s->vfs);
		return -FS_ECORRUPT;
	}
	return dberr_set(s->db, rc, s->path, err, "%s %s", what, s->path);
}

int store_fail(struct store *s, const char *what, struct fs_error *err)
{
	return fail_with(s, what, 0, err);
}

static int exec(struct store *s, const char *sql, const char *what, struct fs_error *err)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(s, what, err);
	return 0;
}

/* ---- schema ----------------------------------------------------------- */

/* Version 2: two-way sync (agent/pull.h).  field_clocks holds the clock
 * (HLC and writing device) of each field value that came from HQ; a
 * field this device wrote last has its clock in the outbox instead.
 * hq_conflicts holds the conflicts HQ decided on records in this
 * device's scope, values included (they never leave the store).  meta
 * gains down_seq, down_hash (hex), scope (JSON) and last_pull. */
#define STORE_PULL_SQL                                                                             \
	"CREATE TABLE field_clocks("                                                               \
	"  record_id TEXT NOT NULL,"                                                               \
	"  field TEXT NOT NULL,"                                                                   \
	"  hlc INTEGER NOT NULL,"                                                                  \
	"  device TEXT NOT NULL,"                                                                  \
	"  PRIMARY KEY (record_id, field)"                                                         \
	") STRICT, WITHOUT ROWID;"                                                                 \
	"CREATE TABLE hq_conflicts("                                                               \
	"  record_id TEXT NOT NULL,"                                                               \
	"  field TEXT NOT NULL,"                                                                   \
	"  device_a TEXT NOT NULL, hlc_a INTEGER NOT NULL, value_a TEXT NOT NULL,"                 \
	"  device_b TEXT NOT NULL, hlc_b INTEGER NOT NULL, value_b TEXT NOT NULL,"                 \
	"  PRIMARY KEY (record_id, field, device_a, hlc_a, device_b, hlc_b)"                       \
	") STRICT, WITHOUT ROWID;"

/* Version 3: forms from HQ (agent/devforms.h).  hq_forms holds the
 * definition of each collection HQ published, as HQ sent it in a
 * down-set, and its version; the outbox notes the form version each
 * change was made under (0: the device's own form), and which changes
 * HQ's receipt said it quarantined: those no longer hold the field
 * against HQ's value (agent/pull.h). */
#define STORE_FORMS_SQL                                                                            \
	"CREATE TABLE hq_forms("                                                                   \
	"  collection TEXT PRIMARY KEY,"                                                           \
	"  version INTEGER NOT NULL,"                                                              \
	"  definition TEXT NOT NULL"                                                               \
	") STRICT;"                                                                                \
	"ALTER TABLE outbox ADD COLUMN form_version INTEGER NOT NULL DEFAULT 0;"                   \
	"ALTER TABLE outbox ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;"

/* Version 4: the caseload's search (agent/caseload.h).  record_search
 * holds each record's text values folded by sync/fold.h (case,
 * diacritics and script), kept by triggers whatever writes the record:
 * a command, an import or a pull, with the folded full name to sort by
 * and the deleted flag, so a search reads no record it does not return.
 * Visits are found by their household
 * through an index on beneficiary_id.  The schema calls fs_words() and
 * fs_field() (store_setup_connection registers them on every
 * connection): SQLite's JSON functions may not be used in a schema
 * under trusted_schema=OFF, and these are innocuous. */
#define STORE_SEARCH_ROW                                                                           \
	"(new.id, new.collection, new.deleted, fs_fold(fs_field(new.fields, 'full_name')),"        \
	" fs_words(new.fields))"
#define STORE_SEARCH_SQL                                                                           \
	"CREATE TABLE record_search("                                                              \
	"  id TEXT PRIMARY KEY,"                                                                   \
	"  collection TEXT NOT NULL,"                                                              \
	"  deleted INTEGER NOT NULL,"                                                              \
	"  name TEXT NOT NULL,"                                                                    \
	"  words TEXT NOT NULL"                                                                    \
	") STRICT, WITHOUT ROWID;"                                                                 \
	"CREATE TRIGGER record_search_insert AFTER INSERT ON records BEGIN"                        \
	"  INSERT OR REPLACE INTO record_search VALUES " STORE_SEARCH_ROW ";"                      \
	"END;"                                                                                     \
	"CREATE TRIGGER record_search_update AFTER UPDATE OF fields, deleted ON records BEGIN"     \
	"  INSERT OR REPLACE INTO record_search VALUES " STORE_SEARCH_ROW ";"                      \
	"END;"                                                                                     \
	"CREATE TRIGGER record_search_delete AFTER DELETE ON records BEGIN"                        \
	"  DELETE FROM record_search WHERE id = old.id;"                                           \
	"END;"                                                                                     \
	"CREATE INDEX records_visits_by_household ON records(fs_field(fields, 'beneficiary_id'))"  \
	"  WHERE collection = 'visits';"                                                           \
	"INSERT INTO record_search SELECT id, collection, deleted,"                                \
	"  fs_fold(fs_field(fields, 'full_name')), fs_words(fields) FROM records;"

/* Version 5: the field app's drafts (agent/drafts.h): unfinished forms,
 * the fields as typed, kept here so that they are encrypted at rest and
 * survive a closed or killed browser.  They are never in the outbox.
 * And the team each device was enrolled for, from HQ's down-sets
 * (version 2), to say which team recorded a visit. */
#define STORE_V5_SQL                                                                               \
	"CREATE TABLE drafts("                                                                     \
	"  id TEXT PRIMARY KEY,"                                                                   \
	"  collection TEXT NOT NULL,"                                                              \
	"  fields TEXT NOT NULL,"                                                                  \
	"  created_ms INTEGER NOT NULL,"                                                           \
	"  updated_ms INTEGER NOT NULL"                                                            \
	") STRICT, WITHOUT ROWID;"                                                                 \
	"CREATE TABLE device_teams("                                                               \
	"  device TEXT PRIMARY KEY,"                                                               \
	"  team TEXT NOT NULL"                                                                     \
	") STRICT, WITHOUT ROWID;"

/* Version 6: files attached to records (agent/attach.h), by their
 * SHA-256 in hex, in chunks, inside the encrypted store. */
#define STORE_V6_SQL                                                                               \
	"CREATE TABLE attachments("                                                                \
	"  sha256 TEXT PRIMARY KEY,"                                                               \
	"  size INTEGER NOT NULL,"                                                                 \
	"  type TEXT NOT NULL,"                                                                    \
	"  added_ms INTEGER NOT NULL"                                                              \
	") STRICT, WITHOUT ROWID;"                                                                 \
	"CREATE TABLE attachment_chunks("                                                          \
	"  sha256 TEXT NOT NULL,"                                                                  \
	"  idx INTEGER NOT NULL,"                                                                  \
	"  data BLOB NOT NULL,"                                                                    \
	"  PRIMARY KEY (sha256, idx)"                                                              \
	") STRICT, WITHOUT ROWID;"

/* Version 7: when HQ said it holds each file (agent/upload.h), NULL
 * while it is still to be sent; and whether only a draft names it (the
 * field app's picker): not sent, and dropped when no draft names it. */
#define STORE_V7_SQL                                                                               \
	"ALTER TABLE attachments ADD COLUMN sent_ms INTEGER;"                                      \
	"ALTER TABLE attachments ADD COLUMN draft INTEGER NOT NULL DEFAULT 0;"

/* Versions 1 to 5 (above).  records.fields is the JSON object of form fields; the
 * outbox holds one row per changed field, written in the same
 * transaction as the record, and keeps it after HQ acknowledges it.
 * outbox.changeset is the outgoing.seq of the change set that carries
 * the change (NULL until packed, agent/pack.c).  outgoing holds every
 * change set this device made, in its chain order: seq and hash as in
 * docs/PROTOCOL.md, the encoded body, and HQ's verified receipt with the
 * local time (Unix ms) it arrived once acknowledged (agent/push.c).
 * Enrolment adds meta keys hq_url, hq_sign_pk, hq_box_pk (hex), tls_pin
 * ("sha256//BASE64", optional), team and municipality (agent/enroll.c).
 * sync_log has one row per attempt to reach HQ (agent/synclog.h).
 * No store with an older version 1 has shipped, so these tables are part
 * of version 1 rather than a migration. */
const char store_schema_sql[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"
	"CREATE TABLE records("
	"  id TEXT PRIMARY KEY,"
	"  collection TEXT NOT NULL,"
	"  fields TEXT NOT NULL,"
	"  created_hlc INTEGER NOT NULL,"
	"  updated_hlc INTEGER NOT NULL,"
	"  author TEXT NOT NULL,"
	"  deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1))"
	") STRICT, WITHOUT ROWID;"
	"CREATE INDEX records_by_collection ON records(collection, deleted);"
	"CREATE TABLE outbox("
	"  seq INTEGER PRIMARY KEY,"
	"  record_id TEXT NOT NULL REFERENCES records(id),"
	"  collection TEXT NOT NULL,"
	"  field TEXT NOT NULL,"
	"  value TEXT,"
	"  hlc INTEGER NOT NULL,"
	"  changeset INTEGER"
	") STRICT;"
	"CREATE INDEX outbox_by_record ON outbox(record_id, seq);"
	"CREATE INDEX outbox_by_changeset ON outbox(changeset);"
	"CREATE TABLE outgoing("
	"  seq INTEGER PRIMARY KEY,"
	"  hash BLOB NOT NULL,"
	"  body BLOB NOT NULL,"
	"  changes INTEGER,"
	"  created_hlc INTEGER,"
	"  receipt BLOB,"
	"  acked_at INTEGER"
	") STRICT;"
	"CREATE TABLE sync_log("
	"  id INTEGER PRIMARY KEY,"
	"  at INTEGER NOT NULL,"
	"  event TEXT NOT NULL,"
	"  result TEXT NOT NULL,"
	"  sets INTEGER NOT NULL,"
	"  changes INTEGER NOT NULL,"
	"  bytes INTEGER NOT NULL,"
	"  duration_ms INTEGER NOT NULL,"
	"  detail TEXT,"
	"  repeats INTEGER NOT NULL DEFAULT 1,"
	"  last_at INTEGER"
	") STRICT;" STORE_PULL_SQL STORE_FORMS_SQL STORE_SEARCH_SQL STORE_V5_SQL STORE_V6_SQL
		STORE_V7_SQL "PRAGMA user_version = 7;";

/* ---- opening the database --------------------------------------------- */

/* Bounds on the WAL's automatic checkpoint, pages: SQLite's default at
 * most, and not so small that every commit checkpoints. */
#define STORE_WAL_MIN_PAGES 16
#define STORE_WAL_MAX_PAGES 1000

/* fs_words(fields): the text values of a record's fields (a JSON
 * object), folded by sync/fold.h and joined by spaces, after a space: a
 * search word matches where " word" starts.  Anything unreadable folds
 * to '' rather than fail a write. */
static void sql_words(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *text = (const char *)sqlite3_value_text(argv[0]);
	cJSON *o = text ? cJSON_Parse(text) : NULL;
	const cJSON *v;
	char *all = NULL, *key = NULL;
	size_t len = 0, cap = 0;
	int r = 0;

	(void)argc;
	cJSON_ArrayForEach(v, o)
	{
		size_t n;

		if (!cJSON_IsString(v))
			continue;
		n = strlen(v->valuestring);
		if (len + n + 2 > cap) {
			char *more = malloc(cap = 2 * (len + n + 2));

			if (!more) {
				r = -ENOMEM;
				break;
			}
			if (all) {
				memcpy(more, all, len);
				sodium_memzero(all, len);
			}
			free(all);
			all = more;
		}
		if (len)
			all[len++] = ' ';
		memcpy(all + len, v->valuestring, n);
		len += n;
	}
	if (r == 0 && all) {
		char *folded = NULL;

		if ((r = fold_text(all, len, &folded)) == 0 &&
		    (key = malloc(strlen(folded) + 2)) == NULL)
			r = -ENOMEM;
		if (key) {
			key[0] = ' ';
			memcpy(key + 1, folded, strlen(folded) + 1);
		}
		if (folded)
			sodium_memzero(folded, strlen(folded));
		free(folded);
	}
	if (all)
		sodium_memzero(all, len);
	free(all);
	cJSON_Delete(o);
	if (r == -ENOMEM)
		sqlite3_result_error_nomem(ctx);
	else if (r < 0 || !key)
		sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
	else
		sqlite3_result_text(ctx, key, -1, free);
}

/* fs_field(fields, name): the string member name of a record's fields,
 * or NULL. */
static void sql_field(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *text = (const char *)sqlite3_value_text(argv[0]);
	const char *name = (const char *)sqlite3_value_text(argv[1]);
	cJSON *o = text && name ? cJSON_Parse(text) : NULL;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	(void)argc;
	if (cJSON_IsString(v))
		sqlite3_result_text(ctx, v->valuestring, -1, SQLITE_TRANSIENT);
	else
		sqlite3_result_null(ctx);
	cJSON_Delete(o);
}

/* fs_fold(text): sync/fold.h's key; NULL or text that is not UTF-8
 * folds to ''. */
static void sql_fold(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *text = (const char *)sqlite3_value_text(argv[0]);
	char *key = NULL;
	int r = text ? fold_text(text, (size_t)sqlite3_value_bytes(argv[0]), &key) : -EINVAL;

	(void)argc;
	if (r == -ENOMEM)
		sqlite3_result_error_nomem(ctx);
	else if (r < 0)
		sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
	else
		sqlite3_result_text(ctx, key, -1, free);
}

/* The store's own SQL functions, on every connection.  Innocuous: the
 * schema calls them under trusted_schema=OFF. */
static int register_functions(sqlite3 *db)
{
	static const struct {
		const char *name;
		int argc;
		void (*fn)(sqlite3_context *, int, sqlite3_value **);
	} fns[] = { { "fs_words", 1, sql_words },
		    { "fs_field", 2, sql_field },
		    { "fs_fold", 1, sql_fold } };
	int rc = SQLITE_OK;

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]) && rc == SQLITE_OK; i++)
		rc = sqlite3_create_function(db, fns[i].name, fns[i].argc,
					     SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
					     NULL, fns[i].fn, NULL, NULL);
	return rc;
}

int store_setup_connection(sqlite3 *db, int create)
{
	int reserve = FSVFS_RESERVE, rc;

	if ((rc = register_functions(db)) != SQLITE_OK)
		return rc;

	if (create) {
		/* Page size and reserved bytes are fixed before the first write;
		 * the switch to WAL uses an in-memory journal so that no rollback
		 * journal ever reaches the disk. */
		rc = sqlite3_exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=MEMORY;", NULL,
				  NULL, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return rc;
	}
	return sqlite3_exec(db,
			    "PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;"
			    "PRAGMA mmap_size=0; PRAGMA foreign_keys=ON;"
			    "PRAGMA trusted_schema=OFF; PRAGMA cell_size_check=ON;"
			    /* A record purged when it leaves the scope is
			     * overwritten, not only unlinked (agent/pull.h). */
			    "PRAGMA secure_delete=ON;",
			    NULL, NULL, NULL);
}

int store_cache_size(sqlite3 *db, unsigned mib)
{
	char sql[64];

	/* Negative: KiB, whatever the page size. */
	snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%llu", (unsigned long long)mib * 1024);
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

int store_set_cache(struct store *s, unsigned mib, struct fs_error *err)
{
	if (store_cache_size(s->db, mib) != SQLITE_OK)
		return store_fail(s, "size the page cache of", err);
	s->cache_mib = mib;
	return 0;
}

void store_release_memory(struct store *s)
{
	if (s && s->db)
		(void)sqlite3_db_release_memory(s->db);
}

/* Checkpoint the WAL before it holds half the disk room kept for
 * delivery, and cut it back to that size after, so that on a full disk
 * the ballast can always pay for the checkpoint (agent/ballast.h). */
static int wal_bound(struct store *s)
{
	uint64_t pages = ballast_size(s->ballast) / 2 / FSVFS_PAGE_SIZE;
	char sql[64];

	if (pages < STORE_WAL_MIN_PAGES)
		pages = STORE_WAL_MIN_PAGES;
	if (pages > STORE_WAL_MAX_PAGES)
		pages = STORE_WAL_MAX_PAGES;
	sqlite3_wal_autocheckpoint(s->db, (int)pages);
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%llu",
		 (unsigned long long)(pages * (FSVFS_PAGE_SIZE + 24) + 32));
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

static int db_open(struct store *s, const uint8_t *key, const uint8_t *id, int create,
		   const struct store_options *opt, struct fs_error *err)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX |
		    SQLITE_OPEN_NOFOLLOW;
	int r;

	r = fsvfs_create(key, id, opt ? opt->under_vfs : NULL, &s->vfs);
	if (r < 0)
		return fs_error_set(err, r, "open store %s: cannot register VFS", s->path);
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(s->path, &s->db, flags, fsvfs_name(s->vfs)) != SQLITE_OK) {
		if (!s->db)
			return fs_error_set(err, -ENOMEM, "open store %s: out of memory", s->path);
		return store_fail(s, "open store", err);
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 5000);
	if (store_setup_connection(s->db, create) != SQLITE_OK || wal_bound(s) != SQLITE_OK ||
	    store_cache_size(s->db, s->cache_mib) != SQLITE_OK)
		return store_fail(s, create ? "create store" : "open store", err);
	return 0;
}

static int pragma_int(struct store *s, const char *sql, int *ret, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "read store", err);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return store_fail(s, "read store", err);
	}
	*ret = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Every open proves the layout is ours before anything is written. */
static int db_verify(struct store *s, struct fs_error *err)
{
	int version = 0, page_size = 0, reserve = -1, r;
	sqlite3_stmt *st = NULL;
	const char *mode;

	if ((r = pragma_int(s, "PRAGMA user_version", &version, err)) < 0)
		return r;
	if ((r = pragma_int(s, "PRAGMA page_size", &page_size, err)) < 0)
		return r;
	sqlite3_file_control(s->db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
	if (page_size != FSVFS_PAGE_SIZE || reserve != FSVFS_RESERVE)
		return fs_error_set(err, -FS_EFORMAT,
				    "open store %s: page size %d with %d reserved "
				    "bytes, expected %d with %d",
				    s->path, page_size, reserve, FSVFS_PAGE_SIZE, FSVFS_RESERVE);
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return store_fail(s, "open store", err);
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	r = mode && !strcmp(mode, "wal") ? 0 : -FS_EFORMAT;
	sqlite3_finalize(st);
	if (r < 0)
		return fs_error_set(err, r, "open store %s: not in WAL mode", s->path);
	if (version == 0)
		return fs_error_set(err, -FS_EFORMAT,
				    "open store %s: no schema (run fieldsync init)", s->path);
	if (version > STORE_SCHEMA_VERSION)
		return fs_error_set(err, -FS_EFORMAT,
				    "open store %s: schema version %d is newer "
				    "than this fieldsync understands (%d)",
				    s->path, version, STORE_SCHEMA_VERSION);
	return 0;
}

/* Up to STORE_SCHEMA_VERSION, in one transaction: a second process waits
 * for it and finds the new version. */
static int db_upgrade(struct store *s, struct fs_error *err)
{
	int version = 0, r;

	if ((r = pragma_int(s, "PRAGMA user_version", &version, err)) < 0 ||
	    version == STORE_SCHEMA_VERSION)
		return r;
	if ((r = exec(s, "BEGIN IMMEDIATE", "upgrade store", err)) < 0)
		return r;
	if ((r = pragma_int(s, "PRAGMA user_version", &version, err)) == 0 && version == 1)
		r = exec(s, STORE_PULL_SQL "PRAGMA user_version = 2;", "upgrade store", err);
	if (r == 0 && (r = pragma_int(s, "PRAGMA user_version", &version, err)) == 0 &&
	    version == 2)
		r = exec(s, STORE_FORMS_SQL "PRAGMA user_version = 3;", "upgrade store", err);
	if (r == 0 && (r = pragma_int(s, "PRAGMA user_version", &version, err)) == 0 &&
	    version == 3)
		r = exec(s, STORE_SEARCH_SQL "PRAGMA user_version = 4;", "upgrade store", err);
	if (r == 0 && (r = pragma_int(s, "PRAGMA user_version", &version, err)) == 0 &&
	    version == 4)
		r = exec(s, STORE_V5_SQL "PRAGMA user_version = 5;", "upgrade store", err);
	if (r == 0 && (r = pragma_int(s, "PRAGMA user_version", &version, err)) == 0 &&
	    version == 5)
		r = exec(s, STORE_V6_SQL "PRAGMA user_version = 6;", "upgrade store", err);
	if (r == 0 && (r = pragma_int(s, "PRAGMA user_version", &version, err)) == 0 &&
	    version == 6)
		r = exec(s, STORE_V7_SQL "PRAGMA user_version = 7;", "upgrade store", err);
	if (r == 0)
		r = exec(s, "COMMIT", "upgrade store", err);
	if (r < 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* ---- create and open -------------------------------------------------- */

static struct store *store_new(const char *data_dir, const struct store_options *opt,
			       struct fs_error *err)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s) {
		fs_error_set(err, -ENOMEM, "open store in %s: out of memory", data_dir);
		return NULL;
	}
	s->wall_ms = opt && opt->wall_ms ? opt->wall_ms : hlc_wall_ms;
	s->ballast_bytes = opt ? opt->ballast_bytes : 0;
	s->cache_mib = opt && opt->cache_mib ? opt->cache_mib : STORE_DEFAULT_CACHE_MIB;
	if (dir_file(s->path, sizeof(s->path), data_dir, "store.db", err) < 0 ||
	    ballast_new(data_dir, s->ballast_bytes, &s->ballast, err) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static int write_identity(const char *data_dir, const uint8_t *key, struct identity **ret_ident,
			  struct fs_error *err)
{
	uint8_t sealed[IDENTITY_SEALED_BYTES], *sub = NULL;
	char path[PATH_MAX];
	struct identity *ident = NULL;
	int r;

	if ((r = dir_file(path, sizeof(path), data_dir, "device.key", err)) < 0)
		return r;
	r = identity_generate(&ident);
	sub = secmem_alloc(AEAD_KEYBYTES);
	if (r < 0 || !sub) {
		identity_free(ident);
		secmem_free(sub);
		return fs_error_set(err, -ENOMEM, "create device identity: out of memory");
	}
	aead_derive_subkey(sub, 2, "fsdevice", key);
	r = identity_seal(ident, sub, sealed);
	sub = secmem_free(sub);
	if (r < 0)
		fs_error_set(err, r, "create device identity: out of secure memory");
	else
		r = keyfile_write(path, KEYFILE_DEVICE, sealed, sizeof(sealed), KEYFILE_NO_REPLACE,
				  err);
	if (r < 0) {
		identity_free(ident);
		return r;
	}
	*ret_ident = ident;
	return 0;
}

static int read_identity(const char *data_dir, const uint8_t *key, struct identity **ret_ident,
			 struct fs_error *err)
{
	uint8_t *sub = NULL, *payload = NULL;
	char path[PATH_MAX];
	size_t len;
	int r;

	if ((r = dir_file(path, sizeof(path), data_dir, "device.key", err)) < 0)
		return r;
	if ((r = keyfile_read(path, KEYFILE_DEVICE, &payload, &len, err)) < 0)
		return r;
	sub = secmem_alloc(AEAD_KEYBYTES);
	if (!sub) {
		secmem_free(payload);
		return fs_error_set(err, -ENOMEM, "open device key %s: out of secure memory", path);
	}
	aead_derive_subkey(sub, 2, "fsdevice", key);
	r = identity_unseal(payload, len, sub, ret_ident);
	secmem_free(sub);
	secmem_free(payload);
	if (r < 0)
		return fs_error_set(err, r == -FS_EAUTH ? -FS_ECORRUPT : r,
				    "open device key %s: %s", path,
				    r == -FS_EAUTH ? "does not belong to this store, or was altered"
						   : fs_strerror(r));
	return 0;
}

/* The files store_create() makes, in the order it makes them. */
static const char *const store_files[] = { "store.key", "device.key", "store.db", "store.db-wal",
					   "store.db-shm" };

/* Remove only what this call created (bit i: store_files[i]), so a failed
 * init can be retried and never deletes a store that was already there. */
static void remove_created(const char *data_dir, unsigned created)
{
	char path[PATH_MAX];

	if (created & (1u << 2))
		created |= (1u << 3) | (1u << 4); /* SQLite's companions of our store.db */
	for (size_t i = sizeof(store_files) / sizeof(store_files[0]); i-- > 0;)
		if ((created & (1u << i)) &&
		    dir_file(path, sizeof(path), data_dir, store_files[i], NULL) == 0)
			unlink(path);
}

int store_create(const char *data_dir, const struct keystore_secret *secret,
		 enum pwhash_profile profile, const struct store_options *opt, struct fs_error *err)
{
	uint8_t id[KEYSTORE_ID_BYTES], *key = NULL;
	char keypath[PATH_MAX], meta[256];
	struct store *s = NULL;
	unsigned created = 0;
	int r, fd;

	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST)
		return fs_error_set(err, -errno, "create data directory %s: %s", data_dir,
				    strerror(errno));
	/* Any piece of an earlier store means stop: never overwrite or
	 * delete what may be someone's only copy of their visits. */
	for (size_t i = 0; i < sizeof(store_files) / sizeof(store_files[0]); i++) {
		char path[PATH_MAX];

		if ((r = dir_file(path, sizeof(path), data_dir, store_files[i], err)) < 0)
			return r;
		if (access(path, F_OK) == 0)
			return fs_error_set(err, -FS_EEXIST,
					    "create store in %s: %s already exists; "
					    "not touching an existing store",
					    data_dir, store_files[i]);
	}
	if ((r = dir_file(keypath, sizeof(keypath), data_dir, "store.key", err)) < 0)
		return r;
	s = store_new(data_dir, opt, err);
	if (!s)
		return err ? err->code : -ENOMEM;
	r = keystore_create(keypath, secret, profile, &key, id, err);
	if (r < 0)
		goto out;
	created |= 1u << 0;
	if ((r = write_identity(data_dir, key, &s->ident, err)) < 0)
		goto out;
	created |= 1u << 1;
	/* SQLite would create the file 0644, and its -wal and -shm take the
	 * database's mode: make it 0600 first. */
	fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = fs_error_set(err, -errno, "create store %s: %s", s->path, strerror(errno));
		goto out;
	}
	close(fd);
	created |= 1u << 2;
	if ((r = db_open(s, key, id, 1, opt, err)) < 0)
		goto out;
	if ((r = exec(s, "BEGIN IMMEDIATE;", "create store", err)) < 0 ||
	    (r = exec(s, store_schema_sql, "create store", err)) < 0)
		goto out;
	snprintf(meta, sizeof(meta),
		 "INSERT INTO meta VALUES('device_id', '%s'), ('hlc', '0'); COMMIT;", s->ident->id);
	if ((r = exec(s, meta, "create store", err)) < 0)
		goto out;
	r = db_verify(s, err);
out:
	store_close(s);
	secmem_free(key);
	if (r < 0)
		remove_created(data_dir, created);
	return r;
}

int store_open(const char *data_dir, const struct keystore_secret *secret,
	       const struct store_options *opt, struct store **ret_store, struct fs_error *err)
{
	uint8_t id[KEYSTORE_ID_BYTES], *key = NULL;
	char keypath[PATH_MAX];
	struct store *s;
	int r;

	s = store_new(data_dir, opt, err);
	if (!s)
		return err ? err->code : -ENOMEM;
	if ((r = dir_file(keypath, sizeof(keypath), data_dir, "store.key", err)) < 0)
		goto out;
	if (access(keypath, F_OK) < 0) {
		r = fs_error_set(err, -ENOENT, "open store in %s: no store (run fieldsync init)",
				 data_dir);
		goto out;
	}
	if ((r = keystore_open(keypath, secret, &key, id, err)) < 0)
		goto out;
	if ((r = read_identity(data_dir, key, &s->ident, err)) < 0)
		goto out;
	if (access(s->path, F_OK) < 0) {
		r = fs_error_set(err, -ENOENT, "open store %s: database file is missing", s->path);
		goto out;
	}
	if ((r = db_open(s, key, id, 0, opt, err)) < 0)
		goto out;
	if ((r = db_verify(s, err)) < 0 || (r = db_upgrade(s, err)) < 0)
		goto out;
	memcpy(s->id, id, sizeof(id));
	s->key = key;
	key = NULL;
	snprintf(s->data_dir, sizeof(s->data_dir), "%s", data_dir);
	*ret_store = s;
	s = NULL;
out:
	secmem_free(key);
	store_close(s);
	return r;
}

int store_reopen(const struct store *from, struct store **ret_store, struct fs_error *err)
{
	struct store_options opt = { .wall_ms = from->wall_ms,
				     .ballast_bytes = from->ballast_bytes,
				     .cache_mib = from->cache_mib };
	struct store *s;
	int r;

	s = store_new(from->data_dir, &opt, err);
	if (!s)
		return err ? err->code : -ENOMEM;
	if (secmem_dup(from->key, AEAD_KEYBYTES, &s->key) < 0) {
		r = fs_error_set(err, -ENOMEM, "open store %s: out of secure memory", s->path);
		goto out;
	}
	memcpy(s->id, from->id, sizeof(s->id));
	snprintf(s->data_dir, sizeof(s->data_dir), "%s", from->data_dir);
	if ((r = read_identity(from->data_dir, s->key, &s->ident, err)) < 0 ||
	    (r = db_open(s, s->key, s->id, 0, &opt, err)) < 0 || (r = db_verify(s, err)) < 0)
		goto out;
	*ret_store = s;
	s = NULL;
out:
	store_close(s);
	return r;
}

struct store *store_close(struct store *s)
{
	if (!s)
		return NULL;
	for (int i = 0; i < STORE_STMT_SLOTS; i++)
		sqlite3_finalize(s->stmts[i]);
	if (s->db) {
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		/* Every statement is finalized above, so close succeeds; if it
		 * ever does not, the connection still uses the VFS, and leaking
		 * the VFS is better than freeing it under SQLite. */
		if (sqlite3_close(s->db) != SQLITE_OK)
			s->vfs = NULL;
	}
	fsvfs_destroy(s->vfs);
	identity_free(s->ident);
	secmem_free(s->key);
	ballast_free(s->ballast);
	free(s);
	return NULL;
}

int store_shred_key(const char *data_dir, struct fs_error *err)
{
	char path[PATH_MAX];
	uint8_t junk[4096];
	struct stat st;
	off_t done = 0;
	int fd, r = 0;

	if ((r = dir_file(path, sizeof(path), data_dir, "store.key", err)) < 0)
		return r;
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fs_error_set(err, -errno, "shred %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = fs_error_set(err, -errno, "shred %s: %s", path, strerror(errno));
		goto out;
	}
	while (done < st.st_size) {
		size_t n = (size_t)(st.st_size - done) < sizeof(junk) ? (size_t)(st.st_size - done)
								      : sizeof(junk);
		ssize_t w;

		randombytes_buf(junk, n);
		w = pwrite(fd, junk, n, done);
		if (w <= 0) {
			r = fs_error_set(err, w < 0 ? -errno : -EIO, "shred %s: write failed",
					 path);
			goto out;
		}
		done += w;
	}
	if (fsync(fd) < 0)
		r = fs_error_set(err, -errno, "shred %s: %s", path, strerror(errno));
out:
	close(fd);
	if (r == 0 && unlink(path) < 0)
		r = fs_error_set(err, -errno, "shred %s: %s", path, strerror(errno));
	/* The removal itself must survive a power cut. */
	if (r == 0 && (fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		if (fsync(fd) < 0)
			r = fs_error_set(err, -errno, "shred %s: sync directory: %s", path,
					 strerror(errno));
		close(fd);
	}
	return r;
}

int store_check_secret(const char *data_dir, const struct keystore_secret *secret,
		       struct fs_error *err)
{
	uint8_t id[KEYSTORE_ID_BYTES], *key = NULL;
	char path[PATH_MAX];
	int r;

	if ((r = dir_file(path, sizeof(path), data_dir, "store.key", err)) < 0)
		return r;
	r = keystore_open(path, secret, &key, id, err);
	if (key)
		secmem_free(key);
	return r;
}

int store_passwd(const char *data_dir, const struct keystore_secret *old_secret,
		 const struct keystore_secret *new_secret, enum pwhash_profile profile,
		 struct fs_error *err)
{
	char keypath[PATH_MAX];
	int r;

	if ((r = dir_file(keypath, sizeof(keypath), data_dir, "store.key", err)) < 0)
		return r;
	return keystore_rewrap(keypath, old_secret, new_secret, profile, err);
}

sqlite3 *store_db(struct store *s)
{
	return s->db;
}

const struct identity *store_identity(const struct store *s)
{
	return s->ident;
}

const char *store_path(const struct store *s)
{
	return s->path;
}

uint64_t store_wall_ms(const struct store *s)
{
	return s->wall_ms();
}

/* ---- transactions and the HLC ----------------------------------------- */

int store_begin(struct store *s, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	const char *text;
	int r;

	fsvfs_clear_fault(s->vfs);
	if ((r = exec(s, "BEGIN IMMEDIATE", "begin transaction on", err)) < 0)
		return r;
	r = store_stmt(s, 0, "SELECT value FROM meta WHERE key = 'hlc'", &st, err);
	if (r < 0)
		goto fail;
	if (sqlite3_step(st) != SQLITE_ROW) {
		r = store_fail(s, "read clock from", err);
		goto fail;
	}
	text = (const char *)sqlite3_column_text(st, 0);
	s->hlc = text ? strtoull(text, NULL, 10) : 0;
	s->hlc_dirty = 0;
	sqlite3_reset(st);
	return 0;
fail:
	store_rollback(s);
	return r;
}

hlc_t store_hlc_next(struct store *s)
{
	s->hlc = hlc_next(s->hlc, s->wall_ms());
	s->hlc_dirty = 1;
	return s->hlc;
}

void store_hlc_observe(struct store *s, uint64_t physical_ms)
{
	hlc_t t = hlc_from_ms(physical_ms);

	if (t > s->hlc) {
		s->hlc = t;
		s->hlc_dirty = 1;
	}
}

uint64_t store_hlc_physical_ms(const struct store *s)
{
	return hlc_physical_ms(s->hlc);
}

void store_hlc_rewind(struct store *s, uint64_t physical_ms)
{
	s->hlc = hlc_from_ms(physical_ms);
	s->hlc_dirty = 1;
}

int store_commit(struct store *s, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (s->hlc_dirty) {
		r = store_stmt(s, 1, "UPDATE meta SET value = ?1 WHERE key = 'hlc'", &st, err);
		if (r < 0)
			goto fail;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)s->hlc);
		if (sqlite3_step(st) != SQLITE_DONE) {
			r = store_fail(s, "save clock to", err);
			goto fail;
		}
	}
	if ((r = exec(s, "COMMIT", "commit to", err)) < 0)
		goto fail;
	s->hlc_dirty = 0;
	return 0;
fail:
	store_rollback(s);
	return r;
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->hlc_dirty = 0;
}

/* ---- disk room -------------------------------------------------------- */

int store_begin_local(struct store *s, struct fs_error *err)
{
	int r = ballast_hold(s->ballast, err);

	return r < 0 ? r : store_begin(s, err);
}

int store_room_take(struct store *s, struct fs_error *err)
{
	return ballast_drop(s->ballast, err);
}

void store_room_give_back(struct store *s)
{
	ballast_restore(s->ballast);
}

int store_room_state(struct store *s, struct ballast_state *ret, struct fs_error *err)
{
	return ballast_state(s->ballast, ret, err);
}

int store_checkpoint(struct store *s, struct fs_error *err)
{
	int rc;

	if (!sqlite3_get_autocommit(s->db))
		return fs_error_set(err, -FS_EUSAGE, "checkpoint %s: inside a transaction",
				    s->path);
	fsvfs_clear_fault(s->vfs);
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (rc == SQLITE_OK)
		return 0;
	return store_fail(s, "checkpoint", err);
}

/* ---- meta ---------------------------------------------------------- */

/* Statement slots 24 and 25 (store.h: the cache's slots are shared). */
enum { SLOT_META_GET = 24, SLOT_META_PUT };

int store_meta_get(struct store *s, const char *key, char *out, size_t cap, int *ret_found,
		   struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	r = store_stmt(s, SLOT_META_GET, "SELECT value FROM meta WHERE key = ?1", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*ret_found = 0;
	if (rc == SQLITE_ROW) {
		int len = sqlite3_column_bytes(st, 0);

		if (len < 0 || (size_t)len >= cap) {
			r = fs_error_set(err, -FS_ECORRUPT, "read enrolment in %s: %s too long",
					 store_path(s), key);
		} else {
			memcpy(out, sqlite3_column_text(st, 0), (size_t)len);
			out[len] = '\0';
			*ret_found = 1;
		}
	} else if (rc != SQLITE_DONE) {
		r = store_fail(s, "read enrolment in", err);
	}
	sqlite3_reset(st);
	return r;
}

int store_meta_put(struct store *s, const char *key, const char *value, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	r = store_stmt(s, SLOT_META_PUT, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
		       &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail(s, "save enrolment in", err);
	sqlite3_reset(st);
	return r;
}

/* ---- statement cache -------------------------------------------------- */

int store_stmt(struct store *s, int slot, const char *sql, sqlite3_stmt **ret_stmt,
	       struct fs_error *err)
{
	if (slot < 0 || slot >= STORE_STMT_SLOTS)
		return fs_error_set(err, -FS_EUSAGE, "statement slot %d out of range", slot);
	if (!s->stmts[slot]) {
		if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[slot],
				       NULL) != SQLITE_OK)
			return store_fail(s, "prepare statement for", err);
	} else {
		sqlite3_reset(s->stmts[slot]);
		sqlite3_clear_bindings(s->stmts[slot]);
	}
	*ret_stmt = s->stmts[slot];
	return 0;
}

/* ---- checks ----------------------------------------------------------- */

int store_check(struct store *s, struct fs_error *err)
{
	static const char orphan_sql[] =
		"SELECT 'record without outbox changes' FROM records r"
		" WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.record_id = r.id)"
		/* Records HQ sent have clocks instead (agent/pull.h). */
		" AND NOT EXISTS (SELECT 1 FROM field_clocks c WHERE c.record_id = r.id)"
		" UNION ALL SELECT 'outbox change without record' FROM outbox o"
		" WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = o.record_id) LIMIT 1";
	sqlite3_stmt *st = NULL;
	const char *text;
	int rc, r = 0;

	fsvfs_clear_fault(s->vfs);
	if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "check store", err);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = store_fail(s, "check store", err);
		goto out;
	}
	text = (const char *)sqlite3_column_text(st, 0);
	if (!text || strcmp(text, "ok") != 0) {
		/* integrity_check reports unreadable pages as rows, not as an
		 * error; the VFS knows which page failed authentication. */
		if (fsvfs_last_fault(s->vfs)) {
			r = fail_with(s, "check store", 1, err);
			goto out;
		}
		r = fs_error_set(err, -FS_ECORRUPT,
				 "check store %s: integrity check failed: %.200s", s->path,
				 text ? text : "(no answer)");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(s->db, orphan_sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "check store", err);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = fs_error_set(err, -FS_ECORRUPT, "check store %s: %s", s->path,
				 (const char *)sqlite3_column_text(st, 0));
	else if (rc != SQLITE_DONE)
		r = store_fail(s, "check store", err);
out:
	sqlite3_finalize(st);
	return r;
}
