/* PersistentVolume -> PersistentVolumeClaim, GET on a thread of its own, cached. */
#include "fserr_pv.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s_client.h"
#include "k8s_json.h"
#include "k8s_watch.h"
#include "log.h"
#include "strbuf.h"

#define PV_NAME_LEN   254
#define PV_MAX_BODY   (1u << 20)
#define PV_TIMEOUT_MS 3000

int fserr_pv_claim_parse(const char *json, size_t len, char *out, size_t outlen)
{
	json_tokener *tok = json_tokener_new_ex(K8S_JSON_DEPTH);
	json_object *pv, *spec, *ref;
	const char *kind, *ns, *name;
	size_t nslen, namelen, kindlen;
	int ret = -EINVAL;

	if (!tok)
		return -ENOMEM;
	pv = json_tokener_parse_ex(tok, json, (int)len);
	json_tokener_free(tok);
	if (!pv || !json_object_is_type(pv, json_type_object))
		goto out;
	kind = k8s_json_string(pv, "kind", &kindlen);
	if (kind && strcmp(kind, "PersistentVolume"))
		goto out;
	spec = k8s_json_member(pv, "spec", json_type_object);
	if (!spec)
		goto out;
	ret = -ENOENT;
	ref = k8s_json_member(spec, "claimRef", json_type_object);
	ns = k8s_json_string(ref, "namespace", &nslen);
	name = k8s_json_string(ref, "name", &namelen);
	if (!ns || !name || !nslen || !namelen)
		goto out;
	if (nslen + 1 + namelen >= outlen) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	snprintf(out, outlen, "%s/%s", ns, name);
	ret = 0;
out:
	json_object_put(pv);
	return ret;
}

enum pv_state {
	PV_EMPTY = 0,
	PV_PENDING, /* asked, not answered */
	PV_CLAIM,   /* answered: claim holds "ns/name" */
	PV_NONE,    /* answered: no claim, no such PV, or the GET failed */
};

struct pv_entry {
	char name[PV_NAME_LEN];
	char claim[FSERR_PVC_LEN];
	enum pv_state state;
	bool had_claim;     /* claim is an earlier answer, kept while asking again */
	int64_t answered;   /* CLOCK_MONOTONIC s */
	uint64_t used;      /* for replacing the least recently used */
};

struct fserr_pvs {
	struct k8s_client *client;
	pthread_mutex_t lock;
	pthread_cond_t asked;    /* a PENDING entry appeared, or stop */
	pthread_cond_t answered; /* an entry left PENDING */
	pthread_t thread;
	bool stop;
	bool warned;             /* the worker's */
	uint64_t clock;
	unsigned long requests;
	struct pv_entry v[FSERR_PV_CACHE];
};

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* One GET; fills claim and returns the entry's new state. Called without the lock. */
static enum pv_state fetch(struct fserr_pvs *p, const char *pv, char *claim, size_t len)
{
	struct k8s_response resp = { 0 };
	struct strbuf path = STRBUF_INIT;
	enum pv_state state = PV_NONE;
	char why[300] = "";
	int err;

	strbuf_puts(&path, "/api/v1/persistentvolumes/");
	k8s_url_encode(&path, pv);
	err = path.oom ? -ENOMEM :
	      k8s_request(p->client, "GET", path.buf, NULL, NULL, PV_MAX_BODY, PV_TIMEOUT_MS, &resp);
	if (err)
		snprintf(why, sizeof(why), "%s", resp.error[0] ? resp.error : strerror(-err));
	else if (resp.status == 200 && resp.body.buf &&
		 !fserr_pv_claim_parse(resp.body.buf, resp.body.len, claim, len))
		state = PV_CLAIM;
	else if (resp.status != 200 && resp.status != 404)
		snprintf(why, sizeof(why), "HTTP %ld%s", resp.status,
			 resp.status == 403 ? " (RBAC: get persistentvolumes)" : "");
	/* once: the cause is the same for every PV (RBAC, the API down), and records must not flood the log */
	if (why[0] && !p->warned) {
		p->warned = true;
		log_warn("fserr: cannot GET PersistentVolume %s: %s; volumes are named without their claim", pv, why);
	}
	k8s_response_free(&resp);
	strbuf_free(&path);
	return state;
}

static void *worker(void *arg)
{
	struct fserr_pvs *p = arg;
	char name[PV_NAME_LEN], claim[FSERR_PVC_LEN];
	enum pv_state state;
	size_t i;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		for (i = 0; i < FSERR_PV_CACHE && p->v[i].state != PV_PENDING; i++)
			;
		if (i == FSERR_PV_CACHE) {
			pthread_cond_wait(&p->asked, &p->lock);
			continue;
		}
		snprintf(name, sizeof(name), "%s", p->v[i].name);
		p->requests++;
		pthread_mutex_unlock(&p->lock);
		claim[0] = '\0';
		state = fetch(p, name, claim, sizeof(claim));
		pthread_mutex_lock(&p->lock);
		/* the entry may have been given to another PV meanwhile */
		if (p->v[i].state == PV_PENDING && !strcmp(p->v[i].name, name)) {
			p->v[i].state = state;
			snprintf(p->v[i].claim, sizeof(p->v[i].claim), "%s", claim);
			p->v[i].answered = now_s();
		}
		pthread_cond_broadcast(&p->answered);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct fserr_pvs *fserr_pvs_new(const struct k8s_config *cfg)
{
	struct fserr_pvs *p;
	pthread_condattr_t attr;

	if (!cfg)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->client = k8s_client_new(cfg, "ksight/" KSIGHT_VERSION);
	if (!p->client) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->asked, &attr);
	pthread_cond_init(&p->answered, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&p->thread, NULL, worker, p)) {
		pthread_cond_destroy(&p->asked);
		pthread_cond_destroy(&p->answered);
		pthread_mutex_destroy(&p->lock);
		k8s_client_free(p->client);
		free(p);
		return NULL;
	}
	return p;
}

void fserr_pvs_free(struct fserr_pvs *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->asked);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->asked);
	pthread_cond_destroy(&p->answered);
	pthread_mutex_destroy(&p->lock);
	k8s_client_free(p->client);
	free(p);
}

/* The entry of pv, or a new PENDING one in the least recently used slot. Called with the lock held. */
static struct pv_entry *entry(struct fserr_pvs *p, const char *pv, int64_t now)
{
	struct pv_entry *e = NULL, *oldest = &p->v[0];
	size_t i;

	for (i = 0; i < FSERR_PV_CACHE; i++) {
		if (p->v[i].state != PV_EMPTY && !strcmp(p->v[i].name, pv)) {
			e = &p->v[i];
			break;
		}
		if (p->v[i].used < oldest->used)
			oldest = &p->v[i];
	}
	if (!e) {
		e = oldest;
		memset(e, 0, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", pv);
		e->state = PV_PENDING;
		pthread_cond_signal(&p->asked);
	} else if ((e->state == PV_CLAIM && now - e->answered >= FSERR_PV_KEEP_CLAIM_S) ||
		   (e->state == PV_NONE && now - e->answered >= FSERR_PV_KEEP_NONE_S)) {
		/* stale: asked again; an earlier claim is still the best answer meanwhile */
		e->had_claim = e->state == PV_CLAIM;
		e->state = PV_PENDING;
		pthread_cond_signal(&p->asked);
	}
	e->used = ++p->clock;
	return e;
}

int fserr_pvs_claim(struct fserr_pvs *p, const char *pv, char *out, size_t outlen, int wait_ms)
{
	struct timespec deadline;
	struct pv_entry *e;
	int ret;

	if (!p || !pv[0] || strlen(pv) >= PV_NAME_LEN)
		return -ENOENT;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += wait_ms / 1000;
	deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	e = entry(p, pv, now_s());
	/* e stays this PV's while we wait: a slot is reused only for the least recently used */
	while (e->state == PV_PENDING && !e->had_claim && wait_ms > 0 && strcmp(e->name, pv) == 0)
		if (pthread_cond_timedwait(&p->answered, &p->lock, &deadline) == ETIMEDOUT)
			break;
	if (strcmp(e->name, pv))
		ret = -EAGAIN;
	else if (e->state == PV_CLAIM || (e->state == PV_PENDING && e->had_claim))
		ret = (size_t)snprintf(out, outlen, "%s", e->claim) < outlen ? 0 : -ENAMETOOLONG;
	else
		ret = e->state == PV_PENDING ? -EAGAIN : -ENOENT;
	pthread_mutex_unlock(&p->lock);
	return ret;
}

unsigned long fserr_pvs_requests(struct fserr_pvs *p)
{
	unsigned long n;

	pthread_mutex_lock(&p->lock);
	n = p->requests;
	pthread_mutex_unlock(&p->lock);
	return n;
}
