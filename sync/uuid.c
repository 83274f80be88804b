/* uuid.c - UUIDv7 generation and canonical text. */
#include "sync/uuid.h"

#include <ctype.h>
#include <string.h>
#include <sodium.h>

static void uuid_format(const uint8_t b[16], char out[UUID_TEXT_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[b[i] >> 4];
		*p++ = hex[b[i] & 15];
	}
	*p = '\0';
}

void uuid_v7_new(uint64_t unix_ms, char out[UUID_TEXT_LEN + 1])
{
	uint8_t b[16];

	randombytes_buf(b + 6, 10);
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(unix_ms >> (40 - 8 * i));
	b[6] = (uint8_t)(0x70 | (b[6] & 0x0f));
	b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
	uuid_format(b, out);
}

int uuid_normalize(const char *text, char out[UUID_TEXT_LEN + 1])
{
	if (strlen(text) != UUID_TEXT_LEN)
		return -FS_EFORMAT;
	for (int i = 0; i < UUID_TEXT_LEN; i++) {
		char c = text[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return -FS_EFORMAT;
			out[i] = c;
		} else {
			if (!isxdigit((unsigned char)c))
				return -FS_EFORMAT;
			out[i] = (char)tolower((unsigned char)c);
		}
	}
	out[UUID_TEXT_LEN] = '\0';
	return 0;
}
