#!/usr/bin/env bash
# apilat's endpoint set, trace and Event, against the fake API server and TLS test servers
# on loopback (tests/e2e/apilat.py):
#  - the kubeconfig's server is in the set (ksight_apiserver_endpoint_info, and a client of
#    the fake API server is measured);
#  - the default/kubernetes EndpointSlices drive the set: a slice pointing at a test server
#    (IPv4, and IPv6 on ::1) -> its clients are measured; its endpoint not ready, or the slice
#    deleted -> they are not; a slice of another Service -> never;
#  - a connection open before its endpoint entered the set is adopted when it does;
#  - `ksight trace apilat --slow 100ms -o json`: the 200 ms turns (duration, bytes, addresses
#    as the client saw them), connects and a refused connect; no line for 2 ms turns; a client
#    in a pod's cgroup is that pod's (its UID and container ID: the trace has no API here); a
#    connection open before the trace started: its slow turns, with its pid and addresses;
#  - `--apilat-p99-threshold 100ms --apilat-window 5s`: a Warning on the Node naming the
#    200 ms client and its p99, none for a 2 ms client; a slow client in a pod's cgroup is
#    named by the pod's namespace, name and container (from the API), not by its comm.
. "$(dirname "$0")/lib.sh"

PY="python3 $ROOT/tests/e2e/apilat.py"
NODE=node-apislices
POD_UID=5e1c2d3e-4b5a-4c6d-8e7f-0123456789ab
CID=$(printf 'feedf00d%.0s' 1 2 3 4 5 6 7 8)

client() { # COMM HOST PORT DELAY_MS N: prints the client's JSON
	$PY client --comm "$1" --host "$2" --port "$3" --delay-ms "$4" -n "$5"
}
responses() { # COMM: the response histogram's count ("" when there is no series)
	metric_value "ksight_apiserver_response_duration_seconds_count{$(series "$1")}"
}
slice() { # NAME SERVICE ADDRESS_TYPE ADDRESS PORT READY
	printf '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"namespace":"default","name":"%s","labels":{"kubernetes.io/service-name":"%s"}},"addressType":"%s","endpoints":[{"addresses":["%s"],"conditions":{"ready":%s}}],"ports":[{"name":"https","port":%s,"protocol":"TCP"}]}' \
		"$1" "$2" "$3" "$4" "$6" "$5"
}

PS=$(free_port)        # the EndpointSlices' server
P6=$(free_port6)
PEV=$(free_port)       # the Event's server (--apiserver)
PT=$(free_port)        # the trace's server (--apiserver)
PCLOSED=$(free_port)   # registered, nobody listens
tls_server 127.0.0.1 "$PS"
tls_server ::1 "$P6"
tls_server 127.0.0.1 "$PEV"
tls_server 127.0.0.1 "$PT"
fake_api_pod "$NODE" "ksight-apislices-$$"

KUBERNETES_SERVICE_HOST='' start_run slices --signals apilat --kubeconfig "$WORK/kubeconfig" --node-name "$NODE" \
	--apiserver "127.0.0.1:$PEV" --apilat-p99-threshold 100ms --apilat-window 5s ||
	{ not_ok "ksight run starts"; finish; }

# --- the kubeconfig's server
eventually "the kubeconfig's server is in the set" 10 1 \
	metric_value "ksight_apiserver_endpoint_info{endpoint=\"127.0.0.1:$API\",source=\"kubeconfig\"}"
expect_eq "one endpoint from the kubeconfig" "$(metric_value 'ksight_apiserver_endpoints{source="kubeconfig"}')" 1
expect_eq "one from --apiserver" "$(metric_value 'ksight_apiserver_endpoints{source="flag"}')" 1
expect_eq "none from the environment" "$(metric_value 'ksight_apiserver_endpoints{source="service_env"}')" 0
# a client of the fake API server (its TLS, its token): measured as the API server's
python3 - "$D/ca.crt" "$(cat "$D/token")" "$API" "$NODE" <<-'EOF' || not_ok "a request to the fake API server"
	import http.client, ssl, sys
	open("/proc/self/comm", "w").write("apil-kubectl")
	ctx = ssl.create_default_context(cafile=sys.argv[1])
	c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[3]), context=ctx)
	c.request("GET", "/api/v1/nodes/" + sys.argv[4], headers={"Authorization": "Bearer " + sys.argv[2]})
	assert c.getresponse().status == 200
EOF
eventually "a request to the kubeconfig's server is measured" 5 1 responses apil-kubectl

# --- the EndpointSlices
eventually "no slice yet" 10 0 metric_value 'ksight_apiserver_endpoints{source="endpointslices"}'
client apil-before 127.0.0.1 "$PS" 2 5 >/dev/null || not_ok "client apil-before completes"
expect_eq "before the slice: the server's clients are not measured" "$(responses apil-before)" ""
# a connection open before its endpoint enters the set: adopted when it does
$PY client --comm apil-held --host 127.0.0.1 --port "$PS" --delay-ms 2 -n 5 --pre 1 --ready "$WORK/held.ready" \
	--go "$WORK/held.go" >/dev/null &
HELD=$!
wait_for 10 test -f "$WORK/held.ready" || not_ok "client apil-held is connected and waiting"

ctl POST /endpointslices "$(slice kubernetes-abcde kubernetes IPv4 127.0.0.1 "$PS" true)" >/dev/null
ctl POST /endpointslices "$(slice other-xyz other IPv4 127.0.0.1 "$PEV" true)" >/dev/null
eventually "a ready endpoint of the slice enters the set" 10 1 \
	metric_value "ksight_apiserver_endpoint_info{endpoint=\"127.0.0.1:$PS\",source=\"endpointslices\"}"
expect_eq "the other Service's slice is not read" \
	"$(metric_value "ksight_apiserver_endpoint_info{endpoint=\"127.0.0.1:$PEV\",source=\"endpointslices\"}")" ""
client apil-sliced 127.0.0.1 "$PS" 2 5 >/dev/null || not_ok "client apil-sliced completes"
eventually "with the slice: its 5 responses are measured" 5 5 responses apil-sliced
eventually "the connection open before the slice is adopted" 5 1 \
	metric_value "ksight_apiserver_connections{$(series apil-held)}"
touch "$WORK/held.go"
wait $HELD || not_ok "client apil-held completes"
eventually "... and its 5 responses after that are measured" 5 5 responses apil-held

ctl POST /endpointslices "$(slice kubernetes-abcde kubernetes IPv4 127.0.0.1 "$PS" false)" >/dev/null
eventually "the endpoint not ready: it leaves the set" 10 0 metric_value 'ksight_apiserver_endpoints{source="endpointslices"}'
client apil-notready 127.0.0.1 "$PS" 2 5 >/dev/null || not_ok "client apil-notready completes"
expect_eq "... and its clients are not measured" "$(responses apil-notready)" ""

ctl POST /endpointslices "$(slice kubernetes-abcde kubernetes IPv4 127.0.0.1 "$PS" true)" >/dev/null
ctl POST /endpointslices "$(slice kubernetes-v6 kubernetes IPv6 ::1 "$P6" true)" >/dev/null
eventually "ready again, and an IPv6 slice: two endpoints" 10 2 metric_value 'ksight_apiserver_endpoints{source="endpointslices"}'
client apil-v6 ::1 "$P6" 2 5 >/dev/null || not_ok "client apil-v6 completes"
eventually "the IPv6 slice's server is measured" 5 5 responses apil-v6

ctl DELETE /endpointslices/default/kubernetes-abcde >/dev/null
eventually "the slice deleted: its endpoint leaves the set" 10 "" \
	metric_value "ksight_apiserver_endpoint_info{endpoint=\"127.0.0.1:$PS\",source=\"endpointslices\"}"
client apil-deleted 127.0.0.1 "$PS" 2 5 >/dev/null || not_ok "client apil-deleted completes"
expect_eq "... and its clients are not measured" "$(responses apil-deleted)" ""
expect_eq "the IPv6 slice stays" "$(metric_value 'ksight_apiserver_endpoints{source="endpointslices"}')" 1
check "the changes are logged" grep -q "apilat: no longer measuring 127.0.0.1:$PS" "$WORK/slices.err"

# --- the Node Event: a 200 ms client above a 100 ms p99 threshold, a 2 ms one below
client apil-fast 127.0.0.1 "$PEV" 2 300 >/dev/null &
FAST=$!
in_cg2 "$CG" $PY client --comm apil-podslow --host 127.0.0.1 --port "$PEV" --delay-ms 200 -n 40 >/dev/null &
POD=$!
client apil-slow 127.0.0.1 "$PEV" 200 40 >/dev/null || not_ok "client apil-slow completes"
wait $FAST
wait $POD || not_ok "client apil-podslow completes"
events() { ctl GET /events | python3 -c '
import json, sys
print(json.dumps([e for e in json.load(sys.stdin) if e.get("reason") == "ApiserverSlowResponses"]))'; }
n_events() { events | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'; }
at_least "the slow-response Events are posted (host process, pod)" 10 2 n_events
events >"$WORK/events.json"
python3 - "$WORK/events.json" "$NODE" <<-'EOF' >"$WORK/events.check"
	import json, re, sys
	evs = json.load(open(sys.argv[1]))
	slow = [e for e in evs if "host process apil-slow" in e["message"]]
	fast = [e for e in evs if "apil-fast" in e["message"]]
	assert slow and not fast, [e["message"] for e in evs]
	pod = [e for e in evs if "to pod shop/cart-1 container cart are slow" in e["message"]]
	assert len(pod) == 1 and not [e for e in evs if "apil-podslow" in e["message"]], [e["message"] for e in evs]
	assert pod[0]["involvedObject"]["kind"] == "Node", pod[0]
	e = slow[0]
	assert e["type"] == "Warning", e
	assert e["involvedObject"]["kind"] == "Node" and e["involvedObject"]["name"] == sys.argv[2], e["involvedObject"]
	m = re.search(r"p99 ([0-9.]+) ms over the last 5 s \(([0-9]+) responses\), above the threshold of 100 ms", e["message"])
	assert m, e["message"]
	# the slowest of ~25 turns of 200 ms and a bit (Python, TLS), in its bucket
	assert 180 <= float(m.group(1)) <= 300 and int(m.group(2)) >= 20, e["message"]
	print("ok")
EOF
expect_eq "the Events are Warnings on the Node naming the slow clients (comm, pod) and the p99 (~200 ms)" \
	"$(cat "$WORK/events.check")" ok

# --- the trace (a connection open before it started is adopted: its slow turns too)
$PY client --comm apil-theld --host 127.0.0.1 --port "$PT" --delay-ms 200 -n 2 --pre 1 --ready "$WORK/theld.ready" \
	--go "$WORK/theld.go" >/dev/null &
THELD=$!
wait_for 10 test -f "$WORK/theld.ready" || not_ok "client apil-theld is connected and waiting"
KUBERNETES_SERVICE_HOST='' start_trace trace apilat -o json --slow 100ms --no-k8s \
	--apiserver "127.0.0.1:$PT" --apiserver "127.0.0.1:$PCLOSED" || { not_ok "ksight trace apilat starts"; finish; }
# the client's end and the one the server accepted (server side: its local address is in the set)
wait_for 10 grep -q "following 2 API-server connections" "$WORK/trace.err" || not_ok "trace: the open connection is adopted"
touch "$WORK/theld.go"
wait $THELD || not_ok "client apil-theld completes"
client apil-tfast 127.0.0.1 "$PT" 2 20 >"$WORK/tfast.json" || not_ok "client apil-tfast completes"
client apil-tslow 127.0.0.1 "$PT" 200 3 >"$WORK/tslow.json" || not_ok "client apil-tslow completes"
in_cg2 "$CG" $PY client --comm apil-tpod --host 127.0.0.1 --port "$PT" --delay-ms 200 -n 2 >/dev/null ||
	not_ok "client apil-tpod completes"
expect_eq "a connect to the closed registered port is refused" \
	"$($PY connect --comm apil-trefused --host 127.0.0.1 --port "$PCLOSED")" refused
check "trace: the lines arrive" wait_for 5 sh -c "grep -q apil-trefused '$WORK/trace.out'"
python3 - "$WORK/trace.out" "$WORK/tslow.json" "$PT" "$PCLOSED" "$POD_UID" "$CID" <<-'EOF' >"$WORK/trace.check"
	import json, re, sys
	lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
	want = json.load(open(sys.argv[2]))["latencies"]
	pt, pclosed, pod_uid, cid = sys.argv[3:7]
	def of(comm, phase):
	    return [l for l in lines if l["comm"] == comm and l["phase"] == phase]
	assert not of("apil-tfast", "response"), "a 2 ms turn was traced"
	assert not [l for l in lines if l["phase"] == "handshake"], "a fast handshake was traced"
	slow = of("apil-tslow", "response")
	assert len(slow) == 3, slow
	for l, w in zip(sorted(slow, key=lambda l: l["duration_ns"]), sorted(want)):
	    d = l["duration_ns"] / 1e9
	    assert abs(d - w) <= 0.15 * w, (d, w)
	    assert l["signal"] == "apilat" and l["family"] == "ipv4", l
	    assert l["remote"] == "127.0.0.1:" + pt and re.fullmatch(r"127\.0\.0\.1:[0-9]+", l["local"]), l
	    # 1000 bytes back, one TLS 1.3 record (+22 bytes)
	    assert l["received_bytes"] == 1000 + 22, l
	    assert l["cause"] is None and l["pid"] > 0, l
	    assert l["pod_uid"] == "" and l["container_id"] == "", l
	    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", l["time"]), l
	# "GET 200\n", one record; the first request also carries the client's TLS Finished
	sent = [l["sent_bytes"] for l in sorted(slow, key=lambda l: l["time"])]
	assert sent[0] > 8 + 22 and sent[1:] == [8 + 22, 8 + 22], sent
	for comm in ("apil-tfast", "apil-tslow"):
	    c = of(comm, "connect")
	    assert len(c) == 1 and c[0]["remote"] == "127.0.0.1:" + pt and c[0]["sent_bytes"] is None, c
	    # every record of the connection, the last one (sent at its close) too, has its local address
	    assert {l["local"] for l in lines if l["comm"] == comm} == {c[0]["local"]}, lines
	    assert not c[0]["local"].endswith(":0"), c
	f = of("apil-trefused", "failure")
	assert len(f) == 1 and f[0]["cause"] == "refused" and f[0]["remote"] == "127.0.0.1:" + pclosed, f
	pod = of("apil-tpod", "response") + of("apil-tpod", "connect")
	assert len(pod) == 3, pod
	for l in pod:
	    assert l["pod_uid"] == pod_uid and l["container_id"] == cid, l
	    assert l["cgroup"].endswith("/pod%s/%s" % (pod_uid, cid)), l
	held = of("apil-theld", "response")
	assert len(held) == 2 and not of("apil-theld", "connect"), [l for l in lines if l["comm"] == "apil-theld"]
	for l in held:
	    assert l["remote"] == "127.0.0.1:" + pt and re.fullmatch(r"127\.0\.0\.1:[0-9]+", l["local"]), l
	    assert l["pid"] > 0 and l["received_bytes"] == 1000 + 22 and 0.18 <= l["duration_ns"] / 1e9 <= 0.3, l
	assert not [l for l in lines if l["comm"] not in ("apil-tfast", "apil-tslow", "apil-tpod", "apil-trefused",
	                                                  "apil-theld")], lines
	print("ok")
EOF
expect_eq "trace: 3 slow responses (durations within 15% of the client's, bytes, addresses), connects, the refusal; no 2 ms turn; the pod's client by its pod" \
	"$(cat "$WORK/trace.check")" ok
finish
