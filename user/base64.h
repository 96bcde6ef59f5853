/* base64, the standard alphabet (kubeconfig *-data fields). */
#ifndef KSIGHT_BASE64_H
#define KSIGHT_BASE64_H

#include <stddef.h>

/* Decode base64 (standard alphabet, padding optional, whitespace ignored). -EINVAL on bad input. */
int base64_decode(const char *in, size_t inlen, char **out, size_t *outlen);

#endif
