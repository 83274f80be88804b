/* changeset.c - encode, parse, verify and open change sets.
 *
 * Sections: the payload (canonical JSON of changes);
 * encode; parse and verify; open.
 */
#include "sync/changeset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bytes.h"
#include "sync/envelope.h"

/* ---- the payload ------------------------------------------------------ */

/* Canonical form: a JSON array of [record id, collection, field, value,
 * hlc as 16 hex digits, form version], in the order given, printed by
 * cJSON without spaces.  The same changes always give the same bytes. */
/* Append item to arr, taking ownership either way; false on failure. */
static int append(cJSON *arr, cJSON *item)
{
	if (item && cJSON_AddItemToArray(arr, item))
		return 1;
	cJSON_Delete(item);
	return 0;
}

cJSON *changeset_change_row(const struct change *c)
{
	char hlc[HLC_TEXT_LEN + 1];
	cJSON *row = cJSON_CreateArray();

	hlc_format(c->hlc, hlc);
	if (!row || !append(row, cJSON_CreateString(c->record_id)) ||
	    !append(row, cJSON_CreateString(c->collection)) ||
	    !append(row, cJSON_CreateString(c->field)) ||
	    !append(row, c->value ? cJSON_Duplicate(c->value, 1) : cJSON_CreateNull()) ||
	    !append(row, cJSON_CreateString(hlc))) {
		cJSON_Delete(row);
		return NULL;
	}
	return row;
}

/* Version 4: a row [record id, collection, hlc, form version, {field:
 * value, ...}] for each run of changes that share the first four, the
 * fields in the order given; a field met twice in a run, or a run of
 * CHANGESET_MAX_ROW_FIELDS, starts a new row.  Version 5 writes the same
 * rows, column by column. */
static int same_row(const struct change *a, const struct change *b)
{
	return !strcmp(a->record_id, b->record_id) && !strcmp(a->collection, b->collection) &&
	       a->hlc == b->hlc && a->form_version == b->form_version;
}

/* Where the row that starts at changes[i] ends (exclusive). */
static size_t row_end(const struct change *changes, size_t n, size_t i)
{
	size_t e = i + 1;

	for (; e < n && e - i < CHANGESET_MAX_ROW_FIELDS && same_row(&changes[i], &changes[e]); e++)
		for (size_t p = i; p < e; p++)
			if (!strcmp(changes[p].field, changes[e].field))
				return e;
	return e;
}

static cJSON *value_copy(const struct change *c)
{
	return c->value ? cJSON_Duplicate(c->value, 1) : cJSON_CreateNull();
}

static char *payload_print_grouped(const struct change *changes, size_t n)
{
	cJSON *arr = cJSON_CreateArray(), *fields, *row, *v;
	char hlc[HLC_TEXT_LEN + 1], *text = NULL;

	if (!arr)
		return NULL;
	for (size_t i = 0, e; i < n; i = e) {
		e = row_end(changes, n, i);
		hlc_format(changes[i].hlc, hlc);
		if (!append(arr, row = cJSON_CreateArray()) ||
		    !append(row, cJSON_CreateString(changes[i].record_id)) ||
		    !append(row, cJSON_CreateString(changes[i].collection)) ||
		    !append(row, cJSON_CreateString(hlc)) ||
		    !append(row, cJSON_CreateNumber((double)changes[i].form_version)) ||
		    !append(row, fields = cJSON_CreateObject()))
			goto out;
		for (size_t k = i; k < e; k++)
			if (!(v = value_copy(&changes[k])) ||
			    !cJSON_AddItemToObject(fields, changes[k].field, v)) {
				cJSON_Delete(v);
				goto out;
			}
	}
	text = cJSON_PrintUnformatted(arr);
out:
	cJSON_Delete(arr);
	return text;
}

/* Version 5: the rows of version 4 in tables, one per shape (collection,
 * form version and field names, in order), in the order each shape first
 * comes; a table is [collection, form version, [record ids], [hlcs],
 * {field: [values]}].  A reader takes the tables' rows in order and sorts
 * them by HLC, stably; so a set can be written in version 5 only when its
 * rows already come in that order (by HLC, and by table among equal HLCs).
 * Then the reader gets back exactly the changes, in the order, given. */
#define TABLES_MAX 64 /* shapes in one set; more, and the set is version 4 */

struct table {
	size_t first; /* index of the first change of its first row */
	size_t width; /* fields per row */
	cJSON *ids, *hlcs, *cols[CHANGESET_MAX_ROW_FIELDS];
};

static int same_shape(const struct change *changes, const struct table *t, size_t i, size_t width)
{
	const struct change *a = &changes[t->first], *b = &changes[i];

	if (t->width != width || strcmp(a->collection, b->collection) ||
	    a->form_version != b->form_version)
		return 0;
	for (size_t k = 0; k < width; k++)
		if (strcmp(a[k].field, b[k].field))
			return 0;
	return 1;
}

/* The table for the row at changes[i..i+width): found, or added with its
 * columns; its index in *ret, -1 when out of memory, 0 when over
 * TABLES_MAX. */
static int table_of(cJSON *arr, struct table *tables, size_t *ntables, const struct change *changes,
		    size_t i, size_t width, size_t *ret)
{
	struct table *t;
	cJSON *top, *fields;

	for (size_t k = 0; k < *ntables; k++)
		if (same_shape(changes, &tables[k], i, width)) {
			*ret = k;
			return 1;
		}
	if (*ntables == TABLES_MAX)
		return 0;
	t = &tables[*ntables];
	t->first = i;
	t->width = width;
	if (!append(arr, top = cJSON_CreateArray()) ||
	    !append(top, cJSON_CreateString(changes[i].collection)) ||
	    !append(top, cJSON_CreateNumber((double)changes[i].form_version)) ||
	    !append(top, t->ids = cJSON_CreateArray()) ||
	    !append(top, t->hlcs = cJSON_CreateArray()) ||
	    !append(top, fields = cJSON_CreateObject()))
		return -1;
	for (size_t k = 0; k < width; k++)
		if (!(t->cols[k] = cJSON_AddArrayToObject(fields, changes[i + k].field)))
			return -1;
	*ret = (*ntables)++;
	return 1;
}

/* The version 5 text, or NULL with *fits 0 when the rows' order does not
 * allow it (or *fits 1: out of memory). */
static char *payload_print_columns(const struct change *changes, size_t n, int *fits)
{
	struct table *tables = calloc(TABLES_MAX, sizeof(*tables));
	cJSON *arr = cJSON_CreateArray(), *v;
	char hlc[HLC_TEXT_LEN + 1], *text = NULL;
	size_t ntables = 0, t, prev_t = 0;
	int r;

	*fits = 1;
	if (!tables || !arr)
		goto out;
	for (size_t i = 0, e; i < n; i = e) {
		e = row_end(changes, n, i);
		if ((r = table_of(arr, tables, &ntables, changes, i, e - i, &t)) <= 0) {
			*fits = r < 0;
			goto out;
		}
		if (i > 0 && (changes[i - 1].hlc > changes[i].hlc ||
			      (changes[i - 1].hlc == changes[i].hlc && prev_t > t))) {
			*fits = 0;
			goto out;
		}
		prev_t = t;
		hlc_format(changes[i].hlc, hlc);
		if (!append(tables[t].ids, cJSON_CreateString(changes[i].record_id)) ||
		    !append(tables[t].hlcs, cJSON_CreateString(hlc)))
			goto out;
		for (size_t k = 0; k < e - i; k++)
			if (!append(tables[t].cols[k], v = value_copy(&changes[i + k])))
				goto out;
	}
	text = cJSON_PrintUnformatted(arr);
out:
	cJSON_Delete(arr);
	free(tables);
	return text;
}

char *changeset_payload_print(const struct change *changes, size_t n, int *version)
{
	cJSON *arr;
	char *text = NULL;
	int fits;

	if (*version == CHANGESET_VERSION_COLUMNS) {
		if ((text = payload_print_columns(changes, n, &fits)) || fits)
			return text;
		*version = CHANGESET_VERSION_GROUPED;
	}
	if (*version == CHANGESET_VERSION_GROUPED)
		return payload_print_grouped(changes, n);
	if (!(arr = cJSON_CreateArray()))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		cJSON *row = changeset_change_row(&changes[i]);

		if (!append(arr, row) ||
		    !append(row, cJSON_CreateNumber((double)changes[i].form_version)))
			goto out;
	}
	text = cJSON_PrintUnformatted(arr);
out:
	cJSON_Delete(arr);
	return text;
}

int changeset_name_ok(const char *s, int allow_underscore_start)
{
	size_t n = strlen(s);

	if (n == 0 || n > CHANGESET_MAX_NAME)
		return 0;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (allow_underscore_start && s[0] == '_')))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

size_t changeset_payload_nodes(const char *text, size_t len)
{
	size_t containers = 0, commas = 0;
	int in_string = 0;

	/* Every value is a container, the first item of one, the top
	 * level, or follows a comma. */
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
		} else if (c == '"') {
			in_string = 1;
		} else if (c == '[' || c == '{') {
			containers++;
		} else if (c == ',') {
			commas++;
		}
	}
	return 2 * containers + commas + 1;
}

/* The rules of one change, whichever row shape carried it: id, coll and
 * hlc are JSON strings (checked here), field a name, value any JSON. */
static int change_fill(const cJSON *id, const cJSON *coll, const char *field, const cJSON *value,
		       const cJSON *hlc, hlc_t lo, hlc_t hi, struct change *c)
{
	char canon[UUID_TEXT_LEN + 1];

	if (!cJSON_IsString(id) || !cJSON_IsString(coll) || !field || !cJSON_IsString(hlc) ||
	    !value)
		return -FS_EFORMAT;
	/* Ids travel in canonical lower case, so equal ids are equal bytes. */
	if (uuid_normalize(id->valuestring, canon) < 0 || strcmp(canon, id->valuestring) != 0)
		return -FS_EFORMAT;
	if (!changeset_name_ok(coll->valuestring, 0) || !changeset_name_ok(field, 1))
		return -FS_EFORMAT;
	if (hlc_parse(hlc->valuestring, &c->hlc) < 0 || c->hlc < lo || c->hlc > hi)
		return -FS_EFORMAT;
	memcpy(c->record_id, canon, sizeof(canon));
	strcpy(c->collection, coll->valuestring);
	strcpy(c->field, field);
	if (!(c->value = cJSON_Duplicate(value, 1)))
		return -ENOMEM;
	/* An object member's copy keeps its key; a change's value has none. */
	cJSON_free(c->value->string);
	c->value->string = NULL;
	return 0;
}

int changeset_change_from_row(const cJSON *row, int width, hlc_t lo, hlc_t hi, struct change *c)
{
	const cJSON *field;

	if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != width)
		return -FS_EFORMAT;
	field = cJSON_GetArrayItem(row, 2);
	if (!cJSON_IsString(field))
		return -FS_EFORMAT;
	return change_fill(cJSON_GetArrayItem(row, 0), cJSON_GetArrayItem(row, 1),
			   field->valuestring, cJSON_GetArrayItem(row, 3),
			   cJSON_GetArrayItem(row, 4), lo, hi, c);
}

void changes_free(struct change *changes, size_t n)
{
	if (!changes)
		return;
	for (size_t i = 0; i < n; i++)
		cJSON_Delete(changes[i].value);
	free(changes);
}

/* ---- encode ----------------------------------------------------------- */

int changeset_encode(const struct changeset_header *h, const struct change *changes, size_t n,
		     const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
		     const uint8_t device_sign_sk[crypto_sign_SECRETKEYBYTES], uint8_t **ret_buf,
		     size_t *ret_len, struct fs_error *err)
{
	uint8_t *sealed = NULL, *out = NULL, binding[CHANGESET_BINDING_BYTES];
	struct envelope_frame frame = { 0 };
	size_t plen, slen = 0, total;
	hlc_t lo = UINT64_MAX, hi = 0;
	int version = h->version ? h->version : CHANGESET_VERSION;
	char *payload = NULL;
	int r = 0;

	if (n == 0 || n > CHANGESET_MAX_CHANGES || h->seq == 0 || version < CHANGESET_VERSION ||
	    version > CHANGESET_VERSION_COLUMNS)
		return fs_error_set(err, -FS_EUSAGE,
				    "change set: %zu changes, sequence %llu, version %d", n,
				    (unsigned long long)h->seq, version);
	for (size_t i = 0; i < n; i++) {
		lo = changes[i].hlc < lo ? changes[i].hlc : lo;
		hi = changes[i].hlc > hi ? changes[i].hlc : hi;
	}
	payload = changeset_payload_print(changes, n, &version);
	if (!payload)
		return fs_error_set(err, -ENOMEM, "change set: out of memory");
	plen = strlen(payload);
	if (plen > CHANGESET_MAX_PAYLOAD) {
		r = fs_error_set(err, -FS_ELIMIT, "change set: payload of %zu bytes over the limit",
				 plen);
		goto out;
	}
	if (changeset_payload_nodes(payload, plen) > CHANGESET_MAX_NODES) {
		r = fs_error_set(err, -FS_ELIMIT, "change set: payload of more than %d JSON values",
				 CHANGESET_MAX_NODES);
		goto out;
	}
	/* The sealed plaintext starts with the binding: header bytes 8..63
	 * (device, sequence, previous hash), so that nobody who cannot open
	 * the seal can present the payload as another device's or set's. */
	memcpy(binding, h->device, CHANGESET_DEVICE_BYTES);
	bytes_put_be(binding + CHANGESET_DEVICE_BYTES, h->seq, 8);
	memcpy(binding + CHANGESET_DEVICE_BYTES + 8, h->prev, CHANGESET_HASH_BYTES);
	if ((r = envelope_seal(binding, sizeof(binding), payload, plen, ENVELOPE_ZSTD_LEVEL,
			       ENVELOPE_ZSTD_WINDOW_LOG, hq_box_pk, &sealed, &slen, "change set",
			       err)) < 0)
		goto out;
	total = CHANGESET_HEADER_BYTES + slen + CHANGESET_SIG_BYTES;
	if (total > CHANGESET_MAX_BYTES) {
		r = fs_error_set(err, -FS_ELIMIT, "change set: %zu bytes, more than %d", total,
				 CHANGESET_MAX_BYTES);
		goto out;
	}
	out = calloc(1, total);
	if (!out) {
		r = fs_error_set(err, -ENOMEM, "change set: out of memory");
		goto out;
	}
	frame.version = (uint8_t)version;
	memcpy(frame.device, h->device, CHANGESET_DEVICE_BYTES);
	frame.seq = h->seq;
	memcpy(frame.prev, h->prev, CHANGESET_HASH_BYTES);
	frame.word[0] = lo;
	frame.word[1] = hi;
	frame.count = (uint32_t)n;
	envelope_frame_put(out, CHANGESET_MAGIC, &frame, slen);
	memcpy(out + CHANGESET_HEADER_BYTES, sealed, slen);
	crypto_sign_detached(out + total - CHANGESET_SIG_BYTES, NULL, out,
			     total - CHANGESET_SIG_BYTES, device_sign_sk);
	*ret_buf = out;
	*ret_len = total;
	out = NULL;
out:
	free(out);
	free(sealed);
	/* Plaintext personal data: wiped before freed. */
	if (payload)
		sodium_memzero(payload, strlen(payload));
	cJSON_free(payload);
	return r;
}

/* ---- parse and verify ------------------------------------------------- */

int changeset_parse(const uint8_t *buf, size_t len, struct changeset_header *ret_header,
		    struct fs_error *err)
{
	struct envelope_frame f;
	struct changeset_header h;
	int r;

	if ((r = envelope_parse(buf, len, CHANGESET_MAGIC, "change set", CHANGESET_MAX_BYTES,
				CHANGESET_VERSION_UNBOUND, CHANGESET_VERSION_COLUMNS, 0, &f, err)) <
	    0)
		return r;
	h.version = f.version;
	memcpy(h.device, f.device, CHANGESET_DEVICE_BYTES);
	h.seq = f.seq;
	memcpy(h.prev, f.prev, CHANGESET_HASH_BYTES);
	h.hlc_min = f.word[0];
	h.hlc_max = f.word[1];
	h.count = f.count;
	if (h.count == 0 || h.count > CHANGESET_MAX_CHANGES || h.hlc_min > h.hlc_max)
		return fs_error_set(err, -FS_EFORMAT, "change set: bad count or HLC range");
	*ret_header = h;
	return 0;
}

int changeset_verify(const uint8_t *buf, size_t len,
		     const uint8_t device_sign_pk[crypto_sign_PUBLICKEYBYTES])
{
	return envelope_verify(buf, len, CHANGESET_MAX_BYTES, device_sign_pk);
}

void changeset_hash(const uint8_t *buf, size_t len, uint8_t out[CHANGESET_HASH_BYTES])
{
	crypto_generichash(out, CHANGESET_HASH_BYTES, buf, len, NULL, 0);
}

/* ---- open ------------------------------------------------------------- */

int changeset_form_version_from(const cJSON *v, uint32_t *ret)
{
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
	    v->valuedouble > (double)CHANGESET_MAX_FORM_VERSION ||
	    v->valuedouble != (double)(uint32_t)v->valuedouble)
		return -FS_EFORMAT;
	*ret = (uint32_t)v->valuedouble;
	return 0;
}

/* Decrypt and decompress the payload into a NUL-terminated string;
 * versions 2 and 3 check the binding. */
static int payload_unseal(const uint8_t *buf, size_t len, const uint8_t *pk, const uint8_t *sk,
			  char **ret_text, size_t *ret_len, struct fs_error *err)
{
	int bound = buf[4] != CHANGESET_VERSION_UNBOUND;

	return envelope_open(buf + CHANGESET_HEADER_BYTES,
			     len - CHANGESET_HEADER_BYTES - CHANGESET_SIG_BYTES, pk, sk,
			     bound ? buf + 8 : NULL, bound ? CHANGESET_BINDING_BYTES : 0,
			     CHANGESET_MAX_PAYLOAD, ret_text, ret_len, "change set", err);
}

/* A version 4 payload's rows into changes[0..h->count), counting in *n
 * the changes filled (their values are the caller's to free). */
static int open_grouped(const cJSON *arr, const struct changeset_header *h, struct change *changes,
			size_t *n, struct fs_error *err)
{
	size_t g = 0;

	for (const cJSON *row = arr->child; row; row = row->next, g++) {
		const cJSON *fields = cJSON_GetArrayItem(row, 4);
		uint32_t fv = 0;
		size_t k = 0;

		if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 5 ||
		    !cJSON_IsObject(fields) || !fields->child ||
		    changeset_form_version_from(cJSON_GetArrayItem(row, 3), &fv) < 0)
			return fs_error_set(err, -FS_EFORMAT, "change set: row %zu is malformed",
					    g + 1);
		for (const cJSON *f = fields->child; f; f = f->next, k++) {
			int r;

			if (*n == h->count)
				return fs_error_set(err, -FS_EFORMAT,
						    "change set: payload is not %u changes",
						    h->count);
			if (k == CHANGESET_MAX_ROW_FIELDS)
				return fs_error_set(err, -FS_EFORMAT,
						    "change set: row %zu has more than %d fields",
						    g + 1, CHANGESET_MAX_ROW_FIELDS);
			for (const cJSON *p = fields->child; p != f; p = p->next)
				if (!strcmp(p->string, f->string))
					return fs_error_set(err, -FS_EFORMAT,
							    "change set: row %zu names a field "
							    "twice",
							    g + 1);
			r = change_fill(cJSON_GetArrayItem(row, 0), cJSON_GetArrayItem(row, 1),
					f->string, f, cJSON_GetArrayItem(row, 2), h->hlc_min,
					h->hlc_max, &changes[*n]);
			if (r < 0)
				return fs_error_set(err, r, "change set: change %zu is malformed",
						    *n + 1);
			changes[(*n)++].form_version = fv;
		}
	}
	if (*n != h->count)
		return fs_error_set(err, -FS_EFORMAT, "change set: payload is not %u changes",
				    h->count);
	return 0;
}

/* The cursor over one column of a version 5 table: the next value. */
struct column {
	const char *name;
	const cJSON *next;
};

/* A version 5 table's changes into changes[*n..), counting them in *n;
 * g names the table in errors. */
static int open_table(const cJSON *t, size_t g, const struct changeset_header *h,
		      struct change *changes, size_t *n, struct fs_error *err)
{
	const cJSON *ids = cJSON_GetArrayItem(t, 2), *hlcs = cJSON_GetArrayItem(t, 3);
	const cJSON *fields = cJSON_GetArrayItem(t, 4), *coll = cJSON_GetArrayItem(t, 0), *id, *hlc;
	struct column cols[CHANGESET_MAX_ROW_FIELDS];
	size_t rows, width = 0;
	uint32_t fv = 0;

	if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) != 5 || !cJSON_IsArray(ids) ||
	    !cJSON_IsArray(hlcs) || !cJSON_IsObject(fields) || !ids->child || !fields->child ||
	    changeset_form_version_from(cJSON_GetArrayItem(t, 1), &fv) < 0)
		return fs_error_set(err, -FS_EFORMAT, "change set: table %zu is malformed", g + 1);
	rows = (size_t)cJSON_GetArraySize(ids);
	if ((size_t)cJSON_GetArraySize(hlcs) != rows)
		return fs_error_set(err, -FS_EFORMAT,
				    "change set: table %zu has %zu ids and %d HLCs", g + 1, rows,
				    cJSON_GetArraySize(hlcs));
	for (const cJSON *f = fields->child; f; f = f->next, width++) {
		if (width == CHANGESET_MAX_ROW_FIELDS)
			return fs_error_set(err, -FS_EFORMAT,
					    "change set: table %zu has more than %d fields", g + 1,
					    CHANGESET_MAX_ROW_FIELDS);
		if (!cJSON_IsArray(f) || (size_t)cJSON_GetArraySize(f) != rows)
			return fs_error_set(err, -FS_EFORMAT,
					    "change set: table %zu: column %zu is not %zu values",
					    g + 1, width + 1, rows);
		/* A name is checked before it is compared: each comparison
		 * then stops within CHANGESET_MAX_NAME bytes. */
		if (!changeset_name_ok(f->string, 1))
			return fs_error_set(err, -FS_EFORMAT,
					    "change set: table %zu: column %zu is malformed", g + 1,
					    width + 1);
		for (size_t p = 0; p < width; p++)
			if (!strcmp(cols[p].name, f->string))
				return fs_error_set(err, -FS_EFORMAT,
						    "change set: table %zu names a field twice",
						    g + 1);
		cols[width].name = f->string;
		cols[width].next = f->child;
	}
	/* Checked before anything is written: rows * width is at most
	 * CHANGESET_MAX_NODES * 256 here, and must fit what the header counts
	 * after the tables before. */
	if (rows * width > h->count - *n)
		return fs_error_set(err, -FS_EFORMAT, "change set: payload is not %u changes",
				    h->count);
	id = ids->child;
	hlc = hlcs->child;
	for (size_t i = 0; i < rows; i++, id = id->next, hlc = hlc->next)
		for (size_t k = 0; k < width; k++) {
			int r = change_fill(id, coll, cols[k].name, cols[k].next, hlc, h->hlc_min,
					    h->hlc_max, &changes[*n]);

			if (r < 0)
				return fs_error_set(err, r, "change set: change %zu is malformed",
						    *n + 1);
			changes[(*n)++].form_version = fv;
			cols[k].next = cols[k].next->next;
		}
	return 0;
}

struct order {
	hlc_t hlc;
	size_t at;
};

static int order_cmp(const void *a, const void *b)
{
	const struct order *x = a, *y = b;

	if (x->hlc != y->hlc)
		return x->hlc < y->hlc ? -1 : 1;
	return x->at < y->at ? -1 : x->at > y->at;
}

/* A version 5 payload into changes, counting in *n: the tables' rows in
 * order, then sorted by HLC, stably (PROTOCOL.md, "Payload, version 5"). */
static int open_columns(const cJSON *arr, const struct changeset_header *h, struct change *changes,
			size_t *n, struct fs_error *err)
{
	struct order *order = NULL;
	size_t g = 0, in_order = 1;
	int r;

	for (const cJSON *t = arr->child; t; t = t->next, g++)
		if ((r = open_table(t, g, h, changes, n, err)) < 0)
			return r;
	if (*n != h->count)
		return fs_error_set(err, -FS_EFORMAT, "change set: payload is not %u changes",
				    h->count);
	/* One table, or tables whose HLCs do not interleave: in order. */
	while (in_order < *n && changes[in_order - 1].hlc <= changes[in_order].hlc)
		in_order++;
	if (in_order >= *n)
		return 0;
	if (!(order = calloc(*n, sizeof(*order))))
		return fs_error_set(err, -ENOMEM, "change set: out of memory");
	for (size_t i = 0; i < *n; i++)
		order[i] = (struct order){ changes[i].hlc, i };
	qsort(order, *n, sizeof(*order), order_cmp);
	/* changes[i] = old changes[order[i].at], in place, one cycle of the
	 * permutation at a time; a slot done is marked at = its own index.
	 * The values move with their changes: nothing is copied or freed. */
	for (size_t i = 0; i < *n; i++) {
		struct change first;
		size_t j = i;

		if (order[i].at == i)
			continue;
		first = changes[i];
		while (order[j].at != i) {
			size_t from = order[j].at;

			changes[j] = changes[from];
			order[j].at = j;
			j = from;
		}
		changes[j] = first;
		order[j].at = j;
	}
	free(order);
	return 0;
}

/* A payload of versions 1 to 3 (one row per change, as many rows as the
 * header counts) into changes, counting in *n as open_grouped does. */
static int open_rows(const cJSON *arr, const struct changeset_header *h, struct change *changes,
		     size_t *n, struct fs_error *err)
{
	for (const cJSON *row = arr->child; row; row = row->next, (*n)++) {
		int r = changeset_change_from_row(row, h->version >= 3 ? 6 : 5, h->hlc_min,
						  h->hlc_max, &changes[*n]);

		if (r == 0 && h->version >= 3)
			r = changeset_form_version_from(cJSON_GetArrayItem(row, 5),
							&changes[*n].form_version);
		if (r < 0)
			return fs_error_set(err, r, "change set: change %zu is malformed", *n + 1);
	}
	return 0;
}

int changeset_payload_open(const char *text, size_t tlen, const struct changeset_header *h,
			   struct change **ret_changes, size_t *ret_n, struct fs_error *err)
{
	struct change *changes = NULL;
	cJSON *arr = NULL;
	size_t n = 0, slots = 0;
	int r;

	if (h->count == 0 || h->count > CHANGESET_MAX_CHANGES || h->version < 1 ||
	    h->version > CHANGESET_VERSION_COLUMNS)
		return fs_error_set(err, -FS_EUSAGE, "change set: version %u, %u changes",
				    h->version, h->count);
	/* The tree is bounded before it is built: a few hundred bytes of
	 * zstd can expand to millions of empty arrays. */
	if (changeset_payload_nodes(text, tlen) > CHANGESET_MAX_NODES)
		return fs_error_set(err, -FS_ELIMIT,
				    "change set: payload of more than %d JSON values",
				    CHANGESET_MAX_NODES);
	arr = cJSON_ParseWithLength(text, tlen);
	if (!cJSON_IsArray(arr) || (h->version < CHANGESET_VERSION_GROUPED &&
				    (size_t)cJSON_GetArraySize(arr) != h->count)) {
		r = fs_error_set(err, -FS_EFORMAT, "change set: payload is not %u changes",
				 h->count);
		goto out;
	}
	changes = calloc(h->count, sizeof(*changes));
	/* Freed whole on failure: a change whose value is copied may still
	 * be refused (its form version), before n counts it. */
	slots = h->count;
	if (!changes) {
		r = fs_error_set(err, -ENOMEM, "change set: out of memory");
		goto out;
	}
	if (h->version == CHANGESET_VERSION_COLUMNS)
		r = open_columns(arr, h, changes, &n, err);
	else if (h->version == CHANGESET_VERSION_GROUPED)
		r = open_grouped(arr, h, changes, &n, err);
	else
		r = open_rows(arr, h, changes, &n, err);
	if (r < 0)
		goto out;
	*ret_changes = changes;
	*ret_n = n;
	changes = NULL;
out:
	changes_free(changes, slots);
	cJSON_Delete(arr);
	return r;
}

int changeset_open(const uint8_t *buf, size_t len,
		   const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
		   const uint8_t hq_box_sk[crypto_box_SECRETKEYBYTES], struct change **ret_changes,
		   size_t *ret_n, struct fs_error *err)
{
	struct changeset_header h;
	char *text = NULL;
	size_t tlen = 0;
	int r;

	if ((r = changeset_parse(buf, len, &h, err)) < 0)
		return r;
	if ((r = payload_unseal(buf, len, hq_box_pk, hq_box_sk, &text, &tlen, err)) < 0)
		return r;
	r = changeset_payload_open(text, tlen, &h, ret_changes, ret_n, err);
	sodium_memzero(text, tlen);
	free(text);
	return r;
}
