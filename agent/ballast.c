/* ballast.c - room on the data directory's disk kept for delivery
 * (ballast.h).
 *
 * Sections: the file; holding; dropping and restoring; state.
 */
#include "agent/ballast.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

struct ballast {
	int fd;	       /* -1 until first used */
	int dropped;   /* we hold LOCK_EX and the room is the sync path's */
	uint64_t want; /* configured size */
	char path[PATH_MAX];
	char dir[PATH_MAX];
};

#define BALLAST_ALIGN 4096u

/* ---- the file ------------------------------------------------------------ */

int ballast_new(const char *data_dir, uint64_t bytes, struct ballast **ret, struct fs_error *err)
{
	struct ballast *b = calloc(1, sizeof(*b));

	if (!b)
		return fs_error_set(err, -ENOMEM, "disk ballast in %s: out of memory", data_dir);
	b->fd = -1;
	b->want = bytes ? bytes : BALLAST_DEFAULT_BYTES;
	if ((size_t)snprintf(b->path, sizeof(b->path), "%s/%s", data_dir, BALLAST_FILE) >=
		    sizeof(b->path) ||
	    (size_t)snprintf(b->dir, sizeof(b->dir), "%s", data_dir) >= sizeof(b->dir)) {
		free(b);
		return fs_error_set(err, -ENAMETOOLONG, "data directory %s: path too long",
				    data_dir);
	}
	*ret = b;
	return 0;
}

struct ballast *ballast_free(struct ballast *b)
{
	if (!b)
		return NULL;
	if (b->fd >= 0)
		close(b->fd); /* drops the lock with it */
	free(b);
	return NULL;
}

/* The disk-full wording is dberr.c's, so every full disk reads the same. */
static int disk_fail(const struct ballast *b, int e, const char *what, struct fs_error *err)
{
	if (e == ENOSPC || e == EDQUOT)
		return fs_error_set(err, -ENOSPC,
				    "%s %s: the disk is full (%s); nothing was changed: free some "
				    "space and try again",
				    what, b->path,
				    e == EDQUOT ? "quota exceeded" : "no space left");
	if (e == EROFS)
		return fs_error_set(err, -EROFS,
				    "%s %s: the file system is read-only; nothing was "
				    "changed",
				    what, b->path);
	return fs_error_set(err, -EIO, "%s %s: %s; nothing was changed", what, b->path,
			    strerror(e));
}

static int ballast_open(struct ballast *b, struct fs_error *err)
{
	struct stat dir;

	if (b->fd >= 0)
		return 0;
	b->fd = open(b->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (b->fd < 0)
		return disk_fail(b, errno, "keep room on disk:", err);
	/* Root writing to the service's store (fieldsync --data-dir as root)
	 * must not leave a file the service cannot open: like SQLite with its
	 * journals, give it to the data directory's owner. */
	if (geteuid() == 0 && stat(b->dir, &dir) == 0 &&
	    fchown(b->fd, dir.st_uid, dir.st_gid) != 0) {
		/* Best effort: a file root keeps is only a reserve the
		 * service cannot hold; its writes say so. */
	}
	return 0;
}

/* The configured size, capped so that a small disk is not all ballast. */
static uint64_t ballast_target(const struct ballast *b)
{
	struct statvfs fs;
	uint64_t cap;

	if ((b->fd >= 0 ? fstatvfs(b->fd, &fs) : statvfs(b->dir, &fs)) != 0)
		return b->want;
	cap = (uint64_t)fs.f_blocks * fs.f_frsize / BALLAST_DISK_FRACTION;
	cap -= cap % BALLAST_ALIGN;
	return cap < b->want ? cap : b->want;
}

uint64_t ballast_size(const struct ballast *b)
{
	return ballast_target(b);
}

/* Bytes the file really has on disk: its size, if its blocks are there. */
static uint64_t ballast_held(int fd)
{
	struct stat st;
	uint64_t size, blocks;

	if (fstat(fd, &st) != 0)
		return 0;
	size = (uint64_t)st.st_size;
	blocks = (uint64_t)st.st_blocks * 512;
	return blocks < size ? blocks : size;
}

/* Grow the file to target with its blocks allocated; on failure it is put
 * back to the size it had.  Returns 0 or an errno. */
static int ballast_fill(struct ballast *b, uint64_t target)
{
	struct stat st;
	int e;

	if (fstat(b->fd, &st) != 0)
		return errno;
	e = posix_fallocate(b->fd, 0, (off_t)target);
	if (e && ftruncate(b->fd, st.st_size) != 0) {
		/* Nothing more to do: the file is ours, and zeros. */
	}
	return e;
}

/* ---- holding ------------------------------------------------------------- */

int ballast_hold(struct ballast *b, struct fs_error *err)
{
	uint64_t target;
	int r, e;

	if ((r = ballast_open(b, err)) < 0)
		return r;
	target = ballast_target(b);
	if (ballast_held(b->fd) >= target)
		return 0;
	/* Short: a sync path dropped it (and holds LOCK_EX), or the disk had
	 * no room when it was last restored. */
	if (b->dropped || flock(b->fd, LOCK_SH | LOCK_NB) != 0) {
		if (!b->dropped && errno != EWOULDBLOCK)
			return disk_fail(b, errno, "keep room on disk: lock", err);
		return fs_error_set(
			err, -ENOSPC,
			"keep room on disk: %s: the disk is full (the room kept for "
			"sending to HQ is in use); nothing was changed: free some space "
			"and try again",
			b->path);
	}
	e = ballast_fill(b, target);
	(void)flock(b->fd, LOCK_UN);
	if (e)
		return disk_fail(b, e, "keep room on disk:", err);
	return 0;
}

/* ---- dropping and restoring --------------------------------------------- */

int ballast_drop(struct ballast *b, struct fs_error *err)
{
	int r;

	if (b->dropped)
		return 0;
	if ((r = ballast_open(b, err)) < 0)
		return r;
	/* Waits only for a hold in progress or another sync path. */
	while (flock(b->fd, LOCK_EX) != 0)
		if (errno != EINTR)
			return disk_fail(b, errno, "free disk room: lock", err);
	if (ftruncate(b->fd, 0) != 0) {
		r = disk_fail(b, errno, "free disk room: truncate", err);
		(void)flock(b->fd, LOCK_UN);
		return r;
	}
	b->dropped = 1;
	return 0;
}

void ballast_restore(struct ballast *b)
{
	uint64_t want;

	if (!b || !b->dropped)
		return;
	/* As much as fits, halving: a partial ballast still keeps room, and
	 * ballast_hold() refuses local writes until the whole of it fits. */
	for (want = ballast_target(b); want >= BALLAST_ALIGN; want /= 2) {
		want -= want % BALLAST_ALIGN;
		if (posix_fallocate(b->fd, 0, (off_t)want) == 0)
			break;
	}
	(void)flock(b->fd, LOCK_UN);
	b->dropped = 0;
}

/* ---- state --------------------------------------------------------------- */

/* Looks only: never creates the file (status may run as another user). */
int ballast_state(struct ballast *b, struct ballast_state *ret, struct fs_error *err)
{
	struct statvfs fs;
	int fd = b->fd, in_use = b->dropped;

	memset(ret, 0, sizeof(*ret));
	if (fd < 0 && (fd = open(b->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 &&
	    errno != ENOENT)
		return disk_fail(b, errno, "look at the room kept on disk:", err);
	if (fd >= 0 && !in_use) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0)
			(void)flock(fd, LOCK_UN);
		else
			in_use = errno == EWOULDBLOCK;
	}
	ret->target = ballast_target(b);
	if (fd >= 0)
		ret->held = ballast_held(fd);
	ret->in_use = in_use;
	if (statvfs(b->dir, &fs) == 0)
		ret->disk_free = (uint64_t)fs.f_bavail * fs.f_frsize;
	if (fd >= 0 && fd != b->fd)
		close(fd);
	return 0;
}
