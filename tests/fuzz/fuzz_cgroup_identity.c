/*
 * cgroup_identity_parse() on any byte string (cut at its first NUL, as the
 * kernel's names would be).
 *
 * Checks: the return is 0 or -ENOENT; on -ENOENT *out is zeroed; on 0 the
 * pod UID is canonical (8-4-4-4-12 lowercase with dashes, or 32 lowercase
 * hex), the container ID is "" or 64 lowercase hex digits and is in the
 * path, the UID is in the path (ignoring case and '-'/'_'), the runtime is
 * NONE exactly when there is no container ID, the QoS is set; and the
 * canonical cgroupfs path built from the result parses back to the same
 * pod and container. Parsing is deterministic. And the same path below an
 * elided root ("/..." first, as the agent writes a kernel-captured path whose
 * root end is missing) is never a pod.
 */
#include <ctype.h>
#include <errno.h>

#include "cgroup_identity.h"
#include "fuzz.h"

static bool lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool canonical_uid(const char *u)
{
	size_t n = strlen(u), i;

	if (n == 32)
		return lower_hex(u, 32);
	if (n != 36)
		return false;
	for (i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? u[i] != '-' : !lower_hex(&u[i], 1))
			return false;
	}
	return true;
}

/* s lowercased with '-' and '_' dropped, into a new string. */
static char *squash(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	if (!out)
		abort();
	for (; *s; s++)
		if (*s != '-' && *s != '_')
			*o++ = (char)tolower((unsigned char)*s);
	*o = '\0';
	return out;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		if (*b++)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = fuzz_dup(data, size);
	struct cgroup_identity id, again, canon_id;
	int rc, rc2;

	memset(&id, 0xa5, sizeof(id));
	rc = cgroup_identity_parse(path, &id);
	FUZZ_CHECK(rc == 0 || rc == -ENOENT, "rc %d for \"%s\"", rc, path);
	rc2 = cgroup_identity_parse(path, &again);
	FUZZ_CHECK(rc2 == rc && !memcmp(&id, &again, sizeof(id)), "not deterministic for \"%s\"", path);
	FUZZ_CHECK(pod_qos_name(id.qos) && container_runtime_name(id.runtime), "NULL name");
	{
		size_t n = strlen(path) + 6;
		char *elided = malloc(n);

		if (!elided)
			abort();
		snprintf(elided, n, "/...%s%s", path[0] == '/' ? "" : "/", path);
		FUZZ_CHECK(cgroup_identity_parse(elided, &again) == -ENOENT,
			   "\"%s\" (root end elided) parsed as a pod", elided);
		free(elided);
	}

	if (rc) {
		FUZZ_CHECK(all_zero(&id, sizeof(id)), "-ENOENT left *out non-zero for \"%s\"", path);
	} else {
		char *sp = squash(path), *su = squash(id.pod_uid);
		char canon[256];

		FUZZ_CHECK(canonical_uid(id.pod_uid), "pod_uid \"%.40s\" not canonical for \"%s\"",
			   id.pod_uid, path);
		FUZZ_CHECK(strstr(sp, su), "pod_uid %s is not in \"%s\"", id.pod_uid, path);
		FUZZ_CHECK(id.qos == POD_QOS_GUARANTEED || id.qos == POD_QOS_BURSTABLE ||
				   id.qos == POD_QOS_BESTEFFORT,
			   "qos %d for \"%s\"", (int)id.qos, path);
		if (id.container_id[0]) {
			FUZZ_CHECK(strlen(id.container_id) == 64 && lower_hex(id.container_id, 64),
				   "container_id \"%.70s\" for \"%s\"", id.container_id, path);
			FUZZ_CHECK(strstr(path, id.container_id), "container_id not in \"%s\"", path);
			FUZZ_CHECK(id.runtime != CONTAINER_RUNTIME_NONE, "a container without runtime");
		} else {
			FUZZ_CHECK(id.runtime == CONTAINER_RUNTIME_NONE, "runtime %d without a container id",
				   (int)id.runtime);
		}
		FUZZ_CHECK(id.container_id[sizeof(id.container_id) - 1] == '\0' &&
				   id.pod_uid[sizeof(id.pod_uid) - 1] == '\0', "unterminated");

		/* the canonical spelling of what was found means the same thing */
		snprintf(canon, sizeof(canon), "/kubepods/pod%s%s%s", id.pod_uid,
			 id.container_id[0] ? "/" : "", id.container_id);
		FUZZ_CHECK(cgroup_identity_parse(canon, &canon_id) == 0 &&
				   !strcmp(canon_id.pod_uid, id.pod_uid) &&
				   !strcmp(canon_id.container_id, id.container_id),
			   "\"%s\" (from \"%s\") does not parse back", canon, path);
		free(sp);
		free(su);
	}
	free(path);
	return 0;
}
