/* merge.h - the merge rule, as pure functions.
 *
 * Per field, the last writer wins by (HLC, device id): the higher HLC
 * wins, and equal HLCs are broken by the byte-wise greater device id.
 * Deletes are the field "_deleted" under the same rule.  Because the
 * order is total, merging the same changes in any order gives the same
 * state (the convergence promise).  Two writes to one field are
 * concurrent when neither device had seen the other's write; HQ records
 * them as a conflict for review, and the rule still picks the winner.
 */
#ifndef FS_MERGE_H
#define FS_MERGE_H

#include "sync/hlc.h"

/* Compare two writes: > 0 when (a_hlc, a_device) wins, < 0 when b wins,
 * 0 only for the very same write.  Devices are hex ids of equal length. */
int merge_compare(hlc_t a_hlc, const char *a_device, hlc_t b_hlc, const char *b_device);

#endif
