/* files.c - HQ's sealed store of attached files (hq/files.h).
 *
 * A file on disk: the secretstream header (24 bytes), then blocks, each a
 * 4-byte big-endian length and that many bytes of one sealed message;
 * every block's additional data is the file's hex name, so a file copied
 * under another name does not open.  The last block is empty and tagged
 * FINAL: a file cut short lacks it.
 */
#include "hq/files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/secmem.h"

#define KEY_CONTEXT "fsfiles1"
#define SEALED_MAX (HQFILES_BLOCK + crypto_secretstream_xchacha20poly1305_ABYTES)

struct hqfiles {
	/* Room left in a PATH_MAX for "/ab/.HEX.XXXXXX". */
	char dir[PATH_MAX - 128];
	uint8_t *key; /* secure memory */
};

static int valid_hex(const char *hex)
{
	return hex && strlen(hex) == HQFILES_HEX && strspn(hex, "0123456789abcdef") == HQFILES_HEX;
}

int hqfiles_open(const char *data_dir, const struct identity *hq, struct hqfiles **ret,
		 struct fs_error *err)
{
	struct hqfiles *f = calloc(1, sizeof(*f));

	*ret = NULL;
	if (!f || !(f->key = sodium_malloc(crypto_secretstream_xchacha20poly1305_KEYBYTES))) {
		free(f);
		return fs_error_set(err, -ENOMEM, "out of memory");
	}
	if ((size_t)snprintf(f->dir, sizeof(f->dir), "%s/%s", data_dir, HQFILES_DIR) >=
	    sizeof(f->dir)) {
		hqfiles_close(f);
		return fs_error_set(err, -ENAMETOOLONG, "attachments under %s: path too long",
				    data_dir);
	}
	if (mkdir(f->dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;

		hqfiles_close(f);
		return fs_error_set(err, -e, "attachments %s/%s: %s", data_dir, HQFILES_DIR,
				    strerror(e));
	}
	crypto_kdf_derive_from_key(f->key, crypto_secretstream_xchacha20poly1305_KEYBYTES, 1,
				   KEY_CONTEXT, hq->box_sk);
	*ret = f;
	return 0;
}

struct hqfiles *hqfiles_close(struct hqfiles *f)
{
	if (f) {
		sodium_free(f->key);
		free(f);
	}
	return NULL;
}

/* DIR/ab (the first two digits) into sub, and DIR/ab/HEX into path. */
static void paths(const struct hqfiles *f, const char *hex, char sub[PATH_MAX], char path[PATH_MAX])
{
	snprintf(sub, PATH_MAX, "%s/%.2s", f->dir, hex);
	snprintf(path, PATH_MAX, "%s/%.2s/%s", f->dir, hex, hex);
}

int hqfiles_has(const struct hqfiles *f, const char *hex)
{
	char sub[PATH_MAX], path[PATH_MAX];
	struct stat st;

	if (!valid_hex(hex))
		return 0;
	paths(f, hex, sub, path);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A stream's state and its plaintext block wiped, both buffers freed. */
static void forget(crypto_secretstream_xchacha20poly1305_state *st, uint8_t *m, uint8_t *c)
{
	sodium_memzero(st, sizeof(*st));
	if (m)
		sodium_memzero(m, HQFILES_BLOCK);
	free(m);
	free(c);
}

/* ---- writing ------------------------------------------------------------ */

static int put_block(FILE *out, crypto_secretstream_xchacha20poly1305_state *st, const char *hex,
		     const uint8_t *m, size_t mlen, uint8_t tag, uint8_t *c)
{
	unsigned long long clen = 0;
	uint8_t len[4];

	crypto_secretstream_xchacha20poly1305_push(st, c, &clen, m, mlen, (const uint8_t *)hex,
						   HQFILES_HEX, tag);
	len[0] = (uint8_t)(clen >> 24);
	len[1] = (uint8_t)(clen >> 16);
	len[2] = (uint8_t)(clen >> 8);
	len[3] = (uint8_t)clen;
	/* A full disk is said as such (HQ answers 503, the device retries). */
	return fwrite(len, 1, 4, out) == 4 && fwrite(c, 1, (size_t)clen, out) == clen
		       ? 0
		       : -(errno ? errno : EIO);
}

/* Seal in to tmp, hashing as it goes; the hash's hex into got. */
static int seal(const struct hqfiles *f, const char *hex, FILE *in, FILE *tmp,
		char got[HQFILES_HEX + 1])
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
	uint8_t digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state h;
	uint8_t *m = malloc(HQFILES_BLOCK), *c = malloc(SEALED_MAX);
	size_t n;
	int r = 0;

	if (!m || !c) {
		r = -ENOMEM;
		goto out;
	}
	crypto_hash_sha256_init(&h);
	crypto_secretstream_xchacha20poly1305_init_push(&st, header, f->key);
	if (fwrite(header, 1, sizeof(header), tmp) != sizeof(header)) {
		r = -(errno ? errno : EIO);
		goto out;
	}
	while (r == 0 && (n = fread(m, 1, HQFILES_BLOCK, in)) > 0) {
		crypto_hash_sha256_update(&h, m, n);
		r = put_block(tmp, &st, hex, m, n, 0, c);
	}
	if (r == 0 && ferror(in))
		r = -EIO;
	if (r == 0)
		r = put_block(tmp, &st, hex, NULL, 0,
			      crypto_secretstream_xchacha20poly1305_TAG_FINAL, c);
	crypto_hash_sha256_final(&h, digest);
	sodium_bin2hex(got, HQFILES_HEX + 1, digest, sizeof(digest));
out:
	forget(&st, m, c);
	return r;
}

int hqfiles_put(const struct hqfiles *f, const char *hex, FILE *in, struct fs_error *err)
{
	char sub[PATH_MAX], path[PATH_MAX], tmpl[PATH_MAX], got[HQFILES_HEX + 1];
	FILE *tmp = NULL;
	int fd = -1, dfd = -1, r;

	if (!valid_hex(hex))
		return fs_error_set(err, -FS_EUSAGE, "an attachment is named by 64 hex digits");
	if (hqfiles_has(f, hex))
		return 0;
	paths(f, hex, sub, path);
	if (mkdir(sub, 0700) == 0) {
		/* The new directory's name, synced, before a file is in it. */
		if ((dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			(void)!fsync(dfd);
			close(dfd);
			dfd = -1;
		}
	} else if (errno != EEXIST) {
		return fs_error_set(err, -errno, "attachment %.12s: %s", hex, strerror(errno));
	}
	snprintf(tmpl, sizeof(tmpl), "%s/%.2s/.%s.XXXXXX", f->dir, hex, hex);
	if ((fd = mkstemp(tmpl)) < 0)
		return fs_error_set(err, -errno, "attachment %.12s: %s", hex, strerror(errno));
	if (!(tmp = fdopen(fd, "w"))) {
		r = fs_error_set(err, -errno, "attachment %.12s: %s", hex, strerror(errno));
		close(fd);
		unlink(tmpl);
		return r;
	}
	r = seal(f, hex, in, tmp, got);
	if (r == 0 && (fflush(tmp) != 0 || fsync(fd) < 0))
		r = -errno;
	if (fclose(tmp) != 0 && r == 0)
		r = -(errno ? errno : EIO);
	if (r < 0) {
		unlink(tmpl);
		return fs_error_set(err, r, "attachment %.12s: %s", hex, strerror(-r));
	}
	if (strcmp(got, hex)) {
		unlink(tmpl);
		return fs_error_set(err, -FS_EVALID,
				    "attachment %.12s: the bytes do not hash to its name", hex);
	}
	/* The name appears only for a whole, synced file. */
	if (rename(tmpl, path) < 0) {
		r = fs_error_set(err, -errno, "attachment %.12s: %s", hex, strerror(errno));
		unlink(tmpl);
		return r;
	}
	if ((dfd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)!fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

int hqfiles_get(const struct hqfiles *f, const char *hex, FILE *out, struct fs_error *err)
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES], len[4];
	uint8_t digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state h;
	char sub[PATH_MAX], path[PATH_MAX], got[HQFILES_HEX + 1];
	uint8_t *m = NULL, *c = NULL, tag = 0;
	FILE *in = NULL;
	int r = 0;

	if (!valid_hex(hex))
		return fs_error_set(err, -FS_EUSAGE, "an attachment is named by 64 hex digits");
	paths(f, hex, sub, path);
	if (!(in = fopen(path, "re")))
		return errno == ENOENT
			       ? fs_error_set(err, -FS_ENOTFOUND, "no attachment %.12s at HQ", hex)
			       : fs_error_set(err, -errno, "attachment %.12s: %s", hex,
					      strerror(errno));
	if (!(m = malloc(HQFILES_BLOCK)) || !(c = malloc(SEALED_MAX))) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	crypto_hash_sha256_init(&h);
	if (fread(header, 1, sizeof(header), in) != sizeof(header) ||
	    crypto_secretstream_xchacha20poly1305_init_pull(&st, header, f->key) != 0)
		goto corrupt;
	while (tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
		unsigned long long mlen = 0;
		uint32_t clen;

		if (fread(len, 1, 4, in) != 4)
			goto corrupt;
		clen = (uint32_t)len[0] << 24 | (uint32_t)len[1] << 16 | (uint32_t)len[2] << 8 |
		       len[3];
		if (clen < crypto_secretstream_xchacha20poly1305_ABYTES || clen > SEALED_MAX ||
		    fread(c, 1, clen, in) != clen ||
		    crypto_secretstream_xchacha20poly1305_pull(
			    &st, m, &mlen, &tag, c, clen, (const uint8_t *)hex, HQFILES_HEX) != 0)
			goto corrupt;
		crypto_hash_sha256_update(&h, m, (size_t)mlen);
		if (mlen && fwrite(m, 1, (size_t)mlen, out) != mlen) {
			r = fs_error_set(err, -EIO, "write attachment %.12s: %s", hex,
					 strerror(errno));
			goto out;
		}
	}
	crypto_hash_sha256_final(&h, digest);
	sodium_bin2hex(got, sizeof(got), digest, sizeof(digest));
	/* Nothing after the final block, and the bytes are what the name says. */
	if (fgetc(in) != EOF || strcmp(got, hex))
		goto corrupt;
	goto out;
corrupt:
	r = fs_error_set(err, -FS_ECORRUPT,
			 "attachment %.12s at HQ: it fails its seal or its hash (altered, cut "
			 "short, or not HQ's)",
			 hex);
out:
	forget(&st, m, c);
	fclose(in);
	return r;
}

/* ---- files on their way ----------------------------------------------------- */

#define INCOMING "incoming"
/* Room for a chunk's path: dir is PATH_MAX - 128 at most, and the
 * compiler cannot know what fits. */
#define PART_PATH (PATH_MAX + 512)
/* ... and for a chunk in it: "/" and 8 hex digits more. */
#define PART_FILE (PART_PATH + 16)

static int valid_device(const char *device)
{
	return device && strlen(device) == 32 && strspn(device, "0123456789abcdef") == 32;
}

/* DIR/incoming/DEVICE/HEX into out; levels 1 to 3 (incoming, device, file). */
static int part_dir(const struct hqfiles *f, const char *device, const char *hex, int level,
		    char out[PART_PATH])
{
	if (!valid_device(device) || !valid_hex(hex))
		return -FS_EUSAGE;
	if (level == 1)
		snprintf(out, PART_PATH, "%s/%s", f->dir, INCOMING);
	else if (level == 2)
		snprintf(out, PART_PATH, "%s/%s/%s", f->dir, INCOMING, device);
	else
		snprintf(out, PART_PATH, "%s/%s/%s/%s", f->dir, INCOMING, device, hex);
	return 0;
}

static void part_path(const char *dir, uint32_t idx, char out[PART_FILE])
{
	snprintf(out, PART_FILE, "%s/%08x", dir, (unsigned)idx);
}

int hqfiles_part_put(const struct hqfiles *f, const char *device, const char *hex, uint32_t idx,
		     const uint8_t *msg, size_t len, struct fs_error *err)
{
	char dir[PART_PATH], path[PART_FILE], tmpl[PART_PATH + 32];
	struct stat st;
	int fd = -1, e;

	for (int level = 1; level <= 3; level++) {
		if (part_dir(f, device, hex, level, dir) < 0)
			return fs_error_set(err, -FS_EUSAGE, "a chunk is named by device and hash");
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return fs_error_set(err, -errno, "attachment %.12s: %s", hex,
					    strerror(errno));
	}
	part_path(dir, idx, path);
	if (stat(path, &st) == 0)
		return 0;
	snprintf(tmpl, sizeof(tmpl), "%s/.%08x.XXXXXX", dir, (unsigned)idx);
	if ((fd = mkstemp(tmpl)) < 0)
		return fs_error_set(err, -errno, "attachment %.12s: %s", hex, strerror(errno));
	for (size_t done = 0; done < len;) {
		ssize_t w = write(fd, msg + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto failed;
		done += (size_t)w;
	}
	/* Not synced: a chunk lost or cut short by a crash is found when the
	 * file is assembled (it fails its seal), and the chunks are dropped
	 * and sent again; a sync per chunk would cost more than that. */
	if (close(fd) < 0) {
		fd = -1;
		goto failed;
	}
	fd = -1;
	if (rename(tmpl, path) < 0)
		goto failed;
	return 1;
failed:
	e = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	unlink(tmpl);
	return fs_error_set(err, -e, "keep chunk %u of attachment %.12s: %s", (unsigned)idx, hex,
			    strerror(e));
}

/* The directory of hex's chunks from device, opened: 1 with *ret, 0
 * when there is none. */
static int open_parts(const struct hqfiles *f, const char *device, const char *hex,
		      char dir[PART_PATH], DIR **ret, struct fs_error *err)
{
	if (part_dir(f, device, hex, 3, dir) < 0)
		return fs_error_set(err, -FS_EUSAGE, "a chunk is named by device and hash");
	if (!(*ret = opendir(dir)))
		return errno == ENOENT ? 0
				       : fs_error_set(err, -errno, "attachment %.12s: %s", hex,
						      strerror(errno));
	return 1;
}

int hqfiles_part_has(const struct hqfiles *f, const char *device, const char *hex, uint32_t idx)
{
	char dir[PART_PATH], path[PART_FILE];
	struct stat st;

	if (part_dir(f, device, hex, 3, dir) < 0)
		return 0;
	part_path(dir, idx, path);
	return stat(path, &st) == 0;
}

int hqfiles_part_count(const struct hqfiles *f, const char *device, const char *hex, uint32_t n,
		       uint8_t *bitmap, uint32_t *ret_have, struct fs_error *err)
{
	char dir[PART_PATH];
	struct dirent *de;
	DIR *d;
	int r;

	*ret_have = 0;
	if (bitmap)
		memset(bitmap, 0, ((size_t)n + 7) / 8);
	if ((r = open_parts(f, device, hex, dir, &d, err)) <= 0)
		return r;
	while ((de = readdir(d))) {
		char *end;
		unsigned long idx;

		/* Temporary files start with a dot, and so do . and .. */
		if (de->d_name[0] == '.' || strlen(de->d_name) != 8)
			continue;
		idx = strtoul(de->d_name, &end, 16);
		if (*end || idx >= n)
			continue;
		if (bitmap)
			bitmap[idx / 8] |= (uint8_t)(1u << (idx % 8));
		(*ret_have)++;
	}
	closedir(d);
	return 0;
}

/* The chunks, opened in order, as one stream for hqfiles_put. */
struct part_reader {
	const char *dir;
	uint32_t n, next;
	hqfiles_open_fn open;
	void *ctx;
	uint8_t *msg, *plain;
	size_t plen, pos;
	struct fs_error *err;
	int failed;
};

static int part_load(struct part_reader *p)
{
	char path[PART_FILE];
	struct stat st;
	size_t len = 0;
	int fd, r;

	part_path(p->dir, p->next, path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return fs_error_set(p->err, -errno, "chunk %u: %s", (unsigned)p->next,
				    strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > HQFILES_PART_MAX + 4096) {
		close(fd);
		return fs_error_set(p->err, -FS_ECORRUPT, "chunk %u: not a chunk",
				    (unsigned)p->next);
	}
	while (len < (size_t)st.st_size) {
		ssize_t got = read(fd, p->msg + len, (size_t)st.st_size - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			close(fd);
			return fs_error_set(p->err, -EIO, "chunk %u: read error",
					    (unsigned)p->next);
		}
		len += (size_t)got;
	}
	close(fd);
	if ((r = p->open(p->ctx, p->next, p->msg, len, p->plain, &p->plen, p->err)) < 0)
		return r;
	p->pos = 0;
	p->next++;
	return 0;
}

static ssize_t part_read(void *cookie, char *buf, size_t size)
{
	struct part_reader *p = cookie;
	size_t n;

	while (p->pos == p->plen) {
		if (p->next == p->n)
			return 0;
		if (part_load(p) < 0) {
			p->failed = 1;
			errno = EIO;
			return -1;
		}
	}
	n = p->plen - p->pos < size ? p->plen - p->pos : size;
	memcpy(buf, p->plain + p->pos, n);
	p->pos += n;
	return (ssize_t)n;
}

int hqfiles_part_finish(const struct hqfiles *f, const char *device, const char *hex, uint32_t n,
			hqfiles_open_fn open_fn, void *ctx, struct fs_error *err)
{
	static const cookie_io_functions_t io = { .read = part_read };
	char dir[PART_PATH];
	struct part_reader p = { .dir = dir, .n = n, .open = open_fn, .ctx = ctx, .err = err };
	struct fs_error inner = { 0 };
	struct secmem_stream in = { 0 };
	int r;

	if (part_dir(f, device, hex, 3, dir) < 0)
		return fs_error_set(err, -FS_EUSAGE, "a chunk is named by device and hash");
	if (!(p.msg = malloc(HQFILES_PART_MAX + 4096)) || !(p.plain = malloc(HQFILES_PART_MAX)) ||
	    secmem_stream_take(&in, fopencookie(&p, "r", io), HQFILES_BLOCK) < 0) {
		r = fs_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	r = hqfiles_put(f, hex, in.fp, &inner);
	if (p.failed) {
		r = err->code < 0 ? err->code : -EIO;
		goto out;
	}
	*err = inner;
	if (r == 0 || r == -FS_EVALID) {
		int d = hqfiles_part_drop(f, device, hex, &inner);

		if (r == 0 && d < 0) {
			*err = inner;
			r = d;
		}
	}
out:
	secmem_stream_close(&in);
	if (p.plain)
		sodium_memzero(p.plain, HQFILES_PART_MAX);
	free(p.plain);
	free(p.msg);
	return r;
}

int hqfiles_part_drop(const struct hqfiles *f, const char *device, const char *hex,
		      struct fs_error *err)
{
	char dir[PART_PATH];
	struct dirent *de;
	DIR *d;
	int r;

	if ((r = open_parts(f, device, hex, dir, &d, err)) <= 0)
		return r;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return fs_error_set(err, -errno, "attachment %.12s: %s", hex, strerror(errno));
	/* The device's directory goes when it holds nothing more. */
	if (part_dir(f, device, hex, 2, dir) == 0)
		(void)rmdir(dir);
	return 0;
}

static int64_t mtime_ms(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

int64_t hqfiles_part_touched(const struct hqfiles *f, const char *device, const char *hex)
{
	char dir[PART_PATH];
	struct stat st;

	if (part_dir(f, device, hex, 3, dir) < 0 || stat(dir, &st) < 0)
		return 0;
	return mtime_ms(&st);
}

/* Add device/hex (when they are names) to the list, with its time. */
static int list_add(DIR *devdir, const char *device, const char *hex, struct hqfiles_parts **list,
		    size_t *n, size_t *cap)
{
	struct hqfiles_parts *p;
	struct stat st;

	if (!valid_device(device) || !valid_hex(hex) ||
	    fstatat(dirfd(devdir), hex, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;

		if (!(p = realloc(*list, c * sizeof(*p))))
			return -ENOMEM;
		*list = p;
		*cap = c;
	}
	p = &(*list)[(*n)++];
	memcpy(p->device, device, sizeof(p->device));
	memcpy(p->hex, hex, sizeof(p->hex));
	p->touched_ms = mtime_ms(&st);
	return 0;
}

int hqfiles_part_list(const struct hqfiles *f, struct hqfiles_parts **ret, size_t *ret_n,
		      struct fs_error *err)
{
	char top[PART_PATH];
	struct hqfiles_parts *list = NULL;
	struct dirent *de, *fe;
	size_t n = 0, cap = 0;
	DIR *d = NULL, *dd = NULL;
	int r = 0, fd;

	*ret = NULL;
	*ret_n = 0;
	snprintf(top, sizeof(top), "%s/%s", f->dir, INCOMING);
	if (!(d = opendir(top)))
		return errno == ENOENT
			       ? 0
			       : fs_error_set(err, -errno, "read %s: %s", top, strerror(errno));
	while (r == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.' || !valid_device(de->d_name))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || !(dd = fdopendir(fd))) {
			if (fd >= 0)
				close(fd);
			continue; /* gone since, or not a directory */
		}
		while (r == 0 && (fe = readdir(dd)))
			if (fe->d_name[0] != '.')
				r = list_add(dd, de->d_name, fe->d_name, &list, &n, &cap);
		closedir(dd);
	}
	closedir(d);
	if (r < 0) {
		free(list);
		return fs_error_set(err, r, "out of memory");
	}
	*ret = list;
	*ret_n = n;
	return 0;
}
