/* crashloop.c - crash consistency of the field store: fork, break, check.
 *
 *   crashloop --data-dir DIR --key-file FILE --forms-dir DIR --hq-db FILE
 *             --work-dir DIR [--iterations N] [--seed N] [--ids-out FILE]
 *             [--only PLAN] [--verbose]
 *
 * DIR holds a store made with the key file (so that opening it costs no
 * Argon2id) and enrolled with a running fieldsync-hq whose database is
 * FILE.  Each iteration forks a child that opens the store through the
 * real encryption VFS stacked on the fault VFS below (the
 * store_options.under_vfs seam: what it breaks is ciphertext on its way
 * to the disk) and does a random mix of inserts (records_add), CSV
 * imports (csvimport_run), packs (pack_outbox), sync attempts against
 * the real HQ (attempt_run, which stores HQ's receipts) and a few edits,
 * with a random wal_autocheckpoint so that checkpoints fall inside the
 * window too.  Each child gets one plan, drawn from --seed:
 *
 *   clean      no fault
 *   sigkill    the parent sends SIGKILL after a random delay
 *   kill       SIGKILL itself at the Nth write, before it reaches the file
 *   torn       write a random prefix of the Nth write, then SIGKILL
 *   powercut   at the Nth write or sync: forget a random part of every
 *              write made since its file's last sync (or all of it), keep
 *              a torn prefix of the current write or not, then SIGKILL
 *   ioerr      the Nth write, sync or truncate fails (SQLITE_IOERR_*),
 *              once or from then on ("sticky", a disk gone bad), and
 *              sometimes the child is also killed a little later
 *
 * N is drawn against the writes and syncs a child without faults makes
 * (a running average, as the store grows), so most faults land inside
 * the child's work.  --only PLAN draws every plan of that kind, to chase
 * one failure.
 *
 * The child writes what it did to a pipe: each record id whose commit
 * returned success, each fault injected, each operation begun and ended.
 * After it ends, the parent opens the store with the normal VFS and
 * checks, failing with the iteration, the plan and the check (and it
 * leaves the WAL as it found it, but on every 4th iteration, so that the
 * next child recovers and extends a WAL with history):
 *
 *   auth        the store opens with its key and every row of every table
 *               reads; every 4th iteration, after a TRUNCATE checkpoint,
 *               every page of store.db authenticates through the real VFS
 *   integrity   store_check(): PRAGMA integrity_check, records <-> outbox
 *   outbox      records_verify_outbox(): the outbox replays to the records
 *   durable     every record whose commit returned success is there
 *   chain       outgoing sets are 1..n, each parses, hashes to its hash,
 *               links to the one before, holds exactly the outbox rows
 *               marked with it, and any receipt verifies for it
 *   ack         every set HQ accepted (its database, read only) is in
 *               outgoing with the same sequence and hash, so sending it
 *               again is a duplicate HQ recognises; HQ accepted each
 *               sequence once with that set's change count, and refused
 *               nothing from this device; no change (record, field,
 *               HLC) is in the outbox twice
 *   frozen      the outbox rows of a set HQ accepted never change and
 *               never move to another set (no acknowledged change is
 *               packed again as new)
 *   errors      an operation fails only after a fault was injected, and
 *               an injected I/O error is never reported as corruption or
 *               a key problem
 *
 * At the end a child without faults pushes everything, and the parent
 * checks that HQ holds every record of the device exactly once, every
 * change once, and nothing more.  It prints
 *
 *   crashloop: N iterations (X killed, Y write faults, Z fsync faults), all checks passed
 *
 * and exits 0, or names the failure and exits 1 (2 for bad usage or
 * setup).  Test data is synthetic.
 *
 * Sections: options and randomness; the child's pipe; the child; running
 * an iteration; the checks; the final push; main.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>

#include "agent/attempt.h"
#include "agent/csvimport.h"
#include "agent/enroll.h"
#include "agent/keystore.h"
#include "agent/netproc.h"
#include "agent/pack.h"
#include "agent/push.h"
#include "agent/records.h"
#include "agent/store.h"
#include "agent/vfs.h"
#include "crypto/secmem.h"
#include "sync/changeset.h"
#include "sync/form.h"
#include "sync/receipt.h"
#include "sync/uuid.h"
#include "tests/faultvfs.h"

/* ---- options and randomness -------------------------------------------- */

#define CRASH_DEFAULT_ITERATIONS 500
#define CRASH_FULL_SCAN_EVERY 4 /* iterations between page-by-page scans */
#define CRASH_MAX_OPS 5		/* operations per child */

enum op_kind { OP_INSERT, OP_IMPORT, OP_PACK, OP_ACK, OP_EDIT, OP_KINDS };
static const char *const op_names[OP_KINDS] = { "insert", "import", "pack", "ack", "edit" };

enum plan_kind { PLAN_CLEAN, PLAN_SIGKILL, PLAN_KILL, PLAN_TORN, PLAN_POWERCUT, PLAN_IOERR };

/* One child's plan; every choice the child makes comes from seed. */
struct plan {
	enum plan_kind kind;
	struct faultvfs_plan io; /* what the fault VFS does; its seed is the plan's */
	unsigned kill_after_ms;	 /* PLAN_SIGKILL: the parent's delay */
	int autocheckpoint;	 /* PRAGMA wal_autocheckpoint for the child */
	int nops;
	enum op_kind ops[CRASH_MAX_OPS];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the child's pipe ------------------------------------------------- */

/* The pipe to the parent; -1 in the parent. */
static int report_fd = -1;

/* A line to the parent.  write(2) only: the child may die right after. */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void report(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (report_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* A short write to a pipe of under PIPE_BUF bytes does not happen;
	 * a failed one means the parent is gone, and the child dies soon. */
	if (write(report_fd, line, (size_t)n) < 0)
		return;
}

/* ---- the child ------------------------------------------------------------ */

/* What the loop shares with its children (read-only in them). */
struct loop {
	const char *data_dir, *key_file, *hq_db, *work_dir, *ids_out;
	struct keystore_secret *secret;
	struct form *beneficiaries, *visits;
	unsigned long iterations;
	uint64_t seed;
	int verbose;
	char device[64];				/* hex device id */
	uint8_t hq_sign_pk[crypto_sign_PUBLICKEYBYTES]; /* verifies receipts */
};

static const char *const first_names[] = { "Marija", "Јован",	"Đorđe",   "Жаклина",  "Milica",
					   "Стефан", "Dragana", "Небојша", "Ljiljana", "Ђурђа" };
static const char *const surnames[] = { "Petrović", "Јовановић", "Ružičić",   "Шћепановић",
					"Nikolić",  "Ђорђевић",	 "Šaćirović", "Хоџић" };
static const char *const places[] = { "Sremska Mitrovica", "Bujanovac", "Сјеница",  "Tutin",
				      "Preševo",	   "Врање",	"Novi Sad", "Обреновац" };

static void synthetic_name(uint64_t *rng, char *out, size_t cap)
{
	snprintf(out, cap, "%s %s %lu", surnames[faultvfs_rng_below(rng, 8)],
		 first_names[faultvfs_rng_below(rng, 10)], faultvfs_rng_below(rng, 100000));
}

/* A failed operation: expected only once a fault was injected. */
static void child_op_failed(const char *op, int r, const struct fs_error *err)
{
	report("%c %s %d %s\n", faultvfs_state()->failed ? 'X' : 'E', op, r,
	       err->msg[0] ? err->msg : fs_strerror(r));
}

static cJSON *person_fields(uint64_t *rng)
{
	static const char *const status[] = { "refugee", "idp", "asylum_seeker", "host_community" };
	cJSON *o = cJSON_CreateObject();
	char name[160];

	synthetic_name(rng, name, sizeof(name));
	if (!o || !cJSON_AddStringToObject(o, "full_name", name) ||
	    !cJSON_AddStringToObject(o, "municipality", places[faultvfs_rng_below(rng, 8)]) ||
	    !cJSON_AddStringToObject(o, "status", status[faultvfs_rng_below(rng, 4)]) ||
	    !cJSON_AddNumberToObject(o, "household_size", 1 + (double)faultvfs_rng_below(rng, 9)) ||
	    !cJSON_AddBoolToObject(o, "consent", 1)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *visit_fields(uint64_t *rng, const char *beneficiary)
{
	static const char *const types[] = { "needs_assessment", "housing_construction",
					     "prefab_installation", "legal_assistance" };
	cJSON *o = cJSON_CreateObject();
	char date[16];

	snprintf(date, sizeof(date), "2026-11-%02lu", 1 + faultvfs_rng_below(rng, 28));
	if (!o || !cJSON_AddStringToObject(o, "beneficiary_id", beneficiary) ||
	    !cJSON_AddStringToObject(o, "visit_date", date) ||
	    !cJSON_AddStringToObject(o, "visit_type", types[faultvfs_rng_below(rng, 4)]) ||
	    !cJSON_AddStringToObject(o, "notes", "Кров прокишњава; potrebna pomoć za ogrev.")) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* 1-4 beneficiaries, and sometimes a visit to one of them, in one
 * transaction; their ids go to the parent only once it committed. */
static int child_insert(const struct loop *L, struct store *s, uint64_t *rng, struct fs_error *err)
{
	char ids[5][UUID_TEXT_LEN + 1], colls[5];
	int n = 1 + (int)faultvfs_rng_below(rng, 4), made = 0, r;
	cJSON *o = NULL;

	if ((r = store_begin(s, err)) < 0)
		return r;
	for (int i = 0; i < n; i++) {
		if (!(o = person_fields(rng))) {
			r = fs_error_set(err, -ENOMEM, "insert: out of memory");
			goto out;
		}
		if ((r = records_add(s, L->beneficiaries, o, NULL, ids[made], err)) < 0)
			goto out;
		colls[made++] = 'b';
		cJSON_Delete(o);
		o = NULL;
	}
	if (faultvfs_rng_below(rng, 2)) {
		if (!(o = visit_fields(rng, ids[0]))) {
			r = fs_error_set(err, -ENOMEM, "insert: out of memory");
			goto out;
		}
		if ((r = records_add(s, L->visits, o, NULL, ids[made], err)) < 0)
			goto out;
		colls[made++] = 'v';
	}
	r = store_commit(s, err);
	if (r == 0)
		for (int i = 0; i < made; i++)
			report("C %c %s\n", colls[i], ids[i]);
out:
	cJSON_Delete(o);
	if (r < 0)
		store_rollback(s);
	return r;
}

/* A CSV of 2-25 beneficiaries with their ids in an "id" column, so the
 * child knows which ids the one transaction committed. */
static int child_import(const struct loop *L, struct store *s, uint64_t *rng, struct fs_error *err)
{
	static const char *const status[] = { "refugee", "idp" };
	char path[PATH_MAX], (*ids)[UUID_TEXT_LEN + 1] = NULL, name[160];
	unsigned long n = 2 + faultvfs_rng_below(rng, 24);
	unsigned long long rows = 0;
	FILE *fp = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/import-%ld.csv", L->work_dir, (long)getpid());
	ids = calloc(n, sizeof(*ids));
	fp = fopen(path, "w+e");
	if (!ids || !fp) {
		r = fs_error_set(err, -errno, "import: cannot write %s", path);
		goto out;
	}
	fprintf(fp, "id,full_name,municipality,status,household_size,consent\n");
	for (unsigned long i = 0; i < n; i++) {
		uuid_v7_new((uint64_t)time(NULL) * 1000, ids[i]);
		synthetic_name(rng, name, sizeof(name));
		fprintf(fp, "%s,\"%s\",%s,%s,%lu,yes\n", ids[i], name,
			places[faultvfs_rng_below(rng, 8)], status[faultvfs_rng_below(rng, 2)],
			1 + faultvfs_rng_below(rng, 9));
	}
	if (fflush(fp) != 0 || fseek(fp, 0, SEEK_SET) != 0) {
		r = fs_error_set(err, -EIO, "import: cannot write %s", path);
		goto out;
	}
	r = csvimport_run(s, L->beneficiaries, fp, path, NULL, &rows, err);
	if (r == 0) {
		if (rows != n)
			r = fs_error_set(err, -FS_ECORRUPT, "import: %llu rows, expected %lu", rows,
					 n);
		for (unsigned long i = 0; r == 0 && i < n; i++)
			report("C b %s\n", ids[i]);
	}
out:
	if (fp) {
		fclose(fp);
		unlink(path);
	}
	free(ids);
	return r;
}

static int child_pack(struct store *s, uint64_t *rng, struct fs_error *err)
{
	struct enrolment en;
	int r;

	if ((r = enroll_load(s, &en, err)) < 0)
		return r;
	/* Small sets, so that a pack makes several and a kill can land
	 * between them. */
	return pack_outbox(s, en.hq_box_pk, 2 + faultvfs_rng_below(rng, 30), 0, NULL, err);
}

static int child_ack(struct store *s, uint64_t *rng, struct fs_error *err)
{
	struct attempt_options opt = { .max_changes = 2 + faultvfs_rng_below(rng, 40),
				       .connect_timeout_s = 5,
				       .stall_timeout_s = 10 };
	struct attempt_result res;
	int r = attempt_run(s, &opt, NULL, NULL, &res);

	if (r < 0)
		*err = res.err;
	return r;
}

/* Change the household size of a random live beneficiary: a new change
 * to a record whose first changes HQ may have acknowledged already. */
static int child_edit(const struct loop *L, struct store *s, uint64_t *rng, struct fs_error *err)
{
	char id[UUID_TEXT_LEN + 1] = "";
	sqlite3_stmt *st = NULL;
	cJSON *o = NULL;
	int r, rc;

	if ((r = store_begin(s, err)) < 0)
		return r;
	if (sqlite3_prepare_v2(
		    store_db(s),
		    "SELECT id FROM records WHERE collection = 'beneficiaries' AND "
		    "deleted = 0 LIMIT 1 OFFSET ?1 % max(1, (SELECT count(*) FROM records "
		    "WHERE collection = 'beneficiaries' AND deleted = 0))",
		    -1, &st, NULL) != SQLITE_OK) {
		r = store_fail(s, "pick a record in", err);
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)faultvfs_rng_below(rng, 1000000));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(id, sizeof(id), "%s", (const char *)sqlite3_column_text(st, 0));
	else if (rc != SQLITE_DONE) {
		r = store_fail(s, "pick a record in", err);
		goto out;
	}
	if (!id[0])
		goto out; /* nothing to edit yet */
	o = cJSON_CreateObject();
	if (!o ||
	    !cJSON_AddNumberToObject(o, "household_size", 1 + (double)faultvfs_rng_below(rng, 9))) {
		r = fs_error_set(err, -ENOMEM, "edit: out of memory");
		goto out;
	}
	if ((r = records_edit(s, L->beneficiaries, id, o, err)) < 0)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	r = store_commit(s, err);
out:
	sqlite3_finalize(st);
	cJSON_Delete(o);
	if (r < 0 || !id[0])
		store_rollback(s);
	return r;
}

static int child_run_op(const struct loop *L, struct store *s, enum op_kind op, uint64_t *rng,
			struct fs_error *err)
{
	switch (op) {
	case OP_INSERT:
		return child_insert(L, s, rng, err);
	case OP_IMPORT:
		return child_import(L, s, rng, err);
	case OP_PACK:
		return child_pack(s, rng, err);
	case OP_ACK:
		return child_ack(s, rng, err);
	case OP_EDIT:
		return child_edit(L, s, rng, err);
	default:
		return fs_error_set(err, -FS_EUSAGE, "unknown operation");
	}
}

/* The child: open through the fault VFS, run the plan's operations,
 * close.  Exits 0 (faults are the parent's to judge) or 3 after an
 * operation failed with no fault injected. */
static void child_main(const struct loop *L, const struct plan *p, int fd)
	__attribute__((noreturn));

static void child_main(const struct loop *L, const struct plan *p, int fd)
{
	struct store_options opt = { .under_vfs = faultvfs() };
	const struct faultvfs_state *fs = faultvfs_state();
	struct fs_error err = { 0 };
	struct store *s = NULL;
	uint64_t rng = p->io.seed ^ 0x5eedULL, t0 = mono_ms();
	char sql[64];
	int r;

	signal(SIGPIPE, SIG_IGN);
	faultvfs_arm(&p->io);
	faultvfs_watch(report);
	report_fd = fd;
	if ((r = store_open(L->data_dir, L->secret, &opt, &s, &err)) < 0) {
		child_op_failed("open", r, &err);
		_exit(fs->failed ? 0 : 3);
	}
	/* A small autocheckpoint puts checkpoints (reads of the WAL, writes
	 * and a truncate of store.db) inside the kill window too. */
	snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint=%d", p->autocheckpoint);
	if (sqlite3_exec(store_db(s), sql, NULL, NULL, NULL) != SQLITE_OK) {
		r = store_fail(s, "set autocheckpoint in", &err);
		child_op_failed("open", r, &err);
		store_close(s);
		_exit(3);
	}
	for (int i = 0; i < p->nops; i++) {
		report("B %s\n", op_names[p->ops[i]]);
		memset(&err, 0, sizeof(err));
		r = child_run_op(L, s, p->ops[i], &rng, &err);
		report("D %s %d\n", op_names[p->ops[i]], r);
		if (r < 0) {
			child_op_failed(op_names[p->ops[i]], r, &err);
			if (!fs->failed) {
				store_close(s);
				_exit(3);
			}
		}
		if (fs->failing)
			break; /* a dead disk: nothing more will work */
	}
	report("B close\n");
	store_close(s);
	report("S %lu %lu %llu\n", fs->writes, fs->syncs, (unsigned long long)(mono_ms() - t0));
	_exit(0);
}

/* ---- running an iteration -------------------------------------------------- */

/* What the loop has seen; printed at the end. */
struct stats {
	unsigned long killed, write_faults, fsync_faults, trunc_faults, powercuts, torn;
	unsigned long parent_kills, clean;
	unsigned long ops_done[OP_KINDS], ops_failed[OP_KINDS], killed_in[OP_KINDS + 1];
	unsigned long long duplicates, sets, changes, records;
	double avg_writes, avg_syncs, avg_ms; /* per fault-free child, smoothed */
};

/* Ids whose commit returned success. */
struct committed {
	char (*ids)[UUID_TEXT_LEN + 2]; /* id, then its collection 'b' or 'v' */
	size_t n, cap;
};

/* One child's report, parsed. */
struct outcome {
	int status;	     /* from waitpid */
	int parent_killed;   /* we sent SIGKILL while it ran */
	int fault;	     /* F lines */
	int died;	     /* K line */
	int open_op;	     /* op begun and not ended at death (-1 none, OP_KINDS close) */
	char error[600];     /* E line: an op failed with no fault */
	char misreport[600]; /* X line whose code says corruption */
};

static void plan_describe(const struct plan *p, char *out, size_t cap)
{
	static const char *const how[] = { "", "kill", "torn write and kill", "power cut" };
	size_t len = 0;

	switch (p->kind) {
	case PLAN_CLEAN:
		len = (size_t)snprintf(out, cap, "no fault");
		break;
	case PLAN_SIGKILL:
		len = (size_t)snprintf(out, cap, "SIGKILL after %u ms", p->kill_after_ms);
		break;
	default:
		if (p->io.fail_write_at)
			len = (size_t)snprintf(out, cap, "I/O error at write %lu",
					       p->io.fail_write_at);
		else if (p->io.fail_sync_at)
			len = (size_t)snprintf(out, cap, "I/O error at sync %lu",
					       p->io.fail_sync_at);
		else if (p->io.fail_trunc_at)
			len = (size_t)snprintf(out, cap, "I/O error at truncate %lu",
					       p->io.fail_trunc_at);
		if (p->io.sticky && len < cap)
			len += (size_t)snprintf(out + len, cap - len, " (sticky)");
		if (p->io.how != FAULTVFS_LIVE && len < cap)
			len += (size_t)snprintf(
				out + len, cap - len, "%s%s at %s %lu", len ? ", then " : "",
				how[p->io.how], p->io.die_at_write ? "write" : "sync",
				p->io.die_at_write ? p->io.die_at_write : p->io.die_at_sync);
	}
	for (int i = 0; i < p->nops && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "; ops ",
					op_names[p->ops[i]]);
	if (len < cap)
		snprintf(out + len, cap - len, "; seed %" PRIu64, p->io.seed);
}

/* Uniform in [1, 1.25 * avg]: most faults land inside the child's work. */
static unsigned long plan_index(uint64_t *rng, double avg)
{
	unsigned long top = (unsigned long)(avg * 1.25) + 1;

	return 1 + faultvfs_rng_below(rng, top < 2 ? 2 : top);
}

static const char *const plan_names[] = { "clean", "sigkill", "kill", "torn", "powercut", "ioerr" };
/* Where each kind starts among the rolls 0..99 (how often it is drawn). */
static const unsigned long plan_rolls[] = { 0, 8, 26, 40, 52, 68 };

static void plan_choose(uint64_t *rng, const struct stats *st, int only, struct plan *p)
{
	static const int autockpt[] = { 8, 32, 128, 1000 };
	unsigned long roll = faultvfs_rng_below(rng, 100);

	memset(p, 0, sizeof(*p));
	p->io.seed = faultvfs_rng_next(rng);
	p->autocheckpoint = autockpt[faultvfs_rng_below(rng, 4)];
	p->nops = 1 + (int)faultvfs_rng_below(rng, CRASH_MAX_OPS);
	for (int i = 0; i < p->nops; i++) {
		unsigned long o = faultvfs_rng_below(rng, 100);

		p->ops[i] = o < 34   ? OP_INSERT
			    : o < 54 ? OP_IMPORT
			    : o < 70 ? OP_PACK
			    : o < 94 ? OP_ACK
				     : OP_EDIT;
	}
	if (only >= 0)
		roll = plan_rolls[only];
	if (roll < plan_rolls[PLAN_SIGKILL]) {
		p->kind = PLAN_CLEAN;
	} else if (roll < plan_rolls[PLAN_KILL]) {
		p->kind = PLAN_SIGKILL;
		p->kill_after_ms =
			(unsigned)faultvfs_rng_below(rng, (unsigned long)(st->avg_ms * 1.2) + 2);
	} else if (roll < plan_rolls[PLAN_TORN]) {
		p->kind = PLAN_KILL;
		p->io.how = FAULTVFS_KILL;
		p->io.die_at_write = plan_index(rng, st->avg_writes);
	} else if (roll < plan_rolls[PLAN_POWERCUT]) {
		p->kind = PLAN_TORN;
		p->io.how = FAULTVFS_TORN;
		p->io.die_at_write = plan_index(rng, st->avg_writes);
	} else if (roll < plan_rolls[PLAN_IOERR]) {
		p->kind = PLAN_POWERCUT;
		p->io.how = FAULTVFS_POWERCUT;
		if (faultvfs_rng_below(rng, 3))
			p->io.die_at_write = plan_index(rng, st->avg_writes);
		else
			p->io.die_at_sync = plan_index(rng, st->avg_syncs);
	} else {
		unsigned long which = faultvfs_rng_below(rng, 100);

		p->kind = PLAN_IOERR;
		p->io.sticky = faultvfs_rng_below(rng, 3) == 0;
		if (which < 45)
			p->io.fail_write_at = plan_index(rng, st->avg_writes);
		else if (which < 90)
			p->io.fail_sync_at = plan_index(rng, st->avg_syncs);
		else
			p->io.fail_trunc_at = 1 + faultvfs_rng_below(rng, 2);
		/* Half the time the process also dies a little later, so what
		 * a failed write or sync left behind meets recovery. */
		if (!p->io.sticky && faultvfs_rng_below(rng, 2)) {
			unsigned long after = p->io.fail_write_at  ? p->io.fail_write_at
					      : p->io.fail_sync_at ? p->io.fail_sync_at * 4
								   : 1;

			p->io.how = faultvfs_rng_below(rng, 2) ? FAULTVFS_POWERCUT : FAULTVFS_TORN;
			p->io.die_at_write = after + 1 + faultvfs_rng_below(rng, 40);
		}
	}
}

static void outcome_line(struct outcome *o, struct stats *st, struct committed *c, char *line)
{
	char *arg = line + 2;

	switch (line[0]) {
	case 'C':
		if (strlen(arg) == UUID_TEXT_LEN + 2 && c->n < c->cap) {
			memcpy(c->ids[c->n], arg + 2, UUID_TEXT_LEN);
			c->ids[c->n][UUID_TEXT_LEN] = arg[0];
			c->ids[c->n][UUID_TEXT_LEN + 1] = '\0';
			c->n++;
		}
		break;
	case 'F':
		o->fault = 1;
		if (!strncmp(arg, "write", 5))
			st->write_faults++;
		else if (!strncmp(arg, "sync", 4))
			st->fsync_faults++;
		else
			st->trunc_faults++;
		break;
	case 'K':
		o->died = 1;
		if (!strncmp(arg, "powercut", 8))
			st->powercuts++;
		else if (!strncmp(arg, "torn", 4))
			st->torn++;
		break;
	case 'B':
		o->open_op = OP_KINDS;
		for (int i = 0; i < OP_KINDS; i++)
			if (!strcmp(arg, op_names[i]))
				o->open_op = i;
		break;
	case 'D':
		for (int i = 0; i < OP_KINDS; i++) {
			size_t n = strlen(op_names[i]);

			if (!strncmp(arg, op_names[i], n) && arg[n] == ' ') {
				if (atoi(arg + n + 1) < 0)
					st->ops_failed[i]++;
				else
					st->ops_done[i]++;
			}
		}
		o->open_op = -1;
		break;
	case 'E':
		snprintf(o->error, sizeof(o->error), "%s", arg);
		break;
	case 'X': {
		/* "op code message": an injected I/O error must read as one. */
		const char *sp = strchr(arg, ' ');
		int code = sp ? atoi(sp + 1) : 0;

		if (code == -FS_ECORRUPT || code == -FS_EKEY || code == -FS_EAUTH ||
		    code == -FS_EFORMAT)
			snprintf(o->misreport, sizeof(o->misreport), "%s", arg);
		break;
	}
	case 'S': {
		unsigned long w = 0, s = 0;
		unsigned long long ms = 0;

		if (sscanf(arg, "%lu %lu %llu", &w, &s, &ms) == 3 && !o->fault) {
			/* Smoothed, so the fault index follows the store as it
			 * grows (more checkpoint writes, longer syncs). */
			st->avg_writes = 0.9 * st->avg_writes + 0.1 * (double)w;
			st->avg_syncs = 0.9 * st->avg_syncs + 0.1 * (double)s;
			st->avg_ms = 0.9 * st->avg_ms + 0.1 * (double)ms;
		}
		break;
	}
	default:
		break;
	}
}

/* Parse complete lines out of buf (len bytes); keep a partial last one. */
static size_t outcome_feed(struct outcome *o, struct stats *st, struct committed *c, char *buf,
			   size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		buf[i] = '\0';
		outcome_line(o, st, c, buf + start);
		start = i + 1;
	}
	memmove(buf, buf + start, len - start);
	return len - start;
}

static int committed_reserve(struct committed *c, size_t more)
{
	if (c->n + more > c->cap) {
		size_t cap = c->cap ? c->cap : 1024;
		void *p;

		while (cap < c->n + more)
			cap *= 2;
		p = realloc(c->ids, cap * sizeof(*c->ids));
		if (!p)
			return -ENOMEM;
		c->ids = p;
		c->cap = cap;
	}
	return 0;
}

/* Fork the child, kill it if the plan says so, collect its report. */
static int iteration_run(const struct loop *L, const struct plan *p, struct stats *st,
			 struct committed *c, struct outcome *o, struct fs_error *err)
{
	char buf[8192];
	size_t have = 0;
	uint64_t deadline = 0;
	int fds[2], r = 0, eof = 0;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	o->open_op = -1;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return fs_error_set(err, -errno, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = fs_error_set(err, -errno, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(L, p, fds[1]);
	}
	close(fds[1]);
	if (p->kind == PLAN_SIGKILL)
		deadline = mono_ms() + p->kill_after_ms;
	while (!eof) {
		struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
		int timeout = -1;
		ssize_t n;

		if (deadline) {
			uint64_t now = mono_ms();

			timeout = now >= deadline ? 0 : (int)(deadline - now);
		}
		if (poll(&pfd, 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			r = fs_error_set(err, -errno, "poll: %s", strerror(errno));
			break;
		}
		if (deadline && mono_ms() >= deadline) {
			/* Only a child still running counts as killed by us. */
			if (kill(pid, SIGKILL) == 0)
				o->parent_killed = 1;
			deadline = 0;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP)))
			continue;
		if ((r = committed_reserve(c, sizeof(buf) / 16)) < 0) {
			fs_error_set(err, r, "out of memory");
			break;
		}
		n = read(fds[0], buf + have, sizeof(buf) - have - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			eof = 1;
			break;
		}
		have = outcome_feed(o, st, c, buf, have + (size_t)n);
		if (have == sizeof(buf) - 1)
			have = 0; /* a line this long is not ours; drop it */
	}
	close(fds[0]);
	while (waitpid(pid, &o->status, 0) < 0) {
		if (errno != EINTR) {
			if (r == 0)
				r = fs_error_set(err, -errno, "waitpid: %s", strerror(errno));
			break;
		}
	}
	return r;
}

/* ---- the checks ----------------------------------------------------------------- */

/* What the parent remembers between iterations. */
struct memory {
	uint8_t (*frozen)[crypto_generichash_BYTES]; /* digest of each acked set's rows */
	size_t nfrozen, capfrozen;
	/* Digest of each set's receipt once it verified: an Ed25519 check
	 * per stored receipt per iteration would cost more than the rest of
	 * the checks, and an unchanged receipt needs none. */
	uint8_t (*receipts)[crypto_generichash_BYTES];
	size_t capreceipts;
	unsigned long long records;
};

/* The device's outgoing sets, as read for the ack check. */
struct devset {
	uint8_t hash[CHANGESET_HASH_BYTES];
	long long changes;
	int receipt;
};

struct devsets {
	struct devset *v;
	size_t n;
};

static int check_fail(struct fs_error *err, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Every check failure reads "CHECK: what". */
static int check_fail(struct fs_error *err, const char *check, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fs_error_set(err, -FS_ECORRUPT, "%s: %s", check, msg);
}

static int check_sql(struct store *s, const char *check, struct fs_error *err)
{
	return check_fail(err, check, "%s", sqlite3_errmsg(store_db(s)));
}

/* Every row of every table, every column. */
static int check_read_all(struct store *s, struct fs_error *err)
{
	sqlite3_stmt *tables = NULL, *st = NULL;
	char sql[256];
	int r = 0, rc;

	if (sqlite3_prepare_v2(store_db(s), "SELECT name FROM sqlite_schema WHERE type = 'table'",
			       -1, &tables, NULL) != SQLITE_OK)
		return check_sql(s, "auth", err);
	while ((rc = sqlite3_step(tables)) == SQLITE_ROW) {
		snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"",
			 (const char *)sqlite3_column_text(tables, 0));
		if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
			r = check_sql(s, "auth", err);
			goto out;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			for (int i = 0; i < sqlite3_column_count(st); i++)
				(void)sqlite3_column_blob(st, i);
		if (rc != SQLITE_DONE) {
			r = check_fail(err, "auth", "reading table %s: %s",
				       (const char *)sqlite3_column_text(tables, 0),
				       sqlite3_errmsg(store_db(s)));
			goto out;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (rc != SQLITE_DONE)
		r = check_sql(s, "auth", err);
out:
	sqlite3_finalize(st);
	sqlite3_finalize(tables);
	return r;
}

static int committed_cmp(const void *a, const void *b)
{
	return strncmp(a, b, UUID_TEXT_LEN);
}

/* Every id whose commit returned success is a record of its collection:
 * a merge of the sorted ids with the records in id order. */
static int check_durable(struct store *s, struct committed *c, struct memory *m,
			 struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	size_t i = 0;
	int r = 0, rc;

	qsort(c->ids, c->n, sizeof(*c->ids), committed_cmp);
	m->records = 0;
	if (sqlite3_prepare_v2(store_db(s), "SELECT id, collection FROM records ORDER BY id", -1,
			       &st, NULL) != SQLITE_OK)
		return check_sql(s, "durable", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *coll = (const char *)sqlite3_column_text(st, 1);

		m->records++;
		if (!id || !coll || i == c->n)
			continue;
		if (strncmp(c->ids[i], id, UUID_TEXT_LEN) < 0)
			break; /* c->ids[i] was passed over: it is missing */
		if (strncmp(c->ids[i], id, UUID_TEXT_LEN) == 0) {
			if (coll[0] != c->ids[i][UUID_TEXT_LEN]) {
				r = check_fail(err, "durable",
					       "record %.36s in the wrong collection", c->ids[i]);
				goto out;
			}
			i++;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = check_sql(s, "durable", err);
		goto out;
	}
	if (i < c->n)
		r = check_fail(err, "durable", "record %.36s was committed and is gone", c->ids[i]);
out:
	sqlite3_finalize(st);
	return r;
}

/* Set seq's stored receipt is HQ's signed receipt for this device, seq
 * and hash; verified again only when its bytes changed. */
static int check_receipt(const struct loop *L, struct memory *m, long long seq, const uint8_t *hash,
			 const uint8_t *device, const uint8_t *buf, size_t len,
			 struct fs_error *err)
{
	uint8_t digest[crypto_generichash_BYTES];
	struct receipt rcpt = { 0 };
	int ok;

	if ((size_t)seq > m->capreceipts) {
		size_t cap = m->capreceipts ? m->capreceipts : 256;
		void *p;

		while (cap < (size_t)seq)
			cap *= 2;
		p = realloc(m->receipts, cap * sizeof(*m->receipts));
		if (!p)
			return fs_error_set(err, -ENOMEM, "out of memory");
		m->receipts = p;
		memset(m->receipts + m->capreceipts, 0,
		       (cap - m->capreceipts) * sizeof(*m->receipts));
		m->capreceipts = cap;
	}
	/* The digest covers the set's hash too: the same receipt beside
	 * another set is checked afresh. */
	crypto_generichash(digest, sizeof(digest), buf, len, hash, CHANGESET_HASH_BYTES);
	if (!memcmp(m->receipts[seq - 1], digest, sizeof(digest)))
		return 0;
	ok = receipt_verify(buf, len, L->hq_sign_pk, &rcpt) == 0 && rcpt.seq == (uint64_t)seq &&
	     !memcmp(rcpt.hash, hash, CHANGESET_HASH_BYTES) &&
	     !memcmp(rcpt.device, device, CHANGESET_DEVICE_BYTES);
	receipt_clear(&rcpt);
	if (!ok)
		return check_fail(err, "chain",
				  "set %lld: stored receipt is not HQ's receipt for it", seq);
	memcpy(m->receipts[seq - 1], digest, sizeof(digest));
	return 0;
}

/* Outgoing: 1..n, each parsed, hashed, linked, counted and, once acked,
 * holding a receipt that verifies for it. */
static int check_chain(const struct loop *L, struct store *s, struct memory *m, struct devsets *ds,
		       struct fs_error *err)
{
	uint8_t device[CHANGESET_DEVICE_BYTES], prev[CHANGESET_HASH_BYTES] = { 0 };
	sqlite3_stmt *st = NULL, *cnt = NULL;
	long long *marked = NULL;
	size_t cap = 0, len = 0;
	int r = 0, rc;

	ds->n = 0;
	if (sodium_hex2bin(device, sizeof(device), L->device, strlen(L->device), NULL, &len,
			   NULL) != 0 ||
	    len != sizeof(device))
		return check_fail(err, "chain", "bad device id");
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT seq, hash, body, changes, receipt FROM outgoing "
			       "ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK)
		return check_sql(s, "chain", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long seq = sqlite3_column_int64(st, 0);
		const uint8_t *hash = sqlite3_column_blob(st, 1),
			      *body = sqlite3_column_blob(st, 2);
		int blen = sqlite3_column_bytes(st, 2), rlen = sqlite3_column_bytes(st, 4);
		uint8_t h[CHANGESET_HASH_BYTES];
		struct changeset_header hd;
		struct fs_error perr = { 0 };

		if ((size_t)seq != ds->n + 1 ||
		    sqlite3_column_bytes(st, 1) != CHANGESET_HASH_BYTES || !body || blen <= 0) {
			r = check_fail(err, "chain",
				       "set %lld: expected set %zu, with a hash and body", seq,
				       ds->n + 1);
			goto out;
		}
		changeset_hash(body, (size_t)blen, h);
		if (memcmp(h, hash, sizeof(h)) != 0) {
			r = check_fail(err, "chain", "set %lld: body does not hash to its hash",
				       seq);
			goto out;
		}
		if (changeset_parse(body, (size_t)blen, &hd, &perr) < 0) {
			r = check_fail(err, "chain", "set %lld: %s", seq, perr.msg);
			goto out;
		}
		if (hd.seq != (uint64_t)seq || memcmp(hd.device, device, sizeof(device)) != 0 ||
		    memcmp(hd.prev, prev, sizeof(prev)) != 0 ||
		    (long long)hd.count != sqlite3_column_int64(st, 3)) {
			r = check_fail(err, "chain",
				       "set %lld: header disagrees with its row or "
				       "does not link to set %lld",
				       seq, seq - 1);
			goto out;
		}
		if (rlen > 0 &&
		    (r = check_receipt(L, m, seq, hash, device, sqlite3_column_blob(st, 4),
				       (size_t)rlen, err)) < 0)
			goto out;
		if (ds->n == cap) {
			size_t ncap = cap ? 2 * cap : 256;
			void *p = realloc(ds->v, ncap * sizeof(*ds->v));

			if (!p) {
				r = fs_error_set(err, -ENOMEM, "out of memory");
				goto out;
			}
			ds->v = p;
			cap = ncap;
		}
		memcpy(ds->v[ds->n].hash, hash, CHANGESET_HASH_BYTES);
		ds->v[ds->n].changes = (long long)hd.count;
		ds->v[ds->n].receipt = rlen > 0;
		ds->n++;
		memcpy(prev, hash, sizeof(prev));
	}
	if (rc != SQLITE_DONE) {
		r = check_sql(s, "chain", err);
		goto out;
	}
	/* Each set holds exactly the outbox rows marked with it. */
	marked = calloc(ds->n + 1, sizeof(*marked));
	if (!marked) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT changeset, count(*) FROM outbox "
			       "WHERE changeset IS NOT NULL GROUP BY changeset",
			       -1, &cnt, NULL) != SQLITE_OK) {
		r = check_sql(s, "chain", err);
		goto out;
	}
	while ((rc = sqlite3_step(cnt)) == SQLITE_ROW) {
		long long set = sqlite3_column_int64(cnt, 0);

		if (set < 1 || (size_t)set > ds->n) {
			r = check_fail(err, "chain",
				       "outbox rows marked with set %lld, which does not "
				       "exist",
				       set);
			goto out;
		}
		marked[set] = sqlite3_column_int64(cnt, 1);
	}
	if (rc != SQLITE_DONE) {
		r = check_sql(s, "chain", err);
		goto out;
	}
	for (size_t i = 0; i < ds->n; i++)
		if (marked[i + 1] != ds->v[i].changes) {
			r = check_fail(err, "chain",
				       "set %zu says %lld changes, %lld outbox rows are "
				       "marked with it",
				       i + 1, ds->v[i].changes, marked[i + 1]);
			goto out;
		}
	/* A change is (record, field, HLC): every write takes a fresh HLC.
	 * One in the outbox twice would reach HQ twice, the second time as
	 * new, whatever set either copy is in. */
	sqlite3_finalize(cnt);
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT record_id, field, hlc FROM outbox "
			       "GROUP BY record_id, field, hlc HAVING count(*) > 1 LIMIT 1",
			       -1, &cnt, NULL) != SQLITE_OK) {
		cnt = NULL;
		r = check_sql(s, "ack", err);
		goto out;
	}
	rc = sqlite3_step(cnt);
	if (rc == SQLITE_ROW)
		r = check_fail(err, "ack",
			       "change (record %s, field %s, HLC %lld) is in the outbox "
			       "twice: it would be sent again as new",
			       (const char *)sqlite3_column_text(cnt, 0),
			       (const char *)sqlite3_column_text(cnt, 1),
			       sqlite3_column_int64(cnt, 2));
	else if (rc != SQLITE_DONE)
		r = check_sql(s, "ack", err);
out:
	free(marked);
	sqlite3_finalize(cnt);
	sqlite3_finalize(st);
	return r;
}

/* HQ's database, read only: HQ is idle while the parent checks. */
static int hq_open(const struct loop *L, sqlite3 **ret_db, struct fs_error *err)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(L->hq_db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fs_error_set(err, -EIO, "open HQ database %s: %s", L->hq_db,
			     db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return err->code;
	}
	sqlite3_busy_timeout(db, 10000);
	*ret_db = db;
	return 0;
}

/* What HQ accepted from this device is what the device holds. */
static int check_ack(const struct loop *L, const struct devsets *ds, struct stats *stt,
		     size_t *ret_hq_sets, struct fs_error *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	unsigned char *accepted = NULL;
	size_t hq_sets = 0;
	int r, rc;

	if ((r = hq_open(L, &db, err)) < 0)
		return r;
	/* One snapshot for both tables: HQ may still be committing a set
	 * whose sender we killed, and writes its row and its log entry in
	 * one transaction. */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		r = check_fail(err, "ack", "HQ database: %s", sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3_prepare_v2(db,
			       "SELECT seq, hash FROM changesets WHERE device = ?1 ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK) {
		r = check_fail(err, "ack", "HQ database: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_text(st, 1, L->device, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long seq = sqlite3_column_int64(st, 0);
		const char *hash = (const char *)sqlite3_column_text(st, 1);
		char hex[2 * CHANGESET_HASH_BYTES + 1];

		if ((size_t)seq != hq_sets + 1) {
			r = check_fail(err, "ack", "HQ holds set %lld after set %zu", seq, hq_sets);
			goto out;
		}
		if ((size_t)seq > ds->n) {
			r = check_fail(err, "ack",
				       "HQ accepted set %lld, the device no longer has "
				       "it (it holds %zu sets)",
				       seq, ds->n);
			goto out;
		}
		sodium_bin2hex(hex, sizeof(hex), ds->v[seq - 1].hash, CHANGESET_HASH_BYTES);
		if (!hash || strcmp(hash, hex) != 0) {
			r = check_fail(
				err, "ack",
				"HQ accepted set %lld with another hash than the "
				"device's set %lld: sending it again would not be a duplicate",
				seq, seq);
			goto out;
		}
		hq_sets++;
	}
	if (rc != SQLITE_DONE) {
		r = check_fail(err, "ack", "HQ database: %s", sqlite3_errmsg(db));
		goto out;
	}
	for (size_t i = hq_sets; i < ds->n; i++)
		if (ds->v[i].receipt) {
			r = check_fail(err, "ack",
				       "device holds a receipt for set %zu, HQ does not "
				       "have it",
				       i + 1);
			goto out;
		}
	sqlite3_finalize(st);
	st = NULL;
	/* HQ's audit log: each set accepted once, with its count; nothing
	 * from this device refused. */
	accepted = calloc(hq_sets + 1, 1);
	if (!accepted) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (sqlite3_prepare_v2(db,
			       "SELECT json_extract(detail, '$.result'), "
			       "json_extract(detail, '$.seq'), json_extract(detail, '$.changes'), "
			       "json_extract(detail, '$.error') FROM events "
			       "WHERE type = 'push' AND device = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		r = check_fail(err, "ack", "HQ database: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_text(st, 1, L->device, -1, SQLITE_STATIC);
	stt->duplicates = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *result = (const char *)sqlite3_column_text(st, 0);
		long long seq = sqlite3_column_int64(st, 1);

		if (result && !strcmp(result, "duplicate")) {
			stt->duplicates++;
			continue;
		}
		if (!result || strcmp(result, "accepted") != 0) {
			const char *why = (const char *)sqlite3_column_text(st, 3);

			r = check_fail(err, "ack", "HQ %s set %lld from the device (%s)",
				       result ? result : "logged", seq, why ? why : "no reason");
			goto out;
		}
		if (seq < 1 || (size_t)seq > hq_sets || accepted[seq]) {
			r = check_fail(err, "ack", "HQ's log accepts set %lld %s", seq,
				       seq >= 1 && (size_t)seq <= hq_sets ? "twice"
									  : "which it lacks");
			goto out;
		}
		accepted[seq] = 1;
		if (sqlite3_column_int64(st, 2) != ds->v[seq - 1].changes) {
			r = check_fail(err, "ack",
				       "HQ accepted %lld changes in set %lld, the device's "
				       "set has %lld",
				       sqlite3_column_int64(st, 2), seq, ds->v[seq - 1].changes);
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = check_fail(err, "ack", "HQ database: %s", sqlite3_errmsg(db));
		goto out;
	}
	for (size_t i = 1; i <= hq_sets; i++)
		if (!accepted[i]) {
			r = check_fail(err, "ack", "HQ holds set %zu, its log never accepted it",
				       i);
			goto out;
		}
	*ret_hq_sets = hq_sets;
out:
	free(accepted);
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* a read: nothing to keep */
	sqlite3_close(db);
	return r;
}

/* The outbox rows of every set HQ accepted are the ones they were when
 * it first accepted them: none changed, none moved to a new set. */
static int check_frozen(struct store *s, struct memory *m, size_t hq_sets, struct fs_error *err)
{
	crypto_generichash_state h;
	uint8_t digest[crypto_generichash_BYTES];
	sqlite3_stmt *st = NULL;
	long long cur = 0;
	int r = 0, rc;

	if (hq_sets > m->capfrozen) {
		size_t cap = m->capfrozen ? m->capfrozen : 256;
		void *p;

		while (cap < hq_sets)
			cap *= 2;
		p = realloc(m->frozen, cap * sizeof(*m->frozen));
		if (!p)
			return fs_error_set(err, -ENOMEM, "out of memory");
		m->frozen = p;
		m->capfrozen = cap;
	}
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT changeset, seq, record_id, collection, field, "
			       "value, hlc FROM outbox WHERE changeset BETWEEN 1 AND ?1 "
			       "ORDER BY changeset, seq",
			       -1, &st, NULL) != SQLITE_OK)
		return check_sql(s, "frozen", err);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)hq_sets);
	for (;;) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			r = check_sql(s, "frozen", err);
			goto out;
		}
		/* A set ends: compare it with what it was, or remember it. */
		if (cur && (rc == SQLITE_DONE || sqlite3_column_int64(st, 0) != cur)) {
			crypto_generichash_final(&h, digest, sizeof(digest));
			if ((size_t)cur <= m->nfrozen) {
				if (memcmp(m->frozen[cur - 1], digest, sizeof(digest)) != 0) {
					r = check_fail(err, "frozen",
						       "the changes of acknowledged set "
						       "%lld changed",
						       cur);
					goto out;
				}
			} else if ((size_t)cur == m->nfrozen + 1) {
				memcpy(m->frozen[m->nfrozen++], digest, sizeof(digest));
			}
		}
		if (rc == SQLITE_DONE)
			break;
		if (sqlite3_column_int64(st, 0) != cur) {
			cur = sqlite3_column_int64(st, 0);
			crypto_generichash_init(&h, NULL, 0, sizeof(digest));
		}
		for (int i = 1; i < 7; i++) {
			uint32_t n = (uint32_t)sqlite3_column_bytes(st, i);
			const void *p = sqlite3_column_blob(st, i);
			uint8_t type = (uint8_t)sqlite3_column_type(st, i);

			crypto_generichash_update(&h, &type, 1);
			crypto_generichash_update(&h, (const uint8_t *)&n, sizeof(n));
			if (p && n)
				crypto_generichash_update(&h, p, n);
		}
	}
	if (m->nfrozen < hq_sets)
		r = check_fail(err, "frozen", "acknowledged set %zu has no outbox rows",
			       m->nfrozen + 1);
out:
	sqlite3_finalize(st);
	return r;
}

/* Read every page of store.db through the real encryption VFS: each
 * must authenticate.  Only right after a TRUNCATE checkpoint, when the
 * file holds the whole database; between checkpoints a torn page there
 * is legitimate, as the WAL still holds its good copy. */
static int check_pages(const struct loop *L, long long pages, struct fs_error *err)
{
	uint8_t id[KEYSTORE_ID_BYTES], *key = NULL, *page = NULL;
	char keypath[PATH_MAX], name[PATH_MAX + 8];
	struct fsvfs *v = NULL;
	sqlite3_file *file = NULL;
	sqlite3_vfs *vfs;
	int r, out_flags = 0, opened = 0;

	snprintf(keypath, sizeof(keypath), "%s/store.key", L->data_dir);
	if ((r = keystore_open(keypath, L->secret, &key, id, err)) < 0) {
		r = check_fail(err, "auth", "%s", err->msg);
		goto out;
	}
	if ((r = fsvfs_create(key, id, NULL, &v)) < 0 || !(vfs = sqlite3_vfs_find(fsvfs_name(v)))) {
		r = fs_error_set(err, r < 0 ? r : -FS_ESTORE, "cannot register the store's VFS");
		goto out;
	}
	file = calloc(1, (size_t)vfs->szOsFile);
	page = malloc(FSVFS_PAGE_SIZE);
	if (!file || !page) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	/* SQLite hands a VFS file names followed by a double NUL (URI
	 * parameters); name is zeroed past the path for that. */
	memset(name, 0, sizeof(name));
	snprintf(name, PATH_MAX, "%s/store.db", L->data_dir);
	if (vfs->xOpen(vfs, name, file, SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READONLY, &out_flags) !=
	    SQLITE_OK) {
		r = check_fail(err, "auth", "cannot open %s through the VFS", name);
		goto out;
	}
	opened = 1;
	for (long long pg = 1; pg <= pages; pg++) {
		if (file->pMethods->xRead(file, page, FSVFS_PAGE_SIZE,
					  (sqlite3_int64)(pg - 1) * FSVFS_PAGE_SIZE) != SQLITE_OK) {
			const char *why = fsvfs_last_fault(v);

			r = check_fail(err, "auth", "page %lld of %lld: %s", pg, pages,
				       why ? why : "read failed");
			goto out;
		}
	}
out:
	if (opened)
		file->pMethods->xClose(file);
	free(file);
	free(page);
	fsvfs_destroy(v);
	secmem_free(key);
	return r;
}

/* Checkpoint everything into store.db, then check its pages. */
static int check_full(const struct loop *L, struct store *s, long long *ret_pages,
		      struct fs_error *err)
{
	sqlite3_stmt *st = NULL;
	char wal[PATH_MAX];
	struct stat sb;
	int r = 0;

	if (sqlite3_prepare_v2(store_db(s), "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st, NULL) !=
		    SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		r = check_sql(s, "auth", err);
		goto out;
	}
	if (sqlite3_column_int(st, 0) != 0) {
		r = check_fail(err, "auth", "checkpoint was blocked");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(store_db(s), "PRAGMA page_count", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		r = check_sql(s, "auth", err);
		goto out;
	}
	*ret_pages = sqlite3_column_int64(st, 0);
	snprintf(wal, sizeof(wal), "%s/store.db-wal", L->data_dir);
	if (stat(wal, &sb) == 0 && sb.st_size != 0)
		r = check_fail(err, "auth", "WAL not empty after a TRUNCATE checkpoint");
out:
	sqlite3_finalize(st);
	return r;
}

/* All the checks of one iteration; full adds the page-by-page scan. */
static int check_all(const struct loop *L, struct committed *c, struct memory *m, struct stats *st,
		     int full, struct fs_error *err)
{
	struct devsets ds = { 0 };
	struct fs_error e = { 0 };
	struct store *s = NULL;
	long long pages = 0;
	size_t hq_sets = 0;
	int r;

	if ((r = store_open(L->data_dir, L->secret, NULL, &s, &e)) < 0) {
		r = check_fail(err, "auth", "store does not open with its key: %s", e.msg);
		goto out;
	}
	/* Leave the WAL as the child left it (no checkpoint when we close),
	 * so that the next child recovers and extends a WAL with history;
	 * the full check empties it instead. */
	if (!full && sqlite3_db_config(store_db(s), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) !=
			     SQLITE_OK) {
		r = check_sql(s, "auth", err);
		goto out;
	}
	if ((r = store_check(s, &e)) < 0) {
		r = check_fail(err, "integrity", "%s", e.msg);
		goto out;
	}
	if ((r = records_verify_outbox(s, &e)) < 0) {
		r = check_fail(err, "outbox", "%s", e.msg);
		goto out;
	}
	if ((r = check_read_all(s, err)) < 0 || (r = check_durable(s, c, m, err)) < 0 ||
	    (r = check_chain(L, s, m, &ds, err)) < 0 ||
	    (r = check_ack(L, &ds, st, &hq_sets, err)) < 0 ||
	    (r = check_frozen(s, m, hq_sets, err)) < 0)
		goto out;
	st->sets = hq_sets;
	st->records = m->records;
	if (full && (r = check_full(L, s, &pages, err)) < 0)
		goto out;
	s = store_close(s);
	if (full)
		r = check_pages(L, pages, err);
out:
	store_close(s);
	free(ds.v);
	return r;
}

/* ---- the final push ------------------------------------------------------------ */

static long long count_sql(sqlite3 *db, const char *sql, const char *device)
{
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (device)
			sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return n;
}

/* In a child, as every store write here: push until nothing is left. */
static int final_push(const struct loop *L, struct fs_error *err)
{
	pid_t pid;
	int status = 0;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return fs_error_set(err, -errno, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct store *s = NULL;
		struct fs_error e = { 0 };
		unsigned long long pending = 1;
		int r = store_open(L->data_dir, L->secret, NULL, &s, &e);

		for (int i = 0; r == 0 && i < 5 && pending; i++) {
			struct attempt_result res;

			if ((r = attempt_run(s, NULL, NULL, NULL, &res)) < 0)
				e = res.err;
			else
				r = push_count(s, &pending, NULL, &e);
		}
		if (r < 0)
			fprintf(stderr, "crashloop: final push: %s\n", e.msg);
		store_close(s);
		_exit(r < 0 || pending ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return fs_error_set(err, -errno, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return check_fail(err, "final", "the final push failed");
	return 0;
}

/* After the final push: everything is at HQ, once. */
static int check_final(const struct loop *L, const struct committed *c, struct fs_error *err)
{
	struct store *s = NULL;
	struct fs_error e = { 0 };
	sqlite3 *db = NULL;
	sqlite3_stmt *a = NULL, *b = NULL;
	long long outbox, unpacked, unacked, hq_changes, hq_writes;
	FILE *ids = NULL;
	int r, ra, rb;

	if ((r = store_open(L->data_dir, L->secret, NULL, &s, &e)) < 0)
		return check_fail(err, "final", "%s", e.msg);
	if ((r = hq_open(L, &db, err)) < 0)
		goto out;
	outbox = count_sql(store_db(s), "SELECT count(*) FROM outbox", NULL);
	unpacked =
		count_sql(store_db(s), "SELECT count(*) FROM outbox WHERE changeset IS NULL", NULL);
	unacked =
		count_sql(store_db(s), "SELECT count(*) FROM outgoing WHERE receipt IS NULL", NULL);
	hq_changes = count_sql(db,
			       "SELECT sum(json_extract(detail, '$.changes')) FROM events "
			       "WHERE type = 'push' AND device = ?1 AND "
			       "json_extract(detail, '$.result') = 'accepted'",
			       L->device);
	hq_writes = count_sql(db, "SELECT count(*) FROM field_writes WHERE device = ?1", L->device);
	if (unpacked != 0 || unacked != 0) {
		r = check_fail(err, "final",
			       "after the final push %lld changes unpacked, %lld sets "
			       "unacknowledged",
			       unpacked, unacked);
		goto out;
	}
	if (hq_changes != outbox || hq_writes != outbox) {
		r = check_fail(err, "final",
			       "the device has %lld changes; HQ accepted %lld and "
			       "stored %lld writes from it",
			       outbox, hq_changes, hq_writes);
		goto out;
	}
	/* The same records on both sides, each once (ids are keys at HQ,
	 * so "once" is by construction; the walk checks "all" and "only"). */
	if (sqlite3_prepare_v2(store_db(s), "SELECT id, collection FROM records ORDER BY id", -1,
			       &a, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT id, collection FROM records ORDER BY id", -1, &b,
			       NULL) != SQLITE_OK) {
		r = check_fail(err, "final", "cannot list records");
		goto out;
	}
	for (;;) {
		ra = sqlite3_step(a);
		rb = sqlite3_step(b);
		if (ra != rb) {
			r = check_fail(err, "final",
				       "the device and HQ hold different numbers of "
				       "records");
			goto out;
		}
		if (ra != SQLITE_ROW)
			break;
		if (strcmp((const char *)sqlite3_column_text(a, 0),
			   (const char *)sqlite3_column_text(b, 0)) != 0 ||
		    strcmp((const char *)sqlite3_column_text(a, 1),
			   (const char *)sqlite3_column_text(b, 1)) != 0) {
			r = check_fail(err, "final", "record %s of the device is not at HQ as such",
				       (const char *)sqlite3_column_text(a, 0));
			goto out;
		}
	}
	if (L->ids_out) {
		if (!(ids = fopen(L->ids_out, "we"))) {
			r = fs_error_set(err, -errno, "cannot write %s: %s", L->ids_out,
					 strerror(errno));
			goto out;
		}
		for (size_t i = 0; i < c->n; i++)
			fprintf(ids, "%.36s %s\n", c->ids[i],
				c->ids[i][UUID_TEXT_LEN] == 'v' ? "visits" : "beneficiaries");
		if (fclose(ids) != 0)
			r = fs_error_set(err, -EIO, "cannot write %s", L->ids_out);
	}
out:
	sqlite3_finalize(a);
	sqlite3_finalize(b);
	sqlite3_close(db);
	store_close(s);
	return r;
}

/* ---- main ------------------------------------------------------------------------ */

static int usage(void)
{
	fprintf(stderr, "usage: crashloop --data-dir DIR --key-file FILE --forms-dir DIR "
			"--hq-db FILE --work-dir DIR [--iterations N] [--seed N] [--ids-out FILE] "
			"[--only clean|sigkill|kill|torn|powercut|ioerr] [--verbose]\n");
	return 2;
}

static int load_forms(struct loop *L, const char *dir, struct fs_error *err)
{
	char path[PATH_MAX];
	int r;

	snprintf(path, sizeof(path), "%s/beneficiaries.json", dir);
	if ((r = form_load_file(path, &L->beneficiaries, err)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/visits.json", dir);
	return form_load_file(path, &L->visits, err);
}

/* The device id and the pinned HQ key, from the store. */
static int load_device(struct loop *L, struct fs_error *err)
{
	struct enrolment en;
	struct store *s = NULL;
	int r;

	if ((r = store_open(L->data_dir, L->secret, NULL, &s, err)) < 0)
		return r;
	if ((r = enroll_load(s, &en, err)) == 0) {
		snprintf(L->device, sizeof(L->device), "%s", store_identity(s)->id);
		memcpy(L->hq_sign_pk, en.target.hq_sign_pk, sizeof(L->hq_sign_pk));
	}
	store_close(s);
	return r;
}

/* Judge the child's end against its plan. */
static int outcome_judge(const struct outcome *o, struct stats *st, struct fs_error *err)
{
	int sig = WIFSIGNALED(o->status) ? WTERMSIG(o->status) : 0;

	if (o->error[0])
		return check_fail(err, "errors", "an operation failed with no fault injected: %s",
				  o->error);
	if (o->misreport[0])
		return check_fail(err, "errors",
				  "an injected I/O error was reported as "
				  "corruption or a key problem: %s",
				  o->misreport);
	if (sig == SIGKILL && (o->died || o->parent_killed)) {
		st->killed++;
		st->killed_in[o->open_op < 0 ? OP_KINDS : o->open_op]++;
		st->parent_kills += o->parent_killed && !o->died;
		return 0;
	}
	if (WIFEXITED(o->status) && WEXITSTATUS(o->status) == 0) {
		st->clean += !o->fault;
		return 0;
	}
	if (sig)
		return check_fail(err, "errors", "the child died of signal %d", sig);
	return check_fail(err, "errors", "the child exited %d", WEXITSTATUS(o->status));
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "forms-dir", required_argument, NULL, 'f' },
		{ "hq-db", required_argument, NULL, 'q' },
		{ "work-dir", required_argument, NULL, 'w' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "ids-out", required_argument, NULL, 'o' },
		{ "only", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct loop L = { .iterations = CRASH_DEFAULT_ITERATIONS };
	struct stats st = { .avg_writes = 40, .avg_syncs = 8, .avg_ms = 30 };
	struct committed c = { 0 };
	struct memory m = { 0 };
	struct fs_error err = { 0 };
	const char *forms_dir = NULL;
	uint64_t rng, t0 = mono_ms();
	int opt, r, have_seed = 0, only = -1;
	unsigned long it = 0;
	char desc[512] = "";

	/* HTTP goes through the network helper the build made. */
	netproc_set_program(FS_NET_BIN);
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			L.data_dir = optarg;
			break;
		case 'k':
			L.key_file = optarg;
			break;
		case 'f':
			forms_dir = optarg;
			break;
		case 'q':
			L.hq_db = optarg;
			break;
		case 'w':
			L.work_dir = optarg;
			break;
		case 'n':
			L.iterations = strtoul(optarg, NULL, 10);
			break;
		case 's':
			L.seed = strtoull(optarg, NULL, 10);
			have_seed = 1;
			break;
		case 'o':
			L.ids_out = optarg;
			break;
		case 'v':
			L.verbose = 1;
			break;
		case 'p':
			for (int i = 0; i < (int)(sizeof(plan_names) / sizeof(plan_names[0])); i++)
				if (!strcmp(optarg, plan_names[i]))
					only = i;
			if (only < 0)
				return usage();
			break;
		default:
			return usage();
		}
	}
	if (!L.data_dir || !L.key_file || !forms_dir || !L.hq_db || !L.work_dir || optind != argc ||
	    L.iterations == 0)
		return usage();
	if (!have_seed)
		randombytes_buf(&L.seed, sizeof(L.seed));
	fprintf(stderr, "crashloop: seed %" PRIu64 " (--seed %" PRIu64 " replays the plans)\n",
		L.seed, L.seed);
	rng = L.seed;
	if (sodium_init() < 0 || !faultvfs()) {
		fprintf(stderr,
			"crashloop: cannot initialise libsodium or register the fault VFS\n");
		return 2;
	}
	if (faultvfs_model_selftest(L.work_dir) < 0)
		return 2;
	if (keystore_secret_from_key_file(L.key_file, &L.secret, &err) < 0 ||
	    load_forms(&L, forms_dir, &err) < 0 || load_device(&L, &err) < 0) {
		fprintf(stderr, "crashloop: setup: %s\n", err.msg);
		return 2;
	}
	for (it = 1; it <= L.iterations; it++) {
		struct plan p;
		struct outcome o;

		plan_choose(&rng, &st, only, &p);
		plan_describe(&p, desc, sizeof(desc));
		if ((r = iteration_run(&L, &p, &st, &c, &o, &err)) < 0 ||
		    (r = outcome_judge(&o, &st, &err)) < 0 ||
		    (r = check_all(&L, &c, &m, &st, it % CRASH_FULL_SCAN_EVERY == 0, &err)) < 0)
			goto fail;
		if (L.verbose)
			fprintf(stderr,
				"crashloop: %lu (%.1f s): %s: %s, %llu records, %llu sets at "
				"HQ\n",
				it, (double)(mono_ms() - t0) / 1000.0, desc,
				o.died || o.parent_killed ? "killed" : "exited", st.records,
				st.sets);
	}
	it = L.iterations;
	snprintf(desc, sizeof(desc), "final push without faults");
	if ((r = final_push(&L, &err)) < 0 || (r = check_all(&L, &c, &m, &st, 1, &err)) < 0 ||
	    (r = check_final(&L, &c, &err)) < 0)
		goto fail;
	printf("crashloop: %lu iterations (%lu killed, %lu write faults, %lu fsync faults), "
	       "all checks passed\n",
	       L.iterations, st.killed, st.write_faults + st.trunc_faults, st.fsync_faults);
	printf("crashloop: kills: %lu at a write or sync (%lu torn writes, %lu power cuts), %lu "
	       "by the parent; during insert %lu, import %lu, pack %lu, ack %lu, edit %lu, "
	       "open/close %lu\n",
	       st.killed - st.parent_kills, st.torn, st.powercuts, st.parent_kills,
	       st.killed_in[OP_INSERT], st.killed_in[OP_IMPORT], st.killed_in[OP_PACK],
	       st.killed_in[OP_ACK], st.killed_in[OP_EDIT], st.killed_in[OP_KINDS]);
	printf("crashloop: operations completed (failed): insert %lu (%lu), import %lu (%lu), "
	       "pack %lu (%lu), ack %lu (%lu), edit %lu (%lu); %lu truncate faults; %lu children "
	       "without faults\n",
	       st.ops_done[OP_INSERT], st.ops_failed[OP_INSERT], st.ops_done[OP_IMPORT],
	       st.ops_failed[OP_IMPORT], st.ops_done[OP_PACK], st.ops_failed[OP_PACK],
	       st.ops_done[OP_ACK], st.ops_failed[OP_ACK], st.ops_done[OP_EDIT],
	       st.ops_failed[OP_EDIT], st.trunc_faults, st.clean);
	printf("crashloop: %zu committed records and %llu records in all, every one at HQ once; "
	       "%llu change sets accepted, %llu re-sent sets recognised as duplicates; %.1f s\n",
	       c.n, st.records, st.sets, st.duplicates, (double)(mono_ms() - t0) / 1000.0);
	r = 0;
	goto out;
fail:
	fprintf(stderr, "crashloop: FAILED at iteration %lu (%s): %s\n", it, desc, err.msg);
	fprintf(stderr, "crashloop: replay with --seed %" PRIu64 "\n", L.seed);
	r = 1;
out:
	free(c.ids);
	free(m.frozen);
	free(m.receipts);
	form_free(L.beneficiaries);
	form_free(L.visits);
	keystore_secret_free(L.secret);
	return r;
}
