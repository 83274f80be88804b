/* pack.c - turn unpacked outbox changes into change sets, one transaction
 * per set.
 *
 * Sections: statements; reading the chain and the outbox; one set; the loop.
 */
#include "agent/pack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync/changeset.h"

/* Statement slots in the store's cache (0-1 store.c, 2-15 records.c,
 * 20-23 and 29 push.c, 24-28 store.c and synclog.c, 31 push.c). */
enum {
	SLOT_LAST_SET = 16,
	SLOT_UNPACKED,
	SLOT_INSERT_SET,
	SLOT_MARK_PACKED,
	SLOT_COUNT_UNPACKED = 30,
};

/* Per change, what the payload spends beyond the strings themselves:
 * brackets, quotes, commas, the 16-digit HLC and the form version. */
#define PACK_CHANGE_OVERHEAD 44

/* ---- reading the chain and the outbox ---------------------------------- */

/* The last set's seq and hash; seq 0 and a zero hash when there is none. */
static int chain_tip(struct store *s, uint64_t *ret_seq, uint8_t ret_hash[CHANGESET_HASH_BYTES],
		     struct fs_error *err)
{
	sqlite3_stmt *st;
	int r, rc;

	r = store_stmt(s, SLOT_LAST_SET, "SELECT seq, hash FROM outgoing ORDER BY seq DESC LIMIT 1",
		       &st, err);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		*ret_seq = 0;
		memset(ret_hash, 0, CHANGESET_HASH_BYTES);
		r = 0;
	} else if (rc != SQLITE_ROW) {
		r = store_fail(s, "read change-set chain in", err);
	} else if (sqlite3_column_int64(st, 0) <= 0 ||
		   sqlite3_column_bytes(st, 1) != CHANGESET_HASH_BYTES) {
		r = fs_error_set(err, -FS_ECORRUPT, "read change-set chain in %s: bad last set",
				 store_path(s));
	} else {
		*ret_seq = (uint64_t)sqlite3_column_int64(st, 0);
		memcpy(ret_hash, sqlite3_column_blob(st, 1), CHANGESET_HASH_BYTES);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

static int copy_name(char *dst, size_t cap, const unsigned char *src)
{
	size_t n;

	if (!src)
		return -1;
	n = strlen((const char *)src);
	if (n == 0 || n >= cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* One outbox row into c; c->value is owned by c afterwards. */
static int change_from_row(struct store *s, sqlite3_stmt *st, struct change *c,
			   struct fs_error *err)
{
	const unsigned char *value = sqlite3_column_text(st, 4);
	long long row = sqlite3_column_int64(st, 0);

	if (copy_name(c->record_id, sizeof(c->record_id), sqlite3_column_text(st, 1)) < 0 ||
	    copy_name(c->collection, sizeof(c->collection), sqlite3_column_text(st, 2)) < 0 ||
	    copy_name(c->field, sizeof(c->field), sqlite3_column_text(st, 3)) < 0)
		return fs_error_set(err, -FS_ECORRUPT,
				    "pack outbox in %s: change %lld: bad id or "
				    "name",
				    store_path(s), row);
	c->value = value ? cJSON_ParseWithLength((const char *)value,
						 (size_t)sqlite3_column_bytes(st, 4))
			 : cJSON_CreateNull();
	if (!c->value)
		return fs_error_set(err, value ? -FS_ECORRUPT : -ENOMEM,
				    "pack outbox in %s: change %lld: %s", store_path(s), row,
				    value ? "value is not JSON" : "out of memory");
	c->hlc = (hlc_t)sqlite3_column_int64(st, 5);
	c->form_version = (uint32_t)sqlite3_column_int64(st, 6);
	return 0;
}

static void values_free(struct change *changes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cJSON_Delete(changes[i].value);
		changes[i].value = NULL;
	}
}

/* Read up to max_changes unpacked changes, stopping once the payload
 * estimate passes max_bytes; rows[i] is the outbox seq of changes[i]. */
static int read_unpacked(struct store *s, size_t max_changes, size_t max_bytes,
			 struct change *changes, long long *rows, size_t *ret_n,
			 struct fs_error *err)
{
	size_t n = 0, bytes = 0;
	sqlite3_stmt *st;
	int r = 0, rc = SQLITE_ROW;

	r = store_stmt(
		s, SLOT_UNPACKED,
		"SELECT seq, record_id, collection, field, value, hlc, form_version FROM outbox"
		" WHERE changeset IS NULL ORDER BY seq LIMIT ?1",
		&st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max_changes);
	while (n < max_changes && bytes <= max_bytes && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = change_from_row(s, st, &changes[n], err)) < 0)
			goto out;
		bytes += PACK_CHANGE_OVERHEAD + (size_t)sqlite3_column_bytes(st, 1) +
			 (size_t)sqlite3_column_bytes(st, 2) + (size_t)sqlite3_column_bytes(st, 3) +
			 (size_t)sqlite3_column_bytes(st, 4);
		rows[n++] = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = store_fail(s, "read outbox in", err);
out:
	sqlite3_reset(st);
	if (r < 0) {
		values_free(changes, n);
		return r;
	}
	*ret_n = n;
	return 0;
}

/* ---- one set ------------------------------------------------------------ */

/* Encode changes[0, *n), halving *n while the encoding is over the size
 * limit. */
static int encode_fitting(struct store *s, const struct changeset_header *h,
			  const struct change *changes, size_t *n,
			  const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES], uint8_t **ret_buf,
			  size_t *ret_len, struct fs_error *err)
{
	const uint8_t *sk = store_identity(s)->sign_sk;
	int r;

	for (;;) {
		r = changeset_encode(h, changes, *n, hq_box_pk, sk, ret_buf, ret_len, err);
		if (r != -FS_ELIMIT || *n == 1)
			break;
		*n /= 2;
	}
	if (r < 0)
		fs_error_prefix(err, "pack outbox in %s: ", store_path(s));
	return r;
}

static int record_set(struct store *s, uint64_t seq, const uint8_t *buf, size_t len, size_t n,
		      long long first_row, long long last_row, struct fs_error *err)
{
	uint8_t hash[CHANGESET_HASH_BYTES];
	sqlite3_stmt *st;
	int r;

	changeset_hash(buf, len, hash);
	r = store_stmt(s, SLOT_INSERT_SET,
		       "INSERT INTO outgoing(seq, hash, body, changes, created_hlc)"
		       " VALUES(?1, ?2, ?3, ?4, ?5)",
		       &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, buf, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)n);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)store_hlc_next(s));
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail(s, "record change set in", err);
	sqlite3_reset(st);
	if (r < 0)
		return r;
	r = store_stmt(s, SLOT_MARK_PACKED,
		       "UPDATE outbox SET changeset = ?1"
		       " WHERE seq BETWEEN ?2 AND ?3 AND changeset IS NULL",
		       &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_int64(st, 2, first_row);
	sqlite3_bind_int64(st, 3, last_row);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_fail(s, "mark outbox in", err);
	sqlite3_reset(st);
	if (r == 0 && (size_t)sqlite3_changes(store_db(s)) != n)
		r = fs_error_set(err, -FS_ECORRUPT,
				 "pack outbox in %s: change set %llu: expected "
				 "to mark %zu changes, marked %d",
				 store_path(s), (unsigned long long)seq, n,
				 sqlite3_changes(store_db(s)));
	return r;
}

static int device_raw(struct store *s, uint8_t out[CHANGESET_DEVICE_BYTES], struct fs_error *err)
{
	const char *hex = store_identity(s)->id;
	size_t n = 0;

	if (sodium_hex2bin(out, CHANGESET_DEVICE_BYTES, hex, strlen(hex), NULL, &n, NULL) != 0 ||
	    n != CHANGESET_DEVICE_BYTES)
		return fs_error_set(err, -FS_ECORRUPT, "pack outbox in %s: bad device id",
				    store_path(s));
	return 0;
}

/* ---- the version HQ reads ------------------------------------------------ */

/* The highest version this agent writes that is not above named (an HQ
 * from after it may name more); 3, which every HQ reads, below 4. */
static uint8_t version_written(double named)
{
	return named >= CHANGESET_VERSION_COLUMNS   ? CHANGESET_VERSION_COLUMNS
	       : named >= CHANGESET_VERSION_GROUPED ? CHANGESET_VERSION_GROUPED
						    : CHANGESET_VERSION;
}

/* The version kept in meta, by the same rule (absent: 3). */
static int version_kept(struct store *s, uint8_t *ret_version, struct fs_error *err)
{
	char have[8] = "";
	int found = 0, r;

	r = store_meta_get(s, PACK_META_CHANGESET_VERSION, have, sizeof(have), &found, err);
	*ret_version = version_written(strtod(have, NULL));
	return r;
}

int pack_follow_hq(struct store *s, double named, struct fs_error *err)
{
	uint8_t have, want = version_written(named);
	char text[4];
	int r;

	if ((r = version_kept(s, &have, err)) < 0 || have == want)
		return r;
	snprintf(text, sizeof(text), "%u", want);
	return store_meta_put(s, PACK_META_CHANGESET_VERSION, text, err);
}

/* Pack one set in its own transaction; *ret_made is 0 when the outbox has
 * nothing left to pack. */
static int pack_one(struct store *s, const uint8_t *hq_box_pk, size_t max_changes, size_t max_bytes,
		    struct change *changes, long long *rows, int *ret_made, struct fs_error *err)
{
	struct changeset_header h = { 0 };
	uint8_t *buf = NULL;
	size_t n = 0, len = 0;
	uint64_t last = 0;
	int r;

	if ((r = device_raw(s, h.device, err)) < 0)
		return r;
	if ((r = store_begin(s, err)) < 0)
		return r;
	if ((r = version_kept(s, &h.version, err)) < 0 ||
	    (r = chain_tip(s, &last, h.prev, err)) < 0 ||
	    (r = read_unpacked(s, max_changes, max_bytes, changes, rows, &n, err)) < 0)
		goto out;
	if (n == 0)
		goto out;
	h.seq = last + 1;
	if ((r = encode_fitting(s, &h, changes, &n, hq_box_pk, &buf, &len, err)) < 0 ||
	    (r = record_set(s, h.seq, buf, len, n, rows[0], rows[n - 1], err)) < 0)
		goto out;
	r = store_commit(s, err);
out:
	if (r < 0 || n == 0)
		store_rollback(s);
	free(buf);
	values_free(changes, max_changes);
	if (r == 0)
		*ret_made = n > 0;
	return r;
}

/* ---- the loop ------------------------------------------------------------ */

/* The buffers pack_one() fills: a set's changes and their outbox rows. */
struct pack_buffers {
	struct change *changes;
	long long *rows;
	size_t max_changes, max_bytes;
};

static int buffers_new(struct store *s, size_t max_changes, size_t max_bytes,
		       struct pack_buffers *b, struct fs_error *err)
{
	if (!sqlite3_get_autocommit(store_db(s)))
		return fs_error_set(err, -FS_EUSAGE, "pack outbox: called inside a transaction");
	if (max_changes == 0)
		max_changes = PACK_DEFAULT_CHANGES;
	if (max_changes > CHANGESET_MAX_CHANGES)
		max_changes = CHANGESET_MAX_CHANGES;
	b->max_changes = max_changes;
	b->max_bytes = max_bytes ? max_bytes : PACK_DEFAULT_BYTES;
	b->changes = calloc(max_changes, sizeof(*b->changes));
	b->rows = calloc(max_changes, sizeof(*b->rows));
	if (!b->changes || !b->rows) {
		free(b->changes);
		free(b->rows);
		return fs_error_set(err, -ENOMEM, "pack outbox: out of memory");
	}
	return 0;
}

static void buffers_free(struct pack_buffers *b)
{
	free(b->changes);
	free(b->rows);
}

int pack_next(struct store *s, const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
	      size_t max_changes, size_t max_bytes, int *ret_made, struct fs_error *err)
{
	struct pack_buffers b = { 0 };
	int r, made = 0;

	if ((r = buffers_new(s, max_changes, max_bytes, &b, err)) < 0)
		return r;
	r = pack_one(s, hq_box_pk, b.max_changes, b.max_bytes, b.changes, b.rows, &made, err);
	buffers_free(&b);
	if (r == 0)
		*ret_made = made;
	return r;
}

int pack_outbox(struct store *s, const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
		size_t max_changes, size_t max_bytes, unsigned long long *ret_sets_made,
		struct fs_error *err)
{
	unsigned long long made = 0;
	struct pack_buffers b = { 0 };
	int r, more = 1;

	if ((r = buffers_new(s, max_changes, max_bytes, &b, err)) < 0)
		return r;
	while (more) {
		if ((r = pack_one(s, hq_box_pk, b.max_changes, b.max_bytes, b.changes, b.rows,
				  &more, err)) < 0)
			goto out;
		made += (unsigned long long)more;
	}
	if (ret_sets_made)
		*ret_sets_made = made;
out:
	buffers_free(&b);
	return r;
}

int pack_unpacked(struct store *s, unsigned long long *ret_changes, struct fs_error *err)
{
	sqlite3_stmt *st;
	int r;

	r = store_stmt(s, SLOT_COUNT_UNPACKED,
		       "SELECT count(*) FROM outbox WHERE changeset IS NULL", &st, err);
	if (r < 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW)
		*ret_changes = (unsigned long long)sqlite3_column_int64(st, 0);
	else
		r = store_fail(s, "count unpacked changes in", err);
	sqlite3_reset(st);
	return r;
}
