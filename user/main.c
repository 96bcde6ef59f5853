/* ksight: eBPF kernel observability for Kubernetes nodes. */
#include <malloc.h>
#include <stdio.h>

#include "agent.h"
#include "cli.h"

int main(int argc, char **argv)
{
	struct agent_config cfg;
	int ret;

	/*
	 * Large blocks (the kernel BTF: megabytes) straight from mmap, so freeing
	 * them gives the memory back; glibc would otherwise raise the threshold
	 * after the first such free and keep the next ones in the heap.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	ret = cli_parse(argc, argv, &cfg);
	if (ret == CLI_EXIT_OK)
		return 0;
	if (ret)
		return ret;
	if (cfg.mode == MODE_PROBES)
		return probes_main(&cfg);
	return agent_main(&cfg);
}
