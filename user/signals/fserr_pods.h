/*
 * Which pod volume a mount point is: kubelet mounts each pod volume at
 * <kubelet root>/pods/<uid>/volumes/<plugin>/<name> (CSI ones with a /mount
 * below) and subPath mounts at <root>/pods/<uid>/volume-subpaths/<name>/...
 * Pure: the caller lists the device's mount points.
 */
#ifndef KSIGHT_FSERR_PODS_H
#define KSIGHT_FSERR_PODS_H

#include <stdbool.h>
#include <stddef.h>

#define FSERR_DEFAULT_KUBELET_ROOT "/var/lib/kubelet"

struct fserr_volume {
	char pod_uid[65];  /* the pods/<uid> directory: metadata.uid, a static pod's config hash */
	char plugin[64];   /* "kubernetes.io~csi", "kubernetes.io~empty-dir", ...; "" for a subPath */
	char name[254];    /* the volume's name; for kubernetes.io~csi the PV's name */
	bool subpath;      /* a subPath mount of the volume */
	char pvc[508];     /* "namespace/name" of the PV's claim when the API told it, else "" */
};

/* 0 and *out when mountpoint is a pod volume under kubelet_root, else -ENOENT. */
int fserr_volume_of(const char *kubelet_root, const char *mountpoint, struct fserr_volume *out);

/* The PersistentVolume's name when the volume is a CSI one, else NULL. */
const char *fserr_volume_pv(const struct fserr_volume *v);

/*
 * Add v to vols[0..*n) unless a volume of the same pod and name is there
 * (a volume's subPath mounts and its own mount are one volume). False when full.
 */
bool fserr_volume_add(struct fserr_volume *vols, size_t *n, size_t max, const struct fserr_volume *v);

#endif
