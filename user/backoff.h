/* Retry delays: exponential, capped, jittered, and never shorter than Retry-After. */
#ifndef KSIGHT_BACKOFF_H
#define KSIGHT_BACKOFF_H

#include <stdint.h>

struct backoff_policy {
	long min_ms;            /* the delay after the first failure */
	long max_ms;            /* the cap; jitter never goes past it */
	long retry_after_max_s; /* a server's Retry-After is honoured up to this */
};

/*
 * The delay after `failures` failures in a row (0 is taken as 1): min_ms
 * doubled per failure up to max_ms, less up to a quarter of jitter from `rnd`
 * (nodes that failed together spread out, and the cap stays a cap), then at
 * least Retry-After when the server sent one (retry_after_s > 0).
 */
long backoff_ms(const struct backoff_policy *policy, unsigned int failures, long retry_after_s,
		uint32_t rnd);

#endif
