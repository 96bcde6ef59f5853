/*
 * pod_resolver (user/k8s/pod_resolver.c) over a fake /proc and a fake cgroup
 * hierarchy in a temporary directory: hard links give several "processes"
 * the same ns/net inode, as the kernel's nsfs does, and directories stand in
 * for cgroups (the id of a cgroup is its directory's inode).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "pod_resolver.h"

#define UID_A	"5f0c8c2e-1b7a-4d3e-9a6f-2c4b8d0e1f3a"
#define UID_B	"0b6e4d2c-91a7-4f3e-8d5c-7a2b9e1f4c60"
#define CID_A	"0f0ace7729716150acf57fcb9750f8199e8762c054912b944a3c436245cb9a43"
#define CID_B	"a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5"

static char root[64];

static void sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static void write_file(const char *rel, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* A fake process `pid` in namespace file `ns` (under root/ns/) with this /proc/PID/cgroup. */
static void fake_process(int pid, const char *ns, const char *cgroup)
{
	char from[256], to[256];

	sh("mkdir -p %s/proc/%d/ns && touch %s/ns/%s", root, pid, root, ns);
	snprintf(from, sizeof(from), "%s/ns/%s", root, ns);
	snprintf(to, sizeof(to), "%s/proc/%d/ns/net", root, pid);
	assert_int_equal(link(from, to), 0);
	if (cgroup) {
		snprintf(to, sizeof(to), "proc/%d/cgroup", pid);
		write_file(to, cgroup);
	}
}

static uint64_t ino(const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_ino;
}

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/test_pod_resolver.XXXXXX");
	assert_non_null(mkdtemp(root));
	sh("mkdir -p %s/proc %s/ns %s/cg", root, root, root);
	fake_process(1, "host", "12:memory:/\n0::/init.scope\n");
	fake_process(50, "host", "0::/system.slice/containerd.service\n");
	/* pod A: pause and app, cgroupfs driver, v1 memory line first */
	fake_process(100, "podA", "12:memory:/kubepods/burstable/pod" UID_A "/" CID_A "\n0::/\n");
	fake_process(101, "podA", "12:memory:/kubepods/burstable/pod" UID_A "/" CID_A "\n0::/\n");
	/* pod B: its first process exited mid-scan (no cgroup file), the next is the pod's */
	fake_process(200, "podB", NULL);
	fake_process(201, "podB",
		     "1:name=systemd:/user.slice\n"
		     "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
		     "0b6e4d2c_91a7_4f3e_8d5c_7a2b9e1f4c60.slice/cri-containerd-" CID_B ".scope\n");
	/* a namespace of plain processes */
	fake_process(300, "plain", "0::/system.slice/ip-netns.service\n5:cpu:/\n");
	/* a namespace whose only process is gone */
	fake_process(400, "gone", NULL);
	sh("mkdir -p %s/cg/kubepods/burstable/pod%s/%s %s/cg/system.slice/a.service", root, UID_A, CID_A, root);
	return 0;
}

static int teardown(void **state)
{
	sh("rm -rf %s", root);
	return 0;
}

static struct pod_resolver *resolver(int rescan_ms, unsigned int max_scan)
{
	char proc[128], cg[128];
	struct pod_resolver_config cfg = {
		.proc_root = proc, .cgroup_root = cg, .rescan_ms = rescan_ms,
		.max_scan = max_scan, .no_handles = true,
	};
	struct pod_resolver *r;

	snprintf(proc, sizeof(proc), "%s/proc", root);
	snprintf(cg, sizeof(cg), "%s/cg", root);
	assert_int_equal(pod_resolver_new(&cfg, &r), 0);
	return r;
}

static void test_netns(void **state)
{
	struct pod_resolver *r = resolver(60000, 0);
	struct pod_ref ref;

	assert_int_equal(pod_resolver_netns(r, ino("ns/podA"), &ref), 0);
	assert_false(ref.host);
	assert_string_equal(ref.id.pod_uid, UID_A);
	assert_string_equal(ref.id.container_id, CID_A);
	assert_string_equal(ref.cgroup, "/kubepods/burstable/pod" UID_A "/" CID_A);

	assert_int_equal(pod_resolver_netns(r, ino("ns/podB"), &ref), 0);
	assert_string_equal(ref.id.pod_uid, UID_B);
	assert_string_equal(ref.id.container_id, CID_B);

	assert_int_equal(pod_resolver_netns(r, ino("ns/host"), &ref), 0);
	assert_true(ref.host);
	assert_string_equal(ref.id.pod_uid, "");

	assert_int_equal(pod_resolver_netns(r, ino("ns/plain"), &ref), 0);
	assert_false(ref.host);
	assert_string_equal(ref.id.pod_uid, "");
	assert_string_equal(ref.cgroup, "/system.slice/ip-netns.service");

	/* nobody left in it: unknown; and no rescan per miss */
	assert_int_equal(pod_resolver_netns(r, ino("ns/gone"), &ref), -EAGAIN);
	assert_int_equal(pod_resolver_netns(r, 12345678, &ref), -EAGAIN);
	assert_int_equal(pod_resolver_netns(r, 0, &ref), -EINVAL);
	assert_int_equal(pod_resolver_netns(NULL, 1, &ref), -EINVAL);

	/* a new pod appears: cached results hold until a rescan is due */
	fake_process(500, "podC", "0::/kubepods/besteffort/pod" UID_B "\n");
	assert_int_equal(pod_resolver_netns(r, ino("ns/podC"), &ref), -EAGAIN);
	pod_resolver_free(r);

	r = resolver(-1, 0);	/* rescan at every miss */
	assert_int_equal(pod_resolver_netns(r, ino("ns/gone"), &ref), -ENOENT);
	fake_process(600, "podD", "0::/kubepods/pod" UID_A "\n");
	assert_int_equal(pod_resolver_netns(r, ino("ns/podD"), &ref), 0);
	assert_string_equal(ref.id.pod_uid, UID_A);
	pod_resolver_free(r);
	sh("rm -rf %s/proc/500 %s/proc/600", root, root);
}

/* At most max_scan processes are looked at per scan. */
static void test_netns_bounded(void **state)
{
	struct pod_resolver *r = resolver(-1, 2);
	struct pod_ref ref;
	int found = 0;

	/* which two readdir() gives first is the filesystem's business: count */
	found += pod_resolver_netns(r, ino("ns/podA"), &ref) == 0;
	found += pod_resolver_netns(r, ino("ns/podB"), &ref) == 0;
	found += pod_resolver_netns(r, ino("ns/host"), &ref) == 0;
	found += pod_resolver_netns(r, ino("ns/plain"), &ref) == 0;
	assert_true(found <= 2);
	pod_resolver_free(r);
}

static void test_cgroup_walk(void **state)
{
	struct pod_resolver *r = resolver(60000, 0);
	char rel[256];
	struct pod_ref ref;
	uint64_t id;

	snprintf(rel, sizeof(rel), "cg/kubepods/burstable/pod%s/%s", UID_A, CID_A);
	assert_int_equal(pod_resolver_cgroup(r, ino(rel), &ref), 0);
	assert_string_equal(ref.id.pod_uid, UID_A);
	assert_string_equal(ref.id.container_id, CID_A);
	assert_string_equal(ref.cgroup, "/kubepods/burstable/pod" UID_A "/" CID_A);
	assert_false(ref.host);

	/* cached: the same answer after the directory is gone, until the TTL */
	id = ino(rel);
	sh("rmdir %s/%s", root, rel);
	memset(&ref, 0, sizeof(ref));
	assert_int_equal(pod_resolver_cgroup(r, id, &ref), 0);
	assert_string_equal(ref.id.pod_uid, UID_A);
	/* a miss right after a walk: no second walk yet */
	assert_int_equal(pod_resolver_cgroup(r, ino("cg/system.slice"), &ref), -EAGAIN);
	pod_resolver_free(r);
	sh("mkdir -p %s/%s", root, rel);

	r = resolver(-1, 0);
	assert_int_equal(pod_resolver_cgroup(r, ino("cg"), &ref), 0);
	assert_true(ref.host);
	assert_string_equal(ref.cgroup, "/");
	assert_int_equal(pod_resolver_cgroup(r, ino("cg/system.slice/a.service"), &ref), 0);
	assert_string_equal(ref.cgroup, "/system.slice/a.service");
	assert_string_equal(ref.id.pod_uid, "");
	assert_int_equal(pod_resolver_cgroup(r, ino("ns/host"), &ref), -ENOENT);	/* not a cgroup */
	assert_int_equal(pod_resolver_cgroup(r, 0, &ref), -EINVAL);
	pod_resolver_free(r);

	/* the walk is bounded too */
	r = resolver(-1, 1);
	assert_int_equal(pod_resolver_cgroup(r, ino(rel), &ref), -ENOENT);
	pod_resolver_free(r);
}

static void test_parse_proc_cgroup(void **state)
{
	struct cgroup_identity id;
	char path[128];
	static const char v1_and_v2[] = "12:memory:/kubepods/pod" UID_A "\n0::/x\n";
	static const char no_pod[] = "3:cpu:/a\n0::/system.slice/b.service\n";
	static const char v1_only[] = "3:cpu:/a\n2:memory:/b";

	assert_int_equal(pod_resolver_parse_proc_cgroup(v1_and_v2, strlen(v1_and_v2), path, sizeof(path), &id), 0);
	assert_string_equal(path, "/kubepods/pod" UID_A);
	assert_string_equal(id.pod_uid, UID_A);
	assert_int_equal(pod_resolver_parse_proc_cgroup(no_pod, strlen(no_pod), path, sizeof(path), &id), -ENOENT);
	assert_string_equal(path, "/system.slice/b.service");	/* the v2 one */
	assert_string_equal(id.pod_uid, "");
	assert_int_equal(pod_resolver_parse_proc_cgroup(v1_only, strlen(v1_only), path, sizeof(path), &id), -ENOENT);
	assert_string_equal(path, "/a");
	assert_int_equal(pod_resolver_parse_proc_cgroup("", 0, path, sizeof(path), &id), -EINVAL);
	assert_int_equal(pod_resolver_parse_proc_cgroup("garbage\n::\n1:x\n", 16, path, sizeof(path), &id), -EINVAL);
	/* a line with a NUL is not a path */
	assert_int_equal(pod_resolver_parse_proc_cgroup("0::/a\0b\n", 8, path, sizeof(path), &id), -EINVAL);
}

static void test_args(void **state)
{
	char long_root[300];
	struct pod_resolver_config cfg = { .proc_root = long_root };
	struct pod_resolver *r = (void *)1;
	struct pod_ref ref;

	memset(long_root, 'a', sizeof(long_root) - 1);
	long_root[sizeof(long_root) - 1] = '\0';
	assert_int_equal(pod_resolver_new(&cfg, &r), -ENAMETOOLONG);
	assert_null(r);
	cfg.proc_root = NULL;
	cfg.cgroup_root = "";	/* no cgroup2: cgroup lookups fail, netns ones work */
	assert_int_equal(pod_resolver_new(&cfg, &r), 0);
	assert_int_equal(pod_resolver_cgroup(r, 1, &ref), -ENODEV);
	pod_resolver_free(r);
	pod_resolver_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netns),
		cmocka_unit_test(test_netns_bounded),
		cmocka_unit_test(test_cgroup_walk),
		cmocka_unit_test(test_parse_proc_cgroup),
		cmocka_unit_test(test_args),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
