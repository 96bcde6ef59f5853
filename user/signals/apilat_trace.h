/*
 * `ksight trace apilat`: durations as --slow and the Event flags take them,
 * and the kernel's trace records (headers/apilat.h) turned into JSON fields
 * and a text column (pure), then printed with the client's pod names.
 */
#ifndef KSIGHT_APILAT_TRACE_H
#define KSIGHT_APILAT_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <linux/types.h>

#include "apilat.h"

struct agent;

/*
 * "250ms", "1.5s", "500us", "800ns", "2m", "1h" (a number, an optional
 * fraction, a unit; "0" alone as well) into ns. 0, -EINVAL, -ERANGE.
 */
int apilat_parse_duration(const char *text, uint64_t *ns);

/* "connect", "handshake", "response", "failure"; NULL for another value. */
const char *apilat_trace_phase_name(unsigned int phase);
/* "refused", "timeout", "reset", "unreachable", "other"; NULL for another value. */
const char *apilat_fail_name(unsigned int cause);

/*
 * Add the record's own fields to `obj` (phase, family, local, remote,
 * duration_ns, sent_bytes, received_bytes, cause) and write the text
 * column's details. 0, or -EINVAL for a record that makes no sense.
 */
int apilat_trace_describe(const struct apilat_trace_event *e, json_object *obj, char *details, size_t len);

/* One ring record: print it (with the client's pod or comm). 0 or -EINVAL. */
int apilat_trace_handle(struct agent *agent, const void *data, size_t size);

#endif
