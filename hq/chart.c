/* chart.c - counts as SVG or CSV (hq/chart.h). */
#include "hq/chart.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chart {
	enum chart_kind kind;
	char *head;
	char **cats, **series;
	size_t ncats, nseries, cap_cats, cap_series;
	long long *v; /* v[cat * cap_series + series] */
};

/* Okabe and Ito's palette: told apart with every common colour-vision
 * deficiency, and in greyscale print. */
static const char *const palette[] = { "#0072B2", "#E69F00", "#009E73", "#D55E00",
				       "#CC79A7", "#56B4E9", "#F0E442", "#000000" };
#define PALETTE_N (sizeof(palette) / sizeof(palette[0]))

int chart_new(enum chart_kind kind, const char *head, struct chart **ret)
{
	struct chart *c = calloc(1, sizeof(*c));

	*ret = NULL;
	if (!c || !(c->head = strdup(head))) {
		free(c);
		return -ENOMEM;
	}
	c->kind = kind;
	*ret = c;
	return 0;
}

struct chart *chart_free(struct chart *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->ncats; i++)
		free(c->cats[i]);
	for (size_t i = 0; i < c->nseries; i++)
		free(c->series[i]);
	free(c->cats);
	free(c->series);
	free(c->v);
	free(c->head);
	free(c);
	return NULL;
}

/* The counts laid out for cats categories and ser series. */
static int regrid(struct chart *c, size_t cats, size_t ser)
{
	size_t n = cats * ser;
	long long *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < c->ncats; i++)
		for (size_t j = 0; j < c->nseries; j++)
			v[i * ser + j] = c->v[i * c->cap_series + j];
	free(c->v);
	c->v = v;
	return 0;
}

/* The index of name in *names, appended (growing the grid) if new. */
static long find_or_add(struct chart *c, int is_series, const char *name)
{
	char ***names = is_series ? &c->series : &c->cats;
	size_t *n = is_series ? &c->nseries : &c->ncats;
	size_t *cap = is_series ? &c->cap_series : &c->cap_cats;
	char **grown;

	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*names)[i], name))
			return (long)i;
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;

		if (!(grown = realloc(*names, ncap * sizeof(*grown))))
			return -ENOMEM;
		*names = grown;
		if (regrid(c, is_series ? c->cap_cats : ncap, is_series ? ncap : c->cap_series) < 0)
			return -ENOMEM;
		*cap = ncap;
	}
	if (!((*names)[*n] = strdup(name)))
		return -ENOMEM;
	return (long)(*n)++;
}

int chart_add(struct chart *c, const char *category, const char *series, long long n)
{
	long i = find_or_add(c, 0, category), j;

	if (i < 0)
		return (int)i;
	if ((j = find_or_add(c, 1, series)) < 0)
		return (int)j;
	c->v[(size_t)i * c->cap_series + (size_t)j] += n;
	return 0;
}

int chart_category(struct chart *c, const char *category)
{
	long i = find_or_add(c, 0, category);

	return i < 0 ? (int)i : 0;
}

void chart_sort(struct chart *c)
{
	/* Few categories (weeks, days, choices): insertion sort moves each
	 * row of counts with its label. */
	for (size_t i = 1; i < c->ncats; i++)
		for (size_t k = i; k > 0 && strcmp(c->cats[k - 1], c->cats[k]) > 0; k--) {
			char *t = c->cats[k];

			c->cats[k] = c->cats[k - 1];
			c->cats[k - 1] = t;
			for (size_t j = 0; j < c->nseries; j++) {
				long long x = c->v[k * c->cap_series + j];

				c->v[k * c->cap_series + j] = c->v[(k - 1) * c->cap_series + j];
				c->v[(k - 1) * c->cap_series + j] = x;
			}
		}
}

static long long cell(const struct chart *c, size_t i, size_t j)
{
	return c->v[i * c->cap_series + j];
}

static long long row_total(const struct chart *c, size_t i)
{
	long long t = 0;

	for (size_t j = 0; j < c->nseries; j++)
		t += cell(c, i, j);
	return t;
}

long long chart_total(const struct chart *c)
{
	long long t = 0;

	for (size_t i = 0; i < c->ncats; i++)
		t += row_total(c, i);
	return t;
}

/* ---- SVG ---------------------------------------------------------------- */

static void xml_put(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* The axis's step: 1, 2 or 5 times a power of ten, so that max takes at
 * most five steps and each tick is a round number. */
static long long nice_step(long long max)
{
	for (long long p = 1;; p *= 10)
		for (int i = 0; i < 3; i++) {
			long long f = (long long[]){ 1, 2, 5 }[i];

			if (f * p * 5 >= max || p > LLONG_MAX / 50)
				return f * p;
		}
}

#define LEGEND_ROW 18
#define LEGEND_ITEM 170

/* A legend of the series across the top; its height. */
static unsigned legend(const struct chart *c, unsigned width, FILE *f)
{
	unsigned per = width / LEGEND_ITEM ? width / LEGEND_ITEM : 1;

	if (c->nseries < 2)
		return 0;
	for (size_t j = 0; j < c->nseries; j++) {
		unsigned x = 8 + (unsigned)(j % per) * LEGEND_ITEM,
			 y = 6 + (unsigned)(j / per) * LEGEND_ROW;

		fprintf(f, "<rect x=\"%u\" y=\"%u\" width=\"12\" height=\"12\" fill=\"%s\"/>", x, y,
			palette[j % PALETTE_N]);
		fprintf(f, "<text x=\"%u\" y=\"%u\">", x + 18, y + 11);
		xml_put(f, c->series[j]);
		fputs("</text>", f);
	}
	return 6 + (unsigned)((c->nseries + per - 1) / per) * LEGEND_ROW + 6;
}

#define COL_PLOT_H 200
#define COL_AXIS_W 48
#define COL_LABELS_H 72

static unsigned columns(const struct chart *c, unsigned width, FILE *f)
{
	unsigned top = legend(c, width, f) + 12, pw = width - COL_AXIS_W - 12;
	double slot = (double)pw / (double)c->ncats, bw = slot * 0.7;
	long long max = 0, step, top_v;
	int tilt = c->ncats > 8;

	for (size_t i = 0; i < c->ncats; i++)
		if (row_total(c, i) > max)
			max = row_total(c, i);
	step = nice_step(max);
	top_v = max > step ? (max + step - 1) / step * step : step;
	for (long long t = 0; t <= top_v; t += step) {
		double y = top + COL_PLOT_H - (double)COL_PLOT_H * (double)t / (double)top_v;

		fprintf(f,
			"<line x1=\"%u\" y1=\"%.1f\" x2=\"%u\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			"<text x=\"%u\" y=\"%.1f\" text-anchor=\"end\">%lld</text>",
			COL_AXIS_W, y, width - 8, y, COL_AXIS_W - 6, y + 4, t);
	}
	for (size_t i = 0; i < c->ncats; i++) {
		double x = COL_AXIS_W + slot * (double)i + (slot - bw) / 2, y = top + COL_PLOT_H,
		       cx = x + bw / 2;

		for (size_t j = 0; j < c->nseries; j++) {
			double h = (double)COL_PLOT_H * (double)cell(c, i, j) / (double)top_v;

			if (cell(c, i, j) <= 0)
				continue;
			y -= h;
			fprintf(f,
				"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
				"fill=\"%s\"><title>",
				x, y, bw, h, palette[j % PALETTE_N]);
			xml_put(f, c->cats[i]);
			fputs(", ", f);
			xml_put(f, c->series[j]);
			fprintf(f, ": %lld</title></rect>", cell(c, i, j));
		}
		if (c->ncats <= 16 && row_total(c, i) > 0)
			fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%lld</text>",
				cx, y - 4, row_total(c, i));
		if (tilt)
			fprintf(f,
				"<text x=\"%.1f\" y=\"%u\" text-anchor=\"end\" "
				"transform=\"rotate(-40 %.1f %u)\">",
				cx, top + COL_PLOT_H + 14, cx, top + COL_PLOT_H + 14);
		else
			fprintf(f, "<text x=\"%.1f\" y=\"%u\" text-anchor=\"middle\">", cx,
				top + COL_PLOT_H + 16);
		xml_put(f, c->cats[i]);
		fputs("</text>", f);
	}
	return top + COL_PLOT_H + (tilt ? COL_LABELS_H : 28);
}

#define BAR_ROW 26
#define BAR_H 18

static unsigned bars(const struct chart *c, unsigned width, FILE *f)
{
	unsigned top = legend(c, width, f) + 6, lw = width / 3 < 220 ? width / 3 : 220,
		 pw = width - lw - 64;
	long long max = 1;

	for (size_t i = 0; i < c->ncats; i++)
		if (row_total(c, i) > max)
			max = row_total(c, i);
	for (size_t i = 0; i < c->ncats; i++) {
		double x = lw, y = top + (double)i * BAR_ROW;

		fprintf(f, "<text x=\"%u\" y=\"%.1f\" text-anchor=\"end\">", lw - 8, y + 14);
		xml_put(f, c->cats[i]);
		fputs("</text>", f);
		for (size_t j = 0; j < c->nseries; j++) {
			double w = (double)pw * (double)cell(c, i, j) / (double)max;

			if (cell(c, i, j) <= 0)
				continue;
			fprintf(f,
				"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%u\" "
				"fill=\"%s\"/>",
				x, y + 1, w, BAR_H, palette[j % PALETTE_N]);
			x += w;
		}
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%lld</text>", x + 6, y + 14,
			row_total(c, i));
	}
	return top + (unsigned)c->ncats * BAR_ROW + 8;
}

/* Drawn into a body first: the height is known only at the end. */
int chart_svg(const struct chart *c, unsigned width, char **ret, size_t *len)
{
	char *body = NULL;
	size_t blen = 0;
	unsigned height;
	FILE *f = open_memstream(&body, &blen), *out;
	int r = 0;

	*ret = NULL;
	if (!f)
		return -ENOMEM;
	if (width < 320)
		width = 320;
	if (c->ncats == 0) {
		fprintf(f,
			"<text x=\"%u\" y=\"40\" text-anchor=\"middle\" fill=\"#666\">No data "
			"yet</text>",
			width / 2);
		height = 64;
	} else {
		height = c->kind == CHART_COLUMNS ? columns(c, width, f) : bars(c, width, f);
	}
	if (fclose(f) != 0 || !body) {
		free(body);
		return -ENOMEM;
	}
	if (!(out = open_memstream(ret, len))) {
		free(body);
		return -ENOMEM;
	}
	fprintf(out,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
		"viewBox=\"0 0 %u %u\" role=\"img\" font-family=\"sans-serif\" font-size=\"12\" "
		"fill=\"#222\">%s</svg>\n",
		width, height, width, height, body);
	if (fclose(out) != 0 || !*ret)
		r = -ENOMEM;
	free(body);
	if (r < 0) {
		free(*ret);
		*ret = NULL;
	}
	return r;
}

/* ---- CSV ---------------------------------------------------------------- */

static void csv_put(FILE *f, const char *s)
{
	fputc('"', f);
	if (strchr("=+-@\t\r", *s) && *s)
		fputc('\'', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

int chart_csv(const struct chart *c, char **ret, size_t *len)
{
	FILE *f = open_memstream(ret, len);

	if (!f)
		return -ENOMEM;
	csv_put(f, c->head);
	for (size_t j = 0; j < c->nseries; j++) {
		fputc(',', f);
		csv_put(f, c->series[j]);
	}
	fputs("\r\n", f);
	for (size_t i = 0; i < c->ncats; i++) {
		csv_put(f, c->cats[i]);
		for (size_t j = 0; j < c->nseries; j++)
			fprintf(f, ",%lld", cell(c, i, j));
		fputs("\r\n", f);
	}
	if (fclose(f) != 0 || !*ret) {
		free(*ret);
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}
