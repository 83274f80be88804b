/* http.h - what the browser faces answer alike over libmicrohttpd: the
 * field app (agent/fieldapp.h) now, HQ's console next.
 *
 * Every answer carries the same headers, personal data or not, so no
 * page can forget one:
 *   Cache-Control: no-store
 *   Content-Security-Policy: scripts, styles, images and fetches from the
 *     page's own origin only; no inline script or style element, no
 *     frames, no plug-ins, forms post to the origin only
 *   X-Frame-Options: DENY, X-Content-Type-Options: nosniff,
 *   Referrer-Policy: no-referrer, Cross-Origin-Opener-Policy and
 *   Cross-Origin-Resource-Policy: same-origin.
 *
 * Requests are checked against DNS rebinding and cross-site use before
 * anything else (web_http_allowed()): Host must name the address the
 * server listens on, and a request that changes state must come with an
 * Origin of that same address.
 *
 * The web_send_* functions queue one answer on conn and return what an
 * MHD access handler returns.  No state: thread-safe.
 */
#ifndef FS_WEB_HTTP_H
#define FS_WEB_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "crypto/fserr.h"
#include <microhttpd.h>

/* Who the browser must believe it talks to. */
struct web_site {
	char scheme[8];	       /* "http" or "https" */
	char authority[2][64]; /* Host values allowed: the address, and localhost */
};

/* The site a server bound to addr with the port it got answers as. */
void web_site_init(struct web_site *site, const char *scheme, const struct sockaddr_storage *addr,
		   uint16_t port);

/* Answer to host:port rather than the address (a name in a TLS
 * certificate, for a server not on loopback). */
void web_site_name(struct web_site *site, const char *host, uint16_t port);

/* The URL a person opens: scheme://address:port/. */
void web_site_url(const struct web_site *site, char *out, size_t cap);

/* 1 when the request may be served: its Host is one of site's
 * authorities, its Origin (if sent) is scheme://that same authority, and
 * a method other than GET and HEAD sent an Origin.  Else 0. */
int web_http_allowed(struct MHD_Connection *conn, const struct web_site *site, const char *method);

/* Queue body (malloc'd, consumed; len may be 0) as ctype with status;
 * set_cookie, when not NULL, is a Set-Cookie value. */
enum MHD_Result web_send(struct MHD_Connection *conn, unsigned status, void *body, size_t len,
			 const char *ctype, const char *set_cookie);
/* The same with one more header, name: value (name NULL: none). */
enum MHD_Result web_send_with(struct MHD_Connection *conn, unsigned status, void *body, size_t len,
			      const char *ctype, const char *set_cookie, const char *name,
			      const char *value);
/* o (consumed) as application/json. */
enum MHD_Result web_send_json(struct MHD_Connection *conn, unsigned status, cJSON *o,
			      const char *set_cookie);
enum MHD_Result web_send_json_with(struct MHD_Connection *conn, unsigned status, cJSON *o,
				   const char *set_cookie, const char *name, const char *value);
/* {"error": code, "message": message}: code for the page to choose its
 * words by, message in English for a log or a developer. */
enum MHD_Result web_send_error(struct MHD_Connection *conn, unsigned status, const char *code,
			       const char *message);

/* The answer to a request that failed with r (a negative fs_code or
 * errno) and err: the caller's mistake as 400 bad_request (FS_EUSAGE),
 * 404 not_found, 409 done_already (FS_EEXIST), 422 invalid (FS_EVALID),
 * 413 too_large (FS_ELIMIT) or 507 disk_full (ENOSPC), with err's
 * message, which names no value; anything else is the server's own
 * failure, logged as "who: message" and answered 500 with code and
 * message (a pointer to the log, not the cause). */
enum MHD_Result web_send_failure(struct MHD_Connection *conn, int r, const struct fs_error *err,
				 const char *who, const char *code, const char *message);

/* A string member of a request object, or NULL (absent, null, not a
 * string or empty). */
const char *web_json_text(const cJSON *o, const char *name);

/* The file name from dirfd (a directory of the pages: flat, so no name
 * has a slash) with its type from the extension.  Names other than
 * [a-z0-9][a-z0-9_.-]* with a known extension are 404, as are symbolic
 * links. */
enum MHD_Result web_send_file(struct MHD_Connection *conn, int dirfd, const char *name);

#endif
