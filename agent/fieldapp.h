/* fieldapp.h - the field app: the agent's web interface for field
 * workers, served by libmicrohttpd on a loopback address ([web] listen,
 * agent/config.h) from the agent's own pages (share/fieldsync/web/),
 * with nothing fetched from elsewhere.
 *
 * It runs on the agent's loop thread (agent/daemon.c polls its epoll
 * descriptor), so a request sees the same store as a command through the
 * control socket, and no lock is needed.  The pages are thin: every rule
 * is asked of the agent through /api/... (docs/PROTOCOL.md, "The field
 * app's API").
 *
 * Sessions (web/session.h): unlocking in the app, with the store's
 * passphrase, opens one.  When the store is locked, that passphrase
 * unlocks it, as `fieldsync unlock` does; when it is open already, the
 * passphrase is checked against it and nothing else changes.  A session
 * ends after [web] idle_lock_minutes without use; when the app unlocked
 * the store, the store locks again then (its key is wiped).  "Lock now"
 * locks the store whoever unlocked it.  Locking the store in any way
 * ends every session.
 *
 * Every request is checked first (web/http.h): Host must be the listen
 * address (or localhost) and port, against DNS rebinding; a POST needs
 * that same Origin, a session and its CSRF token.  Every answer says
 * Cache-Control: no-store, with a strict CSP and X-Frame-Options: DENY.
 * Passphrases are wiped from the agent's memory once used; they never
 * appear in a log.
 */
#ifndef FS_FIELDAPP_H
#define FS_FIELDAPP_H

#include <stdint.h>

#include "crypto/fserr.h"

#define FIELDAPP_COOKIE "fieldsync_app"
#define FIELDAPP_TRIES 5	/* wrong passphrases before a pause */
#define FIELDAPP_PAUSE_MS 30000 /* the pause */

/* Its state is struct fieldapp in struct agent (agent/agentd.h). */
struct agent;

/* Start serving, when [web] enabled; logs the URL.  0 also when the app
 * is off.  On an error (the port is taken, no pages) the agent runs on
 * without it: the caller logs err. */
int fieldapp_start(struct agent *a, struct fs_error *err) FS_WUR;
void fieldapp_stop(struct agent *a);
/* The descriptor the loop polls for input; -1 when not serving. */
int fieldapp_fd(const struct agent *a);
/* Serve what is ready and end idle sessions (locking the store if the
 * app unlocked it); returns when the loop must call again at the latest
 * (monotonic ms, UINT64_MAX: only on input). */
uint64_t fieldapp_run(struct agent *a, uint64_t now);
/* The store was locked: end every session. */
void fieldapp_locked(struct agent *a);

#endif
