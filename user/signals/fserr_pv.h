/*
 * The PersistentVolumeClaim of a PersistentVolume, for fserr's pod volumes
 * (kubelet's kubernetes.io~csi/<pv>/mount names the PV; its spec.claimRef
 * is the claim). One GET per PV, answered by a thread of its own and kept
 * in a bounded cache, so the record path waits at most a set time, once.
 */
#ifndef KSIGHT_FSERR_PV_H
#define KSIGHT_FSERR_PV_H

#include <stddef.h>

struct k8s_config;

/* "namespace/name" of the longest names the API allows */
#define FSERR_PVC_LEN 508
/* PVs remembered; beyond, the least recently used is asked again when needed */
#define FSERR_PV_CACHE 128
/* how long an answer is kept: a claim (a PV is bound once), or "none" / "failed" (may change soon) */
#define FSERR_PV_KEEP_CLAIM_S 600
#define FSERR_PV_KEEP_NONE_S  30

/*
 * The claim in a PersistentVolume's JSON: "namespace/name" of spec.claimRef
 * into out. 0; -ENOENT when the PV has no claim (Available); -EINVAL when
 * the text is not a PV object.
 */
int fserr_pv_claim_parse(const char *json, size_t len, char *out, size_t outlen);

struct fserr_pvs;

/* With the API's configuration (NULL: no API, then NULL is returned and lookups say -ENOENT). */
struct fserr_pvs *fserr_pvs_new(const struct k8s_config *cfg);
void fserr_pvs_free(struct fserr_pvs *p); /* NULL-safe; stops the thread */

/*
 * The claim of PersistentVolume `pv` into out: 0 when it has one; -ENOENT
 * when it has none, does not exist, or there is no API; -EAGAIN when the
 * answer has not come within wait_ms (0: ask and do not wait, to have it
 * ready for later; a later call finds it). A failed GET is remembered as
 * none for FSERR_PV_KEEP_NONE_S.
 */
int fserr_pvs_claim(struct fserr_pvs *p, const char *pv, char *out, size_t outlen, int wait_ms);

/* GETs made (answered or not): for tests of the cache. */
unsigned long fserr_pvs_requests(struct fserr_pvs *p);

#endif
