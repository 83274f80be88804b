/* csvimport.c - CSV rows to records, all or nothing.
 *
 * Sections: parser state; header; rows; the run.
 */
#include "agent/csvimport.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <csv.h>
#include <sodium.h>

#include "agent/records.h"

#define MAX_COLUMNS (FORM_MAX_FIELDS + 1)
#define COLUMN_ID (-1)

/* ---- parser state ----------------------------------------------------- */

struct import {
	struct store *s;
	const struct form *f;
	const struct csvimport_hooks *hooks;
	unsigned long long line;   /* line being fed to the parser */
	unsigned long long rows;   /* data rows imported */
	unsigned long long errors; /* rows rejected */
	size_t row_bytes;	   /* fed to the parser since the last row ended */
	int have_header;
	int ncols;		    /* columns in the header */
	int col_field[MAX_COLUMNS]; /* form field index, or COLUMN_ID */
	char *cells[MAX_COLUMNS];   /* the current row */
	int ncells;
	int overflow;	      /* current row had too many or too big cells */
	int fatal;	      /* a store error: stop at once */
	struct fs_error *err; /* where a fatal error goes */
};

static void row_reject(struct import *im, const struct fs_error *e)
{
	im->errors++;
	if (im->hooks && im->hooks->row_error)
		im->hooks->row_error(im->line, e, im->hooks->ctx);
}

static void row_reset(struct import *im)
{
	for (int i = 0; i < im->ncells; i++) {
		sodium_memzero(im->cells[i], strlen(im->cells[i]));
		free(im->cells[i]);
		im->cells[i] = NULL;
	}
	im->ncells = 0;
	im->overflow = 0;
}

static void on_cell(void *cell, size_t len, void *data)
{
	struct import *im = data;

	if (im->ncells >= MAX_COLUMNS || len > CSVIMPORT_MAX_CELL) {
		im->overflow = 1;
		return;
	}
	im->cells[im->ncells] = strndup(cell ? cell : "", len);
	if (!im->cells[im->ncells]) {
		fs_error_set(im->err, -ENOMEM, "import: out of memory");
		im->fatal = 1;
		return;
	}
	im->ncells++;
}

/* ---- header ----------------------------------------------------------- */

static int parse_header(struct import *im)
{
	char tok[FS_TOKEN_MAX + 3];

	if (im->overflow)
		return fs_error_set(im->err, -FS_EVALID,
				    "line %llu: header has more than %d "
				    "columns or an oversized name",
				    im->line, MAX_COLUMNS);
	for (int i = 0; i < im->ncells; i++) {
		const char *name = im->cells[i];
		int idx;

		/* Spreadsheets like to start UTF-8 files with a byte order mark. */
		if (i == 0 && !strncmp(name, "\xEF\xBB\xBF", 3))
			name += 3;
		idx = !strcmp(name, "id") ? COLUMN_ID : form_field_index(im->f, name);
		/* A file without a header row puts data here: never echo it. */
		if (idx < 0 && idx != COLUMN_ID)
			return fs_error_set(im->err, -FS_EVALID,
					    "line %llu: column %d: %s is not a "
					    "field of %s (is the header row missing?)",
					    im->line, i + 1, fs_error_token(name, tok),
					    form_collection(im->f));
		for (int j = 0; j < i; j++)
			if (im->col_field[j] == idx)
				return fs_error_set(im->err, -FS_EVALID,
						    "line %llu: column %d: %s appears twice",
						    im->line, i + 1, fs_error_token(name, tok));
		im->col_field[i] = idx;
	}
	im->ncols = im->ncells;
	im->have_header = 1;
	return 0;
}

/* ---- rows ------------------------------------------------------------- */

static int import_row(struct import *im)
{
	char id[UUID_TEXT_LEN + 1];
	const char *keep_id = NULL;
	struct fs_error e = { 0 };
	cJSON *fields = cJSON_CreateObject();
	int r = 0;

	if (!fields)
		return fs_error_set(im->err, -ENOMEM, "import: out of memory");
	if (im->overflow || im->ncells != im->ncols) {
		fs_error_set(&e, -FS_EVALID, "expected %d columns, found %s%d", im->ncols,
			     im->overflow ? "more than " : "", im->ncells);
		row_reject(im, &e);
		goto out;
	}
	for (int i = 0; i < im->ncols; i++) {
		const char *name;
		cJSON *v = NULL;

		if (!im->cells[i][0])
			continue;
		if (im->col_field[i] == COLUMN_ID) {
			keep_id = im->cells[i];
			continue;
		}
		name = form_field_name(im->f, (size_t)im->col_field[i]);
		if (form_value_from_text(im->f, name, im->cells[i], &v, &e) < 0) {
			row_reject(im, &e);
			goto out;
		}
		if (!cJSON_AddItemToObject(fields, name, v)) {
			cJSON_Delete(v);
			r = fs_error_set(im->err, -ENOMEM, "import: out of memory");
			goto out;
		}
	}
	r = records_add(im->s, im->f, fields, keep_id, id, &e);
	if (r == -FS_EVALID || r == -FS_EEXIST) {
		row_reject(im, &e);
		r = 0;
	} else if (r < 0) {
		*im->err = e;
	} else {
		im->rows++;
	}
out:
	cJSON_Delete(fields);
	return r;
}

static void on_row_end(int c, void *data)
{
	struct import *im = data;
	int r;

	(void)c;
	im->row_bytes = 0;
	if (im->fatal || im->errors >= CSVIMPORT_MAX_ERRORS) {
		row_reset(im);
		return;
	}
	r = im->have_header ? import_row(im) : parse_header(im);
	if (r < 0)
		im->fatal = 1;
	row_reset(im);
}

/* ---- the run ---------------------------------------------------------- */

/* libcsv's buffer holds cells of personal data: wiped when it moves or
 * is freed. */
static void wiping_free(void *p)
{
	if (p)
		sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

static void *wiping_realloc(void *p, size_t n)
{
	void *q = malloc(n);

	if (q && p) {
		size_t old = malloc_usable_size(p);

		memcpy(q, p, old < n ? old : n);
		wiping_free(p);
	}
	return q;
}

/* One physical line into buf (cap bytes): its length with the '\n', 0 at
 * the end of the file, -FS_ELIMIT when it does not end within cap, -EIO
 * on a read error.  Never reads more than cap bytes of a line. */
static ssize_t read_line(FILE *fp, char *buf, size_t cap)
{
	size_t n = 0;
	int ch;

	while (n < cap && (ch = getc_unlocked(fp)) != EOF) {
		buf[n++] = (char)ch;
		if (ch == '\n')
			return (ssize_t)n;
	}
	if (ferror(fp))
		return -EIO;
	return n == cap ? -FS_ELIMIT : (ssize_t)n;
}

static void progress(struct import *im, FILE *fp, unsigned long long total)
{
	long pos = ftell(fp);

	if (im->hooks && im->hooks->progress)
		im->hooks->progress(im->rows, pos < 0 ? 0 : (unsigned long long)pos, total,
				    im->hooks->ctx);
}

int csvimport_run(struct store *s, const struct form *f, FILE *fp, const char *path,
		  const struct csvimport_hooks *hooks, unsigned long long *ret_rows,
		  struct fs_error *err)
{
	struct import im = { .s = s, .f = f, .hooks = hooks, .err = err };
	struct csv_parser p;
	struct stat st;
	char *line = malloc(CSVIMPORT_MAX_LINE);
	ssize_t n = 0;
	int r = 0, began = 0, parser = 0;

	if (!line) {
		r = fs_error_set(err, -ENOMEM, "import %s: out of memory", path);
		goto out;
	}

	if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode)) {
		r = fs_error_set(err, -FS_EUSAGE, "import %s: not a regular file", path);
		goto out;
	}
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
		r = fs_error_set(err, -ENOMEM, "import %s: out of memory", path);
		goto out;
	}
	parser = 1;
	csv_set_realloc_func(&p, wiping_realloc);
	csv_set_free_func(&p, wiping_free);
	if ((r = store_begin_local(s, err)) < 0)
		goto out;
	began = 1;
	while (!im.fatal && im.errors < CSVIMPORT_MAX_ERRORS &&
	       (n = read_line(fp, line, CSVIMPORT_MAX_LINE)) > 0) {
		unsigned long long before = im.rows;

		if (hooks && hooks->cancel && *hooks->cancel) {
			r = fs_error_set(err, -ECANCELED,
					 "import %s: cancelled at line %llu (the agent "
					 "is stopping or locking); nothing was imported",
					 path, im.line + 1);
			goto out;
		}
		im.line++;
		if (csv_parse(&p, line, (size_t)n, on_cell, on_row_end, &im) != (size_t)n) {
			r = fs_error_set(err, -FS_EVALID, "import %s: line %llu: %s", path, im.line,
					 csv_strerror(csv_error(&p)));
			goto out;
		}
		sodium_memzero(line, (size_t)n);
		im.row_bytes += (size_t)n;
		if (im.row_bytes > CSVIMPORT_MAX_ROW) {
			r = fs_error_set(err, -FS_ELIMIT,
					 "import %s: line %llu: a row longer than "
					 "%d bytes (an unclosed quote?)",
					 path, im.line, CSVIMPORT_MAX_ROW);
			goto out;
		}
		if (im.rows / 1000 != before / 1000)
			progress(&im, fp, (unsigned long long)st.st_size);
	}
	if (n == -FS_ELIMIT) {
		r = fs_error_set(err, -FS_ELIMIT, "import %s: line %llu is longer than %d bytes",
				 path, im.line + 1, CSVIMPORT_MAX_LINE);
		goto out;
	}
	if (n < 0) {
		r = fs_error_set(err, -EIO, "import %s: read error", path);
		goto out;
	}
	if (!im.fatal && csv_fini(&p, on_cell, on_row_end, &im) != 0) {
		r = fs_error_set(err, -FS_EVALID, "import %s: line %llu: %s", path, im.line,
				 csv_strerror(csv_error(&p)));
		goto out;
	}
	if (im.fatal) {
		r = err ? err->code : -FS_ESTORE;
		goto out;
	}
	if (!im.have_header) {
		r = fs_error_set(err, -FS_EVALID, "import %s: no header row", path);
		goto out;
	}
	if (im.errors) {
		r = fs_error_set(err, -FS_EVALID,
				 "import %s: %llu row%s rejected%s; nothing imported", path,
				 im.errors, im.errors == 1 ? "" : "s",
				 im.errors >= CSVIMPORT_MAX_ERRORS ? " (stopped looking)" : "");
		goto out;
	}
	progress(&im, fp, (unsigned long long)st.st_size);
	r = store_commit(s, err);
	began = 0;
	if (r == 0 && ret_rows)
		*ret_rows = im.rows;
out:
	if (began)
		store_rollback(s);
	row_reset(&im);
	if (parser)
		csv_free(&p);
	if (line)
		sodium_memzero(line, CSVIMPORT_MAX_LINE);
	free(line);
	return r;
}
