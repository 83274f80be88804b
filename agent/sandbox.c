/* sandbox.c - see sandbox.h.  Sections: the user; Landlock; seccomp. */
#include "agent/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>

#if defined(__SANITIZE_ADDRESS__)
#define FS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define FS_SANITIZER 1
#endif
#endif
#ifndef FS_SANITIZER
#define FS_SANITIZER 0
#endif

/* ---- the user -------------------------------------------------------------- */

/* Root of the first user namespace, who owns the machine; not the root
 * of a user namespace (a test's `unshare --map-root-user`), who is an
 * ordinary user outside and has no nobody to become. */
static int machine_root(void)
{
	FILE *f = fopen("/proc/self/uid_map", "re");
	unsigned long inside, outside, count;
	int r = 0;

	if (f && fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
		r = inside == 0 && outside == 0 && count == 4294967295UL;
	if (f)
		fclose(f);
	return r;
}

static int drop_user(struct sandbox_report *rep, struct fs_error *err)
{
	const struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if (!machine_root()) {
		rep->dropped_user = SANDBOX_USER_NAMESPACE_ROOT;
		return 0;
	}
	errno = 0;
	if (!(pw = getpwnam("nobody")))
		return fs_error_set(err, errno ? -errno : -ENOENT,
				    "network helper: no user nobody to run as");
	if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return fs_error_set(err, -errno, "network helper: become nobody: %s",
				    strerror(errno));
	/* Check that it took: no way back to root. */
	if (setresuid(0, 0, 0) == 0)
		return fs_error_set(err, -EPERM, "network helper: could become root again");
	rep->dropped_user = SANDBOX_USER_NOBODY;
	return 0;
}

/* ---- Landlock -------------------------------------------------------------- */

/* What Debian 12's kernel headers (6.1) do not name yet: the kernel's
 * ABI, which never changes once released. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#define FS_LANDLOCK_NET_BIND_TCP (1ULL << 0)
#define FS_LANDLOCK_SCOPE_ABSTRACT_UNIX (1ULL << 0)
#define FS_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6; the kernel is told how much
 * of it the running ABI knows. */
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

#define READ_RIGHTS                                                                                \
	(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_EXECUTE)

static uint64_t fs_rights(int abi)
{
	uint64_t r = READ_RIGHTS | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
		     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
		     LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
		     LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
		     LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

/* Let the sandbox read path (and below it, for a directory). */
static int allow_read(int ruleset, const char *path, struct fs_error *err)
{
	struct landlock_path_beneath_attr rule = { 0 };
	struct stat st;
	int fd, r = 0;

	if (!path || !path[0])
		return 0;
	if ((fd = open(path, O_PATH | O_CLOEXEC)) < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == EACCES
			       ? 0
			       : fs_error_set(err, -errno, "network helper: open %s: %s", path,
					      strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = fs_error_set(err, -errno, "network helper: stat %s: %s", path, strerror(errno));
		goto out;
	}
	rule.parent_fd = fd;
	rule.allowed_access = S_ISDIR(st.st_mode)
				      ? READ_RIGHTS
				      : LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
		r = fs_error_set(err, -errno, "network helper: Landlock rule for %s: %s", path,
				 strerror(errno));
out:
	close(fd);
	return r;
}

static int restrict_files(struct sandbox_report *rep, struct fs_error *err)
{
	static const char *const paths[] = { SANDBOX_READ_PATHS };
	static const char *const env[] = { "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE" };
	struct ruleset_attr attr = { 0 };
	size_t size = sizeof(attr.handled_access_fs);
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	int ruleset, r = 0;

	if (abi <= 0) {
		/* ENOSYS: not in this kernel; EOPNOTSUPP: turned off at boot;
		 * EPERM: a seccomp filter above us (a unit's) refuses it. */
		rep->landlock_errno = errno;
		return 0;
	}
	attr.handled_access_fs = fs_rights((int)abi);
	if (abi >= 4) {
		attr.handled_access_net = FS_LANDLOCK_NET_BIND_TCP;
		size = offsetof(struct ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = FS_LANDLOCK_SCOPE_ABSTRACT_UNIX | FS_LANDLOCK_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	if ((ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0)) < 0)
		return fs_error_set(err, -errno, "network helper: Landlock ruleset: %s",
				    strerror(errno));
	for (size_t i = 0; r == 0 && i < sizeof(paths) / sizeof(paths[0]); i++)
		r = allow_read(ruleset, paths[i], err);
	for (size_t i = 0; r == 0 && i < sizeof(env) / sizeof(env[0]); i++)
		r = allow_read(ruleset, getenv(env[i]), err);
	/* The sanitizer's runtime reads /proc/self/maps to look for leaks. */
	if (r == 0 && FS_SANITIZER)
		r = allow_read(ruleset, "/proc", err);
	if (r == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		r = fs_error_set(err, -errno, "network helper: Landlock: %s", strerror(errno));
	close(ruleset);
	if (r == 0)
		rep->landlock_abi = (int)abi;
	return r;
}

/* ---- seccomp --------------------------------------------------------------- */

/* Calls libcurl, OpenSSL, glibc's allocator, threads and resolver make. */
static const int allowed[] = {
	SCMP_SYS(read),
	SCMP_SYS(write),
	SCMP_SYS(readv),
	SCMP_SYS(writev),
	SCMP_SYS(pread64),
	SCMP_SYS(close),
	SCMP_SYS(fstat),
	SCMP_SYS(newfstatat),
	SCMP_SYS(stat),
	SCMP_SYS(lstat),
	SCMP_SYS(statx),
	SCMP_SYS(lseek),
	SCMP_SYS(access),
	SCMP_SYS(faccessat),
	SCMP_SYS(faccessat2),
	SCMP_SYS(readlink),
	SCMP_SYS(getdents64),
	SCMP_SYS(fcntl),
	SCMP_SYS(dup),
	SCMP_SYS(mmap),
	SCMP_SYS(munmap),
	SCMP_SYS(mprotect),
	SCMP_SYS(mremap),
	SCMP_SYS(madvise),
	SCMP_SYS(brk),
	SCMP_SYS(rt_sigaction),
	SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn),
	SCMP_SYS(sigaltstack),
	SCMP_SYS(futex),
	SCMP_SYS(set_robust_list),
	SCMP_SYS(get_robust_list),
	SCMP_SYS(rseq),
	SCMP_SYS(set_tid_address),
	SCMP_SYS(exit),
	SCMP_SYS(exit_group),
	SCMP_SYS(getpid),
	SCMP_SYS(gettid),
	SCMP_SYS(getuid),
	SCMP_SYS(geteuid),
	SCMP_SYS(getgid),
	SCMP_SYS(getegid),
	SCMP_SYS(connect),
	SCMP_SYS(getsockopt),
	SCMP_SYS(setsockopt),
	SCMP_SYS(getsockname),
	SCMP_SYS(getpeername),
	SCMP_SYS(sendto),
	SCMP_SYS(recvfrom),
	SCMP_SYS(sendmsg),
	SCMP_SYS(recvmsg),
	SCMP_SYS(sendmmsg),
	SCMP_SYS(recvmmsg),
	SCMP_SYS(shutdown),
	SCMP_SYS(socketpair),
	SCMP_SYS(poll),
	SCMP_SYS(ppoll),
	SCMP_SYS(select),
	SCMP_SYS(pselect6),
	SCMP_SYS(epoll_create1),
	SCMP_SYS(epoll_ctl),
	SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait),
	SCMP_SYS(eventfd2),
	SCMP_SYS(pipe),
	SCMP_SYS(pipe2),
	SCMP_SYS(getrandom),
	SCMP_SYS(clock_gettime),
	SCMP_SYS(clock_getres),
	SCMP_SYS(gettimeofday),
	SCMP_SYS(time),
	SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep),
	SCMP_SYS(sched_yield),
	SCMP_SYS(sched_getaffinity),
	SCMP_SYS(uname),
	SCMP_SYS(sysinfo),
	SCMP_SYS(restart_syscall),
};

/* Calls only an attacker would make: the process dies on the spot. */
static const int tripwires[] = {
	SCMP_SYS(ptrace),
	SCMP_SYS(process_vm_readv),
	SCMP_SYS(process_vm_writev),
	SCMP_SYS(execve),
	SCMP_SYS(execveat),
	SCMP_SYS(kill),
	SCMP_SYS(tkill),
	SCMP_SYS(mount),
	SCMP_SYS(umount2),
	SCMP_SYS(pivot_root),
	SCMP_SYS(chroot),
	SCMP_SYS(unshare),
	SCMP_SYS(setns),
	SCMP_SYS(bpf),
	SCMP_SYS(perf_event_open),
	SCMP_SYS(keyctl),
	SCMP_SYS(add_key),
	SCMP_SYS(request_key),
	SCMP_SYS(init_module),
	SCMP_SYS(finit_module),
	SCMP_SYS(kexec_load),
	SCMP_SYS(userfaultfd),
	SCMP_SYS(memfd_create),
	SCMP_SYS(open_by_handle_at),
	SCMP_SYS(name_to_handle_at),
	SCMP_SYS(personality),
	SCMP_SYS(io_uring_setup),
};

/* What the sanitizer's leak check at exit does: a tracer that shares our
 * memory and ptraces our threads. */
static const int
	sanitizer_extra[] = {
		SCMP_SYS(ptrace),   SCMP_SYS(wait4), SCMP_SYS(prctl),  SCMP_SYS(clone),
		SCMP_SYS(kill),	    SCMP_SYS(tkill), SCMP_SYS(tgkill), SCMP_SYS(getppid),
		SCMP_SYS(getdents), /* how it lists /proc/self/task */
	};

static int in_list(const int *list, size_t n, int nr)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == nr)
			return 1;
	return 0;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* An allowed call whose argument n compared by op with a (and b, for a
 * masked compare: a is the mask, b the value) must hold.  Built whole:
 * libseccomp's SCMP_An() leave a field out, which clang's -Wextra
 * refuses. */
struct arg_rule {
	int nr;
	unsigned n;
	enum scmp_compare op;
	scmp_datum_t a, b;
	int sanitizer_too; /* the sanitizer build allows the call outright */
};

/* Files: read only (Landlock also says which). */
#define WRITE_FLAGS (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND)

static const struct arg_rule arg_rules[] = {
	{ SCMP_SYS(openat), 2, SCMP_CMP_MASKED_EQ, WRITE_FLAGS, 0, 1 },
	{ SCMP_SYS(open), 1, SCMP_CMP_MASKED_EQ, WRITE_FLAGS, 0, 1 },
	/* Sockets to HQ, or to a proxy: no AF_UNIX (the agent's socket), no
	 * netlink, no raw packets. */
	{ SCMP_SYS(socket), 0, SCMP_CMP_EQ, AF_INET, 0, 1 },
	{ SCMP_SYS(socket), 0, SCMP_CMP_EQ, AF_INET6, 0, 1 },
	/* Threads (the resolver's), never a new process. */
	{ SCMP_SYS(clone), 0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD, 0 },
	{ SCMP_SYS(ioctl), 1, SCMP_CMP_EQ, FIONREAD, 0, 1 },
	{ SCMP_SYS(ioctl), 1, SCMP_CMP_EQ, FIONBIO, 0, 1 },
	{ SCMP_SYS(ioctl), 1, SCMP_CMP_EQ, TCGETS, 0, 1 },
	/* Reading limits, never raising them. */
	{ SCMP_SYS(prlimit64), 2, SCMP_CMP_EQ, 0, 0, 1 },
};

static int allow_if(scmp_filter_ctx ctx, int nr, unsigned n, enum scmp_compare op, scmp_datum_t a,
		    scmp_datum_t b)
{
	const struct scmp_arg_cmp cmp = { .arg = n, .op = op, .datum_a = a, .datum_b = b };

	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, &cmp);
}

/* Rules that look at arguments. */
static int seccomp_arguments(scmp_filter_ctx ctx)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < sizeof(arg_rules) / sizeof(arg_rules[0]); i++) {
		const struct arg_rule *q = &arg_rules[i];

		if (q->sanitizer_too || !FS_SANITIZER)
			r = allow_if(ctx, q->nr, q->n, q->op, q->a, q->b);
	}
	/* clone3 hides its flags from seccomp: ENOSYS makes glibc use clone. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* abort() signals its own thread. */
	if (r == 0 && !FS_SANITIZER)
		r = allow_if(ctx, SCMP_SYS(tgkill), 0, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0);
	return r;
}

static int filter_syscalls(struct sandbox_report *rep, struct fs_error *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	int r = 0;

	if (!ctx)
		return fs_error_set(err, -ENOMEM, "network helper: seccomp: out of memory");
	for (size_t i = 0; r == 0 && i < N(allowed); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	for (size_t i = 0; r == 0 && FS_SANITIZER && i < N(sanitizer_extra); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sanitizer_extra[i], 0);
	for (size_t i = 0; r == 0 && i < N(tripwires); i++)
		if (!FS_SANITIZER || !in_list(sanitizer_extra, N(sanitizer_extra), tripwires[i]))
			r = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, tripwires[i], 0);
	if (r == 0)
		r = seccomp_arguments(ctx);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r < 0)
		return fs_error_set(err, r, "network helper: seccomp filter: %s", strerror(-r));
	rep->seccomp = 1;
	return 0;
}

/* ---- all together ---------------------------------------------------------- */

int sandbox_enter(struct sandbox_report *ret, struct fs_error *err)
{
	const struct rlimit none = { 0, 0 };
	int r;

	memset(ret, 0, sizeof(*ret));
	if ((r = drop_user(ret, err)) < 0)
		return r;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fs_error_set(err, -errno, "network helper: prctl: %s", strerror(errno));
	/* Not dumpable already means no core; systemd's unit refuses
	 * setrlimit (~@resources) and sets LimitCORE=0 itself. */
	(void)setrlimit(RLIMIT_CORE, &none);
	if ((r = restrict_files(ret, err)) < 0)
		return r;
	return filter_syscalls(ret, err);
}

void sandbox_describe(const struct sandbox_report *r, char *out, size_t cap)
{
	char ll[80];

	if (r->landlock_abi)
		snprintf(ll, sizeof(ll), "Landlock ABI %d", r->landlock_abi);
	else if (r->landlock_errno == EPERM)
		snprintf(ll, sizeof(ll), "no Landlock (refused by a seccomp filter)");
	else
		snprintf(ll, sizeof(ll), "no Landlock (%s)",
			 r->landlock_errno == EOPNOTSUPP ? "turned off at boot"
							 : "not in this kernel");
	snprintf(out, cap, "%s, %s, no new privileges, %s%s",
		 r->dropped_user == SANDBOX_USER_NOBODY		  ? "user nobody"
		 : r->dropped_user == SANDBOX_USER_NAMESPACE_ROOT ? "root of a user namespace"
								  : "the agent's user",
		 ll, r->seccomp ? "seccomp filter" : "no seccomp filter",
		 FS_SANITIZER ? " (sanitizer build: leak check allowed)" : "");
}
