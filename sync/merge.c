/* merge.c - last writer wins by (HLC, device id). */
#include "sync/merge.h"

#include <string.h>

int merge_compare(hlc_t a_hlc, const char *a_device, hlc_t b_hlc, const char *b_device)
{
	int c;

	if (a_hlc != b_hlc)
		return a_hlc > b_hlc ? 1 : -1;
	/* Lower-case hex of equal length: strcmp is byte-wise order. */
	c = strcmp(a_device, b_device);
	return (c > 0) - (c < 0);
}
