/* fuzz_config.c - agent.conf and hq.conf through the strict INI loader
 * (libinih underneath).  The input is handed over as a memfd path. */
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>

#include "agent/config.h"
#include "hq/hqconfig.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config a = { 0 };
	struct hq_config h = { 0 };
	struct fs_error err = { 0 };
	char path[64];
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		(void)!config_load(path, &a, &err);
		(void)!hqconfig_load(path, &h, &err);
	}
	config_free(&a);
	hqconfig_free(&h);
	close(fd);
	return 0;
}
