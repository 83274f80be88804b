/* bench_codec.c - how a change set's payload is compressed, measured
 * against today's codec (zstd level 19 within a 128 KiB window, no
 * dictionary: sync/envelope.h) in the same run.
 *
 * For sets of 10, 100 and 1,000 synthetic visits (bench/synthvisit.h),
 * each variant prints the wire bytes per visit (compressed payload plus
 * the set's fixed bytes: header, binding, seal and signature) against
 * the raw JSON of the same visits, its compression and decompression
 * speed, and the memory its contexts hold (ZSTD_sizeof_*):
 *   - zstd levels 1, 3 and 19, in zstd's own window;
 *   - the same with a dictionary trained by ZDICT on other visits of the
 *     same generator (a fresh random draw, a year later);
 *   - level 3 and 19 with the rows grouped by record: change set
 *     version 4 (CHANGESET_VERSION_GROUPED), one row per record with an
 *     object of its fields, where version 3 has one row per field;
 *   - the same rows by column: version 5 (CHANGESET_VERSION_COLUMNS);
 *   - a dictionary made from the visits form alone (no record in it).
 * The trained dictionary is trained and tested on one generator, which
 * flatters it: real visits vary more than sixteen words.  Nothing is
 * asserted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <zdict.h>
#include <zstd.h>

#include "bench/synthvisit.h"
#include "sync/changeset.h"
#include "sync/formsrc.h"
#include "sync/envelope.h"

/* What a set carries besides its compressed payload. */
#define SET_FIXED_BYTES                                                                            \
	(CHANGESET_HEADER_BYTES + CHANGESET_BINDING_BYTES + crypto_box_SEALBYTES +                 \
	 CHANGESET_SIG_BYTES)
#define VISITS 5000
#define TRAIN_SETS 2000 /* samples of TRAIN_BATCH visits each */
#define TRAIN_BATCH 10

struct corpus {
	char **text;
	size_t *len;
	size_t sets, visits, raw;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void corpus_free(struct corpus *c)
{
	for (size_t i = 0; c->text && i < c->sets; i++)
		free(c->text[i]);
	free(c->text);
	free(c->len);
	memset(c, 0, sizeof(*c));
}

/* visits in sets of batch, made from Unix ms on (synthvisit_later);
 * payloads as the encoder prints them in version. */
static int corpus_make(struct corpus *c, size_t batch, size_t visits, uint64_t ms, int version)
{
	struct synthvisit *v = calloc(batch, sizeof(*v));
	struct change *ch = calloc(batch * SYNTHVISIT_FIELDS, sizeof(*ch));
	int r = -1;

	memset(c, 0, sizeof(*c));
	c->sets = visits / batch;
	c->visits = c->sets * batch;
	c->text = calloc(c->sets, sizeof(*c->text));
	c->len = calloc(c->sets, sizeof(*c->len));
	if (!v || !ch || !c->text || !c->len)
		goto out;
	for (size_t s = 0; s < c->sets; s++) {
		for (size_t i = 0; i < batch; i++) {
			synthvisit_make(&v[i], ms = synthvisit_later(ms), (int)i);
			c->raw += synthvisit_raw_json_len(&v[i]);
			if (synthvisit_changes(&v[i], ch + i * SYNTHVISIT_FIELDS) < 0)
				goto out;
		}
		int got = version;

		c->text[s] = changeset_payload_print(ch, batch * SYNTHVISIT_FIELDS, &got);
		if (c->text[s] && got != version) {
			fprintf(stderr, "bench_codec: version %d printed as %d\n", version, got);
			goto out;
		}
		for (size_t i = 0; i < batch * SYNTHVISIT_FIELDS; i++) {
			cJSON_Delete(ch[i].value);
			ch[i].value = NULL;
		}
		if (!c->text[s])
			goto out;
		c->len[s] = strlen(c->text[s]);
	}
	r = 0;
out:
	free(v);
	free(ch);
	if (r < 0) {
		fprintf(stderr, "bench_codec: out of memory\n");
		corpus_free(c);
	}
	return r;
}

/* A dictionary of up to cap bytes from TRAIN_SETS sets of other visits,
 * printed in the shape the payloads it serves have. */
static void *dict_train(size_t cap, int version, size_t *ret_len)
{
	struct corpus t;
	size_t total = 0, off = 0, len;
	char *samples = NULL;
	void *dict = malloc(cap);

	*ret_len = 0;
	if (!dict ||
	    corpus_make(&t, TRAIN_BATCH, TRAIN_SETS * TRAIN_BATCH, 1826000000000ULL, version) < 0) {
		free(dict);
		return NULL;
	}
	for (size_t i = 0; i < t.sets; i++)
		total += t.len[i];
	if (!(samples = malloc(total))) {
		len = (size_t)-1;
		goto out;
	}
	for (size_t i = 0; i < t.sets; off += t.len[i], i++)
		memcpy(samples + off, t.text[i], t.len[i]);
	len = ZDICT_trainFromBuffer(dict, cap, samples, t.len, (unsigned)t.sets);
	if (ZDICT_isError(len))
		fprintf(stderr, "bench_codec: train: %s\n", ZDICT_getErrorName(len));
out:
	free(samples);
	corpus_free(&t);
	if (len == (size_t)-1 || ZDICT_isError(len)) {
		free(dict);
		return NULL;
	}
	*ret_len = len;
	return dict;
}

struct result {
	double wire_per_visit, raw_per_visit, c_mbs, d_mbs;
	size_t c_mem, d_mem;
};

/* Compress and decompress every set of c with one context each, as a
 * device packs and HQ opens them in turn. */
static int measure(const struct corpus *c, int level, int window_log, const void *dict,
		   size_t dict_len, struct result *res)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	ZSTD_CDict *cd = NULL;
	ZSTD_DDict *dd = NULL;
	size_t cap = 0, in = 0, out = 0;
	uint8_t **z = calloc(c->sets, sizeof(*z));
	size_t *zlen = calloc(c->sets, sizeof(*zlen));
	char *back = NULL;
	double t0, tc, td;
	int r = -1;

	for (size_t i = 0; i < c->sets; i++)
		cap = c->len[i] > cap ? c->len[i] : cap;
	back = malloc(cap);
	if (!cc || !dc || !z || !zlen || !back)
		goto out;
	if (dict &&
	    (!(cd = ZSTD_createCDict(dict, dict_len, level)) ||
	     !(dd = ZSTD_createDDict(dict, dict_len)) || ZSTD_isError(ZSTD_CCtx_refCDict(cc, cd)) ||
	     ZSTD_isError(ZSTD_DCtx_refDDict(dc, dd))))
		goto out;
	if (!dict && ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level)))
		goto out;
	if (window_log && ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, window_log)))
		goto out;
	t0 = now_s();
	for (size_t i = 0; i < c->sets; i++) {
		if (!(z[i] = malloc(ZSTD_compressBound(c->len[i]))))
			goto out;
		zlen[i] = ZSTD_compress2(cc, z[i], ZSTD_compressBound(c->len[i]), c->text[i],
					 c->len[i]);
		if (ZSTD_isError(zlen[i])) {
			fprintf(stderr, "bench_codec: %s\n", ZSTD_getErrorName(zlen[i]));
			goto out;
		}
		in += c->len[i];
		out += zlen[i];
	}
	tc = now_s() - t0;
	t0 = now_s();
	for (size_t i = 0; i < c->sets; i++) {
		size_t got = ZSTD_decompressDCtx(dc, back, cap, z[i], zlen[i]);

		if (ZSTD_isError(got) || got != c->len[i] || memcmp(back, c->text[i], got)) {
			fprintf(stderr, "bench_codec: set %zu did not come back\n", i);
			goto out;
		}
	}
	td = now_s() - t0;
	res->wire_per_visit = (double)(out + c->sets * SET_FIXED_BYTES) / (double)c->visits;
	res->raw_per_visit = (double)c->raw / (double)c->visits;
	res->c_mbs = (double)in / tc / 1e6;
	res->d_mbs = (double)in / td / 1e6;
	res->c_mem = ZSTD_sizeof_CCtx(cc) + ZSTD_sizeof_CDict(cd);
	res->d_mem = ZSTD_sizeof_DCtx(dc) + ZSTD_sizeof_DDict(dd);
	r = 0;
out:
	for (size_t i = 0; z && i < c->sets; i++)
		free(z[i]);
	free(z);
	free(zlen);
	free(back);
	ZSTD_freeCDict(cd);
	ZSTD_freeDDict(dd);
	ZSTD_freeCCtx(cc);
	ZSTD_freeDCtx(dc);
	if (r < 0)
		fprintf(stderr, "bench_codec: level %d%s failed\n", level,
			dict ? " with a dictionary" : "");
	return r;
}

/* A dictionary made from the visits form alone, as zstd raw content: each
 * field name as a payload prints it and each choice value, and nothing
 * from any record.  The one kind a programme could ship without training
 * on personal data. */
static void *dict_from_form(size_t *ret_len)
{
	const struct formsrc_builtin *b = NULL;
	cJSON *def = NULL, *fields;
	char *out = NULL;
	size_t cap = 16384, len = 0;

	*ret_len = 0;
	for (size_t i = 0; i < formsrc_builtin_count; i++)
		if (!strcmp(formsrc_builtins[i].collection, "visits"))
			b = &formsrc_builtins[i];
	if (!b || !(def = cJSON_ParseWithLength((const char *)b->json, b->len)) ||
	    !(out = malloc(cap)))
		goto out;
	len = (size_t)snprintf(out, cap, "\"visits\",");
	fields = cJSON_GetObjectItemCaseSensitive(def, "fields");
	for (const cJSON *f = fields ? fields->child : NULL; f && len < cap; f = f->next) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
		const cJSON *values = cJSON_GetObjectItemCaseSensitive(f, "values");

		if (!cJSON_IsString(name))
			continue;
		len += (size_t)snprintf(out + len, cap - len, "\"%s\":", name->valuestring);
		for (const cJSON *v = values ? values->child : NULL; v && len < cap; v = v->next)
			if (cJSON_IsString(v))
				len += (size_t)snprintf(out + len, cap - len, "\"%s\",",
							v->valuestring);
	}
	if (len >= cap) {
		free(out);
		out = NULL;
		goto out;
	}
	*ret_len = len;
out:
	cJSON_Delete(def);
	if (!out)
		fprintf(stderr, "bench_codec: no dictionary from the visits form\n");
	return out;
}

enum dict_kind { DICT_NONE, DICT_16K, DICT_64K, DICT_FORM, DICT_KINDS };

struct variant {
	const char *name;
	int level, version; /* of the payload */
	enum dict_kind dict;
	int window_log; /* 0: zstd's own */
};

#define V3 CHANGESET_VERSION
#define V4 CHANGESET_VERSION_GROUPED
#define V5 CHANGESET_VERSION_COLUMNS
#define VERSIONS 3 /* V3 to V5 */

static const struct variant variants[] = {
	{ "zstd 19, 128 KiB window (version 3)", ENVELOPE_ZSTD_LEVEL, V3, DICT_NONE,
	  ENVELOPE_ZSTD_WINDOW_LOG },
	{ "zstd 19", 19, V3, DICT_NONE, 0 },
	{ "zstd 3", 3, V3, DICT_NONE, 0 },
	{ "zstd 1", 1, V3, DICT_NONE, 0 },
	{ "zstd 19 + 16 KiB dictionary", 19, V3, DICT_16K, 0 },
	{ "zstd 3 + 16 KiB dictionary", 3, V3, DICT_16K, 0 },
	{ "zstd 19 + 64 KiB dictionary", 19, V3, DICT_64K, 0 },
	{ "zstd 3 + 64 KiB dictionary", 3, V3, DICT_64K, 0 },
	{ "zstd 1 + 64 KiB dictionary", 1, V3, DICT_64K, 0 },
	{ "zstd 19, rows by record (version 4)", 19, V4, DICT_NONE, ENVELOPE_ZSTD_WINDOW_LOG },
	{ "zstd 3, rows by record", 3, V4, DICT_NONE, 0 },
	{ "zstd 19 + 64 KiB dictionary, rows by record", 19, V4, DICT_64K, 0 },
	{ "zstd 3 + 64 KiB dictionary, rows by record", 3, V4, DICT_64K, 0 },
	{ "zstd 19 + form dictionary, rows by record", 19, V4, DICT_FORM, 0 },
	{ "zstd 19, by column (version 5)", 19, V5, DICT_NONE, ENVELOPE_ZSTD_WINDOW_LOG },
	{ "zstd 3, by column", 3, V5, DICT_NONE, 0 },
	{ "zstd 19 + 64 KiB dictionary, by column", 19, V5, DICT_64K, 0 },
	{ "zstd 19 + form dictionary, by column", 19, V5, DICT_FORM, 0 },
	{ "zstd 3 + form dictionary, by column", 3, V5, DICT_FORM, 0 },
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

/* The dictionary of kind for payloads of version, made when first asked. */
static int dict_get(void *dict[VERSIONS][DICT_KINDS], size_t len[VERSIONS][DICT_KINDS], int version,
		    enum dict_kind kind)
{
	void **d = &dict[version - V3][kind];

	if (kind == DICT_NONE || *d)
		return 0;
	if (kind == DICT_FORM)
		*d = dict_from_form(&len[version - V3][kind]);
	else
		*d = dict_train(kind == DICT_64K ? 64 * 1024 : 16 * 1024, version,
				&len[version - V3][kind]);
	return *d ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const size_t batches[] = { 10, 100, 1000 };
	void *dict[VERSIONS][DICT_KINDS] = { { NULL } };
	size_t dict_len[VERSIONS][DICT_KINDS] = { { 0 } };
	int r = 1;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr,
			"usage: bench_codec\n"
			"  a change set's payload by zstd level, dictionary and row shape,\n"
			"  against version 3's level 19 in the same run\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	if (sodium_init() < 0)
		return 1;
	if (dict_get(dict, dict_len, V3, DICT_16K) < 0 ||
	    dict_get(dict, dict_len, V3, DICT_64K) < 0 ||
	    dict_get(dict, dict_len, V5, DICT_FORM) < 0)
		goto out;
	printf("bench_codec: %d synthetic visits per batch size; dictionaries of %zu and %zu "
	       "bytes trained on %d other sets of %d; %zu bytes from the visits form\n",
	       VISITS, dict_len[0][DICT_16K], dict_len[0][DICT_64K], TRAIN_SETS, TRAIN_BATCH,
	       dict_len[V5 - V3][DICT_FORM]);
	for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		struct corpus c[VERSIONS] = { { 0 } };
		struct result base = { 0 };

		for (int v = V3; v <= V5; v++)
			if (corpus_make(&c[v - V3], batches[b], VISITS, 1795000000000ULL, v) < 0)
				goto out_batch;
		printf("sets of %zu visits: %-44s %9s %9s %10s %10s %9s %9s\n", batches[b],
		       "variant", "B/visit", "vs JSON", "pack MB/s", "open MB/s", "pack mem",
		       "open mem");
		for (size_t v = 0; v < NVARIANTS; v++) {
			const struct variant *x = &variants[v];
			int at = x->version - V3;
			struct result res;

			/* Each row shape needs a dictionary of its own. */
			if (dict_get(dict, dict_len, x->version, x->dict) < 0 ||
			    measure(&c[at], x->level, x->window_log, dict[at][x->dict],
				    dict_len[at][x->dict], &res) < 0)
				goto out_batch;
			if (v == 0)
				base = res;
			printf("sets of %zu visits: %-44s %9.1f %9.3f %10.1f %10.1f %8zuK %8zuK\n",
			       batches[b], x->name, res.wire_per_visit,
			       res.wire_per_visit / res.raw_per_visit, res.c_mbs, res.d_mbs,
			       res.c_mem / 1024, res.d_mem / 1024);
			if (batches[b] == 100 && v > 0)
				printf("row\tchange set codec, sets of 100: %s\t%.1f B/visit (%.3f "
				       "of JSON), packs %.1f MB/s\tversion 3: %.1f B (%.3f), %.1f "
				       "MB/s\t%.2f\n",
				       x->name, res.wire_per_visit,
				       res.wire_per_visit / res.raw_per_visit, res.c_mbs,
				       base.wire_per_visit,
				       base.wire_per_visit / base.raw_per_visit, base.c_mbs,
				       res.wire_per_visit / base.wire_per_visit);
		}
		for (int v = 0; v < VERSIONS; v++)
			corpus_free(&c[v]);
		continue;
	out_batch:
		for (int v = 0; v < VERSIONS; v++)
			corpus_free(&c[v]);
		goto out;
	}
	r = 0;
out:
	for (int g = 0; g < VERSIONS; g++)
		for (int k = 0; k < DICT_KINDS; k++)
			free(dict[g][k]);
	return r;
}
