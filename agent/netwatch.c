/* netwatch.c - rtnetlink link, address and route notifications. */
#include "agent/netwatch.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

int netwatch_open(struct fs_error *err)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
			     RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
	};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return fs_error_set(err, -errno, "netlink socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = fs_error_set(err, -errno, "netlink bind: %s", strerror(errno));

		close(fd);
		return r;
	}
	return fd;
}

static int message_says_up(const struct nlmsghdr *h)
{
	switch (h->nlmsg_type) {
	case RTM_NEWLINK: {
		const struct ifinfomsg *ifi = NLMSG_DATA(h);

		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
			return 0;
		return (ifi->ifi_flags & IFF_UP) && (ifi->ifi_flags & IFF_RUNNING);
	}
	case RTM_NEWADDR:
	case RTM_NEWROUTE:
		return 1;
	default:
		return 0;
	}
}

int netwatch_read(int fd, int *ret_up)
{
	/* Aligned for struct nlmsghdr; a few messages per read. */
	static _Alignas(struct nlmsghdr) char buf[16384];

	*ret_up = 0;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == ENOBUFS) {
			*ret_up = 1;
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n))
			if (message_says_up(h))
				*ret_up = 1;
	}
}
