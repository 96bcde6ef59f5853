/*
 * A per-boot cache of the CO-RE copy (core_btf.h). Building the copy walks
 * the whole kernel BTF (about 5 ms of a start's CPU, on the path every
 * load waits for); within one boot the kernel BTF never changes, so an
 * agent that restarts (an upgrade, a crash, a pod moved back) takes the copy
 * its predecessor built.
 *
 * An entry is keyed by the boot (boot_id), the kernel BTF's size, the
 * ksight binary's build ID (its objects are built in) and the selected
 * signals: a new kernel, a reboot, another build or another --signals
 * misses. It is looked up before the objects' names are read: a hit skips
 * that too. The
 * directory and the file must belong to this user and be writable by no
 * one else, and the file's checksum must match, or the entry is ignored
 * (and replaced). /run is cleared at boot; entries of other boots or
 * builds are removed when an entry is stored.
 */
#ifndef KSIGHT_CORE_CACHE_H
#define KSIGHT_CORE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define CORE_CACHE_DEFAULT_DIR "/run/ksight"
#define CORE_CACHE_MAX_BYTES (16u << 20)

struct signal_def;

/* The generation (this boot, kernel BTF and build) from its parts (pure: tests). */
uint64_t core_cache_generation_of(const char *boot_id, uint64_t kernel_btf_size, const void *build_id,
				  size_t build_id_len);

/* This process's generation; 0 or -errno (-ENODATA: a binary without a build ID, never cached). */
int core_cache_generation(uint64_t *generation);

/* The selected signals, in any order, an entry's key within its generation: with the build ID, what decides the objects' names. */
uint64_t core_cache_selection(const struct signal_def *const *defs, int n);

/* core_cache_load() of the entry for defs[0..n) (dir NULL: -ECANCELED); the generation's error when there is none. */
int core_cache_lookup(const char *dir, const struct signal_def *const *defs, int n, void **raw, size_t *size);

/* core_cache_store() of the entry for defs[0..n). */
int core_cache_save(const char *dir, const struct signal_def *const *defs, int n, const void *raw, size_t size);

/*
 * The entry (generation, key) in dir: 0 with *raw (malloc'd; the caller frees it) and
 * *size; -ENOENT when there is none; -EPERM when the directory or the file
 * could be written by another user, or is a link; -EBADMSG when the file is not a whole
 * entry of this key (truncated, corrupted, another key's).
 */
int core_cache_load(const char *dir, uint64_t generation, uint64_t key, void **raw, size_t *size);

/*
 * Store an entry (written aside, then renamed into place: a reader sees a
 * whole entry or none), creating dir (0700) if its parent exists, and remove
 * the entries of other generations (this generation's other selections
 * stay). 0 or -errno.
 */
int core_cache_store(const char *dir, uint64_t generation, uint64_t key, const void *raw, size_t size);

#endif
