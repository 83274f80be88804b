/* netproc.h - the agent's side of its network helper.
 *
 * A process that holds the store key or the device key does no HTTP
 * itself.  netproc_hqlink() gives a transport (agent/hqlink.h) whose
 * post() hands the request to fieldsync-net (agent/netmain.c), a process
 * that holds no key and is confined to libcurl (agent/sandbox.h), and
 * checks the answer frame (agent/netframe.h) before anything else reads
 * it.  Signature checks, receipts and store writes stay here.
 *
 * The helper is started with posix_spawn(), which runs the new program
 * without copying this process's memory (glibc clones with CLONE_VM and
 * CLONE_VFORK), and with only descriptors 2 and 3 open and a short,
 * fixed environment (the proxy and CA variables, and the sanitizers').
 * The agent starts it at start-up, before it loads a key
 * (netproc_start()); the CLI when it first talks to HQ.  A helper that
 * dies, sends a malformed frame or is cancelled is killed and reaped;
 * the request fails with -EHOSTUNREACH (or -ECANCELED) and the next one
 * starts a new helper, so a push resumes as after any dropped link.
 *
 * Where the helper is: fieldsync-net beside the running program (the
 * build tree, or an install that keeps them together), else in
 * FS_LIBEXEC_DIR.
 *
 * Thread safety: one helper per process, one request at a time; the
 * functions lock.  Errors name the helper and why.
 */
#ifndef FS_NETPROC_H
#define FS_NETPROC_H

#include <stddef.h>
#include <sys/types.h>

#include "agent/hqlink.h"
#include "crypto/fserr.h"

/* Start the helper if it is not running, and wait until it says it is
 * confined. */
int netproc_start(struct fs_error *err) FS_WUR;

/* Stop it: close its socket, give it NETPROC_GRACE_MS to end, then kill
 * it; how it ended ("exit status 0", "stopped" when killed) into how
 * (cap bytes; how may be NULL).  Safe to repeat. */
#define NETPROC_GRACE_MS 2000
void netproc_stop(char *how, size_t cap);

/* What the last helper said confines it ("user nobody, Landlock ABI 6,
 * no new privileges, seccomp filter"), for the log; "" before one
 * started. */
void netproc_confinement(char *out, size_t cap);

/* The helper's pid, or 0 when none runs: the control socket refuses it. */
pid_t netproc_pid(void);

/* A transport through the helper (starting it when needed).  cancel, when
 * not NULL, abandons a request in flight within about a second (the
 * helper is killed); connect_s and stall_s as hqcurl_timeouts(). */
int netproc_hqlink(struct hqlink **ret, const _Atomic int *cancel, unsigned connect_s,
		   unsigned stall_s, struct fs_error *err) FS_WUR;

/* Use this helper program instead of looking for it (tests). */
void netproc_set_program(const char *path);

#endif
