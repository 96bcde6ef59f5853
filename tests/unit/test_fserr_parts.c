/* fserr_partition_of over a fake sysfs: the seams of each partition, gaps, a disk without any, a gone disk. */
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

#include "fserr_parts.h"

static char root[64];

static void put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void dir(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

/* sysfs's layout: dev/block/MAJ:MIN links to the disk's directory, its partitions are subdirectories */
static void partition(const char *disk_dir, const char *name, const char *start, const char *size, const char *dev)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "%s/%s", disk_dir, name);
	dir(rel);
	snprintf(rel, sizeof(rel), "%s/%s/start", disk_dir, name);
	put(rel, start);
	snprintf(rel, sizeof(rel), "%s/%s/size", disk_dir, name);
	put(rel, size);
	snprintf(rel, sizeof(rel), "%s/%s/dev", disk_dir, name);
	put(rel, dev);
	snprintf(rel, sizeof(rel), "%s/%s/partition", disk_dir, name);
	put(rel, "1\n");
}

static int setup(void **state)
{
	char path[512];

	snprintf(root, sizeof(root), "/tmp/ksight-fserr-parts.XXXXXX");
	assert_non_null(mkdtemp(root));
	dir("dev");
	dir("dev/block");
	dir("devices");
	dir("devices/loop5");
	/* the disk's own attributes and directories, which are not partitions */
	put("devices/loop5/size", "98304\n");
	put("devices/loop5/dev", "7:5\n");
	dir("devices/loop5/queue");
	dir("devices/loop5/holders");
	/* p1: sectors 2048..34815, p2: 34816..98303; the gap 0..2047 is the table's */
	partition("devices/loop5", "loop5p1", "2048\n", "32768\n", "259:0\n");
	partition("devices/loop5", "loop5p2", "34816\n", "63488\n", "259:1\n");
	snprintf(path, sizeof(path), "%s/dev/block/7:5", root);
	assert_int_equal(symlink("../../devices/loop5", path), 0);
	/* a disk without partitions, and one with an msdos extended container and a logical one in it */
	dir("devices/sdb");
	put("devices/sdb/size", "1000\n");
	snprintf(path, sizeof(path), "%s/dev/block/8:16", root);
	assert_int_equal(symlink("../../devices/sdb", path), 0);
	dir("devices/sdc");
	partition("devices/sdc", "sdc1", "2048\n", "2048\n", "8:33\n");
	partition("devices/sdc", "sdc2", "4096\n", "2\n", "8:34\n");    /* the extended container: 1 KiB */
	partition("devices/sdc", "sdc5", "6144\n", "4096\n", "8:37\n");
	/* a partition whose files are not numbers: skipped, not misread as 0 */
	partition("devices/sdc", "sdc6", "x\n", "4096\n", "8:38\n");
	snprintf(path, sizeof(path), "%s/dev/block/8:32", root);
	assert_int_equal(symlink("../../devices/sdc", path), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void expect_part(unsigned int major, unsigned int minor, unsigned long long sector, const char *name,
			unsigned int pmajor, unsigned int pminor)
{
	struct fserr_partition p;

	memset(&p, 0xff, sizeof(p));
	assert_int_equal(fserr_partition_of(root, major, minor, sector, &p), 0);
	assert_string_equal(p.name, name);
	assert_int_equal(p.major, pmajor);
	assert_int_equal(p.minor, pminor);
	assert_true(sector >= p.start && sector < p.start + p.size);
}

static void expect_none(unsigned int major, unsigned int minor, unsigned long long sector)
{
	struct fserr_partition p;

	assert_int_equal(fserr_partition_of(root, major, minor, sector, &p), -ENOENT);
}

static void test_seams(void **state)
{
	expect_none(7, 5, 0);
	expect_none(7, 5, 2047);
	expect_part(7, 5, 2048, "loop5p1", 259, 0);
	expect_part(7, 5, 34815, "loop5p1", 259, 0);
	expect_part(7, 5, 34816, "loop5p2", 259, 1);
	expect_part(7, 5, 98303, "loop5p2", 259, 1);
	expect_none(7, 5, 98304);
	expect_none(7, 5, ~0ULL);
}

static void test_extended_and_logical(void **state)
{
	expect_part(8, 32, 4096, "sdc2", 8, 34);
	expect_part(8, 32, 4097, "sdc2", 8, 34);
	expect_none(8, 32, 4098);      /* between the container's table and the logical partition */
	expect_part(8, 32, 6144, "sdc5", 8, 37);
	expect_none(8, 32, 10240);     /* sdc6's start is not a number: not a partition from 0 */
	expect_none(8, 32, 0);
}

static void test_no_partitions_or_gone(void **state)
{
	expect_none(8, 16, 0);
	expect_none(8, 16, 500);
	expect_none(7, 9, 2048);       /* no such disk: a loop device detached, its partitions gone */
	expect_none(259, 0, 2048);     /* a partition has no partitions */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seams),
		cmocka_unit_test(test_extended_and_logical),
		cmocka_unit_test(test_no_partitions_or_gone),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
