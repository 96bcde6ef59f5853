/* Command line: `ksight run | trace | probes` into a struct agent_config. */
#ifndef KSIGHT_CLI_H
#define KSIGHT_CLI_H

#include "agent.h"

#define CLI_EXIT_OK -1 /* --help / --version was printed: exit 0 */
#define EXIT_USAGE 2

/*
 * Parse argv; returns 0 with *cfg filled, CLI_EXIT_OK after --help or
 * --version, or EXIT_USAGE after printing what is wrong. Every flag is
 * checked here, before any other start-up output. cfg's strings point into
 * argv or the signal table.
 */
int cli_parse(int argc, char **argv, struct agent_config *cfg);

#endif
