#!/usr/bin/env python3
"""Tsunagu benchmark 1: STUN Binding responses per second, our node vs coturn.

One command (from the repository root):

    python3 bench/run.py

builds optimised binaries in build-bench/, installs coturn if it is missing,
starts coturn, our node and bench/udp_echo on 127.0.0.1 (each pinned to CPU 0
when there are two CPUs), drives each with bench/stun_load (pinned to CPU 1)
in interleaved rounds, and prints a table of medians: metric, Tsunagu,
coturn, ratio, plus the echo ceiling and the machine. Every process it starts
is stopped by PID on every exit path. Traffic goes only to 127.0.0.1.

Python 3 standard library only. See docs/performance.md for what each number
means.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
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
BUILD_TARGETS = ["rendezvous/tsunagu-rendezvous", "bench/stun_load", "bench/udp_echo"]

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
    try:
        run_checked(["ninja", "-C", build_dir], cwd=ROOT, stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        # Folders under construction may not compile at a given moment: build
        # only what this benchmark needs.
        log("full build failed; building only the benchmark's targets")
        run_checked(["ninja", "-C", build_dir] + BUILD_TARGETS, cwd=ROOT)


def ensure_coturn():
    if shutil.which("turnserver"):
        return shutil.which("turnserver")
    if os.geteuid() != 0:
        sys.exit("coturn is not installed and this is not root: apt-get install coturn, then run again")
    # policy-rc.d answering 101 keeps the package's service from starting.
    policy = "/usr/sbin/policy-rc.d"
    had_policy = os.path.exists(policy)
    try:
        if not had_policy:
            with open(policy, "w") as f:
                f.write("#!/bin/sh\nexit 101\n")
            os.chmod(policy, 0o755)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run_checked(["apt-get", "install", "-y", "-q", "coturn"], env=env, stdout=subprocess.DEVNULL)
    finally:
        if not had_policy and os.path.exists(policy):
            os.remove(policy)
    path = shutil.which("turnserver") or "/usr/bin/turnserver"
    if not os.path.exists(path):
        sys.exit("coturn installed but turnserver not found")
    return path


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
    """utime + stime of the whole process (all threads), in seconds."""
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
           "--log-level", "warn", "--ready-file", ready],
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


def table(results, args, pinned):
    t, c, e = results["tsunagu"], results["coturn"], results["echo"]
    rows = []

    def row(metric, tv, cv, digits=0, show_ratio=True):
        rows.append((metric, fmt(tv, digits), fmt(cv, digits), fmt(ratio(tv, cv), 2) + "x" if show_ratio else ""))

    tt, ct, et = t["load"], c["load"], e["load"]
    tl, cl, el = t["latency"], c["latency"], e["latency"]
    n = args.inflight
    row(f"responses/s, wall clock ({n} in flight)", median(tt, "responses_per_s"), median(ct, "responses_per_s"))
    row(f"responses per server CPU-second ({n} in flight)", median(tt, "per_server_cpu_s"),
        median(ct, "per_server_cpu_s"))
    row("server CPU-seconds per wall second", median(tt, "server_cpu_share"), median(ct, "server_cpu_share"), 2)
    row("responses/s, wall clock (64 in flight)", median(tl, "responses_per_s"), median(cl, "responses_per_s"))
    row("responses per server CPU-second (64 in flight)", median(tl, "per_server_cpu_s"),
        median(cl, "per_server_cpu_s"))
    row("p50 latency, µs (64 in flight)", median(tl, "p50_us"), median(cl, "p50_us"), 1)
    row("p99 latency, µs (64 in flight)", median(tl, "p99_us"), median(cl, "p99_us"), 1)
    all_t, all_c = tt + tl, ct + cl
    row("invalid responses (all runs)", sum(r["invalid"] for r in all_t), sum(r["invalid"] for r in all_c),
        show_ratio=False)
    row("timeouts / late answers (all runs)", sum(r["timeouts"] + r["late"] for r in all_t),
        sum(r["timeouts"] + r["late"] for r in all_c), show_ratio=False)
    rows.append((f"echo ceiling: responses/s, wall clock ({n} in flight)", fmt(median(et, "responses_per_s")), "",
                 f"{fmt(median(tt, 'responses_per_s') / median(et, 'responses_per_s') * 100, 0)}% (Tsunagu/echo)"))
    rows.append((f"echo ceiling: per echo-server CPU-second ({n} in flight)", fmt(median(et, "per_server_cpu_s")),
                 "", f"{fmt(median(tt, 'per_server_cpu_s') / median(et, 'per_server_cpu_s') * 100, 0)}%"
                 " (Tsunagu/echo)"))
    rows.append(("echo: p50 / p99 latency, µs (64 in flight)",
                 f"{fmt(median(el, 'p50_us'), 1)} / {fmt(median(el, 'p99_us'), 1)}", "", ""))
    echo_invalid = sum(r["invalid"] for r in et + el)
    rows.append(("echo: invalid responses (all runs)", str(echo_invalid), "", ""))

    header = ("metric", "Tsunagu", "coturn", "ratio (Tsunagu/coturn)")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    lines = ["| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        lines.append("| " + r[0].ljust(widths[0]) + " | " + " | ".join(r[i].rjust(widths[i]) for i in (1, 2, 3)) + " |")

    per_cpu = ratio(median(tt, "per_server_cpu_s"), median(ct, "per_server_cpu_s"))
    p99 = median(tl, "p99_us")
    invalid = sum(r["invalid"] for r in all_t)
    verdict = [
        f"target: STUN >= 1.6x coturn per server CPU-second: {per_cpu:.2f}x "
        + ("MET" if per_cpu >= 1.6 else f"MISSED by {(1.6 - per_cpu) / 1.6 * 100:.0f}% "
                                       f"(needs {1.6 / per_cpu:.2f}x more per CPU-second)"),
        f"target: no invalid responses: {invalid} " + ("MET" if invalid == 0 else "MISSED"),
        f"target: p99 < 1 ms at 64 in flight: {p99:.0f} µs " + ("MET" if p99 < 1000 else "MISSED"),
    ]
    machine = machine_description()
    placement = ("servers pinned to CPU 0, stun_load to CPU 1" if pinned else "not pinned (one CPU)")
    setup = (f"{args.rounds} interleaved rounds; {args.duration:g} s per run at {args.inflight} in flight, "
             f"{args.latency_duration:g} s at 64 in flight; {args.sockets} generator socket(s); medians shown")
    return "\n".join([f"machine: {machine}; {placement}", setup, ""] + lines + [""] + verdict)


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per throughput run (default 4)")
    parser.add_argument("--latency-duration", type=float, default=2.0,
                        help="seconds per latency run at 64 in flight (default 2)")
    parser.add_argument("--inflight", type=int, default=256, help="requests in flight for throughput (default 256)")
    parser.add_argument("--sockets", type=int, default=4, help="generator sockets (default 4)")
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    parser.add_argument("--no-build", action="store_true", help="use the binaries already in --build-dir")
    parser.add_argument("--coturn-port", type=int, default=34780)
    parser.add_argument("--node-port", type=int, default=34790)
    parser.add_argument("--echo-port", type=int, default=34800)
    parser.add_argument("--json", help="also write every run's raw result to this file")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration <= 0 or args.latency_duration <= 0:
        parser.error("rounds and durations must be positive")

    if not args.no_build:
        build(args.build_dir)
    node_binary = os.path.join(args.build_dir, "rendezvous", "tsunagu-rendezvous")
    load_binary = os.path.join(args.build_dir, "bench", "stun_load")
    echo_binary = os.path.join(args.build_dir, "bench", "udp_echo")
    for binary in (node_binary, load_binary, echo_binary):
        if not os.access(binary, os.X_OK):
            sys.exit(f"missing {binary}: build first (or drop --no-build)")
    turnserver = ensure_coturn()
    for port in (args.coturn_port, args.node_port, args.echo_port):
        if not port_is_free(port):
            sys.exit(f"UDP port {port} on {HOST} is in use: pick others with --coturn-port/--node-port/--echo-port")

    pinned = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    server_cpu, load_cpu = (0, 1) if pinned else (None, None)

    # Stop everything we started on every way out: normal exit, error, Ctrl-C, SIGTERM.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    workdir = tempfile.mkdtemp(prefix="tsunagu-bench-")
    try:
        servers = {
            "coturn": (start_coturn(turnserver, workdir, args.coturn_port, server_cpu), args.coturn_port, False),
            "tsunagu": (start_node(node_binary, workdir, args.node_port, server_cpu), args.node_port, False),
            "echo": (start_echo(echo_binary, workdir, args.echo_port, server_cpu), args.echo_port, True),
        }
        results = {name: {"load": [], "latency": []} for name in TARGETS}
        for round_index in range(args.rounds):
            # A B A B ...: alternate which of the two goes first; the echo
            # ceiling runs in every round too.
            order = ["tsunagu", "coturn"] if round_index % 2 == 0 else ["coturn", "tsunagu"]
            order.append("echo")
            for kind, duration, inflight in (("load", args.duration, args.inflight),
                                             ("latency", args.latency_duration, 64)):
                for name in order:
                    process, port, echo = servers[name]
                    data = measure(load_binary, process, port, echo, duration, inflight, args.sockets, load_cpu)
                    results[name][kind].append(data)
                    log(f"round {round_index + 1}/{args.rounds} {kind:7s} {name:7s} "
                        f"{data['responses_per_s']:>10,.0f}/s  {data['per_server_cpu_s']:>10,.0f}/server-CPU-s  "
                        f"server CPU {data['server_cpu_share']:.2f}  p50 {data['p50_us']:.0f} µs  "
                        f"p99 {data['p99_us']:.0f} µs  invalid {data['invalid']}  timeouts {data['timeouts']}")
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_description(), "args": vars(args), "commands": commands_run,
                       "results": results}, f, indent=1)
    print(table(results, args, pinned))
    print("\ncommands:")
    for command in commands_run:
        print("  " + command)


if __name__ == "__main__":
    main()
