/*
 * Where start-up time goes: with KSIGHT_STARTUP_TRACE=1 each phase logs a
 * line "startup: <phase> <ms> ms (at <ms since start>, rss <KiB>, peak <KiB>)".
 * Without it a mark is one test of a flag.
 */
#ifndef KSIGHT_STARTUP_TRACE_H
#define KSIGHT_STARTUP_TRACE_H

/* Start the clock (from KSIGHT_STARTUP_TRACE in the environment). */
void startup_trace_begin(void);
/* A new thread's phases count from here (each thread has its own clock of phases). */
void startup_trace_thread(void);
/* The phase that just ended; printf-style name. */
void startup_mark(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
