/* Unit tests for user/kernel/cgroup_root.c: which cgroup2 mount is the hierarchy's root. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup_root.h"

static const char *roots[4]; /* what the fake is_root accepts */

static bool fake_is_root(const char *dir)
{
	size_t i;

	for (i = 0; i < 4 && roots[i]; i++)
		if (!strcmp(roots[i], dir))
			return true;
	return false;
}

static void set_roots(const char *a, const char *b)
{
	memset(roots, 0, sizeof(roots));
	roots[0] = a;
	roots[1] = b;
}

/* A cgroup-v2-only host: /sys/fs/cgroup. */
static void test_unified(void **state)
{
	const char *mi = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
			 "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
	char out[64];

	set_roots("/sys/fs/cgroup", NULL);
	assert_int_equal(cgroup2_root_pick(mi, fake_is_root, out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup");
}

/* A hybrid host: cgroup v1 controllers, v2 at /sys/fs/cgroup/unified; no optional fields on the line. */
static void test_hybrid(void **state)
{
	const char *mi = "31 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
			 "35 31 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
			 "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
	char out[64];

	set_roots("/sys/fs/cgroup/unified", NULL);
	assert_int_equal(cgroup2_root_pick(mi, fake_is_root, out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");
}

/*
 * A pod: its own cgroup namespace's mount (the pod's subtree, not a root)
 * first, the host's hostPath mount after it: the host's is picked.
 */
static void test_namespaced_view_skipped(void **state)
{
	const char *mi = "700 690 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n"
			 "710 690 0:26 /../../.. /host/sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
	char out[64];

	set_roots("/host/sys/fs/cgroup", NULL);
	assert_int_equal(cgroup2_root_pick(mi, fake_is_root, out, sizeof(out)), 0);
	assert_string_equal(out, "/host/sys/fs/cgroup");
	set_roots(NULL, NULL);
	assert_int_equal(cgroup2_root_pick(mi, fake_is_root, out, sizeof(out)), -ENOENT);
	assert_string_equal(out, "");
}

/* Only cgroup v1, a fs type that merely starts with "cgroup2", a source named cgroup2: none. */
static void test_no_cgroup2(void **state)
{
	const char *mi = "35 31 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup2 rw,memory\n"
			 "36 31 0:32 / /x rw - cgroup2x cgroup2 rw\n"
			 "37 31 0:33 / /y rw shared:9 - tmpfs cgroup2 rw\n";
	char out[64];

	set_roots("/sys/fs/cgroup/memory", "/x");
	roots[2] = "/y";
	assert_int_equal(cgroup2_root_pick(mi, fake_is_root, out, sizeof(out)), -ENOENT);
	assert_int_equal(cgroup2_root_pick("", fake_is_root, out, sizeof(out)), -ENOENT);
}

/* Octal escapes in the mount point; a mount point too long for the buffer. */
static void test_escapes_and_length(void **state)
{
	const char *mi = "41 31 0:38 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n";
	char out[64], tiny[8];

	set_roots("/mnt/cg two", NULL);
	assert_int_equal(cgroup2_root_pick(mi, fake_is_root, out, sizeof(out)), 0);
	assert_string_equal(out, "/mnt/cg two");
	assert_int_equal(cgroup2_root_pick(mi, fake_is_root, tiny, sizeof(tiny)), -ENAMETOOLONG);
}

/* A truncated line (no mount point field) is skipped, not read past. */
static void test_truncated_line(void **state)
{
	char out[64];

	/* read past the separator, field 4 would be "cgroup2" */
	set_roots("cgroup2", "/sys/fs/cgroup");
	assert_int_equal(cgroup2_root_pick("41 31 - cgroup2 cgroup2 rw\n", fake_is_root, out, sizeof(out)), -ENOENT);
	assert_int_equal(cgroup2_root_pick("41 31 0:38 / - cgroup2 cgroup2 rw\n", fake_is_root, out, sizeof(out)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unified),
		cmocka_unit_test(test_hybrid),
		cmocka_unit_test(test_namespaced_view_skipped),
		cmocka_unit_test(test_no_cgroup2),
		cmocka_unit_test(test_escapes_and_length),
		cmocka_unit_test(test_truncated_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
