/* fuzz_changeset_payload.c - the readers of a change set's payload (HQ's
 * side, after the seal is opened: changeset_payload_open), which
 * fuzz_changeset reaches only through a valid signature and seal.
 *
 * Input: one byte picking the version (1 to 5), two bytes of change
 * count (big-endian, 1 to 65,536, so the readers see counts both over
 * and under the payload's), then the payload's JSON.  The HLC range is
 * all of it, so that a row's HLC rarely stops the reader first.  The
 * seeds are the payloads of the vectors in each version.
 */
#include <stdlib.h>

#include "sync/changeset.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct changeset_header h = { .hlc_min = 0, .hlc_max = UINT64_MAX };
	struct change *ch = NULL;
	size_t n = 0;

	if (size < 3)
		return 0;
	h.version = (uint8_t)(1 + data[0] % CHANGESET_VERSION_COLUMNS);
	h.count = 1 + (((uint32_t)data[1] << 8) | data[2]);
	if (h.count > CHANGESET_MAX_CHANGES)
		return 0;
	if (changeset_payload_open((const char *)data + 3, size - 3, &h, &ch, &n, NULL) == 0)
		changes_free(ch, n);
	return 0;
}
