/* cmd_review.h - `fieldsync-hq resolve`, `release` and `reject`: the
 * console's review actions (hq/ingest.h, ingest_resolve and
 * ingest_review) from the command line, for scripts and for an HQ whose
 * console is off.  The audit log names the acting user as "shell:" and
 * the login name.  Returns the exit status (sync/clierr.h); errors go
 * to stderr and never hold a value.
 */
#ifndef FS_CMD_REVIEW_H
#define FS_CMD_REVIEW_H

#include "hq/hqconfig.h"

/* cmd is "resolve", "release" or "reject"; argv[0] is cmd. */
int hqcli_review(struct hq_config *cfg, const char *cmd, int argc, char **argv);

#endif
