/* apilat_client.h: a client's cgroup id -> pod, or its comm. */
#include "apilat_client.h"

#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "k8s.h"
#include "pod_resolver.h"

void apilat_client_event(struct agent *agent, const struct apilat_client *c, struct event_common *ev,
			 struct pod_ref *ref, char *comm)
{
	snprintf(comm, KSIGHT_COMM_LEN + 1, "%.*s", KSIGHT_COMM_LEN, c->comm);
	ev->comm = comm;
	ev->cgroup = ev->cgroup ? ev->cgroup : "";
	ev->namespace_ = ev->pod = ev->container = "";
	if (agent->resolver && pod_resolver_cgroup(agent->resolver, c->cgroup_id, ref) == 0) {
		ev->cgroup = ref->cgroup;
		ev->id = ref->id;
		if (ref->id.pod_uid[0])
			k8s_resolve(agent, ev);
	}
}

void apilat_client_describe(const struct event_common *ev, char *text, size_t text_len, char *key, size_t key_len)
{
	if (ev->pod && ev->pod[0]) {
		snprintf(text, text_len, "pod %s/%s container %s", ev->namespace_, ev->pod, ev->container);
		snprintf(key, key_len, "%s/%s/%s", ev->namespace_, ev->pod, ev->container);
	} else if (ev->id.pod_uid[0]) {
		snprintf(text, text_len, "pod UID %s (not listed by the API yet)", ev->id.pod_uid);
		snprintf(key, key_len, "uid:%s", ev->id.pod_uid);
	} else {
		snprintf(text, text_len, "host process %s", ev->comm);
		snprintf(key, key_len, "comm:%s", ev->comm);
	}
}
