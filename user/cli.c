#include "cli.h"
#include "http.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apilat_signal.h"
#include "apilat_trace.h"
#include "loader.h"
#include "signal_def.h"

#define DEFAULT_LISTEN "127.0.0.1:9436"
#define DEFAULT_APILAT_WINDOW_NS (300 * 1000000000ULL)
#define MIN_APILAT_WINDOW_NS 1000000000ULL

static void print_signals(FILE *f)
{
	int i;

	fprintf(f, "Signals:\n");
	for (i = 0; ksight_signals[i]; i++)
		fprintf(f, "  %-8s %s\n", ksight_signals[i]->name, ksight_signals[i]->summary);
}

static void usage_main(FILE *f)
{
	fprintf(f,
		"Usage: ksight COMMAND [OPTIONS]\n"
		"\n"
		"eBPF kernel observability for Kubernetes nodes.\n"
		"\n"
		"Commands:\n"
		"  run      the node agent: Prometheus metrics endpoint (what the DaemonSet runs)\n"
		"  trace    print kernel events live, as columns or JSON lines\n"
		"  probes   show every probe point, its variants, and which one this kernel takes\n"
		"\n"
		"Options:\n"
		"  -h, --help      this help; `ksight COMMAND --help` for a command's options\n"
		"  -V, --version   print the version\n"
		"\n");
	print_signals(f);
}

static const char k8s_options[] =
	"      --kubeconfig FILE  talk to the Kubernetes API with this kubeconfig (default: in-cluster\n"
	"                         service account when $KUBERNETES_SERVICE_HOST is set)\n"
	"      --no-k8s           do not use the Kubernetes API (no pod names, no Events)\n"
	"      --apiserver H:P    apilat: an API-server endpoint to measure, besides\n"
	"                         $KUBERNETES_SERVICE_HOST:PORT (numeric; IPv6 as [ADDR]:PORT; repeatable)\n";

static const char common_options[] =
	"      --btf FILE         kernel BTF to use instead of /sys/kernel/btf/vmlinux\n"
	"      --probe S/P=V      use only variant V for probe point P of signal S\n"
	"                         (e.g. oom/mark_victim=tracepoint; repeatable; see `ksight probes`)\n"
	"      --node-name NAME   node name for events (default: $NODE_NAME, else the hostname)\n"
	"      --kubelet-root DIR kubelet's root directory, where pod volumes are mounted\n"
	"                         (default: /var/lib/kubelet; fserr finds pods by their volumes)\n"
	"      --cache-dir DIR    where the per-boot cache of the kernel BTF's small copy is kept\n"
	"                         (default: /run/ksight; none: no cache)\n"
	"  -v, --verbose          libbpf's own diagnostics, and apilat's receive-hook attaches, on stderr\n"
	"  -h, --help             this help\n";

static void usage_command(FILE *f, enum agent_mode mode)
{
	switch (mode) {
	case MODE_RUN:
		fprintf(f,
			"Usage: ksight run [--listen ADDR:PORT] [--signals SIGNAL,...] [OPTIONS]\n"
			"\n"
			"Run the node agent until SIGTERM or SIGINT: attach every signal's probes and\n"
			"serve /metrics and /healthz.\n"
			"\n"
			"Options:\n"
			"  -l, --listen ADDR:PORT   where to serve metrics (default " DEFAULT_LISTEN ";\n"
			"                           \":PORT\" for every address)\n"
			"  -s, --signals LIST       comma-separated signals to run (default: all)\n"
			"      --node-conditions    fserr: set the Node condition KsightFilesystemCorruption,\n"
			"                           True while a mounted filesystem has reported corruption or a\n"
			"                           shutdown since it was mounted (needs the API; default: off)\n"
			"      --events-log FILE    append every Kubernetes Event ksight posts (or, without the\n"
			"                           API, would post) to FILE as a JSON line; - for stdout\n"
			"      --apilat-p99-threshold DURATION\n"
			"                           apilat: a Warning Event on the Node when a client's p99\n"
			"                           response time over --apilat-window is above this\n"
			"                           (e.g. 1s; default: off)\n"
			"      --apilat-window DURATION\n"
			"                           apilat: the window of that p99 (default 5m, at least 1s)\n"
			"%s%s\n", k8s_options, common_options);
		break;
	case MODE_TRACE:
		fprintf(f,
			"Usage: ksight trace [SIGNAL...] [-o text|json] [OPTIONS]\n"
			"\n"
			"Print events as they happen until interrupted (default: every signal).\n"
			"\n"
			"Options:\n"
			"  -o, --output FORMAT      text (aligned columns, default) or json (one object per line)\n"
			"      --trace-rate N       netdrop: at most N sampled drops per second per CPU, in bursts\n"
			"                           of up to N (default 100; the kernel counts the rest as\n"
			"                           ksight_trace_suppressed_total, metrics count every drop)\n"
			"      --reason NAME        netdrop: only drops of this reason (NETFILTER_DROP, ...)\n"
			"      --namespace NS       netdrop: only drops in pods of this namespace\n"
			"      --pod NAME           netdrop: only drops in this pod\n"
			"      --slow DURATION      apilat: turns (request to first response byte, TLS handshake)\n"
			"                           at least this long, e.g. 250ms, 1s, 500us (default 100ms;\n"
			"                           0: every turn); connects and failures are always shown\n"
			"%s%s\n", k8s_options, common_options);
		break;
	case MODE_PROBES:
		fprintf(f,
			"Usage: ksight probes [SIGNAL...] [-o text|json] [OPTIONS]\n"
			"\n"
			"Load and attach every probe variant this kernel allows, show which one each\n"
			"probe point uses and why the others were not, then detach.\n"
			"\n"
			"Options:\n"
			"  -o, --output FORMAT      text (default) or json\n"
			"%s\n", common_options);
		break;
	}
	print_signals(f);
}

static const char *command_name(enum agent_mode mode)
{
	return mode == MODE_RUN ? "run" : mode == MODE_TRACE ? "trace" : "probes";
}

static int usage_error(enum agent_mode mode, const char *fmt, const char *arg)
{
	fprintf(stderr, "ksight: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'ksight %s --help'.\n", command_name(mode));
	return EXIT_USAGE;
}

/*
 * Append one signal (validated, `len` bytes of `name`) to cfg->signals, once:
 * the entry points at the signal table's own name, so it outlives argv and
 * any later option.
 */
static int add_signal(struct agent_config *cfg, enum agent_mode mode, const char *name, size_t len)
{
	const struct signal_def *def = NULL;
	char want[64];
	int n = 0, i;

	snprintf(want, sizeof(want), "%.*s", (int)(len < sizeof(want) ? len : sizeof(want) - 1), name);
	for (i = 0; ksight_signals[i]; i++)
		if (strlen(ksight_signals[i]->name) == len && !strncmp(ksight_signals[i]->name, name, len))
			def = ksight_signals[i];
	if (!def) {
		char msg[256];
		int mlen;

		mlen = snprintf(msg, sizeof(msg), "unknown signal '%%s' (known:");
		for (i = 0; ksight_signals[i] && mlen < (int)sizeof(msg); i++)
			mlen += snprintf(msg + mlen, sizeof(msg) - (size_t)mlen, " %s", ksight_signals[i]->name);
		snprintf(msg + mlen, sizeof(msg) - (size_t)mlen, ")");
		return usage_error(mode, msg, want);
	}
	for (n = 0; cfg->signals[n]; n++)
		if (cfg->signals[n] == def->name)
			return 0;
	if (n == AGENT_MAX_LIST)
		return usage_error(mode, "too many signals: %s", want);
	cfg->signals[n] = def->name;
	return 0;
}

/* "a,b,c" without writing to it; empty names between commas are skipped. */
static int add_signal_list(struct agent_config *cfg, enum agent_mode mode, const char *list)
{
	const char *p = list;
	int added = 0, ret;

	while (*p) {
		size_t len = strcspn(p, ",");

		if (len) {
			ret = add_signal(cfg, mode, p, len);
			if (ret)
				return ret;
			added++;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return added ? 0 : usage_error(mode, "--signals needs at least one signal name%s", "");
}

/* long options without a short form: values past every char */

/* --node-conditions: written by the API side from fserr's tracking, so both must be there */
static int check_node_conditions(const struct agent_config *cfg)
{
	int i;

	if (!cfg->node_conditions)
		return 0;
	if (cfg->no_k8s)
		return usage_error(cfg->mode, "--node-conditions writes to the Kubernetes API: not with --no-k8s%s", "");
	if (!cfg->signals[0])
		return 0;
	for (i = 0; cfg->signals[i]; i++)
		if (!strcmp(cfg->signals[i], "fserr"))
			return 0;
	return usage_error(cfg->mode, "--node-conditions needs the fserr signal (add it to --signals)%s", "");
}
enum { OPT_KUBELET_ROOT = 0x100, OPT_CACHE_DIR, OPT_NODE_CONDITIONS, OPT_EVENTS_LOG, OPT_SLOW, OPT_P99_THRESHOLD, OPT_P99_WINDOW };

int cli_parse(int argc, char **argv, struct agent_config *cfg)
{
	static const struct option long_opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "signals", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "btf", required_argument, NULL, 'B' },
		{ "probe", required_argument, NULL, 'P' },
		{ "node-name", required_argument, NULL, 'N' },
		{ "kubelet-root", required_argument, NULL, OPT_KUBELET_ROOT },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "node-conditions", no_argument, NULL, OPT_NODE_CONDITIONS },
		{ "events-log", required_argument, NULL, OPT_EVENTS_LOG },
		{ "kubeconfig", required_argument, NULL, 'K' },
		{ "no-k8s", no_argument, NULL, 'n' },
		{ "trace-rate", required_argument, NULL, 'R' },
		{ "reason", required_argument, NULL, 'r' },
		{ "namespace", required_argument, NULL, 'S' },
		{ "pod", required_argument, NULL, 'p' },
		{ "apiserver", required_argument, NULL, 'A' },
		{ "slow", required_argument, NULL, OPT_SLOW },
		{ "apilat-p99-threshold", required_argument, NULL, OPT_P99_THRESHOLD },
		{ "apilat-window", required_argument, NULL, OPT_P99_WINDOW },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *cmd;
	enum agent_mode mode;
	int opt, n_probes = 0, n_apiservers = 0, ret;
	char why[256];

	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = DEFAULT_LISTEN;
	cfg->apilat_slow_ns = APILAT_DEFAULT_TRACE_SLOW_NS;
	cfg->apilat_window_ns = DEFAULT_APILAT_WINDOW_NS;
	if (argc < 2) {
		usage_main(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage_main(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("ksight %s (%s)\n", KSIGHT_VERSION, KSIGHT_COMMIT);
		return CLI_EXIT_OK;
	}
	if (!strcmp(cmd, "run"))
		mode = MODE_RUN;
	else if (!strcmp(cmd, "trace"))
		mode = MODE_TRACE;
	else if (!strcmp(cmd, "probes"))
		mode = MODE_PROBES;
	else {
		fprintf(stderr, "ksight: unknown command '%s' (commands: run, trace, probes)\n"
			"Try 'ksight --help'.\n", cmd);
		return EXIT_USAGE;
	}
	cfg->mode = mode;

	optind = 2;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":l:s:o:vhV", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (mode != MODE_RUN)
				return usage_error(mode, "--listen is an option of `ksight run`%s", "");
			if (http_listen_validate(optarg, why, sizeof(why)))
				return usage_error(mode, "%s", why);
			cfg->listen = optarg;
			break;
		case 's':
			if (mode != MODE_RUN)
				return usage_error(mode, "--signals is an option of `ksight run`; name signals as arguments%s", "");
			ret = add_signal_list(cfg, mode, optarg);
			if (ret)
				return ret;
			break;
		case 'o':
			if (mode == MODE_RUN)
				return usage_error(mode, "-o/--output is an option of `ksight trace` and `ksight probes`%s", "");
			if (!strcmp(optarg, "text"))
				cfg->format = OUTPUT_TEXT;
			else if (!strcmp(optarg, "json"))
				cfg->format = OUTPUT_JSON;
			else
				return usage_error(mode, "unknown output format '%s' (text or json)", optarg);
			break;
		case 'B':
			cfg->btf_path = optarg;
			break;
		case 'P':
			if (probe_override_validate(optarg, why, sizeof(why)))
				return usage_error(mode, "%s", why);
			if (n_probes == AGENT_MAX_LIST)
				return usage_error(mode, "too many --probe options%s", "");
			cfg->probe_overrides[n_probes++] = optarg;
			break;
		case 'A': {
			struct apilat_endpoint ep;

			if (mode == MODE_PROBES)
				return usage_error(mode, "--apiserver is an option of `ksight run` and `ksight trace`%s", "");
			if (apilat_parse_endpoint(optarg, &ep))
				return usage_error(mode, "--apiserver wants a numeric ADDR:PORT or [IPV6]:PORT, not '%s'",
						   optarg);
			if (n_apiservers == AGENT_MAX_LIST)
				return usage_error(mode, "too many --apiserver options%s", "");
			cfg->apiservers[n_apiservers++] = optarg;
			break;
		}
		case OPT_SLOW:
			if (mode != MODE_TRACE)
				return usage_error(mode, "--slow is an option of `ksight trace`%s", "");
			if (apilat_parse_duration(optarg, &cfg->apilat_slow_ns))
				return usage_error(mode, "--slow wants a duration such as 250ms, 1s or 500us, not '%s'",
						   optarg);
			break;
		case OPT_P99_THRESHOLD:
		case OPT_P99_WINDOW: {
			const char *flag = opt == OPT_P99_THRESHOLD ? "--apilat-p99-threshold" : "--apilat-window";
			uint64_t ns;

			if (mode != MODE_RUN)
				return usage_error(mode, "%s is an option of `ksight run`", flag);
			if (apilat_parse_duration(optarg, &ns) ||
			    (opt == OPT_P99_THRESHOLD ? !ns : ns < MIN_APILAT_WINDOW_NS))
				return usage_error(mode, opt == OPT_P99_THRESHOLD ?
						   "--apilat-p99-threshold wants a duration above 0 such as 500ms or 1s, not '%s'" :
						   "--apilat-window wants a duration of at least 1s such as 30s or 5m, not '%s'",
						   optarg);
			if (opt == OPT_P99_THRESHOLD)
				cfg->apilat_p99_threshold_ns = ns;
			else
				cfg->apilat_window_ns = ns;
			break;
		}
		case 'N':
			cfg->node_name = optarg;
			break;
		case OPT_NODE_CONDITIONS:
			if (mode != MODE_RUN)
				return usage_error(mode, "--node-conditions is an option of `ksight run`%s", "");
			cfg->node_conditions = true;
			break;
		case OPT_KUBELET_ROOT:
			if (optarg[0] != '/')
				return usage_error(mode, "--kubelet-root needs an absolute path, not '%s'", optarg);
			cfg->kubelet_root = optarg;
			break;
		case OPT_CACHE_DIR:
			if (optarg[0] != '/' && strcmp(optarg, "none"))
				return usage_error(mode, "--cache-dir needs an absolute path, or none, not '%s'", optarg);
			cfg->cache_dir = optarg;
			break;
		case OPT_EVENTS_LOG:
			if (mode != MODE_RUN)
				return usage_error(mode, "--events-log is an option of `ksight run`%s", "");
			if (!optarg[0])
				return usage_error(mode, "--events-log needs a file name, or - for standard output%s", "");
			cfg->events_log = optarg;
			break;
		case 'K':
		case 'n':
			if (mode == MODE_PROBES)
				return usage_error(mode, "%s is an option of `ksight run` and `ksight trace`",
						   argv[optind - 1]);
			if (opt == 'K')
				cfg->kubeconfig = optarg;
			else
				cfg->no_k8s = true;
			if (cfg->kubeconfig && cfg->no_k8s)
				return usage_error(mode, "--kubeconfig and --no-k8s contradict each other%s", "");
			break;
		case 'R':
		case 'r':
		case 'S':
		case 'p': {
			const char *flag = opt == 'R' ? "--trace-rate" : opt == 'r' ? "--reason" :
					   opt == 'S' ? "--namespace" : "--pod";

			if (mode != MODE_TRACE)
				return usage_error(mode, "%s is an option of `ksight trace`", flag);
			if (opt == 'R') {
				char *end;
				unsigned long n = strtoul(optarg, &end, 10);

				if (end == optarg || *end || optarg[0] == '-' || n < 1 || n > 1000000)
					return usage_error(mode, "--trace-rate wants a number of records per second "
							   "from 1 to 1000000, not '%s'", optarg);
				cfg->trace_rate = (unsigned int)n;
			} else if (!optarg[0]) {
				return usage_error(mode, "%s needs a non-empty value", flag);
			} else if (opt == 'r') {
				cfg->trace_reason = optarg;
			} else if (opt == 'S') {
				cfg->trace_namespace = optarg;
			} else {
				cfg->trace_pod = optarg;
			}
			break;
		}
		case 'v':
			cfg->verbose = true;
			break;
		case 'h':
			usage_command(stdout, mode);
			return CLI_EXIT_OK;
		case 'V':
			printf("ksight %s (%s)\n", KSIGHT_VERSION, KSIGHT_COMMIT);
			return CLI_EXIT_OK;
		case ':':
			return usage_error(mode, "option %s needs a value", argv[optind - 1]);
		default:
			return usage_error(mode, "unknown option '%s'", argv[optind - 1]);
		}
	}
	for (; optind < argc; optind++) {
		if (mode == MODE_RUN)
			return usage_error(mode, "unexpected argument '%s' (use --signals to choose signals)",
					   argv[optind]);
		ret = add_signal(cfg, mode, argv[optind], strlen(argv[optind]));
		if (ret)
			return ret;
	}
	return check_node_conditions(cfg);
}
