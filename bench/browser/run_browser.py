#!/usr/bin/env python3
"""Benchmark 9 (bench/run.py `browser`): browser call setup, click -> first audio packet.

A dialing page (Debian's Chromium, playwright-core: tests/browser/pages.mjs
`browser_setup_bench`) calls, alternately, bob's `tsunagu listen --audio-in`
(auto-accepting: the CLI in WebRTC's profile) and carol's page (answering from
inside the page the moment it rings: Chromium's own peer connection, the floor).
Each time is measured in the caller's page with performance.now(): from the Call
button's click to the remote track's first unmute (Chromium fires it when the
first RTP packet arrives). The node, the CLI and Chromium run in one network
namespace with only loopback (root), made here and deleted on every exit.

Run alone (root):  python3 bench/run.py --only browser [--browser-rounds 7]
or, with binaries already built:
    python3 bench/browser/run_browser.py --build-dir build --rounds 7
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TARGET_RATIO = 1.2
ROW = "9. browser call setup, click -> first audio packet, ms (median)"


def measure(build_dir, rounds, workdir, log=print):
    """Runs the rounds in a loopback-only namespace; returns {"cli": [ms], "browser": [ms]}
    or raises RuntimeError with the reason it could not."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise RuntimeError("needs root and iproute2 (a network namespace with only loopback)")
    namespace = "tsu-bench-browser-%d" % os.getpid()
    made = subprocess.run(["ip", "netns", "add", namespace], capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError("cannot create a network namespace: " + made.stderr.strip())
    results = os.path.join(workdir, "browser-setup.json")
    env = dict(os.environ, TSUNAGU_BUILD=os.path.abspath(build_dir), PYTHONDONTWRITEBYTECODE="1",
               TSUNAGU_BROWSER_NPM=os.path.join(os.path.abspath(build_dir), "tests", "browser", "npm"),
               TSUNAGU_BROWSER_ARTEFACTS=os.path.join(workdir, "browser-artefacts"))
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        command = ["ip", "netns", "exec", namespace, sys.executable, os.path.abspath(__file__), "--inside",
                   "--rounds", str(rounds), "--out", results]
        log("+ " + " ".join(command))
        try:
            code = subprocess.run(command, env=env, timeout=120 + 30 * rounds).returncode
        except subprocess.TimeoutExpired:
            raise RuntimeError("the rounds did not finish in %d s" % (120 + 30 * rounds))
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
    if code != 0 or not os.path.exists(results):
        raise RuntimeError("the browser rounds failed or were skipped (exit %d; see above)" % code)
    with open(results) as f:
        return json.load(f)


def rows_of(times):
    cli, floor = statistics.median(times["cli"]), statistics.median(times["browser"])
    ratio = cli / floor if floor > 0 else float("inf")
    rows = [(ROW + " [peer: browser -> browser, Chromium's own peer connection]", "%.0f" % cli, "%.0f" % floor,
             "%.2fx" % ratio)]
    verdicts = ["9. browser -> CLI call setup <= %.1fx browser -> browser: %.2fx (%d rounds each; CLI %s ms, "
                "browser %s ms) %s" % (TARGET_RATIO, ratio, len(times["cli"]),
                                      "/".join("%.0f" % t for t in times["cli"]),
                                      "/".join("%.0f" % t for t in times["browser"]),
                                      "MET" if ratio <= TARGET_RATIO else "MISSED")]
    return rows, verdicts


def bench_browser(ctx):
    """bench/run.py's entry: (rows, verdicts)."""
    args = ctx["args"]
    try:
        times = measure(args.build_dir, args.browser_rounds, ctx["workdir"], log=lambda m: print(m, file=sys.stderr))
    except RuntimeError as error:
        return [(ROW, "not measured", "", "")], ["9. browser call setup: NOT MEASURED (%s)" % error]
    ctx["raw"]["browser"] = times
    return rows_of(times)


def inside(rounds, out):
    """In the namespace: a node with its web listener, bob's CLI, and the page's rounds."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "browser"))
    import browser_test as b
    h = b.h
    try:
        b.prepared()
        b.require_voicetool()
        node = b.WebNode()
        for user in (b.ALICE, b.BOB, b.CAROL):
            node.add_user(user)
        node.start()
        d = node.deployment
        speech = d.path("cli-speech.wav")
        b.voicetool("speech", speech, "--seconds", "3")
        listener = h.spawn_cli(d, ["listen", "--auto-accept-from", b.ALICE, "--audio-in", speech,
                                   "--ice-address", "127.0.0.1"], b.BOB, b.PASSWORD)
        h.wait_until(lambda: "listening as %s" % b.BOB in listener.err() or not listener.alive(), h.LOGIN_TIMEOUT,
                     0.05, "`tsunagu listen` to log in")
        if not listener.alive():
            raise b.TestFailure("bob's `tsunagu listen` exited: %s" % listener.err()[-600:])
        b.run_pages("browser_setup_bench", node, extra={"rounds": rounds, "results": out})
    except h.Skip as skip:
        print("skipped: %s" % skip, flush=True)
        return h.SKIP
    except b.TestFailure as failure:
        print("failed: %s" % failure, flush=True)
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside(args.rounds, args.out)
    import tempfile
    workdir = tempfile.mkdtemp(prefix="tsunagu-bench-browser-")
    try:
        times = measure(args.build_dir, args.rounds, workdir)
    except RuntimeError as error:
        print("not measured: %s" % error, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows, verdicts = rows_of(times)
    for row in rows:
        print("%s | %s | %s | %s" % row)
    for verdict in verdicts:
        print(verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
