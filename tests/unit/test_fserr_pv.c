/* fserr's PersistentVolume -> claim: the JSON a GET answers, and the no-API path. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fserr_pv.h"
#include "fserr_signal.h"

static int parse(const char *json, char *out, size_t len)
{
	return fserr_pv_claim_parse(json, strlen(json), out, len);
}

static void test_bound(void **state)
{
	char out[FSERR_PVC_LEN];

	assert_int_equal(parse("{\"kind\":\"PersistentVolume\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"pv-xyz\"},"
			       "\"spec\":{\"csi\":{\"driver\":\"d\"},\"claimRef\":{\"kind\":\"PersistentVolumeClaim\","
			       "\"namespace\":\"data\",\"name\":\"claim\",\"uid\":\"u\"}},\"status\":{\"phase\":\"Bound\"}}",
			       out, sizeof(out)), 0);
	assert_string_equal(out, "data/claim");
	/* no kind (some proxies strip it): still a PV by its spec */
	assert_int_equal(parse("{\"spec\":{\"claimRef\":{\"namespace\":\"a\",\"name\":\"b\"}}}", out, sizeof(out)), 0);
	assert_string_equal(out, "a/b");
}

static void test_unbound(void **state)
{
	char out[FSERR_PVC_LEN] = "untouched";

	assert_int_equal(parse("{\"kind\":\"PersistentVolume\",\"spec\":{\"csi\":{}},\"status\":{\"phase\":\"Available\"}}",
			       out, sizeof(out)), -ENOENT);
	assert_int_equal(parse("{\"kind\":\"PersistentVolume\",\"spec\":{\"claimRef\":{\"name\":\"b\"}}}", out, sizeof(out)),
			 -ENOENT);
	assert_int_equal(parse("{\"kind\":\"PersistentVolume\",\"spec\":{\"claimRef\":{\"namespace\":\"\",\"name\":\"b\"}}}",
			       out, sizeof(out)), -ENOENT);
	assert_int_equal(parse("{\"kind\":\"PersistentVolume\",\"spec\":{\"claimRef\":\"data/claim\"}}", out, sizeof(out)),
			 -ENOENT);
	/* a NUL inside a name is not cut into a shorter, wrong name */
	assert_int_equal(parse("{\"spec\":{\"claimRef\":{\"namespace\":\"a\\u0000b\",\"name\":\"c\"}}}", out, sizeof(out)),
			 -ENOENT);
	assert_string_equal(out, "untouched");
}

static void test_not_a_pv(void **state)
{
	char out[FSERR_PVC_LEN];

	/* a 404's Status, a list, garbage, an empty body */
	assert_int_equal(parse("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"code\":404}", out,
			       sizeof(out)), -EINVAL);
	assert_int_equal(parse("[1,2]", out, sizeof(out)), -EINVAL);
	assert_int_equal(parse("{\"spec\":", out, sizeof(out)), -EINVAL);
	assert_int_equal(parse("", out, sizeof(out)), -EINVAL);
	assert_int_equal(parse("{\"kind\":\"PersistentVolume\",\"spec\":[]}", out, sizeof(out)), -EINVAL);
}

static void test_too_long(void **state)
{
	char out[8];

	assert_int_equal(parse("{\"spec\":{\"claimRef\":{\"namespace\":\"data\",\"name\":\"claim\"}}}", out, sizeof(out)),
			 -ENAMETOOLONG);
	assert_int_equal(parse("{\"spec\":{\"claimRef\":{\"namespace\":\"abc\",\"name\":\"def\"}}}", out, sizeof(out)), 0);
	assert_string_equal(out, "abc/def");
}

static void test_no_api(void **state)
{
	char out[FSERR_PVC_LEN];

	assert_null(fserr_pvs_new(NULL));
	assert_int_equal(fserr_pvs_claim(NULL, "pv-xyz", out, sizeof(out), 1000), -ENOENT);
	fserr_pvs_free(NULL);
}

/* The Pod Event names the claim when the API told it, the PV alone when not. */
static void test_message(void **state)
{
	const char *const mps[] = { "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pv-xyz/mount" };
	struct fserr_place place = { .device = "loop3", .fstype = "ext4", .mountpoints = mps, .n_listed = 1,
				     .n_mounts = 1 };
	struct fserr_volume vol = { .pod_uid = "u", .plugin = "kubernetes.io~csi", .name = "pv-xyz",
				    .pvc = "data/claim" };
	struct fserr_event e = { .kind = FSERR_KIND_IO, .source = FSERR_SRC_BLOCK_RQ_ERROR, .has = FSERR_HAS_ERRNO,
				 .error = -EIO };
	char msg[2048];

	fserr_message(&e, &place, &vol, msg, sizeof(msg));
	assert_non_null(strstr(msg, "Volume pv-xyz (PersistentVolume pv-xyz, PersistentVolumeClaim data/claim) "
				    "of this pod is on loop3: I/O error EIO on loop3"));
	vol.pvc[0] = '\0';
	fserr_message(&e, &place, &vol, msg, sizeof(msg));
	assert_non_null(strstr(msg, "Volume pv-xyz (PersistentVolume pv-xyz) of this pod is on loop3: "));
	/* not a CSI volume: no PV, so no claim even if one were set */
	snprintf(vol.plugin, sizeof(vol.plugin), "kubernetes.io~empty-dir");
	snprintf(vol.pvc, sizeof(vol.pvc), "data/claim");
	fserr_message(&e, &place, &vol, msg, sizeof(msg));
	assert_non_null(strstr(msg, "Volume pv-xyz of this pod is on loop3: "));
	assert_null(strstr(msg, "PersistentVolumeClaim"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_unbound),
		cmocka_unit_test(test_not_a_pv),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_no_api),
		cmocka_unit_test(test_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
