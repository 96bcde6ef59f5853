#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

/*
 * One write(2) per line: the API threads log too, and a line written in
 * pieces can interleave with theirs. A longer line is cut, marked with "...".
 */
static void log_line(const char *level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	int n, len;

	n = snprintf(line, sizeof(line), "ksight: %s", level);
	len = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	len = len < 0 ? n : n + len;
	if (len > (int)sizeof(line) - 2) {
		len = (int)sizeof(line) - 2;
		memcpy(line + len - 3, "...", 3);
	}
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)len) < 0) {
		/* nowhere left to say it */
	}
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("error: ", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("warning: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("", fmt, ap);
	va_end(ap);
}

void set_error_text(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
