#!/usr/bin/python3
"""The voice benchmark: the same Opus call through Tsunagu and through baresip, in one run.

    /usr/bin/python3 bench/voice/run_voice.py [--runs 3] [--loss 0,5] [--no-build]
    python3 bench/run.py --only voice            # the same, as one of bench/run.py's benchmarks

Each run places, at every loss rate, one call with each program, in alternating order
(A B, then B A): speech made by tests/voice/voicetool.py (espeak-ng, 48 kHz mono) from
caller to callee, both ends on the loopback of a network namespace made for that call,
with the given share of the media (UDP) packets dropped at random in each direction.

  baresip  bench/voice/baresip_call.py: two baresip 1.0.0 instances, SIP straight from
           one to the other, Opus 32 kbit/s, 20 ms, in-band FEC (see that file).
  Tsunagu  a throw-away rendezvous node in the namespace; `tsunagu listen -u bob
           --auto-accept-from alice --once --audio-in GREETING --audio-out HEARD` and
           `tsunagu call bob -u alice --audio-in SPEECH --audio-out HEARD --report R`
           (Opus over the call's sealed datagrams). Loss hits every UDP packet (ICE
           checks and media); the TLS signalling (TCP) is untouched.

Per program and loss rate it prints the medians of: CPU seconds per call-second of
each terminal, mouth-to-ear latency and the quality score (voicetool.py score: a
STOI-like band-envelope correlation of what the callee heard against the speech),
then Tsunagu/baresip for CPU, the difference for latency, and the targets of issue
13: CPU <= baresip's, latency <= baresip's + 10 ms, quality >= baresip's at 5 % loss.

Mouth-to-ear: baresip's is measured from its two recordings' timelines (see
baresip_call.py). Tsunagu's callee sends a greeting back while it listens, so both
directions are recorded; with D1 = delay of the speech in what the callee heard and
D2 = delay of the greeting in what the caller heard, mouth-to-ear = (D1 + D2) / 2:
the unknown offset between the two terminals' clocks cancels, provided each terminal
starts its --audio-in and --audio-out together (one media timeline per terminal).
The estimate in Tsunagu's --report is printed beside it.

Root is needed (ip netns). Every process started here is stopped by PID on every way
out and every namespace is deleted. Debian's /usr/bin/python3 runs the scorer.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import baresip_call  # noqa: E402  (the peer's call, in this folder)

ROOT = baresip_call.ROOT
HOST = baresip_call.HOST
PASSWORD = "bench-password-1"  # bench-only accounts on a throw-away deployment
NOT_BUILT = "tsunagu voice options not built yet"
NOT_BUILT_CELL = "not built"


def log(message):
    print(message, file=sys.stderr, flush=True)


def run_helpers():
    """bench/run.py's helpers (deployments), whether run.py is __main__ or not."""
    main = sys.modules.get("__main__")
    if main is not None and hasattr(main, "make_deployment"):
        return main
    sys.path.insert(0, os.path.dirname(HERE))
    import run  # noqa: E402
    return run


def tsunagu_has_voice(cli):
    try:
        out = subprocess.run([cli, "call", "--help"], capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return "--audio-in" in out.stdout + out.stderr


def find_number(data, names):
    """The first numeric value under any of the names, searched depth-first."""
    if isinstance(data, dict):
        for name in names:
            if isinstance(data.get(name), (int, float)) and not isinstance(data.get(name), bool):
                return data[name]
        for value in data.values():
            found = find_number(value, names)
            if found is not None:
                return found
    elif isinstance(data, list):
        for value in data:
            found = find_number(value, names)
            if found is not None:
                return found
    return None


class Reaped:
    """Waits for a started process with wait4, keeping its CPU (all threads, exited ones too)."""

    def __init__(self, process):
        self.process = process
        self.cpu = None

    def poll(self):
        if self.cpu is not None:
            return True
        pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu = usage.ru_utime + usage.ru_stime
        return True


def start_in(ns, argv, log_path, started, env=None):
    argv = ns.prefix() + argv
    log("+ " + " ".join(argv))
    out = open(log_path, "wb")
    process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    out.close()
    started.append(process)
    return process


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def tsunagu_call(binaries, speech, greeting, loss_pct, workdir, voicetool, timeout):
    """One Tsunagu voice call in its own namespace; returns the measurements. Raises RuntimeError."""
    helpers = run_helpers()
    os.makedirs(workdir)
    # As for baresip: each side plays its speech plus a second of silence, so the
    # last words are heard through the buffers before the call ends.
    played, greeting_played = os.path.join(workdir, "played.wav"), os.path.join(workdir, "greeting-played.wav")
    for source, padded in ((speech, played), (greeting, greeting_played)):
        subprocess.run(["sox", source, padded, "pad", "0", "1"], check=True, timeout=60)
    deployment = helpers.make_deployment({"bin": binaries, "workdir": workdir}, "node", users=("alice", "bob"))
    started = []
    with baresip_call.Namespace(loss_pct) as ns:
        try:
            ready = os.path.join(workdir, "node-ready.json")
            node = start_in(ns, [binaries["node"], "run", "-d", deployment, "--listen", f"{HOST}:0", "--stun-listen",
                                 f"{HOST}:0", "--agent-listen", f"{HOST}:0", "--log-level", "warn", "--ready-file",
                                 ready], os.path.join(workdir, "node.log"), started)
            deadline = time.monotonic() + 15
            while not os.path.exists(ready):
                if node.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tsunagu-rendezvous did not start; see {workdir}/node.log")
                time.sleep(0.05)
            time.sleep(0.05)  # the ready file is written whole, but give the writer its close
            with open(ready) as f:
                info = json.load(f)
            env = dict(os.environ, TSUNAGU_NODE=info["tls"], TSUNAGU_CA=os.path.join(deployment, "ca.crt"),
                       TSUNAGU_PASSWORD=PASSWORD)
            callee_heard = os.path.join(workdir, "callee-heard.wav")
            caller_heard = os.path.join(workdir, "caller-heard.wav")
            callee_report = os.path.join(workdir, "listen-report.json")
            caller_report = os.path.join(workdir, "call-report.json")
            listen_log = os.path.join(workdir, "listen.log")
            listener = start_in(ns, [binaries["cli"], "listen", "-u", "bob", "--auto-accept-from", "alice", "--once",
                                     "--ice-address", HOST, "--audio-in", greeting_played, "--audio-out", callee_heard,
                                     "--report", callee_report], listen_log, started, env)
            deadline = time.monotonic() + 30
            while "listening as" not in read_text(listen_log):
                if listener.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tsunagu listen did not come online; see {listen_log}")
                time.sleep(0.05)
            began = time.monotonic()
            caller = start_in(ns, [binaries["cli"], "call", "bob", "-u", "alice", "--ice-address", HOST, "--audio-in",
                                   played, "--audio-out", caller_heard, "--report", caller_report],
                              os.path.join(workdir, "call.log"), started, env)
            reaped = {"caller": Reaped(caller), "callee": Reaped(listener)}
            deadline = began + timeout
            one_ended = None
            while not all(r.poll() for r in reaped.values()):
                now = time.monotonic()
                if now > deadline:
                    raise RuntimeError(f"the Tsunagu call did not end within {timeout:.0f} s; see {workdir}")
                for side, r in reaped.items():
                    if r.cpu is not None and r.process.returncode != 0:
                        raise RuntimeError(f"tsunagu {side} exited with {r.process.returncode}; see {workdir}")
                # Once one side has hung up the other has a few seconds to see it.
                if one_ended is None and any(r.cpu is not None for r in reaped.values()):
                    one_ended = now
                if one_ended is not None and now - one_ended > 10:
                    raise RuntimeError(f"one side of the Tsunagu call ended, the other not 10 s later; see {workdir}")
                time.sleep(0.01)
            wall = time.monotonic() - began
            dropped = ns.dropped_packets()
        finally:
            # Processes already reaped have their returncode set; stop() skips them.
            baresip_call.stop(started)
    for side, r in reaped.items():
        if r.process.returncode != 0:
            raise RuntimeError(f"tsunagu {side} exited with {r.process.returncode}; see {workdir}")
    reports = {}
    for side, path in (("caller", caller_report), ("callee", callee_report)):
        text = read_text(path).strip()
        # One JSON object on one line (the last call's fields, and "calls": every call's).
        reports[side] = json.loads(text.splitlines()[-1]) if text else {}
    call_s = find_number(reports["caller"], ("call_seconds", "media_seconds", "duration_s"))
    if call_s is None:
        ms = find_number(reports["caller"], ("call_ms", "media_ms", "duration_ms"))
        call_s = ms / 1000 if ms is not None else baresip_call.wav_seconds(played)
    heard = baresip_call.score(voicetool, speech, callee_heard)
    back = baresip_call.score(voicetool, greeting, caller_heard)
    # Per piece of speech: the one-way delay in this direction, with the whole call's
    # clock offset removed (D1 - (D1 + D2) / 2 is the offset's half).
    offset = (heard["delay_ms"] - back["delay_ms"]) / 2
    by_segment = [None if d is None else round(d - offset, 1)
                  for d in baresip_call.segment_delays(voicetool, speech, callee_heard, workdir)]
    return {
        "program": "tsunagu",
        "loss_pct": loss_pct,
        "call_seconds": round(call_s, 3),
        "wall_seconds": round(wall, 3),
        "cpu_per_call_second": {side: round(r.cpu / call_s, 5) for side, r in reaped.items()},
        "cpu_seconds_whole_process": {side: r.cpu for side, r in reaped.items()},
        "score": heard["score"],
        "score_reverse": back["score"],
        "delay_ms": {"caller_to_callee": heard["delay_ms"], "callee_to_caller": back["delay_ms"]},
        "mouth_to_ear_ms": round((heard["delay_ms"] + back["delay_ms"]) / 2, 1),
        "mouth_to_ear_by_segment_ms": by_segment,
        "report_mouth_to_ear_ms": find_number(reports["caller"], ("mouth_to_ear_ms", "mouth_to_ear_estimate_ms")),
        "fec_recovered": find_number(reports["callee"], ("fec_recovered",)),
        "dropped_packets": dropped,
        "reports": reports,
    }


def baresip_run(speech, loss_pct, workdir, voicetool, timeout, buffers):
    os.makedirs(workdir)
    result = baresip_call.run_call(speech, loss_pct, workdir, voicetool, jitter_buffer=buffers[0],
                                   audio_buffer=buffers[1], timeout=timeout)
    result["program"] = "baresip"
    # Like Tsunagu's: the whole process (start-up included) per call-second.
    result["cpu_whole_per_call_second"] = {k: round(v / result["call_seconds"], 5)
                                           for k, v in result["cpu_seconds_whole_process"].items()}
    return result


def measure(binaries, runs, losses, seconds, workdir, voicetool, with_tsunagu, timeout=90,
            baresip_buffers=("5-10", "20-160")):
    """All calls, interleaved; returns {"baresip": {loss: [results]}, "tsunagu": {...}, "failures": [...]}."""
    speech = os.path.join(workdir, "speech.wav")
    greeting = os.path.join(workdir, "greeting.wav")
    subprocess.run(["/usr/bin/python3", voicetool, "speech", speech, "--seconds", str(seconds)], check=True,
                   timeout=120)
    # The callee's greeting: the same speech a fifth slower and lower, so the two
    # directions are different signals (the scorer aligns each on its own).
    subprocess.run(["sox", speech, greeting, "speed", "0.8", "rate", "48000", "trim", "0", str(seconds)], check=True,
                   timeout=60)
    results = {"baresip": {loss: [] for loss in losses}, "tsunagu": {loss: [] for loss in losses}, "failures": []}
    programs = ["baresip", "tsunagu"] if with_tsunagu else ["baresip"]
    count = 0
    for i in range(runs):
        for loss in losses:
            for program in (programs if i % 2 == 0 else list(reversed(programs))):
                count += 1
                directory = os.path.join(workdir, f"{program}-{loss:g}-{i}")
                try:
                    if program == "baresip":
                        r = baresip_run(speech, loss, directory, voicetool, timeout, baresip_buffers)
                    else:
                        r = tsunagu_call(binaries, speech, greeting, loss, directory, voicetool, timeout)
                except (RuntimeError, subprocess.SubprocessError) as e:
                    log(f"{program} at {loss:g} % loss, run {i + 1}: FAILED: {e}")
                    results["failures"].append(f"{program} {loss:g}% run {i + 1}: {e}")
                    continue
                results[program][loss].append(r)
                log(f"{program} at {loss:g} % loss, run {i + 1}/{runs}: score {r['score']:.3f}, mouth-to-ear "
                    f"{r['mouth_to_ear_ms']:.1f} ms, CPU/call-s caller {r['cpu_per_call_second']['caller']:.4f} "
                    f"callee {r['cpu_per_call_second']['callee']:.4f}, dropped {r['dropped_packets']}")
    return results


def med(runs, get):
    values = [get(r) for r in runs]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def fmt(value, digits):
    if value != value:  # NaN
        return "n/a"
    text = f"{value:,.{digits}f}"
    # No "-0" for a value that rounds to zero.
    return text[1:] if text.startswith("-") and float(text.replace(",", "")) == 0 else text


def delay_growth(result):
    found = [d for d in result.get("mouth_to_ear_by_segment_ms", []) if d is not None]
    return found[-1] - found[0] if len(found) >= 2 else None


def rows_and_verdicts(results, losses, tsunagu_state):
    """(metric, Tsunagu, baresip, ratio) rows of medians, and the targets' verdicts."""
    rows, verdicts = [], []
    b_all, t_all = results["baresip"], results["tsunagu"]
    for loss in losses:
        b, t = b_all.get(loss, []), t_all.get(loss, [])
        tag = f"7. voice, {loss:g} % loss"
        cell = NOT_BUILT_CELL if tsunagu_state == NOT_BUILT else "not measured"
        tcol = (lambda v, d: fmt(v, d)) if t else (lambda v, d: cell)
        for side in ("caller", "callee"):
            tv = med(t, lambda r: r["cpu_per_call_second"][side])
            bv = med(b, lambda r: r["cpu_whole_per_call_second"][side])
            rows.append((f"{tag}: CPU-s per call-second, {side} (whole process) [peer: baresip 1.0.0]", tcol(tv, 4),
                         fmt(bv, 4), (fmt(tv / bv, 2) + "x") if t and bv else ""))
            rows.append((f"{tag}: CPU-s per call-second, {side}, baresip in-call only", "",
                         fmt(med(b, lambda r: r["cpu_per_call_second"][side]), 4), ""))
        tl, bl = med(t, lambda r: r["mouth_to_ear_ms"]), med(b, lambda r: r["mouth_to_ear_ms"])
        rows.append((f"{tag}: mouth-to-ear latency, ms", tcol(tl, 1), fmt(bl, 1),
                     (f"{tl - bl:+.1f} ms") if t else ""))
        if t:
            rows.append((f"{tag}: mouth-to-ear, Tsunagu's own --report estimate, ms",
                         fmt(med(t, lambda r: r["report_mouth_to_ear_ms"]), 1), "", ""))
        tg, bg = med(t, delay_growth), med(b, delay_growth)
        rows.append((f"{tag}: mouth-to-ear growth during the call (last 1.5 s minus first), ms", tcol(tg, 0),
                     fmt(bg, 0), ""))
        ts, bs = med(t, lambda r: r["score"]), med(b, lambda r: r["score"])
        rows.append((f"{tag}: quality score (STOI-like, callee heard vs speech)", tcol(ts, 3), fmt(bs, 3),
                     (f"{ts - bs:+.3f}") if t else ""))
        rows.append((f"{tag}: media packets dropped per call (median)", tcol(med(t, lambda r: r["dropped_packets"]), 0),
                     fmt(med(b, lambda r: r["dropped_packets"]), 0), ""))
        if not t:
            verdicts.append(f"7. voice at {loss:g} % loss: NOT MEASURED for Tsunagu ({tsunagu_state})")
            continue
        for side in ("caller", "callee"):
            tv = med(t, lambda r: r["cpu_per_call_second"][side])
            bv = med(b, lambda r: r["cpu_whole_per_call_second"][side])
            verdicts.append(f"7. voice {loss:g} %: CPU of the {side} <= baresip's: {tv / bv:.2f}x "
                            + ("MET" if tv <= bv else "MISSED"))
        verdicts.append(f"7. voice {loss:g} %: latency <= baresip's + 10 ms: {tl - bl:+.1f} ms "
                        + ("MET" if tl <= bl + 10 else "MISSED"))
        if loss >= 5:
            verdicts.append(f"7. voice {loss:g} %: quality >= baresip's: {ts:.3f} vs {bs:.3f} "
                            + ("MET" if ts >= bs else "MISSED"))
    for failure in results["failures"]:
        verdicts.append("7. voice: a call FAILED: " + failure)
    return rows, verdicts


def bench_voice(ctx):
    """bench/run.py's `voice` benchmark (its ctx: args, workdir, bin, raw)."""
    args = ctx["args"]
    losses = [float(x) for x in args.voice_loss.split(",")]
    voicetool = os.path.join(ROOT, "tests", "voice", "voicetool.py")
    # The other benchmarks' figures must not be lost to a missing prerequisite of this one.
    missing = [what for what, ok in ((voicetool, os.path.isfile(voicetool)),
                                     (baresip_call.BARESIP, os.access(baresip_call.BARESIP, os.X_OK)),
                                     ("root (ip netns)", os.geteuid() == 0)) if not ok]
    if missing:
        return [("7. voice", "not measured", "", "")], [f"7. voice: NOT MEASURED: missing {', '.join(missing)}"]
    ready = tsunagu_has_voice(ctx["bin"]["cli"])
    state = "ok" if ready else NOT_BUILT
    if not ready:
        log(f"voice: {NOT_BUILT} (`tsunagu call --help` has no --audio-in): measuring baresip only")
    workdir = os.path.join(ctx["workdir"], "voice")
    os.makedirs(workdir)
    results = measure(ctx["bin"], args.voice_runs, losses, args.voice_seconds, workdir, voicetool, ready)
    ctx["raw"]["voice"] = results
    return rows_and_verdicts(results, losses, state)


def render(rows, verdicts):
    header = ("metric", "Tsunagu", "baresip", "ratio")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    lines = ["| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        lines.append("| " + r[0].ljust(widths[0]) + " | " + " | ".join(r[i].rjust(widths[i]) for i in (1, 2, 3)) + " |")
    return "\n".join(lines + ["", "targets:"] + ["  " + v for v in verdicts])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="calls per program and loss rate (default 3)")
    parser.add_argument("--loss", default="0,5", help="media loss rates, percent (default 0,5)")
    parser.add_argument("--seconds", type=float, default=6.0, help="speech seconds per call (default 6)")
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    parser.add_argument("--no-build", action="store_true", help="use the binaries already in --build-dir")
    parser.add_argument("--baresip-only", action="store_true", help="measure the peer alone")
    parser.add_argument("--voicetool", default=os.path.join(ROOT, "tests", "voice", "voicetool.py"))
    parser.add_argument("--baresip-jitter-buffer", default="5-10",
                        help="baresip's jitter_buffer_delay, packets (default 5-10: as Debian's baresip ships)")
    parser.add_argument("--baresip-audio-buffer", default="20-160",
                        help="baresip's audio_buffer (playout), ms (default 20-160: as shipped)")
    parser.add_argument("--json", help="also write every call's raw result to this file")
    args = parser.parse_args()
    if args.runs < 1 or args.seconds <= 0:
        parser.error("--runs and --seconds must be positive")
    losses = [float(x) for x in args.loss.split(",")]
    if not os.path.isfile(args.voicetool):
        sys.exit(f"{args.voicetool} missing (the voice test tools)")
    b = args.build_dir
    binaries = {"node": f"{b}/node/tsunagu-rendezvous", "cli": f"{b}/terminal/tsunagu"}
    with_tsunagu = not args.baresip_only
    if with_tsunagu:
        if not args.no_build:
            helpers = run_helpers()
            if not os.path.isfile(os.path.join(b, "build.ninja")):
                helpers.run_checked(["meson", "setup", b, "-Dbuildtype=release", "-Doptimization=2"], cwd=ROOT)
            helpers.run_checked(["ninja", "-C", b, "node/tsunagu-rendezvous", "terminal/tsunagu"], cwd=ROOT,
                                stdout=subprocess.DEVNULL)
        for binary in binaries.values():
            if not os.access(binary, os.X_OK):
                sys.exit(f"missing {binary}: build first (or drop --no-build)")
        with_tsunagu = tsunagu_has_voice(binaries["cli"])
    state = "ok" if with_tsunagu else ("not asked" if args.baresip_only else NOT_BUILT)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    workdir = tempfile.mkdtemp(prefix="tsunagu-voice-bench-")
    began = time.monotonic()
    try:
        results = measure(binaries, args.runs, losses, args.seconds, workdir, args.voicetool, with_tsunagu,
                          baresip_buffers=(args.baresip_jitter_buffer, args.baresip_audio_buffer))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1, default=str)
    rows, verdicts = rows_and_verdicts(results, losses, state)
    print(f"{args.runs} interleaved runs per program and loss rate; medians; baresip jitter_buffer_delay "
          f"{args.baresip_jitter_buffer} packets, audio_buffer {args.baresip_audio_buffer} ms; "
          f"took {time.monotonic() - began:.0f} s")
    print(render(rows, verdicts))
    if state == NOT_BUILT:
        sys.exit(NOT_BUILT)


if __name__ == "__main__":
    main()
