"""Benchmark 8 (bench/run.py --only web): API lookups over HTTPS keep-alive vs nginx.

    python3 bench/run.py --only web [--rounds 3] [--web-duration 5] [--web-connections 64]

Per round, in A B order (then B A):

  Tsunagu  a throw-away node with its web listener on loopback; one web session
           (POST /api/login) whose cookie `wrk` sends with
           `GET /api/lookup?id=bench-callee` over --web-connections keep-alive
           HTTPS connections for --web-duration seconds. Each request goes through
           the node's HTTP parser, the session check, NodeCore's lookup (the same
           code as a TLS lookup) and the JSON answer.
  nginx    Debian's nginx (nginx-light), one worker, the same certificate and key,
           TLS 1.3, answering the same path with a fixed JSON body of the same
           shape from its configuration: the ceiling for HTTPS request handling
           on this machine.

Both servers are pinned to the server CPU and wrk to the load CPU. The figure is
requests per CPU-second of the server process (utime + stime of every thread, and of
nginx's master and worker), so a loaded machine changes both alike; the target of
issue 14 is Tsunagu >= 0.5 x nginx.
"""

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time

import __main__

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
# bench/run.py's helpers (start, pin, cpu_seconds, ...) from the running copy of
# it, so that its stop_all() also stops what this file started.
if hasattr(__main__, "stop_all") and hasattr(__main__, "make_deployment"):
    bench = __main__
else:
    import run as bench  # noqa: E402

LOOKUP_PATH = "/api/lookup?id=bench-callee"
NGINX_BODY = '{"id":"bench-callee","state":"offline","voicemail":true}'


def ensure_tools():
    missing = [p for p, b in (("wrk", "wrk"), ("nginx-light", "nginx")) if shutil.which(b) is None]
    if missing:
        bench.apt_install(missing, missing[0])


def login(port, user, password):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(bench.HOST, port, context=context, timeout=30)
    body = json.dumps({"id": user, "password": password})
    connection.request("POST", "/api/login", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        sys.exit(f"web login as {user}: {response.status} {data[:200]!r}")
    cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    # One lookup by hand: the answer wrk will be timing must be a real one.
    connection.request("GET", LOOKUP_PATH, headers={"Cookie": cookie})
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200 or b'"state"' not in answer:
        sys.exit(f"web lookup: {response.status} {answer[:200]!r}")
    connection.close()
    return cookie


def start_nginx(ctx, directory, cpu):
    workdir = os.path.join(ctx["workdir"], "nginx")
    os.makedirs(workdir, exist_ok=True)
    port = ctx["args"].web_nginx_port
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process on;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body;
  keepalive_requests 1000000;
  server {{
    listen {bench.HOST}:{port} ssl;
    ssl_certificate {directory}/node.crt;
    ssl_certificate_key {directory}/node.key;
    ssl_protocols TLSv1.3;
    location = /api/lookup {{
      default_type application/json;
      return 200 '{NGINX_BODY}';
    }}
  }}
}}
""")
    process = bench.start(bench.pin(cpu) + ["nginx", "-c", conf, "-p", workdir], os.path.join(workdir, "out.log"))
    def accepting():
        try:
            socket.create_connection((bench.HOST, port), timeout=0.5).close()
            return True
        except OSError:
            return False

    bench.wait_for(accepting, 10, "nginx", process)
    return process


def process_tree_cpu(pid):
    """CPU seconds of a process and its children (nginx's master and worker)."""
    total = bench.cpu_seconds(pid)
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except OSError:
        children = []
    for child in children:
        try:
            total += bench.cpu_seconds(int(child))
        except (OSError, ValueError):
            pass
    return total


def run_wrk(ctx, port, cookie, server_pid):
    args = ctx["args"]
    argv = bench.pin(ctx["load_cpu"]) + ["wrk", "-t1", f"-c{args.web_connections}", f"-d{max(1, round(args.web_duration))}s",
                                         "--latency", f"https://{bench.HOST}:{port}{LOOKUP_PATH}"]
    if cookie:
        argv[-1:-1] = ["-H", f"Cookie: {cookie}"]
    bench.commands_run.append(" ".join(argv))
    before = process_tree_cpu(server_pid)
    output = subprocess.run(argv, capture_output=True, text=True, timeout=args.web_duration + 60).stdout
    cpu = process_tree_cpu(server_pid) - before
    requests = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", output, re.M)
    if requests is None:
        sys.exit(f"wrk printed no request count:\n{output}")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {"requests": int(requests.group(1)), "errors": int(errors.group(1)) if errors else 0, "cpu": cpu,
            "per_cpu_s": int(requests.group(1)) / cpu if cpu > 0 else 0.0,
            "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else None}


def bench_web(ctx):
    ensure_tools()
    directory = bench.make_deployment(ctx, "web", users=("bench-q", "bench-callee"))
    node, info = bench.start_tls_node(ctx, directory, "web-node", ctx["server_cpu"])
    if "web" not in info:
        sys.exit("the node's ready file has no web address: is [web] listen set?")
    web_port = int(info["web"].rsplit(":", 1)[1])
    cookie = login(web_port, "bench-q", bench.PASSWORD)
    bench.pin_all_threads(node.pid, ctx["server_cpu"])
    nginx = start_nginx(ctx, directory, ctx["server_cpu"])
    runs = {"tsunagu": [], "nginx": []}
    for round_index in range(ctx["args"].rounds):
        order = [("tsunagu", web_port, cookie, node.pid), ("nginx", ctx["args"].web_nginx_port, None, nginx.pid)]
        if round_index % 2:
            order.reverse()
        for name, port, session, pid in order:
            result = run_wrk(ctx, port, session, pid)
            bench.log(f"web {name}: {result['requests']} requests, {result['cpu']:.2f} CPU-s, "
                      f"{result['per_cpu_s']:.0f}/CPU-s, p50 {result['p50_ms']} ms, non-2xx {result['errors']}")
            runs[name].append(result)
    ctx["raw"]["web"] = runs
    ours = statistics.median(r["per_cpu_s"] for r in runs["tsunagu"])
    peer = statistics.median(r["per_cpu_s"] for r in runs["nginx"])
    our_p50 = statistics.median(r["p50_ms"] or 0 for r in runs["tsunagu"])
    peer_p50 = statistics.median(r["p50_ms"] or 0 for r in runs["nginx"])
    errors = sum(r["errors"] for r in runs["tsunagu"])
    rows = [
        ("web: API lookups per server CPU-second (HTTPS keep-alive)", bench.fmt(ours), bench.fmt(peer),
         bench.fmt(bench.ratio(ours, peer), 2) + "x"),
        (f"web: median latency at {ctx['args'].web_connections} connections, ms", f"{our_p50:.2f}",
         f"{peer_p50:.2f}", bench.fmt(bench.ratio(our_p50, peer_p50), 2) + "x"),
    ]
    ratio = ours / peer if peer else 0
    verdicts = [f"web lookups >= 0.5 x nginx per CPU-second: {'met' if ratio >= 0.5 else 'missed'} "
                f"({ratio:.2f} x; {errors} non-2xx answers)"]
    bench.stop_all()
    return rows, verdicts
