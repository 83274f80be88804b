/* bench_audit.c - proof time against the size of HQ's audit log.
 *
 *   bench_audit [--sizes N,N,...] [--proofs K]
 *
 * For each size N (default 10000 and 1000000), a fresh HQ database gets N
 * audit entries through the real audit_append() and a signed checkpoint;
 * then K random consistency proofs (default 200) are made through the
 * real audit_consistency(), which reads the stored tree.  The baseline,
 * in the same run and on the same database, is what HQ did before the
 * tree was stored: read every leaf and compute the proof from the array
 * (3 proofs).  Prints `row` lines (scripts/bench.sh); asserts nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/secmem.h"
#include "hq/audit.h"
#include "hq/hqdb.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The O(n) way: every leaf from the database, the proof from the array. */
static int proof_by_array(struct hqsql *db, uint64_t n, uint64_t from, struct fs_error *err)
{
	merkle_hash *leaves = malloc(n * sizeof(*leaves)), proof[MERKLE_MAX_PROOF];
	struct hqsql_stmt *st = NULL;
	uint64_t i = 0;
	size_t len;
	int r;

	if (!leaves)
		return -ENOMEM;
	if ((r = hqsql_prepare(db, "SELECT leaf FROM events ORDER BY id", &st, err)) == 0) {
		while (i < n && hqsql_step(st) == HQSQL_ROW)
			memcpy(leaves[i++], hqsql_column_blob(st, 0), MERKLE_HASH_BYTES);
		r = i == n ? merkle_consistency_proof(leaves, n, from, proof, &len) : -EIO;
	}
	hqsql_finalize(st);
	free(leaves);
	return r;
}

static int bench_size(uint64_t n, unsigned proofs)
{
	char dir[] = "/tmp/bench_audit.XXXXXX", cmd[64];
	struct identity *hq = NULL;
	struct fs_error err = { 0 };
	merkle_hash proof[MERKLE_MAX_PROOF];
	struct hqsql *db = NULL;
	double t0, fill, stored, array;
	uint64_t size = 0;
	size_t len;
	char *note = NULL;
	int r;

	if (!mkdtemp(dir) || identity_generate(&hq) < 0)
		return 2;
	if ((r = hqdb_open(dir, HQDB_CREATE, &db, &err)) < 0 ||
	    (r = hqsql_exec(db, "BEGIN IMMEDIATE", "begin", &err)) < 0)
		goto out;
	t0 = now_s();
	for (uint64_t i = 0; i < n && r == 0; i++)
		r = audit_append(db, 1700000000000ULL + i, "push",
				 "0123456789abcdef0123456789abcdef",
				 "{\"result\":\"accepted\",\"sets\":1}", &err);
	if (r < 0 || (r = hqsql_exec(db, "COMMIT", "commit", &err)) < 0 ||
	    (r = audit_checkpoint(db, hq, NULL, 0, 1, NULL, &err)) < 0)
		goto out;
	fill = now_s() - t0;
	t0 = now_s();
	for (unsigned k = 0; k < proofs && r == 0; k++) {
		r = audit_consistency(db, 1 + next() % n, &note, &size, proof, &len, &err);
		free(note);
		note = NULL;
	}
	if (r < 0)
		goto out;
	stored = (now_s() - t0) / proofs;
	t0 = now_s();
	for (unsigned k = 0; k < 3 && r == 0; k++)
		r = proof_by_array(db, n, 1 + next() % n, &err);
	if (r < 0)
		goto out;
	array = (now_s() - t0) / 3;
	printf("audit log of %llu entries: filled at %.0f entries/s; a proof %.1f us from the "
	       "stored tree, %.1f ms by reading every leaf\n",
	       (unsigned long long)n, (double)n / fill, stored * 1e6, array * 1e3);
	printf("row\taudit consistency proof, %llu entries\t%.1f us\tevery leaf read %.1f "
	       "ms\t%.5f\n",
	       (unsigned long long)n, stored * 1e6, array * 1e3, stored / array);
out:
	if (r < 0)
		fprintf(stderr, "bench_audit: %s\n", err.msg[0] ? err.msg : fs_strerror(r));
	hqdb_close(db);
	identity_free(hq);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_audit: could not remove %s\n", dir);
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *sizes = "10000,1000000";
	unsigned proofs = 200;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
			sizes = argv[++i];
		} else if (!strcmp(argv[i], "--proofs") && i + 1 < argc) {
			proofs = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: bench_audit [--sizes N,N,...] [--proofs K]\n");
			return !strcmp(argv[i], "--help") ? 0 : 2;
		}
	}
	if (secmem_init() < 0 || proofs == 0)
		return 2;
	for (const char *p = sizes; *p && rc == 0;) {
		char *end;
		unsigned long long n = strtoull(p, &end, 10);

		if (end == p || n == 0)
			return 2;
		rc = bench_size(n, proofs);
		p = *end == ',' ? end + 1 : end;
	}
	return rc;
}
