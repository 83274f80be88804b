/* keyfile.c - durable, permission-checked, versioned key files.
 *
 * Sections: durable write; guarded read; the container format.
 */
#include "crypto/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "crypto/bytes.h"
#include "crypto/secmem.h"

/* ---- durable write ---------------------------------------------------- */

static int fsync_parent_dir(const char *path)
{
	char buf[PATH_MAX];
	int fd, r = 0;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int keyfile_write_atomic(const char *path, const uint8_t *data, size_t n, unsigned mode, int flags,
			 struct fs_error *err)
{
	char tmp[PATH_MAX];
	int fd = -1, r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return fs_error_set(err, -ENAMETOOLONG, "write %s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
	if (fd < 0) {
		r = -errno;
		fs_error_set(err, r, "write %s: create temporary file: %s", path, strerror(-r));
		return r;
	}
	/* The umask must not widen or narrow what we asked for. */
	if (fchmod(fd, (mode_t)mode) < 0 || (r = write_all(fd, data, n)) < 0 || fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		fs_error_set(err, r, "write %s: %s", tmp, strerror(-r));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		fs_error_set(err, r, "write %s: close: %s", tmp, strerror(-r));
		goto out;
	}
	fd = -1;
	if (flags & KEYFILE_NO_REPLACE)
		r = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0 ? -errno : 0;
	else
		r = rename(tmp, path) < 0 ? -errno : 0;
	if (r < 0) {
		if (r == -EEXIST)
			fs_error_set(err, -FS_EEXIST, "write %s: file exists, not replacing it",
				     path);
		else
			fs_error_set(err, r, "write %s: rename: %s", path, strerror(-r));
		if (r == -EEXIST)
			r = -FS_EEXIST;
		goto out;
	}
	r = fsync_parent_dir(path);
	if (r < 0)
		fs_error_set(err, r, "write %s: fsync directory: %s", path, strerror(-r));
	return r;
out:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

/* ---- guarded read ----------------------------------------------------- */

/* Read a whole small secret file into secure memory after checking that
 * nobody else may read it. */
static int read_guarded(const char *path, size_t max, uint8_t **ret_buf, size_t *ret_len,
			struct fs_error *err)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		return fs_error_set(err, r, "read key %s: %s", path, strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		fs_error_set(err, r, "read key %s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = fs_error_set(err, -FS_EFORMAT, "read key %s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		r = fs_error_set(err, -FS_EKEYPERM,
				 "read key %s: mode %04o lets other users access it; "
				 "refusing it (chmod 600 %s)",
				 path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if ((size_t)st.st_size > max) {
		r = fs_error_set(err, -FS_ELIMIT,
				 "read key %s: %lld bytes, more than the %zu allowed", path,
				 (long long)st.st_size, max);
		goto out;
	}
	buf = secmem_alloc(max + 1);
	if (!buf) {
		r = fs_error_set(err, -ENOMEM, "read key %s: out of secure memory", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, max + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			fs_error_set(err, r, "read key %s: %s", path, strerror(-r));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > max) {
			r = fs_error_set(err, -FS_ELIMIT, "read key %s: grew past %zu bytes", path,
					 max);
			goto out;
		}
	}
	*ret_buf = buf;
	*ret_len = got;
	buf = NULL;
	r = 0;
out:
	secmem_free(buf);
	close(fd);
	return r;
}

/* ---- the container ---------------------------------------------------- */

int keyfile_write(const char *path, uint8_t kind, const uint8_t *payload, size_t n, int flags,
		  struct fs_error *err)
{
	size_t total = KEYFILE_HEADER_BYTES + n + KEYFILE_CHECK_BYTES;
	uint8_t *buf;
	int r;

	if (n == 0 || n > KEYFILE_MAX_PAYLOAD)
		return fs_error_set(err, -FS_ELIMIT, "write key %s: payload of %zu bytes", path, n);
	buf = secmem_alloc(total);
	if (!buf)
		return fs_error_set(err, -ENOMEM, "write key %s: out of secure memory", path);
	memcpy(buf, KEYFILE_MAGIC, 8);
	buf[8] = KEYFILE_VERSION;
	buf[9] = kind;
	bytes_put_be(buf + 10, n, 2);
	memcpy(buf + KEYFILE_HEADER_BYTES, payload, n);
	crypto_generichash(buf + KEYFILE_HEADER_BYTES + n, KEYFILE_CHECK_BYTES, buf,
			   KEYFILE_HEADER_BYTES + n, NULL, 0);
	r = keyfile_write_atomic(path, buf, total, 0600, flags, err);
	secmem_free(buf);
	return r;
}

int keyfile_read(const char *path, uint8_t kind, uint8_t **ret_payload, size_t *ret_len,
		 struct fs_error *err)
{
	uint8_t check[KEYFILE_CHECK_BYTES], *buf = NULL, *payload = NULL;
	size_t len, n;
	int r;

	r = read_guarded(path, KEYFILE_HEADER_BYTES + KEYFILE_MAX_PAYLOAD + KEYFILE_CHECK_BYTES,
			 &buf, &len, err);
	if (r < 0)
		return r;
	if (len < KEYFILE_HEADER_BYTES + KEYFILE_CHECK_BYTES + 1 ||
	    memcmp(buf, KEYFILE_MAGIC, 8) != 0) {
		r = fs_error_set(err, -FS_EFORMAT, "read key %s: not a fieldsync key file", path);
		goto out;
	}
	if (buf[8] != KEYFILE_VERSION) {
		r = fs_error_set(err, -FS_EFORMAT, "read key %s: unsupported version %u", path,
				 buf[8]);
		goto out;
	}
	if (buf[9] != kind) {
		r = fs_error_set(err, -FS_EFORMAT, "read key %s: holds key kind %u, expected %u",
				 path, buf[9], kind);
		goto out;
	}
	n = (size_t)bytes_get_be(buf + 10, 2);
	if (n == 0 || n > KEYFILE_MAX_PAYLOAD ||
	    len != KEYFILE_HEADER_BYTES + n + KEYFILE_CHECK_BYTES) {
		r = fs_error_set(err, -FS_EFORMAT, "read key %s: truncated or wrong length", path);
		goto out;
	}
	crypto_generichash(check, sizeof(check), buf, KEYFILE_HEADER_BYTES + n, NULL, 0);
	if (sodium_memcmp(check, buf + KEYFILE_HEADER_BYTES + n, sizeof(check)) != 0) {
		r = fs_error_set(err, -FS_ECORRUPT, "read key %s: checksum mismatch (damaged file)",
				 path);
		goto out;
	}
	r = secmem_dup(buf + KEYFILE_HEADER_BYTES, n, &payload);
	if (r < 0) {
		fs_error_set(err, r, "read key %s: out of secure memory", path);
		goto out;
	}
	*ret_payload = payload;
	*ret_len = n;
out:
	secmem_free(buf);
	return r;
}

int keyfile_read_passphrase(const char *path, char **ret_pass, size_t *ret_len,
			    struct fs_error *err)
{
	uint8_t *buf = NULL;
	size_t len, n;
	char *pass;
	int r;

	r = read_guarded(path, 1024, &buf, &len, err);
	if (r < 0)
		return r;
	for (n = 0; n < len && buf[n] != '\n' && buf[n] != '\r'; n++)
		;
	if (n == 0) {
		secmem_free(buf);
		return fs_error_set(err, -FS_EFORMAT, "read passphrase %s: empty", path);
	}
	pass = secmem_alloc(n + 1);
	if (!pass) {
		secmem_free(buf);
		return fs_error_set(err, -ENOMEM, "read passphrase %s: out of secure memory", path);
	}
	memcpy(pass, buf, n);
	pass[n] = '\0';
	secmem_free(buf);
	*ret_pass = pass;
	*ret_len = n;
	return 0;
}
