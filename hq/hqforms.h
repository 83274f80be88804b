/* hqforms.h - the form definitions HQ validates and exports against.
 *
 * The built-in forms, or with a directory every <collection>.json in it
 * (sync/formsrc.h).  A collection defined twice, more than HQFORMS_MAX
 * definitions, or a broken one is an error (-FS_EFORMAT; -errno when the
 * directory cannot be read).  A loaded set is immutable and may be shared
 * between threads.
 */
#ifndef FS_HQFORMS_H
#define FS_HQFORMS_H

#include <stddef.h>

#include "crypto/fserr.h"
#include "sync/form.h"

#define HQFORMS_MAX 64

struct hq_forms;

/* dir NULL: the built-in forms. */
int hqforms_load(const char *dir, struct hq_forms **ret, struct fs_error *err) FS_WUR;

/* The form of a collection, or NULL when none is defined. */
const struct form *hqforms_find(const struct hq_forms *fs, const char *collection);

/* The forms in file-name order: i < hqforms_count(fs). */
size_t hqforms_count(const struct hq_forms *fs);
const struct form *hqforms_at(const struct hq_forms *fs, size_t i);

/* Mark form i with the version HQ published it as (hq/formpub.h);
 * before the set is shared between threads. */
void hqforms_set_version(struct hq_forms *fs, size_t i, uint32_t version);

/* NULL-safe; returns NULL. */
struct hq_forms *hqforms_free(struct hq_forms *fs);

#endif
