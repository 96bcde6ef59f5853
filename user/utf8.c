#include "utf8.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one. */
size_t utf8_valid_len(const unsigned char *s, size_t n)
{
	unsigned int cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

void utf8_sanitize(const char *in, char *out, size_t outlen)
{
	const unsigned char *u = (const unsigned char *)in;
	size_t n = strlen(in), i = 0, o = 0, len;

	if (!outlen)
		return;
	while (i < n) {
		len = utf8_valid_len(u + i, n - i);
		if (len) {
			if (o + len >= outlen)
				break;
			memcpy(out + o, in + i, len);
			o += len;
			i += len;
		} else {
			if (o + 3 >= outlen)
				break;
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
}
