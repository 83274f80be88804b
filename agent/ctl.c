/* ctl.c - control socket framing (see ctl.h for the format). */
#include "agent/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "crypto/bytes.h"

static int socket_address(const char *path, struct sockaddr_un *sa, struct fs_error *err)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return fs_error_set(err, -ENAMETOOLONG,
				    "agent socket %s: path longer than %zu bytes", path,
				    sizeof(sa->sun_path) - 1);
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* A directory only this user can enter or change: its own, not a link,
 * no group or other bits.  Anyone else who could write there could put a
 * socket of theirs in the agent's place and be given the passphrase. */
static int private_dir(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       (st.st_mode & 077) == 0;
}

/* $XDG_RUNTIME_DIR when it applies: not root, absolute, and private (one
 * inherited through su, another user's, is not). */
static const char *user_runtime_dir(void)
{
	const char *d = getenv("XDG_RUNTIME_DIR");

	return geteuid() != 0 && d && d[0] == '/' && private_dir(d) ? d : NULL;
}

int ctl_default_socket(char buf[CTL_PATH_MAX], struct fs_error *err)
{
	const char *d = user_runtime_dir();
	int n;

	if (!d) {
		memcpy(buf, CTL_SYSTEM_SOCKET, sizeof(CTL_SYSTEM_SOCKET));
		return 0;
	}
	n = snprintf(buf, CTL_PATH_MAX, "%s/" CTL_USER_SOCKET, d);
	if (n < 0 || n >= CTL_PATH_MAX)
		return fs_error_set(err, -ENAMETOOLONG,
				    "agent socket: $XDG_RUNTIME_DIR is longer "
				    "than a socket path allows; set [agent] socket");
	return 0;
}

void ctl_find_socket(char buf[CTL_PATH_MAX])
{
	struct fs_error err = { 0 };
	int fd;

	/* An agent answers there; a socket left by one killed does not. */
	if (ctl_default_socket(buf, &err) == 0 && ctl_connect(buf, &fd, &err) == 0) {
		close(fd);
		return;
	}
	memcpy(buf, CTL_SYSTEM_SOCKET, sizeof(CTL_SYSTEM_SOCKET));
}

/* The user default's directory, $XDG_RUNTIME_DIR/fieldsync, made private
 * if missing.  Other paths' directories are the caller's to make. */
static int make_user_dir(const char *path, struct fs_error *err)
{
	char dir[CTL_PATH_MAX], want[CTL_PATH_MAX];
	const char *d = user_runtime_dir();
	char *slash;

	if (!d || snprintf(want, sizeof(want), "%s/" CTL_USER_SOCKET, d) >= (int)sizeof(want) ||
	    strcmp(path, want) != 0)
		return 0;
	memcpy(dir, want, sizeof(want));
	slash = strrchr(dir, '/');
	*slash = '\0';
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fs_error_set(err, -errno, "agent socket %s: create %s: %s", path, dir,
				    strerror(errno));
	if (!private_dir(dir))
		return fs_error_set(err, -EPERM,
				    "agent socket %s: %s is not a directory of "
				    "this user's alone (mode 0700, not a link); remove it, or set "
				    "[agent] socket",
				    path, dir);
	return 0;
}

/* bind()'s ENOENT is a missing directory: say which, and the ways to
 * have it. */
static int bind_failed(const char *path, int e, struct fs_error *err)
{
	char dir[CTL_PATH_MAX];
	char *slash;

	if (e != ENOENT)
		return fs_error_set(err, -e, "agent socket %s: bind: %s", path, strerror(e));
	memcpy(dir, path, strlen(path) + 1);
	slash = strrchr(dir, '/');
	if (slash && slash != dir)
		*slash = '\0';
	else
		memcpy(dir, ".", 2);
	return fs_error_set(err, -e,
			    "agent socket %s: directory %s does not exist; create it "
			    "(as a service, systemd's RuntimeDirectory=fieldsync does), or set "
			    "[agent] socket to a path in a directory this user can write",
			    path, dir);
}

int ctl_listen(const char *path, gid_t gid, struct fs_error *err)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd = -1, r;

	if ((r = socket_address(path, &sa, err)) < 0 || (r = make_user_dir(path, err)) < 0)
		return r;
	/* A socket left by an agent that was killed is replaced; a file of
	 * any other kind is somebody else's and stays. */
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode))
			return fs_error_set(err, -EEXIST,
					    "agent socket %s: exists and is not a socket", path);
		/* Stale only if nobody answers: never take the socket of an
		 * agent that is running. */
		if (ctl_connect(path, &probe, err) == 0) {
			close(probe);
			return fs_error_set(err, -EADDRINUSE,
					    "agent socket %s: another agent is "
					    "running",
					    path);
		}
		if (unlink(path) < 0)
			return fs_error_set(err, -errno, "agent socket %s: remove stale socket: %s",
					    path, strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fs_error_set(err, -errno, "agent socket %s: %s", path, strerror(errno));
	/* Created 0600 and only then opened up to the group, so there is no
	 * moment at which others could connect. */
	{
		mode_t old = umask(0177);

		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
	}
	if (r < 0) {
		r = bind_failed(path, errno, err);
		close(fd);
		return r; /* nothing of ours at path to unlink */
	}
	if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) {
		r = fs_error_set(err, -errno, "agent socket %s: set group %u: %s", path,
				 (unsigned)gid, strerror(errno));
		goto fail;
	}
	if (chmod(path, 0660) < 0 || listen(fd, 16) < 0) {
		r = fs_error_set(err, -errno, "agent socket %s: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	unlink(path);
	return r;
}

int ctl_connect(const char *path, int *ret_fd, struct fs_error *err)
{
	struct sockaddr_un sa;
	int fd, r;

	if ((r = socket_address(path, &sa, err)) < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fs_error_set(err, -errno, "agent socket %s: %s", path, strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		if (r == -ENOENT || r == -ECONNREFUSED)
			return r;
		return fs_error_set(err, r, "connect to the agent at %s: %s", path, strerror(-r));
	}
	*ret_fd = fd;
	return 0;
}

/* To a socket (no SIGPIPE) or, for the client's output, to any fd. */
static int write_all_how(int fd, const uint8_t *p, size_t len, int sock)
{
	while (len > 0) {
		ssize_t n = sock ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	return write_all_how(fd, p, len, 1);
}

int ctl_send(int fd, enum ctl_type type, const void *payload, size_t len, const int *fds,
	     size_t nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FILES)];
	} ctrl;
	uint8_t hdr[CTL_HEADER];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)payload, len } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	ssize_t n;

	if (len > UINT32_MAX || nfds > CTL_MAX_FILES)
		return -EMSGSIZE;
	hdr[0] = (uint8_t)type;
	bytes_put_be(hdr + 1, len, 4);
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctrl, 0, sizeof(ctrl));
		msg.msg_control = ctrl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	/* The descriptors ride on the first byte; the rest may follow in
	 * further writes. */
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(hdr)) {
		int r = write_all(fd, hdr + n, sizeof(hdr) - (size_t)n);

		return r < 0 ? r : write_all(fd, payload, len);
	}
	return write_all(fd, (const uint8_t *)payload + ((size_t)n - sizeof(hdr)),
			 len - ((size_t)n - sizeof(hdr)));
}

static int read_all(int fd, uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_client_answer(int fd, int out_fd, int err_fd, int *ret_status)
{
	static uint8_t buf[CTL_CHUNK];
	uint8_t hdr[CTL_HEADER];
	int r;

	for (;;) {
		size_t len;

		if ((r = read_all(fd, hdr, sizeof(hdr))) < 0)
			return r;
		len = (size_t)bytes_get_be(hdr + 1, 4);
		if (len > CTL_CHUNK)
			return -EPROTO;
		if ((r = read_all(fd, buf, len)) < 0)
			return r;
		switch (hdr[0]) {
		case CTL_STDOUT:
		case CTL_STDERR:
			/* A closed pipe on our side must not lose the exit
			 * status; keep reading. */
			(void)!write_all_how(hdr[0] == CTL_STDOUT ? out_fd : err_fd, buf, len, 0);
			break;
		case CTL_EXIT:
			if (len != 1)
				return -EPROTO;
			*ret_status = buf[0];
			return 0;
		default:
			return -EPROTO;
		}
	}
}

int ctl_build_command(int argc, char *const argv[], const unsigned *file_index, size_t nfiles,
		      uint8_t *buf, size_t cap, size_t *ret_len)
{
	size_t n = 3 + 2 * nfiles;

	if (argc < 1 || argc > 0xffff || nfiles > CTL_MAX_FILES || n > cap)
		return -EMSGSIZE;
	bytes_put_be(buf, (uint64_t)argc, 2);
	buf[2] = (uint8_t)nfiles;
	for (size_t i = 0; i < nfiles; i++)
		bytes_put_be(buf + 3 + 2 * i, file_index[i], 2);
	for (int i = 0; i < argc; i++) {
		size_t len = strlen(argv[i]) + 1;

		if (len > cap - n)
			return -EMSGSIZE;
		memcpy(buf + n, argv[i], len);
		n += len;
	}
	*ret_len = n;
	return 0;
}

int ctl_parse_command(const uint8_t *payload, size_t len, size_t nfds, int *ret_argc,
		      char ***ret_argv, unsigned file_index[CTL_MAX_FILES])
{
	size_t argc, nfiles, off;
	char **argv;

	if (len < 3)
		return -EPROTO;
	argc = (size_t)bytes_get_be(payload, 2);
	nfiles = payload[2];
	if (argc < 1 || nfiles != nfds || nfiles > CTL_MAX_FILES || len < 3 + 2 * nfiles)
		return -EPROTO;
	off = 3 + 2 * nfiles;
	argv = calloc(argc + 1, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	for (size_t i = 0; i < argc; i++) {
		const uint8_t *nul = off < len ? memchr(payload + off, '\0', len - off) : NULL;

		if (!nul) {
			free(argv);
			return -EPROTO;
		}
		argv[i] = (char *)(payload + off);
		off = (size_t)(nul - payload) + 1;
	}
	for (size_t i = 0; i < nfiles; i++) {
		file_index[i] = (unsigned)bytes_get_be(payload + 3 + 2 * i, 2);
		if (file_index[i] >= argc) {
			free(argv);
			return -EPROTO;
		}
	}
	if (off != len) {
		free(argv);
		return -EPROTO;
	}
	*ret_argc = (int)argc;
	*ret_argv = argv;
	return 0;
}
