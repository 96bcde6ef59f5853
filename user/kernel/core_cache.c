#include "core_cache.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "signal_def.h"
#include "util.h"

#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
#define KERNEL_BTF_PATH "/sys/kernel/btf/vmlinux"
#define PREFIX "core-btf-"
#define MAGIC "KSCORE1"
#define FORMAT 1u /* bump when the copy's contents change for the same names */

struct entry_header {
	char magic[8];
	uint64_t key, generation;
	uint64_t size; /* of the raw BTF after the header */
	uint64_t sum;  /* FNV-1a of it */
};

uint64_t core_cache_generation_of(const char *boot_id, uint64_t kernel_btf_size, const void *build_id,
				  size_t build_id_len)
{
	unsigned char buf[256];
	size_t n = 0, len = strnlen(boot_id, 64);
	uint32_t format = FORMAT;

	if (build_id_len > 64)
		build_id_len = 64;
	memcpy(buf + n, boot_id, len), n += len;
	memcpy(buf + n, &kernel_btf_size, 8), n += 8;
	memcpy(buf + n, build_id, build_id_len), n += build_id_len;
	memcpy(buf + n, &format, 4), n += 4;
	return hash_fnv1a(buf, n);
}

struct build_id {
	unsigned char id[64];
	size_t len;
};

/* The main program's NT_GNU_BUILD_ID note (the first object dl_iterate_phdr reports). */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *data)
{
	struct build_id *out = data;
	int i;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const char *p, *end;

		if (ph->p_type != PT_NOTE)
			continue;
		p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const void *)p;
			const char *name = p + sizeof(*nh);
			const char *desc = name + ((nh->n_namesz + 3) & ~3u);

			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4) &&
			    nh->n_descsz && nh->n_descsz <= sizeof(out->id)) {
				memcpy(out->id, desc, nh->n_descsz);
				out->len = nh->n_descsz;
				return 1;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 1; /* only the main program */
}

uint64_t core_cache_selection(const struct signal_def *const *defs, int n)
{
	uint64_t d = (uint64_t)n;
	int i;

	for (i = 0; i < n; i++) {
		/* splitmix64's finalizer over each name's hash, summed: the order does not matter */
		uint64_t x = hash_fnv1a(defs[i]->name, strlen(defs[i]->name));

		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
		d += x ^ (x >> 31);
	}
	return d;
}

int core_cache_generation(uint64_t *generation)
{
	struct build_id bid = { .len = 0 };
	char boot_id[64];
	struct stat st;
	ssize_t n;
	int fd;

	dl_iterate_phdr(find_build_id, &bid);
	if (!bid.len)
		return -ENODATA; /* not "no entry yet": this binary can never have one */
	if (stat(KERNEL_BTF_PATH, &st))
		return neg_errno();
	fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return neg_errno();
	n = read(fd, boot_id, sizeof(boot_id) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	boot_id[n] = '\0';
	boot_id[strcspn(boot_id, "\n")] = '\0';
	*generation = core_cache_generation_of(boot_id, (uint64_t)st.st_size, bid.id, bid.len);
	return 0;
}

/* Ours alone: this user's, and no one else may write to it. */
static bool private_to_us(const struct stat *st)
{
	return st->st_uid == geteuid() && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

static int open_dir(const char *dir)
{
	struct stat st;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd < 0)
		return errno == ELOOP || errno == ENOTDIR ? -EPERM : neg_errno(); /* a link, or not a directory */
	if (fstat(dfd, &st) || !private_to_us(&st)) {
		close(dfd);
		return -EPERM;
	}
	return dfd;
}

static void entry_name(uint64_t generation, uint64_t key, char *name, size_t len)
{
	snprintf(name, len, PREFIX "%016llx-%016llx", (unsigned long long)generation, (unsigned long long)key);
}

static int read_all(int fd, void *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = read(fd, (char *)buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? neg_errno() : -EBADMSG;
		got += (size_t)n;
	}
	return 0;
}

int core_cache_load(const char *dir, uint64_t generation, uint64_t key, void **raw, size_t *size)
{
	struct entry_header h;
	char name[64];
	struct stat st;
	void *data = NULL;
	int dfd, fd, err;

	dfd = open_dir(dir);
	if (dfd < 0)
		return dfd;
	entry_name(generation, key, name, sizeof(name));
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	err = fd < 0 ? neg_errno() : 0;
	close(dfd);
	if (err)
		return err == -ELOOP ? -EPERM : err;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || !private_to_us(&st)) {
		err = -EPERM;
		goto out;
	}
	err = -EBADMSG;
	if ((uint64_t)st.st_size < sizeof(h) || (uint64_t)st.st_size > sizeof(h) + CORE_CACHE_MAX_BYTES)
		goto out;
	if (read_all(fd, &h, sizeof(h)) || memcmp(h.magic, MAGIC, sizeof(h.magic)) || h.key != key ||
	    h.generation != generation ||
	    h.size != (uint64_t)st.st_size - sizeof(h) || !h.size)
		goto out;
	data = malloc(h.size);
	if (!data) {
		err = -ENOMEM;
		goto out;
	}
	if (read_all(fd, data, h.size) || hash_fnv1a(data, h.size) != h.sum) {
		free(data);
		goto out;
	}
	*raw = data;
	*size = h.size;
	err = 0;
out:
	close(fd);
	return err;
}

/*
 * The entries of other generations (another boot's, another build's): not
 * this generation's other selections (`ksight trace --signals oom` next to
 * the agent), nor files being written (*.tmp).
 */
static void remove_other_generations(int dfd, uint64_t generation)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	char keep[64];
	struct dirent *de;
	size_t n;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	n = (size_t)snprintf(keep, sizeof(keep), PREFIX "%016llx-", (unsigned long long)generation);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (strncmp(de->d_name, PREFIX, strlen(PREFIX)) || !strncmp(de->d_name, keep, n) ||
		    (len > 4 && !strcmp(de->d_name + len - 4, ".tmp")))
			continue;
		unlinkat(dfd, de->d_name, 0);
	}
	closedir(d);
}

int core_cache_store(const char *dir, uint64_t generation, uint64_t key, const void *raw, size_t size)
{
	struct entry_header h = { .key = key, .generation = generation, .size = size };
	char name[64], tmp[96];
	int dfd, fd, err = 0;

	if (!size || size > CORE_CACHE_MAX_BYTES)
		return -EINVAL;
	h.sum = hash_fnv1a(raw, size);
	memcpy(h.magic, MAGIC, sizeof(h.magic));
	if (mkdir(dir, 0700) && errno != EEXIST)
		return neg_errno();
	dfd = open_dir(dir);
	if (dfd < 0)
		return dfd;
	entry_name(generation, key, name, sizeof(name));
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", name, (long)getpid());
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = neg_errno();
		close(dfd);
		return err;
	}
	errno = 0;
	if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) || write(fd, raw, size) != (ssize_t)size)
		err = errno ? -errno : -EIO; /* a short write leaves errno 0 */
	if (close(fd) && !err)
		err = neg_errno();
	if (!err && renameat(dfd, tmp, dfd, name))
		err = neg_errno();
	if (err)
		unlinkat(dfd, tmp, 0);
	else
		remove_other_generations(dfd, generation);
	close(dfd);
	return err;
}

int core_cache_lookup(const char *dir, const struct signal_def *const *defs, int n, void **raw, size_t *size)
{
	uint64_t generation;
	int err;

	if (!dir)
		return -ECANCELED;
	err = core_cache_generation(&generation);
	return err ? err : core_cache_load(dir, generation, core_cache_selection(defs, n), raw, size);
}

int core_cache_save(const char *dir, const struct signal_def *const *defs, int n, const void *raw, size_t size)
{
	uint64_t generation;
	int err = core_cache_generation(&generation);

	return err ? err : core_cache_store(dir, generation, core_cache_selection(defs, n), raw, size);
}
