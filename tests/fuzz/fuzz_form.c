/* fuzz_form.c - form definitions and the values checked against them
 * (every record a device or HQ accepts).  The first byte picks: a form
 * definition to load, or a JSON object of fields for the beneficiaries
 * form, or one FIELD=VALUE text as typed on the command line, or a JSON
 * record settled, checked and reported on by tests/forms/logic.json
 * (skip logic, calculations, filters, repeat groups). */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "sync/form.h"
#include "tests/fuzz/fuzz.h"

static struct form *benef, *logic;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct fs_error err = { 0 };

	(void)argc, (void)argv;
	if (form_load_file(FS_SOURCE_DIR "/conf/forms/beneficiaries.json", &benef, &err) < 0 ||
	    form_load_file(FS_SOURCE_DIR "/tests/forms/logic.json", &logic, &err) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fs_error err = { 0 };

	if (size < 1)
		return 0;
	if (data[0] % 4 == 3) {
		cJSON *o = cJSON_ParseWithLength((const char *)data + 1, size - 1), *report = NULL;

		/* Settling then validating must agree with the report. */
		if (cJSON_IsObject(o) && form_settle(logic, o, "2026-11-20", &err) == 0) {
			int valid = form_validate(logic, o, "2026-11-20", &err) == 0;

			if (form_report(logic, o, "2026-11-20", &report, &err) == 0 &&
			    cJSON_IsTrue(cJSON_GetObjectItem(report, "valid")) != valid)
				abort();
			cJSON_Delete(report);
		}
		cJSON_Delete(o);
	} else if (data[0] % 3 == 0) {
		struct form *f = NULL;

		if (form_load_json((const char *)data + 1, size - 1, "fuzz", &f, &err) == 0)
			form_free(f);
	} else if (data[0] % 3 == 1) {
		cJSON *o = cJSON_ParseWithLength((const char *)data + 1, size - 1);

		if (cJSON_IsObject(o))
			(void)!form_validate(benef, o, NULL, &err);
		cJSON_Delete(o);
	} else {
		char *text = malloc(size), *eq;
		cJSON *v = NULL;

		if (!text)
			return 0;
		memcpy(text, data + 1, size - 1);
		text[size - 1] = '\0';
		eq = strchr(text, '=');
		if (eq) {
			*eq = '\0';
			if (form_value_from_text(benef, text, eq + 1, &v, &err) == 0)
				cJSON_Delete(v);
		}
		free(text);
	}
	return 0;
}
