#!/usr/bin/python3
"""Voice through the NAT lab (issue 13, suite `lab`): speech both ways and DTMF over every path the
lab proves, measured at the far ends by tests/voice/voicetool.py (espeak-ng speech, multimon-ng
DTMF, a STOI-like score), plus one run over a lossy, jittery link.

Run one:   sudo TSUNAGU_BUILD=build /usr/bin/python3 tests/lab/voice_lab_test.py voice_punch_eim
(Debian's /usr/bin/python3: voicetool needs numpy/scipy.) Each scenario is its own meson test
(tests/lab/meson.build); exit 77 = skipped with the reason: not root, a lab tool missing, a
measuring tool missing, or "voice options not built yet".

Every call: the caller runs `tsunagu call ID --audio-in SPEECH --audio-out HEARD --dtmf 4106#
--report R`, the callee `tsunagu listen [--lan DIR] --auto-accept-from CALLER --once --audio-in
GREETING --audio-out HEARD --report R`. Checks: both exit 0; the caller's speech scored in the
callee's recording and the callee's greeting in the caller's (>= 0.95 clean, >= 0.85 lossy);
the digits multimon-ng hears in the callee's recording and the callee's `dtmf:` lines both equal
4106# exactly; the path the call took (reflexive, relay, host); mouth-to-ear = (D1 + D2) / 2 from the
two recordings' alignments (bench/voice/run_voice.py explains why the terminals' clock offset cancels),
< 400 ms on the clean paths, printed but not bounded on the lossy link (one run measured so far).

Measured on 2026-12-05 against the lead's CLI (lead-voice at 7234de4), one scenario at a time while
other helpers loaded the 2 cores (forward = the caller's speech at the callee, back = the greeting):
  voice_punch_eim        srflx <-> srflx   forward 0.979-0.991, back 0.972-0.988
  voice_relay_symmetric  prflx <-> relay   forward 0.978-0.992, back 0.970-0.988
  voice_lan_host_pair    host <-> host     forward 0.952-0.992, back 0.957-0.993 (before the score's
                         per-frame re-alignment and the 6 s greeting; after them: 0.981-0.992)
  voice_ext_punch_eim    srflx <-> srflx   forward 0.990-0.992, back 0.983-0.991
  voice_lossy_link       nftables 5 % UDP loss each way (this kernel has no sch_netem, so no jitter):
                         forward 0.959-0.983, back 0.936-0.967, fec_recovered 9-10 per side,
                         lost 22-27, peer loss 2-11 %
DTMF 4106# exact on every run; RTT 1.2-7 ms; jitter buffer 20-40 ms.
Mouth-to-ear on 2026-12-05 (h-voice, one run each, punch twice): punch_eim 46-66 ms, relay_symmetric 66 ms,
lan_host_pair 56 ms, ext_punch_eim 46 ms, lossy_link 86 ms (RTT 94 ms on that wire).
"""

import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "voice"))

import lablib as lab  # noqa: E402
from lablib import Checks, Lab, log  # noqa: E402

try:
    import voicetool
except ImportError as missing:
    voicetool = None
    VOICETOOL_MISSING = str(missing)

CALL_TIMEOUT = 60
CLEAN_SCORE = 0.95      # a clean path (calibration: Opus 32 kbit/s round trip 0.98)
LOSSY_SCORE = 0.85      # 5 % loss, 30 +- 10 ms jitter (calibration: 5 % lost + PLC 0.97 offline)
SPEECH_SECONDS = 6.0
# As long as the speech: the jitter buffer's start-up adaptation (a concealed frame or two in the first
# seconds, measured on clean LAN runs) weighs less in 6 s than in 4 s. The caller's 6 s, the digits and
# its 1 s before hanging up still outlast the greeting.
GREETING_SECONDS = 6.0
DTMF_DIGITS = "4106#"
# Mouth-to-ear on a clean lab path: loopback-class links, so it is the two terminals' buffering (the
# benchmark measures ~50 ms on loopback); generous against a loaded machine, but a stuck jitter buffer or a
# second of queued audio fails it.
MOUTH_TO_EAR_BOUND_MS = 400
GREETING_TEXT = ("Hello, you have reached the test extension. Please speak after the tone, "
                 "or press one for the operator.")


def require_voice():
    if voicetool is None:
        raise lab.Skip("voicetool needs numpy and scipy (%s): run with /usr/bin/python3" % VOICETOOL_MISSING)
    for tool in ("espeak-ng", "sox", "multimon-ng"):
        if shutil.which(tool) is None:
            raise lab.Skip("%s is not installed (Debian package %s)" % (tool, tool))
    if not os.access(lab.TERMINAL, os.X_OK):
        raise lab.Skip("%s is not built (TSUNAGU_BUILD=%s)" % (lab.TERMINAL, lab.BUILD))
    help_text = subprocess.run([lab.TERMINAL, "call", "--help"], stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=30)
    if "--audio-in" not in help_text.stdout + help_text.stderr:
        raise lab.Skip("voice options not built yet (`tsunagu call --help` does not mention --audio-in)")


def dtmf_lines(text):
    return "".join(m.group(1) for m in re.finditer(r"^dtmf: ([0-9A-D*#])\s*$", text, re.M))


def scored(checks, sent, received, what, threshold):
    try:
        result = voicetool.score(sent, received)
    except voicetool.VoiceToolError as error:
        checks.check(False, "%s can be scored: %s" % (what, error))
        return None
    checks.check(result["score"] >= threshold, "%s: score %.4f >= %.2f (aligned at %.0f ms, %.2f s recorded)" % (
        what, result["score"], threshold, result["delay_ms"], result["received_seconds"]))
    return result


def mouth_to_ear(checks, forward, backward, bound_ms):
    """(D1 + D2) / 2 as in bench/voice/run_voice.py: D1 = the delay of the caller's speech in what the
    callee recorded, D2 = that of the greeting in what the caller recorded. Each terminal starts its
    --audio-in and --audio-out together, so the offset between the two terminals' timelines adds to one
    delay and subtracts from the other. bound_ms None: printed, not checked."""
    if not forward or not backward:
        return None
    latency = (forward["delay_ms"] + backward["delay_ms"]) / 2
    what = "mouth-to-ear %.1f ms (speech at the callee %.0f ms, greeting at the caller %.0f ms)" % (
        latency, forward["delay_ms"], backward["delay_ms"])
    if bound_ms is None:
        log("  %s; not bounded on this path" % what)
    else:
        checks.check(0 < latency < bound_ms, "%s < %d ms" % (what, bound_ms))
    return round(latency, 1)


def voice_call(l, checks, caller_host, callee_host, lan=False, threshold=CLEAN_SCORE,
               latency_bound_ms=MOUTH_TO_EAR_BOUND_MS):
    """One voice call with speech both ways and DTMF; returns (caller report, callee report, caller Proc,
    figures dict)."""
    caller_user = lab.TERMINALS[caller_host]["user"]
    if lan:
        callee_id = "%s@%s" % (lab.TERMINALS[callee_host]["ext"], lab.ACME_DOMAIN)
    else:
        callee_id = lab.TERMINALS[callee_host]["user"]
    speech, greeting = l.path("speech.wav"), l.path("greeting.wav")
    voicetool.speech(speech, SPEECH_SECONDS)
    voicetool.speech(greeting, GREETING_SECONDS, GREETING_TEXT)
    caller_heard, callee_heard = l.path("heard-by-caller.wav"), l.path("heard-by-callee.wav")
    caller_report, callee_report = l.path("report-caller.json"), l.path("report-callee.json")
    listen_args = ["--auto-accept-from", caller_user, "--once", "--audio-in", greeting, "--audio-out", callee_heard,
                   "--report", callee_report]
    if lan:
        listener = l.start_lan_terminal(callee_host, listen_args, binary=False)
    else:
        listener = l.listen(callee_host, listen_args, binary=False)
    caller = l.call(caller_host, callee_id, ["--audio-in", speech, "--audio-out", caller_heard, "--dtmf",
                                             DTMF_DIGITS], binary=False, report=caller_report)
    code = caller.wait(CALL_TIMEOUT)
    checks.check(code == 0, "%s's voice call to %s exits 0%s" % (caller_user, callee_id,
                                                               "" if code == 0 else " (%s)" % caller.describe()))
    lcode = listener.wait(20)
    checks.check(lcode == 0, "%s's `listen --once` exits 0%s" % (callee_id,
                                                              "" if lcode == 0 else " (%s)" % listener.describe()))
    if listener.alive():
        listener.stop()

    figures = {}
    forward = scored(checks, speech, callee_heard, "%s's speech heard by %s" % (caller_user, callee_id), threshold)
    backward = scored(checks, greeting, caller_heard, "%s's greeting heard by %s" % (callee_id, caller_user),
                      threshold)
    figures["forward"] = forward["score"] if forward else None
    figures["backward"] = backward["score"] if backward else None
    figures["mouth_to_ear_ms"] = mouth_to_ear(checks, forward, backward, latency_bound_ms)
    if os.path.exists(callee_heard):
        try:
            decoded = voicetool.dtmf_decode(callee_heard)
        except voicetool.VoiceToolError as error:
            decoded = "(%s)" % error
        checks.check(decoded == DTMF_DIGITS, "multimon-ng hears %r in %s's recording: %r" % (DTMF_DIGITS, callee_id,
                                                                                            decoded))
        figures["dtmf"] = decoded
    printed = dtmf_lines(listener.out())
    checks.check(printed == DTMF_DIGITS, "%s printed the digits as `dtmf:` lines: %r" % (callee_id, printed))

    report, callee = lab.read_report(caller_report) or {}, lab.read_report(callee_report) or {}
    for who, r in (("caller", report), ("callee", callee)):
        media = r.get("media")
        checks.check(isinstance(media, dict), "the %s's report has media counters: %r" % (who, media))
        log("  %s media: %r" % (who, media))
    digits = (callee.get("media") or {}).get("digits_received")
    # The digits themselves ("4106#"), or how many.
    checks.check(digits == DTMF_DIGITS if isinstance(digits, str) else digits == len(DTMF_DIGITS),
                 "the callee's report has the digits received: %r (want %r)" % (digits, DTMF_DIGITS))
    return report, callee, caller, figures


def row_of(report, nats, figures, extra=""):
    media = report.get("media") or {}
    return {
        "NATs": nats,
        "path (caller side)": "%s <-> %s%s" % (report.get("local_type"), report.get("remote_type"), extra),
        "caller local": report.get("local", ""),
        "caller remote": report.get("remote", ""),
        "connected ms": report.get("connected_ms"),
        "first byte ms": report.get("first_byte_ms"),
        "throughput": "voice %s / %s, mouth-to-ear %s ms, dtmf %s, rtt %s ms" % (
            figures.get("forward"), figures.get("backward"), figures.get("mouth_to_ear_ms"), figures.get("dtmf"),
            media.get("rtt_ms")),
    }


def relay_address(address):
    m = re.fullmatch(re.escape(lab.TURN_IP) + r":(\d+)", address or "")
    return m is not None and lab.TURN_MIN_PORT <= int(m.group(1)) <= lab.TURN_MAX_PORT


# --------------------------------------------------------------------------
# home -> akiko@acme-1, both NATs endpoint-independent: hole punched

def voice_punch_eim():
    require_voice()
    with Lab("voice_punch_eim", nat={"gw-acme": "eim", "gw-home": "eim"}) as l:
        l.up()
        checks = Checks()
        report, callee, _, figures = voice_call(l, checks, "home", "acme-1")
        types = (report.get("local_type"), report.get("remote_type"))
        checks.check(types[0] in ("srflx", "prflx") and types[1] in ("srflx", "prflx"),
                     "the voice went through the punched hole (reflexive both ends): %s <-> %s" % types)
        checks.finish()
        return row_of(report, "EIM / EIM", figures)


# both NATs symmetric: through coturn

def voice_relay_symmetric():
    require_voice()
    with Lab("voice_relay_symmetric", nat={"gw-acme": "symmetric", "gw-home": "symmetric"}) as l:
        l.up()
        checks = Checks()
        report, callee, _, figures = voice_call(l, checks, "home", "acme-1")
        checks.check(relay_address(report.get("local")) or relay_address(report.get("remote")),
                     "the voice went through coturn: %s %s <-> %s %s" % (
                         report.get("local_type"), report.get("local"), report.get("remote_type"),
                         report.get("remote")))
        checks.finish()
        return row_of(report, "symmetric / symmetric", figures)


# akiko@acme-1 -> taro@acme-2 inside the LAN: a host pair

def voice_lan_host_pair():
    require_voice()
    with Lab("voice_lan_host_pair") as l:
        l.up()
        checks = Checks()
        report, callee, _, figures = voice_call(l, checks, "acme-1", "acme-2")
        types = (report.get("local_type"), report.get("remote_type"))
        checks.check(types == ("host", "host"), "the voice stayed inside the LAN (host <-> host): %s <-> %s" % types)
        checks.finish()
        return row_of(report, "inside the acme LAN", figures)


# home -> 4106@acme, the LAN terminal rung by the agent: the greeting reaches the home caller, the
# caller's DTMF reaches the extension (the demo's spoken scenario)

def voice_ext_punch_eim():
    require_voice()
    with Lab("voice_ext_punch_eim", nat={"gw-acme": "eim", "gw-home": "eim"}) as l:
        l.up()
        checks = Checks()
        report, callee, _, figures = voice_call(l, checks, "home", "acme-1", lan=True)
        types = (report.get("local_type"), report.get("remote_type"))
        checks.check(types[0] in ("srflx", "prflx") and types[1] in ("srflx", "prflx"),
                     "to 4106@acme through the punched hole (reflexive both ends, no relay): %s <-> %s" % types)
        checks.finish()
        return row_of(report, "EIM / EIM", figures, " (4106@acme via the agent)")


# home -> akiko@acme-1 with 5 % loss and 30 +- 10 ms of jitter on the home cable, both directions.
# This kernel has no sch_netem (nor NFQUEUE): the cable is lablib's impaired wire (impaired_wire.py,
# two TAP devices joined in user space, seeded), which does what netem would on any kernel.

LOSSY_WIRE = {"loss": 5, "delay": 30, "jitter": 10, "seed": 7}


def voice_lossy_link():
    require_voice()
    with Lab("voice_lossy_link", nat={"gw-acme": "eim", "gw-home": "eim"}, home_wire=LOSSY_WIRE) as l:
        l.up()
        checks = Checks()
        log("  impairment: the home cable drops %(loss)s %% of frames each way and delays them %(delay)s +- "
            "%(jitter)s ms (impaired_wire.py, seed %(seed)s)" % LOSSY_WIRE)
        # Mouth-to-ear is printed, not bounded: not yet measured often enough on this wire to know its spread.
        report, callee, _, figures = voice_call(l, checks, "home", "acme-1", threshold=LOSSY_SCORE,
                                                latency_bound_ms=None)
        for who, r in (("akiko (hearing kenji's speech)", callee), ("kenji (hearing the greeting)", report)):
            media = r.get("media") or {}
            checks.check(media.get("lost", 0) > 0, "%s lost packets on the wire: %r" % (who, media.get("lost")))
            checks.check(media.get("fec_recovered", 0) > 0,
                         "%s recovered frames from Opus FEC: fec_recovered %r (lost %r, concealed %r)" % (
                             who, media.get("fec_recovered"), media.get("lost"), media.get("concealed")))
            jitter = media.get("jitter_ms")
            checks.check(isinstance(jitter, (int, float)) and jitter > 1,
                         "%s's receiver sees the injected jitter: %r ms" % (who, jitter))
        checks.finish()
        return row_of(report, "EIM / EIM, home cable 5 %% loss, 30+-10 ms", figures)


# home (kenji) talks to 4106@acme (`listen --lan` on acme-1); taro on acme-2 calls 4106@acme too.
# The agent allows call waiting for 4106 ([calls] call_waiting); the terminal hears the waiting
# tone, answers taro after 2 s (kenji is held), taro dials and hangs up, 4106 is back with kenji.

def voice_ext_call_waiting():
    require_voice()
    with Lab("voice_ext_call_waiting", nat={"gw-acme": "eim", "gw-home": "eim"},
             calls='call_waiting = ["4106"]') as l:
        l.up()
        checks = Checks()
        ext = "%s@%s" % (lab.TERMINALS["acme-1"]["ext"], lab.ACME_DOMAIN)
        # The lease reaches the agent's table through dnsmasq's hook, a moment after the lease.
        try:
            lab.wait_until(lambda: re.search(r"^%s\s" % lab.TERMINALS["acme-1"]["ext"], l.agent_list(), re.M), 20,
                           0.2, "4106 in the agent's table")
        except lab.LabFailure:
            log("  the agent's table:\n%s" % l.agent_list())
            raise
        kenji_speech, greeting, taro_speech = l.path("kenji.wav"), l.path("greeting.wav"), l.path("taro.wav")
        voicetool.speech(kenji_speech, 20.0)
        voicetool.speech(greeting, 30.0, GREETING_TEXT)
        voicetool.speech(taro_speech, 4.0)
        ext_report, kenji_report, taro_report = l.path("ext.json"), l.path("kenji.json"), l.path("taro.json")
        listener = l.start_lan_terminal("acme-1", [
            "--auto-accept-from", "kenji", "--once", "--audio-in", greeting, "--audio-out", l.path("ext-heard.wav"),
            "--report", ext_report, "--answer-waiting-after", "2"], binary=False)
        kenji = l.call("home", ext, ["--audio-in", kenji_speech, "--audio-out", l.path("kenji-heard.wav")],
                       binary=False, report=kenji_report)
        deadline = time.monotonic() + 30
        while "audio: Opus" not in listener.err() and kenji.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)
        taro = l.call("acme-2", ext, ["--audio-in", taro_speech, "--audio-out", l.path("taro-heard.wav"),
                                      "--dtmf", DTMF_DIGITS], binary=False, report=taro_report)
        tcode = taro.wait(CALL_TIMEOUT)
        kcode = kenji.wait(CALL_TIMEOUT)
        lcode = listener.wait(30)
        if listener.alive():
            listener.stop()
        err = listener.err()
        log("  4106's stderr: %s" % err[-2000:])
        checks.check(tcode == 0, "taro's call to %s (while kenji talks to it) exits 0 (%s)" % (ext, taro.describe()))
        checks.check(kcode == 0, "kenji's call to %s exits 0 (%s)" % (ext, kenji.describe()))
        checks.check(lcode == 0, "4106's `listen --lan --once` exits 0 after both calls (%s)" % listener.describe())
        checks.check("call waiting: taro" in err, "4106 is told taro is waiting")
        checks.check("holding the call with kenji" in err and "back to the call with kenji" in err,
                     "4106 holds kenji to answer taro, then returns to him")
        printed = dtmf_lines(listener.out())
        checks.check(printed == DTMF_DIGITS, "4106 printed taro's digits: %r (want %r)" % (printed, DTMF_DIGITS))
        report = lab.read_report(ext_report) or {}
        calls = report.get("calls") or []
        checks.check([c.get("peer") for c in calls] == ["taro", "kenji"],
                     "4106's report lists both calls, taro's then kenji's: %r" % [c.get("peer") for c in calls])
        for c in calls:
            received = (c.get("media") or {}).get("packets_received", 0)
            checks.check(received > 100, "4106 received media from %s: %r packets" % (c.get("peer"), received))
        kenji_rep = lab.read_report(kenji_report) or {}
        checks.finish()
        return row_of(kenji_rep, "EIM / EIM", {"forward": None, "backward": None, "dtmf": printed},
                      " (4106@acme via the agent, call waiting: taro answered while kenji held)")


SCENARIOS = {
    "voice_punch_eim": voice_punch_eim,
    "voice_relay_symmetric": voice_relay_symmetric,
    "voice_lan_host_pair": voice_lan_host_pair,
    "voice_ext_punch_eim": voice_ext_punch_eim,
    "voice_lossy_link": voice_lossy_link,
    "voice_ext_call_waiting": voice_ext_call_waiting,
}

if __name__ == "__main__":
    sys.exit(lab.run_scenarios(SCENARIOS, sys.argv))
