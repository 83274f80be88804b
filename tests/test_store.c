/* test_store.c - agent/: the encrypted store, its VFS, records and outbox.
 *
 * Sections: helpers; encryption at rest; integrity failures; durability;
 * key management; records and outbox.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/ballast.h"
#include "agent/records.h"
#include "agent/store.h"
#include "agent/vfs.h"
#include "crypto/secmem.h"
#include "tests/faultvfs.h"
#include "tests/fixture.h"
#include "tests/test.h"

/* ---- helpers ---------------------------------------------------------- */

/* The store's directory (tests/fixture.h). */
#define data_dir fixture_data_dir()

static struct keystore_secret *pass_secret(const char *pass)
{
	struct keystore_secret *s = NULL;

	ASSERT_OK(keystore_secret_from_passphrase(pass, strlen(pass), &s));
	return s;
}

/* Add a valid beneficiary named name, in its own transaction. */
static void add_person(struct store *s, const struct form *f, const char *name,
		       char id[UUID_TEXT_LEN + 1])
{
	fixture_person(s, f, name, "Sremska Mitrovica", "idp", id);
}

static int count_cb(const cJSON *rec, void *ctx)
{
	(void)rec;
	(*(int *)ctx)++;
	return 0;
}

static int count_live(struct store *s, const struct form *f, struct fs_error *err)
{
	int n = 0, r = records_list(s, f, count_cb, &n, err);

	return r < 0 ? r : n;
}

static char *data_file(const char *name)
{
	static char path[4096 + 512];

	snprintf(path, sizeof(path), "%s/%s", data_dir, name);
	return path;
}

/* Does any file in the data directory contain needle? */
static int dir_contains(const char *needle, size_t len)
{
	DIR *d = opendir(data_dir);
	struct dirent *e;
	int found = 0;

	ASSERT_TRUE(d != NULL);
	while (!found && (e = readdir(d))) {
		struct stat st;
		char *buf;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		fd = open(data_file(e->d_name), O_RDONLY);
		ASSERT_GE(fd, 0);
		ASSERT_OK(fstat(fd, &st));
		buf = malloc((size_t)st.st_size + 1);
		ASSERT_EQ(read(fd, buf, (size_t)st.st_size), st.st_size);
		found = memmem(buf, (size_t)st.st_size, needle, len) != NULL;
		free(buf);
		close(fd);
	}
	closedir(d);
	return found;
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	ASSERT_GE(fd, 0);
	ASSERT_EQ(pread(fd, &b, 1, off), 1);
	b ^= 0x20;
	ASSERT_EQ(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

/* ---- encryption at rest ----------------------------------------------- */

TEST(store_roundtrip_serbian_names)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	const char *names[] = { "Ružičić Đorđe", "Ружичић Ђорђе", "Šćepanović Žaklina" };
	char ids[3][UUID_TEXT_LEN + 1];
	struct fs_error err = { 0 };
	struct store *s = fixture_store(secret, NULL, 1);

	for (int i = 0; i < 3; i++)
		add_person(s, f, names[i], ids[i]);
	store_close(s);
	s = fixture_store(secret, NULL, 0);
	for (int i = 0; i < 3; i++) {
		cJSON *rec = NULL;

		ASSERT_OK(records_get(s, f, ids[i], &rec, &err));
		ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "fields"), "full_name")
				      ->valuestring,
			      names[i]);
		ASSERT_STR_EQ(cJSON_GetObjectItem(rec, "author")->valuestring,
			      store_identity(s)->id);
		cJSON_Delete(rec);
	}
	ASSERT_EQ(count_live(s, f, &err), 3);
	ASSERT_OK(store_check(s, &err));
	ASSERT_OK(records_verify_outbox(s, &err));
	store_close(s);
	form_free(f);
	keystore_secret_free(secret);
}

/* One write fails as a full disk would (tests/faultvfs.h, under the
 * encryption VFS): the commit says so, nothing of it stays, the store is
 * whole, and the same write goes through once there is room. */
TEST(store_full_disk_at_commit_loses_nothing)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	struct store_options opt = { .under_vfs = faultvfs() };
	const struct faultvfs_plan full = { .fail_write_at = 1, .write_error = SQLITE_FULL };
	const struct faultvfs_plan room = { 0 };
	char id[UUID_TEXT_LEN + 1];
	struct fs_error err = { 0 };
	struct store *s = fixture_store(secret, NULL, 1);
	cJSON *o = cJSON_CreateObject();
	int r;

	ASSERT_TRUE(opt.under_vfs != NULL);
	add_person(s, f, "Ružičić Đorđe", id);
	store_close(s);
	s = fixture_store(secret, &opt, 0);
	cJSON_AddStringToObject(o, "full_name", "Ружичић Ђорђе");
	cJSON_AddStringToObject(o, "municipality", "Sremska Mitrovica");
	cJSON_AddStringToObject(o, "status", "idp");
	cJSON_AddNumberToObject(o, "household_size", 4);
	cJSON_AddBoolToObject(o, "consent", 1);
	faultvfs_arm(&full);
	ASSERT_OK(store_begin(s, &err));
	if ((r = records_add(s, f, o, NULL, id, &err)) == 0)
		r = store_commit(s, &err);
	ASSERT_EQ(r, -ENOSPC);
	ASSERT_TRUE(faultvfs_state()->failed);
	ASSERT_STR_CONTAINS(err.msg, "full");
	store_rollback(s);
	faultvfs_arm(&room);
	ASSERT_EQ(count_live(s, f, &err), 1);
	ASSERT_OK(store_check(s, &err));
	add_person(s, f, "Ружичић Ђорђе", id);
	store_close(s);
	s = fixture_store(secret, NULL, 0);
	ASSERT_EQ(count_live(s, f, &err), 2);
	ASSERT_OK(store_check(s, &err));
	ASSERT_OK(records_verify_outbox(s, &err));
	store_close(s);
	cJSON_Delete(o);
	form_free(f);
	keystore_secret_free(secret);
}

TEST(store_files_leak_nothing)
{
	static const char marker[] = "Ђурђевић-Đurđević-Marker";
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	char id[UUID_TEXT_LEN + 1];
	struct store *s = fixture_store(secret, NULL, 1);

	for (int i = 0; i < 300; i++)
		add_person(s, f, marker, id);
	/* While open: the WAL and -shm exist and hold the recent pages. */
	ASSERT_EQ(access(data_file("store.db-wal"), F_OK), 0);
	ASSERT_TRUE(!dir_contains(marker, strlen(marker)));
	ASSERT_TRUE(!dir_contains("SQLite format 3", 15));
	ASSERT_TRUE(!dir_contains("Sremska", 7));
	store_close(s);
	ASSERT_TRUE(!dir_contains(marker, strlen(marker)));
	ASSERT_TRUE(!dir_contains("SQLite format 3", 15));
	ASSERT_TRUE(!dir_contains("full_name", 9));
	/* The check can fail: the same words are there in a plain database. */
	{
		sqlite3 *db;
		char path[4200];

		snprintf(path, sizeof(path), "%s/plain.db", data_dir);
		ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
		ASSERT_EQ(sqlite3_exec(db,
				       "CREATE TABLE t(x); INSERT INTO t VALUES('"
				       "Ђурђевић-Đurđević-Marker')",
				       NULL, NULL, NULL),
			  SQLITE_OK);
		sqlite3_close(db);
		ASSERT_TRUE(dir_contains(marker, strlen(marker)));
		ASSERT_TRUE(dir_contains("SQLite format 3", 15));
		unlink(path);
	}
	form_free(f);
	keystore_secret_free(secret);
}

/* ---- integrity failures ----------------------------------------------- */

static void fill_and_close(struct keystore_secret *secret, struct form *f, int n)
{
	char id[UUID_TEXT_LEN + 1];
	struct store *s = fixture_store(secret, NULL, 1);

	for (int i = 0; i < n; i++)
		add_person(s, f, "Petrović Marija", id);
	store_close(s); /* checkpoints the WAL into store.db */
	ASSERT_TRUE(access(data_file("store.db-wal"), F_OK) != 0);
}

TEST(store_flipped_byte_names_page)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	struct fs_error err = { 0 };
	struct store *s = NULL;
	struct stat st;
	int r;

	fill_and_close(secret, f, 200);
	ASSERT_OK(stat(data_file("store.db"), &st));
	ASSERT_GT(st.st_size, 4 * FSVFS_PAGE_SIZE);
	/* A byte in page 3 (the records table's pages start after the schema). */
	flip_byte(data_file("store.db"), 2 * FSVFS_PAGE_SIZE + 700);
	s = fixture_store(secret, NULL, 0);
	r = store_check(s, &err);
	ASSERT_EQ(r, -FS_ECORRUPT);
	ASSERT_STR_CONTAINS(err.msg, "store.db page 3");
	ASSERT_STR_CONTAINS(err.msg, "authentication failed");
	store_close(s);
	/* Page 1 damaged: the store does not even open, and says why. */
	flip_byte(data_file("store.db"), 2 * FSVFS_PAGE_SIZE + 700);
	flip_byte(data_file("store.db"), 10);
	r = store_open(data_dir, secret, NULL, &s, &err);
	ASSERT_EQ(r, -FS_ECORRUPT);
	ASSERT_STR_CONTAINS(err.msg, "page 1");
	form_free(f);
	keystore_secret_free(secret);
}

TEST(store_swapped_pages_detected)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	uint8_t a[FSVFS_PAGE_SIZE], b[FSVFS_PAGE_SIZE];
	struct fs_error err = { 0 };
	struct store *s;
	int fd;

	fill_and_close(secret, f, 200);
	fd = open(data_file("store.db"), O_RDWR);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(pread(fd, a, sizeof(a), 3 * FSVFS_PAGE_SIZE), (ssize_t)sizeof(a));
	ASSERT_EQ(pread(fd, b, sizeof(b), 4 * FSVFS_PAGE_SIZE), (ssize_t)sizeof(b));
	ASSERT_EQ(pwrite(fd, b, sizeof(b), 3 * FSVFS_PAGE_SIZE), (ssize_t)sizeof(b));
	ASSERT_EQ(pwrite(fd, a, sizeof(a), 4 * FSVFS_PAGE_SIZE), (ssize_t)sizeof(a));
	close(fd);
	s = fixture_store(secret, NULL, 0);
	ASSERT_EQ(store_check(s, &err), -FS_ECORRUPT);
	ASSERT_TRUE(strstr(err.msg, "page 4") || strstr(err.msg, "page 5"));
	store_close(s);
	form_free(f);
	keystore_secret_free(secret);
}

/* Write n records in separate transactions in a child, then kill -9 it
 * before it can close (so the WAL is left for recovery). */
static void write_and_die(struct keystore_secret *secret, struct form *f, int n)
{
	pid_t pid = fork();
	int st;

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char id[UUID_TEXT_LEN + 1];
		struct store *s = fixture_store(secret, NULL, 0);

		for (int i = 0; i < n; i++)
			add_person(s, f, "Jovanović Ana", id);
		raise(SIGKILL);
	}
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

TEST(store_flipped_wal_byte_detected)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	struct fs_error err = { 0 };
	struct store *s;
	int r;

	store_close(fixture_store(secret, NULL, 1));
	write_and_die(secret, f, 5);
	/* Frame 2's page: header 32, frame 1 (24 + page), frame header 24. */
	flip_byte(data_file("store.db-wal"), 32 + (24 + FSVFS_PAGE_SIZE) + 24 + 333);
	r = store_open(data_dir, secret, NULL, &s, &err);
	ASSERT_EQ(r, -FS_ECORRUPT);
	ASSERT_STR_CONTAINS(err.msg, "store.db-wal WAL frame 2");
	form_free(f);
	keystore_secret_free(secret);
}

/* SQLite's WAL checksum is (s1 += x0 + s2; s2 += x1 + s1) over native
 * 32-bit words: linear, keyless.  A change of delta in the first word of a
 * frame shifts every later (s1, s2) by amounts that do not depend on the
 * data, so an attacker can relabel a frame and fix the whole chain
 * without the key.  Only the AEAD binding of the page number stops it. */
static void forge_frame_pgno(const char *wal, int frame, uint32_t new_pgno)
{
	int fd = open(wal, O_RDWR);
	uint8_t hdr[24], be[4];
	uint32_t x_old, x_new, d1, d2;
	struct stat st;
	off_t off;

	ASSERT_GE(fd, 0);
	ASSERT_OK(fstat(fd, &st));
	off = 32 + (off_t)(frame - 1) * (24 + FSVFS_PAGE_SIZE);
	ASSERT_EQ(pread(fd, hdr, 24, off), 24);
	be[0] = (uint8_t)(new_pgno >> 24);
	be[1] = (uint8_t)(new_pgno >> 16);
	be[2] = (uint8_t)(new_pgno >> 8);
	be[3] = (uint8_t)new_pgno;
	memcpy(&x_old, hdr, 4); /* native words, as the checksum reads them */
	memcpy(&x_new, be, 4);
	memcpy(hdr, be, 4);
	ASSERT_EQ(pwrite(fd, hdr, 4, off), 4);
	d1 = d2 = x_new - x_old; /* after the header's first pair */
	for (; off + 24 + FSVFS_PAGE_SIZE <= st.st_size; off += 24 + FSVFS_PAGE_SIZE) {
		uint32_t c1, c2;

		if (off != 32 + (off_t)(frame - 1) * (24 + FSVFS_PAGE_SIZE)) {
			d1 += d2; /* the header pair of a later frame */
			d2 += d1;
		}
		for (int i = 0; i < FSVFS_PAGE_SIZE / 8; i++) {
			d1 += d2;
			d2 += d1;
		}
		ASSERT_EQ(pread(fd, hdr, 24, off), 24);
		c1 = ((uint32_t)hdr[16] << 24 | (uint32_t)hdr[17] << 16 | (uint32_t)hdr[18] << 8 |
		      hdr[19]) +
		     d1;
		c2 = ((uint32_t)hdr[20] << 24 | (uint32_t)hdr[21] << 16 | (uint32_t)hdr[22] << 8 |
		      hdr[23]) +
		     d2;
		for (int i = 0; i < 4; i++) {
			hdr[16 + i] = (uint8_t)(c1 >> (24 - 8 * i));
			hdr[20 + i] = (uint8_t)(c2 >> (24 - 8 * i));
		}
		ASSERT_EQ(pwrite(fd, hdr + 16, 8, off + 16), 8);
	}
	close(fd);
}

TEST(store_relabelled_wal_frame_detected)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	struct fs_error err = { 0 };
	uint8_t h2[24], h3[24];
	struct store *s;
	int fd, r;

	store_close(fixture_store(secret, NULL, 1));
	write_and_die(secret, f, 5);
	fd = open(data_file("store.db-wal"), O_RDONLY);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(pread(fd, h2, 24, 32 + 1 * (24 + FSVFS_PAGE_SIZE)), 24);
	ASSERT_EQ(pread(fd, h3, 24, 32 + 2 * (24 + FSVFS_PAGE_SIZE)), 24);
	close(fd);
	ASSERT_TRUE(memcmp(h2, h3, 4) != 0); /* two different pages */
	forge_frame_pgno(data_file("store.db-wal"), 2,
			 (uint32_t)h3[0] << 24 | (uint32_t)h3[1] << 16 | (uint32_t)h3[2] << 8 |
				 h3[3]);
	r = store_open(data_dir, secret, NULL, &s, &err);
	if (r == 0) {
		r = store_check(s, &err);
		store_close(s);
	}
	ASSERT_EQ(r, -FS_ECORRUPT);
	ASSERT_STR_CONTAINS(err.msg, "WAL frame 2: authentication failed");
	form_free(f);
	keystore_secret_free(secret);
}

/* Two connections write in turn, each checkpointing (a new WAL
 * generation, new salts): each reads the other's frames of every
 * generation.  The salts a connection keeps (agent/vfs.c, wal_salts())
 * must follow a generation another connection began. */
TEST(store_wal_generations_across_connections)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	struct store *a, *b, *w, *r;
	struct fs_error err = { 0 };
	char id[UUID_TEXT_LEN + 1];
	int n = 0;

	store_close(fixture_store(secret, NULL, 1));
	a = fixture_store(secret, NULL, 0);
	b = fixture_store(secret, NULL, 0);
	for (int gen = 0; gen < 6; gen++) {
		w = gen % 2 ? b : a;
		r = gen % 2 ? a : b;
		for (int i = 0; i < 3; i++, n++)
			add_person(w, f, i % 2 ? "Петровић Јован" : "Jovanović Ana", id);
		ASSERT_EQ(count_live(r, f, &err), n);
		ASSERT_OK(store_check(r, &err));
		ASSERT_OK(store_checkpoint(w, &err));
		/* Written again in the new generation, read before any commit
		 * of the reader's own. */
		add_person(w, f, "Đorđević Milica", id);
		n++;
		ASSERT_EQ(count_live(r, f, &err), n);
	}
	store_close(a);
	store_close(b);
	form_free(f);
	keystore_secret_free(secret);
}

/* The 24-byte nonces of the sealed pages in the WAL at path, into out
 * (room for max); their count. */
static size_t wal_nonces(const char *path, uint8_t (*out)[24], size_t max)
{
	int fd = open(path, O_RDONLY);
	size_t n = 0;
	off_t off = 32 + 24 + FSVFS_PAGE_SIZE - FSVFS_RESERVE;

	ASSERT_GE(fd, 0);
	for (; n < max && pread(fd, out[n], 24, off) == 24; off += 24 + FSVFS_PAGE_SIZE)
		n++;
	close(fd);
	return n;
}

static int nonce_cmp(const void *x, const void *y)
{
	return memcmp(x, y, 24);
}

/* How many 16-byte prefixes the first n nonces have. */
static size_t prefixes(uint8_t (*nonces)[24], size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j = 0;

		while (j < i && memcmp(nonces[j], nonces[i], 16) != 0)
			j++;
		k += j == i;
	}
	return k;
}

/* Page nonces come from a random prefix and a counter (no system call
 * per page): never twice the same, across connections of one process
 * and in a forked child that goes on with its parent's handle. */
TEST(store_page_nonces_never_repeat)
{
	enum { MAX = 4096 };
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	uint8_t(*nonces)[24] = calloc(MAX, 24);
	struct store *a, *b;
	char id[UUID_TEXT_LEN + 1];
	size_t n, child_from;
	pid_t pid;
	int st;

	ASSERT_TRUE(nonces != NULL);
	store_close(fixture_store(secret, NULL, 1));
	a = fixture_store(secret, NULL, 0);
	b = fixture_store(secret, NULL, 0);
	for (int i = 0; i < 20; i++)
		add_person(i % 2 ? b : a, f, "Jovanović Ana", id);
	child_from = wal_nonces(data_file("store.db-wal"), nonces, MAX);
	/* A child writes through the handle it inherited, then the parent. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		for (int i = 0; i < 5; i++)
			add_person(a, f, "Petrović Jovan", id);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (int i = 0; i < 5; i++)
		add_person(a, f, "Đorđević Milica", id);
	n = wal_nonces(data_file("store.db-wal"), nonces, MAX);
	ASSERT_TRUE(n > child_from + 10 && n < MAX);
	ASSERT_EQ(prefixes(nonces, child_from), 2); /* a's and b's */
	/* Three: the child drew its own. */
	ASSERT_EQ(prefixes(nonces, n), 3);
	qsort(nonces, n, 24, nonce_cmp);
	for (size_t i = 1; i < n; i++)
		ASSERT_TRUE(memcmp(nonces[i - 1], nonces[i], 24) != 0);
	store_close(a);
	store_close(b);
	free(nonces);
	form_free(f);
	keystore_secret_free(secret);
}

/* The page cache is the store's own ([store] cache_mib), on both of the
 * agent's connections; unset, STORE_DEFAULT_CACHE_MIB. */
TEST(store_page_cache_configured)
{
	struct store_options opt = { .cache_mib = 3 };
	struct fs_error err = { 0 };
	struct store *s, *t = NULL;

	store_close(fixture_store(NULL, NULL, 1));
	s = fixture_store(NULL, &opt, 0);
	ASSERT_EQ(fixture_count(s, "PRAGMA cache_size"), -3 * 1024);
	ASSERT_OK(store_reopen(s, &t, &err));
	ASSERT_EQ(fixture_count(t, "PRAGMA cache_size"), -3 * 1024);
	store_close(t);
	store_close(s);
	s = fixture_store(NULL, NULL, 0);
	ASSERT_EQ(fixture_count(s, "PRAGMA cache_size"), -STORE_DEFAULT_CACHE_MIB * 1024);
	store_close(s);
}

static int cache_used(struct store *s)
{
	int cur = 0, hi = 0;

	ASSERT_EQ(sqlite3_db_status(store_db(s), SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0),
		  SQLITE_OK);
	return cur;
}

/* An idle connection gives its cache back (the agent's worker after a
 * push), and reads the same afterwards. */
TEST(store_release_memory_gives_cache_back)
{
	struct form *f = fixture_form("beneficiaries");
	struct store *s = fixture_store(NULL, NULL, 1);
	struct fs_error err = { 0 };
	char id[UUID_TEXT_LEN + 1];
	int full;

	for (int i = 0; i < 200; i++)
		add_person(s, f, i % 2 ? "Петровић Јован" : "Jovanović Ana", id);
	ASSERT_EQ(count_live(s, f, &err), 200);
	full = cache_used(s);
	ASSERT_TRUE(full > 64 * 1024);
	store_release_memory(s);
	ASSERT_TRUE(cache_used(s) < full / 4);
	ASSERT_EQ(count_live(s, f, &err), 200);
	store_release_memory(NULL);
	store_close(s);
	form_free(f);
}

/* ---- durability ------------------------------------------------------- */

TEST(store_torn_wal_tail_recovers)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	uint8_t zeros[FSVFS_PAGE_SIZE / 2] = { 0 };
	struct fs_error err = { 0 };
	struct store *s;
	struct stat st;
	off_t torn = 0;
	pid_t pid;
	int status, fd;

	store_close(fixture_store(secret, NULL, 1));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char id[UUID_TEXT_LEN + 1];
		cJSON *o = cJSON_Parse("{\"full_name\":\"Lazić Ivana\",\"municipality\":\"Vranje\","
				       "\"consent\":true}");

		s = fixture_store(secret, NULL, 0);
		for (int i = 0; i < 20; i++)
			add_person(s, f, "Lazić Ivana", id);
		/* A big transaction spills uncommitted frames into the WAL. */
		ASSERT_EQ(sqlite3_exec(store_db(s), "PRAGMA cache_size=10", NULL, NULL, NULL),
			  SQLITE_OK);
		ASSERT_OK(store_begin(s, &err));
		for (int i = 0; i < 500; i++)
			ASSERT_OK(records_add(s, f, o, NULL, id, &err));
		raise(SIGKILL);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status));
	/* Power loss tears the first frame written after the last commit:
	 * the one SQLite's recovery reads (and must reject) first. */
	ASSERT_OK(stat(data_file("store.db-wal"), &st));
	ASSERT_GT(st.st_size, 32 + 30 * (24 + FSVFS_PAGE_SIZE));
	fd = open(data_file("store.db-wal"), O_RDWR);
	ASSERT_GE(fd, 0);
	for (off_t off = 32; off + 24 + FSVFS_PAGE_SIZE <= st.st_size;
	     off += 24 + FSVFS_PAGE_SIZE) {
		uint8_t hdr[24];

		ASSERT_EQ(pread(fd, hdr, sizeof(hdr), off), (ssize_t)sizeof(hdr));
		if (hdr[4] | hdr[5] | hdr[6] | hdr[7]) /* a commit frame */
			torn = off + 24 + FSVFS_PAGE_SIZE;
	}
	ASSERT_GT(torn, 0);
	ASSERT_LT(torn, st.st_size);
	ASSERT_EQ(pwrite(fd, zeros, sizeof(zeros), torn + 24 + FSVFS_PAGE_SIZE / 2),
		  (ssize_t)sizeof(zeros));
	close(fd);
	/* Like SQLite with a torn write: the uncommitted tail is dropped,
	 * every commit before it survives, and nothing is reported as
	 * tampering. */
	s = fixture_store(secret, NULL, 0);
	ASSERT_EQ(count_live(s, f, &err), 20);
	ASSERT_OK(store_check(s, &err));
	ASSERT_OK(records_verify_outbox(s, &err));
	store_close(s);
	form_free(f);
	keystore_secret_free(secret);
}

TEST(store_wal_recovery_after_kill9)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	struct fs_error err = { 0 };
	struct store *s;
	struct stat st;

	store_close(fixture_store(secret, NULL, 1));
	write_and_die(secret, f, 60);
	ASSERT_OK(stat(data_file("store.db-wal"), &st));
	ASSERT_GT(st.st_size, 0);
	/* Recovery re-reads every frame through the VFS and checks SQLite's
	 * frame checksums: all 60 commits must be there. */
	s = fixture_store(secret, NULL, 0);
	ASSERT_EQ(count_live(s, f, &err), 60);
	ASSERT_OK(store_check(s, &err));
	ASSERT_OK(records_verify_outbox(s, &err));
	store_close(s);
	form_free(f);
	keystore_secret_free(secret);
}

TEST(store_large_sort_stays_in_memory)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	struct fs_error err = { 0 };
	char id[UUID_TEXT_LEN + 1];
	sqlite3_stmt *st;
	struct store *s = fixture_store(secret, NULL, 1);
	int rows = 0;

	for (int i = 0; i < 150; i++)
		add_person(s, f, "Nikolić Stefan", id);
	/* A tiny cache makes SQLite's sorter want temporary files; with
	 * temp_store=MEMORY it must never ask the VFS for one (the VFS
	 * refuses, which would fail this query). */
	ASSERT_EQ(sqlite3_exec(store_db(s), "PRAGMA cache_size=2", NULL, NULL, NULL), SQLITE_OK);
	ASSERT_EQ(sqlite3_prepare_v2(store_db(s),
				     "SELECT a.fields || b.id FROM records a, records b "
				     "ORDER BY 1 DESC",
				     -1, &st, NULL),
		  SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		rows++;
	ASSERT_EQ(sqlite3_errcode(store_db(s)), SQLITE_DONE);
	ASSERT_EQ(rows, 150 * 150);
	sqlite3_finalize(st);
	/* The test can fail: with temp files allowed the sorter asks the VFS
	 * for one, which the VFS refuses. */
	ASSERT_EQ(sqlite3_exec(store_db(s), "PRAGMA temp_store=FILE", NULL, NULL, NULL), SQLITE_OK);
	ASSERT_TRUE(sqlite3_exec(store_db(s),
				 "SELECT a.fields || b.id FROM records a, records b "
				 "ORDER BY 1 DESC",
				 NULL, NULL, NULL) != SQLITE_OK);
	store_close(s);
	form_free(f);
	keystore_secret_free(secret);
	(void)err;
}

/* ---- key management --------------------------------------------------- */

static void file_hash(const char *path, uint8_t out[32])
{
	crypto_generichash_state h;
	uint8_t buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	ASSERT_GE(fd, 0);
	crypto_generichash_init(&h, NULL, 0, 32);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crypto_generichash_update(&h, buf, (size_t)n);
	crypto_generichash_final(&h, out, 32);
	close(fd);
}

TEST(store_wrong_passphrase_refused)
{
	static const char wrong[] = "wrong-Lozinka-Лозинка";
	struct keystore_secret *good = pass_secret("ispravna lozinka 2026");
	struct keystore_secret *bad = pass_secret(wrong);
	struct keystore_secret *keyf = fixture_key_secret();
	struct fs_error err = { 0 };
	struct store *s = fixture_store(good, NULL, 1);

	store_close(s);
	ASSERT_EQ(store_open(data_dir, bad, NULL, &s, &err), -FS_EKEY);
	ASSERT_STR_CONTAINS(err.msg, "wrong passphrase");
	ASSERT_TRUE(strstr(err.msg, wrong) == NULL);
	ASSERT_TRUE(strstr(err.msg, "ispravna") == NULL);
	ASSERT_EQ(store_open(data_dir, keyf, NULL, &s, &err), -FS_EKEY);
	keystore_secret_free(good);
	keystore_secret_free(bad);
	keystore_secret_free(keyf);
}

TEST(store_passwd_rewraps_without_touching_data)
{
	struct keystore_secret *a = pass_secret("prva lozinka 1"),
			       *b = pass_secret("druga lozinka 2");
	struct form *f = fixture_form("beneficiaries");
	uint8_t before[32], after[32];
	char id[UUID_TEXT_LEN + 1];
	struct fs_error err = { 0 };
	struct store *s = fixture_store(a, NULL, 1);

	add_person(s, f, "Marković Milica", id);
	store_close(s);
	file_hash(data_file("store.db"), before);
	ASSERT_EQ(store_passwd(data_dir, b, a, PWHASH_INTERACTIVE, &err), -FS_EKEY);
	ASSERT_OK(store_passwd(data_dir, a, b, PWHASH_INTERACTIVE, &err));
	file_hash(data_file("store.db"), after);
	ASSERT_MEM_EQ(before, after, 32);
	ASSERT_EQ(store_open(data_dir, a, NULL, &s, &err), -FS_EKEY);
	s = fixture_store(b, NULL, 0);
	ASSERT_EQ(count_live(s, f, &err), 1);
	store_close(s);
	form_free(f);
	keystore_secret_free(a);
	keystore_secret_free(b);
}

/* ---- records and outbox ----------------------------------------------- */

TEST(records_outbox_in_same_transaction)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	char id[UUID_TEXT_LEN + 1], id2[UUID_TEXT_LEN + 1];
	struct fs_error err = { 0 };
	cJSON *o = cJSON_Parse("{\"full_name\":\"Ilić Jelena\",\"municipality\":\"Bujanovac\","
			       "\"consent\":true}");
	cJSON *edit = cJSON_Parse("{\"household_size\":3,\"municipality\":\"Bujanovac\"}");
	struct store *s = fixture_store(secret, NULL, 1);

	/* Outside a transaction: refused. */
	ASSERT_EQ(records_add(s, f, o, NULL, id, &err), -FS_EUSAGE);
	/* Rolled back: neither the record nor its changes remain. */
	ASSERT_OK(store_begin(s, &err));
	ASSERT_OK(records_add(s, f, o, NULL, id, &err));
	store_rollback(s);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM records"), 0);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox"), 0);
	ASSERT_OK(store_begin(s, &err));
	ASSERT_OK(records_add(s, f, o, NULL, id, &err));
	ASSERT_OK(store_commit(s, &err));
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox"), 3);
	/* Only the field that changed is a new change. */
	ASSERT_OK(store_begin(s, &err));
	ASSERT_OK(records_edit(s, f, id, edit, &err));
	ASSERT_OK(store_commit(s, &err));
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox"), 4);
	ASSERT_OK(store_begin(s, &err));
	ASSERT_OK(records_delete(s, f, id, &err));
	ASSERT_OK(store_commit(s, &err));
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM outbox WHERE field = '_deleted'"), 1);
	ASSERT_EQ(fixture_count(s, "SELECT count(DISTINCT hlc) FROM outbox"), 3);
	ASSERT_OK(records_verify_outbox(s, &err));
	/* Deleted records are gone from lists and cannot be edited. */
	ASSERT_EQ(count_live(s, f, &err), 0);
	ASSERT_OK(store_begin(s, &err));
	ASSERT_EQ(records_edit(s, f, id, edit, &err), -FS_ENOTFOUND);
	/* Keeping a given id; the same id twice is refused. */
	ASSERT_OK(records_add(s, f, o, "0193A1B2-C3D4-7ABC-8DEF-0123456789AB", id2, &err));
	ASSERT_STR_EQ(id2, "0193a1b2-c3d4-7abc-8def-0123456789ab");
	ASSERT_EQ(records_add(s, f, o, id2, id, &err), -FS_EEXIST);
	ASSERT_OK(store_commit(s, &err));
	/* The check can fail: alter a change behind the store's back. */
	ASSERT_EQ(sqlite3_exec(store_db(s),
			       "UPDATE outbox SET value = '5' WHERE field = "
			       "'household_size'",
			       NULL, NULL, NULL),
		  SQLITE_OK);
	ASSERT_EQ(records_verify_outbox(s, &err), -FS_ECORRUPT);
	ASSERT_STR_CONTAINS(err.msg, id);
	cJSON_Delete(o);
	cJSON_Delete(edit);
	store_close(s);
	form_free(f);
	keystore_secret_free(secret);
}

TEST(records_validation_names_field)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *fb = fixture_form("beneficiaries"), *fv = fixture_form("visits");
	char id[UUID_TEXT_LEN + 1];
	struct fs_error err = { 0 };
	cJSON *bad = cJSON_Parse("{\"full_name\":\"Tasić Vesna\",\"municipality\":\"Tutin\","
				 "\"consent\":true,\"household_size\":0}");
	cJSON *visit =
		cJSON_Parse("{\"beneficiary_id\":\"0193a1b2-c3d4-7abc-8def-0123456789ab\","
			    "\"visit_date\":\"2026-11-20\",\"visit_type\":\"needs_assessment\"}");
	struct store *s = fixture_store(secret, NULL, 1);

	ASSERT_OK(store_begin(s, &err));
	ASSERT_EQ(records_add(s, fb, bad, NULL, id, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "household_size");
	ASSERT_TRUE(strstr(err.msg, "Tasić") == NULL);
	ASSERT_EQ(records_add(s, fv, visit, NULL, id, &err), -FS_EVALID);
	ASSERT_STR_CONTAINS(err.msg, "beneficiary_id");
	store_rollback(s);
	ASSERT_EQ(fixture_count(s, "SELECT count(*) FROM records"), 0);
	cJSON_Delete(bad);
	cJSON_Delete(visit);
	store_close(s);
	form_free(fb);
	form_free(fv);
	keystore_secret_free(secret);
}

/* ---- the disk room kept for delivery -------------------------------------- */

static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

TEST(store_ballast_keeps_room_for_delivery)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct store_options opt = { .ballast_bytes = 256 * 1024 };
	struct ballast_state b;
	struct fs_error err = { 0 };
	struct store *s = NULL, *sync = NULL;
	char path[4200];

	ASSERT_OK(store_create(data_dir, secret, PWHASH_INTERACTIVE, NULL, &err));
	ASSERT_OK(store_open(data_dir, secret, &opt, &s, &err));
	ASSERT_OK(store_reopen(s, &sync, &err));
	snprintf(path, sizeof(path), "%s/store.ballast", data_dir);
	/* A local write makes it whole first. */
	ASSERT_OK(store_begin_local(s, &err));
	store_rollback(s);
	ASSERT_EQ(file_size(path), 256 * 1024);
	ASSERT_OK(store_room_state(s, &b, &err));
	ASSERT_EQ(b.target, 256 * 1024);
	ASSERT_EQ(b.held, 256 * 1024);
	ASSERT_EQ(b.in_use, 0);

	/* The sync path takes it: local writes on any connection are refused,
	 * and the sync path's own writes go on. */
	ASSERT_OK(store_room_take(sync, &err));
	ASSERT_EQ(file_size(path), 0);
	ASSERT_EQ(store_begin_local(s, &err), -ENOSPC);
	ASSERT_STR_CONTAINS(err.msg, "the disk is full");
	ASSERT_STR_CONTAINS(err.msg, "nothing was changed");
	ASSERT_OK(store_room_state(s, &b, &err));
	ASSERT_EQ(b.in_use, 1);
	ASSERT_OK(store_begin(sync, &err));
	ASSERT_OK(store_commit(sync, &err));

	/* Given back, it is whole again and local writes run. */
	store_room_give_back(sync);
	ASSERT_EQ(file_size(path), 256 * 1024);
	ASSERT_OK(store_room_state(s, &b, &err));
	ASSERT_EQ(b.in_use, 0);
	ASSERT_OK(store_begin_local(s, &err));
	store_rollback(s);

	/* Left short (a disk that had no room when it was given back), the
	 * next local write makes it whole again when the disk allows. */
	ASSERT_EQ(truncate(path, 4096), 0);
	ASSERT_OK(store_begin_local(s, &err));
	store_rollback(s);
	ASSERT_EQ(file_size(path), 256 * 1024);
	store_close(sync);
	store_close(s);
	keystore_secret_free(secret);
}

/* A store made before two-way sync (schema version 1) is upgraded when
 * opened, its records kept and made searchable. */
TEST(store_upgrades_version_1)
{
	struct keystore_secret *secret = fixture_key_secret();
	struct form *f = fixture_form("beneficiaries");
	char id[UUID_TEXT_LEN + 1];
	struct fs_error err = { 0 };
	struct store *s = fixture_store(secret, NULL, 1);
	sqlite3_stmt *st = NULL;

	add_person(s, f, "Јовановић Јован", id);
	ASSERT_EQ(sqlite3_exec(store_db(s),
			       "DROP TABLE field_clocks; DROP TABLE hq_conflicts; "
			       "DROP TABLE hq_forms; ALTER TABLE outbox DROP COLUMN "
			       "form_version; ALTER TABLE outbox DROP COLUMN quarantined; "
			       "DROP TRIGGER record_search_insert; DROP TRIGGER "
			       "record_search_update; DROP TRIGGER record_search_delete; "
			       "DROP INDEX records_visits_by_household; DROP TABLE record_search; "
			       "DROP TABLE drafts; DROP TABLE device_teams; "
			       "DROP TABLE attachments; DROP TABLE attachment_chunks; "
			       "PRAGMA user_version = 1;",
			       NULL, NULL, NULL),
		  SQLITE_OK);
	store_close(s);
	s = fixture_store(secret, NULL, 0);
	ASSERT_EQ(sqlite3_prepare_v2(
			  store_db(s),
			  "SELECT (SELECT count(*) FROM field_clocks), "
			  "(SELECT count(*) FROM hq_forms), "
			  "(SELECT user_version FROM pragma_user_version), "
			  "(SELECT sum(form_version) FROM outbox), "
			  "(SELECT count(*) FROM record_search WHERE "
			  "instr(words, ' jovanovic jovan') > 0 AND name = 'jovanovic jovan')",
			  -1, &st, NULL),
		  SQLITE_OK);
	ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
	ASSERT_EQ(sqlite3_column_int(st, 0), 0);
	ASSERT_EQ(sqlite3_column_int(st, 1), 0);
	ASSERT_EQ(sqlite3_column_int(st, 2), STORE_SCHEMA_VERSION);
	/* Changes made before carry the device's own form: version 0. */
	ASSERT_EQ(sqlite3_column_int(st, 3), 0);
	/* The household written before is found by the search (version 4). */
	ASSERT_EQ(sqlite3_column_int(st, 4), 1);
	sqlite3_finalize(st);
	ASSERT_EQ(count_live(s, f, &err), 1);
	ASSERT_OK(store_check(s, &err));
	store_close(s);
	form_free(f);
	keystore_secret_free(secret);
}
