/* request.c - request bodies, libmicrohttpd's messages and the pages'
 * directory for the web faces (web/request.h). */
#include "web/request.h"

#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "sync/log.h"
#include "sync/selfpath.h"

/* Append n bytes to a file body, growing it by copying (so that no
 * freed copy of a photo is left unwiped, as realloc would leave one). */
static int file_append(struct web_body *b, const char *upload, size_t n)
{
	if (n > b->file_max - b->len) {
		b->too_big = 1;
		return 0;
	}
	if (b->len + n > b->file_cap) {
		size_t cap = b->file_cap ? b->file_cap : 256 * 1024;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		if (cap > b->file_max)
			cap = b->file_max;
		if (!(p = malloc(cap)))
			return -1;
		if (b->file) {
			memcpy(p, b->file, b->len);
			sodium_memzero(b->file, b->file_cap);
			free(b->file);
		}
		b->file = p;
		b->file_cap = cap;
	}
	memcpy(b->file + b->len, upload, n);
	b->len += n;
	return 0;
}

static int gather(void **con_cls, const char *upload, size_t *upload_size, size_t file_max,
		  struct web_body **ret)
{
	struct web_body *b = *con_cls;

	if (!b) {
		if (!(b = sodium_malloc(sizeof(*b))))
			return WEB_BODY_FAILED;
		b->len = 0;
		b->too_big = 0;
		b->file = NULL;
		b->file_cap = 0;
		b->file_max = file_max;
		*con_cls = b;
		return WEB_BODY_MORE;
	}
	if (*upload_size && b->file_max) {
		if (!b->too_big && file_append(b, upload, *upload_size) < 0)
			return WEB_BODY_FAILED;
		*upload_size = 0;
		return WEB_BODY_MORE;
	}
	if (*upload_size) {
		if (*upload_size > sizeof(b->data) - b->len)
			b->too_big = 1;
		else if (!b->too_big)
			memcpy(b->data + b->len, upload, *upload_size);
		if (!b->too_big)
			b->len += *upload_size;
		*upload_size = 0;
		return WEB_BODY_MORE;
	}
	*ret = b;
	return WEB_BODY_WHOLE;
}

int web_body_gather(void **con_cls, const char *upload, size_t *upload_size, struct web_body **ret)
{
	return gather(con_cls, upload, upload_size, 0, ret);
}

int web_body_gather_file(void **con_cls, const char *upload, size_t *upload_size, size_t max,
			 struct web_body **ret)
{
	return gather(con_cls, upload, upload_size, max, ret);
}

void web_body_done(void *cls, struct MHD_Connection *conn, void **con_cls,
		   enum MHD_RequestTerminationCode why)
{
	struct web_body *b = *con_cls;

	(void)cls;
	(void)conn;
	(void)why;
	if (b && b->file) {
		sodium_memzero(b->file, b->file_cap);
		free(b->file);
	}
	if (b)
		sodium_free(b); /* wipes */
	*con_cls = NULL;
}

void web_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_msg(LOG_WARNING, "%s: %s", cls ? (const char *)cls : "web", msg);
}

int web_pages_open(const char *configured, const char *rel, const char *installed, char *where,
		   size_t cap)
{
	int fd, e;

	if (configured) {
		snprintf(where, cap, "%s", configured);
		return open(where, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (selfpath_beside(rel, where, cap) == 0 &&
	    (fd = open(where, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
		return fd;
	fd = open(installed, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	e = errno;
	snprintf(where, cap, "%s", installed);
	errno = e;
	return fd;
}

void web_peer_key(struct MHD_Connection *conn, char out[WEB_PEER_KEY_MAX])
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	struct in6_addr a;

	strcpy(out, "?");
	if (sa && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  INET6_ADDRSTRLEN);
	} else if (sa && sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&a)) {
			inet_ntop(AF_INET, &a.s6_addr[12], out, INET6_ADDRSTRLEN);
		} else {
			memset(&a.s6_addr[8], 0, 8);
			inet_ntop(AF_INET6, &a, out, INET6_ADDRSTRLEN);
			strcat(out, "/64");
		}
	}
}
