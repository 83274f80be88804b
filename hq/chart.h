/* chart.h - counts drawn by HQ for the console's programme view: a table
 * of categories by series, as an SVG bar chart or as CSV holding the same
 * numbers.
 *
 * The SVG is static markup (no script, no link, no external font), so a
 * page shows it in an <img> under a strict CSP.  Every label is escaped
 * for XML.  The CSV follows RFC 4180, quoting every field; a label that a
 * spreadsheet would read as a formula (starting with = + - @, a tab or a
 * carriage return) gets a leading apostrophe.
 *
 * Categories and series keep the order they were first added in, unless
 * chart_sort() orders the categories.  Ownership: a chart is its
 * creator's; the text returned is malloc'd and the caller's.  Errors:
 * -ENOMEM only.
 */
#ifndef FS_CHART_H
#define FS_CHART_H

#include <stddef.h>

#include "crypto/fserr.h"

enum chart_kind {
	CHART_COLUMNS, /* vertical columns, series stacked; for time */
	CHART_BARS,    /* horizontal bars, one per category and series */
};

struct chart;

/* head names the category column in the CSV ("week", "status"). */
int chart_new(enum chart_kind kind, const char *head, struct chart **ret) FS_WUR;
struct chart *chart_free(struct chart *c);

/* Add n to (category, series), creating either as needed. */
int chart_add(struct chart *c, const char *category, const char *series, long long n) FS_WUR;

/* The category, with no count yet (an empty week on the axis). */
int chart_category(struct chart *c, const char *category) FS_WUR;

/* Categories in byte order of their labels (dates sort as time). */
void chart_sort(struct chart *c);

/* The sum of every count. */
long long chart_total(const struct chart *c);

/* The chart as SVG markup of the given width, or "No data yet" when empty. */
int chart_svg(const struct chart *c, unsigned width, char **ret, size_t *len) FS_WUR;
/* The same numbers as CSV: head and the series names, then a row per
 * category. */
int chart_csv(const struct chart *c, char **ret, size_t *len) FS_WUR;

#endif
