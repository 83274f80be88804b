/* server.h - the HTTP(S) sync server (libmicrohttpd, thread pool).
 *
 * Endpoints (docs/PROTOCOL.md, "HTTP API"): GET /v1/health,
 * POST /v1/enroll (JSON, at most SERVER_ENROLL_MAX bytes) and
 * POST /v1/changesets (raw, at most CHANGESET_MAX_BYTES).  A declared
 * Content-Length over the limit is answered 413 before any of the body
 * is read; a chunked body is kept only up to the limit, then drained
 * and answered 413 (or cut off, see SERVER_DISCARD_FACTOR).  More than
 * cfg->max_inflight requests in progress get 503 with Retry-After, and
 * cfg->reserved of those slots are kept for change sets whose first
 * bytes name an enrolled device; health, 404 and 405 take none.  A body
 * slower than cfg->min_upload_rate (after SERVER_UPLOAD_GRACE_S) has its
 * connection closed; one address may hold cfg->per_peer connections.  Every
 * error is a JSON body {"error", "message", ...}.  Each request opens
 * its own database connection, so no SQLite handle crosses threads.
 * HTTPS when cfg has tls_cert and tls_key; plain HTTP only on a loopback
 * address (-FS_EUSAGE otherwise).
 *
 * The server keeps pointers to cfg, hq and forms; they must outlive it.
 * Logs (stderr) name the request, status, device and error code, never
 * a field value, token or key.
 */
#ifndef FS_SERVER_H
#define FS_SERVER_H

#include <stdint.h>

#include "crypto/fserr.h"
#include "crypto/identity.h"
#include "hq/hqconfig.h"
#include "hq/hqforms.h"

#define SERVER_ENROLL_MAX (16 * 1024)
#define SERVER_TIMEOUT_S 30
/* Seconds before [server] min_upload_rate applies to a request body. */
#define SERVER_UPLOAD_GRACE_S 10
#define SERVER_RETRY_AFTER_S "1"
#define SERVER_PEM_MAX (1024 * 1024)
/* A chunked body past its limit is drained (nothing kept) and answered
 * 413, up to this many times the limit; then the connection is closed. */
#define SERVER_DISCARD_FACTOR 4

struct server;

/* Parse listen ("ADDR:PORT" or "[ADDR]:PORT"), check the TLS rule and
 * start the daemon; port 0 binds a free port (see server_port). */
int server_start(const struct hq_config *cfg, const struct identity *hq,
		 const struct hq_forms *forms, struct server **ret, struct fs_error *err) FS_WUR;

/* The bound port. */
uint16_t server_port(const struct server *s);

/* Read a PEM file (NUL-terminated, at most SERVER_PEM_MAX bytes) into
 * memory, secure memory when secret (free with secmem_free, else
 * free); the console reads the same certificate and key. */
int server_read_pem(const char *path, int secret, char **ret, struct fs_error *err) FS_WUR;

/* Stop accepting, finish running requests, free; NULL-safe; NULL. */
struct server *server_stop(struct server *s);

#endif
