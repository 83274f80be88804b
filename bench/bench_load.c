/* bench_load.c - HQ under load: D simulated devices enrol with a real
 * `fieldsync-hq serve` on loopback and push their change sets at once.
 *
 * It reports throughput and request latency (p50, p99, max) against one
 * device pushing as many sets serially in the same run, the 503 answers
 * (each must carry Retry-After), and HQ's memory, sampled from
 * /proc/PID/status through two rounds of equal size: HQ's memory is
 * bounded when the second round, after twice as much was pushed, peaks no
 * higher than the first.  Last, it opens HQ's database read-only and
 * checks that every change pushed is there exactly once, with its value.
 *
 * Each device is a thread with its own identity (crypto/identity.h), its
 * own libcurl transport (agent/push.h, the one the agent uses: one easy
 * handle, keep-alive) and its own chain of change sets, built by the real
 * encoder (sync/changeset.h) before the clock starts, so the rounds time
 * HQ and not zstd.  A 503 is honoured by waiting Retry-After plus jitter;
 * a transport error by resending, which HQ answers with the same receipt
 * when the set had arrived.  Every receipt is verified with the HQ key
 * pinned at enrolment.  The names are synthetic Serbian Latin and
 * Cyrillic names put together at random; no real data, and none of it is
 * printed.
 *
 * Output: human-readable lines, one "summary:" line of key=value pairs
 * for tests, and rows "row\tNAME\tMEASURED\tBASELINE\tRATIO" for the
 * benchmark table.  Exit 0 when every step worked; with --check also
 * only when no change was lost or duplicated, no request failed and every
 * 503 had a Retry-After.  Times are reported, never asserted.
 *
 * Sections: options; synthetic visits; child processes; HQ; the memory
 * sampler; a device (post, enrol, encode, push); the check against HQ's
 * database; report; main.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <sodium.h>

#include "agent/enroll.h"
#include "agent/hqcurl.h"
#include "agent/push.h"
#include "crypto/identity.h"
#include "crypto/secmem.h"
#include "hq/hqconfig.h"
#include "hq/hqdb.h"
#include "hq/hqsql.h"
#include "sync/changeset.h"
#include "sync/hlc.h"
#include "sync/receipt.h"
#include "sync/token.h"
#include "sync/uuid.h"

extern char **environ;

#define CHANGES_PER_VISIT 11   /* a beneficiary's 5 fields and the visit's 6 */
#define MAX_DEVICES 2000       /* one thread each */
#define MAX_SETS 100000	       /* per device */
#define MAX_VISITS 1000	       /* per set: 11,000 changes, under the 20,000 cap */
#define POST_GIVE_UP_S 120     /* a request still refused after this long fails */
#define TRANSPORT_RETRY_MS 100 /* base wait before resending after a transport error */
#define RETRY_JITTER_MS 500    /* added to Retry-After, so devices do not return in step */
#define HQ_START_S 60	       /* wait this long for "listening on" (ASan is slow) */
#define HQ_STOP_S 60	       /* and this long for HQ to exit on SIGTERM */
#define SAMPLE_MS 5	       /* RSS sampling period */

/* ---- options ------------------------------------------------------------ */

struct options {
	unsigned devices;      /* simulated devices pushing at once */
	unsigned sets;	       /* change sets per device, split over two rounds */
	unsigned visits;       /* visits per change set */
	unsigned max_inflight; /* HQ's [server] max_inflight */
	unsigned threads;      /* HQ's [server] threads */
	unsigned baseline;     /* sets the serial baseline device pushes; 0: as one round */
	const char *hq_bin;    /* the fieldsync-hq to start */
	const char *forms_dir; /* HQ's [forms] dir */
	unsigned rss_limit_mb; /* --check: HQ's peak RSS must stay below; 0: no limit */
	int check;	       /* exit non-zero on any loss, duplicate or error */
	int keep;	       /* keep the temporary directory */
	const char *pg;	       /* HQ on PostgreSQL: a connection string; NULL: SQLite */
	const char *pg_pass;   /* ... and its password file */
	unsigned processes;    /* serve processes, devices split among them in turn */
};

#define MAX_PROCESSES 8

static const char usage[] =
	"usage: bench_load [--devices N] [--sets N] [--visits N] [--max-inflight N]\n"
	"                  [--threads N] [--hq-bin PATH] [--forms-dir DIR] [--check]\n"
	"                  [--rss-limit-mb N] [--baseline-sets N] [--quick] [--keep]\n"
	"  --devices N       simulated devices pushing at once (default 200)\n"
	"  --sets N          change sets per device, pushed in two rounds (default 10)\n"
	"  --visits N        visits per change set, 11 changes each (default 10)\n"
	"  --max-inflight N  HQ's [server] max_inflight (default 64, HQ's own)\n"
	"  --threads N       HQ's [server] threads (default 4, HQ's own)\n"
	"  --baseline-sets N sets one device pushes alone first, the baseline\n"
	"                    (default: as many as all devices push in one round)\n"
	"  --hq-bin PATH     fieldsync-hq to run (default: the one built with this)\n"
	"  --check           exit 1 on a lost or duplicated change, an error, or a 503\n"
	"                    without Retry-After (and over --rss-limit-mb)\n"
	"  --quick           2 sets of 2 visits per device\n"
	"  --keep            keep HQ's directory and log\n"
	"  --postgresql CONNINFO --pg-password-file FILE\n"
	"                    HQ on PostgreSQL (CONNINFO names an empty database)\n"
	"  --processes N     N serve processes (1 to 8; more than 1 needs\n"
	"                    --postgresql); device i talks to process i mod N\n";

static int parse_unsigned(const char *s, unsigned lo, unsigned hi, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
		return -1;
	*ret = (unsigned)v;
	return 0;
}

static int options_parse(int argc, char **argv, struct options *o)
{
	static const struct {
		const char *name;
		unsigned lo, hi;
		size_t off;
	} nums[] = {
		{ "--devices", 1, MAX_DEVICES, offsetof(struct options, devices) },
		{ "--sets", 2, MAX_SETS, offsetof(struct options, sets) },
		{ "--visits", 1, MAX_VISITS, offsetof(struct options, visits) },
		{ "--max-inflight", 1, 65536, offsetof(struct options, max_inflight) },
		{ "--threads", 1, 256, offsetof(struct options, threads) },
		{ "--rss-limit-mb", 1, 1u << 20, offsetof(struct options, rss_limit_mb) },
		{ "--baseline-sets", 1, MAX_SETS, offsetof(struct options, baseline) },
		{ "--processes", 1, MAX_PROCESSES, offsetof(struct options, processes) },
	};
	int quick = 0, sets_given = 0, visits_given = 0;

	*o = (struct options){ .devices = 200,
			       .sets = 10,
			       .visits = 10,
			       .max_inflight = 64,
			       .threads = 4,
			       .processes = 1,
			       .hq_bin = FS_HQ_BIN,
			       .forms_dir = FS_SOURCE_DIR "/conf/forms" };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t k;

		if (!strcmp(a, "--check")) {
			o->check = 1;
			continue;
		}
		if (!strcmp(a, "--quick")) {
			quick = 1;
			continue;
		}
		if (!strcmp(a, "--keep")) {
			o->keep = 1;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			exit(0);
		}
		if (i + 1 >= argc)
			goto bad;
		if (!strcmp(a, "--hq-bin")) {
			o->hq_bin = argv[++i];
			continue;
		}
		if (!strcmp(a, "--forms-dir")) {
			o->forms_dir = argv[++i];
			continue;
		}
		if (!strcmp(a, "--postgresql")) {
			o->pg = argv[++i];
			continue;
		}
		if (!strcmp(a, "--pg-password-file")) {
			o->pg_pass = argv[++i];
			continue;
		}
		for (k = 0; k < sizeof(nums) / sizeof(nums[0]); k++)
			if (!strcmp(a, nums[k].name))
				break;
		if (k == sizeof(nums) / sizeof(nums[0]) ||
		    parse_unsigned(argv[++i], nums[k].lo, nums[k].hi,
				   (unsigned *)((char *)o + nums[k].off)) < 0)
			goto bad;
		sets_given |= !strcmp(a, "--sets");
		visits_given |= !strcmp(a, "--visits");
	}
	if (o->processes > 1 && !o->pg) {
		fprintf(stderr, "bench_load: several processes share a PostgreSQL database only\n");
		return -1;
	}
	if (quick) {
		/* Explicit sizes win over --quick. */
		if (!sets_given)
			o->sets = 2;
		if (!visits_given)
			o->visits = 2;
	}
	return 0;
bad:
	fprintf(stderr, "bench_load: bad or missing argument near '%s'\n%s", argv[argc - 1], usage);
	return -1;
}

/* ---- synthetic visits ---------------------------------------------------- */

/* Common Serbian given names and surnames, combined at random: nobody's
 * record.  Latin and Cyrillic, so both scripts go through HQ. */
static const char *const given_lat[] = { "Jovana", "Milica",  "Đorđe",	 "Nemanja", "Ružica",
					 "Živko",  "Ljubica", "Čedomir", "Šćepan",  "Dragana" };
static const char *const given_cyr[] = { "Јована", "Милица", "Ђорђе",	"Немања", "Ружица",
					 "Живко",  "Љубица", "Чедомир", "Шћепан", "Драгана" };
static const char *const family_lat[] = { "Petrović", "Jovanović", "Ružičić", "Nikolić",
					  "Đurić",    "Šaković",   "Čolić",   "Ljubić" };
static const char *const family_cyr[] = { "Петровић", "Јовановић", "Ружичић", "Николић",
					  "Ђурић",    "Шаковић",   "Чолић",   "Љубић" };
static const char *const towns_lat[] = {
	"Sremska Mitrovica", "Bujanovac", "Sjenica",  "Tutin",
	"Preševo",	     "Vranje",	  "Novi Sad", "Obrenovac"
};
static const char *const towns_cyr[] = {
	"Сремска Митровица", "Бујановац", "Сјеница",  "Тутин",
	"Прешево",	     "Врање",	  "Нови Сад", "Обреновац"
};
static const char *const statuses[] = { "refugee", "idp", "asylum_seeker", "host_community" };
static const char *const visit_types[] = { "needs_assessment",	  "housing_construction",
					   "prefab_installation", "sme_grant_followup",
					   "vocational_training", "legal_assistance" };
static const char *const words[] = { "kuća", "krov",  "prozor", "dokumenta", "pomoć", "porodica",
				     "zima", "ogrev", "voda",	"кућа",	     "помоћ", "документи" };

#define PICK(list, st) (list[prng_next(st) % (sizeof(list) / sizeof(list[0]))])

/* splitmix64: the same (device, set) always gives the same visits, so
 * the final check makes them again instead of keeping them. */
static uint64_t prng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A UUIDv7 (RFC 9562) from ms and the generator. */
static void uuid_make(uint64_t ms, uint64_t *st, char out[UUID_TEXT_LEN + 1])
{
	uint64_t a = prng_next(st), b = prng_next(st);
	uint8_t u[16];

	for (int i = 0; i < 6; i++)
		u[i] = (uint8_t)(ms >> (40 - 8 * i));
	u[6] = (uint8_t)(0x70 | (a & 0x0f));
	u[7] = (uint8_t)(a >> 8);
	u[8] = (uint8_t)(0x80 | (b & 0x3f));
	for (int i = 9; i < 16; i++)
		u[i] = (uint8_t)(b >> (8 * (i - 8)));
	snprintf(out, UUID_TEXT_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
}

/* What the visits of every set derive from. */
struct workload {
	unsigned visits;  /* per set */
	uint64_t seed;	  /* random per run */
	uint64_t base_ms; /* first HLC; an hour in the past, so none is ahead of HQ */
};

static int change_put(struct change *c, const char *id, const char *collection, const char *field,
		      cJSON *value, hlc_t hlc)
{
	if (!value)
		return -ENOMEM;
	snprintf(c->record_id, sizeof(c->record_id), "%s", id);
	snprintf(c->collection, sizeof(c->collection), "%s", collection);
	snprintf(c->field, sizeof(c->field), "%s", field);
	c->value = value;
	c->hlc = hlc;
	return 0;
}

/* The changes of set `set` (0-based) of device `dev`: per visit a new
 * beneficiary (5 fields) and the visit to them (6 fields).  *ret is
 * freed with changes_free(*ret, w->visits * CHANGES_PER_VISIT). */
static int visits_make(const struct workload *w, unsigned dev, unsigned set, struct change **ret)
{
	size_t n = (size_t)w->visits * CHANGES_PER_VISIT;
	struct change *c = calloc(n, sizeof(*c));
	uint64_t st = w->seed ^ ((uint64_t)dev * 0xd1342543de82ef95ULL) ^
		      ((uint64_t)set * 0xc2b2ae3d27d4eb4fULL);
	int r = 0;

	if (!c)
		return -ENOMEM;
	for (unsigned v = 0, k = 0; v < w->visits && r == 0; v++) {
		uint64_t ms = w->base_ms + (uint64_t)set * w->visits + v;
		hlc_t hlc = (hlc_t)ms << 16;
		char ben[UUID_TEXT_LEN + 1], vis[UUID_TEXT_LEN + 1], name[128], notes[256];
		char date[16], next[16], gps[32];
		int cyr = (int)(prng_next(&st) & 1);
		size_t len = 0;

		uuid_make(ms, &st, ben);
		uuid_make(ms, &st, vis);
		snprintf(name, sizeof(name), "%s %s",
			 cyr ? PICK(given_cyr, &st) : PICK(given_lat, &st),
			 cyr ? PICK(family_cyr, &st) : PICK(family_lat, &st));
		snprintf(date, sizeof(date), "2026-10-%02u", (unsigned)(1 + prng_next(&st) % 28));
		snprintf(next, sizeof(next), "2026-12-%02u", (unsigned)(1 + prng_next(&st) % 28));
		snprintf(gps, sizeof(gps), "43.%04u,20.%04u", (unsigned)(prng_next(&st) % 10000),
			 (unsigned)(prng_next(&st) % 10000));
		for (int i = 0; i < 8; i++)
			len += (size_t)snprintf(notes + len, sizeof(notes) - len, "%s%s",
						i ? " " : "", PICK(words, &st));
		if ((r = change_put(&c[k++], ben, "beneficiaries", "full_name",
				    cJSON_CreateString(name), hlc)) < 0 ||
		    (r = change_put(
			     &c[k++], ben, "beneficiaries", "municipality",
			     /* The device's own municipality (HQ checks the scope), in
			      * either script. */
			     cJSON_CreateString(cyr ? towns_cyr[dev % 8] : towns_lat[dev % 8]),
			     hlc)) < 0 ||
		    (r = change_put(&c[k++], ben, "beneficiaries", "status",
				    cJSON_CreateString(PICK(statuses, &st)), hlc)) < 0 ||
		    (r = change_put(&c[k++], ben, "beneficiaries", "household_size",
				    cJSON_CreateNumber((double)(1 + prng_next(&st) % 9)), hlc)) <
			    0 ||
		    (r = change_put(&c[k++], ben, "beneficiaries", "consent", cJSON_CreateTrue(),
				    hlc)) < 0 ||
		    (r = change_put(&c[k++], vis, "visits", "beneficiary_id",
				    cJSON_CreateString(ben), hlc)) < 0 ||
		    (r = change_put(&c[k++], vis, "visits", "visit_date", cJSON_CreateString(date),
				    hlc)) < 0 ||
		    (r = change_put(&c[k++], vis, "visits", "visit_type",
				    cJSON_CreateString(PICK(visit_types, &st)), hlc)) < 0 ||
		    (r = change_put(&c[k++], vis, "visits", "notes", cJSON_CreateString(notes),
				    hlc)) < 0 ||
		    (r = change_put(&c[k++], vis, "visits", "gps", cJSON_CreateString(gps), hlc)) <
			    0 ||
		    (r = change_put(&c[k++], vis, "visits", "next_visit", cJSON_CreateString(next),
				    hlc)) < 0)
			break;
	}
	if (r < 0) {
		changes_free(c, n);
		return r;
	}
	*ret = c;
	return 0;
}

/* ---- child processes ------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Start argv with stdout on out_fd and stderr on err_fd (-1: /dev/null
 * for stdout, ours for stderr). */
static int child_spawn(char *const argv[], int out_fd, int err_fd, pid_t *ret_pid)
{
	posix_spawn_file_actions_t fa;
	int r;

	if ((r = posix_spawn_file_actions_init(&fa)) != 0)
		return -r;
	if (out_fd >= 0)
		r = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
	else
		r = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	if (r == 0 && err_fd >= 0)
		r = posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
	if (r == 0)
		r = posix_spawn(ret_pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return -r;
}

/* Wait for pid; 0 when it exited 0, else -ECHILD with *ret_status. */
static int child_wait(pid_t pid, int *ret_status)
{
	int status = 0;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (ret_status)
		*ret_status = status;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

/* Run argv to completion; its stdout (at most cap - 1 bytes) into out
 * when out is not NULL. */
static int child_run(char *const argv[], char *out, size_t cap)
{
	int fds[2] = { -1, -1 }, r;
	size_t got = 0;
	pid_t pid;

	if (out && pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	r = child_spawn(argv, out ? fds[1] : -1, -1, &pid);
	if (fds[1] >= 0)
		close(fds[1]);
	if (r < 0)
		goto out;
	while (out) {
		ssize_t n = read(fds[0], out + got, cap - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (got += (size_t)n) == cap - 1)
			break;
	}
	if (out)
		out[got] = '\0';
	r = child_wait(pid, NULL);
out:
	if (fds[0] >= 0)
		close(fds[0]);
	return r;
}

/* ---- HQ ---------------------------------------------------------------------- */

struct hq {
	char dir[256];	     /* temporary: hq.conf, hq/ (keys, database), hq.log */
	char conf[PATH_MAX]; /* hq.conf */
	char log[PATH_MAX];  /* serve's stderr */
	char url[64];	     /* http://127.0.0.1:PORT */
	pid_t pid;	     /* serve; 0 when not running */
	double cpu_s;	     /* serve's CPU time, user and system, once stopped */
};

static int hq_write_conf(const struct options *o, struct hq *h)
{
	FILE *f;
	int r = 0;

	snprintf(h->conf, sizeof(h->conf), "%s/hq.conf", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/hq.log", h->dir);
	if (!(f = fopen(h->conf, "wxe")))
		return -errno;
	fprintf(f,
		"[server]\nlisten = 127.0.0.1:0\nthreads = %u\nmax_inflight = %u\n"
		/* every simulated device shares 127.0.0.1 */
		"per_peer_connections = 65536\nenroll_rate = 1000000\nproof_rate = 1000000\n"
		"[store]\ndata_dir = %s/hq\n[forms]\ndir = %s\n",
		o->threads, o->max_inflight, h->dir, o->forms_dir);
	if (o->pg)
		fprintf(f, "[store]\nbackend = postgresql\npostgresql = %s\n%s%s\n", o->pg,
			o->pg_pass ? "postgresql_password_file = " : "",
			o->pg_pass ? o->pg_pass : "");
	if (ferror(f))
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

/* A temporary directory with hq.conf and HQ's keys and database. */
static int hq_setup(const struct options *o, struct hq *h)
{
	const char *tmp = getenv("TMPDIR");
	char *argv[] = { (char *)o->hq_bin, "-c", h->conf, "init", NULL };
	int r;

	snprintf(h->dir, sizeof(h->dir), "%s/bench_load.XXXXXX",
		 tmp && *tmp && strlen(tmp) < sizeof(h->dir) - 32 ? tmp : "/tmp");
	if (!mkdtemp(h->dir)) {
		fprintf(stderr, "bench_load: temporary directory in %s: %s\n", h->dir,
			strerror(errno));
		h->dir[0] = '\0';
		return -errno;
	}
	if ((r = hq_write_conf(o, h)) < 0) {
		fprintf(stderr, "bench_load: write %s: %s\n", h->conf, strerror(-r));
		return r;
	}
	if ((r = child_run(argv, NULL, 0)) < 0)
		fprintf(stderr, "bench_load: %s init failed\n", o->hq_bin);
	return r;
}

/* One token from `fieldsync-hq enroll-token` (its last line) into out. */
static int hq_token(const struct options *o, struct hq *h, unsigned i, char out[TOKEN_TEXT_MAX])
{
	char team[32], buf[1024], *last, *end;
	char *argv[] = { (char *)o->hq_bin,
			 "-c",
			 h->conf,
			 "enroll-token",
			 "--team",
			 team,
			 "--municipality",
			 (char *)towns_lat[i % 8],
			 NULL };
	int r;

	snprintf(team, sizeof(team), "Tim %u", i + 1);
	if ((r = child_run(argv, buf, sizeof(buf))) == 0) {
		while ((end = strrchr(buf, '\n')) && end[1] == '\0')
			*end = '\0';
		last = (last = strrchr(buf, '\n')) ? last + 1 : buf;
		if (strncmp(last, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) ||
		    strlen(last) >= TOKEN_TEXT_MAX)
			r = -EPROTO;
		else
			memcpy(out, last, strlen(last) + 1);
	}
	sodium_memzero(buf, sizeof(buf));
	if (r < 0)
		fprintf(stderr, "bench_load: %s enroll-token failed\n", o->hq_bin);
	return r;
}

/* Start `serve` and wait for "listening on 127.0.0.1:PORT" in its log. */
static int hq_start(const struct options *o, struct hq *h)
{
	char *argv[] = { (char *)o->hq_bin, "-c", h->conf, "serve", NULL };
	char buf[4096];
	double deadline = now_s() + HQ_START_S;
	int fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r;

	if (fd < 0)
		return -errno;
	r = child_spawn(argv, -1, fd, &h->pid);
	close(fd);
	if (r < 0) {
		h->pid = 0;
		fprintf(stderr, "bench_load: could not start %s: %s\n", o->hq_bin, strerror(-r));
		return r;
	}
	while (now_s() < deadline) {
		FILE *f = fopen(h->log, "re");
		const char *p;
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		unsigned port;

		if (f)
			fclose(f);
		buf[n] = '\0';
		if ((p = strstr(buf, "listening on 127.0.0.1:")) &&
		    sscanf(p, "listening on 127.0.0.1:%u", &port) == 1 && port > 0 &&
		    port < 65536) {
			snprintf(h->url, sizeof(h->url), "http://127.0.0.1:%u", port);
			return 0;
		}
		if (waitpid(h->pid, NULL, WNOHANG) == h->pid) {
			h->pid = 0;
			break;
		}
		sleep_ms(20);
	}
	fprintf(stderr, "bench_load: fieldsync-hq serve did not start; see %s\n", h->log);
	return -ETIMEDOUT;
}

/* SIGTERM, and wait; 0 when HQ exited 0 (in the ASan build a leak is a
 * non-zero exit). */
static int hq_stop(struct hq *h)
{
	double deadline = now_s() + HQ_STOP_S;
	struct rusage ru = { 0 };
	int status = 0;
	pid_t got;

	if (!h->pid)
		return -ESRCH;
	kill(h->pid, SIGTERM);
	while ((got = wait4(h->pid, &status, WNOHANG, &ru)) == 0 && now_s() < deadline)
		sleep_ms(20);
	if (got == 0) {
		kill(h->pid, SIGKILL);
		wait4(h->pid, &status, 0, &ru);
	}
	h->pid = 0;
	h->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	if (got == 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench_load: HQ did not exit cleanly (%s %d); see its log\n",
			got == 0	      ? "killed after"
			: WIFSIGNALED(status) ? "signal"
					      : "exit",
			got == 0	      ? HQ_STOP_S
			: WIFSIGNALED(status) ? WTERMSIG(status)
					      : WEXITSTATUS(status));
		return -ECHILD;
	}
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* ---- the memory sampler ---------------------------------------------------- */

enum phase { PH_IDLE, PH_ENROL, PH_BASELINE, PH_ROUND1, PH_ROUND2, PHASES };

struct sampler {
	pid_t pid; /* HQ */
	pthread_t thread;
	pthread_mutex_t lock; /* guards the fields below */
	int stop;
	enum phase phase;     /* what the devices are doing now */
	long peak_kb[PHASES]; /* highest VmRSS seen in each phase */
	unsigned long samples;
};

/* VmRSS and VmHWM of pid, in kB. */
static int proc_rss(pid_t pid, long *ret_rss, long *ret_hwm)
{
	char path[64], line[256];
	long rss = -1, hwm = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "VmRSS:", 6))
			rss = strtol(line + 6, NULL, 10);
		else if (!strncmp(line, "VmHWM:", 6))
			hwm = strtol(line + 6, NULL, 10);
	}
	fclose(f);
	if (rss < 0 || hwm < 0)
		return -ENOENT;
	*ret_rss = rss;
	if (ret_hwm)
		*ret_hwm = hwm;
	return 0;
}

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;

	for (;;) {
		long rss;
		int ok = proc_rss(s->pid, &rss, NULL) == 0;

		pthread_mutex_lock(&s->lock);
		if (ok && rss > s->peak_kb[s->phase])
			s->peak_kb[s->phase] = rss;
		s->samples += ok;
		if (s->stop) {
			pthread_mutex_unlock(&s->lock);
			return NULL;
		}
		pthread_mutex_unlock(&s->lock);
		sleep_ms(SAMPLE_MS);
	}
}

static void sampler_phase(struct sampler *s, enum phase p)
{
	pthread_mutex_lock(&s->lock);
	s->phase = p;
	pthread_mutex_unlock(&s->lock);
}

/* ---- a device ------------------------------------------------------------------- */

/* One change set, encoded before the clock starts. */
struct set {
	uint8_t *body;
	size_t len;
	uint8_t hash[CHANGESET_HASH_BYTES];
	uint32_t changes;
};

struct run;

struct device {
	struct run *run;
	unsigned index; /* seeds its visits; the baseline is run->o.devices */
	struct identity *id;
	uint8_t id_raw[CHANGESET_DEVICE_BYTES];
	struct hqlink *t;				/* its own libcurl handle and connection */
	char url_enroll[96], url_sets[96];		/* of its serve process */
	const char *token;				/* in run->tokens (secure memory) */
	uint8_t hq_sign_pk[crypto_sign_PUBLICKEYBYTES]; /* pinned at enrolment */
	uint8_t hq_box_pk[crypto_box_PUBLICKEYBYTES];
	struct set *sets; /* nsets, in sequence order */
	unsigned nsets;
	double *latency;		   /* per set: the request HQ answered 200, seconds */
	double *total;			   /* per set: first try to receipt, waits included */
	uint8_t *receipt;		   /* RECEIPT_MAX_BYTES of scratch */
	unsigned long long n503;	   /* 503 answers to change sets */
	unsigned long long n503_enrol;	   /* ... and to the enrolment */
	unsigned long long no_retry_after; /* 503 answers without Retry-After */
	unsigned long long resent;	   /* transport errors, each followed by a resend */
	unsigned long long errors;	   /* anything else: fatal for this device */
	unsigned long long merged;	   /* changes merged, from verified receipts */
	unsigned pushed;		   /* sets acknowledged */
	char error[320];		   /* the first error, for the report */
};

struct run {
	struct options o;
	struct hq hq[MAX_PROCESSES]; /* serve processes on one database; [0] is sampled */
	struct workload w;
	unsigned split;		   /* sets in round 1; the rest in round 2 */
	unsigned baseline_sets;	   /* pushed serially by the extra device */
	pthread_barrier_t barrier; /* the devices and main */
	struct device *devs;	   /* o.devices + 1: the last is the serial baseline */
	char *tokens;		   /* secure memory, (o.devices + 1) * TOKEN_TEXT_MAX */
};

__attribute__((format(printf, 2, 3))) static int device_fail(struct device *d, const char *fmt, ...)
{
	va_list ap;

	d->errors++;
	if (!d->error[0]) {
		va_start(ap, fmt);
		vsnprintf(d->error, sizeof(d->error), fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

/* POST body until HQ answers something other than 503 or the transport
 * fails: then 0 with *resp filled and the answered request's time in
 * *ret_s.  503: wait Retry-After (1 s when missing, which is counted)
 * plus jitter.  Transport error: wait a little and resend. */
static int device_post(struct device *d, const char *url, const char *type, const uint8_t *body,
		       size_t len, unsigned long long *n503, struct hqlink_response *resp,
		       double *ret_s)
{
	double give_up = now_s() + POST_GIVE_UP_S;

	for (;;) {
		struct fs_error err = { 0 };
		double t0 = now_s();
		int r = d->t->post(d->t, url, type, body, len, NULL, resp, &err);
		double dt = now_s() - t0;
		long wait_s;

		if (r == 0 && resp->status != 503) {
			*ret_s = dt;
			return 0;
		}
		if (r < 0 && r != -EHOSTUNREACH)
			return device_fail(d, "%s", err.msg);
		if (now_s() > give_up)
			return device_fail(d, "still refused after %d s: %s", POST_GIVE_UP_S,
					   r < 0 ? err.msg : "503");
		if (r < 0) {
			d->resent++;
			sleep_ms(TRANSPORT_RETRY_MS + randombytes_uniform(TRANSPORT_RETRY_MS));
			continue;
		}
		(*n503)++;
		if (resp->retry_after <= 0)
			d->no_retry_after++;
		/* HQ says 1 s; a wait past the give-up time would only idle. */
		wait_s = resp->retry_after > 0 ? resp->retry_after : 1;
		if (wait_s > POST_GIVE_UP_S)
			wait_s = POST_GIVE_UP_S;
		sleep_ms((unsigned)wait_s * 1000 + randombytes_uniform(RETRY_JITTER_MS));
		hqlink_response_clear(resp);
	}
}

/* Enrol through POST /v1/enroll and pin HQ's keys once they match the
 * token's fingerprint, as agent/enroll.c does. */
static int device_enrol(struct device *d)
{
	struct enroll_token *tok = secmem_alloc(sizeof(*tok));
	struct hqlink_response resp = { 0 };
	struct enrolment e = { 0 };
	struct fs_error err = { 0 };
	char *body = NULL;
	size_t len = 0;
	double dt;
	int r;

	if (!tok)
		return device_fail(d, "enrol: out of secure memory");
	if (token_parse(d->token, tok) < 0) {
		r = device_fail(d, "enrol: HQ printed a malformed token");
		goto out;
	}
	if ((r = enroll_request_body(d->id, tok, &body, &len, &err)) < 0) {
		r = device_fail(d, "enrol: cannot build the request: %s", err.msg);
		goto out;
	}
	if ((r = device_post(d, d->url_enroll, "application/json", (const uint8_t *)body, len,
			     &d->n503_enrol, &resp, &dt)) < 0)
		goto out;
	if (resp.status != 200) {
		char why[200];

		hqlink_error_text(&resp, why, sizeof(why));
		r = device_fail(d, "enrol: HTTP %ld (%s)", resp.status, why);
		goto out;
	}
	/* The agent's own reading of the answer, fingerprint check included. */
	snprintf(e.target.url, sizeof(e.target.url), "%s", d->url_enroll);
	if ((r = enroll_answer_read(d->id, tok, &resp, &e, &err)) < 0) {
		r = device_fail(d, "enrol: %s", err.msg);
		goto out;
	}
	memcpy(d->hq_sign_pk, e.target.hq_sign_pk, sizeof(d->hq_sign_pk));
	memcpy(d->hq_box_pk, e.hq_box_pk, sizeof(d->hq_box_pk));
out:
	hqlink_response_clear(&resp);
	secmem_free(body);
	secmem_free(tok);
	return r;
}

/* Build the device's whole chain: sequence 1..nsets, each set linked to
 * the hash of the one before, sealed to HQ and signed. */
static int device_encode(struct device *d)
{
	struct changeset_header h = { .seq = 1 };
	size_t n = (size_t)d->run->w.visits * CHANGES_PER_VISIT;

	memcpy(h.device, d->id_raw, sizeof(h.device));
	for (unsigned s = 0; s < d->nsets; s++, h.seq++) {
		struct fs_error err = { 0 };
		struct change *c = NULL;
		int r;

		if ((r = visits_make(&d->run->w, d->index, s, &c)) < 0)
			return device_fail(d, "make visits: %s", fs_strerror(r));
		r = changeset_encode(&h, c, n, d->hq_box_pk, d->id->sign_sk, &d->sets[s].body,
				     &d->sets[s].len, &err);
		changes_free(c, n);
		if (r < 0)
			return device_fail(d, "encode set %u: %s", s + 1, err.msg);
		changeset_hash(d->sets[s].body, d->sets[s].len, d->sets[s].hash);
		memcpy(h.prev, d->sets[s].hash, sizeof(h.prev));
		d->sets[s].changes = (uint32_t)n;
	}
	return 0;
}

/* The 200 answer must carry a receipt signed by the pinned HQ key for
 * exactly this device, sequence and hash, with every change merged. */
static int receipt_check(struct device *d, unsigned s, const struct hqlink_response *resp)
{
	const struct set *set = &d->sets[s];
	struct receipt rc = { 0 };
	cJSON *o = resp->body ? cJSON_ParseWithLength(resp->body, resp->len) : NULL;
	const cJSON *merged = cJSON_GetObjectItemCaseSensitive(o, "merged");
	size_t n = 0;
	int r = 0;

	if (hqlink_json_base64(o, "receipt", d->receipt, RECEIPT_MAX_BYTES, 0, &n) < 0) {
		r = device_fail(d, "set %u: the 200 answer carries no receipt", s + 1);
		goto out;
	}
	if (receipt_verify(d->receipt, n, d->hq_sign_pk, &rc) < 0) {
		r = device_fail(d, "set %u: the receipt does not verify with HQ's key", s + 1);
		goto out;
	}
	if (memcmp(rc.device, d->id_raw, sizeof(rc.device)) || rc.seq != s + 1ULL ||
	    memcmp(rc.hash, set->hash, sizeof(rc.hash)) || rc.quarantined ||
	    rc.merged != set->changes || !cJSON_IsNumber(merged) ||
	    merged->valuedouble != (double)rc.merged) {
		r = device_fail(d, "set %u: receipt for another set, or %u of %u merged", s + 1,
				rc.merged, set->changes);
		goto out;
	}
	d->merged += rc.merged;
out:
	receipt_clear(&rc);
	cJSON_Delete(o);
	return r;
}

/* Push sets [from, to) in order; stop at the first failure (the chain
 * cannot go on past a set HQ has not taken). */
static void device_push(struct device *d, unsigned from, unsigned to)
{
	for (unsigned s = from; s < to && !d->errors; s++) {
		struct hqlink_response resp = { 0 };
		double t0 = now_s();

		if (device_post(d, d->url_sets, PUSH_CHANGESET_TYPE, d->sets[s].body,
				d->sets[s].len, &d->n503, &resp, &d->latency[s]) == 0) {
			if (resp.status != 200) {
				char why[200];

				hqlink_error_text(&resp, why, sizeof(why));
				device_fail(d, "set %u: HTTP %ld (%s)", s + 1, resp.status, why);
			} else if (receipt_check(d, s, &resp) == 0) {
				d->total[s] = now_s() - t0;
				d->pushed++;
			}
		}
		hqlink_response_clear(&resp);
	}
}

static int barrier_wait(pthread_barrier_t *b)
{
	int r = pthread_barrier_wait(b);

	return r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD ? 0 : -r;
}

/* A device thread: enrol and encode, then the two rounds; every barrier
 * is met even after a failure, so main never waits forever. */
static void *device_main(void *arg)
{
	struct device *d = arg;
	struct run *run = d->run;

	if (device_enrol(d) == 0)
		(void)device_encode(d);
	(void)barrier_wait(&run->barrier); /* ready */
	(void)barrier_wait(&run->barrier); /* round 1 starts */
	device_push(d, 0, run->split);
	(void)barrier_wait(&run->barrier); /* round 1 done */
	(void)barrier_wait(&run->barrier); /* round 2 starts */
	device_push(d, run->split, d->nsets);
	(void)barrier_wait(&run->barrier); /* round 2 done */
	return NULL;
}

static int device_init(struct run *run, unsigned i, unsigned nsets)
{
	struct device *d = &run->devs[i];
	struct fs_error err = { 0 };

	d->run = run;
	d->index = i;
	d->nsets = nsets;
	d->token = run->tokens + (size_t)i * TOKEN_TEXT_MAX;
	d->sets = calloc(nsets, sizeof(*d->sets));
	d->latency = calloc(nsets, sizeof(double));
	d->total = calloc(nsets, sizeof(double));
	d->receipt = malloc(RECEIPT_MAX_BYTES);
	if (!d->sets || !d->latency || !d->total || !d->receipt || identity_generate(&d->id) < 0 ||
	    sodium_hex2bin(d->id_raw, sizeof(d->id_raw), d->id->id, IDENTITY_ID_HEXLEN, NULL, NULL,
			   NULL) != 0 ||
	    hqcurl_new(&d->t, &err) < 0) {
		fprintf(stderr, "bench_load: device %u: out of memory %s\n", i, err.msg);
		return -ENOMEM;
	}
	return 0;
}

static void device_clear(struct device *d)
{
	if (d->sets)
		for (unsigned s = 0; s < d->nsets; s++)
			free(d->sets[s].body);
	free(d->sets);
	free(d->latency);
	free(d->total);
	free(d->receipt);
	identity_free(d->id);
	hqlink_free(d->t);
	memset(d, 0, sizeof(*d));
}

/* ---- the check against HQ's database ----------------------------------------------- */

struct tally {
	unsigned long long expected;   /* changes pushed */
	unsigned long long lost;       /* not at HQ, or not with the value pushed */
	unsigned long long duplicated; /* at HQ more than once */
	unsigned long long sets_wrong; /* sets missing, extra or with another hash */
	unsigned long long quarantined;
	unsigned long long extra; /* field writes HQ has that nobody here pushed */
	unsigned long long seen;  /* field writes of ours found at HQ */
};

static int db_count(struct hqsql *db, const char *sql, unsigned long long *ret)
{
	struct hqsql_stmt *st = NULL;
	int r = -EIO;

	if (hqsql_prepare(db, sql, &st, NULL) == 0 && hqsql_step(st) == HQSQL_ROW) {
		*ret = (unsigned long long)hqsql_column_int64(st, 0);
		r = 0;
	}
	hqsql_finalize(st);
	return r;
}

/* One device: each of its sets stored under its hash, each change
 * written once and merged with its value. */
static int check_device(const struct run *run, const struct device *d, struct hqsql_stmt *sets,
			struct hqsql_stmt *writes, struct hqsql_stmt *fields, struct tally *t)
{
	size_t n = (size_t)run->w.visits * CHANGES_PER_VISIT;
	unsigned rows = 0;
	int rc, r = 0;

	hqsql_bind_text(sets, 1, d->id->id);
	while ((rc = hqsql_step(sets)) == HQSQL_ROW) {
		int64_t seq = hqsql_column_int64(sets, 0);
		const char *hash = hqsql_column_text(sets, 1);
		char want[2 * CHANGESET_HASH_BYTES + 1];

		rows++;
		if (seq < 1 || seq > d->nsets || !hash) {
			t->sets_wrong++;
			continue;
		}
		sodium_bin2hex(want, sizeof(want), d->sets[seq - 1].hash, CHANGESET_HASH_BYTES);
		t->sets_wrong += strcasecmp(hash, want) != 0;
	}
	hqsql_reset(sets);
	if (rc != HQSQL_DONE)
		return -EIO;
	t->sets_wrong += rows > d->nsets ? rows - d->nsets : d->nsets - rows;
	for (unsigned s = 0; s < d->nsets && r == 0; s++) {
		struct change *c = NULL;

		if ((r = visits_make(&run->w, d->index, s, &c)) < 0)
			break;
		for (size_t i = 0; i < n && r == 0; i++) {
			char *value = cJSON_PrintUnformatted(c[i].value);
			long long count = -1;
			int same = 0;

			t->expected++;
			hqsql_bind_text(writes, 1, c[i].record_id);
			hqsql_bind_text(writes, 2, c[i].field);
			hqsql_bind_text(writes, 3, d->id->id);
			if (hqsql_step(writes) == HQSQL_ROW)
				count = hqsql_column_int64(writes, 0);
			hqsql_reset(writes);
			hqsql_bind_text(fields, 1, c[i].record_id);
			hqsql_bind_text(fields, 2, c[i].field);
			rc = hqsql_step(fields);
			if (rc == HQSQL_ROW && value) {
				const char *v = hqsql_column_text(fields, 0);
				const char *dev = hqsql_column_text(fields, 1);

				same = v && dev && !strcmp(v, value) && !strcmp(dev, d->id->id);
			}
			hqsql_reset(fields);
			cJSON_free(value);
			if (!value || count < 0 || (rc != HQSQL_ROW && rc != HQSQL_DONE))
				r = -EIO;
			t->seen += count > 0 ? (unsigned long long)count : 0;
			if (count == 0 || !same)
				t->lost++;
			else if (count > 1)
				t->duplicated += (unsigned long long)count - 1;
		}
		changes_free(c, n);
	}
	return r;
}

/* Open HQ's database (HQ has stopped) as its own config says, SQLite or
 * PostgreSQL, and tally every device. */
static int check_hq(const struct run *run, struct tally *t)
{
	struct hq_config cfg = { 0 };
	struct fs_error err = { 0 };
	struct hqsql *db = NULL;
	struct hqsql_stmt *sets = NULL, *writes = NULL, *fields = NULL;
	unsigned long long total = 0;
	int r;

	if ((r = hqconfig_load(run->hq[0].conf, &cfg, &err)) < 0 ||
	    (r = hqconfig_finish(&cfg, &err)) < 0 || (r = hqdb_connect(&cfg, &db, &err)) < 0 ||
	    (r = hqsql_prepare(db, "SELECT seq, hash FROM changesets WHERE device = ?1", &sets,
			       &err)) < 0 ||
	    (r = hqsql_prepare(db,
			       "SELECT count(*) FROM field_writes WHERE record_id = ?1 AND "
			       "field = ?2 AND device = ?3",
			       &writes, &err)) < 0 ||
	    (r = hqsql_prepare(db,
			       "SELECT value, device FROM fields WHERE record_id = ?1 AND "
			       "field = ?2",
			       &fields, &err)) < 0)
		goto out;
	for (unsigned i = 0; i <= run->o.devices; i++)
		if ((r = check_device(run, &run->devs[i], sets, writes, fields, t)) < 0) {
			snprintf(err.msg, sizeof(err.msg), "tally device %u", i);
			goto out;
		}
	r = -EIO;
	snprintf(err.msg, sizeof(err.msg), "count quarantine and writes");
	if (db_count(db, "SELECT count(*) FROM quarantine", &t->quarantined) < 0 ||
	    db_count(db, "SELECT count(*) FROM field_writes", &total) < 0)
		goto out;
	/* Writes of ours were counted above; anything more is extra. */
	t->extra = total > t->seen ? total - t->seen : 0;
	r = 0;
out:
	if (r < 0)
		fprintf(stderr, "bench_load: read HQ's database: %s\n", err.msg);
	hqsql_finalize(sets);
	hqsql_finalize(writes);
	hqsql_finalize(fields);
	hqdb_close(db);
	hqconfig_free(&cfg);
	return r;
}

/* ---- report ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v. */
static double pct(const double *v, size_t n, double q)
{
	size_t k;

	if (!n)
		return 0;
	k = (size_t)(q * (double)n + 0.999999);
	return v[k ? k - 1 : 0];
}

struct latency {
	double p50, p99, max;
};

/* Latencies of sets [from, to) of devices [first, last], sorted. */
static int latency_of(const struct run *run, unsigned first, unsigned last, unsigned from,
		      unsigned to, int total, struct latency *ret)
{
	size_t n = 0, cap = (size_t)(last - first + 1) * (to - from);
	double *v = malloc((cap ? cap : 1) * sizeof(double));

	if (!v)
		return -ENOMEM;
	for (unsigned i = first; i <= last; i++) {
		const struct device *d = &run->devs[i];

		for (unsigned s = from; s < to && s < d->pushed; s++)
			v[n++] = total ? d->total[s] : d->latency[s];
	}
	qsort(v, n, sizeof(double), cmp_double);
	ret->p50 = pct(v, n, 0.50);
	ret->p99 = pct(v, n, 0.99);
	ret->max = n ? v[n - 1] : 0;
	free(v);
	return 0;
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

/* ---- main ------------------------------------------------------------------------ */

/* What main measures between the barriers. */
struct timing {
	double baseline_s, round_s[2];
	double hq_cpu_s; /* every serve process's CPU time, the whole run */
	long rss_start_kb, hwm_kb[2];
};

static int run_rounds(struct run *run, struct sampler *smp, pthread_t *threads,
		      unsigned *ret_started, struct timing *tm)
{
	struct device *base = &run->devs[run->o.devices];
	long rss;
	double t0 = now_s();
	int r;

	*ret_started = 0;
	sampler_phase(smp, PH_ENROL);
	for (unsigned i = 0; i < run->o.devices; i++) {
		if ((r = pthread_create(&threads[i], NULL, device_main, &run->devs[i])) != 0) {
			/* The threads already started would wait at the barrier
			 * for ever: stop HQ and leave at once. */
			fprintf(stderr, "bench_load: start device thread %u: %s\n", i, strerror(r));
			kill(run->hq[0].pid, SIGKILL);
			_exit(1);
		}
		++*ret_started;
	}
	/* The baseline device enrols and encodes alongside the others ... */
	if (device_enrol(base) == 0)
		(void)device_encode(base);
	if ((r = barrier_wait(&run->barrier)) < 0) /* ready */
		return r;
	fprintf(stderr, "bench_load: %u devices enrolled and encoded in %.1f s; serial baseline\n",
		run->o.devices, now_s() - t0);
	/* ... and pushes alone, one request at a time, while they wait. */
	sampler_phase(smp, PH_BASELINE);
	t0 = now_s();
	device_push(base, 0, base->nsets);
	tm->baseline_s = now_s() - t0;
	for (int k = 0; k < 2; k++) {
		fprintf(stderr, "bench_load: round %d\n", k + 1);
		sampler_phase(smp, k ? PH_ROUND2 : PH_ROUND1);
		if ((r = barrier_wait(&run->barrier)) < 0) /* round starts */
			return r;
		t0 = now_s();
		if ((r = barrier_wait(&run->barrier)) < 0) /* round done */
			return r;
		tm->round_s[k] = now_s() - t0;
		fprintf(stderr, "bench_load: round %d took %.1f s\n", k + 1, tm->round_s[k]);
		if (proc_rss(run->hq[0].pid, &rss, &tm->hwm_kb[k]) < 0) {
			fprintf(stderr, "bench_load: HQ (pid %d) is gone\n", (int)run->hq[0].pid);
			tm->hwm_kb[k] = -1;
		}
	}
	return 0;
}

struct totals {
	unsigned long long sets, changes, n503, n503_enrol, no_retry_after, resent, errors;
	unsigned failed; /* devices with an error */
};

static void totals_of(const struct run *run, unsigned first, unsigned last, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = first; i <= last; i++) {
		const struct device *d = &run->devs[i];

		t->sets += d->pushed;
		t->changes += d->merged;
		t->n503 += d->n503;
		t->n503_enrol += d->n503_enrol;
		t->no_retry_after += d->no_retry_after;
		t->resent += d->resent;
		t->errors += d->errors;
		if (d->errors) {
			if (t->failed < 5)
				fprintf(stderr, "bench_load: device %u: %s\n", i, d->error);
			t->failed++;
		}
	}
}

/* One row for the benchmark table; r <= 0: no meaningful ratio. */
static void row(unsigned devices, const char *what, const char *measured, const char *baseline,
		double r)
{
	printf("row\tHQ under load: %u devices, %s\t%s\t%s\t", devices, what, measured, baseline);
	if (r > 0)
		printf("%.2f\n", r);
	else
		printf("-\n");
}

static int report(const struct run *run, const struct timing *tm, const struct sampler *smp,
		  const struct tally *ty, int hq_ok)
{
	const struct options *o = &run->o;
	const struct device *base = &run->devs[o->devices];
	struct latency lat, lat_b, tot;
	struct totals t, tb;
	double load_s = tm->round_s[0] + tm->round_s[1], rate, rate_b, crate, crate_b;
	long peak1 = smp->peak_kb[PH_ROUND1], peak2 = smp->peak_kb[PH_ROUND2];
	char m[96], b[96];
	int ok;

	totals_of(run, 0, o->devices - 1, &t);
	totals_of(run, o->devices, o->devices, &tb);
	if (latency_of(run, 0, o->devices - 1, 0, o->sets, 0, &lat) < 0 ||
	    latency_of(run, o->devices, o->devices, 0, base->nsets, 0, &lat_b) < 0 ||
	    latency_of(run, 0, o->devices - 1, 0, o->sets, 1, &tot) < 0)
		return -ENOMEM;
	rate = ratio((double)t.sets, load_s);
	rate_b = ratio((double)tb.sets, tm->baseline_s);
	crate = ratio((double)t.changes, load_s);
	crate_b = ratio((double)tb.changes, tm->baseline_s);

	printf("bench_load: %u devices x %u change sets x %u visits (%u changes a set), HQ "
	       "max_inflight %u, %u threads, on loopback\n",
	       o->devices, o->sets, o->visits, o->visits * CHANGES_PER_VISIT, o->max_inflight,
	       o->threads);
	printf("serial baseline: 1 device, %llu sets in %.2f s: %.0f sets/s, %.0f changes/s; "
	       "request p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
	       tb.sets, tm->baseline_s, rate_b, crate_b, lat_b.p50 * 1e3, lat_b.p99 * 1e3,
	       lat_b.max * 1e3);
	for (int k = 0; k < 2; k++) {
		unsigned sets_k = k ? o->sets - run->split : run->split;

		printf("round %d: %llu sets in %.2f s (%.0f sets/s); HQ peak RSS %.1f MiB, VmHWM "
		       "%.1f MiB\n",
		       k + 1, (unsigned long long)sets_k * o->devices, tm->round_s[k],
		       ratio((double)sets_k * o->devices, tm->round_s[k]),
		       (double)smp->peak_kb[k ? PH_ROUND2 : PH_ROUND1] / 1024,
		       (double)tm->hwm_kb[k] / 1024);
	}
	printf("under load: %llu sets, %llu changes in %.2f s: %.0f sets/s, %.0f changes/s; "
	       "request p50 %.1f ms, p99 %.1f ms, max %.1f ms; set to receipt, waits included, "
	       "p50 %.1f ms, p99 %.1f ms\n",
	       t.sets, t.changes, load_s, rate, crate, lat.p50 * 1e3, lat.p99 * 1e3, lat.max * 1e3,
	       tot.p50 * 1e3, tot.p99 * 1e3);
	printf("503 answers: %llu to change sets, %llu to enrolments, %llu without Retry-After; "
	       "resent after transport errors: %llu; errors: %llu (%u devices)\n",
	       t.n503 + tb.n503, t.n503_enrol + tb.n503_enrol, t.no_retry_after + tb.no_retry_after,
	       t.resent + tb.resent, t.errors + tb.errors, t.failed + tb.failed);
	printf("HQ RSS: %.1f MiB at start; peak %.1f MiB enrolling, %.1f MiB serial, %.1f MiB "
	       "round 1, %.1f MiB round 2 (%lu samples)\n",
	       (double)tm->rss_start_kb / 1024, (double)smp->peak_kb[PH_ENROL] / 1024,
	       (double)smp->peak_kb[PH_BASELINE] / 1024, (double)peak1 / 1024, (double)peak2 / 1024,
	       smp->samples);
	printf("HQ CPU time (every serve process, the whole run, enrolment included): %.1f s, "
	       "%.2f ms a change set\n",
	       tm->hq_cpu_s, ratio(tm->hq_cpu_s * 1e3, (double)(t.sets + tb.sets)));
	printf("at HQ: %llu changes pushed, %llu lost, %llu duplicated, %llu extra, %llu "
	       "quarantined, %llu sets missing or wrong\n",
	       ty->expected, ty->lost, ty->duplicated, ty->extra, ty->quarantined, ty->sets_wrong);
	printf("summary: devices=%u sets=%llu changes=%llu expected=%llu lost=%llu duplicated=%llu "
	       "extra=%llu sets_wrong=%llu quarantined=%llu 503=%llu 503_enrol=%llu "
	       "503_without_retry_after=%llu resent=%llu errors=%llu hq_exit_ok=%d "
	       "rss_start_kb=%ld rss_peak1_kb=%ld rss_peak2_kb=%ld hwm1_kb=%ld hwm2_kb=%ld "
	       "hq_cpu_ms=%.0f\n",
	       o->devices, t.sets + tb.sets, t.changes + tb.changes, ty->expected, ty->lost,
	       ty->duplicated, ty->extra, ty->sets_wrong, ty->quarantined, t.n503 + tb.n503,
	       t.n503_enrol + tb.n503_enrol, t.no_retry_after + tb.no_retry_after,
	       t.resent + tb.resent, t.errors + tb.errors, hq_ok, tm->rss_start_kb, peak1, peak2,
	       tm->hwm_kb[0], tm->hwm_kb[1], tm->hq_cpu_s * 1e3);

	snprintf(m, sizeof(m), "%.0f sets/s", rate);
	snprintf(b, sizeof(b), "%.0f sets/s (1 device, serial)", rate_b);
	row(o->devices, "throughput", m, b, ratio(rate, rate_b));
	snprintf(m, sizeof(m), "%.0f changes/s", crate);
	snprintf(b, sizeof(b), "%.0f changes/s (1 device, serial)", crate_b);
	row(o->devices, "changes merged", m, b, ratio(crate, crate_b));
	snprintf(m, sizeof(m), "%.1f ms", lat.p50 * 1e3);
	snprintf(b, sizeof(b), "%.1f ms (1 device, serial)", lat_b.p50 * 1e3);
	row(o->devices, "request latency p50", m, b, ratio(lat.p50, lat_b.p50));
	snprintf(m, sizeof(m), "%.1f ms", lat.p99 * 1e3);
	snprintf(b, sizeof(b), "%.1f ms (1 device, serial)", lat_b.p99 * 1e3);
	row(o->devices, "request latency p99", m, b, ratio(lat.p99, lat_b.p99));
	snprintf(m, sizeof(m), "%.1f ms", lat.max * 1e3);
	snprintf(b, sizeof(b), "%.1f ms (1 device, serial)", lat_b.max * 1e3);
	row(o->devices, "request latency max", m, b, ratio(lat.max, lat_b.max));
	snprintf(m, sizeof(m), "%llu (%llu without Retry-After)",
		 t.n503 + t.n503_enrol + tb.n503 + tb.n503_enrol,
		 t.no_retry_after + tb.no_retry_after);
	row(o->devices, "503 answers", m, "-", 0);
	snprintf(m, sizeof(m), "%llu", t.errors + tb.errors);
	row(o->devices, "errors", m, "-", 0);
	snprintf(m, sizeof(m), "%llu lost, %llu duplicated of %llu", ty->lost,
		 ty->duplicated + ty->extra, ty->expected);
	row(o->devices, "changes lost or duplicated", m, "-", 0);
	snprintf(m, sizeof(m), "%.1f MiB", (double)peak1 / 1024);
	snprintf(b, sizeof(b), "%.1f MiB (idle, at start)", (double)tm->rss_start_kb / 1024);
	row(o->devices, "HQ peak RSS, round 1", m, b,
	    ratio((double)peak1, (double)tm->rss_start_kb));
	snprintf(m, sizeof(m), "%.1f MiB", (double)peak2 / 1024);
	snprintf(b, sizeof(b), "%.1f MiB (round 1, with half as much at HQ)", (double)peak1 / 1024);
	row(o->devices, "HQ peak RSS, round 2", m, b, ratio((double)peak2, (double)peak1));

	ok = hq_ok && !ty->lost && !ty->duplicated && !ty->extra && !ty->sets_wrong &&
	     !ty->quarantined && !t.errors && !tb.errors && !t.no_retry_after &&
	     !tb.no_retry_after &&
	     t.sets + tb.sets == (unsigned long long)o->devices * o->sets + base->nsets;
	if (o->rss_limit_mb &&
	    (peak1 > (long)o->rss_limit_mb * 1024 || peak2 > (long)o->rss_limit_mb * 1024)) {
		fprintf(stderr, "bench_load: HQ's RSS passed %u MiB\n", o->rss_limit_mb);
		ok = 0;
	}
	if (!ok)
		fprintf(stderr, "bench_load: CHECK FAILED (see the lines above)\n");
	return ok ? 0 : 1;
}

static int run_all(struct run *run)
{
	struct options *o = &run->o;
	struct sampler smp = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct timing tm = { 0 };
	struct tally ty = { 0 };
	pthread_t *threads = calloc(o->devices, sizeof(pthread_t));
	unsigned ndev = o->devices + 1, started = 0, inited = 0;
	int r = -1, barrier = 0, sampling = 0, hq_ok = 0;
	double t0 = now_s();

	run->split = o->sets / 2;
	run->baseline_sets = o->baseline ? o->baseline : o->devices * run->split;
	run->devs = calloc(ndev, sizeof(*run->devs));
	run->tokens = secmem_alloc((size_t)ndev * TOKEN_TEXT_MAX);
	run->w = (struct workload){ .visits = o->visits,
				    .base_ms =
					    hlc_wall_ms() - 3600 * 1000 -
					    (uint64_t)(o->sets + run->baseline_sets) * o->visits };
	randombytes_buf(&run->w.seed, sizeof(run->w.seed));
	if (!threads || !run->devs || !run->tokens) {
		fprintf(stderr, "bench_load: out of memory\n");
		goto out;
	}
	if (hq_setup(o, &run->hq[0]) < 0)
		goto out;
	fprintf(stderr, "bench_load: HQ in %s; %u enrolment tokens\n", run->hq[0].dir, ndev);
	for (unsigned i = 0; i < ndev; i++)
		if (hq_token(o, &run->hq[0], i, run->tokens + (size_t)i * TOKEN_TEXT_MAX) < 0)
			goto out;
	for (; inited < ndev; inited++)
		if (device_init(run, inited, inited < o->devices ? o->sets : run->baseline_sets) <
		    0)
			goto out;
	if (hq_start(o, &run->hq[0]) < 0)
		goto out;
	for (unsigned p = 1; p < o->processes; p++) {
		struct hq *h = &run->hq[p];

		*h = run->hq[0];
		h->pid = 0;
		snprintf(h->log, sizeof(h->log), "%s/hq.%u.log", run->hq[0].dir, p + 1);
		if (hq_start(o, h) < 0)
			goto out;
	}
	/* The benchmark is the load balancer: device i to process i mod N. */
	for (unsigned i = 0; i < ndev; i++) {
		const struct hq *h = &run->hq[i % o->processes];

		snprintf(run->devs[i].url_enroll, sizeof(run->devs[i].url_enroll), "%s/v1/enroll",
			 h->url);
		snprintf(run->devs[i].url_sets, sizeof(run->devs[i].url_sets), "%s/v1/changesets",
			 h->url);
	}
	if (proc_rss(run->hq[0].pid, &tm.rss_start_kb, NULL) < 0)
		goto out;
	smp.pid = run->hq[0].pid;
	if ((r = pthread_create(&smp.thread, NULL, sampler_main, &smp)) != 0) {
		fprintf(stderr, "bench_load: sampler thread: %s\n", strerror(r));
		r = -1;
		goto out;
	}
	sampling = 1;
	if ((r = pthread_barrier_init(&run->barrier, NULL, o->devices + 1)) != 0) {
		r = -1;
		goto out;
	}
	barrier = 1;
	fprintf(stderr, "bench_load: HQ at %s (pid %d); %u devices enrol and encode\n",
		run->hq[0].url, (int)run->hq[0].pid, o->devices);
	r = run_rounds(run, &smp, threads, &started, &tm);
out:
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (sampling) {
		pthread_mutex_lock(&smp.lock);
		smp.stop = 1;
		pthread_mutex_unlock(&smp.lock);
		pthread_join(smp.thread, NULL);
	}
	for (unsigned p = 1; p < o->processes; p++) {
		if (run->hq[p].pid && hq_stop(&run->hq[p]) < 0)
			fprintf(stderr, "bench_load: serve process %u did not stop cleanly\n",
				p + 1);
		tm.hq_cpu_s += run->hq[p].cpu_s;
	}
	if (run->hq[0].pid) {
		double t_stop = now_s();

		hq_ok = hq_stop(&run->hq[0]) == 0;
		tm.hq_cpu_s += run->hq[0].cpu_s;
		fprintf(stderr, "bench_load: HQ stopped in %.1f s\n", now_s() - t_stop);
	}
	if (r == 0 && started == o->devices) {
		if (check_hq(run, &ty) < 0)
			r = -1;
		else
			r = report(run, &tm, &smp, &ty, hq_ok);
		fprintf(stderr, "bench_load: %.1f s in all\n", now_s() - t0);
	} else if (r == 0) {
		r = -1;
	}
	if (r != 0 && run->hq[0].dir[0] && !o->keep) {
		FILE *f = fopen(run->hq[0].log, "re");
		char line[512];

		/* HQ's log names requests, devices and errors, never values. */
		fprintf(stderr, "bench_load: the end of HQ's log:\n");
		if (f) {
			long n = 0;

			while (fgets(line, sizeof(line), f))
				n++;
			rewind(f);
			for (long i = 0; fgets(line, sizeof(line), f); i++)
				if (i >= n - 20)
					fputs(line, stderr);
			fclose(f);
		}
	}
	if (barrier)
		pthread_barrier_destroy(&run->barrier);
	for (unsigned i = 0; i < inited; i++)
		device_clear(&run->devs[i]);
	free(run->devs);
	secmem_free(run->tokens);
	free(threads);
	if (run->hq[0].dir[0]) {
		if (o->keep)
			fprintf(stderr, "bench_load: kept %s\n", run->hq[0].dir);
		else
			nftw(run->hq[0].dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	return r;
}

int main(int argc, char **argv)
{
	struct run run = { 0 };
	int r;

	if (options_parse(argc, argv, &run.o) < 0)
		return 2;
	if (secmem_init() < 0) {
		fprintf(stderr, "bench_load: libsodium failed to initialise\n");
		return 1;
	}
	/* A device whose connection HQ closed must not kill the run. */
	signal(SIGPIPE, SIG_IGN);
	r = run_all(&run);
	if (r > 0)
		return run.o.check ? 1 : 0;
	return r < 0 ? 1 : 0;
}
