/* listen.c - numeric ADDR:PORT into a socket address (web/listen.h). */
#include "web/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int web_listen_parse(const char *text, struct sockaddr_storage *ret, socklen_t *ret_len,
		     int *ret_loopback, struct fs_error *err)
{
	char host[256];
	const char *colon = strrchr(text, ':'), *h = text;
	size_t hl;
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM },
			*ai = NULL;
	char *end;
	unsigned long port;

	if (!colon)
		return fs_error_set(err, -FS_EUSAGE, "listen address %s: not ADDR:PORT", text);
	hl = (size_t)(colon - text);
	if (hl >= 2 && text[0] == '[' && text[hl - 1] == ']') {
		h = text + 1;
		hl -= 2;
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (hl == 0 || hl >= sizeof(host) || errno || *end || !colon[1] || port > 65535)
		return fs_error_set(err, -FS_EUSAGE, "listen address %s: not ADDR:PORT", text);
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai)
		return fs_error_set(err, -FS_EUSAGE, "listen address %s: not a numeric IP address",
				    text);
	memcpy(ret, ai->ai_addr, ai->ai_addrlen);
	*ret_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	if (ret->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ret;

		*ret_loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ret;

		*ret_loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return 0;
}
