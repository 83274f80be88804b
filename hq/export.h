/* export.h - merged records out, for analysts: CSV and JSON Lines.
 *
 * One record per row or line, live records only, ordered by id, so the
 * same merged state gives byte-identical output.  Columns: id, every form
 * field in form order, updated (ISO 8601 UTC of the record's newest
 * write), device (its author) and team (that device's team).
 *
 * CSV: UTF-8 with a byte-order mark (LibreOffice and Excel then read
 * Cyrillic correctly), CRLF line ends, RFC 4180 quoting; a text cell
 * starting with = + - @ (or a tab or CR) gets a leading ' so that a
 * spreadsheet never runs it as a formula.  Multi-choice values are
 * joined with ";".  JSONL: one JSON object per line, members in column
 * order, absent fields null.
 *
 * Errors: database errors mapped as in hqdb.h, -EIO when out fails.
 * Thread safety: db belongs to the caller.
 */
#ifndef FS_EXPORT_H
#define FS_EXPORT_H

#include <stdint.h>
#include <stdio.h>
#include "hq/hqsql.h"

#include "crypto/fserr.h"
#include "sync/form.h"

enum export_format { EXPORT_CSV, EXPORT_JSONL };

/* Records of f's collection that HQ merged a change into at or after
 * since_ms, HQ's clock in Unix ms (0: all). */
int export_records(struct hqsql *db, const struct form *f, enum export_format fmt,
		   uint64_t since_ms, FILE *out, struct fs_error *err) FS_WUR;

#endif
