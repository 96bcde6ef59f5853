/* Unit tests for user/kernel/core_cache.c: the per-boot cache of the CO-RE copy. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core_cache.h"
#include "signal_def.h"

struct fixture {
	char dir[64];  /* the cache directory, made by the test */
	char base[64]; /* its parent, removed at the end */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->base, "/tmp/ksight-core-cache-XXXXXX");
	if (!mkdtemp(f->base))
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/cache", f->base);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->base);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static const char payload[] = "\x9f\xeb\x01\x00 pretend this is a raw BTF";

static void entry_path(const struct fixture *f, uint64_t key, char *path, size_t len)
{
	snprintf(path, len, "%s/core-btf-%016llx-%016llx", f->dir, 9ULL, (unsigned long long)key);
}

static void test_generation_parts(void **state)
{
	const unsigned char id[20] = { 1, 2, 3 }, other_id[20] = { 1, 2, 4 };
	const char *boot = "6f1b2c3d-0000-4000-8000-000000000001";
	uint64_t g = core_cache_generation_of(boot, 5516713, id, sizeof(id));

	(void)state;
	assert_true(g == core_cache_generation_of(boot, 5516713, id, sizeof(id)));
	/* each part changes it: another boot, kernel BTF, build */
	assert_true(g != core_cache_generation_of("6f1b2c3d-0000-4000-8000-000000000002", 5516713, id, sizeof(id)));
	assert_true(g != core_cache_generation_of(boot, 5516714, id, sizeof(id)));
	assert_true(g != core_cache_generation_of(boot, 5516713, other_id, sizeof(other_id)));
}

/* The selection keys the entry whatever order the signals are loaded in; another selection, another key. */
static void test_selection(void **state)
{
	const struct signal_def oom = { .name = "oom" }, fserr = { .name = "fserr" }, netdrop = { .name = "netdrop" };
	const struct signal_def *ab[2] = { &oom, &fserr }, *ba[2] = { &fserr, &oom }, *abc[3] = { &oom, &fserr, &netdrop };

	(void)state;
	assert_true(core_cache_selection(ab, 2) == core_cache_selection(ba, 2));
	assert_true(core_cache_selection(ab, 2) != core_cache_selection(abc, 3));
	assert_true(core_cache_selection(ab, 1) != core_cache_selection(ba, 1));
}

/* This process is a program with a build ID on a machine with a boot_id: it has a generation. */
static void test_generation_of_this_process(void **state)
{
	uint64_t a = 0, b = 1;

	(void)state;
	assert_int_equal(core_cache_generation(&a), 0);
	assert_int_equal(core_cache_generation(&b), 0);
	assert_true(a == b);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	void *raw = NULL;
	size_t size = 0;

	assert_int_equal(core_cache_load(f->dir, 9, 1, &raw, &size), -ENOENT); /* no directory yet */
	assert_int_equal(core_cache_store(f->dir, 9, 1, payload, sizeof(payload)), 0);
	assert_int_equal(stat(f->dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(core_cache_load(f->dir, 9, 1, &raw, &size), 0);
	assert_int_equal(size, sizeof(payload));
	assert_memory_equal(raw, payload, sizeof(payload));
	free(raw);
	assert_int_equal(core_cache_load(f->dir, 9, 2, &raw, &size), -ENOENT); /* another key */
}

/*
 * Storing an entry removes other generations' (another boot, another build),
 * not this generation's other selections, files being written, or anything else.
 */
static void test_store_removes_other_generations(void **state)
{
	struct fixture *f = *state;
	char path[128], keep[128], tmp[160], old[128];
	void *raw = NULL;
	size_t size;
	int fd;

	assert_int_equal(core_cache_store(f->dir, 8, 1, payload, sizeof(payload)), 0);
	assert_int_equal(core_cache_store(f->dir, 9, 1, payload, sizeof(payload)), 0);
	snprintf(old, sizeof(old), "%s/core-btf-%016llx-%016llx", f->dir, 8ULL, 1ULL);
	assert_int_equal(access(old, F_OK), -1); /* generation 8's, gone */
	snprintf(keep, sizeof(keep), "%s/unrelated", f->dir);
	entry_path(f, 1, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s/core-btf-%016llx-%016llx.123.tmp", f->dir, 7ULL, 3ULL);
	fd = open(keep, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	fd = open(tmp, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(core_cache_store(f->dir, 9, 2, payload, sizeof(payload)), 0);
	assert_int_equal(access(path, F_OK), 0); /* the same generation's other selection stays */
	assert_int_equal(access(keep, F_OK), 0);
	assert_int_equal(access(tmp, F_OK), 0);
	assert_int_equal(core_cache_load(f->dir, 9, 1, &raw, &size), 0);
	free(raw);
	assert_int_equal(core_cache_load(f->dir, 9, 2, &raw, &size), 0);
	free(raw);
	assert_int_equal(core_cache_load(f->dir, 8, 2, &raw, &size), -ENOENT); /* another generation */
}

/* Overwrite byte `at` of the entry with `byte`; or cut it to `len` when len >= 0. */
static void damage(const struct fixture *f, uint64_t key, long at, char byte, long len)
{
	char path[128];
	int fd;

	entry_path(f, key, path, sizeof(path));
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	if (len >= 0)
		assert_int_equal(ftruncate(fd, len), 0);
	else
		assert_int_equal(pwrite(fd, &byte, 1, at), 1);
	close(fd);
}

static void test_damaged_entries_rejected(void **state)
{
	struct fixture *f = *state;
	void *raw = NULL;
	size_t size;

	/* a flipped payload byte: the checksum */
	assert_int_equal(core_cache_store(f->dir, 9, 3, payload, sizeof(payload)), 0);
	damage(f, 3, 40 + 5, 'X', -1);
	assert_int_equal(core_cache_load(f->dir, 9, 3, &raw, &size), -EBADMSG);
	/* truncated: the size */
	assert_int_equal(core_cache_store(f->dir, 9, 3, payload, sizeof(payload)), 0);
	damage(f, 3, 0, 0, 40);
	assert_int_equal(core_cache_load(f->dir, 9, 3, &raw, &size), -EBADMSG);
	/* shorter than a header */
	assert_int_equal(core_cache_store(f->dir, 9, 3, payload, sizeof(payload)), 0);
	damage(f, 3, 0, 0, 7);
	assert_int_equal(core_cache_load(f->dir, 9, 3, &raw, &size), -EBADMSG);
	/* another key's entry under this key's name */
	assert_int_equal(core_cache_store(f->dir, 9, 3, payload, sizeof(payload)), 0);
	damage(f, 3, 8, 0x55, -1);
	assert_int_equal(core_cache_load(f->dir, 9, 3, &raw, &size), -EBADMSG);
	/* the magic */
	assert_int_equal(core_cache_store(f->dir, 9, 3, payload, sizeof(payload)), 0);
	damage(f, 3, 0, 'Q', -1);
	assert_int_equal(core_cache_load(f->dir, 9, 3, &raw, &size), -EBADMSG);
	/* and a good store after all that is read back whole */
	assert_int_equal(core_cache_store(f->dir, 9, 3, payload, sizeof(payload)), 0);
	assert_int_equal(core_cache_load(f->dir, 9, 3, &raw, &size), 0);
	free(raw);
}

/* What another user could have written is not taken: a writable file or directory, a symlink. */
static void test_writable_by_others_rejected(void **state)
{
	struct fixture *f = *state;
	char path[128], link[128];
	void *raw = NULL;
	size_t size;

	assert_int_equal(core_cache_store(f->dir, 9, 4, payload, sizeof(payload)), 0);
	entry_path(f, 4, path, sizeof(path));
	assert_int_equal(chmod(path, 0622), 0);
	assert_int_equal(core_cache_load(f->dir, 9, 4, &raw, &size), -EPERM);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(chmod(f->dir, 0777), 0);
	assert_int_equal(core_cache_load(f->dir, 9, 4, &raw, &size), -EPERM);
	assert_int_equal(core_cache_store(f->dir, 9, 4, payload, sizeof(payload)), -EPERM);
	assert_int_equal(chmod(f->dir, 0700), 0);
	/* the entry's name a symlink to a good entry elsewhere */
	snprintf(link, sizeof(link), "%s/elsewhere", f->base);
	assert_int_equal(rename(path, link), 0);
	assert_int_equal(symlink(link, path), 0);
	assert_int_equal(core_cache_load(f->dir, 9, 4, &raw, &size), -EPERM);
	/* the directory a symlink */
	snprintf(link, sizeof(link), "%s/dirlink", f->base);
	assert_int_equal(symlink(f->dir, link), 0);
	assert_int_equal(core_cache_load(link, 9, 4, &raw, &size), -EPERM);
}

static void test_refuses_empty_and_huge(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(core_cache_store(f->dir, 9, 5, payload, 0), -EINVAL);
	assert_int_equal(core_cache_store(f->dir, 9, 5, payload, (size_t)CORE_CACHE_MAX_BYTES + 1), -EINVAL);
	/* a parent that does not exist is not made */
	assert_int_equal(core_cache_store("/nonexistent-ksight/cache", 9, 5, payload, sizeof(payload)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generation_parts),
		cmocka_unit_test(test_generation_of_this_process),
		cmocka_unit_test(test_selection),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_removes_other_generations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_entries_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writable_by_others_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_empty_and_huge, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
