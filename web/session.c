/* session.c - cookie sessions and CSRF tokens (web/session.h). */
#include "web/session.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

struct web_session {
	int used;
	uint64_t last_ms;	   /* last use, monotonic */
	uint8_t cookie_hash[32];   /* BLAKE2b of the cookie's token */
	char csrf[WEB_TOKEN_TEXT]; /* the page's token, as text */
};

static void token_hash(const char *text, size_t len, uint8_t out[32])
{
	crypto_generichash(out, 32, (const uint8_t *)text, len, NULL, 0);
}

/* A random token as base64url text. */
static void token_new(char out[WEB_TOKEN_TEXT])
{
	uint8_t raw[WEB_TOKEN_BYTES];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(out, WEB_TOKEN_TEXT, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

/* Whether session idx has gone unused for idle_ms at now.  A use may be
 * later than the caller's now (a clock read before a request ran). */
static int idle(const struct web_sessions *t, int idx, uint64_t now)
{
	return t->slot[idx].last_ms + t->idle_ms <= now;
}

int web_sessions_init(struct web_sessions *t, const char *cookie_name, int secure, uint64_t idle_ms)
{
	memset(t, 0, sizeof(*t));
	t->slot = sodium_allocarray(WEB_SESSION_MAX, sizeof(*t->slot));
	if (!t->slot)
		return -ENOMEM;
	memset(t->slot, 0, WEB_SESSION_MAX * sizeof(*t->slot));
	snprintf(t->cookie, sizeof(t->cookie), "%s", cookie_name);
	t->secure = secure;
	t->idle_ms = idle_ms;
	return 0;
}

void web_sessions_free(struct web_sessions *t)
{
	if (t->slot)
		sodium_free(t->slot); /* wipes */
	t->slot = NULL;
}

int web_session_open(struct web_sessions *t, uint64_t now, char set_cookie[WEB_COOKIE_MAX])
{
	char cookie[WEB_TOKEN_TEXT];
	size_t pick = 0;

	for (size_t i = 0; i < WEB_SESSION_MAX; i++) {
		if (!t->slot[i].used) {
			pick = i;
			break;
		}
		if (t->slot[i].last_ms < t->slot[pick].last_ms)
			pick = i;
	}
	token_new(cookie);
	t->slot[pick].used = 1;
	t->slot[pick].last_ms = now;
	token_hash(cookie, strlen(cookie), t->slot[pick].cookie_hash);
	token_new(t->slot[pick].csrf);
	snprintf(set_cookie, WEB_COOKIE_MAX, "%s=%s; Path=/; HttpOnly; SameSite=Strict%s",
		 t->cookie, cookie, t->secure ? "; Secure" : "");
	sodium_memzero(cookie, sizeof(cookie));
	return (int)pick;
}

int web_session_find(struct web_sessions *t, struct MHD_Connection *conn, uint64_t now, int touch)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, t->cookie);
	uint8_t h[32];
	int found = -1;

	if (!v || strlen(v) != WEB_TOKEN_TEXT - 1)
		return -1;
	token_hash(v, WEB_TOKEN_TEXT - 1, h);
	/* Every slot is compared, in constant time, whichever matches. */
	for (size_t i = 0; i < WEB_SESSION_MAX; i++)
		if (t->slot[i].used && sodium_memcmp(h, t->slot[i].cookie_hash, sizeof(h)) == 0)
			found = (int)i;
	if (found >= 0 && idle(t, found, now)) {
		web_session_close(t, found);
		found = -1;
	}
	if (found >= 0 && touch)
		t->slot[found].last_ms = now;
	return found;
}

int web_session_csrf_ok(const struct web_sessions *t, int idx, struct MHD_Connection *conn)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, WEB_CSRF_HEADER);

	return idx >= 0 && idx < WEB_SESSION_MAX && t->slot[idx].used && v &&
	       strlen(v) == WEB_TOKEN_TEXT - 1 &&
	       sodium_memcmp(v, t->slot[idx].csrf, WEB_TOKEN_TEXT - 1) == 0;
}

const char *web_session_csrf(const struct web_sessions *t, int idx)
{
	return t->slot[idx].csrf;
}

void web_session_close(struct web_sessions *t, int idx)
{
	sodium_memzero(&t->slot[idx], sizeof(t->slot[idx]));
}

void web_sessions_close_all(struct web_sessions *t)
{
	if (t->slot)
		sodium_memzero(t->slot, WEB_SESSION_MAX * sizeof(*t->slot));
}

void web_session_forget_cookie(const struct web_sessions *t, char set_cookie[WEB_COOKIE_MAX])
{
	snprintf(set_cookie, WEB_COOKIE_MAX, "%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
		 t->cookie, t->secure ? "; Secure" : "");
}

int web_sessions_expire(struct web_sessions *t, uint64_t now, uint64_t *ret_next)
{
	int open = 0;

	*ret_next = UINT64_MAX;
	for (size_t i = 0; i < WEB_SESSION_MAX; i++) {
		if (!t->slot[i].used)
			continue;
		if (idle(t, (int)i, now)) {
			web_session_close(t, (int)i);
			continue;
		}
		open++;
		if (t->slot[i].last_ms + t->idle_ms < *ret_next)
			*ret_next = t->slot[i].last_ms + t->idle_ms;
	}
	return open;
}
