/* sniff.c - content types by magic bytes (sync/sniff.h). */
#include "sync/sniff.h"

#include <string.h>

static const struct {
	enum sniff_type type;
	const char *name;
	const uint8_t *magic;
	size_t len;
} known[] = {
	{ SNIFF_JPEG, "image/jpeg", (const uint8_t *)"\xff\xd8\xff", 3 },
	{ SNIFF_PNG, "image/png", (const uint8_t *)"\x89PNG\r\n\x1a\n", 8 },
	{ SNIFF_PDF, "application/pdf", (const uint8_t *)"%PDF-", 5 },
};

enum sniff_type sniff_bytes(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (len >= known[i].len && !memcmp(buf, known[i].magic, known[i].len))
			return known[i].type;
	return SNIFF_NONE;
}

const char *sniff_name(enum sniff_type t)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i].type == t)
			return known[i].name;
	return NULL;
}

enum sniff_type sniff_from_name(const char *name)
{
	for (size_t i = 0; name && i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(known[i].name, name))
			return known[i].type;
	return SNIFF_NONE;
}
