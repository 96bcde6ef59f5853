/*
 * A small copy of the kernel BTF for CO-RE relocation. libbpf 1.1 relocates
 * each object against a BTF it parses itself and searches whole for every
 * type an object reads: with the kernel's 100,000+ types that is most of an
 * object's load time. The copy holds only the kernel types the objects
 * name (struct, union, enum, typedef), each struct or union with only the
 * members the objects' own definitions have, at the kernel's offsets; what
 * those members point to is kept when the objects name it too, else void.
 * Relocations come out as against the whole BTF (tests/bpf/test_core_btf.c
 * compares them); one that does not resolve makes the load fail, and the
 * loader then loads again against the whole BTF. Type ids are the copy's:
 * bpf_core_type_id_kernel() would be wrong against it (no object uses it;
 * the comparison would catch one that did).
 */
#ifndef KSIGHT_CORE_BTF_H
#define KSIGHT_CORE_BTF_H

#include <stddef.h>
#include <stdint.h>

struct btf;

/*
 * Build the copy of `kernel` for the objects whose own BTFs are
 * locals[0..n). Returns 0 with *out set (the caller frees it), or -errno.
 */
int core_btf_build(const struct btf *kernel, const struct btf *const *locals, int n, struct btf **out);

/*
 * The same in two steps: what the objects name (no kernel BTF needed, so
 * it can be read while the kernel's is parsed), then the copy.
 */
struct core_names;
int core_btf_names(const struct btf *const *locals, int n, struct core_names **out);
int core_btf_build_names(const struct btf *kernel, const struct core_names *names, struct btf **out);
void core_btf_names_free(struct core_names *names); /* NULL-safe */

/* A BTF as a file libbpf can parse (a memfd): path set to /proc/self/fd/N; the fd or -errno. */
int core_btf_to_file(const struct btf *btf, char *path, unsigned long pathlen);
/* The same from a raw BTF (core_cache.h keeps them). */
int core_btf_raw_to_file(const void *raw, size_t size, char *path, unsigned long pathlen);

#endif
