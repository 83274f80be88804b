/* audit.c - the audit log: entries, checkpoints, verification.
 *
 * Sections: entries; the tree; checkpoints; verify; list and export.
 */
#include "hq/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "hq/hqsql.h"
#include "sync/hlc.h"

#define AUDIT_LABEL "fieldsync-audit-v1\n"

/* ---- entries ------------------------------------------------------------- */

void audit_leaf(int64_t id, int64_t at_ms, const char *event, const char *device,
		const char *detail, merkle_hash out)
{
	crypto_hash_sha256_state st;
	char num[64];
	const uint8_t zero = 0x00;
	const char *parts[3] = { event, device ? device : "-", detail ? detail : "" };

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &zero, 1);
	crypto_hash_sha256_update(&st, (const uint8_t *)AUDIT_LABEL, strlen(AUDIT_LABEL));
	snprintf(num, sizeof(num), "%" PRId64 "\n%" PRId64 "\n", id, at_ms);
	crypto_hash_sha256_update(&st, (const uint8_t *)num, strlen(num));
	for (int i = 0; i < 3; i++) {
		crypto_hash_sha256_update(&st, (const uint8_t *)parts[i], strlen(parts[i]));
		crypto_hash_sha256_update(&st, (const uint8_t *)"\n", 1);
	}
	crypto_hash_sha256_final(&st, out);
}

/* ---- the tree's nodes ------------------------------------------------------ */

struct db_source {
	struct hqsql *db;
	struct hqsql_stmt *leaf, *node; /* prepared on first use */
	struct fs_error *err;
};

/* merkle_source over the database: leaves from events, nodes from
 * audit_nodes. */
static int db_perfect(void *ctx, uint64_t start, unsigned level, merkle_hash out)
{
	struct db_source *d = ctx;
	struct hqsql_stmt **st = level ? &d->node : &d->leaf;
	int rc, r = 0;

	if (!*st && (r = hqsql_prepare(d->db,
				       level ? "SELECT hash FROM audit_nodes WHERE "
					       "level = ?1 AND idx = ?2"
					     : "SELECT leaf FROM events WHERE id = ?2 + 1",
				       st, d->err)) < 0)
		return r;
	hqsql_reset(*st);
	if (level)
		hqsql_bind_int64(*st, 1, (int)level);
	hqsql_bind_int64(*st, 2, (int64_t)(start >> level));
	rc = hqsql_step(*st);
	if (rc == HQSQL_ROW && (int)hqsql_column_bytes(*st, 0) == MERKLE_HASH_BYTES)
		memcpy(out, hqsql_column_blob(*st, 0), MERKLE_HASH_BYTES);
	else if (rc == HQSQL_ROW || rc == HQSQL_DONE)
		r = fs_error_set(d->err, -FS_ECORRUPT,
				 "audit tree: no %s for entries %llu to %llu "
				 "(run fieldsync-hq audit verify)",
				 level ? "node" : "leaf hash", (unsigned long long)start + 1,
				 (unsigned long long)start + (1ULL << level));
	else
		r = hqsql_fail(d->db, "read audit tree", d->err);
	hqsql_reset(*st);
	return r;
}

static void db_source_done(struct db_source *d)
{
	hqsql_finalize(d->leaf);
	hqsql_finalize(d->node);
}

#define DB_SOURCE(d) (&(const struct merkle_source){ .perfect = db_perfect, .ctx = (d) })

/* Entry index i (from 0) with leaf hash h was just stored: store the
 * perfect subtrees it completes, one per trailing one bit of i. */
static int tree_add(struct hqsql *db, uint64_t i, const merkle_hash leaf, struct fs_error *err)
{
	struct db_source d = { .db = db, .err = err };
	struct hqsql_stmt *ins = NULL;
	merkle_hash h, left;
	unsigned level = 0;
	int r = 0;

	memcpy(h, leaf, MERKLE_HASH_BYTES);
	for (uint64_t idx = i; r == 0 && (idx & 1); idx >>= 1) {
		if ((r = db_perfect(&d, (idx - 1) << level, level, left)) < 0)
			break;
		merkle_node_hash(left, h, h);
		level++;
		if (!ins && (r = hqsql_prepare(db,
					       "INSERT INTO audit_nodes(level, idx, hash) "
					       "VALUES (?,?,?)",
					       &ins, err)) < 0)
			break;
		hqsql_reset(ins);
		hqsql_bind_int64(ins, 1, (int)level);
		hqsql_bind_int64(ins, 2, (int64_t)(idx >> 1));
		hqsql_bind_blob(ins, 3, h, (size_t)(MERKLE_HASH_BYTES));
		if (hqsql_step(ins) != HQSQL_DONE)
			r = hqsql_fail(db, "store audit tree node", err);
	}
	hqsql_finalize(ins);
	db_source_done(&d);
	return r;
}

int audit_append(struct hqsql *db, uint64_t at_ms, const char *event, const char *device,
		 const char *detail, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	merkle_hash leaf;
	int64_t id;
	int r, own;

	if (strchr(event, '\n') || (device && strchr(device, '\n')) ||
	    (detail && strchr(detail, '\n')))
		return fs_error_set(err, -EINVAL, "audit entry %s: a field holds a newline", event);
	/* Reading max(id) and inserting must be one write transaction, or
	 * two connections (an admin command beside the server) take the same
	 * number.  Inside the caller's transaction, that one serves. */
	own = !hqsql_in_transaction(db);
	if (own && (r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		return r;
	if ((r = hqsql_prepare(db, "SELECT coalesce(max(id), 0) + 1 FROM events", &st, err)) < 0)
		goto out;
	if (hqsql_step(st) != HQSQL_ROW) {
		r = hqsql_fail(db, "append audit entry", err);
		goto out;
	}
	id = hqsql_column_int64(st, 0);
	hqsql_finalize(st);
	st = NULL;
	audit_leaf(id, (int64_t)at_ms, event, device, detail, leaf);
	if ((r = hqsql_prepare(db,
			       "INSERT INTO events(id, at, type, device, detail, leaf) "
			       "VALUES (?,?,?,?,?,?)",
			       &st, err)) < 0)
		goto out;
	hqsql_bind_int64(st, 1, id);
	hqsql_bind_int64(st, 2, (int64_t)at_ms);
	hqsql_bind_text(st, 3, event);
	hqsql_bind_text(st, 4, device);
	hqsql_bind_text(st, 5, detail);
	hqsql_bind_blob(st, 6, leaf, (size_t)(sizeof(leaf)));
	r = hqsql_step(st) == HQSQL_DONE ? 0 : hqsql_fail(db, "append audit entry", err);
	if (r == 0)
		r = tree_add(db, (uint64_t)id - 1, leaf, err);
out:
	hqsql_finalize(st);
	if (own && r == 0)
		r = hqsql_commit(db, err);
	if (own && r < 0)
		hqsql_rollback(db);
	return r;
}

int audit_append_strings(struct hqsql *db, uint64_t at_ms, const char *type, const char *device,
			 struct fs_error *err, ...)
{
	cJSON *o = cJSON_CreateObject();
	const char *name;
	char *text = NULL;
	int r = o ? 0 : -ENOMEM;
	va_list ap;

	va_start(ap, err);
	while (r == 0 && (name = va_arg(ap, const char *))) {
		const char *value = va_arg(ap, const char *);

		if (value && !cJSON_AddStringToObject(o, name, value))
			r = -ENOMEM;
	}
	va_end(ap);
	if (r == 0 && !(text = cJSON_PrintUnformatted(o)))
		r = -ENOMEM;
	if (r < 0)
		r = fs_error_set(err, r, "append event %s: out of memory", type);
	else
		r = audit_append(db, at_ms, type, device, text, err);
	cJSON_free(text);
	cJSON_Delete(o);
	return r;
}

/* ---- the tree ------------------------------------------------------------- */

/* Every entry's leaf, recomputed from its fields, in order.  With
 * check, the first entry whose number, stored hash or content is wrong
 * is reported as -FS_ECORRUPT.  *ret is malloc'd. */
static int load_leaves(struct hqsql *db, int check, merkle_hash **ret, uint64_t *ret_n,
		       struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	merkle_hash *v = NULL;
	uint64_t n = 0, cap = 0;
	int rc, r;

	if ((r = hqsql_prepare(db,
			       "SELECT id, at, type, device, detail, leaf FROM events "
			       "ORDER BY id",
			       &st, err)) < 0)
		return r;
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		int64_t id = hqsql_column_int64(st, 0);
		const void *stored = hqsql_column_blob(st, 5);

		if (n == cap) {
			merkle_hash *p = realloc(v, (cap = cap ? cap * 2 : 1024) * sizeof(*v));

			if (!p) {
				r = fs_error_set(err, -ENOMEM, "audit log: out of memory");
				goto out;
			}
			v = p;
		}
		if (check && id != (int64_t)n + 1) {
			r = fs_error_set(
				err, -FS_ECORRUPT,
				id > (int64_t)n + 1
					? "audit entry %llu: missing (removed from the log)"
					: "audit entry %llu: numbered out of order (inserted)",
				(unsigned long long)n + 1);
			goto out;
		}
		/* Signing and proofs use the leaf stored with each entry; only
		 * verify, which must not trust it, hashes every entry again
		 * (the consistency endpoint is public). */
		if (!check && stored && (int)hqsql_column_bytes(st, 5) == MERKLE_HASH_BYTES) {
			memcpy(v[n++], stored, MERKLE_HASH_BYTES);
			continue;
		}
		audit_leaf(id, hqsql_column_int64(st, 1), hqsql_column_text(st, 2),
			   hqsql_column_text(st, 3), hqsql_column_text(st, 4), v[n]);
		if (check && (!stored || (int)hqsql_column_bytes(st, 5) != MERKLE_HASH_BYTES ||
			      memcmp(stored, v[n], MERKLE_HASH_BYTES) != 0)) {
			r = fs_error_set(err, -FS_ECORRUPT,
					 "audit entry %lld: does not match its hash (altered, "
					 "inserted or moved)",
					 (long long)id);
			goto out;
		}
		n++;
	}
	if (rc != HQSQL_DONE) {
		r = hqsql_fail(db, "read audit log", err);
		goto out;
	}
	*ret = v;
	*ret_n = n;
	v = NULL;
out:
	free(v);
	hqsql_finalize(st);
	return r;
}

/* Every interior node the first n leaves complete, level by level from
 * 1, index by index: each(level, idx, hash).  O(n) hashing. */
static int tree_each(const merkle_hash *leaves, uint64_t n,
		     int (*each)(void *ctx, unsigned level, uint64_t idx, const merkle_hash h),
		     void *ctx, struct fs_error *err)
{
	merkle_hash *cur = NULL;
	uint64_t len = n / 2;
	int r = 0;

	if (len && !(cur = malloc(len * sizeof(*cur))))
		return fs_error_set(err, -ENOMEM, "audit tree: out of memory");
	for (unsigned level = 1; r == 0 && len; level++, len /= 2) {
		for (uint64_t j = 0; j < len; j++)
			merkle_node_hash(level == 1 ? leaves[2 * j] : cur[2 * j],
					 level == 1 ? leaves[2 * j + 1] : cur[2 * j + 1], cur[j]);
		for (uint64_t j = 0; r == 0 && j < len; j++)
			r = each(ctx, level, j, cur[j]);
	}
	free(cur);
	return r;
}

struct tree_walk {
	struct hqsql *db;
	struct hqsql_stmt *st;
	uint64_t seen;
	struct fs_error *err;
};

static int node_insert(void *ctx, unsigned level, uint64_t idx, const merkle_hash h)
{
	struct tree_walk *w = ctx;

	hqsql_reset(w->st);
	hqsql_bind_int64(w->st, 1, (int)level);
	hqsql_bind_int64(w->st, 2, (int64_t)idx);
	hqsql_bind_blob(w->st, 3, h, (size_t)(MERKLE_HASH_BYTES));
	return hqsql_step(w->st) == HQSQL_DONE ? 0 : hqsql_fail(w->db, "build audit tree", w->err);
}

int audit_tree_build(struct hqsql *db, struct fs_error *err)
{
	struct tree_walk w = { .db = db, .err = err };
	merkle_hash *leaves = NULL;
	uint64_t n = 0;
	int r;

	if ((r = load_leaves(db, 0, &leaves, &n, err)) == 0 &&
	    (r = hqsql_prepare(db, "INSERT INTO audit_nodes(level, idx, hash) VALUES (?,?,?)",
			       &w.st, err)) == 0)
		r = tree_each(leaves, n, node_insert, &w, err);
	hqsql_finalize(w.st);
	free(leaves);
	return r;
}

/* verify: each node the entries make must be stored, and nothing else. */
static int node_compare(void *ctx, unsigned level, uint64_t idx, const merkle_hash h)
{
	struct tree_walk *w = ctx;

	if (hqsql_step(w->st) != HQSQL_ROW || (int)hqsql_column_int64(w->st, 0) != (int)level ||
	    hqsql_column_int64(w->st, 1) != (int64_t)idx ||
	    (int)hqsql_column_bytes(w->st, 2) != MERKLE_HASH_BYTES ||
	    memcmp(hqsql_column_blob(w->st, 2), h, MERKLE_HASH_BYTES) != 0)
		return fs_error_set(w->err, -FS_ECORRUPT,
				    "audit tree node %u/%llu (entries %llu "
				    "to %llu): missing or does not match the entries",
				    level, (unsigned long long)idx,
				    (unsigned long long)(idx << level) + 1,
				    (unsigned long long)((idx + 1) << level));
	w->seen++;
	return 0;
}

static int verify_nodes(struct hqsql *db, const merkle_hash *leaves, uint64_t n,
			struct fs_error *err)
{
	struct tree_walk w = { .db = db, .err = err };
	int r;

	if ((r = hqsql_prepare(db, "SELECT level, idx, hash FROM audit_nodes ORDER BY level, idx",
			       &w.st, err)) < 0)
		return r;
	r = tree_each(leaves, n, node_compare, &w, err);
	if (r == 0 && hqsql_step(w.st) == HQSQL_ROW)
		r = fs_error_set(err, -FS_ECORRUPT,
				 "audit tree: node %d/%lld is beyond the "
				 "entries (inserted)",
				 (int)hqsql_column_int64(w.st, 0),
				 (long long)hqsql_column_int64(w.st, 1));
	hqsql_finalize(w.st);
	return r;
}

/* ---- checkpoints ---------------------------------------------------------- */

static int entry_count(struct hqsql *db, uint64_t *ret, struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int r;

	if ((r = hqsql_prepare(db, "SELECT coalesce(max(id), 0) FROM events", &st, err)) < 0)
		return r;
	if (hqsql_step(st) == HQSQL_ROW)
		*ret = (uint64_t)hqsql_column_int64(st, 0);
	else
		r = hqsql_fail(db, "count audit entries", err);
	hqsql_finalize(st);
	return r;
}

/* The newest checkpoint: its size, time and (when ret_note is not NULL)
 * its note, malloc'd; size 0 and note NULL when there is none. */
static int latest(struct hqsql *db, uint64_t *ret_size, uint64_t *ret_at, char **ret_note,
		  struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int rc, r;

	*ret_size = 0;
	*ret_at = 0;
	if (ret_note)
		*ret_note = NULL;
	if ((r = hqsql_prepare(db,
			       "SELECT size, at, note FROM checkpoints ORDER BY size DESC "
			       "LIMIT 1",
			       &st, err)) < 0)
		return r;
	rc = hqsql_step(st);
	if (rc == HQSQL_ROW) {
		*ret_size = (uint64_t)hqsql_column_int64(st, 0);
		*ret_at = (uint64_t)hqsql_column_int64(st, 1);
		if (ret_note && !(*ret_note = strdup(hqsql_column_text(st, 2))))
			r = fs_error_set(err, -ENOMEM, "out of memory");
	} else if (rc != HQSQL_DONE) {
		r = hqsql_fail(db, "read checkpoints", err);
	}
	hqsql_finalize(st);
	return r;
}

/* Whether a checkpoint is due, and the log's size. */
static int checkpoint_due(struct hqsql *db, const struct audit_policy *p, uint64_t now_ms,
			  int force, uint64_t *ret_n, int *ret_due, struct fs_error *err)
{
	uint64_t last, last_at;
	int r;

	if ((r = latest(db, &last, &last_at, NULL, err)) < 0 ||
	    (r = entry_count(db, ret_n, err)) < 0)
		return r;
	*ret_due =
		*ret_n > last &&
		(force || *ret_n - last >= (p && p->every ? p->every : AUDIT_DEFAULT_EVERY) ||
		 now_ms - last_at >=
			 (uint64_t)(p && p->minutes ? p->minutes : AUDIT_DEFAULT_MINUTES) * 60000);
	return 0;
}

int audit_checkpoint(struct hqsql *db, const struct identity *hq, const struct audit_policy *p,
		     uint64_t now_ms, int force, int *ret_made, struct fs_error *err)
{
	char origin[NOTE_NAME_MAX + 1], text[512], *note = NULL;
	struct db_source src = { .db = db, .err = err };
	struct hqsql_stmt *st = NULL;
	merkle_hash root;
	uint64_t n = 0;
	int r, due;

	if (ret_made)
		*ret_made = 0;
	/* This runs after every ingest: ask first, without the write lock,
	 * and take it only when a checkpoint is due. */
	if ((r = checkpoint_due(db, p, now_ms, force, &n, &due, err)) < 0 || !due)
		return r;
	if ((r = hqsql_begin(db, HQSQL_WRITE, err)) < 0)
		return r;
	/* Again under the lock: another connection may just have signed. */
	if ((r = checkpoint_due(db, p, now_ms, force, &n, &due, err)) < 0 || !due)
		goto out;
	if ((r = merkle_root_from(DB_SOURCE(&src), n, root)) < 0)
		goto out;
	checkpoint_origin(hq->sign_pk, origin);
	if ((r = checkpoint_format(origin, n, root, text, sizeof(text))) < 0 ||
	    (r = note_sign(text, origin, hq->sign_sk, &note)) < 0) {
		r = fs_error_set(err, r, "sign audit checkpoint: %s", fs_strerror(r));
		goto out;
	}
	if ((r = hqsql_prepare(db, "INSERT INTO checkpoints(size, at, note) VALUES (?,?,?)", &st,
			       err)) < 0)
		goto out;
	hqsql_bind_int64(st, 1, (int64_t)n);
	hqsql_bind_int64(st, 2, (int64_t)now_ms);
	hqsql_bind_text(st, 3, note);
	if (hqsql_step(st) != HQSQL_DONE) {
		r = hqsql_fail(db, "store audit checkpoint", err);
		goto out;
	}
out:
	hqsql_finalize(st);
	db_source_done(&src);
	if (r == 0)
		r = hqsql_commit(db, err);
	/* A failed COMMIT leaves the transaction open: what it wrote must not
	 * be read afterwards on this connection (a receipt would carry a
	 * checkpoint HQ never kept, and devices would call HQ a forger). */
	if (r < 0)
		hqsql_rollback(db);
	if (r == 0 && ret_made && n > 0 && due)
		*ret_made = 1;
	free(note);
	return r;
}

int audit_latest(struct hqsql *db, char **ret_note, uint64_t *ret_size, struct fs_error *err)
{
	uint64_t at;

	return latest(db, ret_size, &at, ret_note, err);
}

int audit_consistency(struct hqsql *db, uint64_t from, char **ret_note, uint64_t *ret_size,
		      merkle_hash proof[MERKLE_MAX_PROOF], size_t *ret_len, struct fs_error *err)
{
	struct db_source src = { .db = db, .err = err };
	int r;

	*ret_len = 0;
	if ((r = audit_latest(db, ret_note, ret_size, err)) < 0)
		return r;
	if (from > *ret_size) {
		r = fs_error_set(err, -ERANGE,
				 "audit consistency: from %llu is beyond the latest "
				 "checkpoint (%llu)",
				 (unsigned long long)from, (unsigned long long)*ret_size);
		goto out;
	}
	if (from == 0)
		return 0;
	/* O(log^2 n) reads of stored nodes, not the whole log: this answers
	 * anyone on the network. */
	r = merkle_consistency_proof_from(DB_SOURCE(&src), *ret_size, from, proof, ret_len);
out:
	db_source_done(&src);
	if (r < 0) {
		free(*ret_note);
		*ret_note = NULL;
	}
	return r;
}

/* ---- verify ------------------------------------------------------------------ */

/* One checkpoint against the entries. */
static int verify_checkpoint(const char *note, int64_t size, const char *origin, const uint8_t *pk,
			     const merkle_hash *leaves, uint64_t n, struct fs_error *err)
{
	char got_origin[NOTE_NAME_MAX + 1];
	merkle_hash root, want;
	uint64_t got_size;
	size_t text_len;

	if (!note || note_verify(note, strlen(note), origin, pk, &text_len) < 0)
		return fs_error_set(err, -FS_ECORRUPT,
				    "audit checkpoint at size %lld: signature "
				    "does not verify with HQ's key",
				    (long long)size);
	if (checkpoint_parse(note, text_len, got_origin, &got_size, want) < 0 ||
	    strcmp(got_origin, origin) != 0 || (int64_t)got_size != size)
		return fs_error_set(err, -FS_ECORRUPT,
				    "audit checkpoint at size %lld: malformed or "
				    "filed under another size",
				    (long long)size);
	if (got_size > n)
		return fs_error_set(err, -FS_ECORRUPT,
				    "audit checkpoint at size %llu: the log has "
				    "only %llu entries; entries %llu to %llu were removed",
				    (unsigned long long)got_size, (unsigned long long)n,
				    (unsigned long long)n + 1, (unsigned long long)got_size);
	merkle_root(leaves, got_size, root);
	if (sodium_memcmp(root, want, sizeof(root)) != 0)
		return fs_error_set(err, -FS_ECORRUPT,
				    "audit checkpoint at size %llu: the entries "
				    "up to %llu no longer hash to its signed root (rewritten)",
				    (unsigned long long)got_size, (unsigned long long)got_size);
	return 0;
}

int audit_verify(struct hqsql *db, const uint8_t pk[crypto_sign_PUBLICKEYBYTES], FILE *out,
		 struct fs_error *err)
{
	char origin[NOTE_NAME_MAX + 1];
	merkle_hash *leaves = NULL;
	struct hqsql_stmt *st = NULL;
	uint64_t n = 0, checked = 0, last = 0;
	int rc, r;

	checkpoint_origin(pk, origin);
	if ((r = load_leaves(db, 1, &leaves, &n, err)) < 0)
		goto out;
	if ((r = hqsql_prepare(db, "SELECT size, note FROM checkpoints ORDER BY size", &st, err)) <
	    0)
		goto out;
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		int64_t size = hqsql_column_int64(st, 0);

		if ((r = verify_checkpoint(hqsql_column_text(st, 1), size, origin, pk, leaves, n,
					   err)) < 0)
			goto out;
		checked++;
		last = (uint64_t)size;
	}
	if (rc != HQSQL_DONE) {
		r = hqsql_fail(db, "read checkpoints", err);
		goto out;
	}
	/* Last: the stored interior nodes are derived from the entries, so a
	 * bad one matters only after the entries and checkpoints hold. */
	if ((r = verify_nodes(db, leaves, n, err)) < 0)
		goto out;
	fprintf(out,
		"audit log ok: %llu entries, every hash recomputed; %llu signed checkpoints "
		"verified with HQ's key (%s); the stored tree matches",
		(unsigned long long)n, (unsigned long long)checked, origin);
	if (n > last)
		fprintf(out, "; entries %llu to %llu are not yet under a checkpoint",
			(unsigned long long)last + 1, (unsigned long long)n);
	fputc('\n', out);
out:
	hqsql_finalize(st);
	free(leaves);
	return r;
}

/* ---- list and export ------------------------------------------------------------ */

static const char *col(struct hqsql_stmt *st, int i)
{
	const unsigned char *t = (const unsigned char *)hqsql_column_text(st, i);

	return t ? (const char *)t : NULL;
}

static cJSON *entry_json(struct hqsql_stmt *st, int with_leaf)
{
	cJSON *o = cJSON_CreateObject();
	char at[HLC_TIME_LEN + 1], hex[2 * MERKLE_HASH_BYTES + 1];

	hlc_format_time((hlc_t)hqsql_column_int64(st, 1) << 16, at);
	if (!o || !cJSON_AddNumberToObject(o, "id", (double)hqsql_column_int64(st, 0)) ||
	    !cJSON_AddStringToObject(o, "at", at) ||
	    !cJSON_AddNumberToObject(o, "at_ms", (double)hqsql_column_int64(st, 1)) ||
	    !cJSON_AddStringToObject(o, "event", col(st, 2) ? col(st, 2) : "") ||
	    (col(st, 3) && !cJSON_AddStringToObject(o, "device", col(st, 3))) ||
	    (col(st, 4) && !cJSON_AddStringToObject(o, "detail", col(st, 4))))
		goto fail;
	if (with_leaf) {
		if ((int)hqsql_column_bytes(st, 5) == MERKLE_HASH_BYTES)
			sodium_bin2hex(hex, sizeof(hex), hqsql_column_blob(st, 5),
				       MERKLE_HASH_BYTES);
		else
			hex[0] = '\0';
		if (!cJSON_AddStringToObject(o, "leaf", hex))
			goto fail;
	}
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

static int print_object(FILE *out, cJSON *o, struct fs_error *err)
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	if (!text)
		return fs_error_set(err, -ENOMEM, "out of memory");
	fprintf(out, "%s\n", text);
	cJSON_free(text);
	return 0;
}

/* The entries f selects (NULL: all), oldest first; or with limit, the
 * newest limit of them, newest first: prepared and bound in *st. */
#define ENTRIES_SQL                                                                                \
	"SELECT id, at, type, device, detail FROM events "                                         \
	"WHERE (?1 IS NULL OR device = ?1) AND (?2 IS NULL OR type = ?2) AND at >= ?3 "
static int select_entries(struct hqsql *db, const struct audit_filter *f, unsigned limit,
			  struct hqsql_stmt **st, struct fs_error *err)
{
	int r = hqsql_prepare(
		db, limit ? ENTRIES_SQL "ORDER BY id DESC LIMIT ?4" : ENTRIES_SQL "ORDER BY id", st,
		err);

	if (r < 0)
		return r;
	hqsql_bind_text(*st, 1, f ? f->device : NULL);
	hqsql_bind_text(*st, 2, f ? f->event : NULL);
	hqsql_bind_int64(*st, 3, f ? (int64_t)f->since_ms : 0);
	if (limit)
		hqsql_bind_int64(*st, 4, (int64_t)limit);
	return 0;
}

int audit_list(struct hqsql *db, const struct audit_filter *f, int json, FILE *out,
	       struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	int rc, r;

	if ((r = select_entries(db, f, 0, &st, err)) < 0)
		return r;
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		char at[HLC_TIME_LEN + 1];

		if (json) {
			if ((r = print_object(out, entry_json(st, 0), err)) < 0)
				goto out;
			continue;
		}
		hlc_format_time((hlc_t)hqsql_column_int64(st, 1) << 16, at);
		fprintf(out, "%6lld  %s  %-18s %-32s %s\n", (long long)hqsql_column_int64(st, 0),
			at, col(st, 2) ? col(st, 2) : "", col(st, 3) ? col(st, 3) : "-",
			col(st, 4) ? col(st, 4) : "");
	}
	if (rc != HQSQL_DONE)
		r = hqsql_fail(db, "list audit log", err);
out:
	hqsql_finalize(st);
	return r;
}

int audit_recent(struct hqsql *db, const struct audit_filter *f, unsigned limit, cJSON **ret,
		 struct fs_error *err)
{
	struct hqsql_stmt *st = NULL;
	cJSON *arr = cJSON_CreateArray();
	int rc, r;

	if (!arr)
		return fs_error_set(err, -ENOMEM, "out of memory");
	if ((r = select_entries(db, f, limit ? limit : 1, &st, err)) < 0)
		goto out;
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		cJSON *o = entry_json(st, 0);

		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			r = fs_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	if (rc != HQSQL_DONE)
		r = hqsql_fail(db, "list audit log", err);
out:
	hqsql_finalize(st);
	if (r < 0) {
		cJSON_Delete(arr);
		return r;
	}
	*ret = arr;
	return 0;
}

int audit_export(struct hqsql *db, const uint8_t pk[crypto_sign_PUBLICKEYBYTES], FILE *out,
		 struct fs_error *err)
{
	char origin[NOTE_NAME_MAX + 1], vkey[256];
	struct hqsql_stmt *st = NULL;
	cJSON *head;
	int rc, r;

	checkpoint_origin(pk, origin);
	if ((r = note_vkey_format(origin, pk, vkey, sizeof(vkey))) < 0)
		return fs_error_set(err, r, "audit export: verifier key");
	head = cJSON_CreateObject();
	if (!head || !cJSON_AddStringToObject(head, "format", "fieldsync-audit-v1") ||
	    !cJSON_AddStringToObject(head, "origin", origin) ||
	    !cJSON_AddStringToObject(head, "verifier_key", vkey) ||
	    !cJSON_AddStringToObject(
		    head, "leaf",
		    "SHA-256(0x00 || \"fieldsync-audit-v1\\n\" || id \"\\n\" || "
		    "at_ms \"\\n\" || event \"\\n\" || (device or \"-\") \"\\n\" || "
		    "(detail or \"\") \"\\n\")")) {
		cJSON_Delete(head);
		return fs_error_set(err, -ENOMEM, "out of memory");
	}
	if ((r = print_object(out, head, err)) < 0)
		return r;
	if ((r = hqsql_prepare(db,
			       "SELECT id, at, type, device, detail, leaf FROM events ORDER BY id",
			       &st, err)) < 0)
		return r;
	while ((rc = hqsql_step(st)) == HQSQL_ROW)
		if ((r = print_object(out, entry_json(st, 1), err)) < 0)
			goto out;
	if (rc != HQSQL_DONE) {
		r = hqsql_fail(db, "export audit log", err);
		goto out;
	}
	hqsql_finalize(st);
	st = NULL;
	if ((r = hqsql_prepare(db, "SELECT size, note FROM checkpoints ORDER BY size", &st, err)) <
	    0)
		goto out;
	while ((rc = hqsql_step(st)) == HQSQL_ROW) {
		cJSON *o = cJSON_CreateObject();

		if (!o ||
		    !cJSON_AddNumberToObject(o, "checkpoint_size",
					     (double)hqsql_column_int64(st, 0)) ||
		    !cJSON_AddStringToObject(o, "checkpoint", col(st, 1) ? col(st, 1) : "")) {
			cJSON_Delete(o);
			r = fs_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		if ((r = print_object(out, o, err)) < 0)
			goto out;
	}
	if (rc != HQSQL_DONE)
		r = hqsql_fail(db, "export audit checkpoints", err);
out:
	hqsql_finalize(st);
	return r;
}
