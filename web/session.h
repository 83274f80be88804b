/* session.h - browser sessions for the web faces: a cookie that names
 * the session, and a CSRF token the page sends back on every request
 * that changes state.
 *
 * The cookie is HttpOnly and SameSite=Strict (and Secure over HTTPS), so
 * a page's script cannot read it and another site's pages cannot send
 * it.  Both tokens are 32 random bytes in base64url.  The table keeps
 * only a hash of the cookie token, and the CSRF token in secure memory;
 * comparisons take the same time whatever matches.
 *
 * A session ends after idle_ms without a request that counts as use
 * (web_session_find() with touch set: a page's periodic status poll does
 * not), when closed, or when the table is full and a new one needs its
 * slot (the least recently used goes).
 *
 * Not thread-safe: one thread (the agent's loop) owns a table.
 */
#ifndef FS_WEB_SESSION_H
#define FS_WEB_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "crypto/fserr.h"

#define WEB_SESSION_MAX 8
#define WEB_TOKEN_BYTES 32
#define WEB_TOKEN_TEXT 44  /* base64url of WEB_TOKEN_BYTES, unpadded, and a NUL */
#define WEB_COOKIE_MAX 160 /* a Set-Cookie value */
#define WEB_CSRF_HEADER "X-CSRF-Token"

struct web_session;

struct web_sessions {
	struct web_session *slot; /* secure memory, WEB_SESSION_MAX */
	uint64_t idle_ms;
	char cookie[32]; /* the cookie's name */
	int secure;	 /* served over HTTPS: the cookie says Secure */
};

/* 0, or -ENOMEM. */
int web_sessions_init(struct web_sessions *t, const char *cookie_name, int secure,
		      uint64_t idle_ms) FS_WUR;
/* Ends every session and wipes the table; safe on a zeroed one. */
void web_sessions_free(struct web_sessions *t);

/* A new session at time now (monotonic ms): its index, with the
 * Set-Cookie value for the answer in set_cookie; -ENOMEM/-EIO when no
 * random token could be made. */
int web_session_open(struct web_sessions *t, uint64_t now, char set_cookie[WEB_COOKIE_MAX]);
/* The index of the live session conn's cookie names, or -1.  With touch,
 * its idle time starts again at now. */
int web_session_find(struct web_sessions *t, struct MHD_Connection *conn, uint64_t now, int touch);
/* Whether conn's WEB_CSRF_HEADER carries session idx's token. */
int web_session_csrf_ok(const struct web_sessions *t, int idx, struct MHD_Connection *conn);
/* Session idx's CSRF token, for the page that holds the session. */
const char *web_session_csrf(const struct web_sessions *t, int idx);
void web_session_close(struct web_sessions *t, int idx);
void web_sessions_close_all(struct web_sessions *t);
/* The Set-Cookie value that makes the browser forget the cookie. */
void web_session_forget_cookie(const struct web_sessions *t, char set_cookie[WEB_COOKIE_MAX]);
/* Close the sessions idle since idle_ms before now; returns how many
 * are still open, and when the next one falls idle in *ret_next
 * (UINT64_MAX: none). */
int web_sessions_expire(struct web_sessions *t, uint64_t now, uint64_t *ret_next);

#endif
