/* ini.h - strict INI configuration files, through libinih.
 *
 * Both programs describe their keys in a table and load a file through
 * ini_load().  Strict on purpose: an unknown section or key, an empty
 * value or a number out of range is an error naming the line, so a typo
 * never silently falls back to a default.  Keys set in the file replace
 * earlier values.  Strings are strdup'd into the caller's slots; the
 * caller frees them.  Thread-safe for distinct slots.
 */
#ifndef FS_INI_H
#define FS_INI_H

#include <stddef.h>

#include "crypto/fserr.h"

struct ini_key {
	const char *section; /* "store" for [store] */
	const char *name;    /* the key */
	char **text;	     /* a string value goes here, or NULL */
	unsigned *number;    /* else a number from 1 to max goes here */
	unsigned max;
};

/* A missing file is -errno (-ENOENT), for callers whose file is optional;
 * anything wrong inside it is -FS_EFORMAT with "config PATH: line N: why". */
int ini_load(const char *path, const struct ini_key *keys, size_t n, struct fs_error *err) FS_WUR;

/* Replace *slot with a copy of value; -ENOMEM leaves *slot unchanged. */
int ini_set(char **slot, const char *value) FS_WUR;

#endif
