/* cli.c - the `fieldsync` command line for field teams.
 *
 * Parses the global options, then runs the command here or hands it to
 * the running agent (agent/ctl.h), which holds the store key, so a field
 * worker types no passphrase per command.  The commands themselves are
 * in agent/commands.c; `agent` is agent/daemon.c.
 *
 * A command goes to the agent when the agent's socket answers and no
 * --data-dir, --passphrase-file or --key-file was given: those name a
 * store or a secret explicitly, and are served here.  With no agent
 * running, commands open the store themselves as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "agent/cmd.h"
#include "agent/commands.h"
#include "agent/ctl.h"
#include "agent/daemon.h"
#include "agent/keystore.h"
#include "agent/netproc.h"
#include "crypto/secmem.h"

enum { OPT_DATA_DIR = 256, OPT_PASSPHRASE_FILE, OPT_KEY_FILE, OPT_FORMS_DIR };

#define INPUT_MAX (256 * 1024 * 1024) /* a pipe copied for the agent */

/* The configured socket, or where the agent is by default (ctl.h): found
 * once per process. */
static const char *socket_path(const struct cli *c)
{
	static char found[CTL_PATH_MAX];

	if (c->cfg.socket)
		return c->cfg.socket;
	if (!found[0])
		ctl_find_socket(found);
	return found;
}

/* A descriptor the agent can read without waiting on anyone: a regular
 * file as is; anything else (a pipe, a terminal) copied into a memfd. */
static int input_fd(const char *path, struct fs_error *err)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : dup(STDIN_FILENO);
	static char buf[65536];
	size_t total = 0;
	struct stat st;
	int mfd;

	if (fd < 0)
		return fs_error_set(err, -errno, "read %s: %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		return fd;
	mfd = memfd_create("fieldsync-input", MFD_CLOEXEC);
	if (mfd < 0) {
		close(fd);
		return fs_error_set(err, -errno, "read %s: memfd: %s", path, strerror(errno));
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (total += (size_t)(n > 0 ? n : 0)) > INPUT_MAX ||
		    (n > 0 && write(mfd, buf, (size_t)n) != n)) {
			int r = n < 0 ? -errno : -FS_ELIMIT;

			close(fd);
			close(mfd);
			sodium_memzero(buf, sizeof(buf));
			return fs_error_set(err, r, "read %s: %s", path,
					    r == -FS_ELIMIT ? "too large" : strerror(-r));
		}
		if (n == 0)
			break;
	}
	/* The input may be a secret (an enrolment token). */
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	if (lseek(mfd, 0, SEEK_SET) < 0) {
		close(mfd);
		return fs_error_set(err, -errno, "read %s: %s", path, strerror(errno));
	}
	return mfd;
}

/* Which arguments name files the agent must read: it cannot open a field
 * worker's files itself (another user, and ProtectHome=). */
static size_t file_args(int argc, char **argv, unsigned idx[CTL_MAX_FILES],
			const char *paths[CTL_MAX_FILES])
{
	size_t n = 0;

	if (!strcmp(argv[0], "import") && argc == 3) {
		idx[n] = 2;
		paths[n++] = argv[2];
	} else if (!strcmp(argv[0], "enroll") && argc == 3 && !strcmp(argv[2], "-")) {
		idx[n] = 2;
		paths[n++] = argv[2];
	} else if ((!strcmp(argv[0], "beneficiary") || !strcmp(argv[0], "visit")) && argc > 2 &&
		   (!strcmp(argv[1], "add") || !strcmp(argv[1], "edit"))) {
		for (int i = 2; i < argc && n < CTL_MAX_FILES; i++) {
			const char *file = cmd_record_file_arg(argv[i]);
			struct stat st;

			if (!strncmp(argv[i], "--json=", 7)) {
				idx[n] = (unsigned)i;
				paths[n++] = argv[i] + 7;
			} else if (!strcmp(argv[i], "--json") && i + 1 < argc &&
				   !strchr(argv[i + 1], '=')) {
				idx[n] = (unsigned)i + 1;
				paths[n++] = argv[i + 1];
			} else if (file && stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
				/* FIELD=@PATH: a file for an attachment field, which
				 * only the agent knows; a text that merely starts
				 * with @ names no file and passes as it is. */
				idx[n] = (unsigned)i;
				paths[n++] = file;
			}
		}
	}
	return n;
}

/* Send one request on sock (closed here), with fds, and relay the
 * answer; returns the command's exit status. */
static int agent_request(struct cli *c, int sock, enum ctl_type type, const uint8_t *payload,
			 size_t len, const int *fds, size_t nfds)
{
	struct fs_error err = { 0 };
	int status = FS_EXIT_IO, r;

	if ((r = ctl_send(sock, type, payload, len, fds, nfds)) == 0)
		r = ctl_client_answer(sock, STDOUT_FILENO, STDERR_FILENO, &status);
	if (r < 0)
		fs_error_set(&err, r, "the agent at %s: %s", socket_path(c),
			     r == -ECONNRESET || r == -EPIPE
				     ? "closed the connection (did it stop, or refuse this user?)"
				     : strerror(-r));
	close(sock);
	return r < 0 ? commands_fail(c, &err) : status;
}

/* Hand the command to the agent.  -ENOENT/-ECONNREFUSED: none runs. */
static int forward(struct cli *c, int argc, char **argv, int *ret_status)
{
	unsigned idx[CTL_MAX_FILES];
	const char *paths[CTL_MAX_FILES];
	int fds[CTL_MAX_FILES], sock = -1, r;
	struct fs_error err = { 0 };
	size_t nfiles, len, opened = 0;
	uint8_t *buf = NULL;

	struct stat st;

	/* No agent: the command runs here, and reads its own input. */
	if (stat(socket_path(c), &st) < 0 || !S_ISSOCK(st.st_mode))
		return -ENOENT;
	/* Input is read before connecting: the agent gives a request only a
	 * few seconds to arrive (daemon.c), and a token typed on the
	 * terminal or a slow pipe takes longer. */
	nfiles = file_args(argc, argv, idx, paths);
	for (; opened < nfiles; opened++) {
		if ((r = input_fd(paths[opened], &err)) < 0) {
			*ret_status = commands_fail(c, &err);
			goto out;
		}
		fds[opened] = r;
	}
	if ((r = ctl_connect(socket_path(c), &sock, &err)) < 0) {
		if (r == -ENOENT || r == -ECONNREFUSED) {
			/* A stale socket: run here after all, with standard input
			 * as it was read (the copy goes back in as fd 0). */
			for (size_t i = 0; i < opened; i++)
				if (!strcmp(paths[i], "-") && dup2(fds[i], STDIN_FILENO) < 0)
					r = -errno;
			for (size_t i = 0; i < opened; i++)
				close(fds[i]);
			if (r == -ENOENT || r == -ECONNREFUSED)
				return r;
		}
		*ret_status = commands_fail(c, &err);
		opened = 0;
		goto out;
	}
	buf = malloc(CTL_REQUEST_MAX);
	if (!buf || ctl_build_command(argc, argv, idx, nfiles, buf, CTL_REQUEST_MAX - CTL_HEADER,
				      &len) < 0) {
		fs_error_set(&err, -FS_ELIMIT,
			     "arguments too long for the agent (at most %d "
			     "bytes); use --json FILE",
			     CTL_REQUEST_MAX - CTL_HEADER);
		*ret_status = commands_fail(c, &err);
		goto out;
	}
	*ret_status = agent_request(c, sock, CTL_COMMAND, buf, len, fds, nfiles);
	sock = -1;
out:
	if (buf) {
		/* Arguments may hold field values or an enrolment token. */
		sodium_memzero(buf, CTL_REQUEST_MAX);
		free(buf);
	}
	for (size_t i = 0; i < opened; i++)
		close(fds[i]);
	if (sock >= 0)
		close(sock);
	return 0;
}

/* A write made here, not through the agent: tell a running agent so it
 * pushes it.  Best effort: with no agent it goes out with the next push. */
static void poke_agent(struct cli *c)
{
	struct fs_error err = { 0 };
	int sock, status;

	if (ctl_connect(socket_path(c), &sock, &err) < 0)
		return;
	if (ctl_send(sock, CTL_POKE, NULL, 0, NULL, 0) == 0)
		(void)!ctl_client_answer(sock, STDOUT_FILENO, STDERR_FILENO, &status);
	close(sock);
}

static int help_requested(int argc, char **argv)
{
	return argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
}

static int cmd_agent(struct cli *c, int argc, char **argv)
{
	if (help_requested(argc, argv)) {
		puts("Usage: fieldsync agent\n"
		     "Run the sync agent in the foreground (systemd runs it as\n"
		     "fieldsync-agent.service).  It holds the store key, serves commands\n"
		     "on its socket ([agent] socket; default " CTL_SYSTEM_SOCKET " as root or\n"
		     "a service, $XDG_RUNTIME_DIR/" CTL_USER_SOCKET " for another user),\n"
		     "and pushes pending changes to HQ on its own: after a local write,\n"
		     "when the network comes back, and on retries with backoff.\n"
		     "It also serves the field app, a web interface for field workers, on\n"
		     "[web] listen (default http://" CONFIG_DEFAULT_WEB_LISTEN
		     "/, loopback only).\n"
		     "Without a credential or secret file it starts locked; see unlock.\n"
		     "SIGTERM or SIGINT stop it (exit 0); SIGHUP reloads the [sync] keys.");
		return FS_EXIT_OK;
	}
	if (argc != 1)
		return commands_usage_error(c, "agent", "unexpected argument");
	return daemon_run(c);
}

/* unlock and lock talk to the agent only. */
static int agent_connect(struct cli *c, int *ret_fd)
{
	struct fs_error err = { 0 };
	int r = ctl_connect(socket_path(c), ret_fd, &err);

	if (r == -ENOENT || r == -ECONNREFUSED)
		fs_error_set(&err, r, "no agent is running at %s (start fieldsync-agent)",
			     socket_path(c));
	return r < 0 ? commands_fail(c, &err) : 0;
}

static int cmd_unlock(struct cli *c, int argc, char **argv)
{
	struct keystore_secret *secret = NULL;
	struct fs_error err = { 0 };
	uint8_t *msg = NULL;
	struct stat st;
	size_t len;
	int r, sock = -1;

	if (help_requested(argc, argv)) {
		puts("Usage: fieldsync unlock\n"
		     "Give the running agent the store's secret, so it can push and serve\n"
		     "commands: the configured key or passphrase file, or a passphrase\n"
		     "asked on the terminal.  It travels over the agent's socket only.");
		return FS_EXIT_OK;
	}
	if (argc != 1)
		return commands_usage_error(c, "unlock", "unexpected argument");
	/* Ask for the secret before connecting, so a slow typist is not cut
	 * off by the agent; but first make sure there is an agent to ask. */
	if (stat(socket_path(c), &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fs_error_set(&err, -ENOENT, "no agent is running at %s (start fieldsync-agent)",
			     socket_path(c));
		return commands_fail(c, &err);
	}
	if ((r = commands_secret(c, "Store passphrase: ", &secret, &err)) < 0)
		return commands_fail(c, &err);
	if ((r = agent_connect(c, &sock)) != 0) {
		keystore_secret_free(secret);
		return r;
	}
	len = 1 + (secret->method == KEYSTORE_PASSPHRASE ? secret->passlen : AEAD_KEYBYTES);
	if (len > 1 + CTL_SECRET_MAX) {
		close(sock);
		keystore_secret_free(secret);
		fs_error_set(&err, -FS_ELIMIT, "passphrase longer than %d bytes", CTL_SECRET_MAX);
		return commands_fail(c, &err);
	}
	msg = secmem_alloc(len);
	if (!msg) {
		close(sock);
		keystore_secret_free(secret);
		fs_error_set(&err, -ENOMEM, "out of secure memory");
		return commands_fail(c, &err);
	}
	msg[0] = secret->method == KEYSTORE_PASSPHRASE ? 1 : 2;
	memcpy(msg + 1,
	       secret->method == KEYSTORE_PASSPHRASE ? (const uint8_t *)secret->passphrase
						     : secret->wrapkey,
	       len - 1);
	keystore_secret_free(secret);
	r = agent_request(c, sock, CTL_UNLOCK, msg, len, NULL, 0);
	secmem_free(msg);
	return r;
}

static int cmd_lock(struct cli *c, int argc, char **argv)
{
	int r, sock;

	if (help_requested(argc, argv)) {
		puts("Usage: fieldsync lock\n"
		     "Make the running agent close the store and wipe its key from memory.\n"
		     "It stops pushing until 'fieldsync unlock'.");
		return FS_EXIT_OK;
	}
	if (argc != 1)
		return commands_usage_error(c, "lock", "unexpected argument");
	if ((r = agent_connect(c, &sock)) != 0)
		return r;
	return agent_request(c, sock, CTL_LOCK, NULL, 0, NULL, 0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
		{ "passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE },
		{ "key-file", required_argument, NULL, OPT_KEY_FILE },
		{ "forms-dir", required_argument, NULL, OPT_FORMS_DIR },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	char *overrides[4] = { NULL, NULL, NULL, NULL };
	struct cli c = { .out = stdout, .err = stderr };
	struct fs_error err = { 0 };
	const char *cmd;
	int opt, r;

	if (secmem_init() < 0) {
		fprintf(stderr, "fieldsync: libsodium failed to initialise\n");
		return FS_EXIT_KEY;
	}
	while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			c.config_path = optarg;
			break;
		case OPT_DATA_DIR:
			overrides[0] = optarg;
			break;
		case OPT_PASSPHRASE_FILE:
			overrides[1] = optarg;
			break;
		case OPT_KEY_FILE:
			overrides[2] = optarg;
			break;
		case OPT_FORMS_DIR:
			overrides[3] = optarg;
			break;
		case 'h':
			fputs(commands_main_usage, stdout);
			return FS_EXIT_OK;
		case 'V':
			puts("fieldsync " FS_VERSION);
			return FS_EXIT_OK;
		default:
			return commands_usage_error(&c, NULL, "bad option");
		}
	}
	if (optind >= argc)
		return commands_usage_error(&c, NULL, "no command given");
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (!strcmp(cmd, "help")) {
		fputs(commands_main_usage, stdout);
		return FS_EXIT_OK;
	}
	if (cmd_flags(cmd) & CMD_NO_CONFIG)
		return cmd_run(&c, argc, argv);
	if (commands_load_config(&c, overrides, &err) < 0) {
		r = commands_fail(&c, &err);
		config_free(&c.cfg);
		return r;
	}
	if (!strcmp(cmd, "agent"))
		r = cmd_agent(&c, argc, argv);
	else if (!strcmp(cmd, "unlock"))
		r = cmd_unlock(&c, argc, argv);
	else if (!strcmp(cmd, "lock"))
		r = cmd_lock(&c, argc, argv);
	else if ((cmd_flags(cmd) & CMD_FORWARDABLE) && !overrides[0] && !overrides[1] &&
		 !overrides[2] && forward(&c, argc, argv, &r) == 0)
		; /* the agent ran it */
	else {
		r = cmd_run(&c, argc, argv);
		if (c.wrote)
			poke_agent(&c);
		/* A command that talked to HQ started the network helper: it
		 * ends when told, and is reaped here. */
		netproc_stop(NULL, 0);
	}
	config_free(&c.cfg);
	return r;
}
