/* fixture.c - see fixture.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sqlite3.h>
#include <zstd.h>

#include "crypto/bytes.h"
#include "crypto/pwhash.h"
#include "tests/fixture.h"

#include "agent/records.h"
#include "tests/test.h"

static char data_dir[4096];

struct keystore_secret *fixture_key_secret(void)
{
	struct keystore_secret *sec = NULL;
	struct fs_error err = { 0 };
	char path[4096];

	snprintf(path, sizeof(path), "%s/wrap.key", test_tmpdir());
	if (access(path, F_OK) != 0 && keystore_keygen(path, &err) < 0)
		TEST_FAIL("keystore_keygen: %s", err.msg);
	if (keystore_secret_from_key_file(path, &sec, &err) < 0)
		TEST_FAIL("keystore_secret_from_key_file: %s", err.msg);
	return sec;
}

const char *fixture_data_dir(void)
{
	snprintf(data_dir, sizeof(data_dir), "%s/data", test_tmpdir());
	return data_dir;
}

struct store *fixture_store(const struct keystore_secret *secret, const struct store_options *opt,
			    int create)
{
	struct keystore_secret *own = secret ? NULL : fixture_key_secret();
	const char *dir = fixture_data_dir();
	struct fs_error err = { 0 };
	struct store *s = NULL;

	if (!secret)
		secret = own;
	if (create && store_create(dir, secret, PWHASH_INTERACTIVE, NULL, &err) < 0)
		TEST_FAIL("store_create: %s", err.msg);
	if (store_open(dir, secret, opt, &s, &err) < 0)
		TEST_FAIL("store_open: %s", err.msg);
	keystore_secret_free(own);
	return s;
}

struct form *fixture_form(const char *collection)
{
	struct fs_error err = { 0 };
	struct form *f = NULL;
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s.json", test_forms_dir(), collection);
	if (form_load_file(path, &f, &err) < 0)
		TEST_FAIL("form_load_file %s: %s", path, err.msg);
	return f;
}

void fixture_person(struct store *s, const struct form *f, const char *name, const char *muni,
		    const char *status, char id[UUID_TEXT_LEN + 1])
{
	struct fs_error err = { 0 };
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "full_name", name);
	cJSON_AddStringToObject(o, "municipality", muni);
	cJSON_AddStringToObject(o, "status", status);
	cJSON_AddNumberToObject(o, "household_size", 3);
	cJSON_AddBoolToObject(o, "consent", 1);
	if (store_begin(s, &err) < 0 || records_add(s, f, o, NULL, id, &err) < 0 ||
	    store_commit(s, &err) < 0)
		TEST_FAIL("add a household: %s", err.msg);
	cJSON_Delete(o);
}

long long fixture_count(struct store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long n;

	if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		TEST_FAIL("%s: %s", sql, sqlite3_errmsg(store_db(s)));
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

void fixture_http_serve(int ls, const char *const answers[], int n, const char *log)
{
	FILE *fp;

	/* A test that fails leaves no server waiting behind it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
		_exit(1);
	fp = fopen(log, "w");

	for (int i = 0; i < n && fp; i++) {
		char buf[8192];
		size_t got = 0;
		int c = accept(ls, NULL, NULL);
		char *hdr_end = NULL, *cl;
		long want = -1;

		if (c < 0)
			_exit(1);
		while (got < sizeof(buf) - 1) {
			ssize_t k = read(c, buf + got, sizeof(buf) - 1 - got);

			if (k <= 0)
				break;
			got += (size_t)k;
			buf[got] = '\0';
			if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n"))) {
				cl = strcasestr(buf, "Content-Length:");
				want = cl ? strtol(cl + 15, NULL, 10) : 0;
			}
			if (hdr_end && (long)(got - (size_t)(hdr_end + 4 - buf)) >= want)
				break;
		}
		fwrite(buf, 1, got, fp);
		fputs("\n--\n", fp);
		if (write(c, answers[i], strlen(answers[i])) < 0)
			_exit(1);
		close(c);
	}
	if (fp)
		fclose(fp);
	_exit(0);
}

int fixture_http_listen(char *url, size_t cap, const char *path)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 4) < 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
		TEST_FAIL("listen on loopback: %s", strerror(errno));
	snprintf(url, cap, "http://127.0.0.1:%d%s", ntohs(a.sin_port), path);
	return ls;
}

void fixture_raw_changeset(const struct changeset_header *h, const char *text, size_t tlen,
			   const uint8_t *box_pk, const uint8_t *sign_sk, uint8_t **ret_buf,
			   size_t *ret_len)
{
	size_t bind = h->version >= CHANGESET_VERSION_BOUND ? CHANGESET_BINDING_BYTES : 0;
	size_t zcap = bind + ZSTD_compressBound(tlen), zlen, sealed, total;
	uint8_t *z = malloc(zcap), *out;

	ASSERT_TRUE(z);
	zlen = ZSTD_compress(z + bind, zcap - bind, text, tlen, 3);
	ASSERT_TRUE(!ZSTD_isError(zlen));
	zlen += bind;
	sealed = zlen + crypto_box_SEALBYTES;
	total = CHANGESET_HEADER_BYTES + sealed + CHANGESET_SIG_BYTES;
	ASSERT_LE(total, CHANGESET_MAX_BYTES);
	out = calloc(1, total);
	ASSERT_TRUE(out);
	memcpy(out, CHANGESET_MAGIC, 4);
	out[4] = h->version;
	out[5] = CHANGESET_CODEC_ZSTD_JSON;
	memcpy(out + 8, h->device, CHANGESET_DEVICE_BYTES);
	bytes_put_be(out + 24, h->seq, 8);
	memcpy(out + 32, h->prev, CHANGESET_HASH_BYTES);
	memcpy(z, out + 8, bind);
	bytes_put_be(out + 64, h->hlc_min, 8);
	bytes_put_be(out + 72, h->hlc_max, 8);
	bytes_put_be(out + 80, h->count, 4);
	bytes_put_be(out + 84, sealed, 4);
	ASSERT_OK(crypto_box_seal(out + CHANGESET_HEADER_BYTES, z, zlen, box_pk));
	crypto_sign_detached(out + total - CHANGESET_SIG_BYTES, NULL, out,
			     total - CHANGESET_SIG_BYTES, sign_sk);
	free(z);
	*ret_buf = out;
	*ret_len = total;
}
