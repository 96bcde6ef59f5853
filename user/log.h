/* One-line diagnostics on stderr: "ksight: <what is wrong and what to do>". */
#ifndef KSIGHT_LOG_H
#define KSIGHT_LOG_H

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
