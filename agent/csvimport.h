/* csvimport.h - importing beneficiaries or visits from CSV (libcsv).
 *
 * The header row names the columns: form fields, plus an optional "id"
 * column whose UUIDs are kept (two teams importing HQ's caseload list get
 * the same ids).  Empty cells are absent fields.  The whole file is one
 * transaction: it imports entirely or not at all.  Each bad row is
 * reported through hooks->row_error with its line number (the line on
 * which the row ends), up to CSVIMPORT_MAX_ERRORS; then the import stops
 * and returns -FS_EVALID.  A line over CSVIMPORT_MAX_LINE bytes, or a row
 * over CSVIMPORT_MAX_ROW, is -FS_ELIMIT.  Cells are never echoed in
 * messages, and are wiped from memory when freed.
 */
#ifndef FS_CSVIMPORT_H
#define FS_CSVIMPORT_H

#include <stdio.h>

#include "agent/store.h"
#include "sync/form.h"

#define CSVIMPORT_MAX_ERRORS 20
#define CSVIMPORT_MAX_CELL (64 * 1024)
/* Bytes of one physical line, and of one row (a quoted cell may span
 * lines), bounded while reading: a file with no newline, or an unclosed
 * quote, stops the import early with memory bounded by these. */
#define CSVIMPORT_MAX_LINE (1024 * 1024)
#define CSVIMPORT_MAX_ROW (4 * 1024 * 1024)

struct csvimport_hooks {
	/* Called every 1,000 rows and at the end; may be NULL. */
	void (*progress)(unsigned long long rows, unsigned long long bytes_done,
			 unsigned long long bytes_total, void *ctx);
	/* Called for each rejected row; may be NULL. */
	void (*row_error)(unsigned long long line, const struct fs_error *e, void *ctx);
	void *ctx;
	/* When set (by another thread), the import stops between lines with
	 * -ECANCELED and nothing imported; may be NULL. */
	const _Atomic int *cancel;
};

/* Import from fp (a regular file, read from its current position; the
 * caller closes it); path names it in messages. */
int csvimport_run(struct store *s, const struct form *f, FILE *fp, const char *path,
		  const struct csvimport_hooks *hooks, unsigned long long *ret_rows,
		  struct fs_error *err) FS_WUR;

#endif
