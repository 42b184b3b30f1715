"""The login part of benchmark 2 alone, on an existing build (docs/performance.md):

    python3 bench/login_quick.py [LINKS] [BUILD_DIR] [BEFORE_BUILD_DIR] [ROUNDS]   # defaults: 64, build, none, 3

A throw-away deployment (production SCRAM iterations), lookup_load's LINKS
query links and the presence link log in by SCRAM (first logins, with the
terminal's one PBKDF2 timed), then ROUNDS 3 s rounds of `relogin` (SCRAM) and
ROUNDS of `resume` (session-resumption tokens, one round trip): logins per
node CPU-second, and their medians.

With BEFORE_BUILD_DIR (a directory holding node/tsunagu-rendezvous, as
run.py's --before-build-dir), that node runs beside BUILD_DIR's, on its own
deployment with its own load (BUILD_DIR's lookup_load for both), and the two
take turns round by round (A B, then B A, ...) so that the machine's load
falls on both alike; the medians and their ratio close the output.

PERF=1 also records `perf record -g` of BUILD_DIR's node over its first SCRAM
round (PERF=resume: over its first token round; PERF_DWARF=1 unwinds with
`--call-graph dwarf` at 1,500 Hz instead, which sees through OpenSSL and libc
where frame pointers do not) into the work directory, which
is then kept (and named); otherwise the work directory is removed on every
exit path."""
import json, os, shutil, signal, statistics, subprocess, sys, tempfile, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench
B = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "build"))
BEFORE = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
LINKS = int(sys.argv[1]) if len(sys.argv) > 1 else 64
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
W = tempfile.mkdtemp(prefix="tsunagu-login-bench-")
processes = []


def start(name, node_binary):
    """A deployment, its node and a logged-in lookup_load; (node, load)."""
    directory = os.path.join(W, name)
    subprocess.run([node_binary, "init", directory], check=True, stdout=subprocess.DEVNULL)
    bench.set_toml(os.path.join(directory, "node.toml"),
                   {"max_prelogin_links_per_source": 10000, "max_links_per_account": 10000,
                    "login_failures_per_user": 1000, "login_failures_per_source": 100000, "login_timeout": 3600})
    env = dict(os.environ, TSUNAGU_PASSWORD=bench.PASSWORD)
    for u in ("bench-q", "bench-callee"):
        t = time.monotonic()
        subprocess.run([node_binary, "user", "-d", directory, "add", u], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"{name}: user add {u} {time.monotonic() - t:.2f} s")
        # As run.py's deployments: lookups answer the reported addresses lookup_load checks.
        subprocess.run([node_binary, "user", "-d", directory, "profile", u, "addresses=yes"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = os.path.join(W, name + "-ready.json")
    with open(os.path.join(W, name + "-node.log"), "w") as node_log:
        node = subprocess.Popen([node_binary, "run", "-d", directory, "--listen", "127.0.0.1:0",
                                 "--stun-listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0", "--web-listen",
                                 "127.0.0.1:0", "--log-level", "warn", "--ready-file", ready],
                                stdout=node_log, stderr=subprocess.STDOUT)
    processes.append(node)
    for _ in range(150):
        if os.path.exists(ready) and os.path.getsize(ready) > 0: break
        time.sleep(0.1)
    info = json.load(open(ready))
    pw = os.path.join(W, "password")
    with open(pw, "w") as f:
        f.write(bench.PASSWORD)
    load = subprocess.Popen([B + "/bench/lookup_load", "--node", info["tls"], "--ca", os.path.join(directory, "ca.crt"),
                             "--user", "bench-q", "--password-file", pw, "--links", str(LINKS), "--login-inflight", "32",
                             "--presence-user", "bench-callee", "--presence-password-file", pw,
                             "--presence-address", "10.1.2.3:5000", "--target", "bench-callee=10.1.2.3"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    processes.append(load)
    c0 = bench.cpu_seconds(node.pid)
    r = json.loads(load.stdout.readline()); r["node_cpu_s"] = bench.cpu_seconds(node.pid) - c0
    print(f"{name}: first logins:", json.dumps(r))
    return node, load


def phase(name, node, load, verb):
    c0 = bench.cpu_seconds(node.pid)
    load.stdin.write("%s %d 3\n" % (verb, LINKS)); load.stdin.flush()
    rl = json.loads(load.stdout.readline()); c = bench.cpu_seconds(node.pid) - c0
    if "relogins" not in rl:
        raise SystemExit("lookup_load: %s" % json.dumps(rl))
    n = rl["relogins"] + rl["presence_relogins"]
    print("%s %s: %s node_cpu_s=%.3f per_node_cpu_s=%.0f" % (name, verb, json.dumps(rl), c, n / c))
    return n / c


try:
    builds = {"main": start("main", B + "/node/tsunagu-rendezvous")}
    if BEFORE:
        builds["before"] = start("before", BEFORE + "/node/tsunagu-rendezvous")
    prof = None
    profiled_verb = "resume" if os.environ.get("PERF") == "resume" else "relogin"
    figures = {(name, verb): [] for name in builds for verb in ("relogin", "resume")}
    for verb in ("relogin", "resume"):
        for rnd in range(ROUNDS):
            order = list(builds) if rnd % 2 == 0 else list(reversed(builds))
            for name in order:
                node, load = builds[name]
                if os.environ.get("PERF") and name == "main" and verb == profiled_verb and rnd == 0:
                    call_graph = (["--call-graph", "dwarf,8192", "-F", "1500"] if os.environ.get("PERF_DWARF")
                                  else ["-g"])
                    prof = subprocess.Popen(["perf", "record"] + call_graph + ["-o", W + "/perf.data", "-p",
                                             str(node.pid), "--", "sleep", "3"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                figures[(name, verb)].append(phase(f"{name} round {rnd + 1}", node, load, verb))
                if prof:
                    prof.wait()
                    prof = None
    for verb in ("relogin", "resume"):
        medians = {name: statistics.median(figures[(name, verb)]) for name in builds}
        line = f"median {verb} per node CPU-second: " + ", ".join(f"{n} {v:,.0f}" for n, v in medians.items())
        if "before" in medians:
            line += f"; main / before {medians['main'] / medians['before']:.2f}x"
        print(line)
    for node, load in builds.values():
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
