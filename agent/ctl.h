/* ctl.h - the agent's control socket, shared by the agent and the CLI.
 *
 * An AF_UNIX stream socket in a runtime directory, mode 0660 and group
 * fieldsync, so that only the agent's user, root and members of that
 * group can connect; the agent also checks the peer's credentials
 * (SO_PEERCRED) on accept.  Where it is ([agent] socket, or by default
 * ctl_default_socket()): the system agent's /run/fieldsync/agent.sock, in
 * the directory systemd's RuntimeDirectory=fieldsync makes, or for an
 * agent a user runs by hand $XDG_RUNTIME_DIR/fieldsync/agent.sock.
 *
 * Every message is a frame:
 *
 *   type (1 byte) | length (4 bytes, big-endian) | payload (length bytes)
 *
 * The client sends exactly one request frame per connection:
 *
 *   'C' run a command.  payload: argc (2, BE) | nfiles (1) | nfiles argv
 *       indices (2 each, BE) | argc strings, each NUL-terminated.  The
 *       frame carries nfiles descriptors (SCM_RIGHTS), in order: the
 *       files the client opened for those arguments ("-" is its stdin).
 *   'U' unlock.  payload: method (1: passphrase, 2: key file contents) |
 *       the secret (at most CTL_SECRET_MAX bytes).
 *   'L' lock.   payload empty.
 *   'P' poke.   payload empty.  Something wrote to the store without the
 *       agent (a command given --data-dir or a secret); push soon.
 *
 * The agent answers with any number of 'O' (standard output bytes) and
 * 'E' (standard error bytes) frames, then one 'X' frame whose payload is
 * the exit status (1 byte), and closes.  A request frame is at most
 * CTL_REQUEST_MAX bytes; answer frames at most CTL_CHUNK bytes each.
 *
 * Errors are negative errno values with err naming the socket path.
 */
#ifndef FS_CTL_H
#define FS_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/fserr.h"

#define CTL_SYSTEM_SOCKET "/run/fieldsync/agent.sock"
#define CTL_USER_SOCKET "fieldsync/agent.sock" /* under $XDG_RUNTIME_DIR */
#define CTL_PATH_MAX 108		       /* sun_path, with its NUL */
#define CTL_HEADER 5
#define CTL_REQUEST_MAX (64 * 1024)
#define CTL_CHUNK (64 * 1024)
#define CTL_MAX_FILES 4
#define CTL_SECRET_MAX 1024

enum ctl_type {
	CTL_COMMAND = 'C',
	CTL_UNLOCK = 'U',
	CTL_LOCK = 'L',
	CTL_POKE = 'P',
	CTL_STDOUT = 'O',
	CTL_STDERR = 'E',
	CTL_EXIT = 'X',
};

/* The socket an agent listens on when [agent] socket is not set: as root,
 * or without $XDG_RUNTIME_DIR (a system service), CTL_SYSTEM_SOCKET; as
 * any other user $XDG_RUNTIME_DIR/CTL_USER_SOCKET.  buf has CTL_PATH_MAX
 * bytes.  -ENAMETOOLONG when $XDG_RUNTIME_DIR is too long. */
int ctl_default_socket(char buf[CTL_PATH_MAX], struct fs_error *err) FS_WUR;

/* Where a command looks for the agent when [agent] socket is not set: the
 * user's own agent (ctl_default_socket()) if its socket exists, else the
 * system agent's, which a member of group fieldsync may use. */
void ctl_find_socket(char buf[CTL_PATH_MAX]);

/* Create the listening socket at path: a stale socket there is replaced
 * (anything else is refused), mode 0660, group gid unless (gid_t)-1.
 * When path is the user default, its fieldsync/ directory is made (0700).
 * A missing directory is an error that says how to make it.  Returns the
 * non-blocking, close-on-exec descriptor. */
int ctl_listen(const char *path, gid_t gid, struct fs_error *err) FS_WUR;

/* Connect to the agent.  -ENOENT or -ECONNREFUSED: no agent is running
 * (no message in err); anything else is an error with a message. */
int ctl_connect(const char *path, int *ret_fd, struct fs_error *err) FS_WUR;

/* Write one whole frame on a blocking socket, with fds (may be 0). */
int ctl_send(int fd, enum ctl_type type, const void *payload, size_t len, const int *fds,
	     size_t nfds) FS_WUR;

/* Client side: copy the agent's answer to out_fd and err_fd until the
 * exit frame; *ret_status is its exit status.  -EPROTO on a malformed
 * answer, -ECONNRESET when the agent went away first. */
int ctl_client_answer(int fd, int out_fd, int err_fd, int *ret_status) FS_WUR;

/* Decode a 'C' payload.  argv (argc + 1 entries, NULL-terminated) points
 * into payload, which must stay alive; file_index[i] is the argv index
 * of the i-th passed descriptor.  -EPROTO when malformed or when nfiles
 * differs from the descriptors received. */
int ctl_parse_command(const uint8_t *payload, size_t len, size_t nfds, int *ret_argc,
		      char ***ret_argv, unsigned file_index[CTL_MAX_FILES]) FS_WUR;

/* Encode a 'C' payload into buf (at most CTL_REQUEST_MAX - CTL_HEADER). */
int ctl_build_command(int argc, char *const argv[], const unsigned *file_index, size_t nfiles,
		      uint8_t *buf, size_t cap, size_t *ret_len) FS_WUR;

#endif
