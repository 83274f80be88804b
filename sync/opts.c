/* opts.c - see opts.h. */
#include "sync/opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The option named by arg (after "--"), up to '=' or its end. */
static int find(const struct opts_spec *spec, const char *name, size_t len)
{
	for (int i = 0; spec && spec[i].name; i++)
		if (strlen(spec[i].name) == len && !strncmp(spec[i].name, name, len))
			return i;
	return -1;
}

/* One option at argv[*i]; may take argv[*i + 1] as its value. */
static int one(const struct opts_spec *spec, int argc, char *const *argv, int *i, struct opts *o,
	       char *why, size_t cap)
{
	const char *arg = argv[*i], *name = arg + 2, *eq;
	size_t len;
	int k;

	if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
		o->help = 1;
		return 0;
	}
	if (arg[1] != '-') {
		snprintf(why, cap, "unknown option -%.1s", arg + 1);
		return -EINVAL;
	}
	eq = strchr(name, '=');
	len = eq ? (size_t)(eq - name) : strlen(name);
	if ((k = find(spec, name, len)) < 0) {
		snprintf(why, cap, "unknown option --%.*s", (int)(len > 40 ? 40 : len), name);
		return -EINVAL;
	}
	switch (spec[k].kind) {
	case OPTS_FLAG:
		if (eq) {
			snprintf(why, cap, "--%s takes no value", spec[k].name);
			return -EINVAL;
		}
		o->value[k] = "";
		return 0;
	case OPTS_OPTIONAL_VALUE:
		o->value[k] = eq ? eq + 1 : "";
		return 0;
	case OPTS_VALUE:
		if (eq) {
			o->value[k] = eq + 1;
			return 0;
		}
		if (*i + 1 >= argc) {
			snprintf(why, cap, "--%s needs a value", spec[k].name);
			return -EINVAL;
		}
		o->value[k] = argv[++*i];
		return 0;
	}
	return -EINVAL;
}

int opts_parse(const struct opts_spec *spec, int argc, char *const *argv, struct opts *ret,
	       char *why, size_t cap)
{
	int r = 0, rest = 0;

	memset(ret, 0, sizeof(*ret));
	if (why && cap)
		why[0] = '\0';
	if (!(ret->args = calloc((size_t)(argc > 0 ? argc : 0) + 1, sizeof(*ret->args))))
		return -ENOMEM;
	for (int i = 0; i < argc && r == 0; i++) {
		const char *a = argv[i];

		if (rest || a[0] != '-' || !a[1])
			ret->args[ret->nargs++] = argv[i];
		else if (!strcmp(a, "--"))
			rest = 1;
		else
			r = one(spec, argc, argv, &i, ret, why, cap);
	}
	if (r < 0)
		opts_free(ret);
	return r;
}

void opts_free(struct opts *o)
{
	free(o->args);
	o->args = NULL;
	o->nargs = 0;
}
