/* Preflight: what ksight needs from the host, checked before any BPF call. */
#ifndef KSIGHT_ENV_H
#define KSIGHT_ENV_H

#include <stddef.h>

/*
 * Privileges, kernel BTF (btf_path or the kernel's own), tracefs and bpffs
 * (mounted here if they are not). Returns 0, or -errno with one line in `err`
 * that says what is wrong and what to do.
 */
int env_preflight(const char *btf_path, char *err, size_t errlen);

/* One-line warnings preflight left behind (e.g. tracefs could not be mounted), or "". */
const char *env_warnings(void);

#endif
