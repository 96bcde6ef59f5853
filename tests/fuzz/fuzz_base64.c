/*
 * base64_decode() (user/base64.c: kubeconfig *-data fields).
 *
 * 1. The input as base64 text: the verdict and the bytes must agree with a
 *    straightforward bit-by-bit reference decoder of the documented rules
 *    (standard alphabet, padding optional but exact when present, nothing
 *    after padding, whitespace ignored); on success the output is
 *    NUL-terminated, on failure NULL with length 0.
 * 2. The input as raw bytes: encoded here (padding on or off, wrapped at
 *    64 or 76 columns with LF or CRLF, surrounding blanks, per the first
 *    byte) it must decode to exactly those bytes.
 */
#include <ctype.h>
#include <errno.h>

#include "base64.h"
#include "k8s_client.h"
#include "fuzz.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int value(unsigned char c)
{
	const char *p = c ? strchr(alphabet, c) : NULL;

	return p ? (int)(p - alphabet) : -1;
}

/* Returns false for invalid input; *out malloc'd otherwise. */
static bool reference_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
	size_t i, chars = 0, pad = 0, bits = 0, n = 0;
	uint32_t acc = 0;
	unsigned char *buf = malloc(len + 1);

	if (!buf)
		abort();
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad || value(c) < 0)
			goto bad;
		chars++;
		acc = (acc << 6) | (uint32_t)value(c);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (chars % 4 == 1 || pad > 2 || (pad && (chars + pad) % 4))
		goto bad;
	*out = buf;
	*outlen = n;
	return true;
bad:
	free(buf);
	return false;
}

static char *encode(const unsigned char *in, size_t len, uint8_t style, size_t *outlen)
{
	size_t cap = len * 2 + 16, n = 0, col = 0, i;
	unsigned int wrap = (style & 1) ? ((style & 2) ? 64 : 76) : 0;
	bool crlf = style & 4, nopad = style & 8, blanks = style & 16;
	char *out = malloc(cap), quad[4];

	if (!out)
		abort();
	if (blanks)
		out[n++] = ' ';
	for (i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t k, q = 4;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		quad[0] = alphabet[(v >> 18) & 63];
		quad[1] = alphabet[(v >> 12) & 63];
		quad[2] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		quad[3] = i + 2 < len ? alphabet[v & 63] : '=';
		if (nopad)
			while (q && quad[q - 1] == '=')
				q--;
		for (k = 0; k < q; k++) {
			out[n++] = quad[k];
			if (wrap && ++col == wrap) {
				if (crlf)
					out[n++] = '\r';
				out[n++] = '\n';
				col = 0;
			}
		}
	}
	if (blanks)
		out[n++] = '\n';
	*outlen = n;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = (char *)1, *enc;
	unsigned char *ref = NULL;
	size_t outlen = 99, reflen = 0, enclen;
	bool ok;
	int rc;

	/* 1: as text (libFuzzer's buffer is exactly `size` bytes: overreads show) */
	rc = base64_decode((const char *)data, size, &out, &outlen);
	ok = reference_decode((const char *)data, size, &ref, &reflen);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "rc %d", rc);
	FUZZ_CHECK((rc == 0) == ok, "base64_decode says %d, the reference %s", rc,
		   ok ? "valid" : "invalid");
	if (rc == 0) {
		FUZZ_CHECK(out && outlen == reflen && !memcmp(out, ref, reflen),
			   "decoded %zu bytes, the reference %zu", outlen, reflen);
		FUZZ_CHECK(out[outlen] == '\0', "not NUL-terminated");
	} else {
		FUZZ_CHECK(!out && outlen == 0, "failure left out=%p len=%zu", (void *)out, outlen);
	}
	free(out);
	free(ref);

	/* 2: as bytes, round trip */
	if (size) {
		enc = encode(data + 1, size - 1, data[0], &enclen);
		rc = base64_decode(enc, enclen, &out, &outlen);
		FUZZ_CHECK(rc == 0, "rc %d for our own encoding \"%.*s\"", rc, (int)enclen, enc);
		FUZZ_CHECK(outlen == size - 1 && !memcmp(out, data + 1, outlen),
			   "round trip of %zu bytes gave %zu", size - 1, outlen);
		free(out);
		free(enc);
	}
	return 0;
}
