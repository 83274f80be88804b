/* fuzz_csvimport.c - CSV import (agent/csvimport.c over libcsv) into a
 * real encrypted store: header and column matching, id cells, value
 * conversion and the all-or-nothing transaction.  The first byte picks
 * the form (beneficiaries or visits); the rest is the file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sodium.h>

#include "agent/csvimport.h"
#include "agent/store.h"
#include "tests/fuzz/fuzz.h"

/* Successful imports grow the store; start a fresh one after this many. */
#define FRESH_AFTER 500

static char dir[] = "/tmp/fuzz_csvimport.XXXXXX";
static char data_dir[sizeof(dir) + 16];
static struct keystore_secret *secret;
static struct store *store;
static struct form *forms[2];
static unsigned commits;
static int memfd = -1;

static void store_fresh(void)
{
	struct fs_error err = { 0 };
	char path[sizeof(data_dir) + 32];
	static const char *const files[] = { "store.db", "store.db-wal", "store.db-shm",
					     "store.key", "device.key" };

	store = store_close(store);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", data_dir, files[i]);
		(void)unlink(path);
	}
	(void)rmdir(data_dir);
	if (store_create(data_dir, secret, PWHASH_INTERACTIVE, NULL, NULL) < 0 ||
	    store_open(data_dir, secret, NULL, &store, &err) < 0) {
		fprintf(stderr, "fuzz_csvimport: store in %s: %s\n", data_dir, err.msg);
		abort();
	}
	/* Durability is not under test here; fsync per input would make the
	 * target a hundred times slower. */
	if (sqlite3_exec(store_db(store), "PRAGMA synchronous=OFF", NULL, NULL, NULL) != SQLITE_OK)
		abort();
	commits = 0;
}

static void cleanup(void)
{
	store = store_close(store);
	secret = keystore_secret_free(secret);
	for (size_t i = 0; i < 2; i++)
		forms[i] = form_free(forms[i]);
	if (memfd >= 0)
		close(memfd);
	if (data_dir[0]) {
		char cmd[sizeof(dir) + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "fuzz_csvimport: could not remove %s\n", dir);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t key[AEAD_KEYBYTES];
	struct fs_error err = { 0 };

	(void)argc, (void)argv;
	if (sodium_init() < 0 || !mkdtemp(dir))
		abort();
	snprintf(data_dir, sizeof(data_dir), "%s/store", dir);
	randombytes_buf(key, sizeof(key));
	if (keystore_secret_from_wrapkey(key, sizeof(key), &secret) < 0)
		abort();
	sodium_memzero(key, sizeof(key));
	if (form_load_file(FS_SOURCE_DIR "/conf/forms/beneficiaries.json", &forms[0], &err) < 0 ||
	    form_load_file(FS_SOURCE_DIR "/conf/forms/visits.json", &forms[1], &err) < 0) {
		fprintf(stderr, "fuzz_csvimport: %s\n", err.msg);
		abort();
	}
	if ((memfd = memfd_create("fuzz_csvimport", MFD_CLOEXEC)) < 0)
		abort();
	atexit(cleanup);
	store_fresh();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fs_error err = { 0 };
	unsigned long long rows = 0;
	FILE *fp;
	int fd;

	if (size < 1)
		return 0;
	/* csvimport reads regular files only: a memfd is one. */
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data + 1, size - 1, 0) != (ssize_t)(size - 1))
		abort();
	if ((fd = fcntl(memfd, F_DUPFD_CLOEXEC, 0)) < 0 || lseek(fd, 0, SEEK_SET) < 0 ||
	    !(fp = fdopen(fd, "r")))
		abort();
	if (csvimport_run(store, forms[data[0] & 1], fp, "fuzz.csv", NULL, &rows, &err) == 0 &&
	    ++commits >= FRESH_AFTER)
		store_fresh();
	fclose(fp);
	return 0;
}
