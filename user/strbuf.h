/* A growable string buffer: the one way user/ builds text (exposition, lines). */
#ifndef KSIGHT_STRBUF_H
#define KSIGHT_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *buf;  /* always NUL-terminated once anything was appended */
	size_t len;
	size_t cap;
	int oom;    /* an allocation failed: contents are truncated */
};

#define STRBUF_INIT { 0 }

void strbuf_reset(struct strbuf *sb);  /* keep the memory, empty the text */
void strbuf_free(struct strbuf *sb);
void strbuf_append(struct strbuf *sb, const char *s, size_t n);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_putc(struct strbuf *sb, char c);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
