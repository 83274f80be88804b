/* upload.h - sending attached files to HQ (docs/PROTOCOL.md, "Attached
 * files"), after the records.
 *
 * upload_pending() sends each file HQ has not said it holds, oldest
 * first: it asks HQ which chunks it has (a query, sync/filewire.h) and
 * sends the others, each read from the store (agent/attach.h), sealed to
 * HQ and signed, one request each.  When HQ answers that the file is
 * complete (also at once, when another device sent it) the file is
 * marked sent, in the store, and is never sent again.  Nothing is kept
 * of the upload on the device: after a cut, a crash or a restart the
 * query tells what is left, so at most the chunk in flight is sent twice
 * (and HQ keeps it once).
 *
 * Records never wait for files: the caller pushes first, and *yield,
 * raised when new records wait, stops the upload between two chunks
 * (stats->yielded).  A file HQ refuses stops the upload with the error
 * (the next attempt tries again): quota (-FS_ELIMIT, HQ's message naming
 * the sizes), chunks that did not hash to the name (-EBADMSG).  Other
 * errors as push.h's.  Not thread-safe: one store, one transport.
 */
#ifndef FS_UPLOAD_AGENT_H
#define FS_UPLOAD_AGENT_H

#include <stdint.h>

#include "agent/enroll.h"
#include "agent/hqlink.h"
#include "agent/store.h"
#include "crypto/fserr.h"

struct upload_stats {
	unsigned long long files;   /* files HQ now holds */
	unsigned long long chunks;  /* chunks sent */
	unsigned long long bytes;   /* request bytes of those */
	unsigned long long refused; /* files HQ refused (over its quota) */
	int yielded;		    /* stopped for waiting records */
};

/* chunk_size: bytes per chunk for an upload HQ has not begun (0: the
 * default); HQ's answer names it for one it has.  A file HQ refuses as
 * too large is passed over for the rest, and the first such refusal is
 * returned (-FS_ELIMIT) once they went. */
int upload_pending(struct store *s, const struct enrolment *en, struct hqlink *t,
		   uint32_t chunk_size, const _Atomic int *yield, struct upload_stats *stats,
		   struct fs_error *err) FS_WUR;

#endif
