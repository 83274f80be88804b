/* daemon.h - `fieldsync agent`: the background sync agent.
 *
 * One thread runs one poll(2) loop over: a signalfd (SIGTERM, SIGINT,
 * SIGHUP), the control socket (agent/ctl.h) and its clients, a netlink
 * socket (agent/netwatch.h) and an eventfd the push thread raises when
 * an attempt ends.  Nothing polls on a timer: the loop sleeps until one
 * of those fires or the next scheduled push or watchdog ping is due.
 *
 * Pushes run in a second thread, on its own store connection
 * (store_reopen), so a dead link never holds up a field worker's
 * command.  A push is scheduled:
 *   - push_delay_ms after a command through the agent commits a write;
 *   - shortly after the kernel reports a link up, an address or a route
 *     (the retry count starts again: the network changed);
 *   - after a failure, with exponential backoff and full jitter
 *     (agent/backoff.h), never sooner than HQ's Retry-After;
 *   - at once for `fieldsync sync`, whose client waits for the result.
 * A device HQ reports as revoked stops pushing until restarted.
 *
 * The agent holds the store key (in secure memory, inside the open
 * store).  Started without a secret it is locked: commands get "locked"
 * until `fieldsync unlock`; `fieldsync lock` closes the store, wiping the
 * key.  The secret comes, in order, from the systemd credentials
 * fieldsync-store-key (a key file) or fieldsync-store-passphrase (a
 * passphrase file) in
 * $CREDENTIALS_DIRECTORY, then from the configured key or passphrase file.
 *
 * SIGTERM/SIGINT abandon a push in flight (safe: a set counts as sent
 * only with HQ's receipt, and HQ answers a repeat with the same receipt),
 * answer waiting clients, and exit 0.  SIGHUP reloads the configuration.
 * Logs go to stderr with journald priority prefixes ("<6>") and never
 * contain field values or keys.  With NOTIFY_SOCKET set it sends READY=1,
 * STATUS= and, when WatchdogSec= is set, WATCHDOG=1.
 */
#ifndef FS_DAEMON_H
#define FS_DAEMON_H

#include "agent/commands.h"

/* Run until SIGTERM or SIGINT; returns the exit status. */
int daemon_run(struct cli *c);

#endif
