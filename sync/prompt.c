/* prompt.c - no-echo passphrase prompt on /dev/tty. */
#include "sync/prompt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "crypto/secmem.h"

static int tty_fd = -1;
static struct termios saved;

static void restore_and_reraise(int sig)
{
	if (tty_fd >= 0)
		tcsetattr(tty_fd, TCSAFLUSH, &saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

int prompt_passphrase(const char *question, char **ret_pass, size_t *ret_len, struct fs_error *err)
{
	struct sigaction sa = { .sa_handler = restore_and_reraise }, old_int, old_term;
	struct termios quiet;
	char *buf = NULL;
	size_t n = 0;
	int r = 0;

	tty_fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (tty_fd < 0)
		return fs_error_set(err, -ENOTTY,
				    "no terminal to ask for the passphrase "
				    "(use --passphrase-file or --key-file)");
	buf = secmem_alloc(PROMPT_MAX + 1);
	if (!buf) {
		r = fs_error_set(err, -ENOMEM, "out of secure memory");
		goto out_fd;
	}
	if (tcgetattr(tty_fd, &saved) < 0) {
		r = fs_error_set(err, -errno, "terminal: %s", strerror(errno));
		goto out_fd;
	}
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	quiet = saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	if (write(tty_fd, question, strlen(question)) < 0 ||
	    tcsetattr(tty_fd, TCSAFLUSH, &quiet) < 0) {
		r = fs_error_set(err, -errno, "terminal: %s", strerror(errno));
		goto out_restore;
	}
	for (;;) {
		char c;
		ssize_t got = read(tty_fd, &c, 1);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || c == '\n' || c == '\r')
			break;
		if (n == PROMPT_MAX) {
			r = fs_error_set(err, -FS_ELIMIT, "passphrase longer than %d bytes",
					 PROMPT_MAX);
			break;
		}
		buf[n++] = c;
	}
	buf[n] = '\0';
	if (r == 0 && n == 0)
		r = fs_error_set(err, -FS_EFORMAT, "empty passphrase");
out_restore:
	tcsetattr(tty_fd, TCSAFLUSH, &saved);
	if (write(tty_fd, "\n", 1) < 0) {
		/* nothing useful to do: the answer is read already */
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
out_fd:
	close(tty_fd);
	tty_fd = -1;
	if (r < 0) {
		secmem_free(buf);
		return r;
	}
	*ret_pass = buf;
	*ret_len = n;
	return 0;
}
