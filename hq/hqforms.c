/* hqforms.c - HQ's set of forms, one per collection. */
#include "hq/hqforms.h"

#include "sync/formsrc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hq_forms {
	struct form *form[HQFORMS_MAX]; /* owned, in file-name order */
	size_t n;			/* entries in form */
};

struct adding {
	struct hq_forms *fs;
	const char *from; /* for messages: the directory or "the built-in forms" */
	struct fs_error *err;
};

static int add_form(struct form *f, void *arg)
{
	struct adding *a = arg;
	int r;

	if (a->fs->n == HQFORMS_MAX)
		r = fs_error_set(a->err, -FS_ELIMIT, "forms %s: more than %d definitions", a->from,
				 HQFORMS_MAX);
	else if (hqforms_find(a->fs, form_collection(f)))
		r = fs_error_set(a->err, -FS_EFORMAT, "forms %s: collection '%.64s' defined twice",
				 a->from, form_collection(f));
	else {
		a->fs->form[a->fs->n++] = f;
		return 0;
	}
	form_free(f);
	return r;
}

int hqforms_load(const char *dir, struct hq_forms **ret, struct fs_error *err)
{
	struct hq_forms *fs = calloc(1, sizeof(*fs));
	struct adding a = { .fs = fs, .from = formsrc_describe(dir), .err = err };
	int r;

	if (!fs)
		return fs_error_set(err, -ENOMEM, "out of memory");
	if ((r = formsrc_load_all(dir, add_form, &a, err)) < 0)
		goto out;
	*ret = fs;
	fs = NULL;
out:
	hqforms_free(fs);
	return r;
}

const struct form *hqforms_find(const struct hq_forms *fs, const char *collection)
{
	for (size_t i = 0; i < fs->n; i++)
		if (!strcmp(form_collection(fs->form[i]), collection))
			return fs->form[i];
	return NULL;
}

struct hq_forms *hqforms_free(struct hq_forms *fs)
{
	if (!fs)
		return NULL;
	for (size_t i = 0; i < fs->n; i++)
		form_free(fs->form[i]);
	free(fs);
	return NULL;
}

size_t hqforms_count(const struct hq_forms *fs)
{
	return fs ? fs->n : 0;
}

const struct form *hqforms_at(const struct hq_forms *fs, size_t i)
{
	return fs && i < fs->n ? fs->form[i] : NULL;
}

void hqforms_set_version(struct hq_forms *fs, size_t i, uint32_t version)
{
	form_set_version(fs->form[i], version);
}
