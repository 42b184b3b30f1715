#!/usr/bin/python3
"""Device mode for real (issue 13): `tsunagu listen --audio` talks through a PulseAudio daemon
that tests/unit/audio/with_pulseaudio.py starts for this test (private runtime folder, a null
sink `tsunagu_test`, killed by PID afterwards), not a mock.

The listener's speaker is the null sink `tsunagu_test`; its microphone is the monitor of a second
null sink `mic`, into which the test plays a greeting with paplay. What the listener plays is
recorded from `tsunagu_test.monitor` with parecord and scored against what the caller said, and
the caller's recording is scored against the greeting. Both sides being devices, the listener's
echo canceller is on.

    tests/unit/audio/with_pulseaudio.py /usr/bin/python3 tests/integration/voice_device_test.py voice_device_mode
"""

import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness as h  # noqa: E402
from harness import Checks, log  # noqa: E402
import call_test as ct  # noqa: E402
import voice_test as vt  # noqa: E402

DEVICE_SCORE = 0.90  # the device path adds PulseAudio's buffering and the null sink's 2 s blocks
GREETING_SCORE = 0.85  # the greeting passes the echo canceller's preprocessor (denoise) on its way


def voice_device_mode():
    vt.require_voice()
    if not os.environ.get("PULSE_SERVER"):
        raise h.Skip("no PulseAudio server: run under tests/unit/audio/with_pulseaudio.py")
    for tool in ("pactl", "paplay", "parecord"):
        if shutil.which(tool) is None:
            raise h.Skip("%s is not installed (Debian package pulseaudio-utils)" % tool)
    subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=mic", "rate=48000"], check=True,
                   capture_output=True, timeout=10)
    d = ct.setup()
    checks = Checks()
    speech = vt.make_speech(d, "caller-speech.wav", vt.SPEECH_SECONDS)
    greeting = vt.make_speech(d, "greeting.wav", vt.GREETING_SECONDS, vt.GREETING_TEXT)
    speaker = d.path("speaker.wav")
    caller_heard, report = d.path("caller-heard.wav"), d.path("callee-report.json")
    recorder = subprocess.Popen(["parecord", "--device=tsunagu_test.monitor", "--rate=48000", "--channels=1",
                                 "--format=s16le", "--file-format=wav", "--latency-msec=20", speaker],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    player = None
    try:
        listener = ct.start_listener(d, ["--auto-accept-from", vt.ALICE, "--once", "--audio",
                                         "--audio-output-device", "tsunagu_test", "--audio-input-device",
                                         "mic.monitor", "--report", report])
        caller = ct.start_call(d, [vt.BOB, "--audio-in", speech, "--audio-out", caller_heard, "--dtmf", "41#"])
        h.wait_until(lambda: "connected after" in caller.err() or not caller.alive(), 20, 0.05,
                     "the call to connect")
        player = subprocess.Popen(["paplay", "--device=mic", greeting], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        code = ct.exit_of(caller)
        lcode = ct.exit_of(listener, 30)
        checks.check(code == 0, "the caller exits 0 (%s)" % ct.describe(caller))
        checks.check(lcode == 0, "`listen --audio` exits 0 (%s)" % ct.describe(listener))
        checks.check("audio: Opus 48 kHz mono from microphone, heard into speaker" in listener.err(),
                     "the listener talks through its devices: %r" % [
                         line for line in listener.err().splitlines() if line.startswith("audio:")])
        checks.check("echo cancellation on" in listener.err(), "its echo canceller is on (both sides devices)")
        checks.check(vt.dtmf_lines(listener.out()) == "41#", "the digits printed: %r" % listener.out())
        time.sleep(0.5)
    finally:
        for proc in (recorder, player):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # parecord finishes the WAV header on SIGINT
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    vt.check_score(checks, speech, speaker, "alice's speech out of bob's speaker (the null sink's monitor)",
                   DEVICE_SCORE)
    vt.check_score(checks, greeting, caller_heard, "bob's microphone (the greeting) heard by alice", GREETING_SCORE)
    media = (ct.read_report(report) or {}).get("media") or {}
    log("  bob's media: %r" % media)
    checks.check(media.get("packets_sent", 0) > 100, "bob sent what his microphone heard: %r packets" %
                 media.get("packets_sent"))
    checks.finish()


def voice_device_keys():
    """The keys of a call through devices, typed on a terminal (a pty): bob talks to alice through
    PulseAudio, carol rings (call waiting), bob types w: carol is answered and alice held (her
    recording has the hold tone); carol dials and hangs up, bob is back with alice; then h holds her
    again and h resumes."""
    vt.require_voice()
    if not os.environ.get("PULSE_SERVER"):
        raise h.Skip("no PulseAudio server: run under tests/unit/audio/with_pulseaudio.py")
    subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=mic", "rate=48000"], check=True,
                   capture_output=True, timeout=10)
    d = ct.setup(calls__consent_timeout=30)
    result = d.admin(["user", "-d", d.dir, "set-services", vt.BOB, "call-waiting"])
    if result.code != 0:
        raise h.TestFailure("set-services call-waiting for bob: %r" % (result,))
    checks = Checks()
    alice_speech = vt.long_speech(d, "alice-speech.wav", 24.0)
    carol_speech = vt.make_speech(d, "carol-speech.wav", 3.0)
    alice_heard, alice_report = d.path("alice-heard.wav"), d.path("alice-report.json")
    master, slave = os.openpty()
    listener = alice = carol = None
    try:
        listener = ct.start_listener(d, ["--auto-accept-from", vt.ALICE, "--once", "--audio",
                                         "--audio-output-device", "tsunagu_test", "--audio-input-device",
                                         "mic.monitor"], stdin=os.ttyname(slave))
        alice = ct.start_call(d, [vt.BOB, "--audio-in", alice_speech, "--audio-out", alice_heard,
                                  "--report", alice_report])
        h.wait_until(lambda: "w answer a waiting call" in listener.err() or not listener.alive(), 20, 0.05,
                     "bob's keys to be read from his terminal")
        time.sleep(1)
        carol = ct.start_call(d, [vt.BOB, "--audio-in", carol_speech, "--dtmf", vt.DTMF_DIGITS], user=ct.CAROL)
        h.wait_until(lambda: "call waiting: carol" in listener.err() or not listener.alive(), 20, 0.05,
                     "carol's call to wait")
        time.sleep(1)
        os.write(master, b"w")
        ccode = ct.exit_of(carol)
        h.wait_until(lambda: "back to the call with alice" in listener.err() or not listener.alive(), 20, 0.05,
                     "bob to be back with alice")
        time.sleep(1)
        os.write(master, b"h")
        time.sleep(3.5)
        os.write(master, b"h")
        acode = ct.exit_of(alice)
        lcode = ct.exit_of(listener, 30)
    finally:
        for t in (alice, carol, listener):
            if t is not None and t.alive():
                t.kill()
        os.close(master)
        os.close(slave)
    err = listener.err()
    log("  bob's stderr: %s" % err[-2000:])
    checks.check(ccode == 0 and acode == 0 and lcode == 0, "carol, alice and bob exit 0 (%s, %s, %s)" % (
        ccode, acode, lcode))
    checks.check("holding the call with alice" in err, "w answered carol and held alice")
    checks.check(vt.dtmf_lines(listener.out()) == vt.DTMF_DIGITS, "bob printed carol's digits: %r" %
                 listener.out())
    report = ct.read_report(alice_report)
    hold = report.get("hold") or {}
    periods = [p for p in hold.get("periods", []) if p.get("by") == "peer"]
    log("  alice's hold: %r" % hold)
    checks.check(len(periods) == 2, "alice was held twice (for carol, then with h): %r" % periods)
    if len(periods) == 2:
        length = periods[1]["end_ms"] - periods[1]["start_ms"]
        checks.check(3000 <= length <= 4500, "the h hold lasted %d ms (h, 3.5 s, h)" % length)
        bursts = voicetool_bursts(alice_heard)
        for i, p in enumerate(periods):
            inside = [b for b in bursts if p["start_ms"] - 60 <= b[0] <= p["end_ms"]]
            checks.check(inside and abs(inside[0][0] - p["start_ms"]) <= 400,
                         "alice hears the hold tone at the start of hold %d (%r, hold from %d ms)" % (
                             i + 1, inside, p["start_ms"]))
    checks.finish()


def voicetool_bursts(path):
    return vt.voicetool.tone_bursts(path)


SCENARIOS = {"voice_device_mode": voice_device_mode, "voice_device_keys": voice_device_keys}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
