#!/usr/bin/env python3
"""Tsunagu benchmarks 1-6 against real peers, on one machine, over loopback.

One command (from the repository root):

    python3 bench/run.py                 # everything, about 5-6 minutes
    python3 bench/run.py --only stun,lookups

builds optimised binaries in build-bench/, installs coturn and Redis when
missing, and runs, with servers pinned to CPU 0 and load generators to CPU 1
(when there are two CPUs), in interleaved A B A B rounds:

  stun       1. STUN Binding responses: our node vs coturn (and a UDP echo ceiling)
  lookups    2. lookups over persistent TLS links (1, 64, 1,024 links) vs Redis GET
                (redis-benchmark) over plain TCP and over TLS, and logins per
                node CPU-second (SCRAM, session-resumption tokens)
  forwarded  3. lookups of ID@domain forwarded through a LAN agent vs direct lookups
  idle       4. idle TLS links (10,000 and 18,000): memory per link, accepts/s,
                keepalive CPU, vs a bare TLS server (bench/bare_tls_server)
  dhcp       5. DHCP hook events applied per second (real hook, hook socket, in
                process) and the sync of a 100,000-lease dnsmasq file
  call       6. call setup on loopback (tsunagu call/listen) vs the ICE floor
                (bench/ice_floor: two bare libnice agents in one process)
  voice      7. an Opus voice call (tsunagu call/listen --audio-in/--audio-out) vs
                two baresip instances, at 0 % and 5 % media loss, each call in a
                network namespace of its own (root; bench/voice/run_voice.py)
  web        8. API lookups over HTTPS keep-alive (wrk) per node CPU-second vs nginx
                answering the same path with a fixed body (bench/web/run_web.py)
  browser    9. browser call setup, click -> first audio packet: a Chromium page
                calling `tsunagu listen --audio-in` vs calling another page
                (Chromium's own peer connection), in a loopback-only network
                namespace (root; bench/browser/run_browser.py)

and prints one table of medians (metric | Tsunagu | peer | ratio), the targets
and the machine. The descriptor limit is raised to the hard limit and stated.
Every process it starts is stopped by PID on every exit path. Traffic goes only
to 127.0.0.1.

Python 3 standard library only. See docs/performance.md for what each number
means.
"""

import argparse
import concurrent.futures
import re
import resource
import select
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = ("tsunagu", "coturn", "echo")
BUILD_TARGETS = ["node/tsunagu-rendezvous", "terminal/tsunagu", "lan-agent/tsunagu-lan-agent",
                 "lan-agent/tsunagu-dhcp-hook", "bench/stun_load", "bench/udp_echo", "bench/lookup_load",
                 "bench/idle_links", "bench/bare_tls_server", "bench/hook_flood", "bench/ice_floor",
                 "tests/unit/allocation/allocation_throughput"]

started = []  # subprocess.Popen objects, stopped by PID in stop_all()
commands_run = []  # the exact commands, for docs/performance.md


def log(message):
    print(message, file=sys.stderr, flush=True)


def run_checked(argv, **kwargs):
    log("+ " + " ".join(argv))
    subprocess.run(argv, check=True, **kwargs)


# ---------------------------------------------------------------- building


def build(build_dir):
    if not os.path.isfile(os.path.join(build_dir, "build.ninja")):
        # -O2 release: GCC 12 at -O3 reports a -Wrestrict false positive inside
        # libstdc++ (std::string) in proto/, and warnings are errors.
        run_checked(["meson", "setup", build_dir, "-Dbuildtype=release", "-Doptimization=2"], cwd=ROOT)
    # Only what the benchmarks run: the unit tests are not needed here, and a
    # folder under construction elsewhere must not stop the benchmarks.
    run_checked(["ninja", "-C", build_dir] + BUILD_TARGETS, cwd=ROOT, stdout=subprocess.DEVNULL)


def apt_install(packages, binary):
    """Installs Debian packages without starting their services."""
    if shutil.which(binary):
        return shutil.which(binary)
    if os.geteuid() != 0:
        sys.exit(f"{binary} is not installed and this is not root: apt-get install {' '.join(packages)}, then run again")
    # policy-rc.d answering 101 keeps the packages' services from starting.
    policy = "/usr/sbin/policy-rc.d"
    had_policy = os.path.exists(policy)
    try:
        if not had_policy:
            with open(policy, "w") as f:
                f.write("#!/bin/sh\nexit 101\n")
            os.chmod(policy, 0o755)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run_checked(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + packages, env=env,
                    stdout=subprocess.DEVNULL, timeout=600)
    finally:
        if not had_policy and os.path.exists(policy):
            os.remove(policy)
    path = shutil.which(binary)
    if not path:
        sys.exit(f"{' '.join(packages)} installed but {binary} not found")
    return path


def ensure_coturn():
    return apt_install(["coturn"], "turnserver")


# ---------------------------------------------------------------- processes


def pin(cpu):
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def start(argv, log_path, **kwargs):
    commands_run.append(" ".join(argv))
    log("+ " + " ".join(argv))
    out = open(log_path, "wb")
    process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs)
    out.close()
    started.append(process)
    return process


def stop_all():
    for process in reversed(started):
        if process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
    deadline = time.monotonic() + 5
    for process in reversed(started):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{' '.join(process.args)}: still running 5 s after SIGTERM; SIGKILL")
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    started.clear()


def cpu_seconds(pid):
    """CPU time of the whole process (all its threads), in seconds.

    The sum of the threads' scheduler run time (/proc/PID/task/*/schedstat,
    nanoseconds): a 2 s phase of a server that gets a fifth of a core is about
    0.2 s of CPU, and utime + stime count that in 10 ms ticks (sampled at the
    tick, so +-1 tick is +-5 % of such a phase). A thread that exits between
    two readings takes its time with it; the servers measured here keep theirs
    (the loop thread, libuv's pool). Falls back to the ticks without schedstat."""
    try:
        total_ns = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total_ns += int(f.read().split()[0])
            except FileNotFoundError:
                pass  # the thread ended meanwhile
        return total_ns / 1e9
    except (FileNotFoundError, ValueError, IndexError):
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the ")" field 3 (state) is index 0: utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_for_stun(port, process, what, timeout=15.0):
    """Sends Binding requests until one is answered."""
    deadline = time.monotonic() + timeout
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + os.urandom(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                sys.exit(f"{what} exited with code {process.returncode} before answering")
            try:
                s.sendto(request, (HOST, port))
                s.recvfrom(2048)
                return
            except (socket.timeout, ConnectionRefusedError):
                time.sleep(0.1)
    sys.exit(f"{what} did not answer on {HOST}:{port} within {timeout:.0f} s")


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def start_coturn(turnserver, workdir, port, cpu):
    conf = os.path.join(workdir, "turnserver.conf")
    with open(conf, "w") as f:
        f.write(
            "\n".join(
                [
                    f"listening-ip={HOST}",
                    f"relay-ip={HOST}",
                    f"listening-port={port}",
                    "min-port=49160",
                    "max-port=49200",
                    "realm=bench.tsunagu.test",
                    "use-auth-secret",
                    "static-auth-secret=bench-only-secret",
                    "fingerprint",
                    "no-tls",
                    "no-dtls",
                    "no-cli",
                    "no-tcp",
                    "log-file=stdout",
                    "simple-log",
                    f"pidfile={os.path.join(workdir, 'turnserver.pid')}",
                    f"userdb={os.path.join(workdir, 'turndb')}",
                    "",
                ]
            )
        )
    process = start(pin(cpu) + [turnserver, "-c", conf], os.path.join(workdir, "coturn.log"))
    wait_for_stun(port, process, "coturn")
    return process


def start_node(binary, workdir, port, cpu):
    deployment = os.path.join(workdir, "node")
    run_checked([binary, "init", deployment], stdout=subprocess.DEVNULL)
    ready = os.path.join(workdir, "node-ready.json")
    process = start(
        pin(cpu)
        + [binary, "run", "-d", deployment, "--listen", f"{HOST}:0", "--stun-listen", f"{HOST}:{port}",
           "--agent-listen", f"{HOST}:0", "--web-listen", "off", "--log-level", "warn", "--ready-file", ready],
        os.path.join(workdir, "node.log"),
    )
    deadline = time.monotonic() + 15
    while not os.path.exists(ready):
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit("tsunagu-rendezvous did not start; see " + os.path.join(workdir, "node.log"))
        time.sleep(0.05)
    with open(ready) as f:
        info = json.load(f)
    if info.get("pid") != process.pid:
        sys.exit(f"node ready file names pid {info.get('pid')}, started {process.pid}")
    wait_for_stun(port, process, "tsunagu-rendezvous")
    return process


def start_echo(binary, workdir, port, cpu):
    process = start(pin(cpu) + [binary, "--listen", f"{HOST}:{port}"], os.path.join(workdir, "echo.log"))
    wait_for_stun(port, process, "udp_echo")
    return process


# ---------------------------------------------------------------- measuring


def measure(load_binary, server, port, echo, duration, inflight, sockets, cpu):
    argv = pin(cpu) + [load_binary, "--target", f"{HOST}:{port}", "--duration", str(duration),
                       "--inflight", str(inflight), "--sockets", str(sockets)]
    if echo:
        argv.append("--echo")
    if " ".join(argv) not in commands_run:
        commands_run.append(" ".join(argv))
    before = cpu_seconds(server.pid)
    wall_before = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    wall = time.monotonic() - wall_before
    server_cpu = cpu_seconds(server.pid) - before
    if result.returncode != 0:
        sys.exit(f"stun_load failed ({result.returncode}): {result.stderr.strip()}")
    if result.stderr.strip():
        log(result.stderr.strip())
    data = json.loads(result.stdout.strip().splitlines()[-1])
    if server.poll() is not None:
        sys.exit("a server exited during the run")
    data["server_cpu_s"] = server_cpu
    data["server_cpu_share"] = server_cpu / wall
    data["per_server_cpu_s"] = data["responses"] / server_cpu if server_cpu > 0 else float("nan")
    return data


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def machine_description():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}"


def fmt(value, digits=0):
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    return a / b if b else float("nan")


def stun_rows(results, args):
    """Benchmark 1's rows (metric, Tsunagu, peer, ratio) and target verdicts."""
    t, c, e = results["tsunagu"], results["coturn"], results["echo"]
    rows = []

    def row(metric, tv, cv, digits=0, show_ratio=True):
        rows.append((metric, fmt(tv, digits), fmt(cv, digits), fmt(ratio(tv, cv), 2) + "x" if show_ratio else ""))

    tt, ct, et = t["load"], c["load"], e["load"]
    tl, cl, el = t["latency"], c["latency"], e["latency"]
    n = args.inflight
    row(f"1. STUN responses/s, wall clock ({n} in flight) [peer: coturn]", median(tt, "responses_per_s"),
        median(ct, "responses_per_s"))
    row(f"1. STUN responses per server CPU-second ({n} in flight)", median(tt, "per_server_cpu_s"),
        median(ct, "per_server_cpu_s"))
    row("1. STUN server CPU-seconds per wall second", median(tt, "server_cpu_share"), median(ct, "server_cpu_share"), 2)
    row("1. STUN responses per server CPU-second (64 in flight)", median(tl, "per_server_cpu_s"),
        median(cl, "per_server_cpu_s"))
    row("1. STUN p50 latency, µs (64 in flight)", median(tl, "p50_us"), median(cl, "p50_us"), 1)
    row("1. STUN p99 latency, µs (64 in flight)", median(tl, "p99_us"), median(cl, "p99_us"), 1)
    all_t, all_c = tt + tl, ct + cl
    row("1. STUN invalid responses (all runs)", sum(r["invalid"] for r in all_t), sum(r["invalid"] for r in all_c),
        show_ratio=False)
    row("1. STUN timeouts / late answers (all runs)", sum(r["timeouts"] + r["late"] for r in all_t),
        sum(r["timeouts"] + r["late"] for r in all_c), show_ratio=False)
    rows.append((f"1. STUN echo ceiling: per echo-server CPU-second ({n} in flight)", fmt(median(et, "per_server_cpu_s")),
                 "", f"{fmt(median(tt, 'per_server_cpu_s') / median(et, 'per_server_cpu_s') * 100, 0)}%"
                 " (Tsunagu/echo)"))

    per_cpu = ratio(median(tt, "per_server_cpu_s"), median(ct, "per_server_cpu_s"))
    p99 = median(tl, "p99_us")
    invalid = sum(r["invalid"] for r in all_t)
    verdicts = [
        f"1. STUN >= 1.6x coturn per server CPU-second: {per_cpu:.2f}x "
        + ("MET" if per_cpu >= 1.6 else f"MISSED by {(1.6 - per_cpu) / 1.6 * 100:.0f}% "
                                       f"(needs {1.6 / per_cpu:.2f}x more per CPU-second)"),
        f"1. STUN no invalid responses: {invalid} " + ("MET" if invalid == 0 else "MISSED"),
        f"1. STUN p99 < 1 ms at 64 in flight: {p99:.0f} µs " + ("MET" if p99 < 1000 else "MISSED"),
    ]
    return rows, verdicts


# ---------------------------------------------------------------- shared helpers


BENCHMARKS = ("stun", "lookups", "forwarded", "idle", "dhcp", "call", "voice", "web", "browser")
PASSWORD = "bench-password-1"  # bench-only accounts on a throw-away deployment


def raise_descriptor_limit():
    """Raises RLIMIT_NOFILE to the hard limit (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def memory_kib(pid):
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                values[key] = int(rest.split()[0])
    return values


def pin_all_threads(pid, cpu):
    """Pins every thread of a running process (taskset -a -p)."""
    if cpu is not None:
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True, stdout=subprocess.DEVNULL)


def set_toml(path, changes):
    """Replaces `key = value` lines of a file written by `tsunagu-rendezvous init`."""
    with open(path) as f:
        text = f.read()
    for key, value in changes.items():
        text, n = re.subn(rf"(?m)^{re.escape(key)} = [^#\n]*", f"{key} = {value} ", text)
        if n != 1:
            sys.exit(f"{path}: cannot set {key}")
    with open(path, "w") as f:
        f.write(text)


def make_deployment(ctx, name, users=(), agents=(), node_binary=None, settings=None, fast_users=()):
    """A throw-away node deployment with bench settings (see docs/performance.md);
    `settings` adds or overrides node.toml values."""
    # The --before-build-dir node makes its own deployment: an older node refuses
    # node.toml keys a newer `init` writes.
    node_binary = node_binary or ctx["bin"]["node"]
    directory = os.path.join(ctx["workdir"], name)
    run_checked([node_binary, "init", directory], stdout=subprocess.DEVNULL)
    set_toml(os.path.join(directory, "node.toml"), {
        # Card passwords only now; logins are SCRAM with the production
        # iteration count (passwords.scram_iterations stays 600000), so the
        # first login's PBKDF2 on the terminal is measured at its real cost.
        "scrypt_log2_n": 14,
        # Many links of one user log in at once from one address (and stay
        # logged in: 1,024 query links of bench-q, none logged in yet at first).
        "max_links_per_account": 10000,
        "max_prelogin_links_per_source": 10000,
        "login_failures_per_user": 1000,
        "login_failures_per_source": 100000,
        # Benchmark 4 holds links that never log in (see docs/performance.md).
        "login_timeout": 3600,
        **(settings or {}),
    })
    env = dict(os.environ, TSUNAGU_PASSWORD=PASSWORD)
    for user in users:
        run_checked([node_binary, "user", "-d", directory, "add", user], env=env, stdout=subprocess.DEVNULL)
        # Lookups leave reported addresses out unless the user shows them
        # (issue 11); lookup_load checks the presence link's reported address.
        run_checked([node_binary, "user", "-d", directory, "profile", user, "addresses=yes"],
                    stdout=subprocess.DEVNULL)
    if fast_users:
        config = os.path.join(directory, "node.toml")
        set_toml(config, {"scram_iterations": 4096})
        for user in fast_users:
            run_checked([node_binary, "user", "-d", directory, "add", user], env=env, stdout=subprocess.DEVNULL)
        set_toml(config, {"scram_iterations": 600000})
    for agent, domain, out in agents:
        # The bundle's agent.toml is not used (the benchmark writes its own, with
        # the node's port 0 address): --node/--server-name only satisfy enroll.
        run_checked([node_binary, "agent", "-d", directory, "enroll", agent, "--domain", domain, "--out", out,
                     "--node", f"{HOST}:1", "--server-name", "localhost"], stdout=subprocess.DEVNULL)
    return directory


def start_tls_node(ctx, directory, name, cpu, binary=None):
    ready = os.path.join(ctx["workdir"], f"{name}-ready.json")
    process = start(pin(cpu) + [binary or ctx["bin"]["node"], "run", "-d", directory, "--listen", f"{HOST}:0",
                                "--stun-listen", f"{HOST}:0", "--agent-listen", f"{HOST}:0",
                                "--web-listen", f"{HOST}:0", "--log-level", "warn",
                                "--ready-file", ready], os.path.join(ctx["workdir"], f"{name}.log"))
    deadline = time.monotonic() + 15
    while not os.path.exists(ready):
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"tsunagu-rendezvous ({name}) did not start; see {ctx['workdir']}/{name}.log")
        time.sleep(0.05)
    with open(ready) as f:
        info = json.load(f)
    if info.get("pid") != process.pid:
        sys.exit(f"node ready file names pid {info.get('pid')}, started {process.pid}")
    return process, info


def wait_for(predicate, timeout, what, process=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            sys.exit(f"{what}: the process exited with code {process.returncode}")
        if time.monotonic() > deadline:
            sys.exit(f"{what}: not ready within {timeout:.0f} s")
        time.sleep(0.05)


class PipedProgram:
    """A started program driven by lines on stdin, answering JSON lines on stdout."""

    def __init__(self, argv, log_path):
        commands_run.append(" ".join(argv))
        log("+ " + " ".join(argv))
        self.err = open(log_path, "wb")
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                        text=True, bufsize=1)
        self.err.close()
        started.append(self.process)

    def read_json(self, timeout):
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            sys.exit(f"{self.process.args[0]}: no answer within {timeout:.0f} s")
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"{' '.join(self.process.args)} exited ({self.process.poll()}); see its log")
        data = json.loads(line)
        if data.get("fatal"):
            sys.exit(f"{self.process.args[-1]}: {data['fatal']}")
        return data

    def command(self, line, timeout):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.read_json(timeout)


def server_cpu_of(processes):
    return sum(cpu_seconds(p.pid) for p in processes)


def pct_text(value):
    return f"{value:.0f}%"


# ---------------------------------------------------------------- 1. STUN


def bench_stun(ctx):
    args = ctx["args"]
    turnserver = ensure_coturn()
    for port in (args.coturn_port, args.node_port, args.echo_port):
        if not port_is_free(port):
            sys.exit(f"UDP port {port} on {HOST} is in use: pick others with --coturn-port/--node-port/--echo-port")
    server_cpu, load_cpu = ctx["server_cpu"], ctx["load_cpu"]
    stun_dir = os.path.join(ctx["workdir"], "stun")
    os.makedirs(stun_dir)
    servers = {
        "coturn": (start_coturn(turnserver, stun_dir, args.coturn_port, server_cpu), args.coturn_port, False),
        "tsunagu": (start_node(ctx["bin"]["node"], stun_dir, args.node_port, server_cpu), args.node_port, False),
        "echo": (start_echo(ctx["bin"]["udp_echo"], stun_dir, args.echo_port, server_cpu), args.echo_port, True),
    }
    results = {name: {"load": [], "latency": []} for name in TARGETS}
    for round_index in range(args.rounds):
        order = ["tsunagu", "coturn"] if round_index % 2 == 0 else ["coturn", "tsunagu"]
        order.append("echo")
        for kind, duration, inflight in (("load", args.duration, args.inflight),
                                         ("latency", args.latency_duration, 64)):
            for name in order:
                process, port, echo = servers[name]
                data = measure(ctx["bin"]["stun_load"], process, port, echo, duration, inflight, args.sockets, load_cpu)
                results[name][kind].append(data)
                log(f"round {round_index + 1}/{args.rounds} {kind:7s} {name:7s} "
                    f"{data['responses_per_s']:>10,.0f}/s  {data['per_server_cpu_s']:>10,.0f}/server-CPU-s  "
                    f"server CPU {data['server_cpu_share']:.2f}  p50 {data['p50_us']:.0f} µs  "
                    f"p99 {data['p99_us']:.0f} µs  invalid {data['invalid']}  timeouts {data['timeouts']}")
    stop_all()
    ctx["raw"]["stun"] = results
    return stun_rows(results, args)


# ---------------------------------------------------------------- 2, 3, 6: the main node


def start_redis(ctx, cpu, tls_directory=None):
    """redis-server on CPU `cpu`: plain TCP on --redis-port, or, with `tls_directory`
    (a node deployment: its CA and the node's own certificate and P-256 key),
    TLS only, on --redis-tls-port."""
    redis_server = apt_install(["redis-server", "redis-tools"], "redis-server")
    port = ctx["args"].redis_tls_port if tls_directory else ctx["args"].redis_port
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            sys.exit(f"TCP port {port} on {HOST} is in use: pick another with "
                     + ("--redis-tls-port" if tls_directory else "--redis-port"))
    name = "redis-tls" if tls_directory else "redis"
    listen = ["--port", str(port)]
    if tls_directory:
        # TLS only (port 0 closes plain TCP); clients are not asked for a
        # certificate, as the node's query links are not (they log in instead).
        listen = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", os.path.join(tls_directory, "node.crt"),
                  "--tls-key-file", os.path.join(tls_directory, "node.key"),
                  "--tls-ca-cert-file", os.path.join(tls_directory, "ca.crt"), "--tls-auth-clients", "no"]
    process = start(pin(cpu) + [redis_server] + listen + ["--bind", HOST, "--save", "", "--appendonly", "no",
                                "--daemonize", "no", "--protected-mode", "yes", "--maxclients", "4096",
                                "--dir", ctx["workdir"], "--dbfilename", name + ".rdb"],
                    os.path.join(ctx["workdir"], name + ".log"))

    def answers():
        try:
            with socket.create_connection((HOST, port), timeout=0.2) as raw:
                s = raw
                if tls_directory:
                    context = ssl.create_default_context(cafile=os.path.join(tls_directory, "ca.crt"))
                    s = context.wrap_socket(raw, server_hostname="localhost")
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except (OSError, ssl.SSLError):
            return False

    wait_for(answers, 15, name, process)
    return process, port


def redis_tls_flags(tls_directory):
    """redis-benchmark's flags for the TLS Redis: verify the node's certificate against the deployment's CA."""
    return ["--tls", "--cacert", os.path.join(tls_directory, "ca.crt"), "--sni", "localhost"] if tls_directory else []


def redis_benchmark(ctx, port, clients, requests, server, cpu, tls_directory=None):
    """One redis-benchmark GET run. Its clients connect (and over TLS handshake)
    inside the run, where the node's links are open before theirs: a run of one
    GET per client, just before, measures that cost, and the server CPU per
    request leaves it out (both figures are kept)."""
    def argv_for(n):
        return pin(cpu) + ["redis-benchmark", "-h", HOST, "-p", str(port)] + redis_tls_flags(tls_directory) + [
            "-t", "get", "-c", str(clients), "-n", str(n), "-d", "128", "-P", "1", "--csv"]
    argv = argv_for(requests)
    if " ".join(argv[:-4]) not in " ".join(commands_run):
        commands_run.append(" ".join(argv))
    before = cpu_seconds(server.pid)
    subprocess.run(argv_for(clients), capture_output=True, text=True, timeout=120, check=True)
    connect_cpu = cpu_seconds(server.pid) - before
    before = cpu_seconds(server.pid)
    wall0 = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    wall = time.monotonic() - wall0
    server_cpu_with_connects = cpu_seconds(server.pid) - before
    server_cpu = max(server_cpu_with_connects - connect_cpu, server_cpu_with_connects / 100)
    lines = [l for l in out.splitlines() if l.startswith('"GET"')]
    if not lines:
        sys.exit("redis-benchmark printed no GET line:\n" + out)
    header = [h.strip('"') for h in out.splitlines()[0].split(",")]
    values = dict(zip(header, [v.strip('"') for v in lines[-1].split(",")]))
    rps = float(values["rps"])
    return {"responses_per_s": rps, "p50_us": float(values["p50_latency_ms"]) * 1000,
            "p99_us": float(values["p99_latency_ms"]) * 1000, "server_cpu_s": server_cpu,
            "connect_cpu_s": connect_cpu, "server_cpu_with_connects_s": server_cpu_with_connects,
            "per_server_cpu_s_with_connects": requests / server_cpu_with_connects if server_cpu_with_connects > 0
            else float("nan"),
            "server_cpu_share": server_cpu / wall,
            "per_server_cpu_s": requests / server_cpu if server_cpu > 0 else float("nan"), "requests": requests}


def lookup_phase(load, node_processes, links, inflight, duration, rate=0):
    before = server_cpu_of(node_processes)
    wall0 = time.monotonic()
    data = load.command(f"run {links} {inflight} {duration} {rate:.1f}", duration + 30)
    wall = time.monotonic() - wall0
    cpu = server_cpu_of(node_processes) - before
    data["server_cpu_s"] = cpu
    data["server_cpu_share"] = cpu / wall
    data["per_server_cpu_s"] = data["responses"] / cpu if cpu > 0 else float("nan")
    return data


# Benchmark 2's registrar phase: presence links of users of their own beside
# bench-callee's, each login of theirs a presence login with its durable write.
# Their credentials use the fewest PBKDF2 iterations the node accepts (4,096):
# the phase re-logs in by token, which never runs PBKDF2, and 600,000 would cost
# the set-up 0.4 s per user on each side.
REGISTRAR_LINKS = 256
REGISTRAR_USERS = tuple(f"bench-p{i:03d}" for i in range(2, REGISTRAR_LINKS + 1))


def start_lookup_load(ctx, node_info, directory, name, links, targets, presence=True, extra_presence=()):
    pw = os.path.join(ctx["workdir"], "password")
    argv = pin(ctx["load_cpu"]) + [ctx["bin"]["lookup_load"], "--node", node_info["tls"], "--ca",
                                   os.path.join(directory, "ca.crt"), "--user", "bench-q", "--password-file", pw,
                                   "--links", str(links), "--login-inflight", "32"]
    if presence:
        argv += ["--presence-user", "bench-callee", "--presence-password-file", pw,
                 "--presence-address", "10.1.2.3:5000"]
        for user in extra_presence:
            argv += ["--presence-user", user]
    for target in targets:
        argv += ["--target", target]
    return PipedProgram(argv, os.path.join(ctx["workdir"], f"{name}.log"))


def start_before_node(ctx, links):
    """The node of --before-build-dir on its own deployment, with its own lookup load, for a same-run comparison."""
    directory = make_deployment(ctx, "before", users=("bench-q", "bench-callee"), node_binary=ctx["bin"]["before_node"])
    node, info = start_tls_node(ctx, directory, "before-node", None, ctx["bin"]["before_node"])
    load = start_lookup_load(ctx, info, directory, "lookup_load_before", links, ["bench-callee=10.1.2.3"])
    load.read_json(ctx["args"].login_timeout)
    pin_all_threads(node.pid, ctx["server_cpu"])
    # The same relogin phase as the main node: a same-run login figure, and the
    # same history behind both nodes' lookups (without it the main node, which
    # had just done thousands of logins, measured about 6% fewer lookups per
    # CPU-second than this one whichever build ran where).
    duration = ctx["args"].lookup_duration
    before_cpu = server_cpu_of([node])
    relogin = load.command(f"relogin {links} {duration}", duration + 30)
    relogin_cpu = server_cpu_of([node]) - before_cpu
    relogin["per_node_cpu_s"] = ((relogin["relogins"] + relogin["presence_relogins"]) / relogin_cpu
                                 if relogin_cpu > 0 else float("nan"))
    log(f"relogins, --before-build-dir's node: {relogin['per_node_cpu_s']:,.0f} per node CPU-second")
    return {"node": node, "load": load, "relogin": relogin}


def relogin_phase(load, node, verb, links, duration, label):
    """lookup_load's `relogin` (SCRAM) or `resume` (token) phase, with the node's CPU over it."""
    before = server_cpu_of([node])
    phase = load.command(f"{verb} {links} {duration}", duration + 30)
    cpu = server_cpu_of([node]) - before
    phase["node_cpu_s"] = cpu
    total = phase["relogins"] + phase["presence_relogins"]
    phase["per_node_cpu_s"] = total / cpu if cpu > 0 else float("nan")
    log(f"{label}: {total} ({phase['presence_relogins']} with the durable write) in "
        f"{phase['duration_s']:.1f} s = {phase['relogins_per_s']:,.0f}/s, "
        f"{phase['per_node_cpu_s']:,.0f} per node CPU-second")
    return phase


def bench_lookups(ctx, main):
    """Benchmark 2: lookups over TLS vs Redis GET; logins/s while the links log in."""
    args = ctx["args"]
    node, info, directory = main["node"], main["info"], main["dir"]
    link_counts = [int(x) for x in args.lookup_links.split(",")]
    most = max(link_counts)
    # Logins: the node runs on both CPUs while the links log in (scrypt in libuv's
    # thread pool); its CPU time over the login phase gives logins per CPU-second.
    cpu0 = cpu_seconds(node.pid)
    load = start_lookup_load(ctx, info, directory, "lookup_load", most, ["bench-callee=10.1.2.3"],
                             extra_presence=REGISTRAR_USERS)
    ready = load.read_json(args.login_timeout)
    login_cpu = cpu_seconds(node.pid) - cpu0
    ready["node_cpu_s"] = login_cpu
    ready["logins_per_node_cpu_s"] = ready["logins"] / login_cpu if login_cpu > 0 else float("nan")
    log(f"logins: {ready['logins']} in {ready['login_span_s']:.1f} s = {ready['logins_per_s']:.1f}/s, "
        f"{ready['logins_per_node_cpu_s']:.1f} per node CPU-second")
    pin_all_threads(node.pid, ctx["server_cpu"])
    # Logins again on the links already open (SCRAM with the cached
    # SaltedPassword, as a terminal reconnects): the node's CPU per login
    # without TLS handshakes; the presence link's logins carry the durable write.
    ready["relogin"] = relogin_phase(load, node, "relogin", most, args.lookup_duration, "relogins")
    # The same again with login_resume: each link presents the session-resumption
    # token its last login got (one round trip, one HMAC on the node).
    ready["resume"] = relogin_phase(load, node, "resume", most, args.lookup_duration, "token re-logins")
    # A registrar's case: only presence links, each a user of its own, so every
    # login is a presence login with its durable write (Kamailio's REGISTER
    # writes its location record the same way).
    ready["registrar_scram"] = relogin_phase(load, node, "presence-relogin", REGISTRAR_LINKS, args.lookup_duration,
                                             "presence SCRAM logins")
    ready["registrar_token"] = relogin_phase(load, node, "presence-resume", REGISTRAR_LINKS, args.lookup_duration,
                                             "presence token re-logins")
    main["lookup_load"] = load
    before = start_before_node(ctx, most) if ctx["bin"].get("before_node") else None
    # Two peers: Redis over plain TCP (the target's reference) and Redis over
    # TLS 1.3 with the node's own certificate and key (the same record cost
    # per request and answer as our links pay).
    redis_servers = {"redis": start_redis(ctx, ctx["server_cpu"]),
                     "redis-tls": start_redis(ctx, ctx["server_cpu"], tls_directory=directory)}
    for who, (_, redis_port) in redis_servers.items():
        subprocess.run(["redis-benchmark", "-h", HOST, "-p", str(redis_port)]
                       + redis_tls_flags(directory if who == "redis-tls" else None)
                       + ["-t", "set", "-n", "1000", "-d", "128", "-q"], check=True, capture_output=True, timeout=60)
    results = {"tsunagu": {n: [] for n in link_counts}, "redis": {n: [] for n in link_counts + [50]},
               "redis-tls": {n: [] for n in link_counts}, "before": {n: [] for n in link_counts}}
    half_load = {64: []}
    redis_requests = {(who, n): 20000 if n == 1 else 100000 for who in redis_servers for n in link_counts + [50]}
    for round_index in range(args.rounds):
        order = ["tsunagu", "redis", "redis-tls"] if round_index % 2 == 0 else ["redis-tls", "redis", "tsunagu"]
        if before:
            order.insert(1, "before")
        for n in link_counts + [50]:
            for who in order:
                if who != "redis" and n not in link_counts:
                    continue
                if who == "tsunagu":
                    data = lookup_phase(load, [node], n, 1, args.lookup_duration)
                elif who == "before":
                    data = lookup_phase(before["load"], [before["node"]], n, 1, args.lookup_duration)
                else:
                    redis, redis_port = redis_servers[who]
                    data = redis_benchmark(ctx, redis_port, n, redis_requests[(who, n)], redis, ctx["load_cpu"],
                                           directory if who == "redis-tls" else None)
                    # Size the next run to last about as long as ours.
                    redis_requests[(who, n)] = max(5000, int(data["responses_per_s"] * args.lookup_duration))
                results[who][n].append(data)
                if who == "tsunagu" and n == 64:
                    # The same 64 links at half the rate they just reached, open
                    # loop: the latency of a node that is not saturated. Closed
                    # loop at saturation, p50 is 64 in flight over the rate
                    # (Little's law) and p99 the queue behind them.
                    half_rate = data["responses_per_s"] / 2
                    half = lookup_phase(load, [node], 64, 1, args.lookup_duration, half_rate)
                    half_load[64].append(half)
                    log(f"round {round_index + 1}/{args.rounds} lookups tsunagu     64 links at half load "
                        f"({half_rate:,.0f}/s open loop): {half['responses_per_s']:>9,.0f}/s  "
                        f"p50 {half['p50_us']:.0f} µs  p99 {half['p99_us']:.0f} µs  skipped {half['skipped']}  "
                        f"invalid {half['invalid']}")
                log(f"round {round_index + 1}/{args.rounds} lookups {who:9s} {n:5d} links  "
                    f"{data['responses_per_s']:>9,.0f}/s  {data['per_server_cpu_s']:>9,.0f}/server-CPU-s  "
                    f"server CPU {data['server_cpu_share']:.2f}  p50 {data['p50_us']:.0f} µs  "
                    f"p99 {data['p99_us']:.0f} µs" + (f"  invalid {data['invalid']}" if "invalid" in data else
                                                        f"  connects {1000 * data['connect_cpu_s']:.0f} ms CPU"))
    # With several requests per link per turn the write path's batching shows:
    # 64 links x 4 in flight, before and after the change, when there is a before.
    batched = {"tsunagu": [], "before": []}
    if before:
        for round_index in range(args.rounds):
            for who in (["tsunagu", "before"] if round_index % 2 == 0 else ["before", "tsunagu"]):
                l_, n_ = (load, node) if who == "tsunagu" else (before["load"], before["node"])
                data = lookup_phase(l_, [n_], 64, 4, args.lookup_duration)
                batched[who].append(data)
                log(f"round {round_index + 1}/{args.rounds} lookups {who:7s} 64 links x 4 in flight "
                    f"{data['responses_per_s']:>9,.0f}/s  {data['per_server_cpu_s']:>9,.0f}/server-CPU-s  "
                    f"invalid {data['invalid']}")
    for redis, _ in redis_servers.values():
        os.kill(redis.pid, signal.SIGTERM)
        redis.wait(timeout=10)
    ctx["raw"]["lookups"] = {"logins": ready, "results": {k: {str(n): v for n, v in r.items()}
                                                          for k, r in results.items()},
                             "half_load": {str(n): v for n, v in half_load.items()}}
    t, r, rt = results["tsunagu"], results["redis"], results["redis-tls"]
    rows = [("2. first logins/s: TLS connect + SCRAM login (both CPUs)", fmt(ready["logins_per_s"], 1), "", ""),
            ("2. first logins per node CPU-second (TLS handshake included)", fmt(ready["logins_per_node_cpu_s"], 1),
             "", ""),
            (f"2. first login's PBKDF2 on the terminal, ms ({ready.get('scram_iterations', 0):,} iterations)",
             fmt(ready.get("first_login_pbkdf2_ms", float("nan")), 1), "", ""),
            ("2. SCRAM logins per node CPU-second (reconnect: cached SaltedPassword) [peer: Kamailio REGISTER]",
             fmt(ready["relogin"]["per_node_cpu_s"]), "34,700", fmt(ready["relogin"]["per_node_cpu_s"] / 34700, 2) + "x"),
            ("2. of those, presence logins with their durable write", str(ready["relogin"]["presence_relogins"]),
             "", ""),
            ("2. token re-logins per node CPU-second (login_resume: one round trip) [peer: Kamailio REGISTER]",
             fmt(ready["resume"]["per_node_cpu_s"]), "34,700", fmt(ready["resume"]["per_node_cpu_s"] / 34700, 2) + "x"),
            ("2. token re-logins / SCRAM logins per node CPU-second",
             "", "", fmt(ratio(ready["resume"]["per_node_cpu_s"], ready["relogin"]["per_node_cpu_s"]), 2) + "x"),
            ("2. of those, presence logins with their durable write", str(ready["resume"]["presence_relogins"]),
             "", ""),
            (f"2. presence token re-logins per node CPU-second, {REGISTRAR_LINKS} users' presence links, each "
             "with its durable write [peer: Kamailio REGISTER]",
             fmt(ready["registrar_token"]["per_node_cpu_s"]), "34,700",
             fmt(ready["registrar_token"]["per_node_cpu_s"] / 34700, 2) + "x"),
            (f"2. presence SCRAM logins per node CPU-second, {REGISTRAR_LINKS} users' presence links, each "
             "with its durable write [peer: Kamailio REGISTER]",
             fmt(ready["registrar_scram"]["per_node_cpu_s"]), "34,700",
             fmt(ready["registrar_scram"]["per_node_cpu_s"] / 34700, 2) + "x")]
    if before:
        rows.append(("2. SCRAM logins per node CPU-second [peer: --before-build-dir's node]",
                     fmt(ready["relogin"]["per_node_cpu_s"]), fmt(before["relogin"]["per_node_cpu_s"]),
                     fmt(ratio(ready["relogin"]["per_node_cpu_s"], before["relogin"]["per_node_cpu_s"]), 2) + "x"))
    for n in link_counts:
        peer = f"Redis GET -c {n}"
        rows.append((f"2. lookups/s, wall clock, {n} link(s), 1 in flight each [peer: {peer}]",
                     fmt(median(t[n], "responses_per_s")), fmt(median(r[n], "responses_per_s")),
                     fmt(ratio(median(t[n], "responses_per_s"), median(r[n], "responses_per_s")), 2) + "x"))
        rows.append((f"2. lookups per server CPU-second, {n} link(s)", fmt(median(t[n], "per_server_cpu_s")),
                     fmt(median(r[n], "per_server_cpu_s")),
                     fmt(ratio(median(t[n], "per_server_cpu_s"), median(r[n], "per_server_cpu_s")), 2) + "x"))
        rows.append((f"2. lookups per server CPU-second, {n} link(s) [peer: Redis GET over TLS -c {n}]",
                     fmt(median(t[n], "per_server_cpu_s")), fmt(median(rt[n], "per_server_cpu_s")),
                     fmt(ratio(median(t[n], "per_server_cpu_s"), median(rt[n], "per_server_cpu_s")), 2) + "x"))
        if before:
            b_ = results["before"]
            rows.append((f"2. lookups per server CPU-second, {n} link(s) [peer: --before-build-dir's node]",
                         fmt(median(t[n], "per_server_cpu_s")), fmt(median(b_[n], "per_server_cpu_s")),
                         fmt(ratio(median(t[n], "per_server_cpu_s"), median(b_[n], "per_server_cpu_s")), 2) + "x"))
        rows.append((f"2. p50 / p99 latency, µs, {n} link(s)",
                     f"{fmt(median(t[n], 'p50_us'), 0)} / {fmt(median(t[n], 'p99_us'), 0)}",
                     f"{fmt(median(r[n], 'p50_us'), 0)} / {fmt(median(r[n], 'p99_us'), 0)}", ""))
    if half_load[64]:
        h = half_load[64]
        rows.append((f"2. p50 / p99 latency, µs, 64 links at half load ({fmt(median(h, 'rate'))}/s open loop)",
                     f"{fmt(median(h, 'p50_us'), 0)} / {fmt(median(h, 'p99_us'), 0)}", "", ""))
    if before:
        rows.append(("2. lookups per server CPU-second, 64 links x 4 in flight [peer: --before-build-dir's node]",
                     fmt(median(batched["tsunagu"], "per_server_cpu_s")),
                     fmt(median(batched["before"], "per_server_cpu_s")),
                     fmt(ratio(median(batched["tsunagu"], "per_server_cpu_s"),
                               median(batched["before"], "per_server_cpu_s")), 2) + "x"))
    rows.append(("2. Redis GET -c 50: requests/s, per server CPU-second", "",
                 f"{fmt(median(r[50], 'responses_per_s'))}, {fmt(median(r[50], 'per_server_cpu_s'))}", ""))
    invalid = sum(d["invalid"] + d["timeouts"] for runs in t.values() for d in runs)
    rows.append(("2. invalid answers / timeouts (all lookup runs)", str(invalid), "", ""))
    verdicts = []
    per_cpu = max(median(t[n], "per_server_cpu_s") for n in link_counts)
    per_login = ready["relogin"]["per_node_cpu_s"]
    # Beside the target (judged on the registrar phase below): the same logins
    # on query links, and SCRAM, a terminal's reconnect when its token is refused.
    per_token = ready["resume"]["per_node_cpu_s"]
    verdicts.append(f"2. (beside the target) query-link token re-logins per node CPU-second: {per_token:,.0f} "
                    f"({per_token / 34700:.2f}x Kamailio); SCRAM with the cached SaltedPassword: {per_login:,.0f} "
                    f"({per_login / 34700:.2f}x)")
    per_registrar = ready["registrar_token"]["per_node_cpu_s"]
    verdicts.append(f"2. logins with their durable write >= 35,000 per node CPU-second: {per_registrar:,.0f} "
                    + ("MET" if per_registrar >= 35000 else f"MISSED by {(35000 - per_registrar) / 350:.0f}%")
                    + f" (token re-logins on {REGISTRAR_LINKS} presence links; "
                    f"SCRAM: {ready['registrar_scram']['per_node_cpu_s']:,.0f})")
    verdicts.append(f"2. lookups >= 60,000 per server CPU-second over TLS: best {per_cpu:,.0f} "
                    + ("MET" if per_cpu >= 60000 else f"MISSED by {(60000 - per_cpu) / 600:.0f}%"))
    if 64 in link_counts:
        p99 = median(t[64], "p99_us")
        if half_load[64]:
            # Judged below saturation: closed loop at saturation measures the queue
            # the benchmark itself keeps full (64 in flight), not the node's latency.
            half_p99 = median(half_load[64], "p99_us")
            verdicts.append(f"2. lookup p99 < 2 ms at 64 links: {half_p99:,.0f} µs at half load "
                            f"({median(half_load[64], 'rate'):,.0f}/s open loop) "
                            + ("MET" if half_p99 < 2000 else "MISSED")
                            + f"; {p99:,.0f} µs at saturation (closed loop, 64 in flight)")
        else:
            verdicts.append(f"2. lookup p99 < 2 ms at 64 links: {p99:,.0f} µs " + ("MET" if p99 < 2000 else "MISSED"))
        ours, theirs = median(t[64], "responses_per_s"), median(r[50], "responses_per_s")
        verdicts.append(f"2. lookups at 64 links ahead of Redis GET -c 50: {ours:,.0f}/s vs {theirs:,.0f}/s "
                        + ("MET" if ours > theirs else f"MISSED ({ours / theirs:.2f}x)"))
        per_cpu_ratio = ratio(median(t[64], "per_server_cpu_s"), median(r[64], "per_server_cpu_s"))
        tls_ratio = ratio(median(t[64], "per_server_cpu_s"), median(rt[64], "per_server_cpu_s"))
        verdicts.append(f"2. lookups per server CPU-second at 64 links >= 1.0x Redis GET: {per_cpu_ratio:.2f}x "
                        + ("MET" if per_cpu_ratio >= 1.0 else "MISSED")
                        + f" (against Redis GET over TLS, same run: {tls_ratio:.2f}x)")
    verdicts.append(f"2. no invalid lookup answers: {invalid} " + ("MET" if invalid == 0 else "MISSED"))
    return rows, verdicts


def start_agent_and_load(ctx, info, directory, bundle, name, agent_binary):
    """A LAN agent `acme` linked to the node of `info`, and 64 query links looking up its extensions."""
    args = ctx["args"]
    agent_dir = os.path.join(ctx["workdir"], f"agent-{name}")
    os.makedirs(agent_dir)
    config = os.path.join(agent_dir, "agent.toml")
    with open(config, "w") as f:
        f.write(f'''[node]
address = "{info['agent']}"
server_name = "localhost"
ca_certificate = "{bundle}/ca.crt"
certificate = "{bundle}/agent.crt"
private_key = "{bundle}/agent.key"

[agent]
name = "acme"
domains = ["acme"]
data_directory = "{agent_dir}/data"

[hook]
socket = "{agent_dir}/hook.sock"
spool_directory = "{agent_dir}/spool"

[sync]
on_start = false

[policy]
# Off by default (private addresses stay in the LAN); lookup_load checks them.
show_lease_addresses = true
''')
    extensions = 4
    leases = os.path.join(agent_dir, "dnsmasq.leases")
    expiry = int(time.time()) + 86400
    with open(leases, "w") as f:
        for i in range(1, extensions + 1):
            f.write(f"{expiry} 02:55:00:00:00:{i:02x} 10.55.0.{i} ext{1000 + i} *\n")
    for i in range(1, extensions + 1):
        run_checked([agent_binary, "bind", "-c", config, str(1000 + i), f"02:55:00:00:00:{i:02x}"],
                    stdout=subprocess.DEVNULL)
    run_checked([agent_binary, "sync", "-c", config, "--from", f"dnsmasq:{leases}", "--no-progress"],
                stdout=subprocess.DEVNULL)
    agent_log = os.path.join(ctx["workdir"], f"agent-{name}.log")
    agent = start(pin(ctx["server_cpu"]) + [agent_binary, "run", "-c", config, "--log-level", "info"], agent_log)

    def linked():
        with open(agent_log, errors="replace") as f:
            return "linked to the node" in f.read()

    wait_for(linked, 20, "tsunagu-lan-agent (link to the node)", agent)
    targets = [f"{1000 + i}@acme=10.55.0.{i}" for i in range(1, extensions + 1)]
    load = start_lookup_load(ctx, info, directory, f"lookup_load_{name}", 64, targets, presence=False)
    load.read_json(args.login_timeout)
    return agent, load


def bench_forwarded(ctx, main):
    """Benchmark 3: lookups of ID@acme forwarded to a LAN agent, vs direct lookups."""
    args = ctx["args"]
    node, info, directory = main["node"], main["info"], main["dir"]
    agent, fwd = start_agent_and_load(ctx, info, directory, main["bundle"], "fwd", ctx["bin"]["agent"])
    before = None
    if ctx["bin"].get("before_node"):
        bundle = os.path.join(ctx["workdir"], "acme-bundle-before")
        before_dir = make_deployment(ctx, "before-fwd", users=("bench-q",), agents=(("acme", "acme", bundle),),
                                     node_binary=ctx["bin"]["before_node"])
        before_node, before_info = start_tls_node(ctx, before_dir, "before-fwd-node", None, ctx["bin"]["before_node"])
        before_agent, before_load = start_agent_and_load(ctx, before_info, before_dir, bundle, "before",
                                                         ctx["bin"]["before_agent"])
        pin_all_threads(before_node.pid, ctx["server_cpu"])
        before = {"servers": [before_node, before_agent], "load": before_load}
    pin_all_threads(node.pid, ctx["server_cpu"])
    direct = main["lookup_load"]
    results = {"forwarded": {"sat": [], "half": []}, "direct": {"sat": [], "half": []}, "before": {"sat": []}}
    d = args.lookup_duration
    for round_index in range(args.rounds):
        order = ["forwarded", "direct"] if round_index % 2 == 0 else ["direct", "forwarded"]
        if before:
            data = lookup_phase(before["load"], before["servers"], 64, 4, d)
            results["before"]["sat"].append(data)
            log(f"round {round_index + 1}/{args.rounds} saturation forwarded, --before-build-dir's node and agent "
                f"{data['responses_per_s']:>9,.0f}/s  {data['per_server_cpu_s']:>9,.0f}/server-CPU-s  "
                f"invalid {data['invalid']}")
        for who in order:
            load = fwd if who == "forwarded" else direct
            servers = [node, agent] if who == "forwarded" else [node]
            data = lookup_phase(load, servers, 64, 4, d)
            results[who]["sat"].append(data)
            log(f"round {round_index + 1}/{args.rounds} saturation {who:9s} {data['responses_per_s']:>9,.0f}/s  "
                f"{data['per_server_cpu_s']:>9,.0f}/server-CPU-s  p50 {data['p50_us']:.0f} µs  "
                f"p99 {data['p99_us']:.0f} µs  invalid {data['invalid']}")
        half = median(results["forwarded"]["sat"], "responses_per_s") / 2
        for who in order:
            load = fwd if who == "forwarded" else direct
            servers = [node, agent] if who == "forwarded" else [node]
            data = lookup_phase(load, servers, 64, 4, d, half)
            results[who]["half"].append(data)
            log(f"round {round_index + 1}/{args.rounds} half load {who:9s} at {half:,.0f}/s: "
                f"{data['responses_per_s']:>9,.0f}/s  p50 {data['p50_us']:.0f} µs  p99 {data['p99_us']:.0f} µs  "
                f"skipped {data['skipped']}  invalid {data['invalid']}")
    ctx["raw"]["forwarded"] = results
    f_, d_ = results["forwarded"], results["direct"]
    rows = [
        ("3. lookups/s at saturation, 64 links x 4 in flight [peer: direct lookup]",
         fmt(median(f_["sat"], "responses_per_s")), fmt(median(d_["sat"], "responses_per_s")),
         fmt(ratio(median(f_["sat"], "responses_per_s"), median(d_["sat"], "responses_per_s")), 2) + "x"),
        ("3. lookups per server CPU-second (node + agent for forwarded)", fmt(median(f_["sat"], "per_server_cpu_s")),
         fmt(median(d_["sat"], "per_server_cpu_s")),
         fmt(ratio(median(f_["sat"], "per_server_cpu_s"), median(d_["sat"], "per_server_cpu_s")), 2) + "x"),
        ("3. p50 / p99 latency at saturation, µs",
         f"{fmt(median(f_['sat'], 'p50_us'))} / {fmt(median(f_['sat'], 'p99_us'))}",
         f"{fmt(median(d_['sat'], 'p50_us'))} / {fmt(median(d_['sat'], 'p99_us'))}", ""),
        (f"3. p50 / p99 latency at half load ({fmt(median(f_['half'], 'rate'))}/s open loop), µs",
         f"{fmt(median(f_['half'], 'p50_us'))} / {fmt(median(f_['half'], 'p99_us'))}",
         f"{fmt(median(d_['half'], 'p50_us'))} / {fmt(median(d_['half'], 'p99_us'))}",
         fmt(ratio(median(f_['half'], 'p99_us'), median(d_['half'], 'p99_us')), 2) + "x (p99)"),
        ("3. added cost of forwarding: p50 at half load, µs; server CPU µs per lookup",
         f"{median(f_['half'], 'p50_us') - median(d_['half'], 'p50_us'):+,.0f}", "",
         f"{1e6 / median(f_['sat'], 'per_server_cpu_s') - 1e6 / median(d_['sat'], 'per_server_cpu_s'):+,.1f} µs CPU"),
    ]
    if before:
        b_ = results["before"]["sat"]
        rows.append(("3. forwarded lookups per server CPU-second [peer: --before-build-dir's node + agent]",
                     fmt(median(f_["sat"], "per_server_cpu_s")), fmt(median(b_, "per_server_cpu_s")),
                     fmt(ratio(median(f_["sat"], "per_server_cpu_s"), median(b_, "per_server_cpu_s")), 2) + "x"))
    invalid = sum(x["invalid"] + x["timeouts"] for runs in f_.values() for x in runs)
    rows.append(("3. invalid answers / timeouts (forwarded runs)", str(invalid), "", ""))
    sat, p99 = median(f_["sat"], "responses_per_s"), median(f_["half"], "p99_us")
    verdicts = [
        f"3. forwarded lookups p99 < 2 ms at half load: {p99:,.0f} µs " + ("MET" if p99 < 2000 else "MISSED"),
        f"3. forwarded lookups >= 30,000/s at saturation: {sat:,.0f}/s "
        + ("MET" if sat >= 30000 else f"MISSED by {(30000 - sat) / 300:.0f}%"),
    ]
    return rows, verdicts


def bench_call(ctx, main):
    """Benchmark 6: call setup through our node vs the bare-libnice ICE floor."""
    args = ctx["args"]
    info, directory = main["info"], main["dir"]
    env = dict(os.environ, TSUNAGU_NODE=info["tls"], TSUNAGU_CA=os.path.join(directory, "ca.crt"),
               TSUNAGU_PASSWORD=PASSWORD)
    cli = ctx["bin"]["cli"]
    listen_log = os.path.join(ctx["workdir"], "listen.log")
    listen_report = os.path.join(ctx["workdir"], "listen-report.json")
    listener = start(pin(ctx["load_cpu"]) + [cli, "listen", "-u", "bob", "--auto-accept-from", "alice",
                                             "--ice-address", HOST, "--report", listen_report],
                     listen_log, env=env)

    def online():
        with open(listen_log, errors="replace") as f:
            return "listening as" in f.read()

    wait_for(online, 30, "tsunagu listen", listener)
    calls, floors = [], []
    for i in range(args.call_rounds):
        for who in (("call", "floor") if i % 2 == 0 else ("floor", "call")):
            if who == "call":
                report = os.path.join(ctx["workdir"], f"call-{i}.json")
                argv = pin(ctx["load_cpu"]) + [cli, "call", "bob", "-u", "alice", "--echo-test", "1",
                                               "--ice-address", HOST, "--report", report]
                if i == 0:
                    commands_run.append(" ".join(argv))
                result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
                if result.returncode != 0 or not os.path.exists(report):
                    log(f"call {i}: exit {result.returncode}: {result.stderr.strip()[-300:]}")
                    continue
                with open(report) as f:
                    data = json.load(f)
                calls.append(data)
                log(f"call {i + 1}/{args.call_rounds}: accepted {data['accepted_ms']} ms, connected "
                    f"{data['connected_ms']} ms, first byte {data['first_byte_ms']} ms "
                    f"({data['local_type']}->{data['remote_type']})")
            else:
                argv = pin(ctx["load_cpu"]) + [ctx["bin"]["ice_floor"], "--iterations", "1"]
                if i == 0:
                    commands_run.append(" ".join(argv))
                out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
                if out.returncode != 0:
                    log(f"ice_floor {i}: {out.stderr.strip()}")
                    continue
                data = json.loads(out.stdout.strip().splitlines()[-1])
                floors.append(data)
                log(f"floor {i + 1}/{args.call_rounds}: connected {data['connected_ms_median']:.1f} ms, first byte "
                    f"{data['first_byte_ms_median']:.1f} ms")
    ctx["raw"]["call"] = {"calls": calls, "floor": floors}
    if not calls or not floors:
        return [("6. call setup", "failed", "", "")], ["6. call setup: NOT MEASURED (see the log above)"]
    c_conn = statistics.median(c["connected_ms"] for c in calls)
    c_first = statistics.median(c["first_byte_ms"] for c in calls)
    c_acc = statistics.median(c["accepted_ms"] for c in calls)
    f_conn = statistics.median(f["connected_ms_median"] for f in floors)
    f_first = statistics.median(f["first_byte_ms_median"] for f in floors)
    rows = [
        ("6. call -> accepted, ms (median) [peer: ICE floor, 2 bare libnice agents]", fmt(c_acc, 0), "", ""),
        ("6. call -> ICE connected, ms (aggressive nomination, datagrams)", fmt(c_conn, 0), fmt(f_conn, 1),
         fmt(ratio(c_conn, f_conn), 2) + "x"),
        ("6. call -> first byte, ms", fmt(c_first, 0), fmt(f_first, 1), fmt(ratio(c_first, f_first), 2) + "x"),
        ("6. our signalling's share: first byte minus the floor's, ms", fmt(c_first - f_first, 0), "", ""),
    ]
    r = ratio(c_first, f_first)
    verdicts = [f"6. call setup <= 1.2x the ICE floor (first byte): {r:.2f}x " + ("MET" if r <= 1.2 else "MISSED"),
                f"6. our signalling adds <= 5 ms: {c_first - f_first:.0f} ms "
                + ("MET" if c_first - f_first <= 5 else "MISSED")]
    return rows, verdicts


# ---------------------------------------------------------------- 7. voice


def bench_web(ctx):
    """Benchmark 8: bench/web/run_web.py's HTTPS lookups, Tsunagu vs nginx (see there)."""
    sys.path.insert(0, os.path.join(ROOT, "bench", "web"))
    import run_web
    return run_web.bench_web(ctx)


def bench_browser(ctx):
    """Benchmark 9: bench/browser/run_browser.py's call setup, page -> CLI vs page -> page (see there)."""
    sys.path.insert(0, os.path.join(ROOT, "bench", "browser"))
    import run_browser
    return run_browser.bench_browser(ctx)


def bench_voice(ctx):
    """Benchmark 7: bench/voice/run_voice.py's calls, Tsunagu vs baresip (see there)."""
    sys.path.insert(0, os.path.join(ROOT, "bench", "voice"))
    import run_voice
    return run_voice.bench_voice(ctx)


# ---------------------------------------------------------------- 4. idle links


def bench_idle(ctx):
    args = ctx["args"]
    limit = ctx["nofile"]
    # Each side holds one descriptor per link plus its own (LMDB, epoll, libuv):
    # leave 1,000 spare.
    top = min(args.idle_links, limit - 1000)
    stages = [n for n in (10000, top) if n <= top]
    stages = sorted(set(stages))
    # Every link comes from 127.0.0.1 and none logs in: above 10,000 links the
    # node's defaults (limits.max_links 10000) and the deployment's
    # max_prelogin_links_per_source would close them (the node still lowers
    # max_links to its descriptor limit).
    many_links = {"max_links": top + 100, "max_prelogin_links_per_source": top + 100}
    directory = make_deployment(ctx, "idle", settings=many_links)
    node, info = start_tls_node(ctx, directory, "idle-node", ctx["server_cpu"])
    def start_bare(name, extra):
        ready = os.path.join(ctx["workdir"], f"{name}-ready.json")
        process = start(pin(ctx["server_cpu"]) + [ctx["bin"]["bare_tls"], "--listen", f"{HOST}:0", "--cert",
                                                  os.path.join(directory, "node.crt"), "--key",
                                                  os.path.join(directory, "node.key"), "--ready-file", ready] + extra,
                        os.path.join(ctx["workdir"], f"{name}.log"))
        wait_for(lambda: os.path.exists(ready), 10, "bare_tls_server", process)
        with open(ready) as f:
            return process, json.load(f)["port"]

    bare, bare_port = start_bare("bare", [])
    # The same server answering every message (it sends the keepalive back):
    # the floor for a server that must answer, as the node does.
    bare_echo, bare_echo_port = start_bare("bare-echo", ["--echo"])
    time.sleep(0.5)
    ca = os.path.join(directory, "ca.crt")
    servers = [("tsunagu", node, info["tls"], ca), ("bare", bare, f"{HOST}:{bare_port}", ca),
               ("bare-echo", bare_echo, f"{HOST}:{bare_echo_port}", ca)]
    if ctx["bin"].get("before_node"):
        before_dir = make_deployment(ctx, "idle-before", node_binary=ctx["bin"]["before_node"], settings=many_links)
        before, before_info = start_tls_node(ctx, before_dir, "idle-before-node", ctx["server_cpu"],
                                             ctx["bin"]["before_node"])
        servers.insert(1, ("before", before, before_info["tls"], os.path.join(before_dir, "ca.crt")))
    # Every server holds its links at once; then the keepalive windows
    # alternate between them, --rounds windows each (the order turns each
    # round), so each comparison is made under the same machine load: one
    # server's window 3-4 minutes after another's crossed the target from
    # run to run (issue 18). The servers not in a window get no traffic.
    results, holders = {}, {}
    for who, process, target, ca in servers:
        argv = pin(ctx["load_cpu"]) + [ctx["bin"]["idle_links"], "--target", target, "--ca", ca,
                                       "--server-pid", str(process.pid),
                                       "--stages", ",".join(map(str, stages)), "--idle-window", str(args.idle_window),
                                       "--keepalive-interval", "15", "--timeout", "600", "--windows-on-stdin", "1"]
        holder = PipedProgram(argv, os.path.join(ctx["workdir"], f"idle-links-{who}.log"))
        # 18,000 handshakes at the 60-100 accepted/s of a machine at load 15
        # take 3-5 minutes: the limit is there for a server that stops accepting.
        data = holder.read_json(660)
        data["windows"] = []
        results[who], holders[who] = data, holder
        for stage in data["stages"]:
            log(f"idle {who:9s} {stage['links']:6d} links: {stage['accepted_per_s']:,.0f} accepted/s, "
                f"RSS {stage['server_rss_kib'] / 1024:,.1f} MiB, {stage['anon_per_link_bytes']:,.0f} B anon per link")
    names = [who for who, *_ in servers]
    for round_index in range(max(1, args.rounds)):
        shift = round_index % len(names)
        for who in names[shift:] + names[:shift]:
            window = holders[who].command("window", args.idle_window + 60)
            results[who]["windows"].append(window)
            log(f"idle round {round_index + 1} {who:9s}: {window['keepalives_sent']} keepalives in "
                f"{window['idle_window_s']:.1f} s, {window['answers']} answers, server CPU "
                f"{window['idle_server_cpu_share'] * 100:.2f}%  (load {os.getloadavg()[0]:.1f})")
    for who, process, *_ in servers:
        holders[who].process.stdin.close()  # resets its links
        holders[who].process.wait(timeout=60)
        os.kill(process.pid, signal.SIGTERM)
    for data in results.values():
        data["links"] = data["opened"]
        shares = sorted(w["idle_server_cpu_share"] for w in data["windows"])
        data["idle_server_cpu_share"] = shares[len(shares) // 2]  # the median window
    # The node's ratio to each peer window by window (same round), and their median.
    for who in names:
        if who == "tsunagu":
            continue
        per_round = [ratio(t["idle_server_cpu_share"], p["idle_server_cpu_share"])
                     for t, p in zip(results["tsunagu"]["windows"], results[who]["windows"])]
        results[who]["node_ratio_by_round"] = per_round
        log(f"idle node / {who}, round by round: " + ", ".join(f"{r:.2f}x" for r in per_round)
            + f"; median {sorted(per_round)[len(per_round) // 2]:.2f}x")
    stop_all()
    ctx["raw"]["idle"] = results
    t, b = results["tsunagu"], results["bare"]
    rows = [(f"4. descriptor limit (RLIMIT_NOFILE) for each process: {limit:,}; links sized to {top:,}", "", "", "")]
    for st, sb in zip(t["stages"], b["stages"]):
        n = st["links"]
        rows.append((f"4. user memory (RssAnon) per idle TLS link, {n:,} links, bytes [peer: bare TLS server]",
                     fmt(st["anon_per_link_bytes"]), fmt(sb["anon_per_link_bytes"]),
                     fmt(ratio(st["anon_per_link_bytes"], sb["anon_per_link_bytes"]), 2) + "x"))
        rows.append((f"4. server RSS with {n:,} links, MiB", fmt(st["server_rss_kib"] / 1024, 1),
                     fmt(sb["server_rss_kib"] / 1024, 1), fmt(ratio(st["server_rss_kib"], sb["server_rss_kib"]), 2) + "x"))
        rows.append((f"4. TLS connections accepted/s while opening up to {n:,}", fmt(st["accepted_per_s"]),
                     fmt(sb["accepted_per_s"]), fmt(ratio(st["accepted_per_s"], sb["accepted_per_s"]), 2) + "x"))
    if "before" in results:
        rows.append((f"4. server CPU share with {t['links']:,} links sending a keepalive every 15 s "
                     f"[peer: --before-build-dir's node]", f"{t['idle_server_cpu_share'] * 100:.2f}%",
                     f"{results['before']['idle_server_cpu_share'] * 100:.2f}%",
                     fmt(ratio(t["idle_server_cpu_share"], results["before"]["idle_server_cpu_share"]), 2) + "x"))
    e = results["bare-echo"]
    rows.append((f"4. server CPU share with {t['links']:,} links sending a keepalive every 15 s "
                 f"[peer: bare TLS server answering each]", f"{t['idle_server_cpu_share'] * 100:.2f}%",
                 f"{e['idle_server_cpu_share'] * 100:.2f}%",
                 fmt(ratio(t["idle_server_cpu_share"], e["idle_server_cpu_share"]), 2) + "x"))
    for who, label in (("before", "--before-build-dir's node"), ("bare-echo", "bare TLS server answering each")):
        if who in results:
            by_round = results[who]["node_ratio_by_round"]
            rows.append((f"4. node's keepalive CPU / {label}'s, window by window (same round), median "
                         f"[{', '.join(f'{r:.2f}x' for r in by_round)}]", "", "",
                         fmt(sorted(by_round)[len(by_round) // 2], 2) + "x"))
    rows.append((f"4. server CPU share with {t['links']:,} links sending a keepalive every 15 s",
                 pct_text(t["idle_server_cpu_share"] * 100) if t["idle_server_cpu_share"] >= 0.01 else
                 f"{t['idle_server_cpu_share'] * 100:.2f}%", f"{b['idle_server_cpu_share'] * 100:.2f}%", ""))
    worst = max(s["anon_per_link_bytes"] for s in t["stages"])
    verdicts = [f"4. <= 16 KiB of user memory per TLS link: {worst / 1024:.1f} KiB "
                + ("MET" if worst <= 16384 else f"MISSED by {(worst - 16384) / 16384 * 100:.0f}%"),
                f"4. near-zero CPU with keepalives: {t['idle_server_cpu_share'] * 100:.2f}% of a core at "
                f"{t['links']:,} links " + ("MET" if t["idle_server_cpu_share"] < 0.02 else "MISSED"),
                keepalive_verdict(t, b, e)]
    return rows, verdicts


def keepalive_verdict(t, silent, answering):
    """Judged against the bare server that answers each keepalive, as the node
    must (a terminal learns from the answer that its link and NAT binding hold):
    the median of the same-round window pairs, which the machine's drift
    between rounds moves least. The silent server (reads, never writes) is
    printed as the floor beside it."""
    by_round = answering.get("node_ratio_by_round") or []
    paired = sorted(by_round)[len(by_round) // 2] if by_round else ratio(t["idle_server_cpu_share"],
                                                                          answering["idle_server_cpu_share"])
    return (f"4. keepalive CPU <= 1.2x the bare TLS server's (answering each keepalive): {paired:.2f}x, median of "
            f"{len(by_round) or 1} same-round window pair(s) " + ("MET" if paired <= 1.2 else "MISSED")
            + f" (the silent server, which never answers: "
            f"{ratio(t['idle_server_cpu_share'], silent['idle_server_cpu_share']):.2f}x)")


# ---------------------------------------------------------------- 5. DHCP


def bench_dhcp(ctx):
    args = ctx["args"]
    agent_binary, hook_binary = ctx["bin"]["agent"], ctx["bin"]["hook"]
    agent_dir = os.path.join(ctx["workdir"], "agent-dhcp")
    os.makedirs(agent_dir)
    config = os.path.join(agent_dir, "agent.toml")
    socket_path = os.path.join(agent_dir, "hook.sock")
    with open(config, "w") as f:
        f.write(f'''[agent]
data_directory = "{agent_dir}/data"
log_level = "warn"

[table]
hostname_rule = "ext-{{ext}}"

[hook]
socket = "{socket_path}"
spool_directory = "{agent_dir}/spool"

[sync]
on_start = false
''')
    agent = start(pin(ctx["server_cpu"]) + [agent_binary, "run", "-c", config],
                  os.path.join(ctx["workdir"], "agent-dhcp.log"))
    wait_for(lambda: os.path.exists(socket_path), 15, "tsunagu-lan-agent hook socket", agent)
    results = {}

    # a) The real hook program, as dnsmasq runs it: one process per event, one
    #    at a time (dnsmasq waits for each), started with posix_spawn from the
    #    runner (pinned to the load CPU, which the children inherit). It runs
    #    from a copy written front to back, as `meson install` and dpkg write
    #    the installed program: exec'ing the linker's output file in place cost
    #    0.15-0.25 ms more per call here (its page cache is in small pieces, so
    #    exec takes more page faults; docs/performance.md, Benchmark 5), which
    #    the runner measures too, for 1 s, as the last row of the table.
    installed_hook = os.path.join(agent_dir, "tsunagu-dhcp-hook")
    shutil.copyfile(hook_binary, installed_hook)
    os.chmod(installed_hook, 0o755)
    expiry = int(time.time()) + 3600
    hook_env = dict(os.environ, DNSMASQ_LEASE_EXPIRES=str(expiry), DNSMASQ_INTERFACE="bench0")
    quiet = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0), (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]

    def run_hooks(binary, duration, first):
        """Calls the hook one at a time for `duration` seconds, events numbered from `first`."""
        if ctx["load_cpu"] is not None:
            saved_affinity = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {ctx["load_cpu"]})
        cpu0 = cpu_seconds(agent.pid)
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        count, failed, latencies = 0, 0, []
        while time.monotonic() - t0 < duration and count < 20000:
            i = first + count
            argv = [binary, "--config", config, "--", "add", f"02:66:00:{(i >> 16) & 0xff:02x}:{(i >> 8) & 0xff:02x}:"
                    f"{i & 0xff:02x}", f"10.66.{(i >> 8) & 0xff}.{i & 0xff}", f"ext-{20000 + i}"]
            started = time.monotonic()
            pid = os.posix_spawn(binary, argv, hook_env, file_actions=quiet)
            failed += os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
            latencies.append(time.monotonic() - started)
            count += 1
        wall = time.monotonic() - t0
        agent_cpu = cpu_seconds(agent.pid) - cpu0
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if ctx["load_cpu"] is not None:
            os.sched_setaffinity(0, saved_affinity)
        program_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
        latencies.sort()
        return {"events": count, "seconds": wall, "events_per_s": count / wall, "failed": failed,
                "agent_cpu_s": agent_cpu, "hook_cpu_ms_per_call": 1000 * program_cpu / max(count, 1),
                "p50_ms": 1000 * latencies[len(latencies) // 2],
                "p99_ms": 1000 * latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)]}

    commands_run.append(f"{installed_hook} --config {config} -- add MAC IP HOSTNAME  (one at a time, "
                        f"{args.dhcp_duration:g} s; a copy of {hook_binary})")
    results["hook_program"] = run_hooks(installed_hook, args.dhcp_duration, 0)
    results["hook_program_in_build_tree"] = run_hooks(hook_binary, 1.0, results["hook_program"]["events"])
    time.sleep(0.3)
    listing = subprocess.run([agent_binary, "list", "-c", config], capture_output=True, text=True, timeout=60).stdout
    in_table = sum(1 for line in listing.splitlines() if "10.66." in line)
    called = results["hook_program"]["events"] + results["hook_program_in_build_tree"]["events"]
    results["hook_program"]["in_table"] = in_table
    results["hook_program"]["called_in_all"] = called
    for label, run in (("installed copy", results["hook_program"]),
                       ("the linker's output in place", results["hook_program_in_build_tree"])):
        log(f"dhcp: real hook ({label}), one at a time: {run['events']} events in {run['seconds']:.1f} s = "
            f"{run['events_per_s']:,.0f}/s (p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms per call, "
            f"{run['hook_cpu_ms_per_call']:.2f} ms hook CPU per call)")
    log(f"dhcp: {in_table} of the {called} hook calls' leases in the table")

    # The disk's flush latency: before issue 18 every ACK waited for an LMDB
    # commit, two of these; now the agent's table commits to the page cache and
    # flushes once a second on the thread pool (docs/security.md), so this is
    # what the ACK no longer waits for, and what the sync command's commits
    # (flushed) still do.
    probe = os.path.join(agent_dir, "fdatasync-probe")
    fd = os.open(probe, os.O_CREAT | os.O_WRONLY, 0o600)
    os.pwrite(fd, b"\0" * 8192, 0)
    os.fdatasync(fd)
    flushes = []
    for i in range(40):
        os.pwrite(fd, bytes([i]) * 4096, (i % 2) * 4096)
        started = time.monotonic()
        os.fdatasync(fd)
        flushes.append(time.monotonic() - started)
    os.close(fd)
    os.unlink(probe)
    flushes.sort()
    results["fdatasync_ms"] = {"p50": 1000 * flushes[len(flushes) // 2], "p90": 1000 * flushes[len(flushes) * 9 // 10]}
    log(f"dhcp: fdatasync of a 4 KiB overwrite in the agent's directory: p50 {results['fdatasync_ms']['p50']:.2f} ms, "
        f"p90 {results['fdatasync_ms']['p90']:.2f} ms")

    # b) The hook socket driven directly: many hooks at once.
    flood = {}
    for events_per_request in (1, 64):
        argv = pin(ctx["load_cpu"]) + [ctx["bin"]["hook_flood"], "--socket", socket_path, "--connections", "16",
                                       "--events", str(events_per_request), "--clients", "5000",
                                       "--duration", str(args.dhcp_duration)]
        commands_run.append(" ".join(argv))
        cpu0 = cpu_seconds(agent.pid)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=args.dhcp_duration + 30, check=True)
        data = json.loads(out.stdout.strip().splitlines()[-1])
        data["agent_cpu_s"] = cpu_seconds(agent.pid) - cpu0
        data["per_agent_cpu_s"] = data["acked_events"] / data["agent_cpu_s"] if data["agent_cpu_s"] > 0 else float("nan")
        # The callers' own CPU per call: when both it and the agent's are far
        # below a CPU's worth, the rate is set by the run queues, not by either.
        data["client_cpu_us_per_call"] = 1e6 * data.get("client_cpu_s", float("nan")) / max(data["acked_requests"], 1)
        flood[events_per_request] = data
        log(f"dhcp: hook socket, {events_per_request} event(s) per call: {data['events_per_s']:,.0f} events/s, "
            f"{data['per_agent_cpu_s']:,.0f} per agent CPU-second ({data['agent_cpu_s']:.2f} s of agent CPU, "
            f"{data['client_cpu_us_per_call']:.1f} us of hook_flood CPU per call), NAKs {data['naks']}, "
            f"failures {data['failures']}")
    results["hook_socket"] = flood

    # c) 100,000-lease dnsmasq file synced with the admin command.
    leases = os.path.join(agent_dir, "dnsmasq-100k.leases")
    expiry = int(time.time()) + 86400
    with open(leases, "w") as f:
        for i in range(100000):
            mac = f"02:00:00:{(i >> 16) & 0xff:02x}:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}"
            f.write(f"{expiry} {mac} 10.{(i >> 16) & 0xff}.{(i >> 8) & 0xff}.{i & 0xff} ext-{10000 + i} *\n")
    # Into an empty table of its own first (the first sync, or the rebuild
    # after a power cut: the bulk load), again unchanged, then into the
    # running agent's table, which holds the hook runs' leases (lease by lease).
    empty_table_config = os.path.join(agent_dir, "sync-empty.toml")
    with open(config) as f:
        text = f.read()
    with open(empty_table_config, "w") as f:
        f.write(text.replace(f'data_directory = "{agent_dir}/data"', f'data_directory = "{agent_dir}/data-sync"')
                .replace(f'socket = "{socket_path}"', f'socket = "{agent_dir}/hook-sync.sock"'))
    syncs = []
    for label, sync_config in (("into an empty table", empty_table_config),
                               ("again, unchanged", empty_table_config),
                               ("into the agent's table (hook leases in it)", config)):
        argv = pin(ctx["server_cpu"]) + [agent_binary, "sync", "-c", sync_config, "--from", f"dnsmasq:{leases}",
                                         "--no-progress"]
        if label == "into an empty table":
            commands_run.append(" ".join(argv))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        syncs.append({"label": label, "wall_s": wall, "cpu_s": cpu, "output": out.stdout.strip()})
        log(f"dhcp: sync of 100,000 leases {label}: {wall:.2f} s wall, {cpu:.2f} s CPU: {out.stdout.strip()}")
    results["sync"] = syncs
    os.kill(agent.pid, signal.SIGTERM)

    # d) In process: AllocationTable batches, no sockets (the unit tests' program).
    argv = pin(ctx["server_cpu"]) + [ctx["bin"]["alloc_throughput"]]
    commands_run.append(" ".join(argv))
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True).stdout
    in_process = {}
    for line in out.splitlines():
        m = re.match(r"hook events: \d+ applied in batches of (\d+): .*\(([\d.]+) events/s\), .*\(([\d.]+) events/s\)",
                     line)
        if m:
            in_process[int(m.group(1))] = {"wall_per_s": float(m.group(2)), "cpu_per_s": float(m.group(3))}
    results["in_process"] = in_process
    results["in_process_output"] = out
    log("dhcp: in process:\n" + out.strip())
    stop_all()
    ctx["raw"]["dhcp"] = results
    f1, f64 = flood[1], flood[64]
    ref = in_process.get(100, {}).get("wall_per_s", float("nan"))
    rows = [
        ("5. hook events applied/s: real tsunagu-dhcp-hook, a process per event, one at a time [peer: in-process table, batches of 100]",
         fmt(results["hook_program"]["events_per_s"]), fmt(ref),
         fmt(ratio(results["hook_program"]["events_per_s"], ref), 2) + "x"),
        ("5. hook events applied/s: hook socket, 16 hooks at once, 1 event per call", fmt(f1["events_per_s"]),
         fmt(ref), fmt(ratio(f1["events_per_s"], ref), 2) + "x"),
        ("5. hook events applied/s: hook socket, 16 at once, 64 events per call", fmt(f64["events_per_s"]),
         fmt(ref), fmt(ratio(f64["events_per_s"], ref), 2) + "x"),
        ("5. real hook p50 / p99 per call, ms; its CPU per call, ms",
         f"{results['hook_program']['p50_ms']:.2f} / {results['hook_program']['p99_ms']:.2f}; "
         f"{results['hook_program']['hook_cpu_ms_per_call']:.2f}", "", ""),
        ("5. hook socket p50 / p99 ack latency, 1 event per call, µs", f"{fmt(f1['p50_us'])} / {fmt(f1['p99_us'])}",
         "", ""),
        ("5. the disk's fdatasync p50 / p90, ms (no longer under an ACK: the table flushes once a second)",
         f"{results['fdatasync_ms']['p50']:.2f} / {results['fdatasync_ms']['p90']:.2f}", "", ""),
        ("5. sync of a 100,000-lease dnsmasq file into an empty table, s (wall / CPU)",
         f"{syncs[0]['wall_s']:.2f} / {syncs[0]['cpu_s']:.2f}", "", ""),
        ("5. the same file again (unchanged), s (wall / CPU)", f"{syncs[1]['wall_s']:.2f} / {syncs[1]['cpu_s']:.2f}",
         "", ""),
        ("5. the same file into the agent's table, which holds the hook runs' leases, s (wall / CPU)",
         f"{syncs[2]['wall_s']:.2f} / {syncs[2]['cpu_s']:.2f}", "", ""),
        ("5. real hook run from the linker's output file in place (1 s): events/s; its CPU per call, ms",
         f"{fmt(results['hook_program_in_build_tree']['events_per_s'])}; "
         f"{results['hook_program_in_build_tree']['hook_cpu_ms_per_call']:.2f}", "", ""),
    ]
    best = max(f1["events_per_s"], f64["events_per_s"])
    verdicts = [
        f"5. >= 20,000 hook events/s applied: {f1['events_per_s']:,.0f}/s one event per call, "
        f"{f64['events_per_s']:,.0f}/s 64 per call, {results['hook_program']['events_per_s']:,.0f}/s through the "
        "hook program: " + ("MET" if f1["events_per_s"] >= 20000 else
                            "MISSED for one event per call (dnsmasq's case)"
                            + (", met only with batched calls" if best >= 20000 else "")),
        f"5. real hook >= 500 events/s one at a time: {results['hook_program']['events_per_s']:,.0f}/s "
        + ("MET" if results["hook_program"]["events_per_s"] >= 500 else "MISSED"),
        f"5. 100,000-lease sync into an empty table <= 1 s: {syncs[0]['wall_s']:.2f} s wall, "
        f"{syncs[0]['cpu_s']:.2f} s CPU " + ("MET" if syncs[0]["wall_s"] <= 1 else "MISSED"),
    ]
    return rows, verdicts


# ---------------------------------------------------------------- output


def render(rows, verdicts, ctx):
    header = ("metric", "Tsunagu", "peer", "ratio")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    lines = ["| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        lines.append("| " + r[0].ljust(widths[0]) + " | " + " | ".join(r[i].rjust(widths[i]) for i in (1, 2, 3)) + " |")
    placement = ("servers pinned to CPU 0, load generators to CPU 1" if ctx["pinned"] else "not pinned (one CPU)")
    args = ctx["args"]
    setup = (f"{args.rounds} interleaved rounds; medians shown; RLIMIT_NOFILE {ctx['nofile']:,}; "
             f"benchmarks: {', '.join(ctx['selected'])}; took {ctx['elapsed']:.0f} s")
    return "\n".join([f"machine: {machine_description()}; {placement}", setup, ""] + lines + ["", "targets:"]
                     + ["  " + v for v in verdicts])


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {','.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=4.0, help="STUN: seconds per throughput run (default 4)")
    parser.add_argument("--latency-duration", type=float, default=2.0,
                        help="STUN: seconds per latency run at 64 in flight (default 2)")
    parser.add_argument("--inflight", type=int, default=256, help="STUN: requests in flight (default 256)")
    parser.add_argument("--sockets", type=int, default=4, help="STUN: generator sockets (default 4)")
    parser.add_argument("--lookup-links", default="1,64,1024", help="lookups: link counts (default 1,64,1024)")
    parser.add_argument("--lookup-duration", type=float, default=2.0, help="lookups: seconds per run (default 2)")
    parser.add_argument("--login-timeout", type=float, default=300, help="lookups: seconds allowed for the logins")
    parser.add_argument("--idle-links", type=int, default=18000, help="idle: most links (default 18000)")
    parser.add_argument("--idle-window", type=float, default=5.0, help="idle: keepalive window, seconds (default 5)")
    parser.add_argument("--dhcp-duration", type=float, default=3.0, help="dhcp: seconds per hook run (default 3)")
    parser.add_argument("--call-rounds", type=int, default=5, help="call: calls and floor runs (default 5 each)")
    parser.add_argument("--voice-runs", type=int, default=3, help="voice: calls per program and loss rate (default 3)")
    parser.add_argument("--voice-loss", default="0,5", help="voice: media loss rates, percent (default 0,5)")
    parser.add_argument("--voice-seconds", type=float, default=6.0, help="voice: speech seconds per call (default 6)")
    parser.add_argument("--web-duration", type=float, default=5.0, help="web: seconds per wrk run (default 5)")
    parser.add_argument("--web-connections", type=int, default=64, help="web: wrk keep-alive connections (default 64)")
    parser.add_argument("--web-nginx-port", type=int, default=34820)
    parser.add_argument("--browser-rounds", type=int, default=7,
                        help="browser: calls to the CLI and to a page, alternating (default 7 each)")
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    parser.add_argument("--no-build", action="store_true", help="use the binaries already in --build-dir")
    parser.add_argument("--before-build-dir",
                        help="lookups, forwarded, idle: also run the node (and agent) of this build in the same "
                             "rounds, to measure a change before and after")
    parser.add_argument("--coturn-port", type=int, default=34780)
    parser.add_argument("--node-port", type=int, default=34790)
    parser.add_argument("--echo-port", type=int, default=34800)
    parser.add_argument("--redis-port", type=int, default=34810)
    parser.add_argument("--redis-tls-port", type=int, default=34811,
                        help="lookups: the second Redis, TLS only (its peer over TLS)")
    parser.add_argument("--json", help="also write every run's raw result to this file")
    args = parser.parse_args()
    selected = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in selected if b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.rounds < 1 or args.duration <= 0 or args.latency_duration <= 0 or args.lookup_duration <= 0:
        parser.error("rounds and durations must be positive")

    if not args.no_build:
        build(args.build_dir)
    b = args.build_dir
    binaries = {
        "node": f"{b}/node/tsunagu-rendezvous", "cli": f"{b}/terminal/tsunagu",
        "agent": f"{b}/lan-agent/tsunagu-lan-agent", "hook": f"{b}/lan-agent/tsunagu-dhcp-hook",
        "stun_load": f"{b}/bench/stun_load", "udp_echo": f"{b}/bench/udp_echo",
        "lookup_load": f"{b}/bench/lookup_load", "idle_links": f"{b}/bench/idle_links",
        "bare_tls": f"{b}/bench/bare_tls_server", "hook_flood": f"{b}/bench/hook_flood",
        "ice_floor": f"{b}/bench/ice_floor", "alloc_throughput": f"{b}/tests/unit/allocation/allocation_throughput",
    }
    if args.before_build_dir:
        binaries["before_node"] = f"{args.before_build_dir}/node/tsunagu-rendezvous"
        binaries["before_agent"] = f"{args.before_build_dir}/lan-agent/tsunagu-lan-agent"
    # Benchmarks that need only a few programs do not ask for the rest to be built.
    needs = {"lookups": ("node", "lookup_load"), "forwarded": ("node", "agent", "lookup_load"),
             "idle": ("node", "idle_links", "bare_tls"), "dhcp": ("agent", "hook", "hook_flood", "alloc_throughput"),
             "browser": ("node", "cli")}
    if all(name in needs for name in selected):
        wanted = {key for name in selected for key in needs[name]} | {"before_node", "before_agent"}
        binaries_needed = [path for key, path in binaries.items() if key in wanted]
    else:
        binaries_needed = list(binaries.values())
    for binary in binaries_needed:
        if not os.access(binary, os.X_OK):
            sys.exit(f"missing {binary}: build first (or drop --no-build)")

    pinned = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    nofile = raise_descriptor_limit()
    log(f"RLIMIT_NOFILE raised to {nofile} (hard limit)")

    # Stop everything we started on every way out: normal exit, error, Ctrl-C, SIGTERM.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    workdir = tempfile.mkdtemp(prefix="tsunagu-bench-")
    with open(os.path.join(workdir, "password"), "w") as f:
        f.write(PASSWORD + "\n")
    ctx = {"args": args, "workdir": workdir, "bin": binaries, "pinned": pinned, "nofile": nofile,
           "server_cpu": 0 if pinned else None, "load_cpu": 1 if pinned else None, "raw": {}, "selected": selected}
    rows, verdicts = [], []
    began = time.monotonic()
    try:
        for name in BENCHMARKS:
            if name not in selected:
                continue
            if name == "stun":
                r, v = bench_stun(ctx)
                rows += r
                verdicts += v
        main_benchmarks = [n for n in ("lookups", "forwarded", "call") if n in selected]
        if main_benchmarks:
            bundle = os.path.join(workdir, "acme-bundle")
            presence_users = REGISTRAR_USERS if "lookups" in selected else ()
            directory = make_deployment(ctx, "main", users=("bench-q", "bench-callee", "alice", "bob"),
                                        agents=(("acme", "acme", bundle),), fast_users=presence_users)
            # Unpinned while links log in (scrypt runs on libuv's thread pool);
            # bench_lookups pins every thread to the server CPU afterwards.
            node, info = start_tls_node(ctx, directory, "main-node", None)
            main_node = {"node": node, "info": info, "dir": directory, "bundle": bundle}
            if "forwarded" in selected and "lookups" not in selected:
                main_node["lookup_load"] = start_lookup_load(ctx, info, directory, "lookup_load", 64,
                                                             ["bench-callee=10.1.2.3"])
                main_node["lookup_load"].read_json(args.login_timeout)
            elif "lookups" not in selected:
                pin_all_threads(node.pid, ctx["server_cpu"])
            for name, function in (("lookups", bench_lookups), ("forwarded", bench_forwarded), ("call", bench_call)):
                if name in selected:
                    r, v = function(ctx, main_node)
                    rows += r
                    verdicts += v
            stop_all()
        for name, function in (("idle", bench_idle), ("dhcp", bench_dhcp), ("voice", bench_voice), ("web", bench_web),
                               ("browser", bench_browser)):
            if name in selected:
                r, v = function(ctx)
                rows += r
                verdicts += v
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    ctx["elapsed"] = time.monotonic() - began

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_description(), "args": vars(args), "nofile": nofile,
                       "commands": commands_run, "results": ctx["raw"]}, f, indent=1, default=str)
    print(render(rows, verdicts, ctx))
    print("\ncommands:")
    for command in commands_run:
        print("  " + command)


if __name__ == "__main__":
    main()
