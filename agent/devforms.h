/* devforms.h - the form a device validates each collection with.
 *
 * HQ publishes its form definitions, versioned, in the down-sets it signs
 * (docs/PROTOCOL.md, "Down-set"); a device keeps the latest it received
 * for each collection in its store (hq_forms) and validates with it from
 * then on.  A collection HQ has not sent a form for is validated with the
 * device's own (sync/formsrc.h: the forms directory or the built-in
 * ones), as version 0.  A form reaches the store only through
 * devforms_accept, called for a down-set whose signature by the pinned HQ
 * key has verified: there is no other way in, so a forged or unsigned
 * form cannot replace HQ's.
 *
 * Both calls use the store's connection (one thread at a time, like the
 * store).  Errors name the collection and why, never a value.
 */
#ifndef FS_DEVFORMS_H
#define FS_DEVFORMS_H

#include <stdint.h>

#include "agent/store.h"
#include "crypto/fserr.h"
#include "sync/form.h"

/* The form for collection, with its version set (form_version): HQ's, or
 * the device's own from dir (NULL: built-in) as version 0.  -ENOENT when
 * neither has one.  *ret is the caller's (form_free). */
int devforms_load(struct store *s, const char *dir, const char *collection, struct form **ret,
		  struct fs_error *err) FS_WUR;

/* Keep HQ's definition (canonical JSON text) of collection as version,
 * inside the caller's store transaction.  The definition must be a valid
 * form of that collection (-FS_EFORMAT otherwise, nothing stored).  A
 * version other than the one held replaces it, lower ones included: a
 * down-set is HQ's word, and an HQ restored from a backup publishes its
 * own numbers again; the chain already refuses a replayed down-set. */
int devforms_accept(struct store *s, const char *collection, uint32_t version,
		    const char *definition, struct fs_error *err) FS_WUR;

/* Every collection the device has a form for, in name order: HQ's
 * (from_hq 1, its version) and the device's own that HQ has not replaced
 * (from_hq 0, version 0).  fn's non-zero return stops the walk and is
 * returned. */
typedef int (*devforms_fn)(const char *collection, uint32_t version, int from_hq, void *ctx);
int devforms_list(struct store *s, const char *dir, devforms_fn fn, void *ctx,
		  struct fs_error *err) FS_WUR;

#endif
