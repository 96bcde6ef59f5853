/*
 * Small helpers every module may use: one hash, one clock, one random
 * jitter source, one way to free a secret, one -errno. Header-only: each is
 * a few lines.
 */
#ifndef KSIGHT_UTIL_H
#define KSIGHT_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSEC_PER_MSEC 1000000LL
#define NSEC_PER_SEC  1000000000LL

/*
 * errno as a negative code after a failed call, never 0: a library call
 * (libbpf's among them) can fail and leave errno 0, and a 0 returned for it
 * would read as success. Then -fallback (a positive errno; -EINVAL if not).
 */
static inline int neg_errno_or(int fallback)
{
	if (errno > 0)
		return -errno;
	return fallback > 0 ? -fallback : -EINVAL;
}

static inline int neg_errno(void)
{
	return neg_errno_or(EINVAL);
}

/* FNV-1a, 64 bits: short keys (label values, names); mask or reduce the low bits. */
static inline uint64_t hash_fnv1a(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Nanoseconds on `clk` (CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME). */
static inline int64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* xorshift64*: for jitter only, never for anything secret. `*state` must not be 0. */
static inline uint32_t jitter_random(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return (uint32_t)((x * 0x2545f4914f6cdd1dULL) >> 32);
}

/* Tokens and keys should not linger in freed heap memory: wipe, free, clear. */
static inline void secret_free(char **p, size_t len)
{
	if (*p) {
		explicit_bzero(*p, len);
		free(*p);
		*p = NULL;
	}
}

#endif
