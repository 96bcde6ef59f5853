/*
 * Unit tests for user/k8s/cgroup_identity.c: cgroup path -> pod / container.
 *
 * Table-driven: each path_case is registered as its own cmocka test, named
 * after what it shows, and every case checks the return code and every
 * field of struct cgroup_identity. The paths are shaped after what kubelet,
 * containerd, CRI-O, Docker and systemd really create.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cgroup_identity.h"

/* Pod UIDs: canonical, and as systemd spells them ('-' is its separator). */
#define UID_G	"8f3c2a1e-5b7d-4c9a-9e21-3d4f6a8b0c1d"
#define UID_G_	"8f3c2a1e_5b7d_4c9a_9e21_3d4f6a8b0c1d"
#define UID_G_UPPER "8F3C2A1E-5B7D-4C9A-9E21-3D4F6A8B0C1D"
#define UID_B	"0b6e4d2c-91a7-4f3e-8d5c-7a2b9e1f4c60"
#define UID_B_	"0b6e4d2c_91a7_4f3e_8d5c_7a2b9e1f4c60"
#define UID_E	"e47a1b93-2c8d-4e5f-a6b7-c8d9e0f1a2b3"
#define UID_E_	"e47a1b93_2c8d_4e5f_a6b7_c8d9e0f1a2b3"

/* Container ids: 64 lowercase hex digits, as every runtime generates. */
#define CID_1	"3b1f7c9e2a4d6f8b0c1e3a5d7f9b2c4e6a8d0f1b3c5e7a9d2f4b6c8e0a1d3f5b"
#define CID_2	"a9d4e7f1c3b5a8e2d6f0b4c7e1a3d5f9b2c8e4a6d0f3b7c1e5a9d2f6b0c4e8a1"
#define CID_3	"5e8b2d4f7a1c3e6b9d0f2a4c8e1b5d7f3a6c9e0b2d4f8a1c5e7b3d9f0a2c6e4b"
/* A kind node's own Docker container id: the nesting prefix. */
#define CID_KIND "c0ffee11d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9"
/* Malformed ids: uppercase, one digit short, one too many, a non-hex 'g'. */
#define CID_UPPER "3B1F7C9E2A4D6F8B0C1E3A5D7F9B2C4E6A8D0F1B3C5E7A9D2F4B6C8E0A1D3F5B"
#define CID_63	"3b1f7c9e2a4d6f8b0c1e3a5d7f9b2c4e6a8d0f1b3c5e7a9d2f4b6c8e0a1d3f5"
#define CID_65	"3b1f7c9e2a4d6f8b0c1e3a5d7f9b2c4e6a8d0f1b3c5e7a9d2f4b6c8e0a1d3f5b0"
#define CID_G	"3b1f7c9e2a4d6f8b0c1e3a5d7f9b2c4e6a8d0f1b3c5e7a9d2f4b6c8e0a1d3f5g"

/* A static pod's UID: md5 hex of the manifest, no dashes. */
#define STATIC_UID "6f1d2c3b4a5968778695a4b3c2d1e0f9"

#define G	POD_QOS_GUARANTEED
#define B	POD_QOS_BURSTABLE
#define E	POD_QOS_BESTEFFORT
#define NOQOS	POD_QOS_NONE
#define CTRD	CONTAINER_RUNTIME_CONTAINERD
#define CRIO	CONTAINER_RUNTIME_CRIO
#define DOCKER	CONTAINER_RUNTIME_DOCKER
#define UNK	CONTAINER_RUNTIME_UNKNOWN
#define NORT	CONTAINER_RUNTIME_NONE

struct path_case {
	const char *path;
	int rc;
	const char *pod_uid;
	const char *container_id;
	enum pod_qos qos;
	enum container_runtime runtime;
};

static void run_case(void **state)
{
	const struct path_case *tc = *state;
	static const struct cgroup_identity zero;
	struct cgroup_identity id;

	/* Garbage in *out first, so a field the parser forgets to set shows. */
	memset(&id, 0xa5, sizeof(id));
	assert_int_equal(cgroup_identity_parse(tc->path, &id), tc->rc);
	assert_string_equal(id.pod_uid, tc->pod_uid);
	assert_string_equal(id.container_id, tc->container_id);
	assert_int_equal(id.qos, tc->qos);
	assert_int_equal(id.runtime, tc->runtime);
	if (tc->rc)
		assert_memory_equal(&id, &zero, sizeof(id));
}

/* A pod with a container. */
#define POD(desc, p, uid, cid, q, rt) \
	{ .name = desc, .test_func = run_case, \
	  .initial_state = &(struct path_case){ p, 0, uid, cid, q, rt } }
/* Not in a pod: -ENOENT and *out zeroed. */
#define NOPOD(desc, p) \
	{ .name = desc, .test_func = run_case, \
	  .initial_state = &(struct path_case){ p, -ENOENT, "", "", NOQOS, NORT } }

static const struct CMUnitTest path_tests[] = {
	/* kubelet cgroupfs driver */
	POD("cgroupfs guaranteed container",
	    "/kubepods/pod" UID_G "/" CID_1, UID_G, CID_1, G, UNK),
	POD("cgroupfs burstable container",
	    "/kubepods/burstable/pod" UID_B "/" CID_2, UID_B, CID_2, B, UNK),
	POD("cgroupfs besteffort container",
	    "/kubepods/besteffort/pod" UID_E "/" CID_3, UID_E, CID_3, E, UNK),
	POD("cgroupfs guaranteed pod level",
	    "/kubepods/pod" UID_G, UID_G, "", G, NORT),
	POD("cgroupfs burstable pod level",
	    "/kubepods/burstable/pod" UID_B, UID_B, "", B, NORT),
	POD("cgroupfs besteffort pod level",
	    "/kubepods/besteffort/pod" UID_E, UID_E, "", E, NORT),
	POD("cgroupfs CRI-O container",
	    "/kubepods/besteffort/pod" UID_E "/crio-" CID_3, UID_E, CID_3, E, CRIO),
	POD("cgroupfs CRI-O conmon is pod only",
	    "/kubepods/burstable/pod" UID_B "/crio-conmon-" CID_2, UID_B, "", B, NORT),
	POD("path without leading slash",
	    "kubepods/burstable/pod" UID_B "/" CID_2, UID_B, CID_2, B, UNK),
	POD("uppercase pod uid is lowercased",
	    "/kubepods/pod" UID_G_UPPER "/" CID_1, UID_G, CID_1, G, UNK),

	/* kubelet systemd driver, all three runtimes */
	POD("systemd guaranteed containerd",
	    "/kubepods.slice/kubepods-pod" UID_G_ ".slice/cri-containerd-" CID_1 ".scope",
	    UID_G, CID_1, G, CTRD),
	POD("systemd burstable containerd",
	    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_B_
	    ".slice/cri-containerd-" CID_2 ".scope",
	    UID_B, CID_2, B, CTRD),
	POD("systemd besteffort CRI-O",
	    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_E_
	    ".slice/crio-" CID_3 ".scope",
	    UID_E, CID_3, E, CRIO),
	POD("systemd guaranteed CRI-O",
	    "/kubepods.slice/kubepods-pod" UID_G_ ".slice/crio-" CID_1 ".scope",
	    UID_G, CID_1, G, CRIO),
	POD("systemd burstable docker",
	    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_B_
	    ".slice/docker-" CID_2 ".scope",
	    UID_B, CID_2, B, DOCKER),
	POD("systemd besteffort docker",
	    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_E_
	    ".slice/docker-" CID_3 ".scope",
	    UID_E, CID_3, E, DOCKER),
	POD("systemd guaranteed pod level",
	    "/kubepods.slice/kubepods-pod" UID_G_ ".slice", UID_G, "", G, NORT),
	POD("systemd burstable pod level",
	    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_B_ ".slice",
	    UID_B, "", B, NORT),
	POD("systemd CRI-O conmon is pod only",
	    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_B_
	    ".slice/crio-conmon-" CID_2 ".scope",
	    UID_B, "", B, NORT),

	/* below the container: still that container */
	POD("init.scope below a containerd scope",
	    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_B_
	    ".slice/cri-containerd-" CID_2 ".scope/init.scope",
	    UID_B, CID_2, B, CTRD),
	POD("sub-cgroups a container made",
	    "/kubepods/besteffort/pod" UID_E "/" CID_3 "/app/worker-1",
	    UID_E, CID_3, E, UNK),

	/* nesting prefixes */
	POD("kind node, cgroupfs inside",
	    "/system.slice/docker-" CID_KIND ".scope/kubepods/burstable/pod" UID_B "/" CID_2,
	    UID_B, CID_2, B, UNK),
	POD("kind node, systemd inside with --cgroup-root=/kubelet",
	    "/system.slice/docker-" CID_KIND ".scope/kubelet.slice/kubelet-kubepods.slice"
	    "/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" UID_E_
	    ".slice/cri-containerd-" CID_3 ".scope",
	    UID_E, CID_3, E, CTRD),
	POD("systemd --cgroup-root=/kubelet guaranteed",
	    "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" UID_G_
	    ".slice/cri-containerd-" CID_1 ".scope",
	    UID_G, CID_1, G, CTRD),
	POD("cgroupfs --cgroup-root=/kubelet",
	    "/kubelet/kubepods/burstable/pod" UID_B "/" CID_2, UID_B, CID_2, B, UNK),
	/* Rule 4: the outermost pod wins, the inner one could be forged. */
	POD("node nested in a pod reports the outer pod",
	    "/kubepods/burstable/pod" UID_B "/" CID_2 "/kubepods/besteffort/pod" UID_E "/" CID_3,
	    UID_B, CID_2, B, UNK),
	POD("pod-like sub-cgroup of a container cannot claim another pod",
	    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_E_
	    ".slice/cri-containerd-" CID_3 ".scope/kubepods/pod" UID_G "/" CID_1,
	    UID_E, CID_3, E, CTRD),
	POD("outer anchor without a pod falls through to the next",
	    "/kubepods/burstable/not-a-pod/kubepods/pod" UID_G "/" CID_1,
	    UID_G, CID_1, G, UNK),

	/* Rule 6: a malformed container part still leaves the pod. */
	POD("uppercase container id: pod only",
	    "/kubepods/burstable/pod" UID_B "/" CID_UPPER, UID_B, "", B, NORT),
	POD("63-hex container id: pod only",
	    "/kubepods/burstable/pod" UID_B "/" CID_63, UID_B, "", B, NORT),
	POD("65-hex container id: pod only",
	    "/kubepods/burstable/pod" UID_B "/" CID_65, UID_B, "", B, NORT),
	POD("non-hex containerd id: pod only",
	    "/kubepods.slice/kubepods-pod" UID_G_ ".slice/cri-containerd-" CID_G ".scope",
	    UID_G, "", G, NORT),
	POD("unknown runtime scope: pod only",
	    "/kubepods.slice/kubepods-pod" UID_G_ ".slice/libpod-" CID_1 ".scope",
	    UID_G, "", G, NORT),
	POD("containerd name without .scope: pod only",
	    "/kubepods.slice/kubepods-pod" UID_G_ ".slice/cri-containerd-" CID_1,
	    UID_G, "", G, NORT),

	/* not Kubernetes */
	NOPOD("empty string", ""),
	NOPOD("root", "/"),
	NOPOD("user session", "/user.slice/user-1000.slice/session-3.scope"),
	NOPOD("user manager", "/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service"),
	NOPOD("containerd service", "/system.slice/containerd.service"),
	NOPOD("kubelet service", "/system.slice/kubelet.service"),
	NOPOD("docker cgroupfs without kubernetes", "/docker/" CID_1),
	NOPOD("docker systemd without kubernetes", "/system.slice/docker-" CID_1 ".scope"),
	NOPOD("kind node itself", "/system.slice/docker-" CID_KIND ".scope/init.scope"),
	NOPOD("kubepods root", "/kubepods"),
	NOPOD("cgroupfs QoS level", "/kubepods/burstable"),
	NOPOD("systemd kubepods root", "/kubepods.slice"),
	NOPOD("systemd QoS level", "/kubepods.slice/kubepods-besteffort.slice"),

	/* look-alikes */
	NOPOD("kubepodsX is not kubepods",
	      "/kubepodsX/burstable/pod" UID_B "/" CID_2),
	NOPOD("kubepods as a name suffix is not kubepods",
	      "/mykubepods/pod" UID_G "/" CID_1),
	NOPOD("pod-like name outside kubepods",
	      "/system.slice/pod" UID_G "/" CID_1),
	NOPOD("systemd names without the kubepods.slice anchor",
	      "/kubepods-burstable.slice/kubepods-burstable-pod" UID_B_
	      ".slice/cri-containerd-" CID_2 ".scope"),
	NOPOD("systemd anchor with an empty prefix",
	      "/-kubepods.slice/-kubepods-pod" UID_G_ ".slice/cri-containerd-" CID_1 ".scope"),
	NOPOD("no guaranteed QoS directory in cgroupfs",
	      "/kubepods/guaranteed/pod" UID_G "/" CID_1),
	NOPOD("pod slice under the wrong QoS slice",
	      "/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod" UID_E_
	      ".slice/crio-" CID_3 ".scope"),
	NOPOD("pod slice not named after its parent",
	      "/kubepods.slice/kubelet-kubepods-pod" UID_G_ ".slice/cri-containerd-" CID_1 ".scope"),
	/* Same length as "kubepods", so only the name comparison catches it. */
	NOPOD("pod slice named after a same-length parent",
	      "/kubepods.slice/kubelets-pod" UID_G_ ".slice/cri-containerd-" CID_1 ".scope"),
	NOPOD("mixed drivers",
	      "/kubepods/kubepods-burstable.slice/kubepods-burstable-pod" UID_B_ ".slice"),
	NOPOD("extra QoS-like level",
	      "/kubepods/burstable/besteffort/pod" UID_E "/" CID_3),

	/* malformed pod UIDs */
	NOPOD("truncated pod uid",
	      "/kubepods/burstable/pod8f3c2a1e-5b7d-4c9a-9e21-3d4f6a8b0c1/" CID_2),
	NOPOD("pod uid with a non-hex digit",
	      "/kubepods/burstable/pod8f3c2a1e-5b7d-4c9a-9e21-3d4f6a8b0c1z/" CID_2),
	NOPOD("pod uid with trailing characters",
	      "/kubepods/pod" UID_G "x/" CID_1),
	NOPOD("pod uid groups misplaced",
	      "/kubepods/pod8f3c2a1e5-b7d-4c9a-9e21-3d4f6a8b0c1d/" CID_1),
	NOPOD("systemd pod uid with dashes",
	      "/kubepods.slice/kubepods-pod" UID_G ".slice/cri-containerd-" CID_1 ".scope"),
	NOPOD("cgroupfs pod uid with underscores",
	      "/kubepods/pod" UID_G_ "/" CID_1),
	NOPOD("pod prefix without uid", "/kubepods/burstable/pod"),
	/* static pods: the config hash (32 hex) is the cgroup's pod uid */
	POD("static pod, cgroupfs", "/kubepods/burstable/pod" STATIC_UID "/" CID_1,
	    STATIC_UID, CID_1, B, UNK),
	POD("static pod, systemd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
	    STATIC_UID ".slice/cri-containerd-" CID_1 ".scope", STATIC_UID, CID_1, B, CTRD),
	NOPOD("static pod uid one digit short",
	      "/kubepods/burstable/pod6f1d2c3b4a5968778695a4b3c2d1e0f/" CID_1),
	NOPOD("static pod uid not hex",
	      "/kubepods/burstable/pod6f1d2c3b4a5968778695a4b3c2d1e0fz/" CID_1),

	/*
	 * Paths the agent built from kernel-captured names (user/event.c). "..."
	 * first: the root end was elided, so the components seen may all sit
	 * below a container, where anyone with a writable cgroupfs can mkdir a
	 * fake pod. "..." last: the leaf end was elided, the root end is real.
	 */
	NOPOD("kernel path with its root end elided: inner components never name a pod",
	      "/.../d2/d3/d4/d5/kubepods/burstable/pod" UID_B "/" CID_2),
	NOPOD("kernel path with its root end elided, systemd layout",
	      "/.../kubepods.slice/kubepods-pod" UID_G_ ".slice/cri-containerd-" CID_1 ".scope"),
	POD("kernel path with its leaf end elided: the real prefix decides",
	    "/nest/kubepods/burstable/pod" UID_B "/" CID_2 "/n1/n2/n3/...", UID_B, CID_2, B, UNK),
	NOPOD("kernel path with its leaf end elided above the pod",
	      "/n1/n2/n3/n4/n5/n6/kubepods/burstable/..."),

	/* malformed strings */
	NOPOD("double slash", "/kubepods//burstable/pod" UID_B "/" CID_2),
	NOPOD("trailing slash", "/kubepods/burstable/pod" UID_B "/"),
	NOPOD("only slashes", "///"),
	NOPOD("control and high bytes", "\x01\xff/kube\tpods/\x7f"),
	NOPOD("bare kubepods-like word", "kubepods.slice.slice"),
};

static void test_null_arguments(void **state)
{
	static const struct cgroup_identity zero;
	struct cgroup_identity id;

	memset(&id, 0xa5, sizeof(id));
	assert_int_equal(cgroup_identity_parse(NULL, &id), -EINVAL);
	assert_memory_equal(&id, &zero, sizeof(id));
	assert_int_equal(cgroup_identity_parse("/kubepods/pod" UID_G, NULL), -EINVAL);
	assert_int_equal(cgroup_identity_parse(NULL, NULL), -EINVAL);
}

static void test_pod_qos_name(void **state)
{
	assert_string_equal(pod_qos_name(POD_QOS_NONE), "");
	assert_string_equal(pod_qos_name(POD_QOS_GUARANTEED), "guaranteed");
	assert_string_equal(pod_qos_name(POD_QOS_BURSTABLE), "burstable");
	assert_string_equal(pod_qos_name(POD_QOS_BESTEFFORT), "besteffort");
	assert_string_equal(pod_qos_name((enum pod_qos)42), "");
}

static void test_container_runtime_name(void **state)
{
	assert_string_equal(container_runtime_name(CONTAINER_RUNTIME_NONE), "");
	assert_string_equal(container_runtime_name(CONTAINER_RUNTIME_CONTAINERD), "containerd");
	assert_string_equal(container_runtime_name(CONTAINER_RUNTIME_CRIO), "cri-o");
	assert_string_equal(container_runtime_name(CONTAINER_RUNTIME_DOCKER), "docker");
	assert_string_equal(container_runtime_name(CONTAINER_RUNTIME_UNKNOWN), "");
	assert_string_equal(container_runtime_name((enum container_runtime)42), "");
}

/* The test ids must themselves be well-formed for the table to mean anything. */
static void test_fixture_lengths(void **state)
{
	assert_int_equal(strlen(UID_G), 36);
	assert_int_equal(strlen(UID_B_), 36);
	assert_int_equal(strlen(UID_E), 36);
	assert_int_equal(strlen(CID_1), 64);
	assert_int_equal(strlen(CID_2), 64);
	assert_int_equal(strlen(CID_3), 64);
	assert_int_equal(strlen(CID_KIND), 64);
	assert_int_equal(strlen(CID_UPPER), 64);
	assert_int_equal(strlen(CID_G), 64);
	assert_int_equal(strlen(CID_63), 63);
	assert_int_equal(strlen(CID_65), 65);
	assert_int_equal(strlen(STATIC_UID), 32);
}

#define LONG_LEN (10 * 1024)

/* Build "<head><unit repeated to LONG_LEN><tail>" on the heap. */
static char *long_path(const char *head, const char *unit, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *p = malloc(hl + LONG_LEN + ul + tl + 1);
	size_t n = hl;

	assert_non_null(p);
	memcpy(p, head, hl);
	while (n < hl + LONG_LEN) {
		memcpy(p + n, unit, ul);
		n += ul;
	}
	memcpy(p + n, tail, tl + 1);
	return p;
}

static void expect_long(const char *head, const char *unit, const char *tail,
			int rc, const char *uid, const char *cid,
			enum pod_qos qos, enum container_runtime rt)
{
	char *path = long_path(head, unit, tail);
	struct cgroup_identity id;

	memset(&id, 0xa5, sizeof(id));
	assert_int_equal(cgroup_identity_parse(path, &id), rc);
	assert_string_equal(id.pod_uid, uid);
	assert_string_equal(id.container_id, cid);
	assert_int_equal(id.qos, qos);
	assert_int_equal(id.runtime, rt);
	free(path);
}

static void test_long_paths(void **state)
{
	/* 10 KB of components, of one component, of anchors, of slashes. */
	expect_long("/", "user.slice/", "x", -ENOENT, "", "", NOQOS, NORT);
	expect_long("/", "a", "", -ENOENT, "", "", NOQOS, NORT);
	expect_long("/", "kubepods/", "kubepods", -ENOENT, "", "", NOQOS, NORT);
	expect_long("/", "kubepods.slice/", "kubepods.slice", -ENOENT, "", "", NOQOS, NORT);
	expect_long("/", "/", "", -ENOENT, "", "", NOQOS, NORT);
	/* A pod under a 10 KB nesting prefix, and 10 KB below a container. */
	expect_long("/", "nest/", "kubepods/burstable/pod" UID_B "/" CID_2,
		    0, UID_B, CID_2, B, UNK);
	expect_long("/kubepods.slice/kubepods-pod" UID_G_ ".slice/crio-" CID_1 ".scope/",
		    "sub/", "leaf", 0, UID_G, CID_1, G, CRIO);
	/* A 10 KB component where the container name would be. */
	expect_long("/kubepods/besteffort/pod" UID_E "/", "f", "",
		    0, UID_E, "", E, NORT);
}

int main(void)
{
	static const struct CMUnitTest api_tests[] = {
		cmocka_unit_test(test_fixture_lengths),
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_pod_qos_name),
		cmocka_unit_test(test_container_runtime_name),
		cmocka_unit_test(test_long_paths),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("cgroup_identity paths", path_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("cgroup_identity api", api_tests, NULL, NULL);
	return failed ? 1 : 0;
}
