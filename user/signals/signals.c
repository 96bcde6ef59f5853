/* The registered signals: one line each. */
#include "signal_def.h"

#include <string.h>

extern const struct signal_def oom_signal;
extern const struct signal_def fserr_signal;
extern const struct signal_def netdrop_signal;
extern const struct signal_def apilat_signal;

const struct signal_def *const ksight_signals[] = {
	&oom_signal,
	&fserr_signal,
	&netdrop_signal,
	&apilat_signal,
	NULL,
};

const struct signal_def *signal_find(const char *name)
{
	size_t i;

	for (i = 0; ksight_signals[i]; i++)
		if (strcmp(ksight_signals[i]->name, name) == 0)
			return ksight_signals[i];
	return NULL;
}
