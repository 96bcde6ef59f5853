/* fserr's Node condition tracking: marked on corruption or shutdown, cleared when the mounts are gone. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <linux/types.h>

#include "fserr.h"
#include "fserr_condition.h"
#include "fserr_signal.h"

/* A mount table from mountinfo text (freed by the caller). */
static struct fserr_mounts table(const char *text)
{
	struct fserr_mounts t;

	assert_int_equal(fserr_mounts_parse(text, strlen(text), &t), 0);
	return t;
}

static const char root_only[] = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
static const char loop3_at_a[] =
	"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
	"40 22 7:3 / /mnt/a rw - ext4 /dev/loop3 rw,errors=continue\n";

static struct fserr_condition_error ext4_error(unsigned int minor)
{
	return (struct fserr_condition_error){ .major = 7, .minor = minor, .kind = FSERR_KIND_CORRUPTION,
					       .device = minor == 3 ? "loop3" : "loop4", .fstype = "ext4",
					       .where = "ext4_readdir:123" };
}

static struct fserr_condition *new_condition(void)
{
	struct fserr_condition *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	return c;
}

static void test_mount_ids_parsed(void **state)
{
	struct fserr_mounts t = table(loop3_at_a);

	assert_int_equal(t.n, 2);
	assert_int_equal(t.v[0].id, 22);
	assert_int_equal(t.v[1].id, 40);
	fserr_mounts_free(&t);
}

static void test_starts_clear(void **state)
{
	struct fserr_condition *c = new_condition();
	struct fserr_mounts t = table(loop3_at_a);
	char msg[FSERR_CONDITION_MESSAGE_MAX];

	assert_false(fserr_condition_active(c));
	assert_string_equal(fserr_condition_reason(c), FSERR_CONDITION_REASON_CLEAR);
	fserr_condition_message(c, &t, msg, sizeof(msg));
	assert_string_equal(msg, FSERR_CONDITION_MESSAGE_CLEAR);
	assert_false(fserr_condition_update(c, &t));
	fserr_mounts_free(&t);
	free(c);
}

/* corruption on a mounted fs: set; a second error: no change; unmounted: clear; mounted again: stays clear */
static void test_set_then_cleared_by_unmount(void **state)
{
	struct fserr_condition *c = new_condition();
	struct fserr_mounts mounted = table(loop3_at_a), gone = table(root_only);
	struct fserr_mounts again = table("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
					  "41 22 7:3 / /mnt/a rw - ext4 /dev/loop3 rw,errors=continue\n");
	struct fserr_condition_error e = ext4_error(3);
	char msg[FSERR_CONDITION_MESSAGE_MAX];

	assert_int_equal(fserr_condition_report(c, &mounted, &e), 1);
	assert_true(fserr_condition_active(c));
	assert_string_equal(fserr_condition_reason(c), FSERR_REASON_CORRUPTION);
	fserr_condition_message(c, &mounted, msg, sizeof(msg));
	assert_string_equal(msg, "Filesystems that reported errors since they were mounted: "
				 "loop3 (ext4 at /mnt/a): corruption, first in ext4_readdir:123");
	/* the same again: the description stays (a PATCH per error would be noise) */
	e.where = "ext4_lookup:9";
	assert_int_equal(fserr_condition_report(c, &mounted, &e), 0);
	assert_int_equal(c->fs[0].errors, 2);
	assert_false(fserr_condition_update(c, &mounted));
	assert_true(fserr_condition_active(c));
	/* unmounted */
	assert_true(fserr_condition_update(c, &gone));
	assert_false(fserr_condition_active(c));
	assert_string_equal(fserr_condition_reason(c), FSERR_CONDITION_REASON_CLEAR);
	/* mounted again: a new mount ID, nothing reported: clean */
	assert_false(fserr_condition_update(c, &again));
	assert_false(fserr_condition_active(c));
	fserr_mounts_free(&mounted);
	fserr_mounts_free(&gone);
	fserr_mounts_free(&again);
	free(c);
}

/* umount + mount between two looks at mountinfo: the old ID is gone, the new one is a new filesystem */
static void test_remounted_between_looks(void **state)
{
	struct fserr_condition *c = new_condition();
	struct fserr_mounts before = table(loop3_at_a);
	struct fserr_mounts after = table("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
					  "57 22 7:3 / /mnt/a rw - ext4 /dev/loop3 rw,errors=continue\n");
	struct fserr_condition_error e = ext4_error(3);

	assert_int_equal(fserr_condition_report(c, &before, &e), 1);
	assert_true(fserr_condition_update(c, &after));
	assert_false(fserr_condition_active(c));
	fserr_mounts_free(&before);
	fserr_mounts_free(&after);
	free(c);
}

/* mount -o remount keeps the mount ID and the superblock: still marked */
static void test_remount_option_change_keeps_it(void **state)
{
	struct fserr_condition *c = new_condition();
	struct fserr_mounts before = table(loop3_at_a);
	struct fserr_mounts ro = table("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
				       "40 22 7:3 / /mnt/a ro - ext4 /dev/loop3 ro,errors=continue\n");
	struct fserr_condition_error e = ext4_error(3);

	assert_int_equal(fserr_condition_report(c, &before, &e), 1);
	assert_false(fserr_condition_update(c, &ro));
	assert_true(fserr_condition_active(c));
	fserr_mounts_free(&before);
	fserr_mounts_free(&ro);
	free(c);
}

/* a device mounted twice (a bind mount, a second mount point): cleared when both are gone */
static void test_device_mounted_twice(void **state)
{
	struct fserr_condition *c = new_condition();
	struct fserr_mounts both = table("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
					 "40 22 7:3 / /mnt/a rw - ext4 /dev/loop3 rw\n"
					 "41 22 7:3 /sub /pods/u1/volumes/x rw - ext4 /dev/loop3 rw\n");
	struct fserr_mounts only_bind = table("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
					      "41 22 7:3 /sub /pods/u1/volumes/x rw - ext4 /dev/loop3 rw\n");
	struct fserr_mounts bind_and_third = table("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
						   "41 22 7:3 /sub /pods/u1/volumes/x rw - ext4 /dev/loop3 rw\n"
						   "45 22 7:3 / /mnt/c rw - ext4 /dev/loop3 rw\n");
	struct fserr_mounts only_third = table("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
					       "45 22 7:3 / /mnt/c rw - ext4 /dev/loop3 rw\n");
	struct fserr_mounts gone = table(root_only);
	struct fserr_condition_error e = ext4_error(3);
	char msg[FSERR_CONDITION_MESSAGE_MAX];

	assert_int_equal(fserr_condition_report(c, &both, &e), 1);
	fserr_condition_message(c, &both, msg, sizeof(msg));
	assert_non_null(strstr(msg, "loop3 (ext4 at /mnt/a, /pods/u1/volumes/x): corruption"));
	/* one of them unmounted: the superblock is still mounted */
	assert_true(fserr_condition_update(c, &only_bind));
	assert_true(fserr_condition_active(c));
	fserr_condition_message(c, &only_bind, msg, sizeof(msg));
	assert_non_null(strstr(msg, "loop3 (ext4 at /pods/u1/volumes/x): corruption"));
	/* mounted once more while still mounted: the same superblock, so the same mark */
	assert_true(fserr_condition_update(c, &bind_and_third));
	assert_true(fserr_condition_update(c, &only_third));
	assert_true(fserr_condition_active(c));
	fserr_condition_message(c, &only_third, msg, sizeof(msg));
	assert_non_null(strstr(msg, "loop3 (ext4 at /mnt/c): corruption"));
	assert_true(fserr_condition_update(c, &gone));
	assert_false(fserr_condition_active(c));
	fserr_mounts_free(&both);
	fserr_mounts_free(&only_bind);
	fserr_mounts_free(&bind_and_third);
	fserr_mounts_free(&only_third);
	fserr_mounts_free(&gone);
	free(c);
}

/* two filesystems: each cleared on its own; a shutdown sets the reason */
static void test_several_filesystems(void **state)
{
	struct fserr_condition *c = new_condition();
	struct fserr_mounts two = table("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
					"40 22 7:3 / /mnt/a rw - ext4 /dev/loop3 rw\n"
					"50 22 7:4 / /mnt/x rw - xfs /dev/loop4 rw\n");
	struct fserr_mounts xfs_only = table("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
					     "50 22 7:4 / /mnt/x rw - xfs /dev/loop4 rw\n");
	struct fserr_mounts gone = table(root_only);
	struct fserr_condition_error e3 = ext4_error(3);
	struct fserr_condition_error e4 = { .major = 7, .minor = 4, .kind = FSERR_KIND_SHUTDOWN, .device = "loop4",
					    .fstype = "xfs", .where = "" };
	char msg[FSERR_CONDITION_MESSAGE_MAX];

	assert_int_equal(fserr_condition_report(c, &two, &e3), 1);
	assert_int_equal(fserr_condition_report(c, &two, &e4), 1);
	assert_string_equal(fserr_condition_reason(c), FSERR_REASON_SHUTDOWN);
	fserr_condition_message(c, &two, msg, sizeof(msg));
	assert_string_equal(msg, "Filesystems that reported errors since they were mounted: "
				 "loop3 (ext4 at /mnt/a): corruption, first in ext4_readdir:123; "
				 "loop4 (xfs at /mnt/x): shutdown");
	/* a corruption after the shutdown: a new kind, a new description */
	e4.kind = FSERR_KIND_CORRUPTION;
	assert_int_equal(fserr_condition_report(c, &two, &e4), 1);
	fserr_condition_message(c, &two, msg, sizeof(msg));
	assert_non_null(strstr(msg, "loop4 (xfs at /mnt/x): corruption and shutdown"));
	assert_true(fserr_condition_update(c, &xfs_only));
	assert_true(fserr_condition_active(c));
	assert_string_equal(fserr_condition_reason(c), FSERR_REASON_SHUTDOWN);
	fserr_condition_message(c, &xfs_only, msg, sizeof(msg));
	assert_null(strstr(msg, "loop3"));
	assert_true(fserr_condition_update(c, &gone));
	assert_false(fserr_condition_active(c));
	fserr_mounts_free(&two);
	fserr_mounts_free(&xfs_only);
	fserr_mounts_free(&gone);
	free(c);
}

/* block I/O errors do not mark; an error on a device with no mount marks nothing */
static void test_what_does_not_mark(void **state)
{
	struct fserr_condition *c = new_condition();
	struct fserr_mounts t = table(loop3_at_a);
	struct fserr_condition_error io = ext4_error(3), unmounted = ext4_error(4);

	io.kind = FSERR_KIND_IO;
	assert_int_equal(fserr_condition_report(c, &t, &io), -EINVAL);
	assert_int_equal(fserr_condition_report(c, &t, &unmounted), -ENOENT);
	assert_false(fserr_condition_active(c));
	fserr_mounts_free(&t);
	free(c);
}

/* more filesystems than kept: the condition stays True while any may be mounted, the message says so */
static void test_more_filesystems_than_kept(void **state)
{
	struct fserr_condition *c = new_condition();
	size_t len = 0, cap = 80 * (FSERR_CONDITION_MAX + 2);
	char *text = malloc(cap), msg[FSERR_CONDITION_MESSAGE_MAX];
	struct fserr_mounts t, gone = table(root_only);
	unsigned int i;

	assert_non_null(text);
	for (i = 0; i < FSERR_CONDITION_MAX + 1; i++)
		len += (size_t)snprintf(text + len, cap - len, "%u 22 7:%u / /mnt/m%u rw - ext4 /dev/loop%u rw\n",
					100 + i, i, i, i);
	t = table(text);
	for (i = 0; i < FSERR_CONDITION_MAX + 1; i++) {
		struct fserr_condition_error e = { .major = 7, .minor = i, .kind = FSERR_KIND_CORRUPTION,
						   .device = "loopN", .fstype = "ext4", .where = "" };

		assert_true(fserr_condition_report(c, &t, &e) >= 0);
	}
	assert_int_equal(c->n, FSERR_CONDITION_MAX);
	assert_int_equal(c->not_kept, 1);
	fserr_condition_message(c, &t, msg, sizeof(msg));
	/* bounded, and says there is more than it lists */
	assert_true(strlen(msg) < sizeof(msg));
	assert_non_null(strstr(msg, "more"));
	assert_true(fserr_condition_update(c, &gone));
	/* the ones not kept cannot be followed: cleared with the rest once nothing marked is mounted */
	assert_false(fserr_condition_active(c));
	fserr_mounts_free(&t);
	fserr_mounts_free(&gone);
	free(text);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mount_ids_parsed),
		cmocka_unit_test(test_starts_clear),
		cmocka_unit_test(test_set_then_cleared_by_unmount),
		cmocka_unit_test(test_remounted_between_looks),
		cmocka_unit_test(test_remount_option_change_keeps_it),
		cmocka_unit_test(test_device_mounted_twice),
		cmocka_unit_test(test_several_filesystems),
		cmocka_unit_test(test_what_does_not_mark),
		cmocka_unit_test(test_more_filesystems_than_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
