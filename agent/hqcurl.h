/* hqcurl.h - the libcurl transport behind struct hqlink (agent/hqlink.h).
 *
 * Only the network helper (fieldsync-net, agent/netmain.c) links it: the
 * agent and the command line reach HQ through that helper
 * (agent/netproc.h), so libcurl and what it loads (OpenSSL, Kerberos,
 * LDAP, SSH, and more: 2.9 MiB of an idle agent's pages, issue 18) stay
 * out of the process that holds the store's key.  Errors as hqlink.h
 * says.  Not thread-safe: one transport, one thread.
 */
#ifndef FS_HQCURL_H
#define FS_HQCURL_H

#include <stdint.h>

#include "agent/hqlink.h"

/* libcurl transport; initialises libcurl and cleans it up when freed.
 * libcurl honours https_proxy/HTTPS_PROXY from the environment for
 * https:// URLs; plain http:// (loopback only) never goes through a
 * proxy. */
int hqcurl_new(struct hqlink **ret, struct fs_error *err) FS_WUR;

/* Replace the connect timeout and the stall timeout (a transfer slower
 * than HQLINK_LOW_SPEED_BYTES per second for that long fails), seconds;
 * 0 keeps the default.  Only for hqcurl_new() transports. */
void hqcurl_timeouts(struct hqlink *t, unsigned connect_s, unsigned stall_s);

/* The time the Fieldsync-Time header gives, Unix milliseconds, for the
 * requests from now on; 0 (the default) is this process's clock at each
 * request.  The network helper sends the agent's.  Only for
 * hqcurl_new() transports. */
void hqcurl_wall_clock(struct hqlink *t, uint64_t wall_ms);

#endif
