/* UTF-8 validity: kernel strings (comm, cgroup names) are bytes, our outputs are UTF-8. */
#ifndef KSIGHT_UTF8_H
#define KSIGHT_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one. */
size_t utf8_valid_len(const unsigned char *s, size_t n);

/* Copy `in` to `out` (NUL-terminated, truncated on a character boundary), each invalid byte as U+FFFD. */
void utf8_sanitize(const char *in, char *out, size_t outlen);

#endif
