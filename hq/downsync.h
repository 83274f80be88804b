/* downsync.h - HQ's side of two-way sync: which merged fields are in
 * which scope, and the down-sets that carry them to each device.
 *
 * Every merged field, and every conflict, has a revision (fields.rev,
 * conflicts.rev), unique and increasing across HQ; a field has the scope
 * key of its record (fields.scope_key: the
 * folded scope value, sync/fold.h; "" for a collection whose form has no
 * scope field; NULL while HQ does not know it).  downsync_field_merged()
 * keeps both right as ingest merges: when a record's scope value changes,
 * every field of it, and of the records scoped through it (a
 * household's visits), gets the new key and a new revision, so devices
 * of the new scope receive the whole record; and the old key gets a
 * scope_moves row, so devices of the old scope learn it left.
 *
 * A device pulls with a signed request (POST /v1/pull, PROTOCOL.md):
 * "I applied down-set N, whose hash is H".  HQ keeps, per device, the
 * last down-set it made, its chain and a cursor per scope key.  When N
 * is that set, HQ makes the next from the cursors: at most batch
 * entries, flag "more" when some remain; or answers 204 when nothing
 * changed in the scope, and the scope itself did not.  When N is the one
 * before (the answer was lost), the same bytes go again.  Anything else
 * is 409 with the sequence HQ expects.  Each new down-set is one audit
 * entry ("pull": sequence, hash, counts; never a value).
 *
 * Thread safety: db belongs to the caller; the rest is read-only.
 * Errors name the device and why, never a value.
 */
#ifndef FS_DOWNSYNC_H
#define FS_DOWNSYNC_H

#include <stddef.h>
#include <stdint.h>
#include "hq/hqsql.h"

#include "crypto/fserr.h"
#include "crypto/identity.h"
#include "hq/hqforms.h"
#include "sync/changeset.h"

/* The tables, for a new database and the upgrade to schema version 4.
 * records_by_parent: serve's reindex looks for records without a key at
 * every start, by index, not by reading every record. */
#define DOWNSYNC_TABLES_SQL                                                                        \
	"CREATE INDEX fields_by_scope ON fields(scope_key, rev);"                                  \
	"CREATE INDEX fields_by_rev ON fields(rev);"                                               \
	"CREATE INDEX records_by_parent ON records(scope_parent);"                                 \
	"CREATE INDEX records_by_scope ON records(collection, scope_key);"                         \
	"CREATE INDEX conflicts_by_rev ON conflicts(rev);"                                         \
	"CREATE INDEX conflicts_by_record ON conflicts(record_id);"                                \
	"CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;"             \
	"CREATE TABLE scope_fields(collection TEXT PRIMARY KEY, field TEXT NOT NULL) STRICT;"      \
	"INSERT INTO counters VALUES ('rev', 0);"                                                  \
	"CREATE TABLE scope_moves("                                                                \
	"  rev INTEGER PRIMARY KEY,"                                                               \
	"  record_id TEXT NOT NULL,"                                                               \
	"  from_key TEXT NOT NULL,"                                                                \
	"  held_from INTEGER NOT NULL"                                                             \
	") STRICT;"                                                                                \
	"CREATE INDEX scope_moves_by_key ON scope_moves(from_key, rev);"                           \
	"CREATE TABLE down_state("                                                                 \
	"  device TEXT PRIMARY KEY REFERENCES devices(id),"                                        \
	"  seq INTEGER NOT NULL,"                                                                  \
	"  hash BLOB NOT NULL,"                                                                    \
	"  prev_hash BLOB NOT NULL,"                                                               \
	"  body BLOB NOT NULL,"                                                                    \
	"  conflict_cursor INTEGER NOT NULL,"                                                      \
	"  scope TEXT NOT NULL,"                                                                   \
	"  issued_at INTEGER NOT NULL"                                                             \
	") STRICT;"                                                                                \
	"CREATE TABLE down_cursors("                                                               \
	"  device TEXT NOT NULL REFERENCES devices(id),"                                           \
	"  key TEXT NOT NULL,"                                                                     \
	"  rev INTEGER NOT NULL,"                                                                  \
	"  moved INTEGER NOT NULL,"                                                                \
	"  PRIMARY KEY (device, key)"                                                              \
	") STRICT, WITHOUT ROWID;"

#define DOWNSYNC_DEFAULT_BATCH 2000

/* One ingest run's bookkeeping: prepared statements on db, and a block
 * of revisions taken from the counter.  Its writes go through
 * hqsql_step_later: a failure may be reported by a later call on db,
 * and always by the commit.  forms must outlive it. */
struct downsync_writer;
int downsync_writer_new(struct hqsql *db, const struct hq_forms *forms,
			struct downsync_writer **ret, struct fs_error *err) FS_WUR;
void downsync_writer_free(struct downsync_writer *w);

/* The field (record, field) of collection has just been written as the
 * merged value (JSON text value_json): give it a revision and its scope
 * key, and move the record when this was its scope field.  old_key is
 * the record's scope key as the caller read it in this transaction,
 * before the write (NULL: none); the caller reads it anyway, and one
 * read less per change counts on PostgreSQL. */
int downsync_field_merged(struct downsync_writer *w, const char *collection, const char *record_id,
			  const char *field, const char *value_json, const char *old_key,
			  struct fs_error *err) FS_WUR;

/* A change to (record, field) was just quarantined: give HQ's value of
 * it, if HQ holds one, a new revision, so that the devices of its scope,
 * the sender among them, receive it again.  The sender still shows its
 * own refused value, which no longer counts against HQ's (agent/pull.h),
 * until then. */
int downsync_field_resend(struct downsync_writer *w, const char *record_id, const char *field,
			  struct fs_error *err) FS_WUR;

/* Conflict id (conflicts.id) has just been recorded: give it a
 * revision, so that the devices of its record's scope receive it. */
int downsync_conflict_recorded(struct downsync_writer *w, int64_t id, struct fs_error *err) FS_WUR;

/* Fill scope keys HQ does not know yet (fields merged before schema
 * version 4), and place again every record of a collection whose form
 * names another scope field than when HQ last ran (scope_fields): new
 * keys, new revisions, moves from the old keys.  Idempotent; serve runs
 * it before it listens. */
int downsync_reindex(struct hqsql *db, const struct hq_forms *forms, struct fs_error *err) FS_WUR;

struct downsync_result {
	int status;	   /* HTTP status; 204: nothing new since the last set */
	const char *error; /* protocol error code, NULL for 200 */
	char message[256];
	char device[2 * CHANGESET_DEVICE_BYTES + 1];
	uint64_t expected; /* 409: the sequence HQ holds for the device */
	uint8_t *body;	   /* 200: the down-set, malloc'd */
	size_t len;
	int repeat; /* 200: the last down-set again */
};

/* Answer a pull request.  0 with ret filled (any status); < 0 when HQ
 * itself failed (answer 500; nothing changed). */
int downsync_pull(struct hqsql *db, const struct identity *hq, const struct hq_forms *forms,
		  unsigned batch, const uint8_t *req, size_t len, uint64_t now_ms,
		  struct downsync_result *ret, struct fs_error *err) FS_WUR;

void downsync_result_clear(struct downsync_result *r);

#endif
