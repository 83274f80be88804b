/* hqforms.c - load every form definition in a directory. */
#include "hq/hqforms.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hq_forms {
	struct form *form[HQFORMS_MAX]; /* owned, in file-name order */
	size_t n;                       /* entries in form */
};

static int is_definition(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".json");
}

static int add_form(struct hq_forms *fs, const char *dir, const char *name, struct fs_error *err)
{
	char path[PATH_MAX];
	struct form *f = NULL;
	int r;

	if (fs->n == HQFORMS_MAX)
		return fs_error_set(err, -FS_ELIMIT, "forms %s: more than %d definitions", dir,
				    HQFORMS_MAX);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return fs_error_set(err, -ENAMETOOLONG, "forms %s: path too long", dir);
	if ((r = form_load_file(path, &f, err)) < 0)
		return r;
	if (hqforms_find(fs, form_collection(f))) {
		form_free(f);
		return fs_error_set(err, -FS_EFORMAT, "forms %s: collection defined twice (%s)", dir,
				    name);
	}
	fs->form[fs->n++] = f;
	return 0;
}

int hqforms_load(const char *dir, struct hq_forms **ret, struct fs_error *err)
{
	struct hq_forms *fs = calloc(1, sizeof(*fs));
	struct dirent **list = NULL;
	int n, r = 0;

	if (!fs)
		return fs_error_set(err, -ENOMEM, "out of memory");
	n = scandir(dir, &list, is_definition, alphasort);
	if (n < 0) {
		r = fs_error_set(err, -errno, "forms %s: %s", dir, strerror(errno));
		goto out;
	}
	for (int i = 0; i < n && r == 0; i++)
		r = add_form(fs, dir, list[i]->d_name, err);
	if (r == 0 && fs->n == 0)
		r = fs_error_set(err, -FS_EFORMAT, "forms %s: no *.json definitions", dir);
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	if (r < 0)
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
