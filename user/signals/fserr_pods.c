/* Pod volumes from kubelet's mount point layout. */
#include "fserr_pods.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Copy the next path component of *p into out; -ENOENT if none or too long. */
static int component(const char **p, char *out, size_t outlen)
{
	const char *s = *p, *slash;
	size_t n;

	if (*s != '/')
		return -ENOENT;
	s++;
	slash = strchr(s, '/');
	n = slash ? (size_t)(slash - s) : strlen(s);
	if (!n || n >= outlen || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return -ENOENT;
	memcpy(out, s, n);
	out[n] = '\0';
	*p = s + n;
	return 0;
}

int fserr_volume_of(const char *kubelet_root, const char *mountpoint, struct fserr_volume *out)
{
	size_t rlen = strlen(kubelet_root);
	char kind[32];
	const char *p;

	memset(out, 0, sizeof(*out));
	while (rlen > 1 && kubelet_root[rlen - 1] == '/')
		rlen--;
	if (strncmp(mountpoint, kubelet_root, rlen) || strncmp(mountpoint + rlen, "/pods/", 6))
		return -ENOENT;
	p = mountpoint + rlen + 5;
	if (component(&p, out->pod_uid, sizeof(out->pod_uid)) || component(&p, kind, sizeof(kind)))
		goto none;
	if (!strcmp(kind, "volumes")) {
		if (component(&p, out->plugin, sizeof(out->plugin)) || component(&p, out->name, sizeof(out->name)))
			goto none;
		return 0;
	}
	if (!strcmp(kind, "volume-subpaths")) {
		if (component(&p, out->name, sizeof(out->name)))
			goto none;
		out->subpath = true;
		return 0;
	}
none:
	memset(out, 0, sizeof(*out));
	return -ENOENT;
}

const char *fserr_volume_pv(const struct fserr_volume *v)
{
	return !strcmp(v->plugin, "kubernetes.io~csi") ? v->name : NULL;
}

bool fserr_volume_add(struct fserr_volume *vols, size_t *n, size_t max, const struct fserr_volume *v)
{
	size_t i;

	for (i = 0; i < *n; i++) {
		if (strcmp(vols[i].pod_uid, v->pod_uid) || strcmp(vols[i].name, v->name))
			continue;
		/* the volume's own mount names its plugin; a subPath mount does not */
		if (vols[i].subpath && !v->subpath)
			vols[i] = *v;
		return true;
	}
	if (*n == max)
		return false;
	vols[(*n)++] = *v;
	return true;
}
