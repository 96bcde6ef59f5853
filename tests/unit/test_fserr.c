/* fserr's user half: names, signatures, Event messages, and a record -> JSON line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <linux/types.h>

#include "agent.h"
#include "fserr.h"
#include "fserr_signal.h"
#include "metrics.h"
#include "probe.h"
#include "signal_def.h"
#include "unit_helpers.h"

extern const struct signal_def fserr_signal;

static void test_dev_decoding(void **state)
{
	/* the kernel's dev_t, not glibc's: 259:1 (nvme0n1p1) is 0x10300001 */
	__u32 dev = (259u << 20) | 1u;

	assert_int_equal(FSERR_DEV_MAJOR(dev), 259);
	assert_int_equal(FSERR_DEV_MINOR(dev), 1);
	assert_int_equal(FSERR_DEV_MAJOR((7u << 20) | 0xfffffu), 7);
	assert_int_equal(FSERR_DEV_MINOR((7u << 20) | 0xfffffu), 0xfffff);
	/* glibc's decoding of the same number would say otherwise */
	assert_int_not_equal(major(dev), 259);
}

static void test_names(void **state)
{
	int s;

	assert_string_equal(fserr_kind_name(FSERR_KIND_CORRUPTION), "corruption");
	assert_string_equal(fserr_kind_name(FSERR_KIND_IO), "io");
	assert_string_equal(fserr_kind_name(FSERR_KIND_SHUTDOWN), "shutdown");
	assert_string_equal(fserr_kind_name(0), "unknown");
	assert_string_equal(fserr_kind_name(99), "unknown");
	for (s = 1; s < FSERR_SRC_MAX; s++)
		assert_string_not_equal(fserr_source_name((unsigned int)s), "unknown");
	assert_string_equal(fserr_source_name(FSERR_SRC_MAX), "unknown");
	assert_string_equal(fserr_source_name(0), "unknown");
	assert_string_equal(fserr_source_name(FSERR_SRC_BLOCK_RQ_ERROR), "block_rq_error");
	/* ksight's reasons, none of node-problem-detector's */
	assert_string_equal(fserr_reason(FSERR_KIND_CORRUPTION), FSERR_REASON_CORRUPTION);
	assert_string_equal(fserr_reason(FSERR_KIND_IO), FSERR_REASON_IO);
	assert_string_equal(fserr_reason(FSERR_KIND_SHUTDOWN), FSERR_REASON_SHUTDOWN);
	for (s = 1; s < FSERR_KIND_MAX; s++) {
		const char *r = fserr_reason((unsigned int)s);

		assert_string_not_equal(r, "Ext4Error");
		assert_string_not_equal(r, "Ext4Warning");
		assert_string_not_equal(r, "IOError");
		assert_string_not_equal(r, "XfsHasShutdown");
		assert_string_not_equal(r, "FilesystemIsReadOnly");
	}
}

static struct fserr_event ext4_event(void)
{
	struct fserr_event e = { .dev = (7u << 20) | 3, .kind = FSERR_KIND_CORRUPTION,
				 .source = FSERR_SRC_EXT4_ERROR, .line = 1051, .has = FSERR_HAS_FUNCTION };

	snprintf(e.function, sizeof(e.function), "htree_dirblock_to_tree");
	return e;
}

static struct fserr_event io_event(void)
{
	struct fserr_event e = { .dev = (7u << 20) | 6, .kind = FSERR_KIND_IO, .source = FSERR_SRC_BLOCK_RQ_ERROR,
				 .error = -ENOSPC, .sector = 16384, .nr_sector = 1024,
				 .has = FSERR_HAS_ERRNO | FSERR_HAS_SECTOR };

	memcpy(e.rwbs, "WS", 3);
	return e;
}

static void test_signature(void **state)
{
	struct fserr_event e = ext4_event(), io = io_event();
	char sig[96];

	fserr_signature(&e, sig, sizeof(sig));
	assert_string_equal(sig, "corruption/htree_dirblock_to_tree");
	fserr_signature(&io, sig, sizeof(sig));
	assert_string_equal(sig, "io/ENOSPC");
	io.error = -EIO;
	fserr_signature(&io, sig, sizeof(sig));
	assert_string_equal(sig, "io/EIO");
	/* neither function nor errno: the hook */
	io.has = 0;
	fserr_signature(&io, sig, sizeof(sig));
	assert_string_equal(sig, "io/block_rq_error");
	/* a function field the kernel filled to the last byte is cut, not overrun */
	memset(e.function, 'f', sizeof(e.function));
	fserr_signature(&e, sig, sizeof(sig));
	assert_int_equal(strlen(sig), strlen("corruption/") + FSERR_FUNC_LEN);
}

static void test_messages(void **state)
{
	const char *const mps[] = { "/mnt/data", "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc-1/mount" };
	struct fserr_place place = { .device = "loop3", .fstype = "ext4", .mountpoints = mps, .n_listed = 2,
				     .n_mounts = 5 };
	struct fserr_volume vol = { .pod_uid = "u", .plugin = "kubernetes.io~csi", .name = "pvc-1" };
	struct fserr_event e = ext4_event(), io = io_event();
	char msg[2048];

	fserr_message(&e, &place, NULL, msg, sizeof(msg));
	assert_string_equal(msg, "Filesystem corruption on loop3 (ext4 at /mnt/data, "
			    "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pvc-1/mount and 3 more) in "
			    "htree_dirblock_to_tree:1051 (kernel hook ext4_error; ext4 reports no errno)");
	fserr_message(&e, &place, &vol, msg, sizeof(msg));
	assert_non_null(strstr(msg, "Volume pvc-1 (PersistentVolume pvc-1) of this pod is on loop3: filesystem corruption on loop3"));

	place.n_listed = place.n_mounts = 0;
	place.device = "loop6";
	place.fstype = "";
	fserr_message(&io, &place, NULL, msg, sizeof(msg));
	assert_string_equal(msg, "Block I/O error ENOSPC on loop6 (not mounted), WS request of 1024 sectors at "
			    "sector 16384 (kernel hook block_rq_error)");

	e.kind = FSERR_KIND_SHUTDOWN;
	e.source = FSERR_SRC_XFS_FORCE_SHUTDOWN;
	snprintf(e.function, sizeof(e.function), "fs/xfs/xfs_fsops.c");
	e.line = 475;
	fserr_message(&e, &place, NULL, msg, sizeof(msg));
	assert_string_equal(msg, "Filesystem shut down on loop6 (not mounted) in fs/xfs/xfs_fsops.c:475 "
			    "(kernel hook xfs_force_shutdown)");
	/* a short buffer is cut, never overrun */
	fserr_message(&e, &place, &vol, msg, 20);
	assert_int_equal(strlen(msg), 19);
}

/* A kernel whose tracefs has ext4 but no xfs events: xfs is a module, not loaded. */
static bool no_xfs_tracefs(void *ctx, const char *category, const char *name)
{
	if (!category[0])
		return true; /* events/ itself */
	return !strcmp(category, "ext4") && (!name[0] || !strcmp(name, "ext4_error"));
}

static void test_xfs_not_loaded_is_said(void **state)
{
	struct kernel_features kf = { .has_tracefs_event = no_xfs_tracefs };
	char why[PROBE_REASON_LEN];

	assert_int_equal(probe_check_section("tracepoint/ext4/ext4_error", &kf, why, sizeof(why)), 0);
	assert_int_equal(probe_check_section("tracepoint/xfs/xfs_force_shutdown", &kf, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "tracepoint xfs/xfs_force_shutdown is not in tracefs: no xfs events at all "
			    "(the xfs module is not loaded)");
	/* the category is there, the event is not: the plain reason */
	assert_int_equal(probe_check_section("tracepoint/ext4/ext4_nothing", &kf, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "tracepoint ext4/ext4_nothing is not in tracefs on this kernel");
}

/* Every tracepoint and section is there; only the xfs module's BTF is not (5.10: before 5.11). */
static bool every_tracefs_event(void *ctx, const char *category, const char *name)
{
	return true;
}

static bool no_module_btf(void *ctx, const char *module)
{
	return false;
}

static const char *any_section(void *ctx, const char *program)
{
	return strstr(program, "_kp") ? "kprobe/f" : "tracepoint/xfs/x";
}

static void test_xfs_without_module_btf_is_unsupported(void **state)
{
	struct kernel_features kf = { .has_tracefs_event = every_tracefs_event, .has_module_btf = no_module_btf };
	struct point_status st;
	bool any_xfs = false;
	size_t p, v;

	for (p = 0; p < fserr_signal.n_points; p++) {
		const struct probe_point *pt = &fserr_signal.points[p];
		bool xfs = !strncmp(pt->name, "xfs_", 4);

		if (!xfs)
			continue;
		any_xfs = true;
		/* xfs's programs read xfs's own types: CO-RE finds them only in the module's BTF */
		assert_int_equal(probe_plan(pt, &kf, any_section, NULL, NULL, &st), 0);
		for (v = 0; v < pt->n_variants; v++) {
			assert_int_equal(st.variants[v].state, VARIANT_UNSUPPORTED);
			assert_non_null(strstr(st.variants[v].reason, "/sys/kernel/btf/xfs"));
		}
		/* with the module's BTF (or a simulated kernel that does not say) they are candidates */
		kf.has_module_btf = NULL;
		assert_int_equal(probe_plan(pt, &kf, any_section, NULL, NULL, &st), (int)pt->n_variants);
		kf.has_module_btf = no_module_btf;
	}
	assert_true(any_xfs);
}

static char *handle(struct signal_runtime *rt, const struct fserr_event *e)
{
	return handle_record(rt, e, sizeof(*e));
}

static int64_t fixed_offset(void)
{
	return 1700000000LL * 1000000000;
}

/* A record about the filesystem of /proc (a real mount on every host): names, fstype and mount point. */
static void test_record_to_json(void **state)
{
	struct agent_config cfg = { .mode = MODE_TRACE, .format = OUTPUT_JSON };
	struct agent agent = { .cfg = &cfg, .trace = true, .node = "node-1", .boot_to_wall_ns = fixed_offset };
	struct signal_runtime rt = { .def = &fserr_signal, .agent = &agent };
	struct fserr_event e = ext4_event();
	json_object *obj, *v;
	struct stat st;
	char want[32];
	bool found = false;
	size_t i;

	if (access("/proc/1/mountinfo", R_OK)) {
		skip();
		return;
	}
	assert_int_equal(stat("/proc", &st), 0);
	e.dev = (major(st.st_dev) << FSERR_MINOR_BITS) | minor(st.st_dev);
	agent.metrics = metrics_registry_new(0);
	assert_int_equal(fserr_signal.init(&rt), 0);
	obj = json_tokener_parse(handle(&rt, &e));
	assert_non_null(obj);
	assert_true(json_object_object_get_ex(obj, "signal", &v));
	assert_string_equal(json_object_get_string(v), "fserr");
	assert_true(json_object_object_get_ex(obj, "major", &v));
	assert_int_equal(json_object_get_int(v), major(st.st_dev));
	assert_true(json_object_object_get_ex(obj, "minor", &v));
	assert_int_equal(json_object_get_int(v), minor(st.st_dev));
	/* proc is no block device: the name is the number */
	snprintf(want, sizeof(want), "%u:%u", major(st.st_dev), minor(st.st_dev));
	assert_true(json_object_object_get_ex(obj, "device", &v));
	assert_string_equal(json_object_get_string(v), want);
	assert_true(json_object_object_get_ex(obj, "fstype", &v));
	assert_string_equal(json_object_get_string(v), "proc");
	assert_true(json_object_object_get_ex(obj, "mountpoints", &v));
	for (i = 0; i < json_object_array_length(v); i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(v, i)), "/proc"))
			found = true;
	assert_true(found);
	assert_true(json_object_object_get_ex(obj, "function", &v));
	assert_string_equal(json_object_get_string(v), "htree_dirblock_to_tree");
	assert_true(json_object_object_get_ex(obj, "line", &v));
	assert_int_equal(json_object_get_int(v), 1051);
	assert_true(json_object_object_get_ex(obj, "errno", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(obj, "kind", &v));
	assert_string_equal(json_object_get_string(v), "corruption");
	assert_true(json_object_object_get_ex(obj, "source", &v));
	assert_string_equal(json_object_get_string(v), "ext4_error");
	assert_true(json_object_object_get_ex(obj, "pods", &v));
	assert_int_equal(json_object_array_length(v), 0);
	json_object_put(obj);

	/* an I/O record on an unknown device: the number, and the errno's name */
	{
		struct fserr_event io = io_event();

		io.dev = (4000u << 20) | 77;
		obj = json_tokener_parse(handle(&rt, &io));
		assert_non_null(obj);
		assert_true(json_object_object_get_ex(obj, "device", &v));
		assert_string_equal(json_object_get_string(v), "4000:77");
		assert_true(json_object_object_get_ex(obj, "errno", &v));
		assert_string_equal(json_object_get_string(v), "ENOSPC");
		assert_true(json_object_object_get_ex(obj, "function", &v));
		assert_null(v);
		assert_true(json_object_object_get_ex(obj, "mountpoints", &v));
		assert_int_equal(json_object_array_length(v), 0);
		json_object_put(obj);
	}
	assert_int_equal(fserr_signal.handle_event(&rt, &e, sizeof(e) - 1), -EINVAL);
	fserr_signal.fini(&rt);
	metrics_registry_free(agent.metrics);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dev_decoding),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_xfs_not_loaded_is_said),
		cmocka_unit_test(test_xfs_without_module_btf_is_unsupported),
		cmocka_unit_test(test_record_to_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
