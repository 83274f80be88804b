/* fuzz_agent_input.c - what reaches the agent from outside: requests on
 * its control socket and enrolment tokens.  The first byte picks. */
#include <stdlib.h>
#include <string.h>

#include "agent/ctl.h"
#include "sync/token.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		unsigned idx[CTL_MAX_FILES];
		char **argv = NULL;
		int argc;

		for (size_t nfds = 0; nfds <= 2; nfds++)
			if (ctl_parse_command(data + 1, size - 1, nfds, &argc, &argv, idx) == 0) {
				free(argv);
				argv = NULL;
			}
	} else {
		char *text = malloc(size);
		struct enroll_token t;

		if (!text)
			return 0;
		memcpy(text, data + 1, size - 1);
		text[size - 1] = '\0';
		(void)!token_parse(text, &t);
		free(text);
	}
	return 0;
}
