"""Benchmark 2's registrar phase alone (docs/performance.md), on an existing build:

    python3 bench/registrar_quick.py [BUILD_DIR] [BEFORE_NODE] [ROUNDS] [SECONDS]
    # defaults: build, none, 3, 3

A throw-away deployment per node with 256 users (SCRAM at 4,096 iterations,
as run.py's registrar users), the node pinned to CPU 0 and lookup_load (one
query link, 256 presence links, one per user) to CPU 1; after the first
logins, ROUNDS rounds of `presence-resume 256 SECONDS`: every login a token
login of a presence link, each with its durable write, group-committed per
loop turn. Prints logins per node CPU-second and, from the node's /metrics,
the group commits the round made (logins per commit).

BEFORE_NODE (a tsunagu-rendezvous binary, e.g. the tree's node copied aside
before a change) runs beside BUILD_DIR's on its own deployment; the rounds
alternate (A B, then B A, ...) so the machine's load falls on both alike,
and the medians and their ratio close the output.

PERF=1 records `perf record -g` of BUILD_DIR's node over its first round into
the work directory, which is then kept; otherwise the work directory is
removed on every exit path, and every process started here is stopped."""
import json, os, re, shutil, signal, ssl, statistics, subprocess, sys, tempfile, time, urllib.request
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench

B = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build"))
BEFORE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
LINKS = bench.REGISTRAR_LINKS
# QUERY=1: each round also runs `resume 256` on 256 query links of one user
# (token logins with no durable write) on the same node, for the difference.
QUERY_LINKS = LINKS if os.environ.get("QUERY") else 1
W = tempfile.mkdtemp(prefix="tsunagu-registrar-bench-")
processes = []


def metric(info, directory, name):
    """One unlabelled sample of the node's /metrics (HTTPS on the web listener the ready file names)."""
    context = ssl.create_default_context(cafile=os.path.join(directory, "ca.crt"))
    context.check_hostname = False
    with urllib.request.urlopen(f"https://{info['web']}/metrics", timeout=10, context=context) as response:
        text = response.read().decode()
    found = re.search(rf"(?m)^{re.escape(name)} (\d+)", text)
    if not found:
        raise SystemExit(f"/metrics has no {name}")
    return int(found.group(1))


def start(name, node_binary):
    """A deployment, its node and a logged-in lookup_load; (node, info, load)."""
    directory = os.path.join(W, name)
    subprocess.run([node_binary, "init", directory], check=True, stdout=subprocess.DEVNULL)
    config = os.path.join(directory, "node.toml")
    bench.set_toml(config, {"max_prelogin_links_per_source": 10000, "max_links_per_account": 10000,
                            "login_failures_per_user": 1000, "login_failures_per_source": 100000,
                            "login_timeout": 3600, "scram_iterations": 4096})
    env = dict(os.environ, TSUNAGU_PASSWORD=bench.PASSWORD)
    users = ("bench-q", "bench-callee") + bench.REGISTRAR_USERS
    for user in users:
        subprocess.run([node_binary, "user", "-d", directory, "add", user], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = os.path.join(W, name + "-ready.json")
    with open(os.path.join(W, name + "-node.log"), "w") as node_log:
        node = subprocess.Popen(["taskset", "-c", "0", node_binary, "run", "-d", directory, "--listen", "127.0.0.1:0",
                                 "--stun-listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0", "--web-listen",
                                 "127.0.0.1:0", "--log-level", "warn", "--ready-file", ready],
                                stdout=node_log, stderr=subprocess.STDOUT)
    processes.append(node)
    for _ in range(150):
        if os.path.exists(ready) and os.path.getsize(ready) > 0: break
        if node.poll() is not None: break
        time.sleep(0.1)
    else:
        raise SystemExit(f"{name}: the node wrote no ready file")
    if node.poll() is not None:
        raise SystemExit(f"{name}: the node exited; see {W}/{name}-node.log")
    info = json.load(open(ready))
    pw = os.path.join(W, "password")
    with open(pw, "w") as f:
        f.write(bench.PASSWORD)
    argv = ["taskset", "-c", "1", B + "/bench/lookup_load", "--node", info["tls"], "--ca",
            os.path.join(directory, "ca.crt"), "--user", "bench-q", "--password-file", pw, "--links", str(QUERY_LINKS),
            "--login-inflight", "32", "--presence-user", "bench-callee", "--presence-password-file", pw,
            "--presence-address", "10.1.2.3:5000", "--target", "bench-callee=10.1.2.3"]
    for user in bench.REGISTRAR_USERS:
        argv += ["--presence-user", user]
    load = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    processes.append(load)
    first = json.loads(load.stdout.readline())
    if "logins" not in first:
        raise SystemExit(f"{name}: lookup_load: {json.dumps(first)}")
    info["directory"] = directory
    return node, info, load


def round_of(name, node, info, load, verb="presence-resume"):
    commits = metric(info, info["directory"], "tsunagu_node_commits_total")
    c0 = bench.cpu_seconds(node.pid)
    load.stdin.write(f"{verb} {LINKS} {SECONDS}\n"); load.stdin.flush()
    rl = json.loads(load.stdout.readline())
    cpu = bench.cpu_seconds(node.pid) - c0
    if "presence_relogins" not in rl:
        raise SystemExit(f"lookup_load: {json.dumps(rl)}")
    commits = metric(info, info["directory"], "tsunagu_node_commits_total") - commits
    n = rl["presence_relogins"] + rl["relogins"]
    per_cpu = n / cpu if cpu > 0 else float("nan")
    print(f"{name}: {verb}: {n} token re-logins ({rl['presence_relogins']} presence) in {rl['duration_s']:.1f} s, node CPU {cpu:.3f} s = "
          f"{per_cpu:,.0f} per node CPU-second ({cpu / n * 1e6:.1f} us each); {commits} commits, "
          f"{n / max(commits, 1):.1f} logins per commit", flush=True)
    return per_cpu


try:
    builds = {"after": start("after", B + "/node/tsunagu-rendezvous")}
    if BEFORE:
        builds["before"] = start("before", BEFORE)
    figures = {name: [] for name in builds}
    for rnd in range(ROUNDS):
        order = list(builds) if rnd % 2 == 0 else list(reversed(builds))
        for name in order:
            node, info, load = builds[name]
            for verb in ("presence-resume", "resume") if QUERY_LINKS > 1 else ("presence-resume",):
                prof = None
                if os.environ.get("PERF") and name == "after" and rnd == 0:
                    call_graph = ["--call-graph", "dwarf,16384", "-F", "2000"] if os.environ.get("PERF_DWARF") else ["-g"]
                    prof = subprocess.Popen(["perf", "record"] + call_graph + ["-o", f"{W}/perf-{verb}.data", "-p",
                                             str(node.pid), "--", "sleep", str(SECONDS)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                figure = round_of(f"{name} round {rnd + 1}", node, info, load, verb)
                if verb == "presence-resume":
                    figures[name].append(figure)
                if prof:
                    prof.wait()
    medians = {name: statistics.median(v) for name, v in figures.items()}
    line = "median presence token re-logins per node CPU-second: " + ", ".join(f"{n} {v:,.0f}" for n, v in medians.items())
    if "before" in medians:
        line += f"; after / before {medians['after'] / medians['before']:.2f}x"
    print(line)
    print("load average:", open("/proc/loadavg").read().split()[:3])
    for node, info, load in builds.values():
        load.stdin.write("quit\n"); load.stdin.flush(); load.wait(timeout=10)
finally:
    for proc in reversed(processes):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill(); proc.wait()
    if os.environ.get("PERF"):
        print("kept", W, "(perf.data, node logs)")
    else:
        shutil.rmtree(W, ignore_errors=True)
