/*
 * Shared helpers for the libFuzzer harnesses in tests/fuzz/.
 *
 * A harness checks properties with FUZZ_CHECK(): a failed check prints what
 * was wrong and aborts, which libFuzzer reports as a crash and saves the
 * input (build/fuzz/artifacts/<name>/). Memory errors, leaks and undefined
 * behaviour are the sanitizers' job (-fsanitize=fuzzer,address,undefined).
 *
 * Strict checks (properties a known, reported bug breaks; see
 * tests/fuzz/README.md) are on; KSIGHT_FUZZ_STRICT=0 turns them off while
 * such a bug waits for its fix. KSIGHT_FUZZ_VERBOSE=1
 * prints what the target made of each input (to look at seeds and crashes).
 */
#ifndef KSIGHT_FUZZ_H
#define KSIGHT_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                                     \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "\n%s:%d: check failed: %s\n  ", __FILE__, \
				__LINE__, #cond);                                 \
			fprintf(stderr, __VA_ARGS__);                             \
			fputc('\n', stderr);                                      \
			abort();                                                  \
		}                                                                 \
	} while (0)

static inline bool fuzz_strict(void)
{
	static int strict = -1;

	if (strict < 0) {
		const char *s = getenv("KSIGHT_FUZZ_STRICT");

		strict = !(s && strcmp(s, "0") == 0);
	}
	return strict;
}

/* KSIGHT_FUZZ_VERBOSE=1: harnesses print what the target made of each input. */
static inline bool fuzz_verbose(void)
{
	static int verbose = -1;

	if (verbose < 0) {
		const char *s = getenv("KSIGHT_FUZZ_VERBOSE");

		verbose = s && s[0] && strcmp(s, "0") != 0;
	}
	return verbose;
}

/*
 * Strict UTF-8 as Go's utf8.Valid (what Prometheus and the Kubernetes API
 * server check): no overlong forms, no surrogates, nothing past U+10FFFF.
 * fuzz_utf8_seq() is the length of the valid sequence at s, 0 if none.
 */
static inline size_t fuzz_utf8_seq(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n, k;
	uint32_t cp;

	if (!len)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 1;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 2;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 3;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len - 1 < n)
		return 0;
	for (k = 1; k <= n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

static inline bool fuzz_utf8_valid(const char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		n = fuzz_utf8_seq(s + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

/*
 * s with each byte that does not start a valid sequence replaced by U+FFFD
 * (EF BF BD), into out (room for 3 * len bytes); returns the length.
 */
static inline size_t fuzz_utf8_replace(const char *s, size_t len, char *out)
{
	size_t i = 0, o = 0, n;

	while (i < len) {
		n = fuzz_utf8_seq(s + i, len - i);
		if (n) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	return o;
}

/* Reads the fuzzer's bytes front to back; past the end everything is 0. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v;

	if (!in->n)
		return 0;
	v = *in->p++;
	in->n--;
	return v;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in, unsigned int bytes)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < bytes; i++)
		v |= (uint64_t)fuzz_u8(in) << (8 * i);
	return v;
}

/*
 * A NUL-terminated string of up to `max` bytes, length from one byte; the
 * bytes are arbitrary, so the C string ends at the first NUL among them.
 * Heap-allocated to its exact size so ASan sees any overread. Free it.
 */
static inline char *fuzz_str(struct fuzz_in *in, size_t max)
{
	size_t len = fuzz_u8(in) % (max + 1), i;
	char *s;

	if (len > in->n)
		len = in->n;
	s = malloc(len + 1);
	if (!s)
		abort();
	for (i = 0; i < len; i++)
		s[i] = (char)fuzz_u8(in);
	s[len] = '\0';
	return s;
}

/* Exact-size heap copy, NUL-terminated; the NUL is past `len`. */
static inline char *fuzz_dup(const uint8_t *data, size_t len)
{
	char *s = malloc(len + 1);

	if (!s)
		abort();
	if (len)
		memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

#endif
