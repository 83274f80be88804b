/* refusal.h - how HQ's request handlers say no.
 *
 * Each handler's result (ingest, downsync, enrolment, uploads, health
 * reports) carries the HTTP status, the protocol's error code and a
 * message for the device.  REFUSE fills the three and gives 0: a refusal
 * is an answer to send, not HQ's own failure (those are < 0).  Messages
 * name devices and hash prefixes, never field values or secrets; one
 * longer than the result's buffer is cut short.
 *
 * Thread safety: touches only the result it is given.
 */
#ifndef FS_REFUSAL_H
#define FS_REFUSAL_H

#include <stddef.h>

int refusal_set(int *status, const char **error, char *message, size_t cap, int http_status,
		const char *code, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* res: any result with members status, error and char message[]. */
#define REFUSE(res, http_status, code, ...)                                                        \
	refusal_set(&(res)->status, &(res)->error, (res)->message, sizeof((res)->message),         \
		    (http_status), (code), __VA_ARGS__)

#endif
