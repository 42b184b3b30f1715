#!/usr/bin/python3
"""Voice call scenarios (issue 13) on loopback: a real node, `tsunagu call --audio-in/--audio-out`
and `tsunagu listen --audio-in/--audio-out` (libnice on 127.0.0.1), Opus/RTP both ways; what
arrives is measured by tests/voice/voicetool.py (espeak-ng speech, multimon-ng DTMF, a
STOI-like score), never by the terminal itself.

Run one scenario:  TSUNAGU_BUILD=build /usr/bin/python3 tests/integration/voice_test.py SCENARIO
(Debian's /usr/bin/python3: voicetool needs numpy/scipy.) Each scenario is its own meson test
(tests/integration/meson.build); exit 77 = skipped, with the reason (the voice options not built
yet, or a measuring tool missing).

The CLI these drive:
  tsunagu call ID --audio-in IN --audio-out OUT [--dtmf DIGITS] [--report R.json]
      sends IN in real time as Opus/RTP, records what it hears into OUT (48 kHz mono WAV), then
      DIGITS as RFC 4733 events, hangs up ~1 s later, exit 0; the report has a "media" object.
  tsunagu listen --auto-accept-from X --once --audio-in GREETING --audio-out OUT [--report R.json]
      answers, plays GREETING once then silence, records until the call ends, prints `dtmf: D`
      on stdout for each digit received.

Measured on 2026-12-05 against the lead's CLI (branch lead-voice at 7234de4), loopback, 2 loaded
cores, four scenarios at once: speech scores 0.980-0.993 (8 kHz stereo input 0.977-0.992), the
recording aligned 46-66 ms after the sent audio, 0 lost, jitter 0.5-2.4 ms, RTT 1.2-1.8 ms;
4106# decoded exactly from the recording and printed; bad files refused in 0.1 s, exit 2.
"""

import math
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "voice"))

import harness as h  # noqa: E402
from harness import Checks, log  # noqa: E402
import call_test as ct  # noqa: E402  (setup, start_listener, start_call, exit_of, describe, read_report)

try:
    import voicetool
except ImportError as missing:  # numpy/scipy: reported as a skip by each scenario
    voicetool = None
    VOICETOOL_MISSING = str(missing)

ALICE, BOB = ct.ALICE, ct.BOB

# Thresholds (see tests/voice/voicetool_test.py for the calibration: an Opus 32 kbit/s round trip
# scores 0.98, 5 % of frames lost and concealed 0.97, a 1 kHz low-pass 0.65, other speech 0.21).
CLEAN_SCORE = 0.95
SPEECH_SECONDS = 6.0
GREETING_SECONDS = 4.0
DTMF_DIGITS = "4106#"          # no digit twice in a row: dtmf-decode collapses repeats
# Numbers >= 0 in the report's "media" object (rtt_ms is -1 while unknown: checked separately), and
# digits_received: the digits themselves ("4106#"), or their count.
MEDIA_COUNTERS = ("packets_sent", "packets_received", "lost", "concealed", "fec_recovered", "late", "duplicates",
                  "dropped", "jitter_ms", "jitter_buffer_ms")
LOOPBACK_MAX_JITTER_MS = 60    # loopback on a loaded 2-core machine: generous
LOOPBACK_MAX_RTT_MS = 200
BAD_INPUT_EXIT_WITHIN = 10     # seconds: refused before any call is placed

GREETING_TEXT = ("Hello, you have reached the test extension. Please speak after the tone, "
                 "or press one for the operator.")


def require_voice():
    """Skips (exit 77) with the reason when the voice CLI or a measuring tool is missing."""
    if voicetool is None:
        raise h.Skip("voicetool needs numpy and scipy (%s): run with /usr/bin/python3 "
                     "(python3-numpy, python3-scipy)" % VOICETOOL_MISSING)
    for tool in ("espeak-ng", "sox", "multimon-ng"):
        if shutil.which(tool) is None:
            raise h.Skip("%s is not installed (Debian package %s)" % (tool, tool))
    if not os.access(h.TERMINAL, os.X_OK):
        raise h.TestFailure("%s is not built (set TSUNAGU_BUILD)" % h.TERMINAL)
    help_text = subprocess.run([h.TERMINAL, "call", "--help"], stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=h.CLI_TIMEOUT)
    if "--audio-in" not in help_text.stdout + help_text.stderr:
        raise h.Skip("voice options not built yet (`tsunagu call --help` does not mention --audio-in)")


def make_speech(d, name, seconds, text=None):
    path = d.path(name)
    voicetool.speech(path, seconds, text)
    return path


def voice_call(d, caller_in, callee_in, dtmf=None, caller_args=(), listener_args=()):
    """One voice call alice -> bob on loopback; returns a dict of the processes and paths.
    Checks nothing itself except that both ends exit (bounded)."""
    stem = d._next("voice")
    paths = {
        "caller_out": stem + "-caller-heard.wav",
        "callee_out": stem + "-callee-heard.wav",
        "caller_report": stem + "-caller-report.json",
        "callee_report": stem + "-callee-report.json",
    }
    listener = ct.start_listener(d, ["--auto-accept-from", ALICE, "--once", "--audio-in", callee_in,
                                     "--audio-out", paths["callee_out"], "--report", paths["callee_report"]]
                                 + list(listener_args))
    args = [BOB, "--audio-in", caller_in, "--audio-out", paths["caller_out"], "--report", paths["caller_report"]]
    if dtmf:
        args += ["--dtmf", dtmf]
    started = time.monotonic()
    caller = ct.start_call(d, args + list(caller_args))
    code = ct.exit_of(caller, ct.CALL_TIMEOUT)
    elapsed = time.monotonic() - started
    lcode = ct.exit_of(listener, 30)
    return dict(paths, caller=caller, listener=listener, code=code, lcode=lcode, elapsed=elapsed)


def check_exits(checks, call, sent_seconds):
    checks.check(call["code"] == 0, "the voice caller exits 0 (%s)" % ct.describe(call["caller"]))
    checks.check(call["lcode"] == 0, "`listen --once` with audio exits 0 (%s)" % ct.describe(call["listener"]))
    # Real-time pacing: a caller that sent 6 s of audio cannot be done much sooner than 6 s.
    checks.check(call["elapsed"] >= sent_seconds - 0.5,
                 "the call lasted %.1f s: the %.1f s of audio were paced in real time, not blasted" % (
                     call["elapsed"], sent_seconds))


def check_wav(checks, path, who):
    """The recording exists and is 48 kHz mono (the contract's output format)."""
    if not os.path.exists(path):
        checks.check(False, "%s wrote its recording %s" % (who, path))
        return False
    info = subprocess.run(["sox", "--i", path], capture_output=True, text=True, timeout=30)
    rate = re.search(r"Sample Rate\s*:\s*(\d+)", info.stdout)
    channels = re.search(r"Channels\s*:\s*(\d+)", info.stdout)
    ok = info.returncode == 0 and rate and rate.group(1) == "48000" and channels and channels.group(1) == "1"
    checks.check(ok, "%s's recording is a 48 kHz mono audio file (%s)" % (
        who, (info.stdout + info.stderr).replace("\n", " ")[:200]))
    return ok


def check_score(checks, sent, received, who, threshold=CLEAN_SCORE):
    try:
        result = voicetool.score(sent, received)
    except voicetool.VoiceToolError as error:
        checks.check(False, "%s's recording can be scored: %s" % (who, error))
        return None
    log("  %s: %r" % (who, result))
    checks.check(result["score"] >= threshold, "%s: speech score %.4f >= %.2f (delay %.1f ms)" % (
        who, result["score"], threshold, result["delay_ms"]))
    return result


def media_of(checks, path, who):
    report = ct.read_report(path)
    media = report.get("media")
    checks.check(isinstance(media, dict), "%s's report has a \"media\" object: %r" % (who, media))
    if not isinstance(media, dict):
        return {}
    log("  %s media: %r" % (who, media))
    missing = [k for k in MEDIA_COUNTERS if not isinstance(media.get(k), (int, float)) or media.get(k) < 0]
    if not isinstance(media.get("rtt_ms"), (int, float)):
        missing.append("rtt_ms")
    if not isinstance(media.get("digits_received"), (str, int)):
        missing.append("digits_received")
    checks.check(not missing, "%s's media counters are all there and >= 0 (missing or bad: %r)" % (who, missing))
    return media


def digits_match(value, digits):
    """The report's digits_received: the digits received (a string), or how many (a number)."""
    return value == digits if isinstance(value, str) else value == len(digits)


def check_loopback_media(checks, sender, receiver, sent_seconds, call_seconds, sender_name, receiver_name):
    """Counters of one direction on a clean loopback path: what was sent arrived, nothing lost.
    sent_seconds: the audio the sender had to send; call_seconds: how long the call lasted (the
    sender cannot have sent more than one packet per 20 ms of it, plus DTMF events)."""
    frames = int(sent_seconds / 0.020)
    most = int(call_seconds / 0.020) + 100
    sent = sender.get("packets_sent", 0)
    got = receiver.get("packets_received", 0)
    checks.check(frames * 0.95 <= sent <= most,
                 "%s sent %d packets for %.1f s of 20 ms frames (>= %d, <= %d for a %.1f s call)" % (
                     sender_name, sent, sent_seconds, int(frames * 0.95), most, call_seconds))
    checks.check(sent and got >= sent * 0.98 and got <= sent,
                 "%s received %d of the %d packets %s sent (>= 98 %%)" % (receiver_name, got, sent, sender_name))
    lost = receiver.get("lost", 0)
    checks.check(lost <= max(2, sent * 0.01), "%s counted %s lost on loopback (<= 1 %%)" % (receiver_name, lost))
    checks.check(receiver.get("jitter_ms", 1e9) <= LOOPBACK_MAX_JITTER_MS,
                 "%s's jitter %.1f ms <= %d ms" % (receiver_name, receiver.get("jitter_ms", -1),
                                                   LOOPBACK_MAX_JITTER_MS))
    rtt = receiver.get("rtt_ms")
    # One RTCP report a second each way: after seconds of a call the RTT is known (-1 = unknown).
    checks.check(isinstance(rtt, (int, float)) and 0 <= rtt <= LOOPBACK_MAX_RTT_MS,
                 "%s's RTT %r ms is measured and <= %d ms" % (receiver_name, rtt, LOOPBACK_MAX_RTT_MS))


def dtmf_lines(text):
    return "".join(m.group(1) for m in re.finditer(r"^dtmf: ([0-9A-D*#])\s*$", text, re.M))


# --------------------------------------------------------------------------
# a. the caller's speech reaches the callee's recording

def voice_caller_speech():
    require_voice()
    d = ct.setup()
    checks = Checks()
    speech = make_speech(d, "caller-speech.wav", SPEECH_SECONDS)
    greeting = make_speech(d, "greeting.wav", GREETING_SECONDS, GREETING_TEXT)
    call = voice_call(d, speech, greeting)
    check_exits(checks, call, SPEECH_SECONDS)
    if check_wav(checks, call["callee_out"], "the callee"):
        result = check_score(checks, speech, call["callee_out"], "alice's speech at bob")
        if result:
            checks.check(result["received_seconds"] >= SPEECH_SECONDS * 0.9,
                         "bob's recording holds the whole call (%.2f s for %.1f s sent)" % (
                             result["received_seconds"], SPEECH_SECONDS))
    caller = media_of(checks, call["caller_report"], "the caller")
    callee = media_of(checks, call["callee_report"], "the callee")
    if caller and callee:
        check_loopback_media(checks, caller, callee, SPEECH_SECONDS, call["elapsed"], "alice", "bob")
    checks.finish()


# --------------------------------------------------------------------------
# b. the callee's greeting reaches the caller's recording

def voice_callee_greeting():
    require_voice()
    d = ct.setup()
    checks = Checks()
    # The caller talks longer than the greeting lasts, so the whole greeting is heard before she hangs up.
    speech = make_speech(d, "caller-speech.wav", SPEECH_SECONDS + 2)
    greeting = make_speech(d, "greeting.wav", GREETING_SECONDS, GREETING_TEXT)
    call = voice_call(d, speech, greeting)
    check_exits(checks, call, SPEECH_SECONDS + 2)
    if check_wav(checks, call["caller_out"], "the caller"):
        result = check_score(checks, greeting, call["caller_out"], "bob's greeting at alice")
        if result:
            # Played once, then silence: the greeting's best alignment is near the start of the call.
            checks.check(-500 <= result["delay_ms"] <= 3000,
                         "the greeting starts %.0f ms into alice's recording (within the call's first 3 s)" %
                         result["delay_ms"])
            # The whole greeting, not a part: the part after the greeting is silence, not a repeat.
            try:
                tail = voicetool.read_audio(call["caller_out"], 16000)
                start = int((max(0.0, result["delay_ms"]) / 1000 + GREETING_SECONDS + 0.5) * 16000)
                rest = tail[start:]
                rms = float((rest ** 2).mean() ** 0.5) if len(rest) else 0.0
                checks.check(rms < 10 ** (-45 / 20), "after the greeting alice hears silence (RMS %.1f dBFS)" % (
                    20 * math.log10(rms + 1e-12)))
            except voicetool.VoiceToolError as error:
                checks.check(False, "alice's recording is readable: %s" % error)
    caller = media_of(checks, call["caller_report"], "the caller")
    callee = media_of(checks, call["callee_report"], "the callee")
    if caller and callee:
        # bob sends for the whole call (greeting, then silence frames or none): at least the greeting.
        check_loopback_media(checks, callee, caller, GREETING_SECONDS, call["elapsed"], "bob", "alice")
    checks.finish()


# --------------------------------------------------------------------------
# c. DTMF: RFC 4733 events from the caller, heard in the callee's recording and printed

def voice_dtmf():
    require_voice()
    d = ct.setup()
    checks = Checks()
    speech = make_speech(d, "caller-speech.wav", 3.0)
    greeting = make_speech(d, "greeting.wav", 2.0, GREETING_TEXT)
    call = voice_call(d, speech, greeting, dtmf=DTMF_DIGITS)
    check_exits(checks, call, 3.0)
    printed = dtmf_lines(call["listener"].out())
    checks.check(printed == DTMF_DIGITS, "the callee printed the digits as `dtmf: D` lines: %r (want %r)" % (
        printed, DTMF_DIGITS))
    if check_wav(checks, call["callee_out"], "the callee"):
        # The independent decoder, as a command, exactly as a person would run it.
        decoded = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "..", "voice", "voicetool.py"),
                                  "dtmf-decode", call["callee_out"]], capture_output=True, text=True, timeout=120)
        checks.check(decoded.returncode == 0 and decoded.stdout.strip() == DTMF_DIGITS,
                     "multimon-ng decodes %r from bob's recording: %r %s" % (DTMF_DIGITS, decoded.stdout.strip(),
                                                                              decoded.stderr.strip()))
        decoded_speech = voicetool.dtmf_decode(speech)
        checks.check(decoded_speech == "", "(the speech alone decodes to no digits: %r)" % decoded_speech)
    callee = media_of(checks, call["callee_report"], "the callee")
    if callee:
        checks.check(digits_match(callee.get("digits_received"), DTMF_DIGITS),
                     "the callee's report has the digits received: %r (want %r)" % (callee.get("digits_received"),
                                                                                  DTMF_DIGITS))
    checks.finish()


def voice_dtmf_only():
    """`tsunagu call bob --dtmf 29#` with no audio at all: dials at once and hangs up by itself."""
    require_voice()
    d = ct.setup()
    checks = Checks()
    heard = d.path("callee-heard.wav")
    listener = ct.start_listener(d, ["--auto-accept-from", ALICE, "--once", "--audio-out", heard])
    started = time.monotonic()
    caller = ct.start_call(d, [BOB, "--dtmf", "29#"])
    code = ct.exit_of(caller, 30)
    elapsed = time.monotonic() - started
    lcode = ct.exit_of(listener, 20)
    checks.check(code == 0 and elapsed < 10, "the caller dials and hangs up by itself in %.1f s (%s)" % (
        elapsed, ct.describe(caller)))
    checks.check(lcode == 0, "`listen --once` exits 0 (%s)" % ct.describe(listener))
    checks.check(dtmf_lines(listener.out()) == "29#", "bob printed the digits: %r" % listener.out())
    if os.path.exists(heard):
        decoded = voicetool.dtmf_decode(heard)
        checks.check(decoded == "29#", "multimon-ng decodes 29# from bob's recording: %r" % decoded)
    else:
        checks.check(False, "bob's recording exists")
    checks.finish()


# --------------------------------------------------------------------------
# d. bad input: refused before any call is placed, with a message naming the file

def refused_before_calling(checks, d, listener, args, path, what):
    started = time.monotonic()
    caller = ct.start_call(d, [BOB] + args)
    code = caller.wait_exit(BAD_INPUT_EXIT_WITHIN)
    took = time.monotonic() - started
    if code is None:
        caller.kill()
    checks.check(code not in (None, 0), "%s: `tsunagu call` exits non-zero (exit %s after %.1f s)" % (
        what, code, took))
    err = caller.err()
    checks.check(os.path.basename(path) in err, "%s: the message names the file: %r" % (what, err.strip()[-300:]))
    checks.check("Traceback" not in err and "terminate called" not in err and "Aborted" not in err and
                 (code is None or code < 128), "%s: a message, not a crash" % what)
    checks.check("ringing" not in err and "accepted" not in err, "%s: no call was placed (%r)" % (
        what, err.strip()[-200:]))
    time.sleep(0.3)
    checks.check("accepting a call from" not in listener.err() and "call from" not in listener.err(),
                 "%s: bob's terminal was never rung" % what)


def voice_bad_audio_files():
    require_voice()
    d = ct.setup()
    checks = Checks()
    speech = make_speech(d, "caller-speech.wav", 2.0)
    corrupt = d.path("corrupt.wav")
    with open(corrupt, "wb") as f:
        f.write(b"RIFF\xff\xff\xff\x7fWAVEfmt \x10\x00\x00\x00" + os.urandom(4000))
    truncated = d.path("truncated.wav")
    with open(speech, "rb") as f:
        head = f.read(30)  # the RIFF header cut inside its fmt chunk
    with open(truncated, "wb") as f:
        f.write(head)
    missing = d.path("no-such-file.wav")
    out = d.path("heard.wav")
    # bob listens the whole time (no --once) and must never be rung.
    listener = ct.start_listener(d, ["--auto-accept-from", ALICE, "--audio-in", speech, "--audio-out",
                                     d.path("bob-heard.wav")])
    refused_before_calling(checks, d, listener, ["--audio-in", corrupt, "--audio-out", out], corrupt,
                           "a corrupt WAV")
    refused_before_calling(checks, d, listener, ["--audio-in", truncated, "--audio-out", out], truncated,
                           "a WAV truncated in its header")
    refused_before_calling(checks, d, listener, ["--audio-in", missing, "--audio-out", out], missing,
                           "a missing file")
    checks.check(listener.alive(), "bob's listener is still running")
    listener.kill()

    # The callee side: a corrupt greeting is refused before `listen` goes online.
    t = h.spawn_cli(d, ["listen", "--auto-accept-from", ALICE, "--once", "--audio-in", corrupt, "--audio-out",
                        d.path("x.wav")] + ct.LOOP, BOB, ct.password_of(BOB))
    code = t.wait_exit(BAD_INPUT_EXIT_WITHIN)
    if code is None:
        t.kill()
    checks.check(code not in (None, 0) and os.path.basename(corrupt) in t.err() and "listening as" not in t.err(),
                 "`listen` with a corrupt greeting exits non-zero naming it, before going online (exit %s, %r)" % (
                     code, t.err().strip()[-300:]))
    checks.finish()


def voice_8k_stereo_resampled():
    require_voice()
    d = ct.setup()
    checks = Checks()
    speech = make_speech(d, "speech-48k.wav", SPEECH_SECONDS)
    narrow = d.path("speech-8k-stereo.wav")
    subprocess.run(["sox", speech, "-r", "8000", "-c", "2", narrow], check=True, timeout=60)
    info = subprocess.run(["sox", "--i", narrow], capture_output=True, text=True, timeout=30).stdout
    checks.check("8000" in info and re.search(r"Channels\s*:\s*2", info) is not None,
                 "the input is an 8 kHz stereo WAV")
    greeting = make_speech(d, "greeting.wav", 2.0, GREETING_TEXT)
    call = voice_call(d, narrow, greeting)
    check_exits(checks, call, SPEECH_SECONDS)
    if check_wav(checks, call["callee_out"], "the callee"):
        # Against what was sent (the 8 kHz file): resampling must not cost more than the codec does.
        check_score(checks, narrow, call["callee_out"], "alice's 8 kHz stereo speech at bob")
    checks.finish()


# --------------------------------------------------------------------------
# e. hold: the held peer hears the hold tone (made at its end), no speech, then speech again

HOLD_AT, RESUME_AT = 4, 8            # --hold-at / --resume-at, seconds after connecting


def long_speech(d, name, seconds):
    """Speech without long pauses for `seconds` (the fixed Harvard sentences, repeated)."""
    text = ("The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
            "It is easy to tell the depth of a well. These days a chicken leg is a rare dish. "
            "Rice is often served in round bowls. The juice of lemons makes fine punch. ") * 3
    return make_speech(d, name, seconds, text)


def hold_period(checks, report, by, who):
    """The one hold period of the report's "hold" object made by `by` ("me" or "peer")."""
    hold = report.get("hold")
    checks.check(isinstance(hold, dict), "%s's report has a \"hold\" object: %r" % (who, hold))
    if not isinstance(hold, dict):
        return None, {}
    log("  %s hold: %r" % (who, hold))
    periods = [p for p in hold.get("periods", []) if p.get("by") == by]
    checks.check(len(periods) == 1, "%s's report has one hold period by %s: %r" % (who, by, hold.get("periods")))
    return (periods[0] if periods else None), hold


def speech_share(db, start_ms, end_ms, floor=-40.0):
    """The share of 20 ms frames in [start_ms, end_ms) louder than floor dBFS."""
    part = db[max(0, start_ms // 20):max(0, end_ms // 20)]
    return float((part > floor).mean()) if len(part) else 0.0


def bursts_within(bursts, start_ms, end_ms):
    return [b for b in bursts if b[0] >= start_ms and b[1] <= end_ms]


def check_held_window(checks, path, period, who, tone_expected=True):
    """In `path` (a recording whose 0 is the call's audio start): speech before `period`, only the
    425 Hz hold tone (or silence) inside it, speech again after it."""
    db = voicetool.levels(path)
    bursts = voicetool.tone_bursts(path)
    log("  %s: 425 Hz bursts %r" % (who, bursts))
    start, end = period["start_ms"], period["end_ms"]
    before = speech_share(db, 500, start - 200)
    after = speech_share(db, end + 400, end + 3400)
    checks.check(before >= 0.4, "%s hears speech before the hold (%.0f %% of frames above -40 dBFS)" % (
        who, 100 * before))
    checks.check(after >= 0.4, "%s hears speech again after the resume (%.0f %% of frames above -40 dBFS)" % (
        who, 100 * after))
    # The period starts when the hold frame arrived, to the 20 ms frame; bursts to 20 ms windows.
    inside = bursts_within(bursts, start - 60, end + 100)
    if tone_expected:
        # 0.1 s on every 3 s from the hold's start: a burst at once, another 3 s later.
        checks.check(len(inside) >= 1 and abs(inside[0][0] - start) <= 400,
                     "%s hears the hold tone from the hold's start (bursts %r, hold %d-%d ms)" % (
                         who, inside, start, end))
        checks.check(all(60 <= b[1] - b[0] <= 200 for b in inside),
                     "the hold tone's bursts are ~100 ms: %r" % inside)
        if end - start > 3500:
            checks.check(len(inside) >= 2, "%s hears the hold tone repeat every 3 s: %r" % (who, inside))
    # Nothing else in the window: every frame is the tone or quiet (no speech, no concealment noise).
    tone_ms = set()
    for b in inside:
        tone_ms.update(range(b[0] // 20 - 1, b[1] // 20 + 2))
    loud = [i * 20 for i in range((start + 300) // 20, (end - 100) // 20)
            if i < len(db) and db[i] > -50 and i not in tone_ms]
    checks.check(not loud, "%s hears no speech while held (frames above -50 dBFS outside the tone: %r)" % (
        who, loud[:10]))
    return inside


def voice_hold():
    require_voice()
    d = ct.setup()
    checks = Checks()
    seconds = 12.0
    speech = long_speech(d, "alice-speech.wav", seconds)
    greeting = long_speech(d, "bob-speech.wav", seconds + 4)
    call = voice_call(d, speech, greeting,
                      caller_args=["--hold-at", str(HOLD_AT), "--resume-at", str(RESUME_AT)])
    check_exits(checks, call, seconds)
    checks.check("on hold" in call["caller"].err() and "resumed" in call["caller"].err(),
                 "alice says she holds and resumes (%r)" % call["caller"].err()[-600:])
    checks.check("put the call on hold" in call["listener"].err() and "resumed the call" in call["listener"].err(),
                 "bob is told he is held and resumed (%r)" % call["listener"].err()[-600:])
    alice = ct.read_report(call["caller_report"])
    bob = ct.read_report(call["callee_report"])
    mine, alice_hold = hold_period(checks, alice, "me", "alice")
    theirs, bob_hold = hold_period(checks, bob, "peer", "bob")
    hold_frames = (RESUME_AT - HOLD_AT) * 50
    if mine:
        checks.check(abs(mine["start_ms"] - HOLD_AT * 1000) <= 100 and abs(mine["end_ms"] - RESUME_AT * 1000) <= 100,
                     "alice held from %d to %d ms (--hold-at %d --resume-at %d)" % (
                         mine["start_ms"], mine["end_ms"], HOLD_AT, RESUME_AT))
    if alice_hold:
        checks.check(abs(alice_hold.get("frames_withheld", 0) - hold_frames) <= 5,
                     "alice withheld %r frames (%d expected: 20 ms each while held)" % (
                         alice_hold.get("frames_withheld"), hold_frames))
        # One signal at the hold, one each 500 ms while held, three at the resume.
        checks.check(alice_hold.get("hold_signals_sent", 0) >= (RESUME_AT - HOLD_AT) * 2 + 3,
                     "alice sent the hold signal repeatedly: %r" % alice_hold.get("hold_signals_sent"))
    if theirs:
        checks.check(abs((theirs["end_ms"] - theirs["start_ms"]) - (RESUME_AT - HOLD_AT) * 1000) <= 300,
                     "bob was held for %d ms" % (theirs["end_ms"] - theirs["start_ms"]))
    if bob_hold:
        checks.check(abs(bob_hold.get("hold_tone_frames", 0) - hold_frames) <= 15,
                     "bob played %r frames of the hold tone (~%d)" % (bob_hold.get("hold_tone_frames"), hold_frames))
        checks.check(abs(bob_hold.get("frames_withheld", 0) - hold_frames) <= 15,
                     "bob sent nothing while held either: %r frames withheld" % bob_hold.get("frames_withheld"))
    # No media sent to the held peer: what bob received is the call's length less the hold.
    a_media, b_media = alice.get("media", {}), bob.get("media", {})
    sent = a_media.get("packets_sent", 0)
    most = int(call["elapsed"] / 0.020) - hold_frames + 60
    checks.check(0 < sent <= most, "alice sent %d packets: none during the %d s hold (<= %d)" % (
        sent, RESUME_AT - HOLD_AT, most))
    checks.check(b_media.get("packets_received", 0) <= sent, "bob received %r of them" % b_media.get("packets_received"))
    if theirs and check_wav(checks, call["callee_out"], "bob"):
        check_held_window(checks, call["callee_out"], theirs, "bob")
    if mine and check_wav(checks, call["caller_out"], "alice"):
        # The holder hears neither the held party nor a tone: silence.
        check_held_window(checks, call["caller_out"], mine, "alice (the holder)", tone_expected=False)
        bursts = voicetool.tone_bursts(call["caller_out"])
        checks.check(not bursts, "alice (the holder) hears no hold tone: %r" % bursts)
    checks.finish()


# --------------------------------------------------------------------------
# f. call waiting: alice talks to bob, carol rings, bob hears the waiting tone, answers carol
# (alice is held and hears the hold tone), carol and bob talk and dial, carol hangs up, bob is
# back with alice.

WAIT_ANSWER_S = 2


def voice_call_waiting():
    require_voice()
    d = ct.setup(calls__consent_timeout=30)
    result = d.admin(["user", "-d", d.dir, "set-services", BOB, "call-waiting"])
    if result.code != 0:
        raise h.TestFailure("set-services call-waiting for bob: %r" % (result,))
    checks = Checks()
    alice_speech = long_speech(d, "alice-speech.wav", 22.0)
    bob_speech = long_speech(d, "bob-speech.wav", 40.0)
    carol_speech = make_speech(d, "carol-speech.wav", 4.0)
    bob_out, bob_report = d.path("bob-heard.wav"), d.path("bob-report.json")
    alice_out, alice_report = d.path("alice-heard.wav"), d.path("alice-report.json")
    carol_out, carol_report = d.path("carol-heard.wav"), d.path("carol-report.json")
    listener = ct.start_listener(d, ["--auto-accept-from", ALICE, "--once", "--audio-in", bob_speech,
                                     "--audio-out", bob_out, "--report", bob_report,
                                     "--answer-waiting-after", str(WAIT_ANSWER_S)])
    alice = ct.start_call(d, [BOB, "--audio-in", alice_speech, "--audio-out", alice_out, "--report", alice_report])
    carol = None
    try:
        h.wait_until(lambda: "audio: Opus" in listener.err() or not alice.alive(), 20, 0.05,
                     "bob's call with alice to start its audio")
        time.sleep(4)
        carol = ct.start_call(d, [BOB, "--audio-in", carol_speech, "--audio-out", carol_out,
                                  "--report", carol_report, "--dtmf", DTMF_DIGITS], user=ct.CAROL)
        ccode = ct.exit_of(carol, ct.CALL_TIMEOUT)
        acode = ct.exit_of(alice, ct.CALL_TIMEOUT)
        lcode = ct.exit_of(listener, 30)
    finally:
        for t in (alice, carol, listener):
            if t is not None and t.alive():
                t.kill()
    err = listener.err()
    log("  bob's stderr: %s" % err[-2500:])
    checks.check(ccode == 0, "carol's call ends 0 (%s)" % ct.describe(carol))
    checks.check(acode == 0, "alice's call ends 0 (%s)" % ct.describe(alice))
    checks.check(lcode == 0, "bob's `listen --once` exits 0 after both calls (%s)" % ct.describe(listener))
    checks.check("call waiting: carol" in err, "bob is told carol is waiting")
    checks.check("holding the call with alice" in err and "back to the call with alice" in err,
                 "bob holds alice to answer carol, then returns to her")
    printed = dtmf_lines(listener.out())
    checks.check(printed == DTMF_DIGITS, "bob printed carol's digits: %r (want %r)" % (printed, DTMF_DIGITS))
    # bob's report: at the top level the last call's (alice's): his hold of her and the waiting
    # tone over it; "calls" holds both, in the order they ended (carol hung up first).
    bob_rep = ct.read_report(bob_report)
    calls = bob_rep.get("calls", [])
    checks.check([c.get("peer") for c in calls] == [ct.CAROL, ALICE],
                 "bob's report lists both calls, carol's then alice's: %r" % [c.get("peer") for c in calls])
    checks.check(bob_rep.get("peer") == ALICE and calls and calls[-1].get("call_id") == bob_rep.get("call_id"),
                 "the report's top level is the last call's (alice's): %r" % bob_rep.get("peer"))
    checks.check(len({c.get("call_id") for c in calls}) == len(calls), "two distinct call IDs")
    for c in calls:
        received = c.get("media", {}).get("packets_received", 0)
        checks.check(received > 100, "bob's report of the call with %s counts its media: %r packets received" % (
            c.get("peer"), received))
    mine, bob_hold = hold_period(checks, bob_rep, "me", "bob")
    if bob_hold:
        wf = bob_hold.get("waiting_tone_frames", 0)
        checks.check(abs(wf - WAIT_ANSWER_S * 50) <= 25,
                     "bob heard the waiting tone until he answered: %r frames (~%d)" % (wf, WAIT_ANSWER_S * 50))
    alice_rep = ct.read_report(alice_report)
    theirs, alice_hold = hold_period(checks, alice_rep, "peer", "alice")
    if alice_hold:
        checks.check(alice_hold.get("hold_tone_frames", 0) >= 100, "alice played the hold tone: %r frames" %
                     alice_hold.get("hold_tone_frames"))
    # bob's recording: alice, then the waiting tone over her, then carol (speech and DTMF), then alice.
    if check_wav(checks, bob_out, "bob"):
        # The tone is mixed over alice's speech: a frame is tone when most (not 90 %) of it is 425 Hz.
        # A syllable can break a beep: runs up to 60 ms apart are one. Beeps are matched by their
        # centres (400 ms apart), which a late or early edge under speech moves least.
        bursts = voicetool.tone_bursts(bob_out, share=0.6, bridge_ms=60)
        log("  bob's 425 Hz bursts: %r" % bursts)
        pairs = [(a, b) for a, b in zip(bursts, bursts[1:])
                 if 320 <= (b[0] + b[1] - a[0] - a[1]) / 2 <= 480 and 100 <= a[1] - a[0] <= 280 and
                 100 <= b[1] - b[0] <= 280]
        checks.check(len(pairs) == 1, "bob hears the call-waiting double beep once before he answers (0.2 s on, "
                     "0.2 s off, 0.2 s on; bursts %r)" % bursts)
        if mine and pairs:
            checks.check(mine["start_ms"] - 2500 <= pairs[0][0][0] <= mine["start_ms"] - 1500,
                         "the double beep starts when carol rings, %d s before bob answers (%d ms, answered at "
                         "%d ms)" % (WAIT_ANSWER_S, pairs[0][0][0], mine["start_ms"]))
        decoded = voicetool.dtmf_decode(bob_out)
        checks.check(decoded == DTMF_DIGITS, "multimon-ng decodes carol's %r from bob's recording: %r" % (
            DTMF_DIGITS, decoded))
        if mine:
            db = voicetool.levels(bob_out)
            during = speech_share(db, mine["start_ms"] + 300, mine["start_ms"] + 3800)
            after = speech_share(db, mine["end_ms"] + 400, mine["end_ms"] + 3400)
            checks.check(during >= 0.4, "bob hears carol while alice is held (%.0f %% loud frames)" % (100 * during))
            checks.check(after >= 0.4, "bob hears alice again after carol hung up (%.0f %%)" % (100 * after))
            # carol's speech, cut from bob's recording where he talked to her, scores as clean speech.
            x = voicetool.read_audio(bob_out, voicetool.RATE)
            part = x[mine["start_ms"] * 48: (mine["end_ms"] + 200) * 48]
            cut = d.path("bob-heard-carol.wav")
            voicetool.write_wav(cut, part)
            check_score(checks, carol_speech, cut, "carol's speech at bob", threshold=0.85)
    if theirs and check_wav(checks, alice_out, "alice"):
        check_held_window(checks, alice_out, theirs, "alice (held for carol)")
    if check_wav(checks, carol_out, "carol"):
        db = voicetool.levels(carol_out)
        share = speech_share(db, 500, 4000)
        checks.check(share >= 0.4, "carol hears bob (%.0f %% of her first 4 s loud)" % (100 * share))
    checks.finish()


SCENARIOS = {
    "voice_caller_speech": voice_caller_speech,
    "voice_callee_greeting": voice_callee_greeting,
    "voice_dtmf": voice_dtmf,
    "voice_dtmf_only": voice_dtmf_only,
    "voice_bad_audio_files": voice_bad_audio_files,
    "voice_8k_stereo_resampled": voice_8k_stereo_resampled,
    "voice_hold": voice_hold,
    "voice_call_waiting": voice_call_waiting,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
