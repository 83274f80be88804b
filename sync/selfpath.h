/* selfpath.h - files beside the running program: the network helper
 * beside the agent, the pages' share/ link in the build tree.  Reads
 * /proc/self/exe; no state: thread-safe. */
#ifndef FS_SELFPATH_H
#define FS_SELFPATH_H

#include <stddef.h>

/* "<directory of this program>/rel" into out; -errno, -ENOENT or
 * -ENAMETOOLONG. */
int selfpath_beside(const char *rel, char *out, size_t cap);

#endif
