/* bench_form.c - what the field app asks of the agent on every keystroke
 * (after the page's short pause): settle a visit as typed and report on
 * every field (sync/form.h, form_settle and form_report), against the
 * least any answer costs, parsing the request's JSON and printing the
 * answer's (cJSON, the same record).  The visit uses the shipped form's
 * skip logic, its filtered choices and a repeat group of five people.
 * Speed is reported, never asserted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "sync/form.h"
#include "sync/formsrc.h"

#define ROUNDS 20000
#define REPEAT 7

static const char VISIT[] =
	"{\"beneficiary_id\":\"0193a1b2-c3d4-7abc-8def-0123456789ab\",\"visit_date\":"
	"\"2026-11-20\",\"visit_type\":\"housing_construction\",\"construction_stage\":\"roof\","
	"\"assistance\":[\"windows\",\"roof_repair\"],\"notes\":\"Prozori zamenjeni; кров у току\","
	"\"people_present\":[{\"person_name\":\"Јована Петровић\",\"role\":\"household_member\"},"
	"{\"person_name\":\"Petrović Marko\",\"role\":\"head_of_household\"},"
	"{\"person_name\":\"Ђорђе Петровић\",\"role\":\"relative\"},"
	"{\"person_name\":\"Ana Ilić\",\"role\":\"neighbour\"},"
	"{\"person_name\":\"Милан Илић\",\"role\":\"other\"}],"
	"\"next_visit\":\"2027-01-15\"}";

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One round: what the agent does for a save (logic when f is set). */
static int round_trip(const struct form *f)
{
	struct fs_error err = { 0 };
	cJSON *o = cJSON_Parse(VISIT), *report = NULL, *answer;
	char *text;
	int r = 0;

	if (!o)
		return -1;
	if (f && ((r = form_settle(f, o, "2026-11-20", &err)) < 0 ||
		  (r = form_report(f, o, "2026-11-20", &report, &err)) < 0)) {
		fprintf(stderr, "bench_form: %s\n", err.msg);
		cJSON_Delete(o);
		return r;
	}
	answer = report ? report : o;
	text = cJSON_PrintUnformatted(answer);
	r = text ? 0 : -1;
	cJSON_free(text);
	cJSON_Delete(report);
	cJSON_Delete(o);
	return r;
}

/* Median over REPEAT runs of ROUNDS rounds: microseconds per round. */
static double measure(const struct form *f)
{
	double t[REPEAT];

	for (int k = 0; k < REPEAT; k++) {
		double t0 = now_us();

		for (int i = 0; i < ROUNDS; i++)
			if (round_trip(f) < 0)
				exit(1);
		t[k] = (now_us() - t0) / ROUNDS;
	}
	qsort(t, REPEAT, sizeof(t[0]), cmp);
	return t[REPEAT / 2];
}

int main(void)
{
	struct fs_error err = { 0 };
	struct form *f = NULL;
	double logic, base;

	if (formsrc_load(NULL, "visits", &f, &err) < 0) {
		fprintf(stderr, "bench_form: %s\n", err.msg);
		return 1;
	}
	base = measure(NULL);
	logic = measure(f);
	printf("a visit with 5 people present, %d rounds, median of %d:\n", ROUNDS, REPEAT);
	printf("  settle + report:         %8.1f us\n", logic);
	printf("  parse + print (baseline): %7.1f us\n", base);
	printf("  ratio:                   %8.2fx\n", logic / base);
	printf("row\tform logic per save (settle+report vs parse+print)\t%.1f us\t%.1f us\t%.2f\n",
	       logic, base, logic / base);
	form_free(f);
	return 0;
}
