/*
 * cgroup path -> Kubernetes pod and container identity, without the API.
 *
 * A pure function over the path string: kubelet's cgroupfs and systemd
 * drivers, containerd, CRI-O and Docker naming, and the QoS class the path
 * encodes. Anything else is "not a pod" and is reported by its path.
 */
#ifndef KSIGHT_CGROUP_IDENTITY_H
#define KSIGHT_CGROUP_IDENTITY_H

enum pod_qos {
	POD_QOS_NONE = 0,
	POD_QOS_GUARANTEED,
	POD_QOS_BURSTABLE,
	POD_QOS_BESTEFFORT,
};

enum container_runtime {
	CONTAINER_RUNTIME_NONE = 0, /* no container id in the path */
	CONTAINER_RUNTIME_CONTAINERD,
	CONTAINER_RUNTIME_CRIO,
	CONTAINER_RUNTIME_DOCKER,
	CONTAINER_RUNTIME_UNKNOWN,  /* cgroupfs driver: a bare 64-hex id names no runtime */
};

struct cgroup_identity {
	char pod_uid[37];       /* 8-4-4-4-12 lowercase, or a static pod's 32-hex config hash; "" if none */
	char container_id[65];  /* 64 lowercase hex digits; "" if none */
	enum pod_qos qos;
	enum container_runtime runtime;
};

/*
 * Parse a cgroup path relative to its hierarchy's root ("/kubepods/..."; a
 * leading prefix such as a kind node's "/system.slice/docker-<id>.scope" is
 * allowed; a leading "/..." marks a path whose root end is unknown, never a
 * pod). Returns 0 when the path is inside a pod (pod_uid set, container_id
 * set when the path names a container), -ENOENT otherwise (*out zeroed),
 * -EINVAL for NULL arguments.
 */
int cgroup_identity_parse(const char *path, struct cgroup_identity *out);

const char *pod_qos_name(enum pod_qos qos);                 /* "guaranteed", ...; "" for none */
const char *container_runtime_name(enum container_runtime); /* "containerd", "cri-o", "docker", ""; */

#endif
