#include "event.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <linux/types.h>

#include "agent.h"
#include "common.h"
#include "utf8.h"
#include "util.h"

/*
 * A path the kernel side cut short ends in "/..." when it kept the root end,
 * and starts with "/..." when it kept the leaf end: cgroup_identity_parse()
 * never finds a pod after a leading "...".
 */
void cgroup_path_from_kernel(const struct ksight_cgroup *cg, char *out, size_t outlen)
{
	size_t len = 0;
	int i;

	if (!outlen)
		return;
	out[0] = '\0';
	if (cg->truncated == KSIGHT_CGROUP_ROOT_ELIDED)
		len += (size_t)snprintf(out, outlen, "/...");
	for (i = (int)cg->depth - 1; i >= 0 && len < outlen; i--)
		len += (size_t)snprintf(out + len, outlen - len, "/%.*s", KSIGHT_CGROUP_NAME_LEN,
					cg->names[i]);
	if (cg->truncated == KSIGHT_CGROUP_LEAF_ELIDED && len < outlen)
		len += (size_t)snprintf(out + len, outlen - len, "/...");
	if (len == 0 && outlen > 1)
		snprintf(out, outlen, "/");
}

void event_set_cgroup(struct event_common *ev, const char *path)
{
	ev->cgroup = path;
	if (cgroup_identity_parse(path, &ev->id))
		memset(&ev->id, 0, sizeof(ev->id));
}

void format_rfc3339_ns(int64_t wall_ns, char *out, size_t outlen)
{
	time_t secs = (time_t)(wall_ns / 1000000000);
	long nanos = (long)(wall_ns % 1000000000);
	struct tm tm;
	char date[32];

	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%09ldZ", date, nanos);
}

void format_bytes(uint64_t bytes, char *out, size_t outlen)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, outlen, "%" PRIu64 "B", bytes);
	else
		snprintf(out, outlen, "%.1f%s", v, units[u]);
}

void event_json_add_string(json_object *obj, const char *key, const char *value)
{
	char clean[4096];

	utf8_sanitize(value ? value : "", clean, sizeof(clean));
	json_object_object_add(obj, key, json_object_new_string(clean));
}

int64_t event_wall_ns(const struct agent *agent, uint64_t boot_ns)
{
	int64_t offset = agent->boot_to_wall_ns ? agent->boot_to_wall_ns()
						 : clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME);

	return (int64_t)boot_ns + offset;
}

json_object *event_json(const struct agent *agent, const struct event_common *ev)
{
	json_object *obj = json_object_new_object();
	char when[48];

	format_rfc3339_ns(event_wall_ns(agent, ev->boot_ns), when, sizeof(when));
	event_json_add_string(obj, "time", when);
	event_json_add_string(obj, "signal", ev->signal);
	event_json_add_string(obj, "node", agent->node);
	json_object_object_add(obj, "pid", json_object_new_int64(ev->pid));
	event_json_add_string(obj, "comm", ev->comm);
	event_json_add_string(obj, "namespace", ev->namespace_);
	event_json_add_string(obj, "pod", ev->pod);
	event_json_add_string(obj, "container", ev->container);
	event_json_add_string(obj, "pod_uid", ev->id.pod_uid);
	event_json_add_string(obj, "container_id", ev->id.container_id);
	event_json_add_string(obj, "cgroup", ev->cgroup);
	return obj;
}

/* Where an event happened, for humans: namespace/pod/container, else the cgroup. */
static void format_where(const struct event_common *ev, char *out, size_t outlen)
{
	if (ev->pod && ev->pod[0])
		snprintf(out, outlen, "%s/%s/%s", ev->namespace_, ev->pod, ev->container);
	else if (ev->id.pod_uid[0])
		snprintf(out, outlen, "pod:%s/%.12s", ev->id.pod_uid, ev->id.container_id);
	else
		snprintf(out, outlen, "%s", ev->cgroup && ev->cgroup[0] ? ev->cgroup : "-");
}

void event_emit(struct agent *agent, const struct event_common *ev, json_object *obj,
		const char *details)
{
	if (!agent->trace) {
		json_object_put(obj);
		return;
	}
	if (agent->cfg->format == OUTPUT_JSON) {
		puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		char when[48], where[512];

		if (!agent->header_printed) {
			printf("%-30s %-7s %-7s %-16s %-50s %s\n", "TIME", "SIGNAL", "PID", "COMM", "WHERE",
			       "DETAILS");
			agent->header_printed = true;
		}
		format_rfc3339_ns(event_wall_ns(agent, ev->boot_ns), when, sizeof(when));
		format_where(ev, where, sizeof(where));
		printf("%-30s %-7s %-7u %-16s %-50s %s\n", when, ev->signal, ev->pid, ev->comm, where,
		       details);
	}
	fflush(stdout);
	json_object_put(obj);
}
