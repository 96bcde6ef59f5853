#!/usr/bin/env python3
# What one guest saw (its console), checked against what that kernel has: the common part,
# then one check_NAME() per scenario run in the guest (init/NAME.sh).
#
# check.py CONSOLE SETTINGS SCENARIO...: SETTINGS is the guest's settings (the VAR=VALUE lines
# its /init starts with). Environment: GUEST (a label for the lines, e.g. "5.10"), GUEST_SERIES
# (the kernel series expected, e.g. "5.10"), SUMMARY (a file for one line: the variants proven).
# Prints "ok - GUEST: ..." / "not ok - GUEST: ..."; exits 1 if anything failed.
#
# A probe variant is "proven" when every check made under `with proving("signal/point=variant")`
# passed, and at least one was made.
import contextlib, json, math, os, re, sys
from contextlib import contextmanager

# the e2e peers' histogram_quantile (as Prometheus computes it) and bucket parser
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from apilat import histogram_quantile, parse_buckets  # noqa: E402

text = open(sys.argv[1], errors="replace").read()
text = re.sub(r"\x1b(\[[0-9;?]*[A-Za-z]|[A-Za-z])", "", text)  # terminal escapes
lines = text.split("\n")
conf = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', open(sys.argv[2]).read(), re.M))
scenarios = sys.argv[3:]
label = os.environ.get("GUEST", "guest")
failed = False
proven = {}     # "signal/point=variant" -> True while none of its checks failed
current = []    # the variants being proven now

def ok(name):
    for t in current: proven.setdefault(t, True)
    print(f"ok - {label}: {name}")
def not_ok(name):
    global failed
    failed = True
    for t in current: proven[t] = False
    print(f"not ok - {label}: {name}")
def expect_eq(name, got, want):
    if got == want: ok(name)
    else: not_ok(f"{name} (got {got!r}, want {want!r})")
def note(s): print(f"# {label}: {s}")
def expect_rss(name, rss):
    # memhog's anonymous memory fills the 32 MiB cgroup before the kill
    if isinstance(rss, int) and limit // 2 < rss <= limit: ok(f"{name} ({rss})")
    else: not_ok(f"{name} (got {rss!r})")

@contextmanager
def proving(tag):
    current.append(tag)
    try: yield
    finally: current.remove(tag)

# "@@KSIGHT BEGIN name" ... "@@KSIGHT END name"; other "@@KSIGHT ..." lines are facts
blocks, facts, cur = {}, [], None
for line in lines:
    m = re.match(r"@@KSIGHT (BEGIN|END) (\S+)$", line)
    if m:
        cur = m.group(2) if m.group(1) == "BEGIN" else None
        if cur: blocks[cur] = []
        continue
    if cur is not None:
        blocks[cur].append(line)
    elif line.startswith("@@KSIGHT "):
        facts.append(line[len("@@KSIGHT "):])

def fact(prefix):
    for f in facts:
        if f.startswith(prefix): return f[len(prefix):].strip()
    return None

def dump(name, n=40):
    for l in [l for l in blocks.get(name, []) if l.strip()][:n]: note("  " + l)

def series_of(metrics_lines, family):
    """{frozenset(labels): value} of one metric family in a scrape"""
    out = {}
    for l in metrics_lines:
        m = re.match(r'(\w+)(?:\{([^}]*)\})? (\S+)$', l.strip())
        if m and m.group(1) == family:
            out[frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))] = float(m.group(3))
    return out

def probe_of(signal, point):
    """(signal's entry, point's entry, {variant: entry}) in `ksight probes -o json`"""
    sig = probes and next((s for s in probes.get("signals", []) if s.get("signal") == signal), None)
    p = sig and next((x for x in sig.get("probes", []) if x.get("probe") == point), None)
    return sig, p, {v["variant"]: v for v in (p or {}).get("variants", [])}

# facts that are "check ok/fail" lines: the guest's own checks (to the variant they name)
def guest_checks(prefix):
    for f in facts:
        for word, fn in (("check ok ", ok), ("check fail ", not_ok)):
            if f.startswith(word) and f[len(word):].startswith(prefix):
                fn("guest: " + f[len(word):])

kernel = fact("kernel ")
m = re.match(r"(\d+)\.(\d+)", kernel or "")
kv = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
want = os.environ.get("GUEST_SERIES")
if m and (not want or f"{kv[0]}.{kv[1]}" == want): ok(f"guest kernel is {kernel}")
else: not_ok(f"guest kernel is {want}.x (got {kernel!r})")
note(f"cgroup2 controllers: {fact('cgroup2 controllers:')}")

# --- ksight probes (each scenario checks its own signal's entries)
expect_eq("probes: exits 0", fact("probes exit "), "0")
probes = None
try:
    probes = json.loads("".join(blocks.get("probes", [])))
except ValueError as e:
    not_ok(f"probes: output is JSON ({e})"); dump("probes"); dump("probes.err")
if probes:
    expect_eq("probes: kernel field", probes.get("kernel"), kernel)

guest_checks("")
pod_uid, limit = conf.get("POD_UID"), int(conf.get("LIMIT", "0"))


def check_oom():
    # What the kernel's mark_victim carries decides what ksight must do. Before 6.9 it is
    # TP_PROTO(int pid); 72ba14deb40a (6.9, and backported to stable, 6.1.y included)
    # made it TP_PROTO(struct task_struct *task, uid_t uid) with comm, rss, uid, ... fields.
    fields = re.findall(r"field:[^;]*?\b(\w+)(?:\[\w*\])?;", "\n".join(blocks.get("mark_victim.format", [])))
    fields = [f for f in fields if not f.startswith("common_")]
    if "pid" in fields: ok(f"guest has tracepoint oom/mark_victim (fields: {' '.join(fields)})")
    else: not_ok("guest has tracepoint oom/mark_victim"); dump("mark_victim.format")
    new_mv = "uid" in fields
    note("this kernel's mark_victim is the " + ("6.9 one (task, uid): tp_btf must attach" if new_mv
         else "pid-only one (before 6.9): tp_btf must be unsupported"))

    if probes:
        sig = next((s for s in probes.get("signals", []) if s.get("signal") == "oom"), None)
        mv = sig and next((p for p in sig.get("probes", []) if p.get("probe") == "mark_victim"), None)
        if not mv:
            not_ok("probes: oom/mark_victim is listed"); dump("probes")
        else:
            expect_eq("probes: oom is running", sig.get("running"), True)
            expect_eq("probes: oom has no error", sig.get("error"), None)
            var = {v["variant"]: v for v in mv.get("variants", [])}
            tb, tp, kp = var.get("tp_btf", {}), var.get("tracepoint", {}), var.get("kprobe", {})
            if new_mv:
                expect_eq("probes: tp_btf is attached (mark_victim passes the task)", tb.get("state"), "attached")
                expect_eq("probes: mark_victim takes tp_btf", mv.get("attached"), "tp_btf")
                expect_eq("probes: tracepoint is on standby", tp.get("state"), "standby")
            else:
                expect_eq("probes: tp_btf is unsupported", tb.get("state"), "unsupported")
                r = tb.get("reason") or ""
                if "before 6.9" in r: ok("probes: tp_btf's reason says before 6.9")
                else: not_ok(f"probes: tp_btf's reason says before 6.9 (got {r!r})")
                expect_eq("probes: tracepoint is attached", tp.get("state"), "attached")
                expect_eq("probes: mark_victim takes the tracepoint", mv.get("attached"), "tracepoint")
            if kp.get("state") in ("attached", "standby"):
                ok(f"probes: kprobe attaches ({kp.get('state')}: {kp.get('reason')!r})")
            else:
                not_ok(f"probes: kprobe attaches (got {kp.get('state')!r}: {kp.get('reason')!r})")


    # --- one OOM kill per variant
    variants = (fact("variants ") or "").split()
    want = ["kprobe", "tracepoint"] + (["tp_btf"] if new_mv else [])
    expect_eq("guest ran the variants this kernel supports", variants, want)
    for v in variants:
        current[:] = [f"oom/mark_victim={v}"]
        cid = conf["CID_" + v]
        cgroup = f"/kubepods/burstable/pod{pod_uid}/{cid}"
        if fact(f"variant {v} cgroup ") is None:
            not_ok(f"{v}: the guest ran this variant"); continue
        expect_eq(f"{v}: guest's cgroup", fact(f"variant {v} cgroup "), cgroup)
        err = [l for l in blocks.get(f"{v}.err", []) if l.strip()]
        m = re.match(r"(\d*) shell (\d+)", fact(f"variant {v} victim ") or "")
        victim = int(m.group(1)) if m and m.group(1) else None
        if victim is None:
            not_ok(f"{v}: memhog ran and wrote its pid")
            for l in err[:30]: note("  err: " + l)
            continue
        expect_eq(f"{v}: memhog is the shell it was exec'd from", victim, int(m.group(2)))
        expect_eq(f"{v}: the victim died of SIGKILL", fact(f"variant {v} victim_exit "), "137")
        expect_eq(f"{v}: memory.events counts one oom_kill", fact(f"variant {v} oom_kill "), "1")
        expect_eq(f"{v}: ksight trace exits 0 on SIGINT", fact(f"variant {v} ksight_exit "), "0")
        out = [l for l in blocks.get(f"{v}.out", []) if l.strip()]
        events = [l for l in out if l.startswith("{")]
        if len(events) != 1 or len(out) != len(events):
            not_ok(f"{v}: exactly one event (got {len(events)} events, {len(out)} lines)")
            for l in out[:10]: note("  out: " + l)
            for l in err[:30]: note("  err: " + l)
            if not events: continue
        else:
            ok(f"{v}: exactly one event")
        try:
            e = json.loads(events[0])
        except ValueError as ex:
            not_ok(f"{v}: the event is JSON ({ex}): {events[0]!r}"); continue
        note(f"{v} event: {events[0]}")
        expect_eq(f"{v}: signal", e.get("signal"), "oom")
        expect_eq(f"{v}: pid is the victim", e.get("pid"), victim)
        expect_eq(f"{v}: tid is the victim (single-threaded)", e.get("tid"), victim)
        expect_eq(f"{v}: comm", e.get("comm"), "memhog")
        expect_eq(f"{v}: pod uid", e.get("pod_uid"), pod_uid)
        expect_eq(f"{v}: container id", e.get("container_id"), cid)
        expect_eq(f"{v}: cgroup", e.get("cgroup"), cgroup)
        expect_eq(f"{v}: memcg limit", e.get("memcg_limit_bytes"), limit)
        expect_eq(f"{v}: the victim triggered it", e.get("trigger_pid"), victim)
        expect_eq(f"{v}: trigger comm", e.get("trigger_comm"), "memhog")
        if v == "kprobe":
            expect_eq(f"{v}: constraint (exact, from oom_control)", e.get("constraint"), "memcg")
        else:
            expect_eq(f"{v}: constraint (from the kernel stack)", e.get("constraint"), "memcg")
        if v != "tracepoint" or new_mv:
            # kprobe, tp_btf: read from the live victim; tracepoint: from the 6.9 tracepoint's fields
            expect_eq(f"{v}: uid", e.get("uid"), 0)
            expect_eq(f"{v}: oom_score_adj", e.get("oom_score_adj"), 0)
            expect_rss(f"{v}: anon rss close to the limit", e.get("anon_rss_bytes"))
        else:
            # pid-only tracepoint: the rest comes from the exiting task, whose mm is gone by then
            note(f"{v}: not asserted on a pid-only mark_victim: uid={e.get('uid')!r} "
                 f"anon_rss={e.get('anon_rss_bytes')!r} total_vm={e.get('total_vm_bytes')!r} "
                 f"oom_score_adj={e.get('oom_score_adj')!r}")
        note(f"{v}: memcg_usage_bytes={e.get('memcg_usage_bytes')!r}")

    # --- memory.oom.group kills: every process reported, by every variant
    def metrics_of(name):
        kills, lost, records = 0.0, None, None
        for l in blocks.get(f"{name}.metrics", []):
            m = re.match(r'(\w+)(\{[^}]*\})? (\S+)$', l.strip())
            if not m: continue
            val = float(m.group(3))
            if m.group(1) == "ksight_oom_kills_total": kills += val
            elif m.group(1) == "ksight_ringbuf_lost_total": lost = val
            elif m.group(1) == "ksight_ringbuf_records_total": records = val
        return kills, lost, records

    def pending_counts(name):
        # bpftool's JSON dump of every oom_bpf.bss map (ksight run's and ksight trace's)
        text = "".join(blocks.get(f"{name}.bss", []))
        return [int(x) for x in re.findall(r'"oom_pending_count":\s*(\d+)', text)]

    def group_events(name):
        evs = []
        for l in [l for l in blocks.get(f"{name}.out", []) if l.strip()]:
            try: evs.append(json.loads(l))
            except ValueError: not_ok(f"{name}: trace line is JSON: {l!r}")
        return evs

    sleepers = int(conf["GROUP_SLEEPERS"])
    current.clear()
    for v in variants:
        current[:] = [f"oom/mark_victim={v}"]
        name = f"group-{v}"
        gcid = conf["GCID_" + v]
        cgroup = f"/kubepods/burstable/pod{pod_uid}/{gcid}"
        if fact(f"group {name} variant ") is None:
            not_ok(f"{name}: the guest ran the group kill"); continue
        # memory.events has counted oom_group_kill since 5.14; before, the kernel's marks say it
        if fact(f"group {name} oom_group_kill ") == "" and kv < (5, 14):
            note(f"{name}: memory.events has no oom_group_kill before 5.14: the marks below count the group")
        else:
            expect_eq(f"{name}: the kernel killed the group (memory.events oom_group_kill)",
                      fact(f"group {name} oom_group_kill "), "1")
        expect_eq(f"{name}: every sleeper died", fact(f"group {name} sleepers_left "), "0")
        marks = int(fact(f"group {name} marks ") or -1)
        expect_eq(f"{name}: the kernel marked {sleepers + 1} victims (ftrace mark_victim)", marks, sleepers + 1)
        note(f"{name}: memory.events oom_kill {fact(f'group {name} oom_kill ')}")
        evs = group_events(name)
        expect_eq(f"{name}: exactly {sleepers + 1} events", len(evs), sleepers + 1)
        pids = sorted(e.get("pid") for e in evs)
        expect_eq(f"{name}: {sleepers + 1} distinct pids", len(set(pids)), sleepers + 1)
        victim = ((fact(f"group {name} victim ") or "").split() or [None])[0]
        if victim and victim.isdigit() and int(victim) in pids: ok(f"{name}: memhog is among them")
        else: not_ok(f"{name}: memhog ({victim}) is among them ({pids})")
        expect_eq(f"{name}: comms", sorted(e.get("comm") for e in evs), sorted(["memhog"] + ["sleep"] * sleepers))
        expect_eq(f"{name}: every event in the group's cgroup", sorted(set(e.get("cgroup") for e in evs)), [cgroup])
        expect_eq(f"{name}: every event in the pod", sorted(set(e.get("pod_uid") for e in evs)), [pod_uid])
        expect_eq(f"{name}: every constraint memcg", sorted(set(e.get("constraint") for e in evs)), ["memcg"])
        kills, lost, records = metrics_of(name)
        expect_eq(f"{name}: ksight_oom_kills_total", kills, float(sleepers + 1))
        expect_eq(f"{name}: no record lost", lost, 0.0)
        expect_eq(f"{name}: ring-buffer records", records, float(sleepers + 1))
        if v == "tracepoint":
            expect_eq(f"{name}: oom_pending_count back to 0 in both ksight instances", pending_counts(name), [0, 0])
        expect_eq(f"{name}: ksight trace exits 0", fact(f"group {name} trace_exit "), "0")
        expect_eq(f"{name}: ksight run exits 0", fact(f"group {name} run_exit "), "0")

    current.clear()

    # --- more victims at once than the tracepoint variant can hold: every one accounted for
    n_over, cap = int(conf["OVERFLOW_SLEEPERS"]) + 1, int(conf["OVERFLOW_PENDING"])
    name = "overflow"
    current[:] = ["oom/mark_victim=tracepoint"]
    if fact(f"group {name} variant ") is None:
        not_ok(f"{name}: the guest ran the overflow kill")
    else:
        expect_eq(f"{name}: every sleeper died", fact(f"group {name} sleepers_left "), "0")
        marks = int(fact(f"group {name} marks ") or -1)
        expect_eq(f"{name}: the kernel marked {n_over} victims (ftrace mark_victim)", marks, n_over)
        evs = group_events(name)
        kills, lost, records = metrics_of(name)
        note(f"{name}: {n_over} victims, room for {cap} waiting: {len(evs)} events, {records} records, {lost} lost")
        expect_eq(f"{name}: events == ring-buffer records", float(len(evs)), records)
        expect_eq(f"{name}: ksight_oom_kills_total == events", kills, float(len(evs)))
        expect_eq(f"{name}: records + lost == the kernel's marks", (records or 0) + (lost or 0), float(marks))
        # memhog allocates, is chosen and is current: reported at once; the others wait for their
        # exit, which none runs before the kill has marked them all (memhog is SCHED_FIFO on their CPU)
        expect_eq(f"{name}: lost: the victims beyond the room", lost, float(n_over - 1 - cap))
        expect_eq(f"{name}: records: memhog and as many as there is room for", records, float(cap + 1))
        expect_eq(f"{name}: {len(evs)} distinct pids", len(set(e.get("pid") for e in evs)), len(evs))
        expect_eq(f"{name}: oom_pending_count back to 0 in both ksight instances", pending_counts(name), [0, 0])

    # --- a group of 64 with the default room: every victim waits for its exit, none is lost
    n_big = int(conf["BIG_SLEEPERS"]) + 1
    name = "big"
    current[:] = ["oom/mark_victim=tracepoint"]
    if fact(f"group {name} variant ") is None:
        not_ok(f"{name}: the guest ran the 64-process group kill")
    else:
        expect_eq(f"{name}: every sleeper died", fact(f"group {name} sleepers_left "), "0")
        expect_eq(f"{name}: the kernel marked {n_big} victims (ftrace mark_victim)", fact(f"group {name} marks "), str(n_big))
        evs = group_events(name)
        kills, lost, records = metrics_of(name)
        note(f"{name}: {n_big} victims: {len(evs)} events, {records} records, {lost} lost")
        expect_eq(f"{name}: {n_big} events", len(evs), n_big)
        expect_eq(f"{name}: {n_big} distinct pids", len(set(e.get("pid") for e in evs)), n_big)
        expect_eq(f"{name}: ksight_oom_kills_total", kills, float(n_big))
        expect_eq(f"{name}: ring-buffer records", records, float(n_big))
        expect_eq(f"{name}: no record lost", lost, 0.0)
        expect_eq(f"{name}: oom_pending_count back to 0 in both ksight instances", pending_counts(name), [0, 0])


    current.clear()


def check_netdrop():
    # --- netdrop: what `ksight probes` says of kfree_skb, against the functions this kernel has
    syms = set(l.strip() for l in blocks.get("netdrop.syms", []) if l.strip())
    note(f"netdrop: drop functions in /proc/kallsyms: {' '.join(sorted(syms)) or 'none'}")
    # the drop function: kfree_skb before 5.17; kfree_skb_reason (5.17+), kfree_skb an inline
    # wrapper of it; sk_skb_reason_drop (6.11+), both others inline wrappers of it
    fn = "kfree_skb" if kv < (5, 17) else "kfree_skb_reason" if kv < (6, 11) else "sk_skb_reason_drop"
    expect_eq(f"netdrop: {fn} is this kernel's only drop function ({kv[0]}.{kv[1]})", sorted(syms), [fn])
    # drop reasons: the tracepoint's reason field, 5.17+
    fmt = "\n".join(blocks.get("kfree_skb.format", []))
    has_reason = re.search(r"field:[^;]* reason;", fmt) is not None
    expect_eq(f"netdrop: skb:kfree_skb has a reason field iff 5.17+ ({kv[0]}.{kv[1]})", has_reason, kv >= (5, 17))
    ran = (fact("netdrop variants ") or "").split()
    nsig = probes and next((s for s in probes.get("signals", []) if s.get("signal") == "netdrop"), None)
    kf = nsig and next((p for p in nsig.get("probes", []) if p.get("probe") == "kfree_skb"), None)
    if not kf:
        not_ok("probes: netdrop/kfree_skb is listed"); dump("probes")
    else:
        expect_eq("probes: netdrop is running", nsig.get("running"), True)
        expect_eq("probes: netdrop has no error", nsig.get("error"), None)
        var = {v["variant"]: v for v in kf.get("variants", [])}
        expect_eq("probes: netdrop/kfree_skb's variants", sorted(var),
                  sorted(["tp_btf", "tracepoint", "kprobe", "kprobe_5.17", "kprobe_old"]))
        tb = var.get("tp_btf", {})
        if has_reason:
            # the tracepoint passes the reason: tp_btf is first and attaches
            expect_eq("probes: kfree_skb takes tp_btf", kf.get("attached"), "tp_btf")
            expect_eq("probes: kfree_skb tp_btf is attached", tb.get("state"), "attached")
            expect_eq("probes: kfree_skb tracepoint is on standby", var.get("tracepoint", {}).get("state"), "standby")
        else:
            # no reason argument (before 5.17): tp_btf refused, saying why; the tracepoint counts
            expect_eq("probes: kfree_skb tp_btf is unsupported (no drop reason)", tb.get("state"), "unsupported")
            if "before 5.17" in (tb.get("reason") or ""): ok(f"probes: tp_btf's reason says before 5.17 ({tb.get('reason')!r})")
            else: not_ok(f"probes: tp_btf's reason says before 5.17 (got {tb.get('reason')!r})")
            expect_eq("probes: kfree_skb takes the tracepoint", kf.get("attached"), "tracepoint")
        usable = sorted(k for k, x in var.items() if x.get("state") in ("attached", "standby"))
        expect_eq("probes: the kfree_skb variants ksight can use are the ones this kernel has", usable, sorted(ran))
        for name, fn in (("kprobe", "sk_skb_reason_drop"), ("kprobe_5.17", "kfree_skb_reason"), ("kprobe_old", "kfree_skb")):
            st, why = var.get(name, {}).get("state"), var.get(name, {}).get("reason")
            if fn in syms:
                if st == "standby": ok(f"probes: kfree_skb {name} is on standby ({fn} exists)")
                else: not_ok(f"probes: kfree_skb {name} is on standby ({fn} exists; got {st!r}: {why!r})")
            elif st in ("attach_failed", "unsupported") and fn in (why or ""):
                ok(f"probes: kfree_skb {name} is {st} (no {fn} on this kernel: {why!r})")
            else:
                not_ok(f"probes: kfree_skb {name} is attach_failed or unsupported, naming {fn} (got {st!r}: {why!r})")
        # the TCP points raw: tcp_retransmit_skb's form with err where its record has err, else the old one
        rt_raw = ((fact("netdrop tcp variants ") or "").split() or ["?"])[0]
        has_err = any(re.search(r"field:[^;]* err;", l) for l in blocks.get("tcp_retransmit_skb.format", []))
        expect_eq("netdrop: the guest took tcp_retransmit_skb's raw form from its record",
                  rt_raw, "tp_btf" if has_err else "tp_btf_old")
        for p, want in (("tcp_retransmit", rt_raw), ("tcp_reset_out", "tp_btf"), ("tcp_reset_in", "tp_btf")):
            pp = next((x for x in nsig.get("probes", []) if x.get("probe") == p), {})
            expect_eq(f"probes: netdrop/{p} takes {want}", pp.get("attached"), want)
        pp = next((x for x in nsig.get("probes", []) if x.get("probe") == "tcp_retransmit"), {})
        other = "tp_btf_old" if has_err else "tp_btf"
        x = next((v for v in pp.get("variants", []) if v.get("variant") == other), {})
        expect_eq(f"probes: netdrop/tcp_retransmit {other} is unsupported, saying why ({x.get('reason')!r})",
                  (x.get("state"), "err argument" in (x.get("reason") or "")), ("unsupported", True))

    # --- netdrop: every forced kfree_skb variant counts each datagram to a closed port, as NoPorts does
    def snmp(lines, proto):
        # "Udp: InDatagrams NoPorts ..." then "Udp: 0 200 ...": the names, then the values
        rows = [l.split()[1:] for l in lines if l.startswith(proto + ":")]
        return dict(zip(rows[0], (int(x) for x in rows[1]))) if len(rows) >= 2 else {}

    n_sent = int(conf["NETDROP_COUNT"])
    want_reason = "NO_SOCKET" if has_reason else "unknown"
    for v in ran:
        tag = f"netdrop kfree_skb={v}"
        current[:] = [f"netdrop/kfree_skb={v}"]
        if fact(f"netdrop {v} port ") is None:
            not_ok(f"{tag}: the guest ran this variant"); continue
        ns = [l.strip() for l in blocks.get(f"netdrop-{v}.ns", []) if l.strip()]
        if fact(f"netdrop {v} unshare_exit ") != "0" or not ns or not re.match(r"net:\[\d+\]$", ns[0]):
            not_ok(f"{tag}: datagrams sent in a new network namespace (exit {fact(f'netdrop {v} unshare_exit ')!r})")
            for l in ns[:10]: note("  " + l)
            continue
        netns = ns[0]
        noports = snmp(ns, "Udp").get("NoPorts")
        series, probe_info = {}, {}
        for l in blocks.get(f"netdrop-{v}.metrics", []):
            m = re.match(r'(\w+)\{([^}]*)\} (\S+)$', l.strip())
            if not m: continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            if m.group(1) == "ksight_net_drops_total" and labels.get("netns") == netns:
                series[(labels.get("reason"), labels.get("protocol"))] = float(m.group(3))
            elif m.group(1) == "ksight_probe_info" and labels.get("probe") == "kfree_skb":
                probe_info[labels.get("variant")] = labels.get("state")
        # forced: the others are disabled, this one attached
        expect_eq(f"{tag}: the forced variant is the only one attached",
                  sorted(k for k, st in probe_info.items() if st == "attached"), [v])
        got = series.get((want_reason, "udp"))
        if noports == n_sent and got == float(n_sent):
            ok(f"{tag}: {want_reason}/udp {int(got)} = NoPorts {noports} ({netns})")
        else:
            not_ok(f"{tag}: {want_reason}/udp {got!r} = NoPorts {noports!r} = {n_sent} sent ({netns})")
            dump(f"netdrop-{v}.metrics"); dump(f"netdrop-{v}.run.err")
        others = {f"{r}/{p}": n for (r, p), n in series.items() if (r, p) != (want_reason, "udp")}
        expect_eq(f"{tag}: no other drop counted in that namespace", others, {})
        expect_eq(f"{tag}: ksight run exits 0 on SIGTERM", fact(f"netdrop {v} run_exit "), "0")

    # --- netdrop: TCP retransmits, each variant forced, against the namespace's own RetransSegs
    for rv in (fact("netdrop tcp variants ") or "").split():
        ns = [l.strip() for l in blocks.get(f"netdrop-tcp-{rv}.ns", []) if l.strip()]
        tag = f"netdrop tcp_retransmit={rv}"
        current[:] = [f"netdrop/tcp_retransmit={rv}"]
        if fact(f"netdrop tcp {rv} unshare_exit ") is None:
            not_ok(f"{tag}: the guest ran the SYN retransmits")
            dump(f"netdrop-tcp-{rv}.run.err")
            continue
        if fact(f"netdrop tcp {rv} unshare_exit ") != "0" or len(ns) < 3 or not re.match(r"net:\[\d+\]$", ns[0]) \
                or ns[1] != "established":
            not_ok(f"{tag}: SYNs retried against a full accept queue in a new namespace")
            for l in ns[:10]: note("  " + l)
            continue
        netns = ns[0]
        note(f"{tag}: the second connection after {conf['NETDROP_SYN_SECONDS']}s: {ns[2]}")
        kernel = snmp(ns, "Tcp").get("RetransSegs")
        mlines = [l for l in blocks.get(f"netdrop-tcp-{rv}.metrics", []) if l.strip()]
        info = series_of(mlines, "ksight_probe_info")
        att = sorted(dict(l)["variant"] for l in info if dict(l).get("probe") == "tcp_retransmit"
                     and dict(l).get("state") == "attached")
        expect_eq(f"{tag}: the forced variant is the only one attached", att, [rv])
        got = next((x for l, x in series_of(mlines, "ksight_tcp_retransmits_total").items()
                    if dict(l).get("netns") == netns), None)
        # at least one: a check that 0 == 0 would prove nothing
        if isinstance(kernel, int) and kernel >= 1 and got == float(kernel):
            ok(f"{tag}: ksight_tcp_retransmits_total {int(got)} = RetransSegs {kernel} ({netns})")
        else:
            not_ok(f"{tag}: ksight_tcp_retransmits_total {got!r} = RetransSegs {kernel!r} >= 1 ({netns})")
            dump(f"netdrop-tcp-{rv}.metrics")
        misses = series_of(mlines, "ksight_bpf_program_misses_total")
        expect_eq(f"{tag}: ksight_bpf_program_misses_total is exported for every loaded program",
                  len(misses) >= 1, True)
        expect_eq(f"{tag}: ksight run exits 0 on SIGTERM", fact(f"netdrop tcp {rv} run_exit "), "0")

    current.clear()


def check_fserr():
    have = set(l.strip() for l in blocks.get("fserr.have", []) if l.strip())
    note(f"fserr: this kernel has {' '.join(sorted(have)) or 'none of its hooks'}")
    # block:block_rq_error came with 5.18 (before: block_rq_complete with an error)
    expect_eq(f"fserr: block:block_rq_error exists iff 5.18+ ({kv[0]}.{kv[1]})",
              "block/block_rq_error" in have, kv >= (5, 18))
    # --- ksight probes against what the kernel has
    sig, _, _ = probe_of("fserr", "ext4_error")
    if not sig:
        not_ok("probes: fserr is listed"); dump("probes")
    else:
        expect_eq("probes: fserr is running", sig.get("running"), True)
        expect_eq("probes: fserr has no error", sig.get("error"), None)
        if blocks.get("fserr.verbose"):
            note("fserr: the kernel refused a program; libbpf says:"); dump("fserr.verbose", 60)
    def states(point):
        _, p, var = probe_of("fserr", point)
        return (p or {}).get("attached"), {k: (x.get("state"), x.get("reason") or "") for k, x in var.items()}
    def expect_state(point, variant, want, why_has=None):
        _, var = states(point)
        st, why = var.get(variant, (None, ""))
        if st in want and (why_has is None or why_has in why):
            ok(f"probes: fserr/{point} {variant} is {st}" + (f" ({why!r})" if why else ""))
        else:
            not_ok(f"probes: fserr/{point} {variant} is {'/'.join(want)}" +
                   (f" naming {why_has}" if why_has else "") + f" (got {st!r}: {why!r})")
    usable = ("attached", "standby")
    gone = ("unsupported", "attach_failed")
    expect_state("ext4_error", "tracepoint", ("attached",))
    if "__ext4_error" in have: expect_state("ext4_error", "kprobe", usable)
    else: expect_state("ext4_error", "kprobe", gone, "__ext4_error")
    if "block/block_rq_error" in have:
        expect_state("block_error", "tracepoint", ("attached",))
        expect_state("block_error", "complete", ("standby",))
    else:
        expect_state("block_error", "tracepoint", gone, "block_rq_error")
        expect_state("block_error", "complete", ("attached",))
    if "xfs-loaded" not in have:
        note("fserr: the xfs module did not load: its points must say so")
        expect_state("xfs_shutdown", "tracepoint", gone, "xfs")
    else:
        if "xfs/xfs_force_shutdown" not in have: expect_state("xfs_shutdown", "tracepoint", gone, "xfs_force_shutdown")
        elif "xfs-btf" not in have: expect_state("xfs_shutdown", "tracepoint", ("unsupported",), "/sys/kernel/btf/xfs")
        else: expect_state("xfs_shutdown", "tracepoint", ("attached",))
        if "xfs_do_force_shutdown" not in have: expect_state("xfs_shutdown", "kprobe", gone, "xfs_do_force_shutdown")
        elif "xfs-btf" not in have:
            # kprobe attach is decided by trying, but its program reads xfs_mount: without the
            # module's BTF ksight must rule it out before load, and say why
            expect_state("xfs_shutdown", "kprobe", ("unsupported",), "/sys/kernel/btf/xfs")
        else: expect_state("xfs_shutdown", "kprobe", usable)
    for point in ("ext4_shutdown", "xfs_fs", "xfs_inode", "xfs_btree", "xfs_group"):
        att, var = states(point)
        note(f"probes: fserr/{point} takes {att}: " + ", ".join(f"{k}={s}" for k, (s, _) in var.items()))

    def metric_lines(name): return [l for l in blocks.get(name, []) if l.strip()]
    def errors(name, device, kind, fstype=None):
        """ksight_fs_errors_total of one device and kind (every source), and the sources"""
        total, sources = 0.0, set()
        for lab, v in series_of(metric_lines(name), "ksight_fs_errors_total").items():
            d = dict(lab)
            if d.get("device") == device and d.get("kind") == kind and (fstype is None or d.get("fstype") == fstype):
                total += v; sources.add(d.get("source"))
        return total, sorted(sources)
    def forced(name, point, v):
        att = sorted(dict(l)["variant"] for l in series_of(metric_lines(name), "ksight_probe_info")
                     if dict(l).get("probe") == point and dict(l).get("state") == "attached")
        expect_eq(f"{name}: the forced variant is the only one of {point} attached", att, [v])
    def records(name):
        out = []
        for l in blocks.get(f"{name}.trace", []):
            if l.startswith("{"):
                try: out.append(json.loads(l))
                except ValueError: not_ok(f"{name}: trace line is JSON: {l!r}")
        return out
    def exits(name):
        expect_eq(f"{name}: ksight trace exits 0", fact(f"fserr {name} trace_exit "), "0")
        expect_eq(f"{name}: ksight run exits 0", fact(f"fserr {name} run_exit "), "0")

    # --- ext4: every error the superblock counts, counted once
    dev = (fact("fserr ext4 device ") or "? ?").split()
    ext4, ext4_mm = dev[0], dev[1] if len(dev) > 1 else "?"
    ran = (fact("fserr ext4 variants ") or "").split()
    expect_eq("fserr ext4: the ext4_error variants run are the ones this kernel has", ran,
              ["tracepoint"] + (["kprobe"] if "__ext4_error" in have else []))
    logline = next((l for l in blocks.get("fserr-ext4.log", []) if "EXT4-fs error" in l), "")
    m = re.search(r"\(device [^)]*\): (\w+):(\d+):", logline)
    want_fn, want_line = (m.group(1), int(m.group(2))) if m else (None, None)
    for v in ran:
        name = f"fserr-ext4-{v}"
        current[:] = [f"fserr/ext4_error={v}"]
        c = (fact(f"fserr {name} errors_count ") or "").split()
        if len(c) != 2:
            not_ok(f"{name}: the guest read the corrupted directory"); continue
        c0, c1 = int(c[0]), int(c[1])
        forced(f"{name}.before", "ext4_error", v)
        before, _ = errors(f"{name}.before", ext4, "corruption", "ext4")
        after, sources = errors(f"{name}.after", ext4, "corruption", "ext4")
        rec = series_of(metric_lines(f"{name}.before"), "ksight_fs_recorded_errors")
        rec = next((x for l, x in rec.items() if dict(l).get("device") == ext4), None)
        expect_eq(f"{name}: ksight_fs_recorded_errors at start = the superblock's errors_count", rec, float(c0))
        if c1 > c0 and after - before == c1 - c0:
            ok(f"{name}: ksight_fs_errors_total grew by the errors_count delta ({int(after - before)}; sources {sources})")
        else:
            not_ok(f"{name}: ksight_fs_errors_total delta {after - before} = errors_count delta {c1 - c0} > 0")
            dump(f"{name}.after"); dump(f"{name}.run.err")
        recs = [r for r in records(name) if r.get("device") == ext4]
        if not recs:
            not_ok(f"{name}: ksight trace printed a record of {ext4}"); dump(f"{name}.trace"); continue
        r = recs[0]
        expect_eq(f"{name}: record: kind, fstype, mount point", (r.get("kind"), r.get("fstype"), r.get("mountpoints")),
                  ("corruption", "ext4", ["/mnt/ext4"]))
        expect_eq(f"{name}: record: major:minor decoded the kernel's way", f"{r.get('major')}:{r.get('minor')}", ext4_mm)
        if want_fn:
            expect_eq(f"{name}: record: function:line as the kernel log says", (r.get("function"), r.get("line")),
                      (want_fn, want_line))
        note(f"{name}: source {r.get('source')!r}, {len(recs)} records")
        exits(name)
    current.clear()

    # --- block I/O errors: ENOSPC from a loop device on a full tmpfs
    dev = (fact("fserr io device ") or "? ?").split()
    io = dev[0]
    ran = (fact("fserr io variants ") or "").split()
    expect_eq("fserr io: the block_error variants run are the ones this kernel has", ran,
              (["tracepoint"] if "block/block_rq_error" in have else []) + ["complete"])
    for v in ran:
        name = f"fserr-io-{v}"
        current[:] = [f"fserr/block_error={v}"]
        if fact(f"fserr {name} dd_exit ") is None:
            not_ok(f"{name}: the guest wrote to the loop device"); continue
        check_nonzero = fact(f"fserr {name} dd_exit ") != "0"
        if check_nonzero: ok(f"{name}: the O_DIRECT write failed")
        else: not_ok(f"{name}: the O_DIRECT write failed (dd exited 0)")
        forced(f"{name}.after", "block_error", v)
        want_src = "block_rq_error" if v == "tracepoint" else "block_rq_complete"
        mm = dev[1] if len(dev) > 1 else "?"
        # the kernel's failed requests on that device: "7,1 WS () 16384 + 2048 [-28]" (error last)
        names = {5: "EIO", 28: "ENOSPC", 61: "ENODATA", 110: "ETIMEDOUT", 95: "EOPNOTSUPP"}
        failed_rq = []
        for l in blocks.get(f"{name}.ftrace", []):
            m = re.search(r"(block_rq_\w+): (\d+),(\d+) .*\[(-?\d+)\]\s*$", l)
            if m and m.group(1) == want_src and f"{m.group(2)}:{m.group(3)}" == mm and int(m.group(4)) != 0:
                failed_rq.append(names.get(-int(m.group(4)), m.group(4)))
        note(f"{name}: the kernel's failed requests on {io} ({want_src}, ftrace): {failed_rq}")
        got, sources = errors(f"{name}.after", io, "io")
        recs = [r for r in records(name) if r.get("device") == io]
        if failed_rq and got == len(failed_rq) and len(recs) == got:
            ok(f"{name}: {int(got)} io errors counted on {io} = the kernel's failed requests, one record each ({sources})")
        else:
            not_ok(f"{name}: io errors counted on {io} = the kernel's {len(failed_rq)} failed requests > 0, "
                   f"one record each (got {got}, {len(recs)} records)")
            dump(f"{name}.after"); dump(f"{name}.run.err")
        expect_eq(f"{name}: the records: io, the kernel's errno, from {want_src}, {mm}",
                  sorted((r.get("kind"), r.get("errno"), r.get("source"), f"{r.get('major')}:{r.get('minor')}")
                         for r in recs), sorted(("io", e, want_src, mm) for e in failed_rq))
        exits(name)
    current.clear()

    # --- XFS: corruption as the kernel's own health events count it, one shutdown
    ran = (fact("fserr xfs variants ") or "").split()
    if "xfs-loaded" not in have:
        expect_eq("fserr xfs: nothing run without the xfs module", ran, [])
        return
    xdev = (fact("fserr xfs device ") or "? ?").split()
    xfs = xdev[0]
    expect_eq("fserr xfs: xfs_db corrupted the directory block", fact("fserr xfs xfs_db_exit "), "0")
    expect_eq("fserr xfs: the xfs_shutdown variants run are the ones this kernel has", ran,
              (["tracepoint"] if "xfs/xfs_force_shutdown" in have else []) +
              (["kprobe"] if "xfs_do_force_shutdown" in have else []))
    if "xfs-btf" not in have:
        # every xfs hook reads xfs's own types (xfs_mount, its tracepoints' records), which
        # CO-RE finds only in the module's BTF (/sys/kernel/btf/xfs, 5.11+): without it the
        # programs load, attach, and count nothing. ksight must say so, not "attached".
        for point in ("xfs_shutdown", "xfs_fs", "xfs_inode", "xfs_btree", "xfs_group"):
            att, var = states(point)
            with proving(f"fserr/{point}=no-module-btf"):
                if att is None: ok(f"probes: fserr/{point} is not attached without xfs module BTF")
                else: not_ok(f"probes: fserr/{point} says {att} is in use, but without xfs module BTF "
                             f"(/sys/kernel/btf/xfs, 5.11+) its programs cannot read the device: it must be unsupported")
    for v in ran:
        name = f"fserr-xfs-{v}"
        current[:] = [f"fserr/xfs_shutdown={v}"]
        if "xfs-btf" not in have:
            note(f"{name}: not counted: no xfs module BTF on this kernel (see above)")
            continue
        if fact(f"fserr {name} ls_exit ") is None:
            not_ok(f"{name}: the guest read the corrupted directory"); continue
        note(f"{name}: ls of the corrupted directory exits {fact(f'fserr {name} ls_exit ')}")
        expect_eq(f"{name}: xfs_io shutdown exits 0", fact(f"fserr {name} shutdown_exit "), "0")
        forced(f"{name}.after", "xfs_shutdown", v)
        ft = [l for l in blocks.get(f"{name}.ftrace", []) if l.strip()]
        health = [l for l in ft if "force_shutdown:" not in l]
        got, sources = errors(f"{name}.after", xfs, "corruption", "xfs")
        kinds = " ".join(sorted(set(re.findall(r"(xfs_\w+):", " ".join(health)))))
        note(f"{name}: the kernel's xfs health events: {len(health)} ({kinds})")
        if len(health) == 0:
            # nothing to match: the corruption points are not proven by this kernel
            note(f"{name}: this kernel reports no health event for a bad directory block: ksight must count none")
        # proven (in the summary) only where the kernel reported some
        # the points that fired (xfs_inode_mark_sick -> xfs_inode, xfs_ag_* -> xfs_group), with the
        # variant ksight used for each
        pts = sorted(set({"ag": "xfs_group", "group": "xfs_group"}.get(k.split("_")[1], "xfs_" + k.split("_")[1])
                         for k in kinds.split()))
        for pt in pts: current.append(f"fserr/{pt}={states(pt)[0]}")
        expect_eq(f"{name}: corruption counted as the kernel's health events count it ({sources})", got, float(len(health)))
        current[:] = [f"fserr/xfs_shutdown={v}"]
        shut, ssrc = errors(f"{name}.after", xfs, "shutdown", "xfs")
        expect_eq(f"{name}: exactly one shutdown ({ssrc})", shut, 1.0)
        if "xfs/xfs_force_shutdown" in have:
            expect_eq(f"{name}: the kernel's xfs_force_shutdown events", sum(1 for l in ft if "force_shutdown:" in l), 1)
        recs = [r for r in records(name) if r.get("device") == xfs and r.get("kind") == "shutdown"]
        expect_eq(f"{name}: one shutdown record, on /mnt/xfs", [r.get("mountpoints") for r in recs], [["/mnt/xfs"]])
        exits(name)
    current.clear()

def check_apilat():
    have = set(l.strip() for l in blocks.get("apilat.have", []) if l.strip())
    note(f"apilat: this kernel has {' '.join(sorted(have)) or 'none of its hooks'}")
    # sock_send_length/sock_recv_length came with 6.3
    expect_eq(f"apilat: sock:sock_send_length exists iff 6.3+ ({kv[0]}.{kv[1]})",
              "sock/sock_send_length" in have, kv >= (6, 3))
    # the variants of each point this kernel can take, from what it has (the guest ran these)
    can = {
        "send": [v for v, ok_ in (("sockops", "cgroup2-root" in have),
                                  ("tp_btf", "sock/sock_send_length" in have),
                                  ("tracepoint", "sock/sock_send_length" in have),
                                  ("kprobe", "tcp_sendmsg" in have)) if ok_],
        "recv": [v for v, ok_ in (("ingress", "cgroup2-root" in have),
                                  ("segment", "tcp/tcp_probe" in have),
                                  ("tp_btf", "sock/sock_recv_length" in have),
                                  ("tracepoint", "sock/sock_recv_length" in have),
                                  ("kprobe", "tcp_cleanup_rbuf" in have)) if ok_],
        "rtt": [v for v, ok_ in (("sockops", "cgroup2-root" in have),
                                 ("tp_btf", "tcp/tcp_probe" in have),
                                 ("tracepoint", "tcp_probe-skaddr" in have),
                                 ("kprobe", "tcp_rcv_established" in have)) if ok_],
    }
    for t in ("sock/inet_sock_set_state", "tcp/tcp_retransmit_skb", "tcp/tcp_probe"):
        if t in have: ok(f"apilat: the kernel has {t}")
        else: not_ok(f"apilat: the kernel has {t}")

    # --- ksight probes against what the kernel has
    sig, _, _ = probe_of("apilat", "send")
    if not sig:
        not_ok("probes: apilat is listed"); dump("probes")
    else:
        expect_eq("probes: apilat is running", sig.get("running"), True)
        expect_eq("probes: apilat has no error", sig.get("error"), None)
        for point, want in can.items():
            _, p, var = probe_of("apilat", point)
            usable = [v for v in ("sockops", "ingress", "segment", "tp_btf", "tracepoint", "kprobe")
                      if var.get(v, {}).get("state") in ("attached", "standby")]
            expect_eq(f"probes: apilat/{point}: the variants ksight can use are the ones this kernel has",
                      usable, want)
            if usable != want and blocks.get("apilat.verbose"):
                note("apilat: the kernel refused a program; libbpf says:"); dump("apilat.verbose", 60)
            expect_eq(f"probes: apilat/{point} takes the first of them", (p or {}).get("attached"),
                      want[0] if want else None)
            for v, x in var.items():
                if v not in want:
                    note(f"probes: apilat/{point} {v} is {x.get('state')}: {x.get('reason')!r}")
        if "tcp_probe-skaddr" not in have:
            _, _, var = probe_of("apilat", "rtt")
            x = var.get("tracepoint", {})
            expect_eq("probes: apilat/rtt tracepoint is unsupported, naming skaddr (its record has none here)",
                      (x.get("state"), "skaddr" in (x.get("reason") or "")), ("unsupported", True))
        # adopt: two iterators; bpf_sock_from_file came with 5.11, bpf_setsockopt in a tcp iterator with 5.15
        # (5.11-5.14 refuse to load it: no guest runs one)
        _, p, var = probe_of("apilat", "adopt")
        it = var.get("iter", {})
        if kv >= (5, 15):
            expect_eq("probes: apilat/adopt takes iter (5.15+)", (p or {}).get("attached"), "iter")
        elif kv < (5, 11):
            expect_eq("probes: apilat/adopt iter is unsupported before 5.11, naming bpf_sock_from_file",
                      (it.get("state"), "bpf_sock_from_file" in (it.get("reason") or "")), ("unsupported", True))
        # raw: tcp_retransmit_skb's form with err where its record has err, else the old one
        rt_raw = fact("apilat retransmit raw ")
        for point, want in (("sock_state", "tp_btf"), ("retransmit", rt_raw)):
            _, p, _ = probe_of("apilat", point)
            expect_eq(f"probes: apilat/{point} takes {want}", (p or {}).get("attached"), want)
            _, _, var = probe_of("apilat", point)
            expect_eq(f"probes: apilat/{point}'s tracepoint is on standby",
                      var.get("tracepoint", {}).get("state"), "standby")

    # --- one run per variant name, every point that has it forced to it
    n_req = int(conf["APILAT_N"])
    delays = [float(d) for d in conf["APILAT_DELAYS"].split()]
    families = (fact("apilat families ") or "").split()
    expect_eq("apilat: the guest's loopback has ::1 (both families run)", families, ["4", "6"])
    # the run a variant name gives each point ("sockops": recv's per-cgroup program with it)
    def variant_of(pt, run):
        return "ingress" if (pt, run) == ("recv", "sockops") else run
    runs = [v for v in ("sockops", "tp_btf", "tracepoint", "kprobe")
            if any(variant_of(pt, v) in c for pt, c in can.items())]
    ran = [f.split()[2] for f in facts if f.startswith("apilat run ") and f.split()[3:4] == ["forced"]]
    expect_eq("apilat: the runs are the variant names this kernel has", ran, runs)

    def kv_line(line):
        return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}

    for v in runs:
        forced = (fact(f"apilat run {v} forced") or "").split()
        tcp_forced = (fact(f"apilat run {v} tcp ") or "").split()  # sock_state's and retransmit's variants
        tcp_pairs = list(zip(("sock_state", "retransmit"), tcp_forced))
        current[:] = [f"apilat/{pt}={variant_of(pt, v)}" for pt in forced] + [f"apilat/{pt}={pv}" for pt, pv in tcp_pairs]
        tag = f"apilat {v} ({' '.join(forced)})"
        expect_eq(f"{tag}: the points forced are those with a {v} variant here",
                  forced, [pt for pt in ("send", "recv", "rtt") if variant_of(pt, v) in can[pt]])
        mlines = [l for l in blocks.get(f"apilat-{v}.metrics", []) if l.strip()]
        if not mlines:
            not_ok(f"{tag}: ksight run was scraped"); dump(f"apilat-{v}.run.err"); continue
        text = "\n".join(mlines)
        # forced: that variant alone attached for each forced point
        info = series_of(mlines, "ksight_probe_info")
        for pt, pv in [(pt, variant_of(pt, v)) for pt in forced] + tcp_pairs:
            att = sorted(dict(l)["variant"] for l in info if dict(l).get("probe") == pt and dict(l).get("state") == "attached")
            expect_eq(f"{tag}: ksight_probe_info: {pt} uses {pv} alone", att, [pv])

        def sel(comm):
            return f'namespace="",pod="",container="",comm="{comm}"'
        def hist(family, comm):
            return parse_buckets(text, f"{family}{{{sel(comm)}}}")
        def count(family, comm):
            b = hist(family, comm)
            return int(b[-1][1]) if b else 0
        def counter(family, comm, extra=""):
            got = series_of(mlines, family)
            want = set(re.findall(r'(\w+)="([^"]*)"', sel(comm) + extra))
            return next((x for l, x in got.items() if set(l) == want), None)
        # where the kernel's turn starts: kprobe/tcp_sendmsg at the send's entry (the client's time
        # from before its send()), the sock_send_length tracepoints after the protocol's sendmsg
        # returned (its time from send()'s return: under TCG loopback delivers the request to the
        # server in the sender's own softirq, which can take milliseconds)
        send_variant = variant_of("send", v) if "send" in forced else (can["send"] or [None])[0]
        ref_key, ref_what = ("", "before the send") if send_variant == "kprobe" else ("_sent", "from the send's return")
        # where it ends: recv=ingress and segment when the first byte reached the socket (the
        # client's kernel receive timestamp of it), the other variants when the client read it
        recv_variant = variant_of("recv", v) if "recv" in forced else (can["recv"] or [None])[0]
        rx = "_rx" if recv_variant in ("ingress", "segment") else ""
        if rx:
            ref_what += ", to its arrival"
        # Where the quantile is not within tol of that reference, the bracket: each sample of ksight's
        # lies between two of the client's, whatever the variants. Its start is inside send() (no
        # later than its return), its end when the first byte reached the socket (recv=segment: when
        # TCP took it in, later when the client held the socket) or was read: no earlier than the
        # arrival (the receive timestamp), no later than the read's return. So its quantiles lie
        # between the client's from send()'s return to the arrival (*_rx_sent) and from before the
        # send to the read's return (each +-tol): a list whose values are each above (below) their
        # twins' has each order statistic above (below) the twins'. Under TCG, with the other guest
        # on the same cores, a syscall's entry can take ~1 ms and the client can wake milliseconds
        # after its answer arrived, which moves a p99 of 30 samples (their maximum).
        def within(name, got, c, key, tol):
            refs = [float(c[k]) for k in (key, key + "_sent", key + "_rx_sent") if k in c]
            key += rx if key + rx in c else ""
            want, other = float(c[key + ref_key]), float(c[key + ("_sent" if not ref_key else "")])
            lo, hi = min([want, other] + refs), max([want, other] + refs)
            if got is not None and not math.isnan(got) and abs(got - want) / want <= tol:
                ok(f"{name}: {got * 1e3:.3f} ms vs {want * 1e3:.3f} ms ({ref_what}, send={send_variant}): "
                   f"{(got - want) / want:+.1%} (the other: {other * 1e3:.3f} ms)")
            elif got is not None and not math.isnan(got) and lo * (1 - tol) <= got <= hi * (1 + tol):
                ok(f"{name}: {got * 1e3:.3f} ms, inside the send() call and the wake-up to the read: between "
                   f"{lo * 1e3:.3f} and {hi * 1e3:.3f} ms (the client's references, +-{tol:.0%}; send={send_variant})")
            else:
                not_ok(f"{name}: {got!r} vs {want!r} ({ref_what}, send={send_variant}; the other: {other!r}), "
                       f"more than {tol:.0%} off, and not between the client's bounds {lo!r} and {hi!r}")

        clients = {}
        for l in blocks.get(f"apilat-{v}.clients", []):
            w = l.split(None, 2)
            if len(w) == 3:
                clients.setdefault(w[1], {}).update(kv_line(w[2]))
                if w[2].startswith("latencies="): clients[w[1]]["latencies"] = w[2][len("latencies="):]
        server_requests = 0
        for f in families:
            for d in delays:
                comm = f"apl-{f}-{d:g}"
                name = f"{tag} IPv{f} {d:g} ms"
                c = clients.get(comm, {})
                if fact(f"apilat {v} client {f} {d:g} exit ") != "0" or "n" not in c:
                    not_ok(f"{name}: the client ran ({fact(f'apilat {v} client {f} {d:g} exit ')!r}: {c})"); continue
                server_requests += n_req
                note(f"{name}: the client: p50 {float(c['p50']) * 1e3:.3f} ms ({float(c['p50_sent']) * 1e3:.3f} from "
                     f"the send's return), p99 {float(c['p99']) * 1e3:.3f} ms ({float(c['p99_sent']) * 1e3:.3f}), srtt "
                     f"{float(c['rtt_min']) * 1e3:.3f}..{float(c['rtt_max']) * 1e3:.3f} ms; "
                     f"latencies {c.get('latencies', '')[:200]}")
                rf = "ksight_apiserver_response_duration_seconds"
                expect_eq(f"{name}: response samples == the {n_req} requests (the first turn apart)",
                          count(rf, comm), n_req)
                expect_eq(f"{name}: one first turn (the TLS handshake's place) in the handshake histogram",
                          count("ksight_apiserver_tls_handshake_duration_seconds", comm), 1)
                expect_eq(f"{name}: requests_total", counter("ksight_apiserver_requests_total", comm), float(n_req))
                expect_eq(f"{name}: sent bytes == the client's", counter("ksight_apiserver_sent_bytes_total", comm),
                          float(c["sent"]))
                expect_eq(f"{name}: received bytes == the client's",
                          counter("ksight_apiserver_received_bytes_total", comm), float(c["received"]))
                expect_eq(f"{name}: one connect", count("ksight_apiserver_connect_duration_seconds", comm), 1)
                b = hist(rf, comm)
                for q, key in ((0.5, "p50"), (0.99, "p99")):
                    within(f"{name}: histogram_quantile({q}) vs the client's {key}", histogram_quantile(q, b), c, key, 0.15)
                if "rtt" in forced:
                    rb = hist("ksight_apiserver_rtt_seconds", comm)
                    lo, hi = float(c["rtt_min"]), float(c["rtt_max"])
                    # the buckets holding samples: (lower bound, upper bound]
                    seen = [(rb[i - 1][0] if i else 0.0, le) for i, (le, cum) in enumerate(rb)
                            if cum > (rb[i - 1][1] if i else 0.0)]
                    n_rtt = int(rb[-1][1]) if rb else 0
                    # the kernel's srtt before a segment's ACK is processed, the socket's after the
                    # connect and after each answer: the same smoothed value at other moments
                    if n_rtt >= 1 and seen[0][1] >= lo / 1.25 and seen[-1][0] <= hi * 1.25:
                        ok(f"{name}: {n_rtt} RTT samples, in {seen[0][0] * 1e3:.3f}..{seen[-1][1] * 1e3:.3f} ms, "
                           f"the socket's srtt in {lo * 1e3:.3f}..{hi * 1e3:.3f} ms")
                    else:
                        not_ok(f"{name}: RTT samples ({n_rtt}) in the buckets {seen} within the socket's srtt "
                               f"{lo}..{hi} s (25% slack)")

        # a connection open before ksight started (the per-connection run): adopted where the kernel
        # lets it ask for the sockops callbacks (6.12+), its N requests after that measured, its
        # bytes from then on exact; before 6.12 the kernel refuses and the log says why
        if v == "sockops":
            c = clients.get("apl-held", {})
            name = f"{tag} adopted"
            err = "\n".join(blocks.get(f"apilat-{v}.run.err", []))
            if fact(f"apilat {v} held exit ") != "0" or "n" not in c:
                not_ok(f"{name}: the held client ran ({fact(f'apilat {v} held exit ')!r}: {c})")
            elif kv >= (6, 12):
                current.append("apilat/adopt=iter")
                server_requests += n_req
                # the client's end and the one the server accepted
                expect_eq(f"{name}: the log says 2 connections are followed",
                          "following 2 API-server connections open before ksight started" in err, True)
                rf = "ksight_apiserver_response_duration_seconds"
                expect_eq(f"{name}: response samples == the {n_req} requests made after ksight started",
                          count(rf, "apl-held"), n_req)
                expect_eq(f"{name}: requests_total", counter("ksight_apiserver_requests_total", "apl-held"), float(n_req))
                expect_eq(f"{name}: no handshake nor connect sample (both before ksight started)",
                          (count("ksight_apiserver_tls_handshake_duration_seconds", "apl-held"),
                           count("ksight_apiserver_connect_duration_seconds", "apl-held")), (0, 0))
                expect_eq(f"{name}: sent bytes == the client's since ksight started",
                          counter("ksight_apiserver_sent_bytes_total", "apl-held"), float(c["sent"]))
                expect_eq(f"{name}: received bytes == the client's since ksight started",
                          counter("ksight_apiserver_received_bytes_total", "apl-held"), float(c["received"]))
                b = hist(rf, "apl-held")
                for q, key in ((0.5, "p50"), (0.99, "p99")):
                    within(f"{name}: histogram_quantile({q}) vs the client's {key}", histogram_quantile(q, b), c, key, 0.15)
                current.remove("apilat/adopt=iter")
            else:
                if kv >= (5, 15):
                    expect_eq(f"{name}: before 6.12 the log says the open connections are not followed, and why",
                              "2 API-server connections open before ksight started are not followed" in err and
                              "6.12+" in err, True)
                expect_eq(f"{name}: before 6.12 no series for it", count("ksight_apiserver_response_duration_seconds",
                                                                          "apl-held"), 0)

        # the watch: its request's answer is one sample, the pushes after it none; bytes all counted
        w = clients.get("apl-watch", {})
        name = f"{tag} watch"
        if fact(f"apilat {v} watch exit ") != "0" or "events" not in w:
            not_ok(f"{name}: the watch client ran ({w})")
        else:
            server_requests += 1
            expect_eq(f"{name}: one response sample for {w['events']} pushed messages",
                      count("ksight_apiserver_response_duration_seconds", "apl-watch"), 1)
            expect_eq(f"{name}: one request", counter("ksight_apiserver_requests_total", "apl-watch"), 1.0)
            expect_eq(f"{name}: received bytes == the client's",
                      counter("ksight_apiserver_received_bytes_total", "apl-watch"), float(w["received"]))
            expect_eq(f"{name}: sent bytes == the client's",
                      counter("ksight_apiserver_sent_bytes_total", "apl-watch"), float(w["sent"]))
        # the refusal
        name = f"{tag} refused"
        expect_eq(f"{name}: the connect to the closed registered port is refused",
                  (fact(f"apilat {v} refused exit "), clients.get("apl-refused") is not None), ("0", True))
        expect_eq(f"{name}: connect_failures_total{{cause=\"refused\"}}",
                  counter("ksight_apiserver_connect_failures_total", "apl-refused", ',cause="refused"'), 1.0)
        expect_eq(f"{name}: no connect duration", count("ksight_apiserver_connect_duration_seconds", "apl-refused"), 0)
        # the server side (the listeners are on this node): every request the clients made
        expect_eq(f"{tag} server side: requests_total == the clients' requests",
                  series_of(mlines, "ksight_apiserver_server_requests_total").get(frozenset()), float(server_requests))
        expect_eq(f"{tag}: ksight run exits 0 on SIGTERM", fact(f"apilat {v} run_exit "), "0")
        if failed: dump(f"apilat-{v}.run.err")

    # --- retransmits: syn_retry's dropped SYN, retransmitted, against the namespace's RetransSegs,
    # in each run that forced retransmit: the raw variant once, the tracepoint once
    rt_runs = {v: (fact(f"apilat run {v} tcp ") or "").split() for v in runs}
    rt_runs = {v: f[1] for v, f in rt_runs.items() if len(f) == 2}
    expect_eq("apilat: retransmit forced raw once and to the tracepoint once",
              sorted(rt_runs.values()), sorted([fact("apilat retransmit raw "), "tracepoint"]))
    for v, rv in rt_runs.items():
        current[:] = [f"apilat/retransmit={rv}"]
        ns = [l.strip() for l in blocks.get(f"apilat-retrans-{v}.ns", []) if l.strip()]
        tag = f"apilat retransmit={rv}"
        if fact(f"apilat retrans {v} unshare_exit ") != "0" or len(ns) < 3 or ns[1] != "established":
            not_ok(f"{tag}: SYNs retried against a full accept queue in a new namespace")
            for l in ns[:10]: note("  " + l)
            continue
        rows = [l.split()[1:] for l in ns if l.startswith("Tcp:")]
        kernel = dict(zip(rows[0], rows[1])).get("RetransSegs") if len(rows) >= 2 else None
        mlines = [l for l in blocks.get(f"apilat-{v}.metrics", []) if l.strip()]
        want = set(re.findall(r'(\w+)="([^"]*)"', 'namespace="",pod="",container="",comm="syn_retry"'))
        got = next((x for l, x in series_of(mlines, "ksight_apiserver_retransmits_total").items() if set(l) == want), None)
        srv = series_of(mlines, "ksight_apiserver_server_retransmits_total").get(frozenset())
        if kernel and int(kernel) >= 1 and got == float(kernel) and not srv:
            ok(f"{tag}: ksight_apiserver_retransmits_total {int(got)} = RetransSegs {kernel}, none on the server side")
        else:
            not_ok(f"{tag}: ksight_apiserver_retransmits_total {got!r} (server {srv!r}) = RetransSegs {kernel!r} >= 1")
    current.clear()


# every scenario the guest ran has its check here; a new one (apilat) adds check_apilat()
for s in scenarios:
    fn = globals().get("check_" + s)
    if fn is None: not_ok(f"scenario {s} has a check (check_{s} in check.py)")
    elif fact(f"scenario {s} done") is None: not_ok(f"the guest ran scenario {s} to its end")
    else: fn()
    current.clear()

if failed:
    keep = [l for l in blocks.get("dmesg", [])
            if re.search(r"bpf|BPF|oom|Killed|kprobe|BUG|WARN|error|Call Trace|EXT4|XFS", l)]
    note("guest dmesg (filtered):")
    for l in keep[:80]: note("  " + l)
if os.environ.get("SUMMARY"):
    with open(os.environ["SUMMARY"], "w") as out:
        print(" ".join(sorted(t for t, good in proven.items() if good)), file=out)
        print(" ".join(sorted(t for t, good in proven.items() if not good)), file=out)
sys.exit(1 if failed else 0)
