/* formsrc.h - where a program's form definitions come from.
 *
 * The forms in conf/forms/ are built into both programs
 * (cmake/embed_forms.cmake): a binary carries the forms it was built and
 * tested with, so it runs from the build tree, or with its data files
 * missing, and needs no path to find them.  A forms directory ([forms]
 * dir, --forms-dir) overrides them whole: a programme adds a field by
 * pointing both sides at its own <collection>.json files, no rebuild.
 *
 * dir NULL means the built-in forms throughout.  The built-in table is
 * read-only data; everything here is thread-safe.  Errors name the form
 * (its path, or "built-in form NAME") and why.
 */
#ifndef FS_FORMSRC_H
#define FS_FORMSRC_H

#include <stddef.h>

#include "crypto/fserr.h"
#include "sync/form.h"

/* One built-in definition: the collection (its file name) and the JSON. */
struct formsrc_builtin {
	const char *collection;
	const unsigned char *json;
	size_t len;
};

/* Generated at build time, in file-name order. */
extern const struct formsrc_builtin formsrc_builtins[];
extern const size_t formsrc_builtin_count;

/* How to say where the forms come from: dir, or "the built-in forms". */
const char *formsrc_describe(const char *dir);

/* The form for collection: DIR/<collection>.json, or the built-in one.  A
 * definition naming another collection is refused (the file name picks
 * where records are filed).  -ENOENT when there is no such form. */
int formsrc_load(const char *dir, const char *collection, struct form **ret,
		 struct fs_error *err) FS_WUR;

/* Every form: each DIR/<name>.json in name order, or the built-in table.
 * Calls fn(form, arg) for each; fn takes ownership of the form and returns
 * 0 to go on or a negative error to stop, which is returned.  -FS_EFORMAT
 * when there are none. */
int formsrc_load_all(const char *dir, int (*fn)(struct form *f, void *arg), void *arg,
		     struct fs_error *err) FS_WUR;

#endif
