/* cmd_files.h - `fieldsync-hq attachment get HASH` and `attachment
 * list`: the attached files HQ holds (hq/files.h, hq/upload.h).
 *
 * get writes the file's bytes to standard output, checked against its
 * seal and hash as they are read; the audit log records who fetched
 * which file ("attachment_get" {command, sha256, user}) before a byte is
 * written, so no file leaves HQ unaudited.  A file that fails its check
 * exits 2 and the caller discards what was written.  list prints hash,
 * size, the device that sent it first and when, one per line.  Returns
 * the exit status (sync/clierr.h).
 */
#ifndef FS_CMD_FILES_H
#define FS_CMD_FILES_H

#include "hq/hqconfig.h"

/* argv[0] is "attachment". */
int hqcli_attachment(struct hq_config *cfg, int argc, char **argv);

#endif
