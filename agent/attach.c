/* attach.c - files attached to records, in the store (agent/attach.h). */
#include "agent/attach.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <sodium.h>
#include <sqlite3.h>

#include "agent/photo.h"
#include "crypto/secmem.h"
#include "sync/sniff.h"

/* ---- reading the file ------------------------------------------------------ */

/* The file's size, its first bytes' type, and back to its start. */
static int file_facts(FILE *in, const char *path, uint64_t *size, enum sniff_type *type,
		      struct fs_error *err)
{
	uint8_t head[SNIFF_PREFIX];
	size_t n;
	off_t end;

	if (fseeko(in, 0, SEEK_END) < 0 || (end = ftello(in)) < 0 || fseeko(in, 0, SEEK_SET) < 0)
		return fs_error_set(err, -errno, "read %s: %s", path, strerror(errno));
	n = fread(head, 1, sizeof(head), in);
	if (ferror(in) || fseeko(in, 0, SEEK_SET) < 0)
		return fs_error_set(err, -EIO, "read %s: read error", path);
	*size = (uint64_t)end;
	*type = sniff_bytes(head, n);
	return 0;
}

/* The reference for a file: {"sha256", "size", "type"}. */
static cJSON *reference(const char *hex, uint64_t size, const char *type)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "sha256", hex) ||
	    !cJSON_AddNumberToObject(o, "size", (double)size) ||
	    !cJSON_AddStringToObject(o, "type", type)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* Whether the form takes such a file, by its one rule, before a byte of
 * it is read: the hash is not known yet, and does not matter to it. */
static int check_facts(const struct form *f, const char *field, const char *path, uint64_t size,
		       enum sniff_type type, struct fs_error *err)
{
	char zeros[ATTACH_HEX + 1];
	cJSON *ref;
	int idx = form_field_index(f, field), r;

	if (idx < 0 || form_field_type(f, (size_t)idx) != FORM_ATTACHMENT)
		return fs_error_set(err, -FS_EVALID, "field '%s': not an attachment", field);
	if (type == SNIFF_NONE)
		return fs_error_set(err, -FS_EVALID,
				    "field '%s': %s is not a JPEG, PNG or PDF file by its content, "
				    "whatever its name",
				    field, path);
	memset(zeros, '0', ATTACH_HEX);
	zeros[ATTACH_HEX] = '\0';
	if (!(ref = reference(zeros, size, sniff_name(type))))
		return fs_error_set(err, -ENOMEM, "out of memory");
	r = size == 0 ? fs_error_set(err, -FS_EVALID, "field '%s': %s is empty", field, path)
		      : form_validate_value(f, field, ref, err);
	cJSON_Delete(ref);
	return r;
}

/* Read the whole file, hashing it into hex, and hand each chunk to put
 * (NULL: hash only).  Its size must stay size. */
static int each_chunk(FILE *in, const char *path, uint64_t size, uint8_t *buf,
		      int (*put)(void *ctx, int64_t idx, const uint8_t *data, size_t len),
		      void *ctx, char hex[ATTACH_HEX + 1], struct fs_error *err)
{
	crypto_hash_sha256_state h;
	uint8_t digest[crypto_hash_sha256_BYTES];
	uint64_t total = 0;
	int64_t idx = 0;
	size_t n;
	int r;

	if (fseeko(in, 0, SEEK_SET) < 0)
		return fs_error_set(err, -errno, "read %s: %s", path, strerror(errno));
	crypto_hash_sha256_init(&h);
	while ((n = fread(buf, 1, ATTACH_CHUNK, in)) > 0) {
		crypto_hash_sha256_update(&h, buf, n);
		total += n;
		if (put && (r = put(ctx, idx++, buf, n)) < 0)
			return r;
	}
	if (ferror(in))
		return fs_error_set(err, -EIO, "read %s: read error", path);
	if (total != size)
		return fs_error_set(err, -EIO, "read %s: the file changed while it was read", path);
	crypto_hash_sha256_final(&h, digest);
	sodium_bin2hex(hex, ATTACH_HEX + 1, digest, sizeof(digest));
	return 0;
}

/* ---- the store ------------------------------------------------------------- */

struct chunk_put {
	struct store *s;
	sqlite3_stmt *st;
	const char *hex;
	struct fs_error *err;
};

static int put_chunk(void *ctx, int64_t idx, const uint8_t *data, size_t len)
{
	struct chunk_put *p = ctx;

	sqlite3_reset(p->st);
	sqlite3_bind_text(p->st, 1, p->hex, -1, SQLITE_STATIC);
	sqlite3_bind_int64(p->st, 2, idx);
	sqlite3_bind_blob(p->st, 3, data, (int)len, SQLITE_STATIC);
	if (sqlite3_step(p->st) != SQLITE_DONE)
		return store_fail(p->s, "keep an attachment in", p->err);
	return 0;
}

/* A file only drafts named, given now for a record: a record's, sent
 * and kept whatever becomes of the drafts. */
static int claim_for_record(struct store *s, const char *hex, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	if (sqlite3_prepare_v2(store_db(s), "UPDATE attachments SET draft = 0 WHERE sha256 = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "keep an attachment in", err);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		r = store_fail(s, "keep an attachment in", err);
	sqlite3_finalize(st);
	return r;
}

/* 1 when the store holds hex, 0 when not. */
static int held(struct store *s, const char *hex, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(store_db(s), "SELECT 1 FROM attachments WHERE sha256 = ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return store_fail(s, "look up an attachment in", err);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(s, "look up an attachment in", err);
	return rc == SQLITE_ROW;
}

static int store_file(struct store *s, const struct form *f, const char *field, FILE *in,
		      const char *path, int for_draft, cJSON **ret_ref, int *ret_new,
		      struct fs_error *err);

/* A JPEG for a photo field is kept as photo_clean() makes it: *ret_buf
 * (malloc'd) holds it then, else it stays NULL and in is kept as it is. */
static int clean_photo(const struct form *f, const char *field, FILE *in, const char *path,
		       uint8_t **ret_buf, size_t *ret_len, struct fs_error *err)
{
	int idx = form_field_index(f, field), keep = 0, r;
	enum sniff_type type = SNIFF_NONE;
	unsigned side = 0, quality = 0;
	uint64_t size = 0;
	uint8_t *raw = NULL;

	*ret_buf = NULL;
	if (idx < 0 || form_field_type(f, (size_t)idx) != FORM_ATTACHMENT)
		return 0; /* check_facts says why */
	if ((r = file_facts(in, path, &size, &type, err)) < 0 || type != SNIFF_JPEG)
		return r;
	if (size > PHOTO_INPUT_MAX)
		return fs_error_set(err, -FS_EVALID,
				    "field '%s': %s is a JPEG of %.1f MB; photos over %d MB "
				    "cannot have their metadata stripped",
				    field, path, (double)size / 1e6,
				    PHOTO_INPUT_MAX / (1024 * 1024));
	if (!(raw = malloc(size ? (size_t)size : 1)))
		return fs_error_set(err, -ENOMEM, "out of memory");
	if (fread(raw, 1, (size_t)size, in) != (size_t)size || fseeko(in, 0, SEEK_SET) < 0) {
		free(raw);
		return fs_error_set(err, -EIO, "read %s: read error", path);
	}
	form_field_image(f, (size_t)idx, &side, &quality, &keep);
	r = photo_clean(raw, (size_t)size, side, quality, keep, ret_buf, ret_len, err);
	sodium_memzero(raw, (size_t)size);
	free(raw);
	if (r == -FS_EVALID) {
		char why[sizeof(err->msg)];

		snprintf(why, sizeof(why), "%s", err->msg);
		return fs_error_set(err, -FS_EVALID, "field '%s': %s: %s", field, path, why);
	}
	return r;
}

int attach_store(struct store *s, const struct form *f, const char *field, FILE *in,
		 const char *path, int for_draft, cJSON **ret_ref, int *ret_new,
		 struct fs_error *err)
{
	struct secmem_stream clean = { 0 };
	uint8_t *photo = NULL;
	size_t photo_len = 0;
	int r;

	*ret_ref = NULL;
	*ret_new = 0;
	if ((r = clean_photo(f, field, in, path, &photo, &photo_len, err)) < 0)
		return r;
	if (photo && secmem_stream_mem(&clean, photo, photo_len, ATTACH_IOBUF) < 0)
		r = fs_error_set(err, -ENOMEM, "out of memory");
	else
		r = store_file(s, f, field, clean.fp ? clean.fp : in, path, for_draft, ret_ref,
			       ret_new, err);
	secmem_stream_close(&clean);
	if (photo) {
		sodium_memzero(photo, photo_len);
		free(photo);
	}
	return r;
}

/* Keep what in holds, as attach_store says. */
static int store_file(struct store *s, const struct form *f, const char *field, FILE *in,
		      const char *path, int for_draft, cJSON **ret_ref, int *ret_new,
		      struct fs_error *err)
{
	char hex[ATTACH_HEX + 1], again[ATTACH_HEX + 1];
	struct chunk_put p = { .s = s, .err = err };
	enum sniff_type type = SNIFF_NONE;
	uint8_t *buf = NULL;
	uint64_t size = 0;
	int r, in_tx = 0;

	*ret_ref = NULL;
	*ret_new = 0;
	if ((r = file_facts(in, path, &size, &type, err)) < 0 ||
	    (r = check_facts(f, field, path, size, type, err)) < 0)
		return r;
	if (!(buf = malloc(ATTACH_CHUNK)))
		return fs_error_set(err, -ENOMEM, "out of memory");
	/* The name first: a file the store holds is not written again. */
	if ((r = each_chunk(in, path, size, buf, NULL, NULL, hex, err)) < 0 ||
	    (r = store_begin_local(s, err)) < 0)
		goto out;
	in_tx = 1;
	if ((r = held(s, hex, err)) < 0)
		goto out;
	if (r == 0) {
		p.hex = hex;
		if (sqlite3_prepare_v2(store_db(s),
				       "INSERT INTO attachment_chunks(sha256, idx, data) "
				       "VALUES (?1, ?2, ?3)",
				       -1, &p.st, NULL) != SQLITE_OK) {
			r = store_fail(s, "keep an attachment in", err);
			goto out;
		}
		if ((r = each_chunk(in, path, size, buf, put_chunk, &p, again, err)) < 0)
			goto out;
		if (strcmp(hex, again)) {
			r = fs_error_set(err, -EIO, "read %s: the file changed while it was read",
					 path);
			goto out;
		}
		sqlite3_finalize(p.st);
		p.st = NULL;
		if (sqlite3_prepare_v2(
			    store_db(s),
			    "INSERT INTO attachments(sha256, size, type, added_ms, draft) "
			    "VALUES (?1, ?2, ?3, ?4, ?5)",
			    -1, &p.st, NULL) != SQLITE_OK) {
			r = store_fail(s, "keep an attachment in", err);
			goto out;
		}
		sqlite3_bind_text(p.st, 1, hex, -1, SQLITE_STATIC);
		sqlite3_bind_int64(p.st, 2, (sqlite3_int64)size);
		sqlite3_bind_text(p.st, 3, sniff_name(type), -1, SQLITE_STATIC);
		sqlite3_bind_int64(p.st, 4, (sqlite3_int64)store_wall_ms(s));
		sqlite3_bind_int(p.st, 5, for_draft ? 1 : 0);
		if (sqlite3_step(p.st) != SQLITE_DONE) {
			r = store_fail(s, "keep an attachment in", err);
			goto out;
		}
		*ret_new = 1;
	} else if (!for_draft && (r = claim_for_record(s, hex, err)) < 0) {
		goto out;
	}
	if ((r = store_commit(s, err)) < 0)
		goto out;
	in_tx = 0;
	if (!(*ret_ref = reference(hex, size, sniff_name(type))))
		r = fs_error_set(err, -ENOMEM, "out of memory");
out:
	sqlite3_finalize(p.st);
	if (in_tx)
		store_rollback(s);
	if (r < 0)
		*ret_new = 0;
	sodium_memzero(buf, ATTACH_CHUNK);
	free(buf);
	return r;
}

int attach_forget(struct store *s, const char *hex, struct fs_error *err)
{
	static const char *const sql[] = {
		"DELETE FROM attachment_chunks WHERE sha256 = ?1",
		"DELETE FROM attachments WHERE sha256 = ?1",
	};
	sqlite3_stmt *st = NULL;
	int r;

	/* Not store_begin_local: removing frees room, on a full disk too. */
	if ((r = store_begin(s, err)) < 0)
		return r;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && r == 0; i++) {
		if (sqlite3_prepare_v2(store_db(s), sql[i], -1, &st, NULL) != SQLITE_OK) {
			r = store_fail(s, "remove an attachment from", err);
			break;
		}
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			r = store_fail(s, "remove an attachment from", err);
		sqlite3_finalize(st);
	}
	if (r == 0)
		r = store_commit(s, err);
	if (r < 0)
		store_rollback(s);
	return r;
}

int attach_write(struct store *s, const char *hex, FILE *out, struct fs_error *err)
{
	crypto_hash_sha256_state h;
	uint8_t digest[crypto_hash_sha256_BYTES];
	char got[ATTACH_HEX + 1];
	sqlite3_stmt *st = NULL;
	uint64_t size = 0, total = 0;
	int r = 0, rc;

	if (strlen(hex) != ATTACH_HEX || strspn(hex, "0123456789abcdef") != ATTACH_HEX)
		return fs_error_set(err, -FS_EUSAGE, "an attachment is named by 64 hex digits");
	if (sqlite3_prepare_v2(store_db(s), "SELECT size FROM attachments WHERE sha256 = ?1", -1,
			       &st, NULL) != SQLITE_OK)
		return store_fail(s, "read an attachment from", err);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		size = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return fs_error_set(err, -FS_ENOTFOUND, "no attachment %s on this device", hex);
	if (rc != SQLITE_ROW)
		return store_fail(s, "read an attachment from", err);
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT data FROM attachment_chunks WHERE sha256 = ?1 ORDER BY idx",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "read an attachment from", err);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	crypto_hash_sha256_init(&h);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *data = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);

		crypto_hash_sha256_update(&h, data, n);
		total += n;
		if (n && fwrite(data, 1, n, out) != n) {
			r = fs_error_set(err, -EIO, "write attachment %.12s: %s", hex,
					 strerror(errno));
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, "read an attachment from", err);
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	crypto_hash_sha256_final(&h, digest);
	sodium_bin2hex(got, sizeof(got), digest, sizeof(digest));
	if (total != size || strcmp(got, hex))
		return fs_error_set(err, -FS_ECORRUPT,
				    "attachment %.12s: what the store holds does not hash to its "
				    "name",
				    hex);
	return 0;
}

/* ---- sending ------------------------------------------------------------------ */

int attach_next_unsent(struct store *s, struct attach_cursor *c, uint64_t *ret_size,
		       struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0, rc;

	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT sha256, size, added_ms FROM attachments WHERE sent_ms IS "
			       "NULL AND draft = 0 AND (?1 = '' OR (added_ms, sha256) > (?2, ?1)) "
			       "ORDER BY added_ms, sha256 LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "list the attachments to send in", err);
	if (sqlite3_bind_text(st, 1, c->hex, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, c->added_ms) != SQLITE_OK) {
		r = store_fail(s, "list the attachments to send in", err);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 0);

		if (!h || strlen(h) != ATTACH_HEX) {
			r = fs_error_set(err, -FS_ECORRUPT, "%s: an attachment's name is damaged",
					 store_path(s));
		} else {
			memcpy(c->hex, h, ATTACH_HEX + 1);
			*ret_size = (uint64_t)sqlite3_column_int64(st, 1);
			c->added_ms = sqlite3_column_int64(st, 2);
			r = 1;
		}
	} else if (rc != SQLITE_DONE) {
		r = store_fail(s, "list the attachments to send in", err);
	}
out:
	sqlite3_finalize(st);
	return r;
}

int attach_unsent(struct store *s, unsigned long long *ret_files, unsigned long long *ret_bytes,
		  struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT count(*), coalesce(sum(size), 0) FROM attachments WHERE "
			       "sent_ms IS NULL AND draft = 0",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "count the attachments to send in", err);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*ret_files = (unsigned long long)sqlite3_column_int64(st, 0);
		*ret_bytes = (unsigned long long)sqlite3_column_int64(st, 1);
	} else {
		r = store_fail(s, "count the attachments to send in", err);
	}
	sqlite3_finalize(st);
	return r;
}

int attach_mark_sent(struct store *s, const char *hex, uint64_t now_ms, struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = 0;

	if (sqlite3_prepare_v2(store_db(s), "UPDATE attachments SET sent_ms = ?2 WHERE sha256 = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "note an attachment as sent in", err);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		r = store_fail(s, "note an attachment as sent in", err);
	sqlite3_finalize(st);
	return r;
}

int attach_read(struct store *s, const char *hex, uint64_t offset, size_t len, uint8_t *out,
		struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	uint64_t first = offset / ATTACH_CHUNK, last = (offset + len - 1) / ATTACH_CHUNK;
	size_t got = 0;
	int r = 0, rc;

	if (len == 0)
		return 0;
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT idx, data FROM attachment_chunks WHERE sha256 = ?1 AND idx "
			       "BETWEEN ?2 AND ?3 ORDER BY idx",
			       -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "read an attachment from", err);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)first);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)last);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t at = (uint64_t)sqlite3_column_int64(st, 0) * ATTACH_CHUNK;
		const uint8_t *data = sqlite3_column_blob(st, 1);
		uint64_t n = (uint64_t)sqlite3_column_bytes(st, 1), from, to;

		/* Chunks come in order with no gap: this one starts where the
		 * bytes copied so far end, or the store lost one. */
		if (at > offset + got || at + n <= offset + got)
			break;
		from = offset + got - at;
		to = n < offset + len - at ? n : offset + len - at;
		memcpy(out + got, data + from, (size_t)(to - from));
		got += (size_t)(to - from);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = store_fail(s, "read an attachment from", err);
	else if (got != len)
		r = fs_error_set(err, -FS_ECORRUPT,
				 "attachment %.12s: the store holds fewer bytes than its size",
				 hex);
	sqlite3_finalize(st);
	return r;
}

int attach_settle_drafts(struct store *s, const char *record_id, struct fs_error *err)
{
	/* A file named by a draft only is a record's once that record's
	 * changes name it; one no draft names any more goes.  Few files are
	 * drafts' at a time, and the text search runs over them only. */
	/* Each in parentheses: clang takes a list of joined literals for a
	 * missing comma. */
	static const char *const sql[] = {
		("UPDATE attachments SET draft = 0 WHERE draft = 1 AND ?1 IS NOT NULL AND EXISTS "
		 "(SELECT 1 FROM outbox o WHERE o.record_id = ?1 AND instr(o.value, "
		 "attachments.sha256) > 0)"),
		("DELETE FROM attachment_chunks WHERE sha256 IN (SELECT a.sha256 FROM "
		 "attachments a WHERE a.draft = 1 AND NOT EXISTS (SELECT 1 FROM drafts d "
		 "WHERE instr(d.fields, a.sha256) > 0))"),
		("DELETE FROM attachments WHERE draft = 1 AND NOT EXISTS (SELECT 1 FROM drafts d "
		 "WHERE instr(d.fields, attachments.sha256) > 0)"),
	};
	sqlite3_stmt *st = NULL;
	int r = 0;

	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && r == 0; i++) {
		if (sqlite3_prepare_v2(store_db(s), sql[i], -1, &st, NULL) != SQLITE_OK)
			return store_fail(s, "settle the drafts' attachments in", err);
		if (i == 0)
			sqlite3_bind_text(st, 1, record_id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			r = store_fail(s, "settle the drafts' attachments in", err);
		sqlite3_finalize(st);
	}
	return r;
}
