/* One-line diagnostics on stderr: "ksight: <what is wrong and what to do>". */
#ifndef KSIGHT_LOG_H
#define KSIGHT_LOG_H

#include <stddef.h>

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Format a one-line error into a caller's buffer (NULL or 0-length: nothing). */
void set_error_text(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
