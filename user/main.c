/* ksight: eBPF kernel observability for Kubernetes nodes. */
#include <stdio.h>

#include "agent.h"
#include "cli.h"

int main(int argc, char **argv)
{
	struct agent_config cfg;
	int ret;

	ret = cli_parse(argc, argv, &cfg);
	if (ret == CLI_EXIT_OK)
		return 0;
	if (ret)
		return ret;
	if (cfg.mode == MODE_PROBES)
		return probes_main(&cfg);
	return agent_main(&cfg);
}
