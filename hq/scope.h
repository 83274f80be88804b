/* scope.h - whose caseload a device may write, and which records are in
 * it.
 *
 * A device's scope is a list of municipality names (table device_scopes):
 * the municipality of its enrolment token by default, or a list an
 * administrator set (`enroll-token --scope`, `fieldsync-hq scope`).  The
 * single name "*" is every municipality, for a national team.
 *
 * A record is in a scope when the value of its form's scope field
 * (sync/form.h, "scope") matches one of the names by fold_equal()
 * (sync/fold.h): "Bujanovac" matches "Бујановац".  When the scope field
 * is a ref, the record is where the record it names is (a visit is in
 * its beneficiary's scope).  A collection whose form has no scope field
 * is in every scope.
 *
 * The write rule (scope_check): a device writes a record only when the
 * record is in its scope as HQ holds it, or, for a record HQ does not
 * hold yet, as the change set itself says; and a change to the scope
 * field itself must leave the record in the device's scope, so that no
 * device can move a household into another team's caseload or out of
 * reach of its own.  Everything else is quarantined with a reason that
 * names no value.
 *
 * Thread safety: a struct scope is immutable once built; a struct
 * scope_set keeps what it read (below); both belong to their caller; db connections are the
 * caller's.  Errors name the device and why; never a field value.
 */
#ifndef FS_SCOPE_H
#define FS_SCOPE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "hq/hqsql.h"

#include "crypto/fserr.h"
#include "hq/hqforms.h"
#include "sync/changeset.h"
#include "sync/scoperule.h"

#define SCOPE_ALL SCOPERULE_ALL
#define SCOPE_MAX_NAMES 64
#define SCOPE_MAX_NAME 200 /* bytes, as a municipality at enrolment */

/* The tables and the upgrade from version 2 (hq/hqdb.c). */
#define SCOPE_TABLE_SQL                                                                            \
	"CREATE TABLE device_scopes("                                                              \
	"  device TEXT NOT NULL REFERENCES devices(id),"                                           \
	"  key TEXT NOT NULL,"                                                                     \
	"  name TEXT NOT NULL,"                                                                    \
	"  PRIMARY KEY (device, key)"                                                              \
	") STRICT, WITHOUT ROWID;"

/* "A, B, Бујановац" into a JSON array of the names, trimmed, each once
 * (by folded key), in the order given; "*" alone is every municipality.
 * -FS_EUSAGE with err saying what is wrong (empty name, too long, not
 * UTF-8, more than SCOPE_MAX_NAMES, "*" beside names). */
int scope_parse(const char *list, cJSON **ret, struct fs_error *err) FS_WUR;

/* Replace device's scope with names (from scope_parse, or a JSON array
 * text stored with a token).  The caller owns the transaction. */
int scope_store(struct hqsql *db, const char *device, const cJSON *names,
		struct fs_error *err) FS_WUR;

/* An administrator's change: in one transaction, the device must be
 * enrolled (-FS_ENOTFOUND), its scope becomes list, and a "scope" audit
 * entry records the old and the new list. */
int scope_change(struct hqsql *db, const char *device, const char *list, uint64_t now_ms,
		 struct fs_error *err) FS_WUR;

/* A device's scope, loaded for checks. */
struct scope;
int scope_load(struct hqsql *db, const char *device, struct scope **ret,
	       struct fs_error *err) FS_WUR;
/* 1 when value (UTF-8) is one of the scope's names, by fold_equal. */
int scope_contains(const struct scope *s, const char *value);
void scope_free(struct scope *s);

/* One change set's check: the scope-field values the set carries, by
 * record, for records HQ does not hold yet, and a statement on db that
 * reads HQ's merged values.  Points into ch and forms, which must outlive
 * it; db too. */
struct scope_set;
int scope_set_build(struct hqsql *db, const struct hq_forms *forms, const struct change *ch,
		    size_t n, struct scope_set **ret, struct fs_error *err) FS_WUR;
void scope_set_free(struct scope_set *sv);

/* May the device whose scope is s write change c?  *reason is NULL when
 * it may, else why not.  Reads HQ's merged fields as they are now
 * (earlier changes of the same set included), and keeps the last few it
 * read: the changes of one record ask the same.  < 0 on error. */
int scope_check(struct scope_set *sv, const struct scope *s, const struct change *c,
		const char **reason, struct fs_error *err) FS_WUR;
/* The merged value of (record_id, field) was just written: what sv kept
 * of it goes.  The caller that writes merged values must say so. */
void scope_set_written(struct scope_set *sv, const char *record_id, const char *field);

/* SQL function fold(text) on db, for queries that match names. */
int scope_register_fold(sqlite3 *db) FS_WUR;

#endif
