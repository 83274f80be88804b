/* test_hq.c - fieldsync-hq against real change sets on loopback: accept,
 * replay, gap, flipped bytes, unknown and revoked devices, size limits,
 * enrolment, future HLCs, convergence in random orders, and the caseload
 * conflict.  The server is the real binary (FS_HQ_BIN); libcurl is the
 * client.  Names are synthetic. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <sqlite3.h>

#include "crypto/bytes.h"
#include "crypto/identity.h"
#include "sync/changeset.h"
#include "sync/downset.h"
#include "sync/filewire.h"
#include "sync/receipt.h"
#include "sync/status.h"
#include "sync/token.h"
#include "tests/fixture.h"
#include "tests/test.h"

/* ---- running fieldsync-hq ----------------------------------------------- */

struct hq {
	char dir[512], data[600], conf[600], log[600];
	const char *forms; /* forms directory; NULL: the source tree's */
	pid_t pid;
	int port;
	char url[64];
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], box_pk[crypto_box_PUBLICKEYBYTES];
	int have_keys;
};

/* Run fieldsync-hq with args (NULL-terminated); stdout into *out
 * (malloc'd, NUL-terminated) when out is given.  Returns the exit code. */
static int hq_run(const struct hq *h, char **out, const char *const *args)
{
	const char *argv[32] = { FS_HQ_BIN,
				 "-c",
				 h->conf,
				 "--data-dir",
				 h->data,
				 "--forms-dir",
				 h->forms ? h->forms : test_forms_dir() };
	int p[2], status, n = 7;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	pid_t pid;

	ASSERT_TRUE(buf);
	for (int i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	ASSERT_OK(pipe(p));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(FS_HQ_BIN, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t got;

		if (len + 1 >= cap)
			ASSERT_TRUE((buf = realloc(buf, cap *= 2)));
		got = read(p[0], buf + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		ASSERT_GE(got, 0);
		if (got == 0)
			break;
		len += (size_t)got;
	}
	buf[len] = '\0';
	close(p[0]);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

#define HQ_RUN(h, out, ...) hq_run((h), (out), (const char *const[]){ __VA_ARGS__, NULL })

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, data, n), (ssize_t)n);
	ASSERT_OK(close(fd));
}

static char *read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	ASSERT_TRUE(f);
	ASSERT_OK(fseek(f, 0, SEEK_END));
	n = ftell(f);
	ASSERT_GE(n, 0);
	rewind(f);
	ASSERT_TRUE((buf = malloc((size_t)n + 1)));
	ASSERT_EQ(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (ret_len)
		*ret_len = (size_t)n;
	return buf;
}

/* A fresh HQ in test_tmpdir()/name; with keys_from, it gets that HQ's
 * hq.key, so change sets sealed for one open at both. */
static void hq_init(struct hq *h, const char *name, const char *conf_text,
		    const struct hq *keys_from)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "%s/%s", test_tmpdir(), name);
	snprintf(h->data, sizeof(h->data), "%s/data", h->dir);
	snprintf(h->conf, sizeof(h->conf), "%s/hq.conf", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/serve.log", h->dir);
	ASSERT_OK(mkdir(h->dir, 0700));
	/* The console on a port the kernel picks: tests run side by side. */
	{
		char conf[4096];

		snprintf(conf, sizeof(conf), "[console]\nlisten = 127.0.0.1:0\n%s",
			 conf_text ? conf_text : "");
		write_file(h->conf, conf, strlen(conf), 0600);
	}
	ASSERT_EQ(HQ_RUN(h, NULL, "init"), 0);
	if (keys_from) {
		char src[700], dst[700], *key;
		size_t n;

		snprintf(src, sizeof(src), "%s/hq.key", keys_from->data);
		snprintf(dst, sizeof(dst), "%s/hq.key", h->data);
		key = read_file(src, &n);
		write_file(dst, key, n, 0600);
		free(key);
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Start `serve --listen 127.0.0.1:0` and wait for its "listening" line. */
static void hq_start(struct hq *h)
{
	uint64_t deadline = now_ms() + test_timeout_ms(30000);

	/* A restart: the port is the new server's, read from its own log. */
	h->port = 0;
	unlink(h->log);
	h->pid = fork();
	ASSERT_GE(h->pid, 0);
	if (h->pid == 0) {
		int fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		/* A failing test aborts; its server must not outlive it. */
		if (fd < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
		execl(FS_HQ_BIN, FS_HQ_BIN, "-c", h->conf, "--data-dir", h->data, "--forms-dir",
		      h->forms ? h->forms : test_forms_dir(), "serve", "--listen", "127.0.0.1:0",
		      (char *)NULL);
		_exit(127);
	}
	for (;;) {
		struct timespec pause = { 0, 10 * 1000 * 1000 };
		char *log = NULL, *at;
		int status;

		if (access(h->log, R_OK) == 0) {
			log = read_file(h->log, NULL);
			if ((at = strstr(log, "listening on 127.0.0.1:")))
				h->port = atoi(at + strlen("listening on 127.0.0.1:"));
			free(log);
		}
		if (h->port > 0)
			break;
		if (waitpid(h->pid, &status, WNOHANG) == h->pid)
			TEST_FAIL("fieldsync-hq serve exited before listening");
		if (now_ms() > deadline)
			TEST_FAIL("fieldsync-hq serve did not start within %lu ms",
				  test_timeout_ms(30000));
		nanosleep(&pause, NULL); /* polling for readiness, not an assertion */
	}
	snprintf(h->url, sizeof(h->url), "http://127.0.0.1:%d", h->port);
}

/* Parts of the synthetic names every test uses; never in a log. */
static const char *const name_parts[] = { "Ружичић",	"Ružičić", "Jovanović", "Petrović",
					  "Šćepanović", "Чолић",   "Stanković" };

static void hq_stop(struct hq *h)
{
	char *log;
	int status;

	ASSERT_OK(kill(h->pid, SIGTERM));
	ASSERT_EQ(waitpid(h->pid, &status, 0), h->pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	h->pid = 0;
	log = read_file(h->log, NULL);
	for (size_t i = 0; i < sizeof(name_parts) / sizeof(name_parts[0]); i++)
		if (strstr(log, name_parts[i]))
			TEST_FAIL("the server log carries a name");
	free(log);
}

/* ---- HTTP with libcurl ------------------------------------------------- */

struct buf {
	char *data;
	size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
	struct buf *b = user;
	char *grown = realloc(b->data, b->len + size * n + 1);

	if (!grown)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, p, size * n);
	b->len += size * n;
	b->data[b->len] = '\0';
	return size * n;
}

/* POST body to h->url + path with the given Expect header line; returns
 * the status, *ret the answer's bytes (NUL-terminated; NULL when empty). */
static long http_post_raw(const struct hq *h, const char *path, const void *body, size_t len,
			  const char *ctype, const char *expect, struct buf *ret)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	struct buf b = { NULL, 0 };
	char url[128], ct[128];
	long status = 0;
	CURLcode rc;

	ASSERT_TRUE(c);
	snprintf(url, sizeof(url), "%s%s", h->url, path);
	snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
	hdrs = curl_slist_append(hdrs, ct);
	hdrs = curl_slist_append(hdrs, expect);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		TEST_FAIL("POST %s: %s", path, curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	*ret = b;
	return status;
}

/* The same; every answer must be JSON, *ret_json parsed. */
static long http_post_expect(const struct hq *h, const char *path, const void *body, size_t len,
			     const char *ctype, const char *expect, cJSON **ret_json)
{
	struct buf b;
	long status = http_post_raw(h, path, body, len, ctype, expect, &b);

	if (!b.data)
		TEST_FAIL("POST %s: %ld with an empty body", path, status);
	*ret_json = cJSON_Parse(b.data);
	if (!*ret_json)
		TEST_FAIL("POST %s: %ld with a body that is not JSON", path, status);
	free(b.data);
	return status;
}

/* Without "Expect: 100-continue": the body follows the headers at once. */
static long http_post(const struct hq *h, const char *path, const void *body, size_t len,
		      const char *ctype, cJSON **ret_json)
{
	return http_post_expect(h, path, body, len, ctype, "Expect:", ret_json);
}

static const char *json_str(const cJSON *o, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* POST a change set, expect status; return the parsed answer. */
static cJSON *push(const struct hq *h, const uint8_t *set, size_t len, long want)
{
	cJSON *j = NULL;
	long got =
		http_post(h, "/v1/changesets", set, len, "application/vnd.fieldsync.changeset", &j);

	if (got != want)
		TEST_FAIL("change set answered %ld (%s), expected %ld", got,
			  json_str(j, "error") ? json_str(j, "error") : "-", want);
	if (want != 200)
		ASSERT_TRUE(json_str(j, "error") && json_str(j, "message"));
	return j;
}

static void decode_b64(const char *s, uint8_t *out, size_t cap, size_t *ret_len)
{
	ASSERT_TRUE(s);
	ASSERT_OK(sodium_base642bin(out, cap, s, strlen(s), NULL, ret_len, NULL,
				    sodium_base64_VARIANT_ORIGINAL));
}

/* ---- devices and change sets -------------------------------------------- */

struct device {
	struct identity *id;
	char team[32];
	const char *muni;  /* enrolment municipality; NULL: Sjenica */
	const char *scope; /* enroll-token --scope, or NULL */
	uint64_t seq;	   /* last sequence built */
	uint8_t prev[32];  /* hash of the last set built */
	hlc_t clock;	   /* last HLC used */
	uint8_t version;   /* change set version it writes (0: CHANGESET_VERSION) */
};

static void device_new(struct device *d, const char *team)
{
	memset(d, 0, sizeof(*d));
	ASSERT_OK(identity_generate(&d->id));
	snprintf(d->team, sizeof(d->team), "%s", team);
}

/* Last line of a command's output. */
static const char *last_line(char *out)
{
	size_t n = strlen(out);
	char *p;

	while (n && out[n - 1] == '\n')
		out[--n] = '\0';
	p = strrchr(out, '\n');
	return p ? p + 1 : out;
}

static char *enroll_body(const struct device *d, const char *token, const uint8_t *proof_key_sk)
{
	struct enroll_token t;
	uint8_t msg[TOKEN_ENROLL_MSG_BYTES], proof[crypto_sign_BYTES];
	char sign_b64[64], box_b64[64], proof_b64[128];
	cJSON *o = cJSON_CreateObject();
	char *text;

	ASSERT_OK(token_parse(token, &t));
	token_enroll_message(t.secret, d->id->sign_pk, d->id->box_pk, msg);
	crypto_sign_detached(proof, NULL, msg, sizeof(msg),
			     proof_key_sk ? proof_key_sk : d->id->sign_sk);
	sodium_bin2base64(sign_b64, sizeof(sign_b64), d->id->sign_pk, 32,
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(box_b64, sizeof(box_b64), d->id->box_pk, 32,
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(proof_b64, sizeof(proof_b64), proof, sizeof(proof),
			  sodium_base64_VARIANT_ORIGINAL);
	cJSON_AddStringToObject(o, "token", token);
	cJSON_AddStringToObject(o, "device", d->id->id);
	cJSON_AddStringToObject(o, "sign_pk", sign_b64);
	cJSON_AddStringToObject(o, "box_pk", box_b64);
	cJSON_AddStringToObject(o, "proof", proof_b64);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

/* A token for team; by default its device may write the municipality
 * person() writes. */
static char *new_token_in(const struct hq *h, const char *team, const char *muni, const char *scope)
{
	char *out = NULL, *tok;

	if (scope)
		ASSERT_EQ(HQ_RUN(h, &out, "enroll-token", "--team", team, "--municipality", muni,
				 "--scope", scope),
			  0);
	else
		ASSERT_EQ(HQ_RUN(h, &out, "enroll-token", "--team", team, "--municipality", muni),
			  0);
	tok = strdup(last_line(out));
	free(out);
	ASSERT_TRUE(!strncmp(tok, "FS1-", 4));
	return tok;
}

static char *new_token(const struct hq *h, const char *team)
{
	return new_token_in(h, team, "Sjenica", NULL);
}

/* Enrol d at h over HTTP and learn HQ's keys from the answer. */
static void device_enroll(struct hq *h, const struct device *d)
{
	char *tok = new_token_in(h, d->team, d->muni ? d->muni : "Sjenica", d->scope),
	     *body = enroll_body(d, tok, NULL);
	struct enroll_token t;
	uint8_t fp[TOKEN_FP_BYTES];
	size_t n;
	cJSON *j;

	ASSERT_EQ(http_post(h, "/v1/enroll", body, strlen(body), "application/json", &j), 200);
	ASSERT_STR_EQ(json_str(j, "device"), d->id->id);
	ASSERT_STR_EQ(json_str(j, "team"), d->team);
	decode_b64(json_str(j, "hq_sign_pk"), h->sign_pk, sizeof(h->sign_pk), &n);
	ASSERT_EQ(n, 32);
	decode_b64(json_str(j, "hq_box_pk"), h->box_pk, sizeof(h->box_pk), &n);
	ASSERT_EQ(n, 32);
	/* The token's fingerprint pins exactly these keys. */
	ASSERT_OK(token_parse(tok, &t));
	token_hq_fingerprint(h->sign_pk, h->box_pk, fp);
	ASSERT_MEM_EQ(fp, t.hq_fp, sizeof(fp));
	h->have_keys = 1;
	cJSON_Delete(j);
	cJSON_free(body);
	free(tok);
}

struct set {
	uint8_t *buf;
	size_t len;
	int dev; /* index of the device that made it */
	uint64_t seq;
};

/* Build d's next change set from n changes (values consumed). */
static struct set build_set(struct device *d, const uint8_t *hq_box_pk, struct change *ch, size_t n)
{
	struct changeset_header hdr = { .version = d->version, .seq = d->seq + 1 };
	struct fs_error err = { 0 };
	struct set s = { 0 };

	ASSERT_OK(sodium_hex2bin(hdr.device, sizeof(hdr.device), d->id->id, IDENTITY_ID_HEXLEN,
				 NULL, NULL, NULL));
	memcpy(hdr.prev, d->prev, sizeof(hdr.prev));
	if (changeset_encode(&hdr, ch, n, hq_box_pk, d->id->sign_sk, &s.buf, &s.len, &err) < 0)
		TEST_FAIL("encode: %s", err.msg);
	/* The tests' changes come in HLC order, so version 5 is not written
	 * as 4: the version asked for is the version tested. */
	if (d->version)
		ASSERT_EQ(s.buf[4], d->version);
	for (size_t i = 0; i < n; i++)
		cJSON_Delete(ch[i].value);
	changeset_hash(s.buf, s.len, d->prev);
	d->seq = hdr.seq;
	s.seq = hdr.seq;
	return s;
}

/* A name the test wrote must fit: a cut one would test something else. */
static void copy_name(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size)
		TEST_FAIL("test name \"%s\" longer than %zu bytes", src, size - 1);
	memcpy(dst, src, len + 1);
}

static struct change mk(const char *rec, const char *coll, const char *field, cJSON *v, hlc_t t)
{
	struct change c = { .value = v, .hlc = t };

	copy_name(c.record_id, sizeof(c.record_id), rec);
	copy_name(c.collection, sizeof(c.collection), coll);
	copy_name(c.field, sizeof(c.field), field);
	return c;
}

/* Next HLC of d at wall time ms. */
static hlc_t tick(struct device *d, uint64_t ms)
{
	d->clock = hlc_next(d->clock, ms);
	return d->clock;
}

/* A whole beneficiary as n = 5 changes into ch. */
static size_t person(struct change *ch, const char *rec, const char *name, int size, hlc_t t)
{
	ch[0] = mk(rec, "beneficiaries", "full_name", cJSON_CreateString(name), t);
	ch[1] = mk(rec, "beneficiaries", "municipality", cJSON_CreateString("Sjenica"), t);
	ch[2] = mk(rec, "beneficiaries", "status", cJSON_CreateString("idp"), t);
	ch[3] = mk(rec, "beneficiaries", "household_size", cJSON_CreateNumber(size), t);
	ch[4] = mk(rec, "beneficiaries", "consent", cJSON_CreateTrue(), t);
	return 5;
}

static char *export_of(const struct hq *h, const char *coll, const char *fmt)
{
	char *out = NULL;

	ASSERT_EQ(HQ_RUN(h, &out, "export", coll, "--format", fmt), 0);
	return out;
}

/* Everything an outsider can see of HQ's merged state; with devices,
 * also each device's sequence and last contact (which depend on time). */
static char *snapshot_of(const struct hq *h, int devices)
{
	char *parts[6], *all;
	size_t n = 1;

	parts[0] = export_of(h, "beneficiaries", "jsonl");
	parts[1] = export_of(h, "visits", "jsonl");
	parts[2] = export_of(h, "beneficiaries", "csv");
	parts[3] = export_of(h, "visits", "csv");
	if (devices)
		ASSERT_EQ(HQ_RUN(h, &parts[4], "devices", "--json"), 0);
	else
		ASSERT_TRUE((parts[4] = strdup("")));
	/* The conflicts found, too, must not depend on the arrival order;
	 * their numbers do (they are numbered as HQ finds them). */
	ASSERT_EQ(HQ_RUN(h, &parts[5], "conflicts", "--json"), 0);
	{
		cJSON *arr = cJSON_Parse(parts[5]), *c;

		ASSERT_TRUE(cJSON_IsArray(arr));
		cJSON_ArrayForEach(c, arr) cJSON_DeleteItemFromObjectCaseSensitive(c, "id");
		free(parts[5]);
		ASSERT_TRUE((parts[5] = cJSON_PrintUnformatted(arr)));
		cJSON_Delete(arr);
	}
	for (int i = 0; i < 6; i++)
		n += strlen(parts[i]) + 1;
	ASSERT_TRUE((all = calloc(1, n)));
	for (int i = 0; i < 6; i++) {
		strcat(all, parts[i]);
		strcat(all, "\x1e");
		free(parts[i]);
	}
	return all;
}

static char *snapshot(const struct hq *h)
{
	return snapshot_of(h, 1);
}

static void receipt_check(const struct hq *h, const cJSON *j, const struct set *s,
			  const struct device *d, uint32_t merged, uint32_t quarantined)
{
	uint8_t rb[RECEIPT_MAX_BYTES], hash[32], dev[16];
	struct receipt r;
	size_t n;

	decode_b64(json_str(j, "receipt"), rb, sizeof(rb), &n);
	ASSERT_OK(receipt_verify(rb, n, h->sign_pk, &r));
	ASSERT_OK(sodium_hex2bin(dev, 16, d->id->id, 32, NULL, NULL, NULL));
	changeset_hash(s->buf, s->len, hash);
	ASSERT_MEM_EQ(r.device, dev, 16);
	ASSERT_EQ(r.seq, s->seq);
	ASSERT_MEM_EQ(r.hash, hash, 32);
	ASSERT_EQ(r.merged, merged);
	ASSERT_EQ(r.quarantined, quarantined);
	receipt_clear(&r);
}

static void set_free(struct set *s)
{
	free(s->buf);
	s->buf = NULL;
}

/* ---- accept, replay, gap ---------------------------------------------- */

TEST(hq_accept_replay_gap_and_chain)
{
	struct hq h;
	struct device d;
	struct change ch[8];
	struct set s1, s2, s3, other2;
	uint64_t base = hlc_wall_ms() - 60000;
	cJSON *j, *j2;
	char rec[UUID_TEXT_LEN + 1], *before, *after;
	size_t n;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&d, "Tim Sjenica");
	device_enroll(&h, &d);
	uuid_v7_new(base, rec);

	n = person(ch, rec, "Ружичић Ђорђе", 4, tick(&d, base));
	s1 = build_set(&d, h.box_pk, ch, n);
	ch[0] = mk(rec, "beneficiaries", "household_size", cJSON_CreateNumber(5),
		   tick(&d, base + 10));
	s2 = build_set(&d, h.box_pk, ch, 1);
	ch[0] = mk(rec, "beneficiaries", "phone", cJSON_CreateString("+381 20 123"),
		   tick(&d, base + 20));
	s3 = build_set(&d, h.box_pk, ch, 1);

	/* Accepted, with a receipt signed by the key enrolment pinned. */
	j = push(&h, s1.buf, s1.len, 200);
	receipt_check(&h, j, &s1, &d, 5, 0);
	ASSERT_EQ(cJSON_GetObjectItem(j, "seq")->valueint, 1);
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "quarantined")), 0);
	before = snapshot(&h);
	ASSERT_STR_CONTAINS(before, "Ружичић Ђорђе");

	/* A replay gets the very same receipt and changes nothing. */
	j2 = push(&h, s1.buf, s1.len, 200);
	ASSERT_STR_EQ(json_str(j2, "receipt"), json_str(j, "receipt"));
	after = snapshot(&h);
	ASSERT_STR_EQ(after, before);
	cJSON_Delete(j);
	cJSON_Delete(j2);
	free(after);

	/* Sequence 3 before 2: a gap, with the sequence HQ expects. */
	j = push(&h, s3.buf, s3.len, 409);
	ASSERT_STR_EQ(json_str(j, "error"), "sequence_gap");
	ASSERT_EQ(cJSON_GetObjectItem(j, "expected_seq")->valueint, 2);
	cJSON_Delete(j);
	after = snapshot(&h);
	ASSERT_STR_EQ(after, before);
	free(after);

	/* Another set under sequence 2 that does not chain from set 1. */
	{
		struct device fork_d = d;

		fork_d.seq = 1;
		memset(fork_d.prev, 0x5a, sizeof(fork_d.prev));
		ch[0] = mk(rec, "beneficiaries", "household_size", cJSON_CreateNumber(7),
			   base + 30);
		other2 = build_set(&fork_d, h.box_pk, ch, 1);
		j = push(&h, other2.buf, other2.len, 409);
		ASSERT_STR_EQ(json_str(j, "error"), "chain_mismatch");
		cJSON_Delete(j);
	}

	/* In order, 2 and 3 go through; a different set as 2 is then refused. */
	j = push(&h, s2.buf, s2.len, 200);
	receipt_check(&h, j, &s2, &d, 1, 0);
	cJSON_Delete(j);
	j = push(&h, other2.buf, other2.len, 409);
	ASSERT_STR_EQ(json_str(j, "error"), "conflicting_duplicate");
	cJSON_Delete(j);
	j = push(&h, s3.buf, s3.len, 200);
	cJSON_Delete(j);
	after = export_of(&h, "beneficiaries", "jsonl");
	ASSERT_STR_CONTAINS(after, "\"household_size\":5");
	ASSERT_STR_CONTAINS(after, "\"team\":\"Tim Sjenica\"");
	free(after);
	free(before);

	hq_stop(&h);
	set_free(&s1);
	set_free(&s2);
	set_free(&s3);
	set_free(&other2);
	identity_free(d.id);
	curl_global_cleanup();
}

/* ---- a flipped byte anywhere -------------------------------------------- */

TEST(hq_flipped_bytes_change_nothing)
{
	struct hq h;
	struct device d;
	struct change ch[8];
	struct set s1, s2;
	uint64_t base = hlc_wall_ms() - 60000;
	char rec[UUID_TEXT_LEN + 1], *before, *after;
	size_t n, tried = 0;
	cJSON *j;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&d, "Tim Tutin");
	device_enroll(&h, &d);
	uuid_v7_new(base, rec);
	n = person(ch, rec, "Ružičić Marija", 3, tick(&d, base));
	s1 = build_set(&d, h.box_pk, ch, n);
	ch[0] = mk(rec, "beneficiaries", "full_name", cJSON_CreateString("Ружичић Марија"),
		   tick(&d, base + 5));
	s2 = build_set(&d, h.box_pk, ch, 1);
	cJSON_Delete(push(&h, s1.buf, s1.len, 200));
	before = snapshot(&h);

	/* Every header byte, then every 7th byte and the last 80. */
	for (size_t i = 0; i < s2.len; i++) {
		long status;

		if (i >= CHANGESET_HEADER_BYTES && i % 7 && i + 80 < s2.len)
			continue;
		s2.buf[i] ^= 0x01;
		status = http_post(&h, "/v1/changesets", s2.buf, s2.len,
				   "application/vnd.fieldsync.changeset", &j);
		s2.buf[i] ^= 0x01;
		if (status != 400 && status != 401)
			TEST_FAIL("byte %zu flipped: answered %ld (%s)", i, status,
				  json_str(j, "error"));
		cJSON_Delete(j);
		tried++;
	}
	ASSERT_GT(tried, 100);
	/* Truncated and extended copies too. */
	j = push(&h, s2.buf, s2.len - 1, 400);
	cJSON_Delete(j);
	after = snapshot(&h);
	ASSERT_STR_EQ(after, before);
	free(after);

	/* Nothing moved: the intact set is still the one HQ expects next. */
	j = push(&h, s2.buf, s2.len, 200);
	receipt_check(&h, j, &s2, &d, 1, 0);
	cJSON_Delete(j);
	after = export_of(&h, "beneficiaries", "jsonl");
	ASSERT_STR_CONTAINS(after, "Ружичић Марија");
	free(after);
	free(before);
	hq_stop(&h);
	set_free(&s1);
	set_free(&s2);
	identity_free(d.id);
	curl_global_cleanup();
}

/* ---- unknown, forged and revoked devices ----------------------------------- */

TEST(hq_unknown_forged_and_revoked_devices_refused)
{
	struct hq h;
	struct device d, stranger;
	struct change ch[8];
	struct set s, forged, vec;
	uint64_t base = hlc_wall_ms() - 60000;
	char rec[UUID_TEXT_LEN + 1], *before, *after, *out = NULL, *hex;
	size_t n;
	cJSON *j;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&d, "Tim Vranje");
	device_new(&stranger, "nobody");
	device_enroll(&h, &d);
	uuid_v7_new(base, rec);
	before = snapshot(&h);

	/* Not enrolled: 401 unknown_device. */
	n = person(ch, rec, "Petrović Ana", 2, tick(&stranger, base));
	s = build_set(&stranger, h.box_pk, ch, n);
	j = push(&h, s.buf, s.len, 401);
	ASSERT_STR_EQ(json_str(j, "error"), "unknown_device");
	cJSON_Delete(j);

	/* The pinned vector, from a device this HQ never saw. */
	{
		char path[512];
		size_t hl, bl;

		snprintf(path, sizeof(path), "%s/tests/vectors/changeset-v1.hex", FS_SOURCE_DIR);
		hex = read_file(path, &hl);
		vec.buf = malloc(hl / 2 + 1);
		ASSERT_OK(sodium_hex2bin(vec.buf, hl / 2 + 1, hex, hl, "\n", &bl, NULL));
		vec.len = bl;
		free(hex);
		j = push(&h, vec.buf, vec.len, 401);
		ASSERT_STR_EQ(json_str(j, "error"), "unknown_device");
		cJSON_Delete(j);
	}

	/* Claiming the enrolled device's id with another key: bad signature. */
	{
		struct device liar = stranger;
		struct identity fake = *stranger.id;

		memcpy(fake.id, d.id->id, sizeof(fake.id));
		liar.id = &fake;
		liar.seq = 0;
		memset(liar.prev, 0, sizeof(liar.prev));
		n = person(ch, rec, "Petrović Ana", 2, tick(&liar, base + 1));
		forged = build_set(&liar, h.box_pk, ch, n);
		j = push(&h, forged.buf, forged.len, 401);
		ASSERT_STR_EQ(json_str(j, "error"), "bad_signature");
		cJSON_Delete(j);
	}
	after = snapshot(&h);
	ASSERT_STR_EQ(after, before);
	free(after);

	/* Revoked: 403 and the word "revoked". */
	ASSERT_EQ(HQ_RUN(&h, NULL, "revoke", d.id->id, "--reason", "laptop lost"), 0);
	ASSERT_EQ(HQ_RUN(&h, NULL, "revoke", d.id->id), 2);
	ASSERT_EQ(HQ_RUN(&h, &out, "devices", "--json"), 0);
	ASSERT_STR_CONTAINS(out, "\"state\":\"revoked\"");
	free(out);
	n = person(ch, rec, "Petrović Ana", 2, tick(&d, base + 2));
	set_free(&s);
	s = build_set(&d, h.box_pk, ch, n);
	j = push(&h, s.buf, s.len, 403);
	ASSERT_STR_EQ(json_str(j, "error"), "revoked");
	ASSERT_STR_CONTAINS(json_str(j, "message"), "revoked");
	cJSON_Delete(j);
	after = export_of(&h, "beneficiaries", "jsonl");
	ASSERT_STR_EQ(after, "");
	free(after);
	free(before);
	hq_stop(&h);
	set_free(&s);
	set_free(&forged);
	set_free(&vec);
	identity_free(d.id);
	identity_free(stranger.id);
	curl_global_cleanup();
}

/* ---- size limits ---------------------------------------------------------- */

/* Send raw bytes, read the answer until the server closes or the status
 * line and headers arrive; returns the status. */
static int raw_request(const struct hq *h, const char *head, char *resp, size_t cap)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)h->port) };
	struct timeval tv = { 20, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = 0;
	size_t len = 0;

	ASSERT_GE(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	ASSERT_OK(connect(fd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
	/* The body is never sent: an answer proves HQ did not wait for it. */
	while (len + 1 < cap) {
		ssize_t got = recv(fd, resp + len, cap - len - 1, 0);

		if (got <= 0)
			break;
		len += (size_t)got;
		resp[len] = '\0';
		if (strstr(resp, "\r\n\r\n") && strchr(strstr(resp, "\r\n\r\n"), '}'))
			break;
	}
	resp[len] = '\0';
	close(fd);
	ASSERT_EQ(sscanf(resp, "HTTP/1.1 %d", &status), 1);
	return status;
}

TEST(hq_oversized_bodies_413_unread)
{
	struct hq h;
	char resp[4096], head[512];
	size_t big = CHANGESET_MAX_BYTES + 1;
	uint8_t *body = calloc(1, big);
	cJSON *j;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	ASSERT_TRUE(body);
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	snprintf(head, sizeof(head),
		 "POST /v1/changesets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
		 "application/vnd.fieldsync.changeset\r\nContent-Length: %d\r\n\r\n",
		 2 * CHANGESET_MAX_BYTES);
	ASSERT_EQ(raw_request(&h, head, resp, sizeof(resp)), 413);
	ASSERT_STR_CONTAINS(resp, "\"error\":\"too_large\"");
	ASSERT_STR_CONTAINS(resp, "\"limit\":1048576");
	snprintf(head, sizeof(head),
		 "POST /v1/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
		 "application/json\r\nContent-Length: 16385\r\n\r\n");
	ASSERT_EQ(raw_request(&h, head, resp, sizeof(resp)), 413);

	/* A real body one byte over, through libcurl, as a careful client
	 * sends it: with "Expect: 100-continue", so HQ's early 413 arrives
	 * instead of the go-ahead.  (Sent at once, the body races HQ closing
	 * the connection it will not read, and the client may see only a
	 * reset: the raw requests above show the refusal without the race.) */
	ASSERT_EQ(http_post_expect(&h, "/v1/changesets", body, big,
				   "application/vnd.fieldsync.changeset", "Expect: 100-continue",
				   &j),
		  413);
	ASSERT_STR_EQ(json_str(j, "error"), "too_large");
	cJSON_Delete(j);
	/* Exactly at the limit is read, and refused for its shape. */
	ASSERT_EQ(http_post(&h, "/v1/changesets", body, big - 1,
			    "application/vnd.fieldsync.changeset", &j),
		  400);
	cJSON_Delete(j);
	/* Ambiguous framing (request smuggling behind a proxy): two
	 * lengths, or a length and chunking, are refused and the
	 * connection closed, before any of the body is read. */
	ASSERT_EQ(raw_request(&h,
			      "POST /v1/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
			      "Content-Length: 7\r\n\r\n",
			      resp, sizeof(resp)),
		  400);
	ASSERT_STR_CONTAINS(resp, "ambiguous body length");
	ASSERT_STR_CONTAINS(resp, "Connection: close");
	ASSERT_EQ(raw_request(
			  &h,
			  "POST /v1/changesets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n",
			  resp, sizeof(resp)),
		  400);
	ASSERT_STR_CONTAINS(resp, "ambiguous body length");
	/* Unknown paths and methods answer JSON too. */
	ASSERT_EQ(http_post(&h, "/v1/nothing", "x", 1, "text/plain", &j), 404);
	cJSON_Delete(j);
	ASSERT_EQ(http_post(&h, "/v1/health", "x", 1, "text/plain", &j), 405);
	cJSON_Delete(j);
	hq_stop(&h);
	free(body);
	curl_global_cleanup();
}

/* ---- enrolment ------------------------------------------------------------ */

TEST(hq_enroll_rejects_bad_requests)
{
	struct hq h;
	struct device d, e;
	char *tok, *body;
	cJSON *j;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&d, "Tim Preševo");
	device_new(&e, "Tim Preševo");

	ASSERT_EQ(http_post(&h, "/v1/enroll", "{\"token\": ", 10, "application/json", &j), 400);
	ASSERT_STR_EQ(json_str(j, "error"), "malformed");
	cJSON_Delete(j);
	ASSERT_EQ(http_post(&h, "/v1/enroll", "[1,2]", 5, "application/json", &j), 400);
	cJSON_Delete(j);
	ASSERT_EQ(http_post(&h, "/v1/enroll", "{\"token\":7}", 11, "application/json", &j), 400);
	cJSON_Delete(j);

	/* A proof signed by another key. */
	tok = new_token(&h, "Tim Preševo");
	body = enroll_body(&d, tok, e.id->sign_sk);
	ASSERT_EQ(http_post(&h, "/v1/enroll", body, strlen(body), "application/json", &j), 401);
	ASSERT_STR_EQ(json_str(j, "error"), "bad_proof");
	cJSON_Delete(j);
	cJSON_free(body);
	/* The token survived the refusal; used once, it is spent. */
	body = enroll_body(&d, tok, NULL);
	ASSERT_EQ(http_post(&h, "/v1/enroll", body, strlen(body), "application/json", &j), 200);
	cJSON_Delete(j);
	cJSON_free(body);
	body = enroll_body(&e, tok, NULL);
	ASSERT_EQ(http_post(&h, "/v1/enroll", body, strlen(body), "application/json", &j), 401);
	ASSERT_STR_EQ(json_str(j, "error"), "bad_token");
	cJSON_Delete(j);
	cJSON_free(body);
	/* The answer to d was lost on the way: d proving the same token again
	 * gets its answer again, and another key still does not. */
	body = enroll_body(&d, tok, NULL);
	ASSERT_EQ(http_post(&h, "/v1/enroll", body, strlen(body), "application/json", &j), 200);
	ASSERT_STR_EQ(json_str(j, "team"), "Tim Preševo");
	ASSERT_STR_EQ(json_str(j, "device"), d.id->id);
	cJSON_Delete(j);
	cJSON_free(body);
	/* The same device again, with a fresh token. */
	{
		char *tok2 = new_token(&h, "Tim Preševo");

		body = enroll_body(&d, tok2, NULL);
		ASSERT_EQ(http_post(&h, "/v1/enroll", body, strlen(body), "application/json", &j),
			  409);
		ASSERT_STR_EQ(json_str(j, "error"), "already_enrolled");
		cJSON_Delete(j);
		cJSON_free(body);
		free(tok2);
	}
	/* Once revoked, the spent token answers nobody. */
	{
		char *out = NULL;

		ASSERT_EQ(HQ_RUN(&h, &out, "revoke", d.id->id, "--reason", "test"), 0);
		free(out);
	}
	body = enroll_body(&d, tok, NULL);
	ASSERT_EQ(http_post(&h, "/v1/enroll", body, strlen(body), "application/json", &j), 401);
	ASSERT_STR_EQ(json_str(j, "error"), "bad_token");
	cJSON_Delete(j);
	cJSON_free(body);
	free(tok);
	/* An expired token. */
	{
		char *out = NULL;

		ASSERT_EQ(HQ_RUN(&h, &out, "enroll-token", "--team", "T", "--municipality", "M",
				 "--expires", "1s"),
			  0);
		tok = strdup(last_line(out));
		free(out);
		/* Wait until it has expired (the assertion is on the answer). */
		for (uint64_t until = hlc_wall_ms() + 1100; hlc_wall_ms() < until;) {
			struct timespec p = { 0, 50 * 1000 * 1000 };

			nanosleep(&p, NULL);
		}
		body = enroll_body(&e, tok, NULL);
		ASSERT_EQ(http_post(&h, "/v1/enroll", body, strlen(body), "application/json", &j),
			  401);
		ASSERT_STR_EQ(json_str(j, "error"), "bad_token");
		cJSON_Delete(j);
		cJSON_free(body);
		free(tok);
	}
	hq_stop(&h);
	identity_free(d.id);
	identity_free(e.id);
	curl_global_cleanup();
}

/* ---- quarantine ----------------------------------------------------------- */

TEST(hq_future_and_invalid_changes_quarantined)
{
	struct hq h;
	struct device d;
	struct change ch[8];
	struct set s;
	uint64_t base = hlc_wall_ms() - 60000;
	char rec[UUID_TEXT_LEN + 1], *out;
	const cJSON *q;
	size_t n;
	cJSON *j;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&d, "Tim Bujanovac");
	device_enroll(&h, &d);
	uuid_v7_new(base, rec);
	n = person(ch, rec, "=Jovanović, Milica", 3, tick(&d, base));
	/* index 5: an hour ahead of HQ's clock; 6: out of the form's range;
	 * 7: a collection HQ does not know. */
	ch[n++] = mk(rec, "beneficiaries", "household_size", cJSON_CreateNumber(9),
		     tick(&d, hlc_wall_ms() + 3600 * 1000));
	ch[n++] = mk(rec, "beneficiaries", "household_size", cJSON_CreateNumber(99),
		     tick(&d, hlc_wall_ms() + 3600 * 1000));
	ch[n++] = mk(rec, "households", "size", cJSON_CreateNumber(2),
		     tick(&d, hlc_wall_ms() + 3600 * 1000));
	s = build_set(&d, h.box_pk, ch, n);
	j = push(&h, s.buf, s.len, 200);
	receipt_check(&h, j, &s, &d, 5, 3);
	q = cJSON_GetObjectItem(j, "quarantined");
	ASSERT_EQ(cJSON_GetArraySize(q), 3);
	ASSERT_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(q, 0), "index")->valueint, 5);
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(q, 0), "reason"),
		      "timestamp too far in the future");
	ASSERT_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(q, 1), "index")->valueint, 6);
	ASSERT_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(q, 2), "index")->valueint, 7);
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(q, 2), "reason"), "unknown collection");
	/* The reasons never carry the value. */
	ASSERT_TRUE(!strstr(json_str(cJSON_GetArrayItem(q, 1), "reason"), "99"));
	cJSON_Delete(j);
	out = export_of(&h, "beneficiaries", "jsonl");
	ASSERT_STR_CONTAINS(out, "\"household_size\":3");
	ASSERT_STR_CONTAINS(out, "=Jovanović, Milica");
	free(out);
	/* CSV: quoted for the comma, and never a formula. */
	out = export_of(&h, "beneficiaries", "csv");
	ASSERT_STR_CONTAINS(out, ",\"'=Jovanović, Milica\",Sjenica,idp,3,,,,true,");
	ASSERT_STR_CONTAINS(out, "\r\n");
	free(out);
	/* A replay reports the same quarantine. */
	j = push(&h, s.buf, s.len, 200);
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "quarantined")), 3);
	cJSON_Delete(j);
	hq_stop(&h);
	set_free(&s);
	identity_free(d.id);
	curl_global_cleanup();
}

/* A team offline for days: its visits reach HQ long after they were
 * recorded, and an incremental export must still pick them up. */
TEST(hq_export_since_uses_arrival_time)
{
	struct hq h;
	struct device d;
	struct change ch[8];
	struct set s;
	uint64_t five_days_ago = hlc_wall_ms() - 5 * 86400 * 1000ULL;
	char rec[UUID_TEXT_LEN + 1], *out, since[32];
	time_t yesterday = time(NULL) - 86400;
	struct tm tm;
	size_t n;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&d, "Tim Tutin");
	device_enroll(&h, &d);
	uuid_v7_new(five_days_ago, rec);
	n = person(ch, rec, "Ђорђевић Милан", 4, tick(&d, five_days_ago));
	s = build_set(&d, h.box_pk, ch, n);
	cJSON_Delete(push(&h, s.buf, s.len, 200));
	ASSERT_TRUE(gmtime_r(&yesterday, &tm) != NULL);
	ASSERT_TRUE(strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
	ASSERT_EQ(
		HQ_RUN(&h, &out, "export", "beneficiaries", "--format", "jsonl", "--since", since),
		0);
	ASSERT_STR_CONTAINS(out, rec);
	free(out);
	/* And nothing merged before the cut-off comes back. */
	yesterday = time(NULL) + 3600;
	ASSERT_TRUE(gmtime_r(&yesterday, &tm) != NULL);
	ASSERT_TRUE(strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
	ASSERT_EQ(
		HQ_RUN(&h, &out, "export", "beneficiaries", "--format", "jsonl", "--since", since),
		0);
	ASSERT_TRUE(strstr(out, rec) == NULL);
	free(out);
	hq_stop(&h);
	set_free(&s);
	identity_free(d.id);
	curl_global_cleanup();
}

/* ---- convergence ---------------------------------------------------------- */

#define CONV_DEVICES 3
#define CONV_SETS 5
#define CONV_RECORDS 6
#define CONV_HQS 4

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static const char *const names[] = { "Ružičić Đorđe",		"Ружичић Ђорђе", "Šćepanović Žana",
				     "Шћепановић Жана",		"Čolić Ljubica", "Чолић Љубица",
				     "Nikolić \"Džoni\", Ivan", "=Stanković Ana" };

/* One random change by d at wall time ms. */
static struct change random_change(struct device *d, char recs[][UUID_TEXT_LEN + 1],
				   char visits[][UUID_TEXT_LEN + 1], uint64_t ms)
{
	const char *r = recs[rnd(CONV_RECORDS)], *v = visits[rnd(2)];
	/* Devices share a coarse clock, so equal HLCs (tie-break by id) happen. */
	hlc_t t = tick(d, ms);

	switch (rnd(8)) {
	case 0:
		return mk(r, "beneficiaries", "household_size", cJSON_CreateNumber(1 + rnd(9)), t);
	case 1:
	case 2:
		return mk(r, "beneficiaries", "full_name",
			  cJSON_CreateString(names[rnd(sizeof(names) / sizeof(names[0]))]), t);
	case 3:
		return mk(r, "beneficiaries", "phone",
			  rnd(3) ? cJSON_CreateString("+381 64 111") : cJSON_CreateNull(), t);
	case 4:
		return mk(r, "beneficiaries", "_deleted", cJSON_CreateTrue(), t);
	case 5:
		return mk(v, "visits", "notes", cJSON_CreateString(names[rnd(8)]), t);
	case 6:
		return mk(v, "visits", "visit_type",
			  cJSON_CreateString(rnd(2) ? "legal_assistance" : "needs_assessment"), t);
	default:
		return mk(r, "beneficiaries", "vulnerabilities",
			  cJSON_Parse(rnd(2) ? "[\"elderly\",\"no_documents\"]" : "[]"), t);
	}
}

/* Build d's next set from copies of ch[0..n) (ch keeps its values). */
static struct set build_set_copy(struct device *d, const uint8_t *hq_box_pk,
				 const struct change *ch, size_t n)
{
	struct change copy[CONV_RECORDS * 5 + 8];

	ASSERT_LE(n, sizeof(copy) / sizeof(copy[0]));
	for (size_t i = 0; i < n; i++) {
		copy[i] = ch[i];
		ASSERT_TRUE((copy[i].value = cJSON_Duplicate(ch[i].value, 1)));
	}
	return build_set(d, hq_box_pk, copy, n);
}

/* Deliver every set to h: each device's in order, devices interleaved
 * at random, with random duplicates; then return h's snapshot. */
static char *deliver_random(struct hq *h, struct set sets[CONV_DEVICES][CONV_SETS],
			    struct device *devs)
{
	size_t next[CONV_DEVICES] = { 0 };
	int left = CONV_DEVICES * CONV_SETS;
	char *snap;

	hq_start(h);
	for (int i = 0; i < CONV_DEVICES; i++)
		device_enroll(h, &devs[i]);
	while (left > 0) {
		int k = (int)rnd(CONV_DEVICES);
		struct set *s;

		if (next[k] == CONV_SETS)
			continue;
		s = &sets[k][next[k]++];
		cJSON_Delete(push(h, s->buf, s->len, 200));
		left--;
		if (rnd(3) == 0) {
			/* A duplicate of something this device already sent. */
			struct set *dup = &sets[k][rnd((uint32_t)next[k])];

			cJSON_Delete(push(h, dup->buf, dup->len, 200));
		}
	}
	snap = snapshot_of(h, 0);
	hq_stop(h);
	return snap;
}

TEST(hq_convergence_random_orders)
{
	static const char *const teams[CONV_DEVICES] = { "Tim Novi Sad", "Tim Obrenovac",
							 "Tim Sremska Mitrovica" };
	/* The same changes from each device as version 3 sets (devs) and as
	 * version 4 or 5 sets (grouped: the devices alternate, each with a
	 * chain of its own). */
	struct device devs[CONV_DEVICES], grouped[CONV_DEVICES];
	struct set sets[CONV_DEVICES][CONV_SETS], sets4[CONV_DEVICES][CONV_SETS];
	char recs[CONV_RECORDS][UUID_TEXT_LEN + 1], visits[2][UUID_TEXT_LEN + 1];
	struct hq first, h;
	uint64_t base = hlc_wall_ms() - 3600 * 1000;
	char *want;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	rng_state = (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ULL;
	fprintf(stderr, "convergence seed %llu\n", (unsigned long long)rng_state);
	hq_init(&first, "hq0", NULL, NULL);
	for (int i = 0; i < CONV_DEVICES; i++)
		device_new(&devs[i], teams[i]);
	/* Learn HQ's keys by enrolling there; every HQ below gets a copy of
	 * its hq.key. */
	hq_start(&first);
	device_enroll(&first, &devs[0]);
	hq_stop(&first);
	for (int i = 0; i < CONV_DEVICES; i++) {
		grouped[i] = devs[i];
		grouped[i].version = i % 2 ? CHANGESET_VERSION_COLUMNS : CHANGESET_VERSION_GROUPED;
	}
	for (int i = 0; i < CONV_RECORDS; i++)
		uuid_v7_new(base, recs[i]);
	for (int i = 0; i < 2; i++)
		uuid_v7_new(base, visits[i]);

	/* Every device first imports the shared caseload, then edits it. */
	for (int k = 0; k < CONV_DEVICES; k++) {
		struct change ch[CONV_RECORDS * 5 + 8];
		size_t n = 0;

		for (int i = 0; i < CONV_RECORDS; i++)
			n += person(ch + n, recs[i], names[i], 2, tick(&devs[k], base));
		for (int i = 0; i < 2; i++) {
			hlc_t t = tick(&devs[k], base);

			ch[n++] = mk(visits[i], "visits", "beneficiary_id",
				     cJSON_CreateString(recs[i]), t);
			ch[n++] = mk(visits[i], "visits", "visit_date",
				     cJSON_CreateString(i ? "2026-03-02" : "2026-03-01"), t);
			ch[n++] = mk(visits[i], "visits", "visit_type",
				     cJSON_CreateString("prefab_installation"), t);
		}
		sets4[k][0] = build_set_copy(&grouped[k], first.box_pk, ch, n);
		sets[k][0] = build_set(&devs[k], first.box_pk, ch, n);
		sets[k][0].dev = sets4[k][0].dev = k;
	}
	for (int s = 1; s < CONV_SETS; s++)
		for (int k = 0; k < CONV_DEVICES; k++) {
			struct change ch[8];
			size_t n = 1 + rnd(7);

			for (size_t i = 0; i < n; i++)
				ch[i] = random_change(&devs[k], recs, visits,
						      base + 1000 + (uint64_t)(s * 100 + rnd(40)));
			sets4[k][s] = build_set_copy(&grouped[k], first.box_pk, ch, n);
			sets[k][s] = build_set(&devs[k], first.box_pk, ch, n);
			sets[k][s].dev = sets4[k][s].dev = k;
		}

	/* Fresh HQs with the same keys, each in its own random order; every
	 * other one is sent the version 4 and 5 sets. */
	want = NULL;
	for (int i = 0; i < CONV_HQS; i++) {
		char name[16], *got;

		snprintf(name, sizeof(name), "hq%d", i + 1);
		hq_init(&h, name, NULL, &first);
		got = deliver_random(&h, i % 2 ? sets4 : sets, devs);
		ASSERT_STR_CONTAINS(got, "\"id\":");
		if (!want)
			want = got;
		else if (strcmp(got, want))
			TEST_FAIL("HQ %d differs from HQ 1 after another arrival order%s", i + 1,
				  i % 2 ? ", from version 4 and 5 sets" : "");
		if (got != want)
			free(got);
	}
	free(want);
	for (int k = 0; k < CONV_DEVICES; k++) {
		for (int s = 0; s < CONV_SETS; s++) {
			set_free(&sets[k][s]);
			set_free(&sets4[k][s]);
		}
		identity_free(devs[k].id);
	}
	curl_global_cleanup();
}

/* ---- the caseload conflict ------------------------------------------------ */

TEST(hq_caseload_edit_conflict_either_order)
{
	struct device a, b;
	struct set a1, a2, b1, b2;
	struct change ch[8];
	struct hq first, h[2];
	char rec[UUID_TEXT_LEN + 1], *exports[2];
	uint64_t base = hlc_wall_ms() - 600 * 1000;
	size_t n;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	device_new(&a, "Tim Novi Sad");
	device_new(&b, "Tim Vranje");
	hq_init(&first, "keys", NULL, NULL);
	hq_start(&first);
	device_enroll(&first, &a);
	hq_stop(&first);
	/* The same caseload row, fixed id, imported by both teams. */
	snprintf(rec, sizeof(rec), "0193a1b2-c3d4-7abc-8def-0123456789ab");
	n = person(ch, rec, "Ружичић Ђорђе", 4, tick(&a, base));
	a1 = build_set(&a, first.box_pk, ch, n);
	n = person(ch, rec, "Ружичић Ђорђе", 4, tick(&b, base + 1000));
	b1 = build_set(&b, first.box_pk, ch, n);
	/* Both edit household_size; b's edit is the later one. */
	ch[0] = mk(rec, "beneficiaries", "household_size", cJSON_CreateNumber(5),
		   tick(&a, base + 2000));
	a2 = build_set(&a, first.box_pk, ch, 1);
	ch[0] = mk(rec, "beneficiaries", "household_size", cJSON_CreateNumber(6),
		   tick(&b, base + 3000));
	b2 = build_set(&b, first.box_pk, ch, 1);

	for (int order = 0; order < 2; order++) {
		struct set *seq[2][4] = { { &a1, &b1, &a2, &b2 }, { &b1, &b2, &a1, &a2 } };
		char name[16], *out = NULL;
		cJSON *c, *one;

		snprintf(name, sizeof(name), "order%d", order);
		hq_init(&h[order], name, NULL, &first);
		hq_start(&h[order]);
		device_enroll(&h[order], &a);
		device_enroll(&h[order], &b);
		for (int i = 0; i < 4; i++)
			cJSON_Delete(push(&h[order], seq[order][i]->buf, seq[order][i]->len, 200));
		exports[order] = export_of(&h[order], "beneficiaries", "jsonl");
		ASSERT_STR_CONTAINS(exports[order], "\"household_size\":6");
		ASSERT_EQ(HQ_RUN(&h[order], &out, "conflicts", "--json"), 0);
		c = cJSON_Parse(out);
		ASSERT_TRUE(cJSON_IsArray(c));
		ASSERT_EQ(cJSON_GetArraySize(c), 1);
		one = cJSON_GetArrayItem(c, 0);
		ASSERT_STR_EQ(json_str(one, "record"), rec);
		ASSERT_STR_EQ(json_str(one, "field"), "household_size");
		ASSERT_STR_EQ(json_str(one, "winner"), b.id->id);
		ASSERT_STR_EQ(json_str(one, "device_a"), a.id->id);
		ASSERT_EQ(cJSON_GetObjectItem(one, "value_a")->valueint, 5);
		ASSERT_EQ(cJSON_GetObjectItem(one, "value_b")->valueint, 6);
		cJSON_Delete(c);
		free(out);
		/* The conflict is audited, by record and field, never by value. */
		ASSERT_EQ(HQ_RUN(&h[order], &out, "audit", "list", "--event", "conflict"), 0);
		ASSERT_STR_CONTAINS(out, rec);
		ASSERT_STR_CONTAINS(out, "household_size");
		ASSERT_TRUE(strstr(out, "\"winner\":\"") != NULL);
		free(out);
		hq_stop(&h[order]);
	}
	ASSERT_STR_EQ(exports[0], exports[1]);
	free(exports[0]);
	free(exports[1]);
	set_free(&a1);
	set_free(&a2);
	set_free(&b1);
	set_free(&b2);
	identity_free(a.id);
	identity_free(b.id);
	curl_global_cleanup();
}

/* ---- bounded work per request ------------------------------------------- */

/* A set whose sealed payload is text, as a hostile enrolled device could
 * make one: header written by hand (docs/PROTOCOL.md), zstd, sealed to
 * HQ, signed by d.  count is what the header declares; versions 2 and 3
 * seal the binding (header bytes 8..63) in front, version 1 does not. */
static struct set build_raw_set(struct device *d, const uint8_t *hq_box_pk, const char *text,
				size_t tlen, uint32_t count, uint8_t version)
{
	struct changeset_header h = {
		.version = version, .seq = d->seq + 1, .hlc_min = 1, .hlc_max = 2, .count = count
	};
	struct set s = { 0 };

	ASSERT_OK(sodium_hex2bin(h.device, 16, d->id->id, IDENTITY_ID_HEXLEN, NULL, NULL, NULL));
	memcpy(h.prev, d->prev, 32);
	fixture_raw_changeset(&h, text, tlen, hq_box_pk, d->id->sign_sk, &s.buf, &s.len);
	s.seq = d->seq + 1;
	return s;
}

/* The peak resident size of process pid, from /proc (VmHWM), in KiB. */
static long peak_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ASSERT_TRUE(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	ASSERT_GT(kib, 0);
	return kib;
}

/* A few hundred bytes of zstd that expand to 8 MiB of "[[],[],...]":
 * millions of JSON values.  HQ must refuse it before it builds the tree,
 * and its peak memory must not follow the payload's shape. */
TEST(hq_payload_bomb_bounded_memory)
{
	size_t cap = CHANGESET_MAX_PAYLOAD - 16, tlen = 0;
	char *text = malloc(cap + 1), rec[UUID_TEXT_LEN + 1];
	uint64_t base = hlc_wall_ms() - 60000;
	struct change ch[8];
	struct set bomb, good;
	struct device d;
	long before, after;
	struct hq h;
	cJSON *j = NULL;

	ASSERT_TRUE(text);
	text[tlen++] = '[';
	while (tlen + 4 < cap) {
		memcpy(text + tlen, "[],", 3);
		tlen += 3;
	}
	memcpy(text + tlen, "[]]", 3);
	tlen += 3;
	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&d, "Tim Tutin");
	device_enroll(&h, &d);
	bomb = build_raw_set(&d, h.box_pk, text, tlen, 1, CHANGESET_VERSION);
	ASSERT_LT(bomb.len, 4096); /* the point: a tiny request */
	before = peak_rss_kib(h.pid);
	for (int i = 0; i < 4; i++) {
		cJSON_Delete(j);
		j = push(&h, bomb.buf, bomb.len, 400);
	}
	after = peak_rss_kib(h.pid);
	/* The 8 MiB payload and its bounded parse, not +555 MB of tree. */
	if (after - before > 64 * 1024)
		TEST_FAIL("HQ's peak RSS grew by %ld KiB for 4 payload bombs", after - before);
	ASSERT_STR_EQ(json_str(j, "error"), "malformed");
	ASSERT_STR_CONTAINS(json_str(j, "message"), "JSON values");
	cJSON_Delete(j);
	/* Nothing changed: the device's real first set is still seq 1. */
	uuid_v7_new(base, rec);
	good = build_set(&d, h.box_pk, ch, person(ch, rec, "Ružičić Ana", 3, tick(&d, base)));
	j = push(&h, good.buf, good.len, 200);
	ASSERT_EQ(cJSON_GetObjectItem(j, "seq")->valueint, 1);
	cJSON_Delete(j);
	set_free(&bomb);
	set_free(&good);
	free(text);
	identity_free(d.id);
	hq_stop(&h);
	curl_global_cleanup();
}

/* Turn HQ's database back into schema version 1, as an HQ of before
 * version 2 change sets left it; HQ upgrades it when it next opens it. */
/* Make h's database what schema version 3 made: no two-way sync. */
static void hq_db_exec(const struct hq *h, const char *sql)
{
	char path[700];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/hq.db", h->data);
	ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
	ASSERT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Schema version 8 back to 7: before attached files; 7 back to 6:
 * before resolutions; 6 back to 5: before the console's accounts; and 5
 * back to 4: before published forms. */
#define TO_V6_SQL                                                                                  \
	"DROP TABLE files; DROP TABLE uploads; DROP TABLE resolutions; PRAGMA user_version = 6;"
#define TO_V5_SQL                                                                                  \
	TO_V6_SQL "DROP TABLE users; DROP TABLE login_failures; ALTER TABLE devices DROP COLUMN "  \
		  "health; "                                                                       \
		  "ALTER TABLE devices DROP COLUMN health_at; PRAGMA user_version = 5;"
#define TO_V4_SQL                                                                                  \
	TO_V5_SQL "DROP TABLE form_versions; ALTER TABLE down_state DROP COLUMN form_cursor; "     \
		  "PRAGMA user_version = 4;"

#define TO_V3_SQL                                                                                  \
	TO_V5_SQL                                                                                  \
	"DROP TABLE form_versions; DROP TABLE counters; DROP TABLE scope_moves; DROP "             \
	"TABLE "                                                                                   \
	"down_state; "                                                                             \
	"DROP TABLE scope_fields; "                                                                \
	"DROP TABLE down_cursors; DROP INDEX fields_by_scope; DROP INDEX fields_by_rev; "          \
	"DROP INDEX records_by_parent; DROP INDEX records_by_scope; "                              \
	"ALTER TABLE fields DROP COLUMN rev; "                                                     \
	"DROP INDEX conflicts_by_rev; DROP INDEX conflicts_by_record; "                            \
	"ALTER TABLE conflicts DROP COLUMN rev; ALTER TABLE fields DROP COLUMN "                   \
	"scope_key; "                                                                              \
	"ALTER TABLE records DROP COLUMN scope_key; ALTER TABLE records DROP COLUMN "              \
	"scope_parent; PRAGMA user_version = 3;"

static void hq_db_to_v1(const struct hq *h)
{
	hq_db_exec(h, TO_V3_SQL
		   "DROP TABLE audit_nodes; DROP TABLE device_scopes; ALTER TABLE "
		   "tokens DROP COLUMN scope; ALTER TABLE devices DROP COLUMN unbound_ok; PRAGMA "
		   "user_version = 1;");
}

/* An enrolled device that captures another's set and re-signs it under
 * its own header is refused: the sealed payload names the device,
 * sequence and previous hash it was made for (version 2).  Version 1
 * sets, which name nothing, are read only from a device enrolled before
 * HQ's upgrade that has sent no version 2 set since (issue 19, item 5). */
TEST(hq_resigned_set_refused_and_no_downgrade)
{
	uint64_t base = hlc_wall_ms() - 60000;
	char rec[UUID_TEXT_LEN + 1], text[256];
	struct device a, b, c, d;
	struct change ch[8];
	struct set s, stolen, v1;
	struct hq h;
	cJSON *j;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&a, "Tim Sjenica");
	device_new(&b, "Tim Tutin");
	device_new(&c, "Tim Vranje");
	device_new(&d, "Tim Preševo");
	device_enroll(&h, &a);
	device_enroll(&h, &b);
	device_enroll(&h, &c);
	/* a, b and c were enrolled by an HQ of schema version 1; d after. */
	hq_db_to_v1(&h);
	device_enroll(&h, &d);
	uuid_v7_new(base, rec);
	s = build_set(&a, h.box_pk, ch, person(ch, rec, "Ружичић Ђорђе", 4, tick(&a, base)));

	/* b presents a's set as its own first set. */
	stolen.len = s.len;
	stolen.buf = malloc(s.len);
	ASSERT_TRUE(stolen.buf);
	memcpy(stolen.buf, s.buf, s.len);
	ASSERT_OK(
		sodium_hex2bin(stolen.buf + 8, 16, b.id->id, IDENTITY_ID_HEXLEN, NULL, NULL, NULL));
	crypto_sign_detached(stolen.buf + s.len - 64, NULL, stolen.buf, s.len - 64, b.id->sign_sk);
	j = push(&h, stolen.buf, stolen.len, 400);
	ASSERT_STR_CONTAINS(json_str(j, "message"), "bound to another device");
	cJSON_Delete(j);
	/* Nothing of it was merged under b's name; a's own push goes through. */
	j = push(&h, s.buf, s.len, 200);
	cJSON_Delete(j);

	/* c still has a version 1 set from before: read.  Then version 2,
	 * after which version 1 from c is refused. */
	snprintf(text, sizeof(text), "[[\"%s\",\"visits\",\"notes\",\"-\",\"0000000000000001\"]]",
		 rec);
	v1 = build_raw_set(&c, h.box_pk, text, strlen(text), 1, 1);
	j = push(&h, v1.buf, v1.len, 200);
	cJSON_Delete(j);
	changeset_hash(v1.buf, v1.len, c.prev);
	c.seq = 1;
	set_free(&s);
	s = build_set(&c, h.box_pk, ch, person(ch, rec, "Petrović Ana", 2, tick(&c, base + 100)));
	j = push(&h, s.buf, s.len, 200);
	cJSON_Delete(j);
	set_free(&v1);
	v1 = build_raw_set(&c, h.box_pk, text, strlen(text), 1, 1);
	j = push(&h, v1.buf, v1.len, 400);
	ASSERT_STR_CONTAINS(json_str(j, "message"), "version 1 (unbound) is not accepted");
	cJSON_Delete(j);
	set_free(&v1);
	/* A device enrolled since the upgrade never may: its software writes
	 * version 2, so a version 1 set from it is a captured one. */
	v1 = build_raw_set(&d, h.box_pk, text, strlen(text), 1, 1);
	j = push(&h, v1.buf, v1.len, 400);
	ASSERT_STR_CONTAINS(json_str(j, "message"), "version 1 (unbound) is not accepted");
	cJSON_Delete(j);
	set_free(&v1);
	identity_free(d.id);
	set_free(&s);
	set_free(&stolen);
	identity_free(a.id);
	identity_free(b.id);
	identity_free(c.id);
	hq_stop(&h);
	curl_global_cleanup();
}

/* Open a connection and start a push whose first 24 bytes name device
 * d, then send nothing more: the connection holds whatever slot HQ
 * gives it.  Returns the socket. */
static int hold_push(const struct hq *h, const struct device *d)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)h->port) };
	char head[256];
	uint8_t prefix[24] = { 'F', 'S', 'C', 'S', CHANGESET_VERSION, 1, 0, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ASSERT_GE(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_OK(connect(fd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_OK(sodium_hex2bin(prefix + 8, 16, d->id->id, IDENTITY_ID_HEXLEN, NULL, NULL, NULL));
	snprintf(head, sizeof(head),
		 "POST /v1/changesets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		 "Content-Length: 100000\r\n\r\n");
	ASSERT_EQ(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
	ASSERT_EQ(send(fd, prefix, sizeof(prefix), MSG_NOSIGNAL), (ssize_t)sizeof(prefix));
	return fd;
}

/* Device ids are not secret.  Slow pushes that all name device a take
 * one reserved slot (a's), then count as strangers: the other devices'
 * reserved slots stay free, and b pushes (issue 19, item 1). */
TEST(hq_known_device_id_takes_one_reserved_slot)
{
	uint64_t base = hlc_wall_ms() - 60000, deadline;
	char rec[UUID_TEXT_LEN + 1];
	struct change ch[8];
	struct device a, b;
	/* All from one address: per_peer_connections (64 below) leaves
	 * room for the probe and b's push beside them. */
	int held[48], nheld = 0;
	struct set s;
	struct hq h;
	cJSON *j = NULL;
	long code = 0;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq",
		"[server]\nmax_inflight = 4\nreserved_for_devices = 2\nthreads = 4\n"
		"proof_rate = 1000000\nper_peer_connections = 64\n",
		NULL);
	hq_start(&h);
	device_new(&a, "Tim Sjenica");
	device_new(&b, "Tim Tutin");
	device_enroll(&h, &a);
	device_enroll(&h, &b);
	/* a's reserved slot, and the strangers' two (max_inflight 4 less
	 * b's reserved one). */
	for (; nheld < 3; nheld++)
		held[nheld] = hold_push(&h, &a);
	/* Wait until HQ has placed them: the strangers' share is full.  A
	 * hold that arrived while a probe had a stranger's slot was refused,
	 * and a refused push is not answered before its body is in; so after
	 * each probe that got a slot, hold one more. */
	deadline = now_ms() + test_timeout_ms(30000);
	for (;;) {
		struct timespec pause = { 0, 20 * 1000 * 1000 };

		cJSON_Delete(j);
		code = http_post(&h, "/v1/audit/consistency", "{\"from\":0}", 10,
				 "application/json", &j);
		if (code == 503)
			break;
		ASSERT_LT(now_ms(), deadline);
		ASSERT_LT(nheld, (int)(sizeof(held) / sizeof(held[0])));
		held[nheld++] = hold_push(&h, &a);
		nanosleep(&pause, NULL); /* a probe's pace, not an assertion */
	}
	cJSON_Delete(j);
	uuid_v7_new(base, rec);
	s = build_set(&b, h.box_pk, ch, person(ch, rec, "Ђорђевић Милица", 3, tick(&b, base)));
	j = push(&h, s.buf, s.len, 200);
	cJSON_Delete(j);
	for (int i = 0; i < nheld; i++)
		close(held[i]);
	set_free(&s);
	identity_free(a.id);
	identity_free(b.id);
	hq_stop(&h);
	curl_global_cleanup();
}

/* A whole visit to beneficiary ben as n = 3 changes into ch. */
static size_t visit_to(struct change *ch, const char *rec, const char *ben, hlc_t t)
{
	ch[0] = mk(rec, "visits", "beneficiary_id", cJSON_CreateString(ben), t);
	ch[1] = mk(rec, "visits", "visit_date", cJSON_CreateString("2026-11-30"), t);
	ch[2] = mk(rec, "visits", "visit_type", cJSON_CreateString("legal_assistance"), t);
	return 3;
}

/* Push ch[0..n) as d's next set: every change quarantined for reason
 * (NULL: none quarantined). */
static void push_expect(struct hq *h, struct device *d, struct change *ch, size_t n,
			const char *reason)
{
	struct set s = build_set(d, h->box_pk, ch, n);
	cJSON *j = push(h, s.buf, s.len, 200), *q = cJSON_GetObjectItem(j, "quarantined");

	ASSERT_EQ(cJSON_GetArraySize(q), reason ? (int)n : 0);
	for (int i = 0; reason && i < cJSON_GetArraySize(q); i++)
		ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(q, i), "reason"), reason);
	cJSON_Delete(j);
	set_free(&s);
}

/* A device writes only the records of its scope: its municipality, or
 * the list an administrator set.  Another team's household cannot be
 * overwritten, deleted, moved or have visits filed to it; names match
 * across scripts and case (issue 19, item 6; issue 12, scope). */
TEST(hq_writes_outside_scope_quarantined)
{
	static const char outside[] = "outside the device's scope";
	uint64_t base = hlc_wall_ms() - 60000;
	char r1[UUID_TEXT_LEN + 1], r2[UUID_TEXT_LEN + 1], r3[UUID_TEXT_LEN + 1],
		v1[UUID_TEXT_LEN + 1], v2[UUID_TEXT_LEN + 1], nobody[UUID_TEXT_LEN + 1],
		*out = NULL;
	struct device a, b, n;
	struct change ch[8];
	struct hq h;
	cJSON *j;
	size_t k;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&a, "Tim Sjenica");
	device_new(&b, "Tim Tutin");
	b.muni = "Tutin";
	device_new(&n, "Tim Srbija");
	n.scope = "*";
	device_enroll(&h, &a);
	device_enroll(&h, &b);
	device_enroll(&h, &n);

	/* a registers a household in Sjenica. */
	uuid_v7_new(base, r1);
	push_expect(&h, &a, ch, person(ch, r1, "Ружичић Ђорђе", 4, tick(&a, base)), NULL);
	/* b, in Tutin, cannot change it, delete it or visit it... */
	ch[0] = mk(r1, "beneficiaries", "household_size", cJSON_CreateNumber(9),
		   tick(&b, base + 10));
	push_expect(&h, &b, ch, 1, outside);
	ch[0] = mk(r1, "beneficiaries", "_deleted", cJSON_CreateTrue(), tick(&b, base + 20));
	push_expect(&h, &b, ch, 1, outside);
	uuid_v7_new(base + 30, v1);
	push_expect(&h, &b, ch, visit_to(ch, v1, r1, tick(&b, base + 30)), outside);
	/* ... nor register a household in Sjenica. */
	uuid_v7_new(base + 40, r2);
	push_expect(&h, &b, ch, person(ch, r2, "Petrović Ana", 2, tick(&b, base + 40)), outside);
	/* Nor through a scope value HQ refuses (too long, but "Tutin" once
	 * folded): the household would be in nobody's scope, and anyone's
	 * to write. */
	{
		char padded[160];
		struct set s;
		cJSON *q;

		uuid_v7_new(base + 45, r2);
		snprintf(padded, sizeof(padded), "Tutin%*s", 120, "");
		k = person(ch, r2, "Petrović Ana", 2, tick(&b, base + 45));
		cJSON_SetValuestring(ch[1].value, padded);
		s = build_set(&b, h.box_pk, ch, k);
		j = push(&h, s.buf, s.len, 200);
		q = cJSON_GetObjectItem(j, "quarantined");
		ASSERT_EQ(cJSON_GetArraySize(q), 5);
		ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(q, 0), "reason"),
			      "outside the device's scope: HQ does not know whose caseload the "
			      "record is in");
		cJSON_Delete(j);
		set_free(&s);
	}
	/* Its own municipality, in Cyrillic capitals, is its own. */
	uuid_v7_new(base + 50, r3);
	k = person(ch, r3, "Šćepanović Žaklina", 3, tick(&b, base + 50));
	cJSON_SetValuestring(ch[1].value, "ТУТИН");
	push_expect(&h, &b, ch, k, NULL);
	uuid_v7_new(base + 60, v2);
	push_expect(&h, &b, ch, visit_to(ch, v2, r3, tick(&b, base + 60)), NULL);
	/* a cannot move its household into Tutin's caseload, nor file a
	 * visit to Tutin's household, nor to one HQ has never heard of. */
	ch[0] = mk(r1, "beneficiaries", "municipality", cJSON_CreateString("Tutin"),
		   tick(&a, base + 70));
	push_expect(&h, &a, ch, 1, "moves the record out of the device's scope");
	ch[0] = mk(v2, "visits", "notes", cJSON_CreateString("-"), tick(&a, base + 80));
	push_expect(&h, &a, ch, 1, outside);
	uuid_v7_new(base + 90, nobody);
	uuid_v7_new(base + 90, v1);
	push_expect(&h, &a, ch, visit_to(ch, v1, nobody, tick(&a, base + 90)),
		    "outside the device's scope: HQ does not know whose caseload the record is "
		    "in");

	/* HQ's view: r1 as a left it, r2 nowhere, r3 and its visit merged. */
	out = export_of(&h, "beneficiaries", "jsonl");
	ASSERT_STR_CONTAINS(out, r1);
	ASSERT_STR_CONTAINS(out, "\"household_size\":4");
	ASSERT_TRUE(!strstr(out, "\"household_size\":9"));
	ASSERT_TRUE(!strstr(out, r2));
	ASSERT_STR_CONTAINS(out, r3);
	free(out);
	out = export_of(&h, "visits", "jsonl");
	ASSERT_STR_CONTAINS(out, v2);
	ASSERT_TRUE(!strstr(out, v1));
	free(out);

	/* An administrator widens b's scope: audited, then b may. */
	ASSERT_EQ(HQ_RUN(&h, &out, "scope", b.id->id, "--municipality", " sjenica ,Tutin,TUTIN"),
		  0);
	free(out);
	ch[0] = mk(r1, "beneficiaries", "household_size", cJSON_CreateNumber(5),
		   tick(&b, base + 100));
	push_expect(&h, &b, ch, 1, NULL);
	ASSERT_EQ(HQ_RUN(&h, &out, "devices", "--json"), 0);
	ASSERT_STR_CONTAINS(out, "\"scope\":[\"sjenica\",\"Tutin\"]");
	ASSERT_STR_CONTAINS(out, "\"scope\":[\"*\"]");
	free(out);
	ASSERT_EQ(HQ_RUN(&h, &out, "audit", "list", "--event", "scope", "--json"), 0);
	ASSERT_STR_CONTAINS(out, "\"scope\\\":\\\"sjenica, Tutin\\\"");
	ASSERT_STR_CONTAINS(out, "\"previous\\\":\\\"Tutin\\\"");
	free(out);
	/* A national team writes anywhere. */
	ch[0] = mk(r3, "beneficiaries", "status", cJSON_CreateString("refugee"),
		   tick(&n, base + 110));
	ch[1] = mk(r1, "beneficiaries", "status", cJSON_CreateString("refugee"),
		   tick(&n, base + 110));
	push_expect(&h, &n, ch, 2, NULL);
	ch[0] = mk(r1, "beneficiaries", "_deleted", cJSON_CreateTrue(), tick(&n, base + 120));
	push_expect(&h, &n, ch, 1, NULL);
	/* a's team sees who changed and deleted its household: b's edit
	 * (kept), n's edit and n's delete; nothing of its own, nor any of b's
	 * own household, nor a value. */
	ASSERT_EQ(HQ_RUN(&h, &out, "review", "--json"), 0);
	j = cJSON_Parse(out);
	ASSERT_TRUE(j);
	ASSERT_EQ(cJSON_GetArraySize(j), 4);
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(j, 0), "record"), r1);
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(j, 0), "field"), "household_size");
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(j, 0), "team"), "Tim Tutin");
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(j, 0), "owner_team"), "Tim Sjenica");
	ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "kept")));
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(j, 1), "team"), "Tim Srbija");
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(j, 1), "owner_team"), "Tim Tutin");
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(j, 2), "team"), "Tim Srbija");
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(j, 2), "owner_team"), "Tim Sjenica");
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(j, 3), "field"), "_deleted");
	ASSERT_STR_EQ(json_str(cJSON_GetArrayItem(j, 3), "record"), r1);
	cJSON_Delete(j);
	ASSERT_TRUE(!strstr(out, "refugee") && !strstr(out, "Ружичић"));
	free(out);
	ASSERT_EQ(HQ_RUN(&h, &out, "review"), 0);
	ASSERT_STR_CONTAINS(out, "deleted by Tim Srbija (device ");
	ASSERT_STR_CONTAINS(out, "field household_size changed by Tim Tutin (device ");
	free(out);
	/* Bad lists and unknown devices are refused and change nothing. */
	ASSERT_EQ(HQ_RUN(&h, NULL, "scope", b.id->id, "--municipality", "*,Tutin"), 1);
	ASSERT_EQ(HQ_RUN(&h, NULL, "scope", b.id->id, "--municipality", "Tutin,,Sjenica"), 1);
	ASSERT_EQ(HQ_RUN(&h, NULL, "scope", b.id->id), 1);
	ASSERT_EQ(HQ_RUN(&h, NULL, "scope", "0123456789abcdef0123456789abcdef", "--municipality",
			 "Tutin"),
		  2);
	ASSERT_EQ(HQ_RUN(&h, &out, "devices", "--json"), 0);
	ASSERT_STR_CONTAINS(out, "\"scope\":[\"sjenica\",\"Tutin\"]");
	free(out);
	identity_free(a.id);
	identity_free(b.id);
	identity_free(n.id);
	hq_stop(&h);
	curl_global_cleanup();
}

/* What a device holds of HQ's down-sets: the chain it applied. */
struct puller {
	uint64_t seq;
	uint8_t hash[32];
};

/* Pull once for d: the HTTP status; on 200, *ret the opened down-set,
 * checked as a device checks it (HQ's key, its own id, the chain), and
 * the chain moves on.  raw, when not NULL, gets the bytes. */
static long pull_once_v(const struct hq *h, const struct device *d, struct puller *pl,
			struct downset *ret, struct buf *raw, uint8_t version)
{
	uint8_t req[DOWNSET_PULL_BYTES], id[16];
	struct downset_header hd;
	struct fs_error err = { 0 };
	struct buf b;
	long status;

	ASSERT_OK(sodium_hex2bin(id, sizeof(id), d->id->id, IDENTITY_ID_HEXLEN, NULL, NULL, NULL));
	downset_pull_request(id, pl->seq, pl->seq ? pl->hash : NULL, hlc_wall_ms(), d->id->sign_sk,
			     req);
	/* An older device: it reads down-sets of that version only. */
	req[4] = version;
	crypto_sign_detached(req + 72, NULL, req, 72, d->id->sign_sk);
	status = http_post_raw(h, "/v1/pull", req, sizeof(req), "application/vnd.fieldsync.pull",
			       "Expect:", &b);
	if (status != 200) {
		if (raw)
			*raw = b;
		else
			free(b.data);
		return status;
	}
	ASSERT_OK(downset_parse((uint8_t *)b.data, b.len, &hd, &err));
	ASSERT_OK(downset_verify((uint8_t *)b.data, b.len, h->sign_pk));
	ASSERT_MEM_EQ(hd.device, id, 16);
	ASSERT_EQ(hd.seq, pl->seq + 1);
	if (pl->seq)
		ASSERT_MEM_EQ(hd.prev, pl->hash, 32);
	if (downset_open((uint8_t *)b.data, b.len, d->id->box_pk, d->id->box_sk, ret, &err) < 0)
		TEST_FAIL("open down-set: %s", err.msg);
	pl->seq = hd.seq;
	changeset_hash((uint8_t *)b.data, b.len, pl->hash);
	if (raw)
		*raw = b;
	else
		free(b.data);
	return status;
}

static long pull_once(const struct hq *h, const struct device *d, struct puller *pl,
		      struct downset *ret, struct buf *raw)
{
	return pull_once_v(h, d, pl, ret, raw, DOWNSET_PULL_VERSION);
}

/* Count d's changes to record rec, and whether one sets field to text. */
static size_t changes_to(const struct downset *d, const char *rec, const char *field,
			 const char *text, int *found)
{
	size_t n = 0;

	for (size_t i = 0; i < d->nchanges; i++) {
		if (strcmp(d->changes[i].c.record_id, rec))
			continue;
		n++;
		if (found && !strcmp(d->changes[i].c.field, field) &&
		    cJSON_IsString(d->changes[i].c.value) &&
		    !strcmp(d->changes[i].c.value->valuestring, text))
			*found = 1;
	}
	return n;
}

/* Two-way sync, HQ's side (issue 12): each device pulls the merged state
 * of its scope and nothing else, in a chain of signed down-sets sealed to
 * it; a lost answer is sent again byte for byte, a wrong chain is 409;
 * a household that moves reaches the new scope whole and its old scope
 * learns it left; a bounded batch resumes where it stopped. */
TEST(hq_pull_sends_the_scope_and_only_the_scope)
{
	uint64_t base = hlc_wall_ms() - 60000;
	char r1[UUID_TEXT_LEN + 1], r2[UUID_TEXT_LEN + 1], v1[UUID_TEXT_LEN + 1];
	struct puller pa = { 0 }, pb = { 0 }, pc = { 0 }, stale;
	struct device a, b, c;
	struct change ch[8];
	struct downset d;
	struct buf raw, again;
	struct hq h;
	int found = 0;
	size_t k;
	cJSON *j;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", "[server]\npull_batch = 4\n", NULL);
	hq_start(&h);
	device_new(&a, "Tim Sjenica");
	device_new(&b, "Tim Tutin");
	b.muni = "Tutin";
	device_new(&c, "Tim Jug");
	c.muni = "Tutin";
	c.scope = "Sjenica, Tutin";
	device_enroll(&h, &a);
	device_enroll(&h, &b);
	device_enroll(&h, &c);

	/* Nothing merged yet: the first set only tells the scope. */
	ASSERT_EQ(pull_once(&h, &a, &pa, &d, NULL), 200);
	ASSERT_EQ(d.nchanges, 0);
	ASSERT_EQ(d.nscope, 1);
	ASSERT_STR_EQ(d.scope[0], "Sjenica");
	downset_clear(&d);
	ASSERT_EQ(pull_once(&h, &a, &pa, &d, NULL), 204);

	uuid_v7_new(base, r1);
	push_expect(&h, &a, ch, person(ch, r1, "Ружичић Ђорђе", 4, tick(&a, base)), NULL);
	uuid_v7_new(base + 1, v1);
	push_expect(&h, &a, ch, visit_to(ch, v1, r1, tick(&a, base + 1)), NULL);
	uuid_v7_new(base + 2, r2);
	k = person(ch, r2, "Šćepanović Žaklina", 3, tick(&b, base + 2));
	cJSON_SetValuestring(ch[1].value, "Tutin");
	push_expect(&h, &b, ch, k, NULL);

	/* b's scope: r2's five fields, nothing of a's; a set of at most 4
	 * grows to finish the household rather than split it. */
	ASSERT_EQ(pull_once(&h, &b, &pb, &d, NULL), 200);
	ASSERT_EQ(d.nchanges, 5);
	ASSERT_EQ(d.h.flags, 0);
	ASSERT_EQ(changes_to(&d, r2, "", "", NULL), 5);
	ASSERT_EQ(changes_to(&d, r1, "", "", NULL), 0);
	/* Version 2 names the team of the device that wrote them. */
	ASSERT_EQ(d.h.version, 2);
	ASSERT_EQ(d.nteams, 1);
	ASSERT_STR_EQ(d.teams[0].device, b.id->id);
	ASSERT_STR_EQ(d.teams[0].team, "Tim Tutin");
	downset_clear(&d);
	ASSERT_EQ(pull_once(&h, &b, &pb, &d, NULL), 204);
	/* A device that reads version 1 only still gets version 1. */
	{
		struct puller po = { 0 };
		struct device o;

		device_new(&o, "Tim Stari");
		o.muni = "Tutin";
		device_enroll(&h, &o);
		ASSERT_EQ(pull_once_v(&h, &o, &po, &d, NULL, 1), 200);
		ASSERT_EQ(d.h.version, 1);
		ASSERT_EQ(d.nteams, 0);
		ASSERT_EQ(changes_to(&d, r2, "", "", NULL), 5);
		downset_clear(&d);
		ASSERT_EQ(pull_once_v(&h, &o, &po, &d, NULL, 3), 400);
		identity_free(o.id);
	}

	/* a's answer is lost: asking again after the same set gets the same
	 * bytes; a chain HQ never made is refused. */
	stale = pa;
	ASSERT_EQ(pull_once(&h, &a, &pa, &d, &raw), 200);
	ASSERT_EQ(changes_to(&d, r1, "", "", NULL), 5);
	ASSERT_EQ(changes_to(&d, v1, "", "", NULL), 0);
	ASSERT_EQ(d.h.flags, DOWNSET_FLAG_MORE);
	downset_clear(&d);
	ASSERT_EQ(pull_once(&h, &a, &stale, &d, &again), 200);
	ASSERT_EQ(raw.len, again.len);
	ASSERT_MEM_EQ(raw.data, again.data, raw.len);
	downset_clear(&d);
	free(raw.data);
	free(again.data);
	stale.seq = 7;
	ASSERT_EQ(pull_once(&h, &a, &stale, &d, &raw), 409);
	j = cJSON_Parse(raw.data);
	ASSERT_EQ(cJSON_GetObjectItem(j, "expected_seq")->valueint, 2);
	cJSON_Delete(j);
	free(raw.data);
	/* The rest of a's scope: the visit. */
	for (k = 0; pull_once(&h, &a, &pa, &d, NULL) == 200; downset_clear(&d))
		k += changes_to(&d, r1, "", "", NULL) + changes_to(&d, v1, "", "", NULL);
	ASSERT_EQ(k, 3);

	/* c covers both. */
	for (k = 0; pull_once(&h, &c, &pc, &d, NULL) == 200; downset_clear(&d))
		k += changes_to(&d, r1, "", "", NULL) + changes_to(&d, v1, "", "", NULL) +
		     changes_to(&d, r2, "", "", NULL);
	ASSERT_EQ(k, 5 + 3 + 5);

	/* c moves r1 to Tutin: b receives the household and its visit
	 * whole; a learns it left (its municipality, now Tutin). */
	ch[0] = mk(r1, "beneficiaries", "municipality", cJSON_CreateString("Tutin"),
		   tick(&c, base + 100));
	push_expect(&h, &c, ch, 1, NULL);
	for (k = 0; pull_once(&h, &b, &pb, &d, NULL) == 200; downset_clear(&d))
		k += changes_to(&d, r1, "", "", NULL) + changes_to(&d, v1, "", "", NULL);
	ASSERT_EQ(k, 5 + 3);
	for (k = 0; pull_once(&h, &a, &pa, &d, NULL) == 200; downset_clear(&d))
		k += changes_to(&d, r1, "municipality", "Tutin", &found);
	ASSERT_EQ(k, 1);
	ASSERT_TRUE(found);

	/* Strangers: a request not signed by the device, or by nobody. */
	{
		uint8_t req[DOWNSET_PULL_BYTES], id[16] = { 0 };

		ASSERT_OK(sodium_hex2bin(id, 16, a.id->id, 32, NULL, NULL, NULL));
		downset_pull_request(id, 0, NULL, hlc_wall_ms(), b.id->sign_sk, req);
		ASSERT_EQ(
			http_post(&h, "/v1/pull", req, sizeof(req), "application/octet-stream", &j),
			401);
		cJSON_Delete(j);
		ASSERT_EQ(http_post(&h, "/v1/pull", req, 10, "application/octet-stream", &j), 400);
		cJSON_Delete(j);
	}
	/* Every new down-set is audited; no value is. */
	{
		char *out = NULL;

		ASSERT_EQ(HQ_RUN(&h, &out, "audit", "list", "--event", "pull"), 0);
		ASSERT_STR_CONTAINS(out, "\"seq\":1");
		ASSERT_TRUE(!strstr(out, "Ружичић") && !strstr(out, "Tutin"));
		free(out);
	}
	identity_free(a.id);
	identity_free(b.id);
	identity_free(c.id);
	hq_stop(&h);
	curl_global_cleanup();
}

/* A database from before two-way sync (schema version 3) is upgraded, and
 * a device then receives everything of its scope that HQ merged before,
 * its conflicts included, however small the batches. */
TEST(hq_pull_after_upgrade_sends_everything)
{
	uint64_t base = hlc_wall_ms() - 60000;
	char rec[4][UUID_TEXT_LEN + 1];
	struct puller pb = { 0 };
	struct device a, b, c;
	struct change ch[8];
	struct downset d;
	struct hq h;
	size_t got = 0, conflicts = 0;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", "[server]\npull_batch = 4\n", NULL);
	hq_start(&h);
	device_new(&a, "Tim Sjenica");
	device_new(&b, "Tim Sjenica 2");
	device_new(&c, "Tim Sjenica 3");
	device_enroll(&h, &a);
	device_enroll(&h, &b);
	device_enroll(&h, &c);
	for (int i = 0; i < 4; i++) {
		uuid_v7_new(base + (uint64_t)i, rec[i]);
		push_expect(&h, &a, ch, person(ch, rec[i], "Ilić Jelena", 3, tick(&a, base + 10)),
			    NULL);
	}
	/* c imports r0 as a had it, then both edit its size: a conflict. */
	person(ch, rec[0], "Ilić Jelena", 3, tick(&c, base + 10));
	push_expect(&h, &c, ch, 5, NULL);
	ch[0] = mk(rec[0], "beneficiaries", "household_size", cJSON_CreateNumber(5),
		   tick(&a, base + 20));
	push_expect(&h, &a, ch, 1, NULL);
	ch[0] = mk(rec[0], "beneficiaries", "household_size", cJSON_CreateNumber(6),
		   tick(&c, base + 30));
	push_expect(&h, &c, ch, 1, NULL);
	hq_stop(&h);
	hq_db_exec(&h, TO_V3_SQL);
	hq_start(&h);
	while (pull_once(&h, &b, &pb, &d, NULL) == 200) {
		for (int i = 0; i < 4; i++)
			got += changes_to(&d, rec[i], "", "", NULL);
		conflicts += d.nconflicts;
		downset_clear(&d);
	}
	ASSERT_EQ(got, 4 * 5);
	ASSERT_EQ(conflicts, 1);
	identity_free(a.id);
	identity_free(b.id);
	identity_free(c.id);
	hq_stop(&h);
	curl_global_cleanup();
}

/* A scope that shrinks and grows back sends the returning municipality's
 * households again: the device purged them when they left. */
TEST(hq_scope_regrown_resends_everything)
{
	uint64_t base = hlc_wall_ms() - 60000;
	char rec[UUID_TEXT_LEN + 1], *out = NULL;
	struct puller pc = { 0 };
	struct device a, c;
	struct change ch[8];
	struct downset d;
	struct hq h;
	size_t got;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&a, "Tim Sjenica");
	device_new(&c, "Tim Jug");
	device_enroll(&h, &a);
	device_enroll(&h, &c);
	uuid_v7_new(base, rec);
	push_expect(&h, &a, ch, person(ch, rec, "Ilić Jelena", 3, tick(&a, base)), NULL);
	for (got = 0; pull_once(&h, &c, &pc, &d, NULL) == 200; downset_clear(&d))
		got += changes_to(&d, rec, "", "", NULL);
	ASSERT_EQ(got, 5);
	ASSERT_EQ(HQ_RUN(&h, &out, "scope", c.id->id, "--municipality", "Tutin"), 0);
	free(out);
	ASSERT_EQ(pull_once(&h, &c, &pc, &d, NULL), 200);
	ASSERT_STR_EQ(d.scope[0], "Tutin");
	downset_clear(&d);
	ASSERT_EQ(HQ_RUN(&h, &out, "scope", c.id->id, "--municipality", "Sjenica"), 0);
	free(out);
	for (got = 0; pull_once(&h, &c, &pc, &d, NULL) == 200; downset_clear(&d))
		got += changes_to(&d, rec, "", "", NULL);
	ASSERT_EQ(got, 5);
	identity_free(a.id);
	identity_free(c.id);
	hq_stop(&h);
	curl_global_cleanup();
}

/* A programme adds a scope field to a form HQ already holds records of:
 * the next start places every household (and its visits) again, so that
 * devices of other municipalities learn they left, and new devices never
 * see them. */
TEST(hq_form_gains_a_scope_field_and_records_move)
{
	uint64_t base = hlc_wall_ms() - 60000;
	char rec[UUID_TEXT_LEN + 1], vis[UUID_TEXT_LEN + 1], forms[700], path[800], *json;
	struct puller pb = { 0 }, pn = { 0 };
	struct device a, b, n;
	struct change ch[8];
	struct downset d;
	struct hq h;
	size_t got = 0, len;
	int left = 0;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	/* The shipped forms, without "scope". */
	snprintf(forms, sizeof(forms), "%s/forms", h.dir);
	ASSERT_OK(mkdir(forms, 0700));
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "visits" : "beneficiaries";
		char *at;

		snprintf(path, sizeof(path), "%s/%s.json", test_forms_dir(), name);
		json = read_file(path, &len);
		at = strstr(json, "\"scope\"");
		ASSERT_TRUE(at != NULL);
		memmove(at, strchr(at, '\n') + 1, strlen(strchr(at, '\n') + 1) + 1);
		snprintf(path, sizeof(path), "%s/%s.json", forms, name);
		write_file(path, json, strlen(json), 0600);
		free(json);
	}
	h.forms = forms;
	hq_start(&h);
	device_new(&a, "Tim Sjenica");
	device_new(&b, "Tim Tutin");
	b.muni = "Tutin";
	device_enroll(&h, &a);
	device_enroll(&h, &b);
	uuid_v7_new(base, rec);
	push_expect(&h, &a, ch, person(ch, rec, "Ilić Jelena", 3, tick(&a, base)), NULL);
	uuid_v7_new(base + 1, vis);
	push_expect(&h, &a, ch, visit_to(ch, vis, rec, tick(&a, base + 1)), NULL);
	/* Without a scope field, every device receives every household. */
	while (pull_once(&h, &b, &pb, &d, NULL) == 200) {
		got += changes_to(&d, rec, "", "", NULL) + changes_to(&d, vis, "", "", NULL);
		downset_clear(&d);
	}
	ASSERT_EQ(got, 5 + 3);
	hq_stop(&h);
	h.forms = NULL;
	hq_start(&h);
	/* Tutin learns the household is Sjenica's; a new Tutin device gets
	 * nothing of it. */
	while (pull_once(&h, &b, &pb, &d, NULL) == 200) {
		changes_to(&d, rec, "municipality", "Sjenica", &left);
		downset_clear(&d);
	}

	ASSERT_TRUE(left);
	device_new(&n, "Tim Tutin 2");
	n.muni = "Tutin";
	device_enroll(&h, &n);
	got = 0;
	while (pull_once(&h, &n, &pn, &d, NULL) == 200) {
		got += changes_to(&d, rec, "", "", NULL) + changes_to(&d, vis, "", "", NULL);
		downset_clear(&d);
	}
	ASSERT_EQ(got, 0);
	identity_free(a.id);
	identity_free(b.id);
	identity_free(n.id);
	hq_stop(&h);
	curl_global_cleanup();
}

/* Push ch[0..n), each made under form version v, as d's next set: the
 * number quarantined, and the first reason into reason (cap bytes). */
static int push_under(struct hq *h, struct device *d, struct change *ch, size_t n, uint32_t v,
		      char *reason, size_t cap)
{
	struct set s;
	cJSON *j, *q;
	int nq;

	for (size_t i = 0; i < n; i++)
		ch[i].form_version = v;
	s = build_set(d, h->box_pk, ch, n);
	j = push(h, s.buf, s.len, 200);
	q = cJSON_GetObjectItem(j, "quarantined");
	nq = cJSON_GetArraySize(q);
	reason[0] = '\0';
	if (nq)
		snprintf(reason, cap, "%s", json_str(cJSON_GetArrayItem(q, 0), "reason"));
	cJSON_Delete(j);
	set_free(&s);
	return nq;
}

/* The "form" entries in HQ's audit log (JSON Lines). */
static int form_entries(const struct hq *h)
{
	char *out = NULL, *line, *save = NULL;
	int n = 0;

	ASSERT_EQ(HQ_RUN(h, &out, "audit", "list", "--event", "form", "--json"), 0);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(line);

		ASSERT_STR_EQ(json_str(j, "event"), "form");
		cJSON_Delete(j);
		n++;
	}
	free(out);
	return n;
}

/* Forms from HQ (issue 12): HQ publishes each form as a numbered,
 * audited version when it changes, sends it once to each device in its
 * down-sets, and validates each change with the version it was made
 * under: a choice HQ has since dropped still merges when the change was
 * made before, a field HQ added is refused to a change made under the
 * old form, and a version HQ never published is quarantined. */
TEST(hq_publishes_forms_and_validates_by_version)
{
	uint64_t base = hlc_wall_ms() - 60000;
	char rec[UUID_TEXT_LEN + 1], vis[UUID_TEXT_LEN + 1], forms[700], path[800], why[256];
	char *json;
	struct puller pa = { 0 };
	struct device a;
	struct change ch[8];
	struct downset d;
	struct hq h;
	size_t len, n;
	cJSON *roof;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	snprintf(forms, sizeof(forms), "%s/forms", h.dir);
	ASSERT_OK(mkdir(forms, 0700));
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "visits" : "beneficiaries";

		snprintf(path, sizeof(path), "%s/%s.json", test_forms_dir(), name);
		json = read_file(path, &len);
		snprintf(path, sizeof(path), "%s/%s.json", forms, name);
		write_file(path, json, len, 0600);
		free(json);
	}
	h.forms = forms;
	hq_start(&h);
	ASSERT_EQ(form_entries(&h), 2);
	device_new(&a, "Tim Sjenica");
	device_enroll(&h, &a);
	uuid_v7_new(base, rec);
	push_expect(&h, &a, ch, person(ch, rec, "Илић Јелена", 3, tick(&a, base)), NULL);
	/* The first pull carries both forms, version 1; the next nothing. */
	ASSERT_EQ(pull_once(&h, &a, &pa, &d, NULL), 200);
	ASSERT_EQ(d.nforms, 2u);
	for (size_t i = 0; i < d.nforms; i++)
		ASSERT_EQ(d.forms[i].version, 1u);
	downset_clear(&d);
	ASSERT_EQ(pull_once(&h, &a, &pa, &d, NULL), 204);

	/* HQ's visits form changes: legal_assistance is no longer a visit
	 * type, and roof is a new field.  The next start publishes version 2
	 * of visits alone. */
	hq_stop(&h);
	snprintf(path, sizeof(path), "%s/visits.json", forms);
	json = read_file(path, &len);
	{
		cJSON *def = cJSON_Parse(json), *fields = cJSON_GetObjectItem(def, "fields"), *fd,
		      *added = cJSON_CreateObject();
		char *text;
		int i = 0, next = -1;

		ASSERT_TRUE(def && fields && added);
		cJSON_ArrayForEach(fd, fields)
		{
			const char *name = cJSON_GetObjectItem(fd, "name")->valuestring;
			cJSON *values = cJSON_GetObjectItem(fd, "values"), *v;
			int j = 0;

			if (!strcmp(name, "next_visit"))
				next = i;
			i++;
			if (strcmp(name, "visit_type") != 0)
				continue;
			cJSON_ArrayForEach(v, values)
			{
				if (!strcmp(v->valuestring, "legal_assistance"))
					break;
				j++;
			}
			ASSERT_TRUE(v != NULL);
			cJSON_DeleteItemFromArray(values, j);
			cJSON_DeleteItemFromObject(cJSON_GetObjectItem(fd, "choice_labels"),
						   "legal_assistance");
		}
		ASSERT_TRUE(next >= 0);
		cJSON_AddStringToObject(added, "name", "roof");
		cJSON_AddStringToObject(added, "type", "text");
		/* Before next_visit, the last field: that one moves behind it. */
		{
			cJSON *last = cJSON_DetachItemFromArray(fields, next);

			ASSERT_TRUE(last && cJSON_AddItemToArray(fields, added) &&
				    cJSON_AddItemToArray(fields, last));
		}
		text = cJSON_Print(def);
		ASSERT_TRUE(text != NULL);
		write_file(path, text, strlen(text), 0600);
		cJSON_free(text);
		cJSON_Delete(def);
	}
	free(json);
	hq_start(&h);
	ASSERT_EQ(form_entries(&h), 3);
	ASSERT_EQ(pull_once(&h, &a, &pa, &d, NULL), 200);
	ASSERT_EQ(d.nforms, 1u);
	ASSERT_STR_EQ(d.forms[0].collection, "visits");
	ASSERT_EQ(d.forms[0].version, 2u);
	n = 0;
	cJSON_ArrayForEach(roof, cJSON_GetObjectItem(d.forms[0].definition, "fields")) n +=
		!strcmp(json_str(roof, "name"), "roof");
	ASSERT_EQ(n, 1u);
	downset_clear(&d);
	ASSERT_EQ(pull_once(&h, &a, &pa, &d, NULL), 204);

	/* A legal-assistance visit made under version 1 merges; made under
	 * the device's own form (0) it is checked against HQ's current form,
	 * and under version 2 too. */
	uuid_v7_new(base + 1, vis);
	n = visit_to(ch, vis, rec, tick(&a, base + 1));
	ASSERT_EQ(push_under(&h, &a, ch, n, 1, why, sizeof(why)), 0);
	uuid_v7_new(base + 2, vis);
	n = visit_to(ch, vis, rec, tick(&a, base + 2));
	ASSERT_EQ(push_under(&h, &a, ch, n, 0, why, sizeof(why)), 1);
	ASSERT_STR_CONTAINS(why, "visit_type");
	n = visit_to(ch, vis, rec, tick(&a, base + 3));
	ASSERT_EQ(push_under(&h, &a, ch, n, 2, why, sizeof(why)), 1);
	/* roof: a field of version 2, not of version 1. */
	ch[0] = mk(vis, "visits", "roof", cJSON_CreateString("prokišnjava"), tick(&a, base + 4));
	ASSERT_EQ(push_under(&h, &a, ch, 1, 1, why, sizeof(why)), 1);
	ASSERT_STR_CONTAINS(why, "roof");
	ch[0] = mk(vis, "visits", "roof", cJSON_CreateString("prokišnjava"), tick(&a, base + 5));
	ASSERT_EQ(push_under(&h, &a, ch, 1, 2, why, sizeof(why)), 0);
	ch[0] = mk(vis, "visits", "roof", cJSON_CreateString("прокишњава"), tick(&a, base + 6));
	ASSERT_EQ(push_under(&h, &a, ch, 1, 7, why, sizeof(why)), 1);
	ASSERT_STR_EQ(why, "made under form version 7, which HQ has not published");

	/* The same forms again: nothing new is published. */
	hq_stop(&h);
	hq_start(&h);
	ASSERT_EQ(form_entries(&h), 3);
	/* A database from before published forms (schema version 4) is
	 * upgraded: HQ publishes its forms and every device receives them. */
	hq_stop(&h);
	hq_db_exec(&h, TO_V4_SQL);
	hq_start(&h);
	ASSERT_EQ(form_entries(&h), 5);
	ASSERT_EQ(pull_once(&h, &a, &pa, &d, NULL), 200);
	ASSERT_EQ(d.nforms, 2u);
	downset_clear(&d);
	/* A quarantined change: HQ's value of the field goes to the sender
	 * again (and to its scope), so the device that holds the refused
	 * value takes HQ's back. */
	while (pull_once(&h, &a, &pa, &d, NULL) == 200)
		downset_clear(&d);
	ch[0] = mk(rec, "beneficiaries", "household_size", cJSON_CreateString("mnogo"),
		   tick(&a, base + 7));
	ASSERT_EQ(push_under(&h, &a, ch, 1, 0, why, sizeof(why)), 1);
	ASSERT_EQ(pull_once(&h, &a, &pa, &d, NULL), 200);
	ASSERT_EQ(d.nchanges, 1u);
	ASSERT_STR_EQ(d.changes[0].c.field, "household_size");
	ASSERT_EQ(d.changes[0].c.value->valueint, 3);
	downset_clear(&d);
	identity_free(a.id);
	hq_stop(&h);
	curl_global_cleanup();
}

/* A device's signed health report (POST /v1/status, hq/health.h): kept
 * from an enrolled device whose key signed it, and shown by `devices
 * --json` under the names the console reads, its backlog aged to now;
 * refused when malformed, badly signed, from a stranger or a revoked
 * device; and contact, like a push. */
TEST(hq_status_report_kept_and_shown)
{
	struct status_report rep;
	struct fs_error err = { 0 };
	struct device a, b;
	struct buf resp;
	struct hq h;
	uint8_t *buf = NULL, id[16];
	size_t len;
	char *out = NULL;
	cJSON *list, *d;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	hq_init(&h, "hq", NULL, NULL);
	hq_start(&h);
	device_new(&a, "Tim Sjenica");
	device_new(&b, "Tim Tutin");
	device_enroll(&h, &a);
	ASSERT_OK(sodium_hex2bin(id, sizeof(id), a.id->id, IDENTITY_ID_HEXLEN, NULL, NULL, NULL));
	memset(&rep, 0, sizeof(rep));
	memcpy(rep.device, id, 16);
	rep.wall_ms = hlc_wall_ms();
	rep.pending_changes = 2620;
	rep.oldest_unsent_age_s = 25 * 3600;
	strcpy(rep.last_error, "refused");
	strcpy(rep.agent_version, "9.9.9");
	strcpy(rep.forms[0].collection, "visits");
	rep.forms[0].version = 2;
	rep.nforms = 1;
	rep.has_skew = 1;
	rep.clock_skew_ms = -1500;
	rep.free_disk_bytes = 4096;
	ASSERT_OK(status_encode(&rep, a.id->sign_sk, &buf, &len, &err));
	ASSERT_EQ(http_post_raw(&h, "/v1/status", buf, len, "application/vnd.fieldsync.status",
				"Expect:", &resp),
		  204);
	free(resp.data);
	/* A flipped signature, or another key's: refused, nothing kept. */
	buf[len - 1] ^= 1;
	ASSERT_EQ(http_post_raw(&h, "/v1/status", buf, len, "application/vnd.fieldsync.status",
				"Expect:", &resp),
		  401);
	free(resp.data);
	free(buf);
	ASSERT_OK(status_encode(&rep, b.id->sign_sk, &buf, &len, &err));
	ASSERT_EQ(http_post_raw(&h, "/v1/status", buf, len, "application/vnd.fieldsync.status",
				"Expect:", &resp),
		  401);
	free(resp.data);
	free(buf);
	ASSERT_EQ(http_post_raw(&h, "/v1/status", "FSST", 4, "application/vnd.fieldsync.status",
				"Expect:", &resp),
		  400);
	free(resp.data);
	/* What devices --json says. */
	ASSERT_EQ(HQ_RUN(&h, &out, "devices", "--json"), 0);
	list = cJSON_Parse(out);
	ASSERT_TRUE(cJSON_IsArray(list));
	d = cJSON_GetArrayItem(list, 0);
	ASSERT_EQ(cJSON_GetObjectItem(d, "pending_changes")->valuedouble, 2620);
	ASSERT_TRUE(cJSON_GetObjectItem(d, "oldest_unsent_age_s")->valuedouble >= 25 * 3600);
	ASSERT_STR_EQ(cJSON_GetObjectItem(d, "last_error")->valuestring, "refused");
	ASSERT_STR_EQ(cJSON_GetObjectItem(d, "agent_version")->valuestring, "9.9.9");
	ASSERT_EQ(
		cJSON_GetObjectItem(cJSON_GetObjectItem(d, "form_version"), "visits")->valuedouble,
		2);
	ASSERT_EQ(cJSON_GetObjectItem(d, "clock_skew_ms")->valuedouble, -1500);
	ASSERT_EQ(cJSON_GetObjectItem(d, "free_disk_bytes")->valuedouble, 4096);
	ASSERT_TRUE(cJSON_IsNumber(cJSON_GetObjectItem(d, "last_seen_ms")));
	cJSON_Delete(list);
	free(out);
	/* Revoked: its word is no longer taken. */
	ASSERT_EQ(HQ_RUN(&h, NULL, "revoke", a.id->id), 0);
	ASSERT_OK(status_encode(&rep, a.id->sign_sk, &buf, &len, &err));
	ASSERT_EQ(http_post_raw(&h, "/v1/status", buf, len, "application/vnd.fieldsync.status",
				"Expect:", &resp),
		  403);
	free(resp.data);
	free(buf);
	identity_free(a.id);
	identity_free(b.id);
	hq_stop(&h);
	curl_global_cleanup();
}

/* ---- attached files (issue 17) ---------------------------------------------- */

/* POST a file message; the answer's status, *ret_json parsed. */
static long file_post(const struct hq *h, const uint8_t *msg, size_t len, cJSON **ret_json)
{
	return http_post(h, "/v1/files", msg, len, FILEWIRE_CONTENT_TYPE, ret_json);
}

/* A file's head for device d: its hash, size, chunks of c bytes. */
static struct filewire_head file_head(const struct device *d, const uint8_t *data, size_t size,
				      uint32_t c)
{
	struct filewire_head fh = { .size = size, .chunk_size = c, .wall_ms = hlc_wall_ms() };

	ASSERT_OK(sodium_hex2bin(fh.device, 16, d->id->id, IDENTITY_ID_HEXLEN, NULL, NULL, NULL));
	crypto_hash_sha256(fh.sha256, data, size);
	return fh;
}

static long file_query(const struct hq *h, const struct device *d, const struct filewire_head *fh,
		       cJSON **ret_json)
{
	uint8_t q[FILEWIRE_QUERY_BYTES];
	struct fs_error err = { 0 };

	ASSERT_OK(filewire_query_encode(fh, d->id->sign_sk, q, &err));
	return file_post(h, q, sizeof(q), ret_json);
}

/* Chunk i of data as device d sends it (malloc'd into *msg). */
static size_t file_chunk(const struct hq *h, const struct device *d, struct filewire_head fh,
			 const uint8_t *data, uint32_t i, uint8_t **msg)
{
	struct fs_error err = { 0 };
	size_t len = 0;

	fh.index = i;
	ASSERT_OK(filewire_chunk_encode(&fh, data + (size_t)i * fh.chunk_size,
					filewire_chunk_len(&fh), h->box_pk, d->id->sign_sk, msg,
					&len, &err));
	return len;
}

/* Send chunk i and expect status; "complete" and "stored" into the
 * pointers when 200. */
static void chunk_expect(const struct hq *h, const struct device *d, const struct filewire_head *fh,
			 const uint8_t *data, uint32_t i, long want, int *complete, int *stored)
{
	uint8_t *msg = NULL;
	size_t len = file_chunk(h, d, *fh, data, i, &msg);
	cJSON *j = NULL;
	long got = file_post(h, msg, len, &j);

	if (got != want)
		TEST_FAIL("chunk %u answered %ld (%s), expected %ld", (unsigned)i, got,
			  json_str(j, "error") ? json_str(j, "error") : "-", want);
	if (got == 200) {
		*complete = cJSON_IsTrue(cJSON_GetObjectItem(j, "complete"));
		*stored = cJSON_IsTrue(cJSON_GetObjectItem(j, "stored"));
	}
	cJSON_Delete(j);
	free(msg);
}

static int count_in(const char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* Whether any file under dir holds needle. */
static int tree_holds(const char *dir, const uint8_t *needle, size_t n)
{
	char cmd[1024];
	int found;

	/* The needle is printable by construction (below). */
	snprintf(cmd, sizeof(cmd), "grep -rqaF -- '%.*s' '%s'", (int)n, (const char *)needle, dir);
	found = system(cmd) == 0;
	return found;
}

/* A device sends a file in chunks: HQ says which it has, keeps each
 * once, refuses flipped, moved and re-signed chunks, assembles and
 * checks the file with the last, serves it audited, answers a file it
 * holds (from any device) as complete, drops chunks that do not hash to
 * the name, and holds each device to its quota. */
TEST(hq_files_chunked_resumable_checked)
{
	enum { SIZE = 100000, C = FILEWIRE_CHUNK_MIN, N = (SIZE + C - 1) / C };
	struct filewire_head fh, other;
	struct device a, b;
	struct hq h;
	uint8_t *data = malloc(SIZE), *wrong = malloc(SIZE), *msg = NULL, have[1];
	char hex[65], ohex[65], *out = NULL, tmp[700];
	int complete = 0, stored = 0;
	size_t len, blen = 0;
	cJSON *j = NULL;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	ASSERT_TRUE(data && wrong);
	/* Printable, so that a plain grep can look for it at rest. */
	for (size_t i = 0; i < SIZE; i++) {
		data[i] = (uint8_t)('a' + randombytes_uniform(26));
		wrong[i] = (uint8_t)('A' + randombytes_uniform(26));
	}
	hq_init(&h, "hq", "[server]\nfile_quota_mib = 1\n", NULL);
	hq_start(&h);
	device_new(&a, "Tim Sjenica");
	device_new(&b, "Tim Tutin");
	device_enroll(&h, &a);
	device_enroll(&h, &b);
	fh = file_head(&a, data, SIZE, C);
	sodium_bin2hex(hex, sizeof(hex), fh.sha256, 32);

	/* A chunk before the query that begins the upload. */
	chunk_expect(&h, &a, &fh, data, 0, 409, &complete, &stored);
	ASSERT_EQ(file_query(&h, &a, &fh, &j), 200);
	ASSERT_TRUE(!(cJSON_IsTrue(cJSON_GetObjectItem(j, "complete"))));
	ASSERT_EQ(cJSON_GetObjectItem(j, "chunks")->valuedouble, N);
	ASSERT_EQ(cJSON_GetObjectItem(j, "held")->valuedouble, 0);
	cJSON_Delete(j);
	for (uint32_t i = 0; i + 1 < N; i++) {
		chunk_expect(&h, &a, &fh, data, i, 200, &complete, &stored);
		ASSERT_TRUE(!(complete));
		ASSERT_TRUE(stored);
	}
	/* A replay is kept once: nothing new. */
	chunk_expect(&h, &a, &fh, data, 2, 200, &complete, &stored);
	ASSERT_TRUE(!(stored));
	/* Resuming: HQ says which it has. */
	ASSERT_EQ(file_query(&h, &a, &fh, &j), 200);
	ASSERT_EQ(cJSON_GetObjectItem(j, "held")->valuedouble, N - 1);
	decode_b64(json_str(j, "have"), have, sizeof(have), &blen);
	ASSERT_EQ(blen, 1);
	ASSERT_EQ(have[0], (1u << (N - 1)) - 1);
	cJSON_Delete(j);

	/* The last chunk flipped in its sealed bytes, in its header, and
	 * re-signed by another device under its own header: refused. */
	len = file_chunk(&h, &a, fh, data, N - 1, &msg);
	msg[FILEWIRE_CHUNK_FIXED + 100] ^= 0x01;
	ASSERT_EQ(file_post(&h, msg, len, &j), 401);
	cJSON_Delete(j);
	ASSERT_OK(crypto_sign_detached(msg + len - 64, NULL, msg, len - 64, a.id->sign_sk));
	ASSERT_EQ(file_post(&h, msg, len, &j), 400);
	ASSERT_STR_EQ(json_str(j, "error"), "malformed");
	cJSON_Delete(j);
	msg[FILEWIRE_CHUNK_FIXED + 100] ^= 0x01;
	{
		/* A whole chunk moved to another index, then re-signed. */
		uint8_t *moved = NULL;
		size_t mlen = file_chunk(&h, &a, fh, data, 1, &moved);

		bytes_put_be(moved + 68, 3, 4);
		ASSERT_EQ(file_post(&h, moved, mlen, &j), 401);
		cJSON_Delete(j);
		ASSERT_OK(crypto_sign_detached(moved + mlen - 64, NULL, moved, mlen - 64,
					       a.id->sign_sk));
		ASSERT_EQ(file_post(&h, moved, mlen, &j), 400);
		ASSERT_TRUE(strstr(json_str(j, "message"), "bound to another"));
		cJSON_Delete(j);
		free(moved);
	}
	ASSERT_OK(sodium_hex2bin(msg + 8, 16, b.id->id, IDENTITY_ID_HEXLEN, NULL, NULL, NULL));
	ASSERT_OK(crypto_sign_detached(msg + len - 64, NULL, msg, len - 64, b.id->sign_sk));
	ASSERT_EQ(file_post(&h, msg, len, &j), 400);
	ASSERT_TRUE(strstr(json_str(j, "message"), "bound to another"));
	cJSON_Delete(j);
	free(msg);
	ASSERT_EQ(HQ_RUN(&h, NULL, "attachment", "get", hex), 2);

	/* The last one: the file is made, checked, served. */
	chunk_expect(&h, &a, &fh, data, N - 1, 200, &complete, &stored);
	ASSERT_TRUE(complete);
	ASSERT_TRUE(stored);
	ASSERT_EQ(HQ_RUN(&h, &out, "attachment", "get", hex), 0);
	ASSERT_EQ(strlen(out), SIZE);
	ASSERT_TRUE(!memcmp(out, data, SIZE));
	free(out);
	ASSERT_EQ(HQ_RUN(&h, &out, "attachment", "list"), 0);
	ASSERT_TRUE(strstr(out, hex) && strstr(out, a.id->id) && strstr(out, " 100000 "));
	free(out);
	/* Replayed after: answered complete, nothing stored again. */
	chunk_expect(&h, &a, &fh, data, 1, 200, &complete, &stored);
	ASSERT_TRUE(complete);
	ASSERT_TRUE(!(stored));
	snprintf(tmp, sizeof(tmp), "%s/attachments/incoming/%s", h.data, a.id->id);
	ASSERT_NE(access(tmp, F_OK), 0);
	/* Another device with the same file: HQ holds it already. */
	other = file_head(&b, data, SIZE, C);
	ASSERT_EQ(file_query(&h, &b, &other, &j), 200);
	ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(j, "complete")));
	cJSON_Delete(j);
	ASSERT_EQ(HQ_RUN(&h, &out, "audit", "list"), 0);
	ASSERT_EQ(count_in(out, "file_received"), 1);
	ASSERT_EQ(count_in(out, "attachment_get"), 1);
	free(out);

	/* Chunks that do not hash to the name: dropped, and said so. */
	other = file_head(&b, data, SIZE, C);
	memcpy(other.sha256, fh.sha256, 32);
	crypto_hash_sha256(other.sha256, data, SIZE - 1); /* another name */
	other.size = SIZE;
	sodium_bin2hex(ohex, sizeof(ohex), other.sha256, 32);
	ASSERT_EQ(file_query(&h, &b, &other, &j), 200);
	cJSON_Delete(j);
	for (uint32_t i = 0; i + 1 < N; i++)
		chunk_expect(&h, &b, &other, wrong, i, 200, &complete, &stored);
	chunk_expect(&h, &b, &other, wrong, N - 1, 422, &complete, &stored);
	ASSERT_EQ(HQ_RUN(&h, NULL, "attachment", "get", ohex), 2);
	chunk_expect(&h, &b, &other, wrong, 0, 409, &complete, &stored);
	ASSERT_EQ(file_query(&h, &b, &other, &j), 200);
	ASSERT_EQ(cJSON_GetObjectItem(j, "held")->valuedouble, 0);
	cJSON_Delete(j);

	/* Every chunk kept, the last as HQ keeps one, but HQ stopped before
	 * it made the file: the next query makes it. */
	{
		uint8_t *d3 = malloc(SIZE);
		char hex3[65], path[900];
		struct filewire_head f3;

		ASSERT_TRUE(d3);
		memcpy(d3, data, SIZE);
		d3[0] = 'Z';
		f3 = file_head(&b, d3, SIZE, C);
		sodium_bin2hex(hex3, sizeof(hex3), f3.sha256, 32);
		ASSERT_EQ(file_query(&h, &b, &f3, &j), 200);
		cJSON_Delete(j);
		for (uint32_t i = 0; i + 1 < N; i++)
			chunk_expect(&h, &b, &f3, d3, i, 200, &complete, &stored);
		len = file_chunk(&h, &b, f3, d3, N - 1, &msg);
		snprintf(path, sizeof(path), "%s/attachments/incoming/%s/%s/%08x", h.data, b.id->id,
			 hex3, (unsigned)(N - 1));
		write_file(path, msg, len, 0600);
		free(msg);
		ASSERT_EQ(file_query(&h, &b, &f3, &j), 200);
		ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(j, "complete")));
		cJSON_Delete(j);
		ASSERT_EQ(HQ_RUN(&h, &out, "attachment", "get", hex3), 0);
		ASSERT_TRUE(strlen(out) == SIZE && !memcmp(out, d3, SIZE));
		free(out);
		free(d3);
	}

	/* The quota (1 MiB): a holds 100,000 bytes; 1,000,000 more do not fit. */
	other = file_head(&a, wrong, SIZE, C);
	other.size = 1000000;
	ASSERT_EQ(file_query(&h, &a, &other, &j), 413);
	ASSERT_STR_EQ(json_str(j, "error"), "quota_exceeded");
	ASSERT_TRUE(strstr(json_str(j, "message"), "quota is 1.0 MB"));
	cJSON_Delete(j);
	/* Garbage, and a revoked device. */
	ASSERT_EQ(file_post(&h, (const uint8_t *)"FSFQ", 4, &j), 400);
	cJSON_Delete(j);
	ASSERT_EQ(HQ_RUN(&h, NULL, "revoke", a.id->id), 0);
	ASSERT_EQ(file_query(&h, &a, &fh, &j), 403);
	cJSON_Delete(j);
	/* Nothing of the files in the clear under the data directory. */
	ASSERT_TRUE(!(tree_holds(h.data, data + 5000, 48)));
	ASSERT_TRUE(!(tree_holds(h.data, wrong + 5000, 48)));
	identity_free(a.id);
	identity_free(b.id);
	free(data);
	free(wrong);
	hq_stop(&h);
	curl_global_cleanup();
}

/* Make upload hex of dev look idle for two days: begun, and its last
 * chunk come, then. */
static void upload_age(const struct hq *h, const char *dev, const char *hex)
{
	struct timespec t[2];
	char sql[300], dir[900];

	snprintf(sql, sizeof(sql),
		 "UPDATE uploads SET started_at = started_at - 172800000 WHERE device = '%s' AND "
		 "sha256 = '%s'",
		 dev, hex);
	hq_db_exec(h, sql);
	snprintf(dir, sizeof(dir), "%s/attachments/incoming/%s/%s", h->data, dev, hex);
	ASSERT_OK(clock_gettime(CLOCK_REALTIME, &t[0]));
	t[0].tv_sec -= 2 * 86400;
	t[1] = t[0];
	ASSERT_OK(utimensat(AT_FDCWD, dir, t, 0));
}

static int upload_kept(const struct hq *h, const char *dev, const char *hex)
{
	char dir[900];

	snprintf(dir, sizeof(dir), "%s/attachments/incoming/%s/%s", h->data, dev, hex);
	return access(dir, F_OK) == 0;
}

/* Uploads a device gave up on do not hold its quota or HQ's disk for
 * ever: begun, idle past [server] upload_idle_days, they are dropped
 * when the device begins another; `attachment sweep` drops them, those
 * of a revoked device and chunks no upload names; fresh ones stay. */
TEST(hq_files_abandoned_uploads_swept)
{
	enum { SIZE = 600000, C = FILEWIRE_CHUNK_MIN };
	struct filewire_head f1, f2, f3;
	struct device a, b;
	struct hq h;
	uint8_t *d1 = malloc(SIZE), *d2 = malloc(SIZE), sha[32];
	char hex1[65], hex2[65], hex3[65], ohex[65], path[900], *out = NULL;
	int complete = 0, stored = 0;
	cJSON *j = NULL;

	ASSERT_OK(curl_global_init(CURL_GLOBAL_DEFAULT));
	ASSERT_TRUE(d1 && d2);
	randombytes_buf(d1, SIZE);
	randombytes_buf(d2, SIZE);
	hq_init(&h, "hq", "[server]\nfile_quota_mib = 1\nupload_idle_days = 1\n", NULL);
	hq_start(&h);
	device_new(&a, "Tim Sjenica");
	device_new(&b, "Tim Tutin");
	device_enroll(&h, &a);
	device_enroll(&h, &b);
	f1 = file_head(&a, d1, SIZE, C);
	f2 = file_head(&a, d2, SIZE, C);
	f3 = file_head(&b, d1, SIZE, C);
	sodium_bin2hex(hex1, sizeof(hex1), f1.sha256, 32);
	sodium_bin2hex(hex2, sizeof(hex2), f2.sha256, 32);
	sodium_bin2hex(hex3, sizeof(hex3), f3.sha256, 32);

	/* a begins a file and sends two chunks; a second does not fit the
	 * 1 MiB quota beside it. */
	ASSERT_EQ(file_query(&h, &a, &f1, &j), 200);
	cJSON_Delete(j);
	chunk_expect(&h, &a, &f1, d1, 0, 200, &complete, &stored);
	chunk_expect(&h, &a, &f1, d1, 1, 200, &complete, &stored);
	ASSERT_EQ(file_query(&h, &a, &f2, &j), 413);
	cJSON_Delete(j);
	/* Still fresh: swept, nothing goes. */
	ASSERT_EQ(HQ_RUN(&h, &out, "attachment", "sweep"), 0);
	ASSERT_STR_CONTAINS(out, "dropped 0 uploads");
	free(out);
	ASSERT_TRUE(upload_kept(&h, a.id->id, hex1));
	/* Two days on, the first is given up: the second fits. */
	upload_age(&h, a.id->id, hex1);
	ASSERT_EQ(file_query(&h, &a, &f2, &j), 200);
	cJSON_Delete(j);
	ASSERT_TRUE(!upload_kept(&h, a.id->id, hex1));
	chunk_expect(&h, &a, &f2, d2, 0, 200, &complete, &stored);
	ASSERT_TRUE(stored);

	/* b begins one and is revoked; chunks of a no upload names, two
	 * days old. */
	ASSERT_EQ(file_query(&h, &b, &f3, &j), 200);
	cJSON_Delete(j);
	chunk_expect(&h, &b, &f3, d1, 0, 200, &complete, &stored);
	ASSERT_EQ(HQ_RUN(&h, NULL, "revoke", b.id->id), 0);
	randombytes_buf(sha, sizeof(sha));
	sodium_bin2hex(ohex, sizeof(ohex), sha, sizeof(sha));
	snprintf(path, sizeof(path), "%s/attachments/incoming/%s/%s", h.data, a.id->id, ohex);
	ASSERT_OK(mkdir(path, 0700));
	snprintf(path, sizeof(path), "%s/attachments/incoming/%s/%s/00000000", h.data, a.id->id,
		 ohex);
	write_file(path, "sealed", 6, 0600);
	upload_age(&h, a.id->id, ohex);
	ASSERT_EQ(HQ_RUN(&h, &out, "attachment", "sweep"), 0);
	ASSERT_STR_CONTAINS(out, "dropped 2 uploads");
	free(out);
	ASSERT_TRUE(!upload_kept(&h, b.id->id, hex3));
	ASSERT_TRUE(!upload_kept(&h, a.id->id, ohex));
	ASSERT_TRUE(upload_kept(&h, a.id->id, hex2));
	ASSERT_EQ(HQ_RUN(&h, &out, "attachment", "sweep"), 0);
	ASSERT_STR_CONTAINS(out, "dropped 0 uploads");
	free(out);
	/* The upload in progress goes on where it was. */
	ASSERT_EQ(file_query(&h, &a, &f2, &j), 200);
	ASSERT_EQ(cJSON_GetObjectItem(j, "held")->valuedouble, 1);
	cJSON_Delete(j);
	ASSERT_EQ(HQ_RUN(&h, &out, "audit", "list"), 0);
	ASSERT_EQ(count_in(out, "upload_dropped"), 3);
	ASSERT_EQ(count_in(out, "\"reason\":\"idle\""), 1);
	ASSERT_EQ(count_in(out, "\"reason\":\"revoked\""), 1);
	ASSERT_EQ(count_in(out, "\"reason\":\"unnamed\""), 1);
	free(out);
	identity_free(a.id);
	identity_free(b.id);
	free(d1);
	free(d2);
	hq_stop(&h);
	curl_global_cleanup();
}
