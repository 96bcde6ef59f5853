#include "backoff.h"

long backoff_ms(const struct backoff_policy *policy, unsigned int failures, long retry_after_s,
		uint32_t rnd)
{
	long delay = policy->min_ms;
	unsigned int i;

	for (i = 1; i < failures && delay < policy->max_ms; i++)
		delay *= 2;
	if (delay > policy->max_ms)
		delay = policy->max_ms;
	delay -= (long)(rnd % (uint32_t)(delay / 4 + 1));
	if (retry_after_s > 0) {
		long ra = retry_after_s < policy->retry_after_max_s ? retry_after_s : policy->retry_after_max_s;

		if (ra * 1000 > delay)
			delay = ra * 1000;
	}
	return delay;
}
