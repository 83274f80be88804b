/* netwatch.h - learn from the kernel when the network may be back.
 *
 * A NETLINK_ROUTE socket subscribed to link, address and route changes
 * (IPv4 and IPv6).  The agent polls it with its other descriptors, so a
 * cable plugged in, a Wi-Fi association or a VPN coming up wakes it at
 * once, with no polling timer.  Only "something appeared" matters: a
 * link going up and running, a new address or a new route.  Removals
 * are ignored; a failed push notices those.  Not thread-safe per fd.
 */
#ifndef FS_NETWATCH_H
#define FS_NETWATCH_H

#include "crypto/fserr.h"

/* A non-blocking, close-on-exec netlink socket, or -errno with err. */
int netwatch_open(struct fs_error *err) FS_WUR;

/* Drain what is queued.  *ret_up is 1 when any message says a link came
 * up, or an address or route was added, or when the kernel dropped
 * messages (ENOBUFS: we cannot know what we missed).  Returns 0 or
 * -errno. */
int netwatch_read(int fd, int *ret_up) FS_WUR;

#endif
