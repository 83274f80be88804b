/* cmd_user.h - `fieldsync-hq user add|passwd|remove|list`: the console's
 * accounts (hq/users.h) from the command line.  Returns the exit status
 * (sync/clierr.h); errors are printed to stderr, never a password. */
#ifndef FS_CMD_USER_H
#define FS_CMD_USER_H

#include "hq/hqconfig.h"

int hqcli_user(struct hq_config *cfg, int argc, char **argv);

#endif
