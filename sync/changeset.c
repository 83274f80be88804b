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
 * CHANGESET_MAX_ROW_FIELDS, starts a new row. */
static int same_row(const struct change *a, const struct change *b)
{
	return !strcmp(a->record_id, b->record_id) && !strcmp(a->collection, b->collection) &&
	       a->hlc == b->hlc && a->form_version == b->form_version;
}

static char *payload_print_grouped(const struct change *changes, size_t n)
{
	cJSON *arr = cJSON_CreateArray(), *fields = NULL, *row, *v;
	const struct change *head = NULL;
	char hlc[HLC_TEXT_LEN + 1], *text = NULL;
	size_t in_row = 0;

	if (!arr)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct change *c = &changes[i];

		if (!head || !same_row(head, c) || in_row == CHANGESET_MAX_ROW_FIELDS ||
		    cJSON_GetObjectItemCaseSensitive(fields, c->field)) {
			hlc_format(c->hlc, hlc);
			if (!append(arr, row = cJSON_CreateArray()) ||
			    !append(row, cJSON_CreateString(c->record_id)) ||
			    !append(row, cJSON_CreateString(c->collection)) ||
			    !append(row, cJSON_CreateString(hlc)) ||
			    !append(row, cJSON_CreateNumber((double)c->form_version)) ||
			    !append(row, fields = cJSON_CreateObject()))
				goto out;
			head = c;
			in_row = 0;
		}
		v = c->value ? cJSON_Duplicate(c->value, 1) : cJSON_CreateNull();
		if (!v || !cJSON_AddItemToObject(fields, c->field, v)) {
			cJSON_Delete(v);
			goto out;
		}
		in_row++;
	}
	text = cJSON_PrintUnformatted(arr);
out:
	cJSON_Delete(arr);
	return text;
}

char *changeset_payload_print(const struct change *changes, size_t n, int version)
{
	cJSON *arr;
	char *text = NULL;

	if (version == CHANGESET_VERSION_GROUPED)
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
	unsigned version = h->version ? h->version : CHANGESET_VERSION;
	char *payload = NULL;
	int r = 0;

	if (n == 0 || n > CHANGESET_MAX_CHANGES || h->seq == 0 ||
	    (version != CHANGESET_VERSION && version != CHANGESET_VERSION_GROUPED))
		return fs_error_set(err, -FS_EUSAGE,
				    "change set: %zu changes, sequence %llu, version %u", n,
				    (unsigned long long)h->seq, version);
	for (size_t i = 0; i < n; i++) {
		lo = changes[i].hlc < lo ? changes[i].hlc : lo;
		hi = changes[i].hlc > hi ? changes[i].hlc : hi;
	}
	payload = changeset_payload_print(changes, n, (int)version);
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
				CHANGESET_VERSION_UNBOUND, CHANGESET_VERSION_GROUPED, 0, &f, err)) <
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

int changeset_open(const uint8_t *buf, size_t len,
		   const uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES],
		   const uint8_t hq_box_sk[crypto_box_SECRETKEYBYTES], struct change **ret_changes,
		   size_t *ret_n, struct fs_error *err)
{
	struct changeset_header h;
	struct change *changes = NULL;
	char *text = NULL;
	cJSON *arr = NULL;
	size_t tlen = 0, n = 0, slots = 0;
	int r;

	if ((r = changeset_parse(buf, len, &h, err)) < 0)
		return r;
	if ((r = payload_unseal(buf, len, hq_box_pk, hq_box_sk, &text, &tlen, err)) < 0)
		return r;
	/* The tree is bounded before it is built: a few hundred bytes of
	 * zstd can expand to millions of empty arrays. */
	if (changeset_payload_nodes(text, tlen) > CHANGESET_MAX_NODES) {
		r = fs_error_set(err, -FS_ELIMIT, "change set: payload of more than %d JSON values",
				 CHANGESET_MAX_NODES);
		goto out;
	}
	arr = cJSON_ParseWithLength(text, tlen);
	if (!cJSON_IsArray(arr) ||
	    (h.version < CHANGESET_VERSION_GROUPED && (size_t)cJSON_GetArraySize(arr) != h.count)) {
		r = fs_error_set(err, -FS_EFORMAT, "change set: payload is not %u changes",
				 h.count);
		goto out;
	}
	changes = calloc(h.count, sizeof(*changes));
	/* Freed whole on failure: a change whose value is copied may still
	 * be refused (its form version), before n counts it. */
	slots = h.count;
	if (!changes) {
		r = fs_error_set(err, -ENOMEM, "change set: out of memory");
		goto out;
	}
	if ((r = h.version == CHANGESET_VERSION_GROUPED ? open_grouped(arr, &h, changes, &n, err)
							: open_rows(arr, &h, changes, &n, err)) < 0)
		goto out;
	*ret_changes = changes;
	*ret_n = n;
	changes = NULL;
out:
	changes_free(changes, slots);
	cJSON_Delete(arr);
	if (text)
		sodium_memzero(text, tlen);
	free(text);
	return r;
}
