/* fold.c - see fold.h.  A small table, not a library: the rule is the
 * Serbian alphabet's own, and it must be the same on every machine,
 * whatever locale or ICU version it has. */
#include "sync/fold.h"
#include "sync/utf8.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Code point to its folded ASCII text, for the letters that change
 * other than by ASCII case. */
static const struct {
	uint32_t cp;
	const char *to;
} table[] = {
	/* Latin-1 accented letters, both cases */
	{ 0xC0, "a" },
	{ 0xC1, "a" },
	{ 0xC2, "a" },
	{ 0xC3, "a" },
	{ 0xC4, "a" },
	{ 0xC5, "a" },
	{ 0xC7, "c" },
	{ 0xC8, "e" },
	{ 0xC9, "e" },
	{ 0xCA, "e" },
	{ 0xCB, "e" },
	{ 0xCC, "i" },
	{ 0xCD, "i" },
	{ 0xCE, "i" },
	{ 0xCF, "i" },
	{ 0xD1, "n" },
	{ 0xD2, "o" },
	{ 0xD3, "o" },
	{ 0xD4, "o" },
	{ 0xD5, "o" },
	{ 0xD6, "o" },
	{ 0xD9, "u" },
	{ 0xDA, "u" },
	{ 0xDB, "u" },
	{ 0xDC, "u" },
	{ 0xDD, "y" },
	{ 0xE0, "a" },
	{ 0xE1, "a" },
	{ 0xE2, "a" },
	{ 0xE3, "a" },
	{ 0xE4, "a" },
	{ 0xE5, "a" },
	{ 0xE7, "c" },
	{ 0xE8, "e" },
	{ 0xE9, "e" },
	{ 0xEA, "e" },
	{ 0xEB, "e" },
	{ 0xEC, "i" },
	{ 0xED, "i" },
	{ 0xEE, "i" },
	{ 0xEF, "i" },
	{ 0xF1, "n" },
	{ 0xF2, "o" },
	{ 0xF3, "o" },
	{ 0xF4, "o" },
	{ 0xF5, "o" },
	{ 0xF6, "o" },
	{ 0xF9, "u" },
	{ 0xFA, "u" },
	{ 0xFB, "u" },
	{ 0xFC, "u" },
	{ 0xFD, "y" },
	{ 0xFF, "y" },
	/* Serbian Latin: Ć ć Č č Đ đ Š š Ž ž */
	{ 0x106, "c" },
	{ 0x107, "c" },
	{ 0x10C, "c" },
	{ 0x10D, "c" },
	{ 0x110, "dj" },
	{ 0x111, "dj" },
	{ 0x160, "s" },
	{ 0x161, "s" },
	{ 0x17D, "z" },
	{ 0x17E, "z" },
	/* Serbian Cyrillic capitals Ђ Ј Љ Њ Ћ Џ */
	{ 0x402, "dj" },
	{ 0x408, "j" },
	{ 0x409, "lj" },
	{ 0x40A, "nj" },
	{ 0x40B, "c" },
	{ 0x40F, "dz" },
	/* ... and small ђ ј љ њ ћ џ */
	{ 0x452, "dj" },
	{ 0x458, "j" },
	{ 0x459, "lj" },
	{ 0x45A, "nj" },
	{ 0x45B, "c" },
	{ 0x45F, "dz" },
};

/* А..Я and а..я as Serbian uses them; letters Serbian lacks ("-") are
 * kept as they are. */
static const char *const cyrillic[32] = {
	"a", "b", "v", "g", "d", "e", "z", "z", "i", "-", "k", "l", "m", "n", "o", "p",
	"r", "s", "t", "u", "f", "h", "c", "c", "s", "-", "-", "-", "-", "-", "-", "-",
};

static const char *fold_cp(uint32_t cp)
{
	size_t lo = 0, hi = sizeof(table) / sizeof(table[0]);

	if (cp >= 0x410 && cp <= 0x44F) {
		const char *t = cyrillic[(cp - 0x410) % 32];

		return t[0] == '-' ? NULL : t;
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (table[mid].cp == cp)
			return table[mid].to;
		if (table[mid].cp < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int fold_text(const char *text, size_t len, char **ret)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, o = 0;
	int space = 0;
	char *out;

	/* Every input byte gives at most two output bytes ("đ" is two bytes
	 * and gives "dj"; "ђ" also two), so 2 * len + 1 is enough. */
	if (!text || !ret || len > (SIZE_MAX - 1) / 2)
		return -FS_EUSAGE;
	if (!(out = malloc(2 * len + 1)))
		return -ENOMEM;
	while (i < len) {
		uint32_t cp;
		size_t n = s[i] ? utf8_decode(s + i, len - i, &cp) : 0;
		const char *to;

		if (!n) {
			free(out);
			return -FS_EFORMAT;
		}
		if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' ||
		    cp == '\f' || cp == 0xA0) {
			space = o > 0;
			i += n;
			continue;
		}
		if (space) {
			out[o++] = ' ';
			space = 0;
		}
		if (cp >= 'A' && cp <= 'Z') {
			out[o++] = (char)(cp - 'A' + 'a');
		} else if ((to = fold_cp(cp))) {
			memcpy(out + o, to, strlen(to));
			o += strlen(to);
		} else {
			memcpy(out + o, s + i, n);
			o += n;
		}
		i += n;
	}
	out[o] = '\0';
	*ret = out;
	return 0;
}

int fold_equal(const char *a, const char *b)
{
	char *ka = NULL, *kb = NULL;
	int r;

	if ((r = fold_text(a, strlen(a), &ka)) < 0 || (r = fold_text(b, strlen(b), &kb)) < 0) {
		r = r == -ENOMEM ? r : 0;
		goto out;
	}
	r = !strcmp(ka, kb);
out:
	free(ka);
	free(kb);
	return r;
}
