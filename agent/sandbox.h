/* sandbox.h - confine the network helper (fieldsync-net) to libcurl.
 *
 * The helper speaks HTTP and TLS to HQ and parses what comes back, so it
 * is the process an attacker on the network reaches first.  It holds no
 * key.  sandbox_enter() takes away what it does not need, in this order,
 * once libcurl and OpenSSL have read their configuration:
 *
 *   1. its user: started as root, it becomes nobody/nogroup with no
 *      supplementary groups.  Started as the agent's user (systemd's
 *      User=fieldsync), or as the root of a user namespace (an ordinary
 *      user outside it), it stays that user: the steps below are what
 *      keep it from the agent's files.
 *   2. PR_SET_DUMPABLE 0 and no core files; PR_SET_NO_NEW_PRIVS.
 *   3. Landlock, where the kernel has it: the file system becomes
 *      read-only, and only what name resolution and TLS read stays
 *      visible (SANDBOX_READ_PATHS, and the files named by SSL_CERT_FILE,
 *      SSL_CERT_DIR and CURL_CA_BUNDLE).  The data directory, the
 *      configuration, the key and passphrase files, systemd's
 *      credentials and the agent's socket are not.  From Landlock ABI 4
 *      it cannot bind a TCP port; from ABI 6 it cannot signal a process
 *      outside its sandbox (the agent) or reach an abstract socket.
 *   4. a seccomp filter (libseccomp): the system calls libcurl, OpenSSL
 *      and glibc's resolver make, sockets of AF_INET and AF_INET6 only,
 *      files opened read-only, threads but no new processes.  Any other
 *      call fails with EPERM; ptrace, process_vm_readv/writev, execve,
 *      kill, mount, unshare, setns, bpf and a few more kill the process
 *      on the spot, since nothing but an attacker would try them.
 *
 * A sanitizer build (ASan, UBSan) also lets through what the sanitizer's
 * runtime needs to check for leaks at exit (ptrace of its own threads,
 * /proc/self): the release build is the one this comment describes.
 *
 * Not thread-safe: call it once, before the process starts threads.
 * Errors: a step that the kernel or the setup refuses is an error, except
 * Landlock missing or refused (reported in *ret and in the agent's log,
 * not an error: the helper still holds no key) and RLIMIT_CORE (not
 * dumpable already means no core).
 */
#ifndef FS_SANDBOX_H
#define FS_SANDBOX_H

#include "crypto/fserr.h"

/* What name resolution and TLS read after the helper is confined; each
 * is skipped when missing.  /usr holds the libraries that glibc loads
 * for a lookup (NSS modules) and the CA certificates' targets. */
#define SANDBOX_READ_PATHS                                                                         \
	"/usr", "/lib", "/lib64", "/etc/ssl", "/etc/ca-certificates", "/etc/pki",                  \
		"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf",          \
		"/etc/gai.conf", "/etc/ld.so.cache", "/etc/localtime", "/etc/services",            \
		"/etc/protocols"

enum sandbox_user {
	SANDBOX_USER_SAME,	     /* the agent's user, not root */
	SANDBOX_USER_NOBODY,	     /* started as root: now nobody */
	SANDBOX_USER_NAMESPACE_ROOT, /* root inside a user namespace only: kept */
};

struct sandbox_report {
	enum sandbox_user dropped_user;
	int landlock_abi;   /* 0: none, and landlock_errno says why */
	int landlock_errno; /* ENOSYS, EOPNOTSUPP, or EPERM (a filter refused it) */
	int seccomp;	    /* the filter is in place */
};

int sandbox_enter(struct sandbox_report *ret, struct fs_error *err) FS_WUR;

/* One line for the log: "user nobody, Landlock ABI 6, seccomp". */
void sandbox_describe(const struct sandbox_report *r, char *out, size_t cap);

#endif
