/* fserr's mount table: mountinfo parsing, bounds, device names, change detection. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fserr_mounts.h"

static const char sample[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
	"36 22 7:3 / /mnt/data rw,relatime shared:5 - ext4 /dev/loop3 rw,errors=continue\n"
	"37 22 7:3 /sub/dir /var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/x rw master:5 - ext4 /dev/loop3 rw\n"
	"38 22 7:3 / /mnt/with\\040space\\134x rw - ext4 /dev/loop3 rw\n"
	"39 22 0:25 / /proc rw,nosuid - proc proc rw\n"
	"this line is not mountinfo\n"
	"40 22 259:1 / /data rw - xfs /dev/nvme0n1p1 rw\n"
	"41 22 7:3 / /mnt/nooptional rw - ext4 /dev/loop3 rw"; /* no final newline */

static void test_parse_sample(void **state)
{
	struct fserr_mounts m;
	size_t idx[8];

	assert_int_equal(fserr_mounts_parse(sample, strlen(sample), &m), 0);
	assert_int_equal(m.n, 7);
	assert_int_equal(m.malformed, 1);
	assert_false(m.truncated);
	assert_int_equal(fserr_mounts_find(&m, 7, 3, idx, 8), 4);
	assert_string_equal(m.v[idx[0]].mountpoint, "/mnt/data");
	assert_string_equal(m.v[idx[0]].fstype, "ext4");
	assert_string_equal(m.v[idx[0]].source, "/dev/loop3");
	/* the bind mount: its root is the directory, the device the same */
	assert_string_equal(m.v[idx[1]].root, "/sub/dir");
	assert_string_equal(m.v[idx[1]].mountpoint, "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/x");
	assert_string_equal(m.v[idx[2]].mountpoint, "/mnt/with space\\x");
	assert_string_equal(m.v[idx[3]].mountpoint, "/mnt/nooptional");
	assert_int_equal(fserr_mounts_find(&m, 259, 1, idx, 8), 1);
	assert_string_equal(m.v[idx[0]].fstype, "xfs");
	/* major and minor are matched as numbers: 7:30 is not 7:3 */
	assert_int_equal(fserr_mounts_find(&m, 7, 30, idx, 8), 0);
	/* more matches than room: the count is still right */
	assert_int_equal(fserr_mounts_find(&m, 7, 3, idx, 2), 4);
	fserr_mounts_free(&m);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"1 2 8:1 / /\n",                         /* cut short */
		"1 2 8:1 / / rw shared:1 ext4 x rw\n",   /* no separator */
		"1 2 8x1 / / rw - ext4 x rw\n",          /* bad devno */
		"1 2 8: / / rw - ext4 x rw\n",
		"1 2 :1 / / rw - ext4 x rw\n",
		"1 2 8:1 / / rw -\n",                    /* no fstype */
		"1 2 99999999999:1 / / rw - ext4 x rw\n",
		"",
		"\n\n\n",
	};
	struct fserr_mounts m;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fserr_mounts_parse(bad[i], strlen(bad[i]), &m), 0);
		assert_int_equal(m.n, 0);
		fserr_mounts_free(&m);
	}
	/* a NUL byte ends the text */
	assert_int_equal(fserr_mounts_parse("1 2 8:1 / /a rw - ext4 x rw\n\0garbage", 37, &m), 0);
	assert_int_equal(m.n, 1);
	fserr_mounts_free(&m);
}

static char *many_mounts(size_t n, size_t *len)
{
	size_t cap = n * 128 + 1, off = 0, i;
	char *text = malloc(cap);

	assert_non_null(text);
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(text + off, cap - off, "%zu 1 7:%zu / /mnt/m%zu rw - ext4 /dev/loop%zu rw\n",
					i + 10, i % 50, i, i % 50);
	*len = off;
	return text;
}

static void test_ten_thousand_mounts(void **state)
{
	struct fserr_mounts m;
	size_t len, idx[1000];
	char *text = many_mounts(10000, &len);

	assert_int_equal(fserr_mounts_parse(text, len, &m), 0);
	assert_int_equal(m.n, 10000);
	assert_false(m.truncated);
	assert_int_equal(fserr_mounts_find(&m, 7, 7, idx, 1000), 200);
	assert_string_equal(m.v[idx[199]].mountpoint, "/mnt/m9957");
	fserr_mounts_free(&m);
	free(text);
}

static void test_bounded(void **state)
{
	struct fserr_mounts m;
	size_t len;
	char *text = many_mounts(FSERR_MAX_MOUNTS + 500, &len);

	assert_int_equal(fserr_mounts_parse(text, len, &m), 0);
	assert_int_equal(m.n, FSERR_MAX_MOUNTS);
	assert_true(m.truncated);
	fserr_mounts_free(&m);
	free(text);
}

static void test_uevent(void **state)
{
	static const char ev[] = "MAJOR=7\nMINOR=3\nDEVNAME=loop3\nDEVTYPE=disk\nDISKSEQ=9\n";
	static const char nvme[] = "MAJOR=259\nMINOR=1\nDEVNAME=nvme0n1p1\nDEVTYPE=partition\nPARTN=1";
	char out[32];

	assert_int_equal(fserr_uevent_devname(ev, strlen(ev), out, sizeof(out)), 0);
	assert_string_equal(out, "loop3");
	assert_int_equal(fserr_uevent_devname(nvme, strlen(nvme), out, sizeof(out)), 0);
	assert_string_equal(out, "nvme0n1p1");
	assert_int_equal(fserr_uevent_devname("MAJOR=7\n", 8, out, sizeof(out)), -ENOENT);
	assert_int_equal(fserr_uevent_devname("DEVNAME=\n", 9, out, sizeof(out)), -ENOENT);
	assert_int_equal(fserr_uevent_devname("DEVNAME=0123456789012345678901234567890123456789\n", 49, out,
					      sizeof(out)), -ENOENT);
	/* a partial line without DEVNAME= at its start does not count */
	assert_int_equal(fserr_uevent_devname("XDEVNAME=a\n", 11, out, sizeof(out)), -ENOENT);
}

static void test_device_name_sysfs(void **state)
{
	char root[] = "/tmp/ksight-fserr-sysfs.XXXXXX", path[256], out[64];
	FILE *f;

	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/dev", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/dev/block", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/dev/block/7:3", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/dev/block/7:3/uevent", root);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("MAJOR=7\nMINOR=3\nDEVNAME=loop3\n", f);
	fclose(f);
	/* a device with only the link (as sysfs has it) and a path DEVNAME */
	snprintf(path, sizeof(path), "%s/dev/block/253:3", root);
	assert_int_equal(symlink("../../devices/virtual/block/dm-3", path), 0);

	assert_int_equal(fserr_device_name(root, 7, 3, out, sizeof(out)), 0);
	assert_string_equal(out, "loop3");
	assert_int_equal(fserr_device_name(root, 253, 3, out, sizeof(out)), 0);
	assert_string_equal(out, "dm-3");
	assert_int_equal(fserr_device_name(root, 7, 9, out, sizeof(out)), -ENOENT);
	assert_string_equal(out, "7:9");

	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	assert_int_equal(system(path), 0);
}

/* The watch re-reads only after a change: reads counts the file reads. */
static void test_watch_reads_once(void **state)
{
	char path[] = "/tmp/ksight-fserr-mi.XXXXXX";
	struct fserr_mounts_watch w;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, sample, strlen(sample)), (ssize_t)strlen(sample));
	close(fd);
	assert_int_equal(fserr_mounts_watch_open(&w, path), 0);
	assert_int_equal(fserr_mounts_watch_refresh(&w), 0);
	assert_int_equal(w.table.n, 7);
	assert_int_equal(w.reads, 1);
	/* a regular file never reports POLLPRI: no second read */
	assert_int_equal(fserr_mounts_watch_refresh(&w), 0);
	assert_int_equal(w.reads, 1);
	fserr_mounts_watch_close(&w);
	unlink(path);
	assert_int_equal(fserr_mounts_watch_open(&w, "/nonexistent/mountinfo"), -ENOENT);
	fserr_mounts_watch_close(&w);
}

/* The real thing: /proc/self/mountinfo reports a mount made after the first read. */
static void test_watch_follows_mounts(void **state)
{
	struct fserr_mounts_watch w;
	char dir[] = "/tmp/ksight-fserr-mnt.XXXXXX", cmd[256];
	size_t i;
	bool found = false;

	if (geteuid() != 0) {
		skip();
		return;
	}
	assert_non_null(mkdtemp(dir));
	assert_int_equal(fserr_mounts_watch_open(&w, "/proc/self/mountinfo"), 0);
	assert_int_equal(fserr_mounts_watch_refresh(&w), 0);
	assert_int_equal(w.reads, 1);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs ksight-fserr-test '%s'", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(fserr_mounts_watch_refresh(&w), 0);
	assert_int_equal(w.reads, 2);
	for (i = 0; i < w.table.n; i++)
		if (!strcmp(w.table.v[i].mountpoint, dir))
			found = !strcmp(w.table.v[i].fstype, "tmpfs");
	snprintf(cmd, sizeof(cmd), "umount '%s'", dir);
	assert_int_equal(system(cmd), 0);
	rmdir(dir);
	assert_true(found);
	assert_int_equal(fserr_mounts_watch_refresh(&w), 0);
	assert_int_equal(w.reads, 3);
	fserr_mounts_watch_close(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_sample),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_ten_thousand_mounts),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_uevent),
		cmocka_unit_test(test_device_name_sysfs),
		cmocka_unit_test(test_watch_reads_once),
		cmocka_unit_test(test_watch_follows_mounts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
