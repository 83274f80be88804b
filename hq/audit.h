/* audit.h - HQ's tamper-evident audit log.
 *
 * Every event HQ records (enrolments, change sets accepted and rejected,
 * revocations, ...; audit_append) is an entry of an append-only log, and
 * the log is an RFC 6962 Merkle tree (sync/merkle.h).  Entry N (from 1)
 * is leaf N-1, and its leaf hash is
 *
 *   SHA-256(0x00 || "fieldsync-audit-v1\n" || N "\n" || at "\n" ||
 *           event "\n" || device "\n" || detail "\n")
 *
 * with N and at (Unix ms) in decimal, device "-" when there is none and
 * detail "" when there is none; no field holds a newline.  The hash is
 * stored with the entry, so an altered, removed, inserted or reordered
 * row shows up at its number.  Signed checkpoints bind the tree: a C2SP
 * tlog-checkpoint note (sync/note.h) whose origin and key name is
 * checkpoint_origin() of HQ's signing key (sync/note.h),
 * signed with HQ's Ed25519 key, made at least every `every` entries or
 * `minutes` minutes (hq.conf [audit]).  Rewriting history consistently,
 * hashes included, therefore needs HQ's signing key, and even then
 * contradicts the checkpoints that devices keep from their receipts.
 *
 * The tree's interior nodes are kept too (audit_nodes: the root of each
 * perfect subtree of 2^level leaves, level >= 1, at index idx), added
 * as entries complete them, so a checkpoint's root costs O(log n) reads
 * and a consistency proof O(log^2 n), however long the log.  They are
 * derived data: audit_verify recomputes and compares them all.
 *
 * Errors: -FS_ECORRUPT from audit_verify names the first bad entry or
 * checkpoint; SQLite errors as hqsql_fail().  Functions take a connection
 * used by one thread at a time; appends happen inside the caller's
 * transaction.
 */
#ifndef FS_AUDIT_H
#define FS_AUDIT_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include "hq/hqsql.h"

#include "crypto/fserr.h"
#include "crypto/identity.h"
#include "sync/merkle.h"
#include "sync/note.h"

/* The table of interior nodes, append-only like the entries. */
#define AUDIT_NODES_SQL                                                                            \
	"CREATE TABLE audit_nodes("                                                                \
	"  level INTEGER NOT NULL,"                                                                \
	"  idx INTEGER NOT NULL,"                                                                  \
	"  hash BLOB NOT NULL,"                                                                    \
	"  PRIMARY KEY (level, idx)"                                                               \
	") STRICT, WITHOUT ROWID;"                                                                 \
	"CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes"                        \
	"  BEGIN SELECT RAISE(ABORT, 'audit nodes are append-only'); END;"                         \
	"CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes"                        \
	"  BEGIN SELECT RAISE(ABORT, 'audit nodes are append-only'); END;"

#define AUDIT_DEFAULT_EVERY 100
#define AUDIT_DEFAULT_MINUTES 10

/* When to sign a checkpoint. */
struct audit_policy {
	unsigned every;	  /* entries since the last checkpoint */
	unsigned minutes; /* time since the last checkpoint */
};

void audit_leaf(int64_t id, int64_t at_ms, const char *event, const char *device,
		const char *detail, merkle_hash out);

/* Append an entry (in the caller's transaction).  -EINVAL for a field
 * with a newline. */
int audit_append(struct hqsql *db, uint64_t at_ms, const char *event, const char *device,
		 const char *detail, struct fs_error *err) FS_WUR;

/* The same, with the detail a JSON object of string members given as
 * name, value pairs and a NULL name at the end; a NULL value is left
 * out.  The strings are JSON-escaped, so admin text cannot break out.
 * Details never carry field values. */
int audit_append_strings(struct hqsql *db, uint64_t at_ms, const char *event, const char *device,
			 struct fs_error *err, ...) FS_WUR;

/* Fill audit_nodes for every stored entry (the schema upgrade that
 * added the table); in the caller's transaction. */
int audit_tree_build(struct hqsql *db, struct fs_error *err) FS_WUR;

/* Sign a checkpoint of the whole log if it grew since the last one and
 * force is set or the policy says it is due.  *ret_made (may be NULL)
 * says whether one was made.  Its own transaction. */
int audit_checkpoint(struct hqsql *db, const struct identity *hq, const struct audit_policy *p,
		     uint64_t now_ms, int force, int *ret_made, struct fs_error *err) FS_WUR;

/* The latest checkpoint note (malloc'd), or NULL when there is none. */
int audit_latest(struct hqsql *db, char **ret_note, uint64_t *ret_size,
		 struct fs_error *err) FS_WUR;

/* For a device holding a checkpoint of size from: the latest checkpoint
 * (malloc'd note; NULL when there is none), its size, and the RFC 6962
 * consistency proof from `from` to it (empty when from is 0 or equal).
 * -ERANGE when from is beyond the latest checkpoint. */
int audit_consistency(struct hqsql *db, uint64_t from, char **ret_note, uint64_t *ret_size,
		      merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len,
		      struct fs_error *err) FS_WUR;

/* Recompute every leaf and every checkpoint root, check every signature
 * with pk; report to out.  -FS_ECORRUPT naming the first problem. */
int audit_verify(struct hqsql *db, const uint8_t pk[crypto_sign_PUBLICKEYBYTES], FILE *out,
		 struct fs_error *err) FS_WUR;

/* Entries matching the filters (NULL or 0: any), oldest first. */
struct audit_filter {
	const char *device;
	const char *event;
	uint64_t since_ms;
};
int audit_list(struct hqsql *db, const struct audit_filter *f, int json, FILE *out,
	       struct fs_error *err) FS_WUR;

/* The newest limit entries matching the filters, newest first, as a
 * JSON array of audit list --json's objects (the caller's). */
int audit_recent(struct hqsql *db, const struct audit_filter *f, unsigned limit, cJSON **ret,
		 struct fs_error *err) FS_WUR;

/* JSON Lines for offline verification: a header with the verifier key,
 * every entry with its leaf hash, then every checkpoint note. */
int audit_export(struct hqsql *db, const uint8_t pk[crypto_sign_PUBLICKEYBYTES], FILE *out,
		 struct fs_error *err) FS_WUR;

#endif
