#!/usr/bin/env bash
# A Kubernetes configuration the user named must work or stop the agent: a
# missing or broken --kubeconfig, or an in-cluster environment whose service
# account files are missing, exits 1 with one line naming what is wrong, before
# any probe is loaded. Only the absence of any configuration runs without the API.
. "$(dirname "$0")/lib.sh"

# bad_config NAME WANT_SUBSTRING ENV... -- ARGS...: ksight must exit 1 within 20 s,
# with exactly one line on stderr that contains WANT_SUBSTRING
bad_config() {
	local name=$1 want=$2 rc lines; shift 2
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	timeout 20 env "${envs[@]}" "$KSIGHT" "$@" >"$WORK/cfg.out" 2>"$WORK/cfg.err"; rc=$?
	lines=$(wc -l <"$WORK/cfg.err")
	if [ "$rc" -ne 1 ]; then
		not_ok "$name: exit $rc, want 1 ($(head -c 300 "$WORK/cfg.err"))"
	elif [ "$lines" -ne 1 ]; then
		not_ok "$name: $lines lines on stderr, want 1 ($(head -c 600 "$WORK/cfg.err"))"
	elif ! grep -qF -- "$want" "$WORK/cfg.err"; then
		not_ok "$name: stderr lacks '$want' (got: $(head -c 300 "$WORK/cfg.err"))"
	else
		ok "$name"
	fi
}

PORT=$(free_port)
NO_CLUSTER=(-u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT)

bad_config "run --kubeconfig that does not exist" "kubeconfig /nonexistent/kubeconfig does not exist" \
	"${NO_CLUSTER[@]}" -- run --listen "127.0.0.1:$PORT" --signals oom --node-name n1 --kubeconfig /nonexistent/kubeconfig
bad_config "trace --kubeconfig that does not exist" "/nonexistent/kubeconfig" \
	"${NO_CLUSTER[@]}" -- trace oom --node-name n1 --kubeconfig /nonexistent/kubeconfig

printf 'apiVersion: v1\nclusters: [ {name: x, cluster: {server: \n' >"$WORK/garbage.yaml"
bad_config "run --kubeconfig that is not YAML" "kubeconfig $WORK/garbage.yaml is not valid YAML" \
	"${NO_CLUSTER[@]}" -- run --listen "127.0.0.1:$PORT" --signals oom --node-name n1 --kubeconfig "$WORK/garbage.yaml"

printf 'apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n' >"$WORK/nocontext.yaml"
bad_config "run --kubeconfig without its context" "$WORK/nocontext.yaml" \
	"${NO_CLUSTER[@]}" -- run --listen "127.0.0.1:$PORT" --signals oom --node-name n1 --kubeconfig "$WORK/nocontext.yaml"

# the platform's configuration: KUBERNETES_SERVICE_HOST set, but no service account token
if [ ! -e /var/run/secrets/kubernetes.io/serviceaccount/token ]; then
	bad_config "in-cluster without a service account token" "/var/run/secrets/kubernetes.io/serviceaccount/token" \
		KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=6443 -- \
		run --listen "127.0.0.1:$PORT" --signals oom --node-name n1
else
	ok "in-cluster without a service account token # SKIP this machine has one"
fi

bad_config "in-cluster with KUBERNETES_SERVICE_HOST but no port" "KUBERNETES_SERVICE_PORT is not" \
	-u KUBERNETES_SERVICE_PORT KUBERNETES_SERVICE_HOST=127.0.0.1 -- \
	run --listen "127.0.0.1:$PORT" --signals oom --node-name n1

# and nothing configured still runs, without names and Events
env "${NO_CLUSTER[@]}" "$KSIGHT" trace oom --node-name n1 >"$WORK/noapi.out" 2>"$WORK/noapi.err" &
p=$!
check "no configuration at all: runs without the API" wait_for 20 grep -q "ready in" "$WORK/noapi.err"
kill -INT $p; wait $p
check "no configuration at all: says so" grep -q "no Kubernetes API: not in a cluster and no --kubeconfig" "$WORK/noapi.err"

finish
