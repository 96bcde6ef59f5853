#include "base64.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t inlen, char **out, size_t *outlen)
{
	unsigned char *buf;
	unsigned int acc = 0;
	size_t i, n = 0, len = 0, pad = 0;
	int v;

	*out = NULL;
	*outlen = 0;
	/* every 4 characters give 3 bytes; +1 for the NUL that lets PEM be used as a string */
	buf = malloc(inlen / 4 * 3 + 3 + 1);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];

		if (isspace(c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		/* data after padding: two values run together, or garbage */
		if (pad)
			goto bad;
		v = b64_value(c);
		if (v < 0)
			goto bad;
		acc = (acc << 6) | (unsigned int)v;
		if (++n % 4 == 0) {
			buf[len++] = (unsigned char)(acc >> 16);
			buf[len++] = (unsigned char)(acc >> 8);
			buf[len++] = (unsigned char)acc;
			acc = 0;
		}
	}
	switch (n % 4) {
	case 1: /* 6 bits cannot make a byte */
		goto bad;
	case 2:
		buf[len++] = (unsigned char)(acc >> 4);
		break;
	case 3:
		buf[len++] = (unsigned char)(acc >> 10);
		buf[len++] = (unsigned char)(acc >> 2);
		break;
	}
	/* padding is optional, but when present it must be the right amount */
	if (pad && (pad > 2 || (n + pad) % 4))
		goto bad;
	buf[len] = '\0';
	*out = (char *)buf;
	*outlen = len;
	return 0;
bad:
	free(buf);
	return -EINVAL;
}
