/*
 * The standard Prometheus process_* metrics for ksight itself, read from
 * /proc/self on every render, with the help texts the client libraries use.
 */
#ifndef KSIGHT_PROCESS_METRICS_H
#define KSIGHT_PROCESS_METRICS_H

#include "metrics.h"

/* Declare the process_* families and register their collector: 0 or -errno. */
int process_metrics_register(struct metrics_registry *reg);

#endif
