/* hqhistory.c - checkpoints and consistency proofs from HQ. */
#include "agent/hqhistory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "agent/skew.h"
#include "sync/merkle.h"
#include "sync/note.h"

#define META_KEY "hq_checkpoint"

struct checkpoint {
	uint64_t size;
	merkle_hash root;
};

/* Verify note's signature by HQ and parse it. */
static int open_checkpoint(const struct hqlink_target *tg, const char *note, struct checkpoint *c,
			   struct fs_error *err)
{
	char origin[NOTE_NAME_MAX + 1], got[NOTE_NAME_MAX + 1];
	size_t text_len;

	checkpoint_origin(tg->hq_sign_pk, origin);
	if (note_verify(note, strlen(note), origin, tg->hq_sign_pk, &text_len) < 0 ||
	    checkpoint_parse(note, text_len, got, &c->size, c->root) < 0 || strcmp(got, origin))
		return fs_error_set(err, -FS_EAUTH,
				    "HQ at %s: an audit checkpoint that does not "
				    "verify with the HQ key pinned at enrolment",
				    tg->url);
	return 0;
}

static int open_held(struct store *s, const struct hqlink_target *tg, const char *note,
		     struct checkpoint *c, struct fs_error *err)
{
	if (open_checkpoint(tg, note, c, err) < 0)
		return fs_error_set(err, -FS_ECORRUPT,
				    "the HQ checkpoint held in %s does not verify", store_path(s));
	return 0;
}

/* The checkpoint this device holds, its note in note (NOTE_MAX bytes);
 * *ret_found 0 when none. */
static int held(struct store *s, const struct hqlink_target *tg, char *note, struct checkpoint *c,
		int *ret_found, struct fs_error *err)
{
	int r;

	if ((r = store_meta_get(s, META_KEY, note, NOTE_MAX, ret_found, err)) < 0 || !*ret_found)
		return r;
	return open_held(s, tg, note, c, err);
}

static int keep(struct store *s, const char *note, struct fs_error *err)
{
	int r = store_begin(s, err);

	if (r < 0)
		return r;
	if ((r = store_meta_put(s, META_KEY, note, err)) < 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s, err);
}

static int rewritten(const struct hqlink_target *tg, uint64_t old_size, uint64_t new_size,
		     struct fs_error *err)
{
	return fs_error_set(err, -FS_EAUTH,
			    "HQ's audit history was REWRITTEN: HQ at %s signed a log of %llu "
			    "entries that does not extend the log of %llu entries this device saw "
			    "before; tell your programme's administrator",
			    tg->url, (unsigned long long)new_size, (unsigned long long)old_size);
}

/* Ask HQ for its latest checkpoint and a proof from `from`; check both
 * against old (when from > 0) and, with keep_it, keep the new one. */
static int fetch_and_check(struct store *s, const struct hqlink_target *tg, struct hqlink *t,
			   const struct checkpoint *old, uint64_t from, int keep_it,
			   struct hqhistory_result *res, struct fs_error *err)
{
	merkle_hash proof[MERKLE_MAX_PROOF];
	struct hqlink_response resp = { 0 };
	char url[HQLINK_URL_MAX + 32], body[64];
	struct checkpoint now;
	const cJSON *note, *arr, *h;
	uint64_t sent_ms;
	cJSON *o = NULL;
	size_t n = 0;
	int r;

	snprintf(url, sizeof(url), "%s/v1/audit/consistency", tg->url);
	snprintf(body, sizeof(body), "{\"from\":%llu}", (unsigned long long)from);
	sent_ms = store_wall_ms(s);
	if ((r = t->post(t, url, "application/json", (const uint8_t *)body, strlen(body),
			 tg->tls_pin[0] ? tg->tls_pin : NULL, &resp, err)) < 0)
		return r;
	if (resp.status == 409) {
		r = rewritten(tg, from, 0, err);
		goto out;
	}
	o = resp.status == 200 && resp.body ? cJSON_ParseWithLength(resp.body, resp.len) : NULL;
	note = cJSON_GetObjectItemCaseSensitive(o, "checkpoint");
	arr = cJSON_GetObjectItemCaseSensitive(o, "proof");
	if (!cJSON_IsString(note) || !cJSON_IsArray(arr) ||
	    cJSON_GetArraySize(arr) > MERKLE_MAX_PROOF) {
		r = fs_error_set(err, -EPROTO,
				 "HQ at %s: no audit checkpoint and proof in its answer "
				 "(HTTP %ld)",
				 tg->url, resp.status);
		goto out;
	}
	cJSON_ArrayForEach(h,
			   arr) if ((r = hqlink_json_base64(h, NULL, proof[n++], MERKLE_HASH_BYTES,
							    MERKLE_HASH_BYTES, NULL)) < 0)
	{
		r = fs_error_set(err, -EPROTO, "HQ at %s: a malformed consistency proof", tg->url);
		goto out;
	}
	if ((r = open_checkpoint(tg, note->valuestring, &now, err)) < 0)
		goto out;
	if (from && (now.size < from || merkle_consistency_verify(from, now.size, old->root,
								  now.root, proof, n) < 0)) {
		r = rewritten(tg, from, now.size, err);
		goto out;
	}
	if (keep_it && (r = keep(s, note->valuestring, err)) < 0)
		goto out;
	res->new_size = now.size;
	res->checked = from > 0;
	res->has_time = skew_from_answer(o, sent_ms, &res->skew_ms);
out:
	cJSON_Delete(o);
	hqlink_response_clear(&resp);
	return r;
}

int hqhistory_observe(struct store *s, const struct hqlink_target *tg, struct hqlink *t,
		      const char *note, struct hqhistory_result *res, struct fs_error *err)
{
	struct checkpoint old, seen;
	char *kept;
	int r, found;

	memset(res, 0, sizeof(*res));
	if (!note)
		return 0;
	kept = malloc(NOTE_MAX);
	if (!kept)
		return fs_error_set(err, -ENOMEM, "out of memory");
	/* Most receipts carry the checkpoint already held: nothing to check. */
	r = store_meta_get(s, META_KEY, kept, NOTE_MAX, &found, err);
	if (r == 0 && found && strcmp(kept, note) == 0) {
		free(kept);
		return 0;
	}
	if (r == 0 && (r = open_checkpoint(tg, note, &seen, err)) == 0 && found)
		r = open_held(s, tg, kept, &old, err);
	free(kept);
	if (r < 0)
		return r;
	if (!found) {
		res->new_size = seen.size;
		return keep(s, note, err);
	}
	res->old_size = res->new_size = old.size;
	if (seen.size == old.size)
		return sodium_memcmp(seen.root, old.root, MERKLE_HASH_BYTES) == 0
			       ? 0
			       : rewritten(tg, old.size, seen.size, err);
	/* An older checkpoint than the one held: two answers from HQ (a push
	 * and a pull, or two processes on one store) checked in the other
	 * order.  Not a rewrite if both are prefixes of HQ's log now: the
	 * older one is checked against HQ's latest, then the one held, which
	 * keeps the latest. */
	if (seen.size < old.size &&
	    (r = fetch_and_check(s, tg, t, &seen, seen.size, 0, res, err)) < 0)
		return r;
	res->old_size = old.size;
	return fetch_and_check(s, tg, t, &old, old.size, 1, res, err);
}

int hqhistory_verify(struct store *s, const struct hqlink_target *tg, struct hqlink *t,
		     struct hqhistory_result *res, struct fs_error *err)
{
	struct checkpoint old = { 0 };
	char *kept = malloc(NOTE_MAX);
	int r, found;

	memset(res, 0, sizeof(*res));
	if (!kept)
		return fs_error_set(err, -ENOMEM, "out of memory");
	r = held(s, tg, kept, &old, &found, err);
	free(kept);
	if (r < 0)
		return r;
	res->old_size = found ? old.size : 0;
	return fetch_and_check(s, tg, t, &old, found ? old.size : 0, 1, res, err);
}
