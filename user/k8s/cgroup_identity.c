/*
 * cgroup path -> Kubernetes pod and container identity.
 *
 * The rules, in the order the parser applies them:
 *
 *  1. The path is split on '/'; one leading '/' is optional. An empty
 *     component ("//", a trailing '/') never comes out of the kernel or
 *     /proc/PID/cgroup, so such a string was built wrongly and is rejected
 *     whole (-ENOENT) rather than guessed at.
 *
 *     A first component "..." is what the agent writes for the root end of
 *     a path the kernel side cut short (user/event.c): the components after
 *     it may all lie below a container, which can create any layout there,
 *     so such a path is never a pod (-ENOENT).
 *
 *  2. The pod subtree starts at an anchor component: "kubepods" (cgroupfs
 *     driver) or "kubepods.slice" / "<prefix>-kubepods.slice" (systemd
 *     driver; kubelet's --cgroup-root=/kubelet gives "kubelet-kubepods.slice").
 *     Anything before the anchor is a nesting prefix (kind node, nspawn, ...)
 *     and is ignored. Only whole components match: "kubepodsX" is no anchor.
 *
 *  3. Below the anchor the layout must be exactly kubelet's:
 *       cgroupfs: [burstable|besteffort/]pod<uuid>
 *       systemd:  [<p>-burstable.slice|<p>-besteffort.slice/]<p'>-pod<uuid_>.slice
 *     where <p> is the parent slice's name without ".slice" (systemd names a
 *     child slice after its parent, '-' being the hierarchy separator). No
 *     QoS component means guaranteed. The UUID must be 8-4-4-4-12 hex, with
 *     '-' under cgroupfs and '_' under systemd (systemd reserves '-'); either
 *     case is accepted and the output is canonical lowercase with dashes.
 *
 *  4. When several anchors yield a pod, the outermost wins. What a host's
 *     kubelet and runtime create above a container cannot be changed from
 *     inside it, while anything below it can (a container with a writable
 *     cgroupfs can mkdir "kubepods/pod<someone-else's-uid>"). So a node nested
 *     in a pod (kind in a CI pod) is reported as that outer pod's container.
 *
 *  5. The component right below the pod names the container:
 *       <64hex>                       runtime unknown (cgroupfs: containerd, dockershim)
 *       cri-containerd-<64hex>.scope  containerd (systemd)
 *       crio-<64hex>.scope            CRI-O (systemd)
 *       crio-<64hex>                  CRI-O (cgroupfs manager)
 *       docker-<64hex>.scope          Docker (systemd)
 *       crio-conmon-<64hex>[.scope]   CRI-O's monitor: in the pod, not a container
 *     Container ids must be exactly 64 lowercase hex digits, which is all a
 *     runtime ever generates. Both drivers accept every form: the table is
 *     what runtimes produce, and mixing them costs nothing.
 *
 *  6. A valid pod whose child component is not a container name (a malformed
 *     id, conmon, a runtime we do not know) is still reported as that pod with
 *     an empty container id and CONTAINER_RUNTIME_NONE: the pod cgroup bounds
 *     everything below it, so pod membership is certain even when the
 *     container is not. Components below a container (init.scope, a
 *     container's own sub-cgroups) belong to that container.
 *
 * Static pods (kubelet manifests: kube-apiserver, etcd, ...) get an
 * md5-derived UID of 32 hex digits with no dashes, the mirror pod's
 * kubernetes.io/config.hash annotation; it is reported as is, lowercase.
 */
#include "cgroup_identity.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define POD_UID_LEN 36
#define STATIC_POD_UID_LEN 32 /* md5 hex: a static pod's config hash */
#define CONTAINER_ID_LEN 64
/* a leading component "..." and its separator: the root end is unknown (rule 1) */
#define ELIDED_ROOT ".../"

/* One path component: not NUL-terminated, it points into the caller's path. */
struct comp {
	const char *s;
	size_t len;
};

/*
 * Advance over one component. *pos must sit at a component's first character
 * (or the terminating NUL); the path was checked for empty components first,
 * so after a '/' there always is one.
 */
static bool comp_next(const char **pos, struct comp *c)
{
	const char *p = *pos;

	if (!*p)
		return false;
	c->s = p;
	while (*p && *p != '/')
		p++;
	c->len = (size_t)(p - c->s);
	if (*p == '/')
		p++;
	*pos = p;
	return true;
}

static bool comp_eq(const struct comp *c, const char *lit)
{
	size_t n = strlen(lit);

	return c->len == n && memcmp(c->s, lit, n) == 0;
}

static bool comp_has_prefix(const struct comp *c, const char *lit, size_t n)
{
	return c->len >= n && memcmp(c->s, lit, n) == 0;
}

static bool comp_has_suffix(const struct comp *c, const char *lit)
{
	size_t n = strlen(lit);

	return c->len >= n && memcmp(c->s + c->len - n, lit, n) == 0;
}

/* Drop n leading characters. */
static struct comp comp_tail(const struct comp *c, size_t n)
{
	return (struct comp){ .s = c->s + n, .len = c->len - n };
}

static bool is_lower_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static bool is_hex(char ch)
{
	return is_lower_hex(ch) || (ch >= 'A' && ch <= 'F');
}

static char hex_lower(char ch)
{
	return (ch >= 'A' && ch <= 'F') ? (char)(ch - 'A' + 'a') : ch;
}

/*
 * An empty component anywhere but the root means the string was not produced
 * by the kernel (rule 1). Checked once up front so the walkers below can
 * assume every component is non-empty.
 */
static bool path_well_formed(const char *path)
{
	const char *p = path;

	if (*p == '/')
		p++;
	if (!*p)
		return false;	/* "" or "/": the root is no pod */
	for (; *p; p++) {
		if (*p == '/' && (p[1] == '/' || p[1] == '\0'))
			return false;
	}
	return true;
}

/*
 * Parse exactly 36 characters of 8-4-4-4-12 hex with sep between groups into
 * the canonical lowercase dashed form, or a static pod's 32 hex digits.
 */
static bool parse_uid(const struct comp *c, char sep, char out[POD_UID_LEN + 1])
{
	size_t i;

	if (c->len == STATIC_POD_UID_LEN) {
		for (i = 0; i < STATIC_POD_UID_LEN; i++) {
			if (!is_hex(c->s[i]))
				return false;
			out[i] = hex_lower(c->s[i]);
		}
		out[STATIC_POD_UID_LEN] = '\0';
		return true;
	}
	if (c->len != POD_UID_LEN)
		return false;
	for (i = 0; i < POD_UID_LEN; i++) {
		char ch = c->s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (ch != sep)
				return false;
			out[i] = '-';
		} else {
			if (!is_hex(ch))
				return false;
			out[i] = hex_lower(ch);
		}
	}
	out[POD_UID_LEN] = '\0';
	return true;
}

/*
 * Container cgroup names (rule 5). Each entry has a fixed total length, so a
 * name matches at most one entry and the order does not matter (for instance
 * "crio-conmon-<id>.scope" is 7 characters too long to be "crio-<id>.scope").
 * CONTAINER_RUNTIME_NONE marks a recognised name that is not a container.
 */
static const struct {
	const char *prefix;
	const char *suffix;
	enum container_runtime runtime;
} container_names[] = {
	{ "",                ""      , CONTAINER_RUNTIME_UNKNOWN },
	{ "cri-containerd-", ".scope", CONTAINER_RUNTIME_CONTAINERD },
	{ "crio-",           ".scope", CONTAINER_RUNTIME_CRIO },
	{ "crio-",           ""      , CONTAINER_RUNTIME_CRIO },
	{ "docker-",         ".scope", CONTAINER_RUNTIME_DOCKER },
	{ "crio-conmon-",    ".scope", CONTAINER_RUNTIME_NONE },
	{ "crio-conmon-",    ""      , CONTAINER_RUNTIME_NONE },
};

/*
 * Fill the container part of *id from the component below the pod. Leaves it
 * empty (rule 6) when the name is not a container's.
 */
static void parse_container(const struct comp *c, struct cgroup_identity *id)
{
	size_t i, k;

	for (i = 0; i < sizeof(container_names) / sizeof(container_names[0]); i++) {
		const char *pre = container_names[i].prefix;
		const char *suf = container_names[i].suffix;
		size_t plen = strlen(pre);
		const char *hex;

		if (c->len != plen + CONTAINER_ID_LEN + strlen(suf) ||
		    !comp_has_prefix(c, pre, plen) || !comp_has_suffix(c, suf))
			continue;
		hex = c->s + plen;
		for (k = 0; k < CONTAINER_ID_LEN; k++) {
			if (!is_lower_hex(hex[k]))
				return;
		}
		if (container_names[i].runtime == CONTAINER_RUNTIME_NONE)
			return;
		memcpy(id->container_id, hex, CONTAINER_ID_LEN);
		id->container_id[CONTAINER_ID_LEN] = '\0';
		id->runtime = container_names[i].runtime;
		return;
	}
}

/* Below a cgroupfs "kubepods": [burstable/|besteffort/]pod<uuid> (rule 3). */
static int parse_cgroupfs_pod(const char **pos, struct cgroup_identity *id)
{
	struct comp c;

	if (!comp_next(pos, &c))
		return -ENOENT;
	id->qos = POD_QOS_GUARANTEED;
	if (comp_eq(&c, "burstable") || comp_eq(&c, "besteffort")) {
		id->qos = comp_eq(&c, "burstable") ? POD_QOS_BURSTABLE :
						     POD_QOS_BESTEFFORT;
		if (!comp_next(pos, &c))
			return -ENOENT;
	}
	if (!comp_has_prefix(&c, "pod", 3))
		return -ENOENT;
	c = comp_tail(&c, 3);
	return parse_uid(&c, '-', id->pod_uid) ? 0 : -ENOENT;
}

/*
 * If c is "<base>-<leaf>.slice", store <leaf> in *leaf. Systemd names a slice
 * after its whole ancestry, so this both checks the parent and strips it.
 */
static bool systemd_child(const struct comp *c, const struct comp *base,
			  struct comp *leaf)
{
	const size_t slen = strlen(".slice");

	if (c->len <= base->len + 1 + slen || !comp_has_suffix(c, ".slice") ||
	    memcmp(c->s, base->s, base->len) != 0 || c->s[base->len] != '-')
		return false;
	leaf->s = c->s + base->len + 1;
	leaf->len = c->len - base->len - 1 - slen;
	return true;
}

/*
 * Below a systemd "<base>.slice": [<base>-<qos>.slice/]<base'>-pod<uuid_>.slice
 * (rule 3). anchor is the kubepods slice itself.
 */
static int parse_systemd_pod(const char **pos, const struct comp *anchor,
			     struct cgroup_identity *id)
{
	struct comp base = { .s = anchor->s, .len = anchor->len - strlen(".slice") };
	struct comp c, leaf;

	if (!comp_next(pos, &c) || !systemd_child(&c, &base, &leaf))
		return -ENOENT;
	id->qos = POD_QOS_GUARANTEED;
	if (comp_eq(&leaf, "burstable") || comp_eq(&leaf, "besteffort")) {
		id->qos = comp_eq(&leaf, "burstable") ? POD_QOS_BURSTABLE :
							POD_QOS_BESTEFFORT;
		base.s = c.s;
		base.len = c.len - strlen(".slice");
		if (!comp_next(pos, &c) || !systemd_child(&c, &base, &leaf))
			return -ENOENT;
	}
	if (!comp_has_prefix(&leaf, "pod", 3))
		return -ENOENT;
	leaf = comp_tail(&leaf, 3);
	return parse_uid(&leaf, '_', id->pod_uid) ? 0 : -ENOENT;
}

static bool is_systemd_anchor(const struct comp *c)
{
	/* "-kubepods.slice" alone would be a systemd name with an empty part. */
	return comp_eq(c, "kubepods.slice") ||
	       (c->len > strlen("-kubepods.slice") &&
		comp_has_suffix(c, "-kubepods.slice"));
}

/* Try to read a pod (and container) from the components after anchor. */
static int parse_from_anchor(const struct comp *anchor, const char *rest,
			     struct cgroup_identity *id)
{
	const char *pos = rest;
	struct comp c;
	int err;

	if (comp_eq(anchor, "kubepods")) {
		memset(id, 0, sizeof(*id));
		err = parse_cgroupfs_pod(&pos, id);
	} else if (is_systemd_anchor(anchor)) {
		memset(id, 0, sizeof(*id));
		err = parse_systemd_pod(&pos, anchor, id);
	} else {
		return -ENOENT;
	}
	if (err) {
		memset(id, 0, sizeof(*id));
		return err;
	}
	/* Anything below the container component is ignored (rule 6). */
	if (comp_next(&pos, &c))
		parse_container(&c, id);
	return 0;
}

int cgroup_identity_parse(const char *path, struct cgroup_identity *out)
{
	const char *pos;
	struct comp c;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!path)
		return -EINVAL;
	if (!path_well_formed(path))
		return -ENOENT;

	pos = path[0] == '/' ? path + 1 : path;
	if (strncmp(pos, ELIDED_ROOT, strlen(ELIDED_ROOT)) == 0)
		return -ENOENT;
	/* Outermost anchor that yields a pod wins (rule 4). */
	while (comp_next(&pos, &c)) {
		if (parse_from_anchor(&c, pos, out) == 0)
			return 0;
	}
	memset(out, 0, sizeof(*out));
	return -ENOENT;
}

const char *pod_qos_name(enum pod_qos qos)
{
	switch (qos) {
	case POD_QOS_GUARANTEED:
		return "guaranteed";
	case POD_QOS_BURSTABLE:
		return "burstable";
	case POD_QOS_BESTEFFORT:
		return "besteffort";
	case POD_QOS_NONE:
	default:
		return "";
	}
}

const char *container_runtime_name(enum container_runtime runtime)
{
	switch (runtime) {
	case CONTAINER_RUNTIME_CONTAINERD:
		return "containerd";
	case CONTAINER_RUNTIME_CRIO:
		return "cri-o";
	case CONTAINER_RUNTIME_DOCKER:
		return "docker";
	case CONTAINER_RUNTIME_NONE:
	case CONTAINER_RUNTIME_UNKNOWN:
	default:
		return "";
	}
}
