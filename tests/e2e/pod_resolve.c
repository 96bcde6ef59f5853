/*
 * pod_resolve: user/k8s/pod_resolver.c on the real kernel, for
 * tests/e2e/pod_resolver.sh. Built on its own, like the other e2e tools, so
 * it compiles the resolver and cgroup_identity.c in.
 *
 *   pod_resolve [--walk] netns|cgroup ID
 *
 * prints "host", "pod UID CONTAINER_ID" (CONTAINER_ID "-" when none),
 * "none CGROUP_PATH", or "error ERRNO_NAME", after "(walked) " when a
 * cgroup lookup could not use open_by_handle_at(); exit 0 unless the
 * arguments are wrong.
 */
#include "cgroup_identity.c"
#include "pod_resolver.c"

int main(int argc, char **argv)
{
	struct pod_resolver_config cfg = { 0 };
	struct pod_resolver *r;
	struct pod_ref ref;
	unsigned long long id;
	int i = 1, ret;

	if (argc > 1 && !strcmp(argv[1], "--walk")) {
		cfg.no_handles = true;
		i++;
	}
	if (argc != i + 2 || (strcmp(argv[i], "netns") && strcmp(argv[i], "cgroup"))) {
		fprintf(stderr, "usage: pod_resolve [--walk] netns|cgroup ID\n");
		return 2;
	}
	id = strtoull(argv[i + 1], NULL, 0);
	if (pod_resolver_new(&cfg, &r))
		return 1;
	ret = !strcmp(argv[i], "netns") ? pod_resolver_netns(r, id, &ref) : pod_resolver_cgroup(r, id, &ref);
	/* a cgroup lookup that fell back to the walk says so: the e2e test wants the handle */
	if (!cfg.no_handles && !strcmp(argv[i], "cgroup") && !r->handles)
		printf("(walked) ");
	if (ret)
		printf("error %s\n", strerrorname_np(-ret));
	else if (ref.id.pod_uid[0])
		printf("pod %s %s\n", ref.id.pod_uid, ref.id.container_id[0] ? ref.id.container_id : "-");
	else if (ref.host)
		printf("host\n");
	else
		printf("none %s\n", ref.cgroup);
	pod_resolver_free(r);
	return 0;
}
