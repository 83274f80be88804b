/* listen.h - the listen addresses both servers take: HQ's device API
 * and console (hq/server.h), and the agent's field app (agent/fieldapp.h).
 *
 * The text is a numeric ADDR:PORT ("127.0.0.1:8750", "[::1]:8750",
 * "0.0.0.0:8443"); no host names, so nothing depends on a resolver.
 * Port 0 lets the kernel choose.  Errors are -FS_EUSAGE with a message
 * naming the text.  No state: thread-safe.
 */
#ifndef FS_WEB_LISTEN_H
#define FS_WEB_LISTEN_H

#include <sys/socket.h>

#include "crypto/fserr.h"

/* Parse text into *ret (length *ret_len); *ret_loopback says whether it
 * is a loopback address (127.0.0.0/8 or ::1). */
int web_listen_parse(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len,
		     int *ret_loopback, struct fs_error *err) FS_WUR;

#endif
