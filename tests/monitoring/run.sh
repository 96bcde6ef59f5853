#!/usr/bin/env bash
# The monitoring suite (no root, no kernel): promtool checks and unit tests of
# the rules, the lint of alerts, dashboards and monitor objects (and the lint's own
# test), the generated Kubernetes objects up to date, amtool on the example route.
# Prints "ok NAME: ..." / "not ok NAME: ...".
set -u
cd "$(dirname "$0")/../.."

rc=0
# step NAME WHAT COMMAND...: ok if the command succeeds; its output indented otherwise
step() {
	local name=$1 what=$2 out; shift 2
	if out=$("$@" 2>&1); then
		echo "ok $name: $what"
	else
		echo "not ok $name: $what"
		printf '%s\n' "$out" | sed 's/^/#   /'
		rc=1
	fi
}

for tool in promtool amtool python3; do
	command -v $tool >/dev/null || { echo "not ok tools: $tool is missing (scripts/setup.sh installs it)"; exit 1; }
done

step promtool-check "promtool check rules --lint-fatal on the rules and alerts" \
	promtool check rules --lint-fatal monitoring/prometheus/ksight-rules.yaml monitoring/prometheus/ksight-alerts.yaml
step promtool-check-k8s "promtool check rules on the PrometheusRule's groups" \
	sh -c 'f=$(mktemp) && sed -n "/^spec:/,\$p" monitoring/kubernetes/prometheusrule.yaml | sed "1d; s/^  //" >"$f" &&
		promtool check rules --lint-fatal "$f"; r=$?; rm -f "$f"; exit $r'
for t in tests/monitoring/*.test.yaml; do
	step "promtool-test-$(basename "$t" .test.yaml)" "promtool test rules $(basename "$t")" promtool test rules "$t"
done
step gen-up-to-date "monitoring/kubernetes/ is what scripts/gen-prometheusrule.sh generates" \
	scripts/gen-prometheusrule.sh --check
step amtool "amtool check-config monitoring/alertmanager/example.yaml" \
	amtool check-config monitoring/alertmanager/example.yaml

# the lint and its own test print their ok / not ok lines
python3 tests/monitoring/lint.py || rc=1
python3 tests/monitoring/lint_test.py || rc=1
exit $rc
