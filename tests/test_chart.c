/* test_chart.c - HQ's charts (hq/chart.h): the numbers added are the
 * numbers given back, labels are escaped in SVG and quoted in CSV, and a
 * label a spreadsheet would run as a formula is defused. */
#include <stdlib.h>
#include <string.h>

#include "hq/chart.h"
#include "tests/test.h"

TEST(chart_counts_escapes_and_defuses)
{
	struct chart *c = NULL;
	char *svg = NULL, *csv = NULL;
	size_t len = 0;

	ASSERT_OK(chart_new(CHART_COLUMNS, "week", &c));
	/* Enough categories and series to grow the grid twice over. */
	for (int i = 19; i >= 0; i--) {
		char week[16];

		snprintf(week, sizeof(week), "2026-W%02d", i);
		ASSERT_OK(chart_add(c, week, "Tutin", i));
		ASSERT_OK(chart_add(c, week, i % 2 ? "=HYPERLINK(\"x\")" : "Ada <&> \"Bečej\"", 1));
	}
	for (int s = 0; s < 10; s++) {
		char name[16];

		snprintf(name, sizeof(name), "S%d", s);
		ASSERT_OK(chart_add(c, "2026-W00", name, s));
	}
	ASSERT_OK(chart_category(c, "2026-W99"));
	chart_sort(c);
	ASSERT_EQ(chart_total(c), 190 + 20 + 45);
	ASSERT_OK(chart_csv(c, &csv, &len));
	ASSERT_EQ(strlen(csv), len);
	/* The header, the first row (sorted) and the empty week. */
	ASSERT_STR_CONTAINS(csv, "\"week\",\"Tutin\",\"'=HYPERLINK(\"\"x\"\")\",\"Ada <&> "
				 "\"\"Bečej\"\"\",\"S0\"");
	ASSERT_STR_CONTAINS(csv,
			    "\r\n\"2026-W00\",0,0,1,0,1,2,3,4,5,6,7,8,9\r\n\"2026-W01\",1,1,0,");
	ASSERT_STR_CONTAINS(csv, "\r\n\"2026-W99\",0,0,0,0,0,0,0,0,0,0,0,0,0\r\n");
	ASSERT_OK(chart_svg(c, 720, &svg, &len));
	ASSERT_STR_CONTAINS(svg, "Ada &lt;&amp;&gt; &quot;Bečej&quot;");
	ASSERT_TRUE(strstr(svg, "<&>") == NULL);
	ASSERT_TRUE(strstr(svg, "<script") == NULL);
	ASSERT_STR_CONTAINS(svg, "2026-W19, Tutin: 19</title>");
	free(svg);
	free(csv);
	chart_free(c);

	/* Nothing counted: a picture that says so, and a CSV of the header. */
	ASSERT_OK(chart_new(CHART_BARS, "status", &c));
	ASSERT_OK(chart_svg(c, 100, &svg, &len));
	ASSERT_STR_CONTAINS(svg, "No data yet");
	ASSERT_OK(chart_csv(c, &csv, &len));
	ASSERT_STR_EQ(csv, "\"status\"\r\n");
	free(svg);
	free(csv);
	chart_free(c);
}
