/* downset.c - encode, parse, verify and open down-sets (see downset.h).
 *
 * Sections: the payload; encode; parse and verify; open; pull requests.
 */
#include "sync/downset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/bytes.h"
#include "crypto/identity.h"
#include "sync/envelope.h"
#include "sync/utf8.h"

_Static_assert(DOWNSET_DEVICE_HEX - 1 == IDENTITY_ID_HEXLEN, "device ids are identity ids");

/* ---- the payload ------------------------------------------------------ */

/* Append item to arr, taking ownership either way; false on failure. */
static int append(cJSON *arr, cJSON *item)
{
	if (item && cJSON_AddItemToArray(arr, item))
		return 1;
	cJSON_Delete(item);
	return 0;
}

static cJSON *hlc_item(hlc_t t)
{
	char text[HLC_TEXT_LEN + 1];

	hlc_format(t, text);
	return cJSON_CreateString(text);
}

static cJSON *value_item(const cJSON *v)
{
	return v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
}

/* Canonical form: {"scope":[...],"changes":[...],"conflicts":[...],
 * "forms":[...]}, and in version 2 "teams":[...], members in that order,
 * printed by cJSON without spaces. */
static char *payload_print(const struct downset *d, int version)
{
	cJSON *o = cJSON_CreateObject(), *scope = cJSON_CreateArray(), *ch = cJSON_CreateArray(),
	      *co = cJSON_CreateArray(), *fo = cJSON_CreateArray(),
	      *te = version >= 2 ? cJSON_CreateArray() : NULL;
	char *text = NULL;

	if (!o || !scope || !ch || !co || !fo || (version >= 2 && !te)) {
		cJSON_Delete(scope);
		cJSON_Delete(ch);
		cJSON_Delete(co);
		cJSON_Delete(fo);
		cJSON_Delete(te);
		goto out;
	}
	cJSON_AddItemToObject(o, "scope", scope);
	cJSON_AddItemToObject(o, "changes", ch);
	cJSON_AddItemToObject(o, "conflicts", co);
	cJSON_AddItemToObject(o, "forms", fo);
	if (te)
		cJSON_AddItemToObject(o, "teams", te);
	for (size_t i = 0; te && i < d->nteams; i++) {
		cJSON *row = cJSON_CreateArray();

		if (!append(te, row) || !append(row, cJSON_CreateString(d->teams[i].device)) ||
		    !append(row, cJSON_CreateString(d->teams[i].team)))
			goto out;
	}
	for (size_t i = 0; i < d->nscope; i++)
		if (!append(scope, cJSON_CreateString(d->scope[i])))
			goto out;
	for (size_t i = 0; i < d->nchanges; i++) {
		cJSON *row = changeset_change_row(&d->changes[i].c);

		if (!append(ch, row) || !append(row, cJSON_CreateString(d->changes[i].device)))
			goto out;
	}
	for (size_t i = 0; i < d->nconflicts; i++) {
		const struct downset_conflict *c = &d->conflicts[i];
		cJSON *row = cJSON_CreateArray();

		if (!append(co, row) || !append(row, cJSON_CreateString(c->record_id)) ||
		    !append(row, cJSON_CreateString(c->field)) ||
		    !append(row, cJSON_CreateString(c->device_a)) ||
		    !append(row, hlc_item(c->hlc_a)) || !append(row, value_item(c->value_a)) ||
		    !append(row, cJSON_CreateString(c->device_b)) ||
		    !append(row, hlc_item(c->hlc_b)) || !append(row, value_item(c->value_b)))
			goto out;
	}
	for (size_t i = 0; i < d->nforms; i++) {
		const struct downset_form *f = &d->forms[i];
		cJSON *row = cJSON_CreateArray();

		if (!append(fo, row) || !append(row, cJSON_CreateString(f->collection)) ||
		    !append(row, cJSON_CreateNumber(f->version)) ||
		    !append(row, value_item(f->definition)))
			goto out;
	}
	text = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	return text;
}

/* A scope or team name: 1 to max bytes of UTF-8 without control
 * characters. */
static int name_ok(const cJSON *v, size_t max)
{
	size_t n;

	if (!cJSON_IsString(v) || !v->valuestring)
		return 0;
	n = strlen(v->valuestring);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v->valuestring[i] < 0x20 || v->valuestring[i] == 0x7f)
			return 0;
	return n >= 1 && n <= max && utf8_valid(v->valuestring);
}

/* The string at index i of an array row, or NULL. */
static const char *row_str(const cJSON *row, int i)
{
	const cJSON *v = cJSON_GetArrayItem(row, i);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int conflict_from_row(const cJSON *row, struct downset_conflict *c)
{
	const char *id = row_str(row, 0), *field = row_str(row, 1), *da = row_str(row, 2),
		   *ha = row_str(row, 3), *db = row_str(row, 5), *hb = row_str(row, 6);
	char canon[UUID_TEXT_LEN + 1];

	if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 8 || !id || !field || !da || !ha ||
	    !db || !hb)
		return -FS_EFORMAT;
	if (uuid_normalize(id, canon) < 0 || strcmp(canon, id) || !changeset_name_ok(field, 1) ||
	    !identity_id_text_ok(da) || !identity_id_text_ok(db) || hlc_parse(ha, &c->hlc_a) < 0 ||
	    hlc_parse(hb, &c->hlc_b) < 0)
		return -FS_EFORMAT;
	memcpy(c->record_id, canon, sizeof(canon));
	strcpy(c->field, field);
	strcpy(c->device_a, da);
	strcpy(c->device_b, db);
	c->value_a = cJSON_Duplicate(cJSON_GetArrayItem(row, 4), 1);
	c->value_b = cJSON_Duplicate(cJSON_GetArrayItem(row, 7), 1);
	return c->value_a && c->value_b ? 0 : -ENOMEM;
}

static int form_from_row(const cJSON *row, struct downset_form *f)
{
	const char *coll = row_str(row, 0);
	const cJSON *version = cJSON_GetArrayItem(row, 1), *def = cJSON_GetArrayItem(row, 2);

	if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 3 || !coll ||
	    !changeset_name_ok(coll, 0) || changeset_form_version_from(version, &f->version) < 0 ||
	    f->version < 1 || !cJSON_IsObject(def))
		return -FS_EFORMAT;
	strcpy(f->collection, coll);
	return (f->definition = cJSON_Duplicate(def, 1)) ? 0 : -ENOMEM;
}

/* The teams of version 2: [[device, team], ...]. */
static int teams_read(const cJSON *arr, struct downset *d, struct fs_error *err)
{
	const cJSON *it;

	if ((size_t)cJSON_GetArraySize(arr) > DOWNSET_MAX_TEAMS)
		return fs_error_set(err, -FS_EFORMAT, "down-set: more than %d teams",
				    DOWNSET_MAX_TEAMS);
	if (!(d->teams = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*d->teams))))
		return fs_error_set(err, -ENOMEM, "down-set: out of memory");
	cJSON_ArrayForEach(it, arr)
	{
		const char *dev = row_str(it, 0);

		if (cJSON_GetArraySize(it) != 2 || !dev || !identity_id_text_ok(dev) ||
		    !name_ok(cJSON_GetArrayItem(it, 1), DOWNSET_MAX_TEAM_NAME))
			return fs_error_set(err, -FS_EFORMAT, "down-set: team %zu is malformed",
					    d->nteams + 1);
		strcpy(d->teams[d->nteams].device, dev);
		strcpy(d->teams[d->nteams].team, row_str(it, 1));
		d->nteams++;
	}
	return 0;
}

/* The parsed, untrusted payload object into d (header already in d). */
static int payload_read(const cJSON *o, struct downset *d, struct fs_error *err)
{
	static const char *const names[] = { "scope", "changes", "conflicts", "forms", "teams" };
	size_t want = d->h.version >= 2 ? 5 : 4, i = 0, k;
	const cJSON *m[5] = { 0 }, *it;
	int r;

	/* Exactly the members of the version, in order, each once. */
	if (!cJSON_IsObject(o))
		return fs_error_set(err, -FS_EFORMAT, "down-set: payload is not a JSON object");
	for (it = o->child; it; it = it->next, i++) {
		if (i >= want || !it->string || strcmp(it->string, names[i]) || !cJSON_IsArray(it))
			return fs_error_set(err, -FS_EFORMAT,
					    "down-set: payload members are not those of "
					    "version %u",
					    (unsigned)d->h.version);
		m[i] = it;
	}
	if (i != want)
		return fs_error_set(err, -FS_EFORMAT, "down-set: payload member missing");
	if (m[4] && (r = teams_read(m[4], d, err)) < 0)
		return r;
	d->nscope = (size_t)cJSON_GetArraySize(m[0]);
	if (d->nscope < 1 || d->nscope > DOWNSET_MAX_SCOPE)
		return fs_error_set(err, -FS_EFORMAT, "down-set: a scope of %zu names", d->nscope);
	if ((size_t)cJSON_GetArraySize(m[1]) + (size_t)cJSON_GetArraySize(m[2]) +
		    (size_t)cJSON_GetArraySize(m[3]) !=
	    d->h.count)
		return fs_error_set(err, -FS_EFORMAT, "down-set: payload is not %u entries",
				    d->h.count);
	if (!(d->scope = calloc(d->nscope, sizeof(*d->scope))) ||
	    !(d->changes = calloc((size_t)cJSON_GetArraySize(m[1]) + 1, sizeof(*d->changes))) ||
	    !(d->conflicts = calloc((size_t)cJSON_GetArraySize(m[2]) + 1, sizeof(*d->conflicts))) ||
	    !(d->forms = calloc((size_t)cJSON_GetArraySize(m[3]) + 1, sizeof(*d->forms))))
		return fs_error_set(err, -ENOMEM, "down-set: out of memory");
	k = 0;
	cJSON_ArrayForEach(it, m[0])
	{
		if (!name_ok(it, DOWNSET_MAX_SCOPE_NAME))
			return fs_error_set(err, -FS_EFORMAT,
					    "down-set: scope name %zu is malformed", k + 1);
		if (!(d->scope[k++] = strdup(it->valuestring)))
			return fs_error_set(err, -ENOMEM, "down-set: out of memory");
	}
	cJSON_ArrayForEach(it, m[1])
	{
		struct downset_change *c = &d->changes[d->nchanges];
		const char *dev = row_str(it, 5);

		if ((r = changeset_change_from_row(it, 6, 0, UINT64_MAX, &c->c)) < 0)
			return fs_error_set(err, r, "down-set: change %zu is malformed",
					    d->nchanges + 1);
		d->nchanges++;
		if (!dev || !identity_id_text_ok(dev))
			return fs_error_set(err, -FS_EFORMAT, "down-set: change %zu is malformed",
					    d->nchanges);
		strcpy(c->device, dev);
	}
	cJSON_ArrayForEach(it, m[2])
	{
		r = conflict_from_row(it, &d->conflicts[d->nconflicts]);
		d->nconflicts++;
		if (r < 0)
			return fs_error_set(err, r, "down-set: conflict %zu is malformed",
					    d->nconflicts);
	}
	cJSON_ArrayForEach(it, m[3])
	{
		r = form_from_row(it, &d->forms[d->nforms]);
		d->nforms++;
		if (r < 0)
			return fs_error_set(err, r, "down-set: form %zu is malformed", d->nforms);
	}
	return 0;
}

void downset_clear(struct downset *d)
{
	if (!d)
		return;
	for (size_t i = 0; d->scope && i < d->nscope; i++)
		free(d->scope[i]);
	for (size_t i = 0; d->changes && i < d->nchanges; i++)
		cJSON_Delete(d->changes[i].c.value);
	for (size_t i = 0; d->conflicts && i < d->nconflicts; i++) {
		cJSON_Delete(d->conflicts[i].value_a);
		cJSON_Delete(d->conflicts[i].value_b);
	}
	for (size_t i = 0; d->forms && i < d->nforms; i++)
		cJSON_Delete(d->forms[i].definition);
	free(d->scope);
	free(d->changes);
	free(d->conflicts);
	free(d->forms);
	free(d->teams);
	memset(d, 0, sizeof(*d));
}

/* ---- encode ----------------------------------------------------------- */

int downset_encode(const struct downset *d, const uint8_t device_box_pk[crypto_box_PUBLICKEYBYTES],
		   const uint8_t hq_sign_sk[crypto_sign_SECRETKEYBYTES], uint8_t **ret_buf,
		   size_t *ret_len, struct fs_error *err)
{
	size_t count = d->nchanges + d->nconflicts + d->nforms, plen, slen = 0, total;
	int version = d->h.version ? d->h.version : DOWNSET_VERSION_MIN, r = 0;
	uint8_t *sealed = NULL, *out = NULL;
	struct envelope_frame frame = { 0 };
	char *payload = NULL;

	if (d->h.seq == 0 || d->nscope < 1 || d->nscope > DOWNSET_MAX_SCOPE ||
	    (d->h.flags & ~DOWNSET_FLAG_MORE) || version > DOWNSET_VERSION ||
	    (version < 2 && d->nteams))
		return fs_error_set(err, -FS_EUSAGE,
				    "down-set: version %d, %zu scope names, sequence %llu", version,
				    d->nscope, (unsigned long long)d->h.seq);
	if (d->nteams > DOWNSET_MAX_TEAMS)
		return fs_error_set(err, -FS_ELIMIT, "down-set: %zu teams, more than %d", d->nteams,
				    DOWNSET_MAX_TEAMS);
	/* Too many entries is a limit, like too many bytes: the maker sends
	 * fewer at a time. */
	if (count > DOWNSET_MAX_ENTRIES)
		return fs_error_set(err, -FS_ELIMIT, "down-set: %zu entries, more than %d", count,
				    DOWNSET_MAX_ENTRIES);
	if (!(payload = payload_print(d, version)))
		return fs_error_set(err, -ENOMEM, "down-set: out of memory");
	plen = strlen(payload);
	if (plen > DOWNSET_MAX_PAYLOAD ||
	    changeset_payload_nodes(payload, plen) > DOWNSET_MAX_NODES) {
		r = fs_error_set(err, -FS_ELIMIT, "down-set: payload over the limit");
		goto out;
	}
	if ((r = envelope_seal(NULL, 0, payload, plen, ENVELOPE_ZSTD_LEVEL_FAST, 0, device_box_pk,
			       &sealed, &slen, "down-set", err)) < 0)
		goto out;
	total = DOWNSET_HEADER_BYTES + slen + DOWNSET_SIG_BYTES;
	if (total > DOWNSET_MAX_BYTES) {
		r = fs_error_set(err, -FS_ELIMIT, "down-set: %zu bytes, more than %d", total,
				 DOWNSET_MAX_BYTES);
		goto out;
	}
	if (!(out = calloc(1, total))) {
		r = fs_error_set(err, -ENOMEM, "down-set: out of memory");
		goto out;
	}
	frame.version = (uint8_t)version;
	frame.flags = d->h.flags;
	memcpy(frame.device, d->h.device, CHANGESET_DEVICE_BYTES);
	frame.seq = d->h.seq;
	memcpy(frame.prev, d->h.prev, CHANGESET_HASH_BYTES);
	frame.word[0] = d->h.cursor;
	frame.word[1] = d->h.hq_time_ms;
	frame.count = (uint32_t)count;
	envelope_frame_put(out, DOWNSET_MAGIC, &frame, slen);
	memcpy(out + DOWNSET_HEADER_BYTES, sealed, slen);
	crypto_sign_detached(out + total - DOWNSET_SIG_BYTES, NULL, out, total - DOWNSET_SIG_BYTES,
			     hq_sign_sk);
	*ret_buf = out;
	*ret_len = total;
	out = NULL;
out:
	free(out);
	free(sealed);
	sodium_memzero(payload, strlen(payload));
	cJSON_free(payload);
	return r;
}

/* ---- parse and verify ------------------------------------------------- */

int downset_parse(const uint8_t *buf, size_t len, struct downset_header *ret, struct fs_error *err)
{
	struct envelope_frame f;
	struct downset_header h;
	int r;

	if ((r = envelope_parse(buf, len, DOWNSET_MAGIC, "down-set", DOWNSET_MAX_BYTES,
				DOWNSET_VERSION_MIN, DOWNSET_VERSION, DOWNSET_FLAG_MORE, &f, err)) <
	    0)
		return r;
	h.version = f.version;
	h.flags = f.flags;
	memcpy(h.device, f.device, CHANGESET_DEVICE_BYTES);
	h.seq = f.seq;
	memcpy(h.prev, f.prev, CHANGESET_HASH_BYTES);
	h.cursor = f.word[0];
	h.hq_time_ms = f.word[1];
	h.count = f.count;
	if (h.count > DOWNSET_MAX_ENTRIES)
		return fs_error_set(err, -FS_EFORMAT, "down-set: %u entries, more than %d", h.count,
				    DOWNSET_MAX_ENTRIES);
	*ret = h;
	return 0;
}

int downset_verify(const uint8_t *buf, size_t len,
		   const uint8_t hq_sign_pk[crypto_sign_PUBLICKEYBYTES])
{
	return envelope_verify(buf, len, DOWNSET_MAX_BYTES, hq_sign_pk);
}

/* ---- open ------------------------------------------------------------- */

int downset_open(const uint8_t *buf, size_t len,
		 const uint8_t device_box_pk[crypto_box_PUBLICKEYBYTES],
		 const uint8_t device_box_sk[crypto_box_SECRETKEYBYTES], struct downset *ret,
		 struct fs_error *err)
{
	struct downset d = { 0 };
	char *text = NULL;
	cJSON *o = NULL;
	size_t tlen = 0;
	int r;

	if ((r = downset_parse(buf, len, &d.h, err)) < 0)
		return r;
	if ((r = envelope_open(buf + DOWNSET_HEADER_BYTES,
			       len - DOWNSET_HEADER_BYTES - DOWNSET_SIG_BYTES, device_box_pk,
			       device_box_sk, NULL, 0, DOWNSET_MAX_PAYLOAD, &text, &tlen,
			       "down-set", err)) < 0)
		return r;
	/* The tree is bounded before it is built. */
	if (changeset_payload_nodes(text, tlen) > DOWNSET_MAX_NODES) {
		r = fs_error_set(err, -FS_ELIMIT, "down-set: payload of more than %d JSON values",
				 DOWNSET_MAX_NODES);
		goto out;
	}
	if (!(o = cJSON_ParseWithLength(text, tlen))) {
		r = fs_error_set(err, -FS_EFORMAT, "down-set: payload is not JSON");
		goto out;
	}
	if ((r = payload_read(o, &d, err)) < 0)
		goto out;
	*ret = d;
	memset(&d, 0, sizeof(d));
out:
	downset_clear(&d);
	cJSON_Delete(o);
	sodium_memzero(text, tlen);
	free(text);
	return r;
}

/* ---- pull requests ------------------------------------------------------ */

void downset_pull_request(const uint8_t device[CHANGESET_DEVICE_BYTES], uint64_t after_seq,
			  const uint8_t *after_hash, uint64_t now_ms,
			  const uint8_t sign_sk[crypto_sign_SECRETKEYBYTES],
			  uint8_t out[DOWNSET_PULL_BYTES])
{
	memset(out, 0, DOWNSET_PULL_BYTES);
	memcpy(out, DOWNSET_PULL_MAGIC, 4);
	out[4] = DOWNSET_PULL_VERSION;
	memcpy(out + 8, device, CHANGESET_DEVICE_BYTES);
	bytes_put_be(out + 24, after_seq, 8);
	if (after_hash)
		memcpy(out + 32, after_hash, CHANGESET_HASH_BYTES);
	bytes_put_be(out + 64, now_ms, 8);
	crypto_sign_detached(out + 72, NULL, out, 72, sign_sk);
}
