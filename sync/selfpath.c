/* selfpath.c - files beside the running program (sync/selfpath.h). */
#include "sync/selfpath.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int selfpath_beside(const char *rel, char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	self[n] = '\0';
	if (!(slash = strrchr(self, '/')))
		return -ENOENT;
	if ((size_t)snprintf(out, cap, "%.*s/%s", (int)(slash - self), self, rel) >= cap)
		return -ENAMETOOLONG;
	return 0;
}
