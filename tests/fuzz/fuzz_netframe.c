/* fuzz_netframe.c - the agent reading its network helper's frames, and
 * the helper reading the agent's (agent/netframe.h): the helper parses
 * HQ's bytes, so the agent treats what it says as hostile.  The first
 * byte picks the parser; the rest is the frame, header included. */
#include <stdlib.h>

#include "agent/netframe.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const kinds[] = { "A", "QC", "R" };
	struct hqlink_response resp = { 0 };
	struct netframe_request_buf q;
	struct fs_error err = { 0 };
	char text[NETFRAME_READY_MAX + 1];
	const uint8_t *p;
	size_t which, len;
	long n;

	if (size < 1 + NETFRAME_HEADER)
		return 0;
	which = data[0] % 3;
	p = data + 1 + NETFRAME_HEADER;
	len = size - 1 - NETFRAME_HEADER;
	n = netframe_header_check(data + 1, kinds[which], NETFRAME_ANSWER_MAX);
	if (n < 0 || (size_t)n != len)
		return 0;
	if (which == 0 && netframe_answer_decode(p, len, &resp, &err) == 0)
		hqlink_response_clear(&resp);
	else if (which == 1 && data[1 + 4] == NETFRAME_REQUEST)
		(void)netframe_request_decode(p, len, &q, &err);
	else if (which == 2)
		(void)netframe_ready_decode(p, len, text, sizeof(text));
	return 0;
}
