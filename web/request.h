/* request.h - what a browser's request brings to the web faces (the
 * field app, HQ's console): a POST's body, gathered over
 * libmicrohttpd's calls into secure memory, since it may hold a
 * passphrase or a password, and wiped when the request ends; and the
 * page files, found where the program is run from.
 *
 * Use in an access handler:
 *   switch (web_body_gather(con_cls, upload, upload_size, &body)) {
 *   case WEB_BODY_MORE: return MHD_YES;   (more is coming)
 *   case WEB_BODY_FAILED: return MHD_NO;  (out of memory)
 *   }  ... body is whole: body->too_big, body->len, body->data
 * and web_body_done as MHD_OPTION_NOTIFY_COMPLETED.  No state beyond
 * the connection's: thread-safe.
 */
#ifndef FS_WEB_REQUEST_H
#define FS_WEB_REQUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <microhttpd.h>

#define WEB_BODY_MAX (64u << 10) /* the largest body a page sends */

struct web_body {
	size_t len;
	int too_big; /* more than WEB_BODY_MAX came: refuse it (413) */
	/* A file (web_body_gather_file): its bytes, malloc'd, len of them,
	 * at most max; NULL for other bodies, which are in data. */
	uint8_t *file;
	size_t file_cap, file_max;
	char data[WEB_BODY_MAX];
};

enum { WEB_BODY_FAILED = -1, WEB_BODY_MORE = 0, WEB_BODY_WHOLE = 1 };

int web_body_gather(void **con_cls, const char *upload, size_t *upload_size, struct web_body **ret);
/* The same for a file a page sends (a photo): up to max bytes, into
 * ordinary memory (a photo is too large to lock), wiped when it grows
 * and when the request ends. */
int web_body_gather_file(void **con_cls, const char *upload, size_t *upload_size, size_t max,
			 struct web_body **ret);
/* MHD_OPTION_NOTIFY_COMPLETED: wipes and frees the body. */
void web_body_done(void *cls, struct MHD_Connection *conn, void **con_cls,
		   enum MHD_RequestTerminationCode why);

/* MHD_OPTION_EXTERNAL_LOGGER, cls the name to log under ("field app"):
 * libmicrohttpd's messages (a bind failure, a malformed request), its
 * format, never a value of ours, to sync/log.h. */
void web_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* What per-address limits count by, as text: an IPv4 address (also when
 * mapped into IPv6), or an IPv6 /64, which one subscriber usually holds
 * whole: otherwise each of its 2^64 addresses would get its own bucket.
 * "?" when the address is unknown. */
#define WEB_PEER_KEY_MAX (INET6_ADDRSTRLEN + 4)
void web_peer_key(struct MHD_Connection *conn, char out[WEB_PEER_KEY_MAX]);

/* The directory of pages: configured when not NULL, else rel beside the
 * program (the build tree's share/ link), else installed.  Its
 * descriptor (O_DIRECTORY) or -1 with errno; where gets the path tried
 * last. */
int web_pages_open(const char *configured, const char *rel, const char *installed, char *where,
		   size_t cap);

#endif
