/* formsrc.c - the built-in forms, or a directory that overrides them. */
#include "sync/formsrc.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *formsrc_describe(const char *dir)
{
	return dir ? dir : "the built-in forms";
}

/* The file name picks the collection records are filed in; a definition
 * that says otherwise would file visits as beneficiaries. */
static int check_collection(struct form **f, const char *origin, const char *collection,
			    struct fs_error *err)
{
	if (!strcmp(form_collection(*f), collection))
		return 0;
	fs_error_set(err, -FS_EFORMAT, "form %s: defines collection '%.64s', expected '%s'", origin,
		     form_collection(*f), collection);
	*f = form_free(*f);
	return -FS_EFORMAT;
}

/* A built-in definition, parsed; its file name must be its collection. */
static int load_builtin(const struct formsrc_builtin *b, struct form **ret, struct fs_error *err)
{
	char origin[96];
	int r;

	snprintf(origin, sizeof(origin), "built-in form %s", b->collection);
	if ((r = form_load_json((const char *)b->json, b->len, origin, ret, err)) < 0)
		return r;
	return check_collection(ret, origin, b->collection, err);
}

int formsrc_load(const char *dir, const char *collection, struct form **ret, struct fs_error *err)
{
	char path[PATH_MAX];
	struct form *f = NULL;
	int r;

	if (!dir) {
		for (size_t i = 0; i < formsrc_builtin_count; i++) {
			if (strcmp(formsrc_builtins[i].collection, collection) != 0)
				continue;
			if ((r = load_builtin(&formsrc_builtins[i], &f, err)) < 0)
				return r;
			*ret = f;
			return 0;
		}
		return fs_error_set(err, -ENOENT, "no built-in form for collection '%.64s'",
				    collection);
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.json", dir, collection) >= sizeof(path))
		return fs_error_set(err, -ENAMETOOLONG, "forms %s: path too long", dir);
	if ((r = form_load_file(path, &f, err)) < 0 ||
	    (r = check_collection(&f, path, collection, err)) < 0)
		return r;
	*ret = f;
	return 0;
}

static int is_definition(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".json");
}

static int load_dir(const char *dir, int (*fn)(struct form *f, void *arg), void *arg,
		    struct fs_error *err)
{
	struct dirent **list = NULL;
	char path[PATH_MAX];
	struct form *f;
	int n, r = 0;

	n = scandir(dir, &list, is_definition, alphasort);
	if (n < 0)
		return fs_error_set(err, -errno, "forms %s: %s", dir, strerror(errno));
	if (n == 0)
		r = fs_error_set(err, -FS_EFORMAT, "forms %s: no *.json definitions", dir);
	for (int i = 0; i < n && r == 0; i++) {
		f = NULL;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name) >=
		    sizeof(path))
			r = fs_error_set(err, -ENAMETOOLONG, "forms %s: path too long", dir);
		else if ((r = form_load_file(path, &f, err)) == 0) {
			list[i]->d_name[strlen(list[i]->d_name) - 5] = '\0'; /* the ".json" */
			if ((r = check_collection(&f, path, list[i]->d_name, err)) == 0)
				r = fn(f, arg);
		}
	}
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return r;
}

int formsrc_load_all(const char *dir, int (*fn)(struct form *f, void *arg), void *arg,
		     struct fs_error *err)
{
	struct form *f;
	int r;

	if (dir)
		return load_dir(dir, fn, arg, err);
	if (formsrc_builtin_count == 0)
		return fs_error_set(err, -FS_EFORMAT, "no built-in forms");
	for (size_t i = 0; i < formsrc_builtin_count; i++) {
		f = NULL;
		if ((r = load_builtin(&formsrc_builtins[i], &f, err)) < 0 || (r = fn(f, arg)) < 0)
			return r;
	}
	return 0;
}
