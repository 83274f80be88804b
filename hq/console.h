/* console.h - HQ's console: the administrators' web interface, served
 * by `fieldsync-hq serve` on its own listener ([console] listen, default
 * 127.0.0.1:8760), apart from the devices' API.  Plain HTTP on a
 * loopback address only; elsewhere HTTPS with [server] tls_cert and
 * tls_key, reached by the name [console] host.  Pages come from
 * share/fieldsync/console/ (beside the program in the build tree, else
 * installed), and nothing is fetched from elsewhere.
 *
 * Accounts are hq/users.h's.  Logging in opens a session: an HttpOnly,
 * SameSite=Strict cookie (Secure over HTTPS) that ends after [console]
 * idle_minutes without use, and a CSRF token every POST must carry in
 * X-CSRF-Token.  Every request is checked first for Host and Origin
 * (web/http.h), and every answer carries no-store, a strict CSP and
 * X-Frame-Options: DENY.  A viewer's answers hold only its
 * municipalities' data.
 *
 * API (docs/PROTOCOL.md, "HQ's console"):
 *   GET  /api/session    {"session", "user", "role", "municipalities", "csrf"}
 *   POST /api/login      {"name", "password"}: 200 and the cookie; 401
 *                        wrong_login; 429 paused with Retry-After
 *   POST /api/logout
 *   GET  /api/devices    the devices the account may see, with their
 *                        health
 *   GET  /api/audit      the newest audit entries (?event=, ?device=),
 *                        administrators only
 *   POST /api/audit/verify  the whole log checked; audited
 *   GET  /api/quarantine, POST /api/quarantine/release|reject
 *   GET  /api/conflicts, POST /api/conflicts/resolve
 *   POST /api/devices/revoke, POST /api/tokens
 *   GET  /metrics        Prometheus, with [console] metrics_token_file
 *
 * One thread serves the console (libmicrohttpd's internal polling
 * thread), so its session table needs no lock; requests take their
 * database connection from a pool of one (hq/hqpool.h).  A console that cannot start (the port is
 * taken, no pages) is logged and HQ serves the devices without it.
 */
#ifndef FS_CONSOLE_H
#define FS_CONSOLE_H

#include <stdint.h>

#include "crypto/fserr.h"
#include "crypto/identity.h"
#include "hq/hqconfig.h"
#include "hq/hqforms.h"

#define CONSOLE_COOKIE "fieldsync_console"
#define CONSOLE_PAGES "share/fieldsync/console"
#define CONSOLE_CONNECTIONS 64
#define CONSOLE_TIMEOUT_S 60

struct console;

/* Start serving when [console] enabled; *ret NULL when it is off. */
int console_start(const struct hq_config *cfg, const struct identity *hq,
		  const struct hq_forms *forms, struct console **ret, struct fs_error *err) FS_WUR;
/* The bound port. */
uint16_t console_port(const struct console *c);
/* The URL to open, into out. */
void console_url(const struct console *c, char *out, size_t cap);
/* NULL-safe; returns NULL. */
struct console *console_stop(struct console *c);

#endif
