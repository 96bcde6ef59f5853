/* fserr's pod volumes from kubelet's mount point layout. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fserr_pods.h"

#define UID "0b7d3f5e-1c2a-4b8e-9d6f-123456789abc"

static void test_volume_paths(void **state)
{
	struct fserr_volume v;

	assert_int_equal(fserr_volume_of("/var/lib/kubelet",
					 "/var/lib/kubelet/pods/" UID "/volumes/kubernetes.io~empty-dir/cache", &v), 0);
	assert_string_equal(v.pod_uid, UID);
	assert_string_equal(v.plugin, "kubernetes.io~empty-dir");
	assert_string_equal(v.name, "cache");
	assert_false(v.subpath);
	assert_null(fserr_volume_pv(&v));

	/* CSI: the volume directory is the PV's name, the mount is below it */
	assert_int_equal(fserr_volume_of("/var/lib/kubelet/",
					 "/var/lib/kubelet/pods/" UID "/volumes/kubernetes.io~csi/pvc-42/mount", &v), 0);
	assert_string_equal(v.plugin, "kubernetes.io~csi");
	assert_string_equal(fserr_volume_pv(&v), "pvc-42");

	assert_int_equal(fserr_volume_of("/var/lib/kubelet",
					 "/var/lib/kubelet/pods/" UID "/volume-subpaths/data/app/0", &v), 0);
	assert_true(v.subpath);
	assert_string_equal(v.name, "data");
	assert_string_equal(v.plugin, "");

	/* another kubelet root (a flag), with the test's temporary directory */
	assert_int_equal(fserr_volume_of("/tmp/k", "/tmp/k/pods/abc/volumes/p/n", &v), 0);
	assert_string_equal(v.pod_uid, "abc");
}

static void test_not_volumes(void **state)
{
	static const char *const paths[] = {
		"/var/lib/kubelet",
		"/var/lib/kubelet/pods",
		"/var/lib/kubelet/pods/" UID,
		"/var/lib/kubelet/pods/" UID "/volumes",
		"/var/lib/kubelet/pods/" UID "/volumes/kubernetes.io~empty-dir",
		"/var/lib/kubelet/pods/" UID "/etc-hosts",
		"/var/lib/kubelet/pods/" UID "/containers/app/1",
		"/var/lib/kubelet/plugins/kubernetes.io/csi/driver/abc/globalmount",
		"/var/lib/kubeletx/pods/" UID "/volumes/a/b",
		"/var/lib/kubelet/pods//volumes/a/b",
		"/var/lib/kubelet/pods/../volumes/a/b",
		"/mnt/data",
		"",
	};
	struct fserr_volume v;
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(fserr_volume_of("/var/lib/kubelet", paths[i], &v), -ENOENT);
		assert_string_equal(v.pod_uid, "");
	}
}

static void test_too_long(void **state)
{
	char path[1024], uid[100];
	struct fserr_volume v;

	memset(uid, 'a', sizeof(uid) - 1);
	uid[sizeof(uid) - 1] = '\0';
	snprintf(path, sizeof(path), "/var/lib/kubelet/pods/%s/volumes/p/n", uid);
	assert_int_equal(fserr_volume_of("/var/lib/kubelet", path, &v), -ENOENT);
}

static void test_add_dedupes(void **state)
{
	struct fserr_volume vols[2], a, sub, b, c;
	size_t n = 0;

	assert_int_equal(fserr_volume_of("/k", "/k/pods/p1/volume-subpaths/data/app/0", &sub), 0);
	assert_int_equal(fserr_volume_of("/k", "/k/pods/p1/volumes/kubernetes.io~csi/data/mount", &a), 0);
	assert_int_equal(fserr_volume_of("/k", "/k/pods/p2/volumes/kubernetes.io~csi/data/mount", &b), 0);
	assert_int_equal(fserr_volume_of("/k", "/k/pods/p3/volumes/x/y", &c), 0);
	assert_true(fserr_volume_add(vols, &n, 2, &sub));
	assert_true(fserr_volume_add(vols, &n, 2, &a));
	assert_int_equal(n, 1);
	/* the volume's own mount replaced the subPath one: the plugin is known */
	assert_string_equal(vols[0].plugin, "kubernetes.io~csi");
	assert_true(fserr_volume_add(vols, &n, 2, &sub));
	assert_string_equal(vols[0].plugin, "kubernetes.io~csi");
	assert_true(fserr_volume_add(vols, &n, 2, &b));
	assert_int_equal(n, 2);
	assert_false(fserr_volume_add(vols, &n, 2, &c));
	assert_int_equal(n, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_volume_paths),
		cmocka_unit_test(test_not_volumes),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_add_dedupes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
