/* http.c - the browser faces' common answers and checks (web/http.h). */
#include "web/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/log.h"

#define FILE_MAX (4u << 20) /* the largest page file served */

static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
			  "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
			  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

static const struct {
	const char *name, *value;
} HEADERS[] = {
	{ MHD_HTTP_HEADER_CACHE_CONTROL, "no-store" },
	{ "Content-Security-Policy", CSP },
	{ "X-Frame-Options", "DENY" },
	{ "X-Content-Type-Options", "nosniff" },
	{ "Referrer-Policy", "no-referrer" },
	{ "Cross-Origin-Opener-Policy", "same-origin" },
	{ "Cross-Origin-Resource-Policy", "same-origin" },
};

static const struct {
	const char *ext, *ctype;
} TYPES[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
};

void web_site_init(struct web_site *site, const char *scheme, const struct sockaddr_storage *addr,
		   uint16_t port)
{
	char ip[INET6_ADDRSTRLEN] = "";

	memset(site, 0, sizeof(*site));
	snprintf(site->scheme, sizeof(site->scheme), "%s", scheme);
	if (addr->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, ip,
			  sizeof(ip));
		snprintf(site->authority[0], sizeof(site->authority[0]), "[%s]:%u", ip, port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, ip, sizeof(ip));
		snprintf(site->authority[0], sizeof(site->authority[0]), "%s:%u", ip, port);
	}
	/* "localhost" is no rebinding risk: it never leaves the machine's own
	 * resolver (RFC 6761), and people type it. */
	snprintf(site->authority[1], sizeof(site->authority[1]), "localhost:%u", port);
}

void web_site_name(struct web_site *site, const char *host, uint16_t port)
{
	snprintf(site->authority[0], sizeof(site->authority[0]), "%s:%u", host, port);
}

void web_site_url(const struct web_site *site, char *out, size_t cap)
{
	snprintf(out, cap, "%s://%s/", site->scheme, site->authority[0]);
}

int web_http_allowed(struct MHD_Connection *conn, const struct web_site *site, const char *method)
{
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	size_t sl = strlen(site->scheme);
	int which = -1;

	for (int i = 0; i < 2 && host; i++)
		if (!strcasecmp(host, site->authority[i]))
			which = i;
	if (which < 0)
		return 0; /* a name that is not ours: a rebinding attempt, or a mistake */
	if (!origin)
		return !strcmp(method, MHD_HTTP_METHOD_GET) ||
		       !strcmp(method, MHD_HTTP_METHOD_HEAD);
	/* The Origin must be the page this server gave, on the same host. */
	return !strncasecmp(origin, site->scheme, sl) && !strncmp(origin + sl, "://", 3) &&
	       !strcasecmp(origin + sl + 3, site->authority[which]);
}

enum MHD_Result web_send(struct MHD_Connection *conn, unsigned status, void *body, size_t len,
			 const char *ctype, const char *set_cookie)
{
	return web_send_with(conn, status, body, len, ctype, set_cookie, NULL, NULL);
}

enum MHD_Result web_send_with(struct MHD_Connection *conn, unsigned status, void *body, size_t len,
			      const char *ctype, const char *set_cookie, const char *name,
			      const char *value)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret = MHD_NO;

	if (!resp) {
		free(body);
		return MHD_NO;
	}
	for (size_t i = 0; i < sizeof(HEADERS) / sizeof(HEADERS[0]); i++)
		if (MHD_add_response_header(resp, HEADERS[i].name, HEADERS[i].value) != MHD_YES)
			goto out;
	if ((ctype &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES) ||
	    (set_cookie &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, set_cookie) != MHD_YES) ||
	    (name && MHD_add_response_header(resp, name, value) != MHD_YES))
		goto out;
	ret = MHD_queue_response(conn, status, resp);
out:
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result web_send_json(struct MHD_Connection *conn, unsigned status, cJSON *o,
			      const char *set_cookie)
{
	return web_send_json_with(conn, status, o, set_cookie, NULL, NULL);
}

enum MHD_Result web_send_json_with(struct MHD_Connection *conn, unsigned status, cJSON *o,
				   const char *set_cookie, const char *name, const char *value)
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	char *copy = NULL;
	size_t len = text ? strlen(text) : 0;

	cJSON_Delete(o);
	/* MHD frees with free(); cJSON may use another allocator.  The text
	 * may hold field values: wiped before it goes back. */
	if (text && (copy = malloc(len)))
		memcpy(copy, text, len);
	if (text) {
		memset(text, 0, len);
		cJSON_free(text);
	}
	if (!copy)
		return MHD_NO;
	return web_send_with(conn, status, copy, len, "application/json", set_cookie, name, value);
}

enum MHD_Result web_send_error(struct MHD_Connection *conn, unsigned status, const char *code,
			       const char *message)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "error", code) ||
	    !cJSON_AddStringToObject(o, "message", message)) {
		cJSON_Delete(o);
		return MHD_NO;
	}
	return web_send_json(conn, status, o, NULL);
}

enum MHD_Result web_send_failure(struct MHD_Connection *conn, int r, const struct fs_error *err,
				 const char *who, const char *code, const char *message)
{
	switch (-r) {
	case FS_EUSAGE:
		return web_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request", err->msg);
	case FS_ENOTFOUND:
		return web_send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", err->msg);
	case FS_EEXIST:
		return web_send_error(conn, MHD_HTTP_CONFLICT, "done_already", err->msg);
	case FS_EVALID:
		return web_send_error(conn, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid", err->msg);
	case FS_ELIMIT:
		return web_send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", err->msg);
	case ENOSPC:
		return web_send_error(conn, MHD_HTTP_INSUFFICIENT_STORAGE, "disk_full", err->msg);
	default:
		log_msg(LOG_ERR, "%s: %s", who, err->msg);
		return web_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, code, message);
	}
}

const char *web_json_text(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* The content type of a servable name; NULL: not servable. */
static const char *file_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')) || !dot)
		return NULL;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-' || *p == '.'))
			return NULL;
	for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
		if (!strcmp(dot, TYPES[i].ext))
			return TYPES[i].ctype;
	return NULL;
}

enum MHD_Result web_send_file(struct MHD_Connection *conn, int dirfd, const char *name)
{
	const char *ctype = file_type(name);
	struct stat st;
	char *body = NULL;
	size_t got = 0;
	int fd = -1;

	if (!ctype ||
	    (fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0 ||
	    fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX)
		goto missing;
	if (!(body = malloc(st.st_size ? (size_t)st.st_size : 1)))
		goto missing;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, body + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto missing;
		got += (size_t)n;
	}
	close(fd);
	return web_send(conn, MHD_HTTP_OK, body, got, ctype, NULL);
missing:
	free(body);
	if (fd >= 0)
		close(fd);
	return web_send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such page");
}
