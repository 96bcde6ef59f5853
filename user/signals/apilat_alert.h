/*
 * apilat's Node Event: a Warning (reason ApiserverSlowResponses) on this
 * Node when a client's p99 response time over --apilat-window is above
 * --apilat-p99-threshold (the verdict is apilat_p99.h's). A thread of its
 * own reads the kernel's response histograms once per tick (the window /
 * APILAT_P99_SLOTS), merges them by client as the metrics do, and records
 * the Event through the agent's recorder, keyed by the client, so the
 * repeats of one client are one Event with a count.
 */
#ifndef KSIGHT_APILAT_ALERT_H
#define KSIGHT_APILAT_ALERT_H

#include <stdint.h>

#define APILAT_ALERT_REASON "ApiserverSlowResponses"

struct agent;
struct apilat_alert;

/*
 * Start when the agent records Events and a threshold is set (else 0 and
 * *out NULL). `hist_fd` the apilat_hists map (kept, not closed).
 */
int apilat_alert_start(struct agent *agent, int hist_fd, uint32_t lo_exp, uint32_t hi_exp,
		       struct apilat_alert **out);

/* Stop the thread and free. NULL-safe. */
void apilat_alert_stop(struct apilat_alert *a);

#endif
