/* test_commands.c - option parsing without global state (sync/opts.h)
 * and the command table (agent/commands.h): what the agent decides from
 * a command's flags before anything runs it. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "agent/cmd.h"
#include "agent/commands.h"
#include "sync/opts.h"
#include "tests/test.h"

static const struct opts_spec spec[] = { { "json", OPTS_OPTIONAL_VALUE },
					 { "kdf", OPTS_VALUE },
					 { "verify-hq", OPTS_FLAG },
					 { NULL, 0 } };

static int parse(int argc, char **argv, struct opts *o, char *why)
{
	return opts_parse(spec, argc, argv, o, why, 96);
}

TEST(opts_parse_as_getopt_does_without_globals)
{
	char a0[] = "add", a1[] = "--kdf", a2[] = "moderate", a3[] = "full_name=Ђорђе",
	     a4[] = "--json=in.json", a5[] = "-", a6[] = "--", a7[] = "--verify-hq";
	char *argv[] = { a0, a1, a2, a3, a4, a5, a6, a7 };
	struct opts o;
	char why[96];

	ASSERT_OK(parse(8, argv, &o, why));
	ASSERT_STR_EQ(o.value[1], "moderate");
	ASSERT_STR_EQ(o.value[0], "in.json");
	ASSERT_TRUE(o.value[2] == NULL); /* after "--": an argument */
	ASSERT_EQ(o.help, 0);
	ASSERT_EQ(o.nargs, 4);
	ASSERT_STR_EQ(o.args[0], "add");
	ASSERT_STR_EQ(o.args[1], "full_name=Ђорђе");
	ASSERT_STR_EQ(o.args[2], "-");
	ASSERT_STR_EQ(o.args[3], "--verify-hq");
	opts_free(&o);
}

TEST(opts_refuse_by_name_never_by_value)
{
	char a0[] = "--kdf", a1[] = "--verify-hq=yes", a2[] = "--max", a3[] = "-x", a4[] = "--json",
	     a5[] = "-h", a6[] = "--kdf=sensitive";
	char *argv[] = { a0, a1, a2, a3, a4, a5, a6 };
	struct opts o;
	char why[96];

	ASSERT_EQ(parse(1, argv, &o, why), -EINVAL); /* --kdf and nothing after */
	ASSERT_STR_EQ(why, "--kdf needs a value");
	ASSERT_EQ(parse(1, argv + 1, &o, why), -EINVAL);
	ASSERT_STR_EQ(why, "--verify-hq takes no value");
	ASSERT_EQ(parse(1, argv + 2, &o, why), -EINVAL); /* no abbreviations */
	ASSERT_STR_EQ(why, "unknown option --max");
	ASSERT_EQ(parse(1, argv + 3, &o, why), -EINVAL);
	ASSERT_STR_EQ(why, "unknown option -x");
	/* A bare optional value, help anywhere, a value after '='. */
	ASSERT_OK(parse(3, argv + 4, &o, why));
	ASSERT_STR_EQ(o.value[0], "");
	ASSERT_EQ(o.help, 1);
	ASSERT_STR_EQ(o.value[1], "sensitive");
	ASSERT_EQ(o.nargs, 0);
	opts_free(&o);
}

/* Two threads parsing different vectors at once never see each other's
 * options, as they would with getopt's optind and optarg. */
static void *parse_many(void *arg)
{
	const char *kdf = arg;
	char a0[] = "--kdf", a1[32], a2[] = "x";
	char *argv[] = { a0, a1, a2 };

	snprintf(a1, sizeof(a1), "%s", kdf);
	for (int i = 0; i < 20000; i++) {
		struct opts o;
		char why[96];

		if (parse(3, argv, &o, why) != 0 || !o.value[1] || strcmp(o.value[1], kdf) ||
		    o.nargs != 1)
			return (void *)1;
		opts_free(&o);
	}
	return NULL;
}

TEST(opts_parse_on_two_threads_at_once)
{
	pthread_t t1, t2;
	void *r1, *r2;

	ASSERT_OK(pthread_create(&t1, NULL, parse_many, "interactive"));
	ASSERT_OK(pthread_create(&t2, NULL, parse_many, "sensitive"));
	ASSERT_OK(pthread_join(t1, &r1));
	ASSERT_OK(pthread_join(t2, &r2));
	ASSERT_TRUE(r1 == NULL && r2 == NULL);
}

/* The flags of a command line, as the agent sees it (in_agent), or
 * -1 when it does not parse there. */
static long flags_of(int in_agent, int argc, char **argv)
{
	struct cli c = { .in_agent = in_agent };
	struct command_call *call = NULL;
	long flags = -1;
	char *buf = NULL;
	size_t len = 0;

	c.out = c.err = open_memstream(&buf, &len);
	ASSERT_TRUE(c.out != NULL);
	if (cmd_parse(&c, argc, argv, &call) == 0 && call)
		flags = (long)cmd_call_flags(call);
	cmd_call_free(call);
	fclose(c.out);
	free(buf);
	return flags;
}

#define ARGV(...) (sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)), ((char *[]){ __VA_ARGS__ })

TEST(commands_table_says_where_each_command_runs)
{
	char status[] = "status", verify[] = "--verify-hq", json[] = "--json",
	     ben[] = "beneficiary", add[] = "add", list[] = "list", field[] = "full_name=Petrović",
	     imp[] = "import", coll[] = "visits", file[] = "v.csv", enroll[] = "enroll",
	     url[] = "http://127.0.0.1:1", tok[] = "-", init[] = "init", keygen[] = "keygen",
	     passwd[] = "passwd", sync[] = "sync", help[] = "--help", bogus[] = "bogus",
	     bad[] = "--bogus";
	long f;

	/* Only status --verify-hq talks to HQ; status alone answers on the loop. */
	f = flags_of(1, ARGV(status, json));
	ASSERT_EQ(f & CMD_TALKS_TO_HQ, 0);
	f = flags_of(1, ARGV(status, verify));
	ASSERT_NE(f & CMD_TALKS_TO_HQ, 0);
	/* Writes are add, edit, delete and import, not list. */
	ASSERT_NE(flags_of(1, ARGV(ben, add, field)) & CMD_WRITES, 0);
	ASSERT_EQ(flags_of(1, ARGV(ben, list)) & CMD_WRITES, 0);
	f = flags_of(1, ARGV(imp, coll, file));
	ASSERT_NE(f & CMD_WRITES, 0);
	ASSERT_NE(f & CMD_RUNS_LONG, 0);
	f = flags_of(1, ARGV(enroll, url, tok));
	ASSERT_NE(f & CMD_TALKS_TO_HQ, 0);
	ASSERT_NE(f & CMD_ENROLLS, 0);
	ASSERT_NE(flags_of(1, ARGV(sync)) & CMD_STARTS_ATTEMPT, 0);
	/* Help runs at once, wherever the command would. */
	ASSERT_EQ(flags_of(1, ARGV(status, verify, help)) & CMD_TALKS_TO_HQ, 0);
	/* The secret's commands never run in the agent; they do in the CLI. */
	ASSERT_EQ(flags_of(1, ARGV(init)), -1);
	ASSERT_EQ(flags_of(1, ARGV(passwd)), -1);
	ASSERT_EQ(flags_of(1, ARGV(keygen, file)), -1);
	ASSERT_TRUE(flags_of(0, ARGV(init)) >= 0);
	ASSERT_NE(cmd_flags("keygen") & CMD_NO_CONFIG, 0);
	ASSERT_EQ(cmd_flags("init") & CMD_FORWARDABLE, 0);
	ASSERT_NE(cmd_flags("visit") & CMD_FORWARDABLE, 0);
	ASSERT_EQ(cmd_flags("bogus"), 0);
	/* Unknown commands and options stop before anything runs. */
	ASSERT_EQ(flags_of(0, ARGV(bogus)), -1);
	ASSERT_EQ(flags_of(1, ARGV(status, bad)), -1);
}
