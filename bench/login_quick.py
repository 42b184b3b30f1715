"""The login part of benchmark 2 alone, on an existing build (docs/performance.md):

    python3 bench/login_quick.py [LINKS] [BUILD_DIR]     # defaults: 64, build

A throw-away deployment (production SCRAM iterations), lookup_load's LINKS
query links and the presence link log in by SCRAM (first logins, with the
terminal's one PBKDF2 timed), then three 3 s rounds of `relogin` (SCRAM) and
three of `resume` (session-resumption tokens, one round trip): logins per node
CPU-second. PERF=1 also records `perf record -g` of the node over the first
SCRAM round into the work directory, which is then kept (and named);
otherwise the work directory is removed on every exit path."""
import json, os, shutil, subprocess, sys, tempfile, time, signal
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench
B = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "build"))
LINKS = int(sys.argv[1]) if len(sys.argv) > 1 else 64
W = tempfile.mkdtemp(prefix="tsunagu-login-bench-")
D = os.path.join(W, "main")
node = load = None
try:
    subprocess.run([B + "/node/tsunagu-rendezvous", "init", D], check=True, stdout=subprocess.DEVNULL)
    bench.set_toml(os.path.join(D, "node.toml"), {"max_prelogin_links_per_source": 10000, "max_links_per_account": 10000,
                                                  "login_failures_per_user": 1000, "login_failures_per_source": 100000,
                                                  "login_timeout": 3600})
    env = dict(os.environ, TSUNAGU_PASSWORD=bench.PASSWORD)
    for u in ("bench-q", "bench-callee"):
        t = time.monotonic()
        subprocess.run([B + "/node/tsunagu-rendezvous", "user", "-d", D, "add", u], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        print("user add", u, "%.2f s" % (time.monotonic() - t))
    ready = os.path.join(W, "ready.json")
    with open(W + "/node.log", "w") as node_log:
        node = subprocess.Popen([B + "/node/tsunagu-rendezvous", "run", "-d", D, "--listen", "127.0.0.1:0",
                                 "--stun-listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0", "--web-listen",
                                 "127.0.0.1:0", "--log-level", "warn", "--ready-file", ready],
                                stdout=node_log, stderr=subprocess.STDOUT)
    for _ in range(150):
        if os.path.exists(ready) and os.path.getsize(ready) > 0: break
        time.sleep(0.1)
    info = json.load(open(ready))
    pw = os.path.join(W, "password"); open(pw, "w").write(bench.PASSWORD)
    load = subprocess.Popen([B + "/bench/lookup_load", "--node", info["tls"], "--ca", os.path.join(D, "ca.crt"),
                             "--user", "bench-q", "--password-file", pw, "--links", str(LINKS), "--login-inflight", "32",
                             "--presence-user", "bench-callee", "--presence-password-file", pw,
                             "--presence-address", "10.1.2.3:5000", "--target", "bench-callee=10.1.2.3"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    cpu = lambda: bench.cpu_seconds(node.pid)
    c0 = cpu()
    r = json.loads(load.stdout.readline()); r["node_cpu_s"] = cpu() - c0
    print("first logins:", json.dumps(r))
    prof = None
    if os.environ.get("PERF"):
        prof = subprocess.Popen(["perf", "record", "-g", "-o", W + "/perf.data", "-p", str(node.pid), "--", "sleep", "3"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for verb in ("relogin", "resume"):
        for rnd in range(3):
            c0 = cpu()
            load.stdin.write("%s %d 3\n" % (verb, LINKS)); load.stdin.flush()
            rl = json.loads(load.stdout.readline()); c = cpu() - c0
            if "relogins" not in rl:
                raise SystemExit("lookup_load: %s" % json.dumps(rl))
            n = rl["relogins"] + rl["presence_relogins"]
            print("%s round %d: %s node_cpu_s=%.3f per_node_cpu_s=%.0f" % (verb, rnd + 1, json.dumps(rl), c, n / c))
    if prof: prof.wait()
    load.stdin.write("quit\n"); load.stdin.flush(); load.wait(timeout=10)
finally:
    for proc in (load, node):
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill(); proc.wait()
    if os.environ.get("PERF"):
        print("kept", W, "(perf.data, node.log)")
    else:
        shutil.rmtree(W, ignore_errors=True)
