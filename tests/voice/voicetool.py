#!/usr/bin/python3
"""Measuring tools for the voice tests (issue 13): test speech, DTMF tones, an
independent DTMF decoder and a speech-quality score.

Run with Debian's /usr/bin/python3 (numpy and scipy from Debian); the audio work
is done by real tools: espeak-ng makes the speech, sox converts every file (so any
format sox reads is accepted), multimon-ng decodes DTMF. Usable as a CLI and as a
module (the same functions, with underscores):

  voicetool.py speech OUT.wav [--seconds S] [--text T]
      deterministic English speech, 48 kHz mono 16-bit WAV, trimmed/padded to S
      seconds (default 6); the same bytes on every run on the same machine.
  voicetool.py tones OUT.wav DIGITS [--on-ms 100 --off-ms 60]
      DTMF tones (ITU-T Q.23 frequency pairs), 48 kHz mono 16-bit WAV.
  voicetool.py dtmf-decode FILE
      the digits multimon-ng hears in FILE, as one line (e.g. `4106#`).
  voicetool.py tone-bursts FILE [--frequency 425]
      [[start_ms, end_ms], ...]: where FILE holds a pure tone of that frequency
      (the hold and call-waiting tones), found by FFT, one line of JSON.
  voicetool.py score SENT RECEIVED
      {"score": S, "delay_ms": D, "sent_seconds": .., "received_seconds": ..}:
      D is where SENT best aligns in RECEIVED (RECEIVED[t] ~ SENT[t - D]); S is a
      STOI-like band-envelope correlation of the aligned signals, in [0, 1].

Failures (a missing or corrupt file, silence, a too-short recording) print
`voicetool: <why>` on stderr and exit 1; the module raises VoiceToolError.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave

import numpy as np
from scipy import signal as sps

RATE = 48000            # every file this tool writes
ANALYSIS_RATE = 16000   # the score works at 16 kHz: bands up to ~4.3 kHz need no more
MAX_SECONDS = 600       # longest input any command reads (a bound on memory, not a feature)
TOOL_TIMEOUT = 120      # seconds any one espeak-ng / sox / multimon-ng run may take

# A fixed text (Harvard sentences, the classic speech-test material) and a fixed
# voice, speed and pitch, so the same machine makes the same bytes every run.
SPEECH_TEXT = ("The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
               "It is easy to tell the depth of a well. These days a chicken leg is a rare dish.")
SPEECH_VOICE = "en-us"
SPEECH_WPM = 165
SPEECH_PITCH = 50

# ITU-T Q.23: row (low) and column (high) frequencies of each key.
DTMF_LOW = {"1": 697, "2": 697, "3": 697, "A": 697, "4": 770, "5": 770, "6": 770, "B": 770,
            "7": 852, "8": 852, "9": 852, "C": 852, "*": 941, "0": 941, "#": 941, "D": 941}
DTMF_HIGH = {"1": 1209, "4": 1209, "7": 1209, "*": 1209, "2": 1336, "5": 1336, "8": 1336, "0": 1336,
             "3": 1477, "6": 1477, "9": 1477, "#": 1477, "A": 1633, "B": 1633, "C": 1633, "D": 1633}
DTMF_AMPLITUDE = 0.25   # per tone: -12 dBFS each, the pair peaks at -6 dBFS

# Score parameters (STOI's structure; 32 ms frames at a 16 ms hop, 24-frame = 384 ms segments).
FRAME = 512
HOP = 256
SEGMENT_FRAMES = 24
BANDS = 15                  # one-third octaves from 150 Hz: centres 150 Hz .. 3.8 kHz, top edge ~4.3 kHz
FIRST_CENTRE_HZ = 150.0
DYNAMIC_RANGE_DB = 40.0     # sent frames more than this below the loudest are silence and not scored
CLIP_DB = 15.0              # STOI's clipping of the received envelope (beta = -15 dB)
# A jitter buffer that moves its delay mid-call (drops or inserts a frame) shifts the rest of the
# received speech by 20 ms or more; each segment may re-align by up to this many hops (±48 ms), in
# 4 ms steps, so that is not scored as lost speech. Unrelated speech gains little from it (see
# voicetool_test.py). Measured in the lab: one inserted frame on a clean path cost 0.02-0.04 when
# the shift could only be whole 16 ms hops.
SEGMENT_SHIFT_HOPS = 3
SHIFT_STEP = HOP // 4
SILENCE_RMS = 10 ** (-70 / 20)  # a received file quieter than -70 dBFS RMS is "silent"
# A received band this far below the sent band (after the overall level difference) carries nothing:
# without this floor, the quantisation noise of a low-passed file (whose level follows the speech
# that remains) correlates with the sent envelope and a 1 kHz low-pass still scored 0.81.
ABSENT_BAND_DB = 40.0


class VoiceToolError(Exception):
    pass


# --------------------------------------------------------------------------
# Running the tools

def _need(program):
    path = shutil.which(program)
    if path is None:
        raise VoiceToolError("%s is not installed (Debian package %s)" % (program, program))
    return path


def _run(args, stdin=None, what=None):
    try:
        done = subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise VoiceToolError("%s took longer than %d s" % (what or args[0], TOOL_TIMEOUT))
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VoiceToolError("%s failed (exit %d): %s" % (what or args[0], done.returncode,
                                                         " / ".join(detail[-3:]) or "no message"))
    return done.stdout


def read_audio(path, rate=RATE):
    """Any file sox reads, as float32 mono samples in [-1, 1] at `rate` (at most MAX_SECONDS)."""
    if not os.path.isfile(path):
        raise VoiceToolError("%s: no such file" % path)
    limit = MAX_SECONDS * rate * 4
    # Only the header is trusted up front: sox reports the length, and a file longer than the
    # bound is refused before any sample is decoded.
    info = subprocess.run([_need("sox"), "--i", "-D", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=TOOL_TIMEOUT)
    if info.returncode == 0:
        try:
            if float(info.stdout.decode().strip() or 0) > MAX_SECONDS:
                raise VoiceToolError("%s: longer than %d s" % (path, MAX_SECONDS))
        except ValueError:
            pass
    raw = _run([_need("sox"), "-V1", "-D", path, "-t", "raw", "-r", str(rate), "-e", "floating-point", "-b", "32",
                "-c", "1", "-"], what="sox reading %s" % path)
    if len(raw) > limit:
        raise VoiceToolError("%s: longer than %d s" % (path, MAX_SECONDS))
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def write_wav(path, samples, rate=RATE):
    """float samples in [-1, 1] -> 16-bit mono WAV (deterministic: no dither, plain rounding)."""
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def read_wav(path):
    """A 16-bit mono WAV as (float samples, rate) without resampling (for tests that edit samples)."""
    with wave.open(path, "rb") as f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1:
            raise VoiceToolError("%s: not a 16-bit mono WAV" % path)
        rate = f.getframerate()
        frames = f.readframes(min(f.getnframes(), MAX_SECONDS * rate))
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32767.0, rate


# --------------------------------------------------------------------------
# speech, tones

def speech(out, seconds=6.0, text=None):
    """Writes deterministic espeak-ng speech to `out` (48 kHz mono 16-bit WAV, exactly `seconds` long)."""
    if not 0 < seconds <= MAX_SECONDS:
        raise VoiceToolError("--seconds must be in (0, %d]" % MAX_SECONDS)
    with tempfile.TemporaryDirectory(prefix="voicetool-") as scratch:
        spoken = os.path.join(scratch, "espeak.wav")
        _run([_need("espeak-ng"), "-v", SPEECH_VOICE, "-s", str(SPEECH_WPM), "-p", str(SPEECH_PITCH), "-a", "100",
              "-w", spoken, text or SPEECH_TEXT], what="espeak-ng")
        samples = read_audio(spoken, RATE)  # sox resamples espeak-ng's 22050 Hz, without dither
    wanted = int(round(seconds * RATE))
    samples = np.concatenate([samples[:wanted], np.zeros(max(0, wanted - len(samples)), dtype=np.float32)])
    write_wav(out, samples)
    return out


def tones(out, digits, on_ms=100, off_ms=60):
    """Writes DTMF tones for `digits` (0-9 * # A-D), each on_ms long with off_ms of silence around."""
    digits = digits.upper()
    bad = [d for d in digits if d not in DTMF_LOW]
    if bad or not digits:
        raise VoiceToolError("not DTMF digits: %r (use 0-9 * # A-D)" % digits)
    if not (20 <= on_ms <= 10000 and 0 <= off_ms <= 10000):
        raise VoiceToolError("--on-ms must be 20..10000 and --off-ms 0..10000")
    on = np.arange(int(RATE * on_ms / 1000)) / RATE
    # A 2 ms raised-cosine ramp at each end keeps the tone from clicking (clicks spread into every band).
    ramp = min(len(on) // 2, int(RATE * 0.002))
    envelope = np.ones(len(on))
    if ramp:
        envelope[:ramp] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        envelope[-ramp:] = envelope[:ramp][::-1]
    gap = np.zeros(int(RATE * off_ms / 1000))
    parts = [gap]
    for d in digits:
        pair = DTMF_AMPLITUDE * (np.sin(2 * np.pi * DTMF_LOW[d] * on) + np.sin(2 * np.pi * DTMF_HIGH[d] * on))
        parts += [pair * envelope, gap]
    write_wav(out, np.concatenate(parts))
    return out


# --------------------------------------------------------------------------
# dtmf-decode

def dtmf_decode(path):
    """The DTMF digits multimon-ng detects in any audio file sox reads, as a string.

    multimon-ng reports a tone once when it starts; a tone broken by a gap (a lost
    packet concealed as a short dip) can be reported twice, so repeated detections of
    one digit collapse into one. Consequence: the same digit twice in a row ("11")
    reads as one; tests send digit strings without adjacent repeats.
    """
    raw = read_audio(path, 22050)
    pcm = np.clip(np.round(raw * 32767.0), -32768, 32767).astype("<i2").tobytes()
    text = _run([_need("multimon-ng"), "-q", "-c", "-a", "DTMF", "-t", "raw", "-"], stdin=pcm,
                what="multimon-ng").decode("utf-8", "replace")
    digits = []
    for line in text.splitlines():
        if line.startswith("DTMF: ") and len(line.strip()) == 7:
            digit = line.strip()[-1]
            if not digits or digits[-1] != digit:
                digits.append(digit)
    return "".join(digits)


# --------------------------------------------------------------------------
# tone-bursts, levels: the hold and call-waiting tones (425 Hz), and what else is heard

TONE_WINDOW_MS = 40        # 25 Hz FFT bins: a pure tone's energy stays within a few of them
TONE_HOP_MS = 20
TONE_BAND_HZ = 40          # the tone's band: frequency +- this
TONE_SHARE = 0.9           # of a frame's energy within the band: a pure tone, not speech
TONE_MIN_DBFS = -45.0


def tone_frames(path, frequency_hz=425.0, share=TONE_SHARE):
    """Per 20 ms hop: (start_ms, is_tone) where a 40 ms window holds a pure tone at frequency_hz
    (at least `share` of its energy; lower it for a tone mixed over speech)."""
    x = read_audio(path, RATE).astype(np.float64)
    size, hop = RATE * TONE_WINDOW_MS // 1000, RATE * TONE_HOP_MS // 1000
    window = np.hanning(size)
    freqs = np.fft.rfftfreq(size, 1.0 / RATE)
    band = np.abs(freqs - frequency_hz) <= TONE_BAND_HZ
    frames = []
    for start in range(0, max(0, len(x) - size) + 1, hop):
        chunk = x[start:start + size]
        power = np.abs(np.fft.rfft(chunk * window)) ** 2
        total = power.sum()
        rms = float(np.sqrt(np.mean(chunk ** 2)))
        loud = rms > 10 ** (TONE_MIN_DBFS / 20)
        frames.append((start * 1000 // RATE, bool(loud and total > 0 and power[band].sum() / total >= share)))
    return frames


def tone_bursts(path, frequency_hz=425.0, min_ms=60, share=TONE_SHARE, bridge_ms=0):
    """[[start_ms, end_ms], ...]: runs of tone frames at least min_ms long; runs at most bridge_ms
    apart are one burst (a tone over speech can lose a frame or two to a loud syllable)."""
    runs, start, last = [], None, None
    for at, is_tone in tone_frames(path, frequency_hz, share) + [(None, False)]:
        if is_tone and start is None:
            start = at
        if is_tone:
            last = at + TONE_WINDOW_MS
        elif start is not None:
            runs.append([start, last])
            start = None
    merged = []
    for run in runs:
        if merged and run[0] - merged[-1][1] <= bridge_ms:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return [b for b in merged if b[1] - b[0] >= min_ms]


def levels(path, frame_ms=20):
    """The RMS level of each frame_ms frame, in dBFS (-120 for digital silence), as a numpy array."""
    x = read_audio(path, RATE).astype(np.float64)
    size = RATE * frame_ms // 1000
    count = len(x) // size
    rms = np.sqrt(np.mean(x[:count * size].reshape(count, size) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-6))


# --------------------------------------------------------------------------
# score

def _frames(x, hop=HOP):
    """Hann-windowed 32 ms frames at a 16 ms hop (or `hop` samples) as rows, zero-padded to whole frames."""
    count = max(1, 1 + int(np.ceil(max(0, len(x) - FRAME) / hop)))
    padded = np.zeros((count - 1) * hop + FRAME, dtype=np.float64)
    padded[:len(x)] = x[:len(padded)]
    index = np.arange(FRAME)[None, :] + hop * np.arange(count)[:, None]
    return padded[index] * np.hanning(FRAME + 2)[1:-1]


def _band_matrix():
    """(BANDS x FFT bins) 0/1 matrix of the one-third-octave bands."""
    freqs = np.fft.rfftfreq(FRAME, 1.0 / ANALYSIS_RATE)
    centres = FIRST_CENTRE_HZ * 2.0 ** (np.arange(BANDS) / 3.0)
    low, high = centres * 2.0 ** (-1 / 6), centres * 2.0 ** (1 / 6)
    return ((freqs[None, :] >= low[:, None]) & (freqs[None, :] < high[:, None])).astype(np.float64)


def _envelopes(frames):
    """Band envelopes (BANDS x frames): the RMS magnitude of each band in each frame."""
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return np.sqrt(_band_matrix() @ power.T)


def _estimate_delay(sent, received):
    """Lag (samples) maximising the waveform cross-correlation: received[t] ~ sent[t - lag]."""
    correlation = sps.correlate(received, sent, mode="full", method="fft")
    lags = sps.correlation_lags(len(received), len(sent), mode="full")
    return int(lags[int(np.argmax(correlation))])


def _segment_scores(x, y, gain):
    """STOI's intermediate measure for every 384 ms segment: x, y are (BANDS x frames) envelopes.

    Returns one value per segment start: the mean over bands of the correlation between the
    sent envelope and the received one (scaled to the sent energy, clipped at +15 dB); a band
    ABSENT_BAND_DB below the sent one (times `gain`, the overall received/sent level) scores 0."""
    count = x.shape[1] - SEGMENT_FRAMES + 1
    if count < 1:
        return np.zeros(0)
    index = np.arange(SEGMENT_FRAMES)[None, :] + np.arange(count)[:, None]
    xs, ys = x[:, index], y[:, index]                       # bands x segments x frames
    eps = 1e-12
    x_norm, y_norm = np.linalg.norm(xs, axis=2), np.linalg.norm(ys, axis=2)
    present = y_norm > gain * x_norm * 10 ** (-ABSENT_BAND_DB / 20)
    alpha = (x_norm / (y_norm + eps))[:, :, None]
    ys = np.minimum(ys * alpha, xs * (1 + 10 ** (CLIP_DB / 20)))
    xs = xs - xs.mean(axis=2, keepdims=True)
    ys = ys - ys.mean(axis=2, keepdims=True)
    corr = (xs * ys).sum(axis=2) / (np.linalg.norm(xs, axis=2) * np.linalg.norm(ys, axis=2) + eps)
    return np.where(present, corr, 0.0).mean(axis=0)


def score(sent_path, received_path):
    """Aligns RECEIVED to SENT and scores it; see the module docstring."""
    sent = read_audio(sent_path, ANALYSIS_RATE).astype(np.float64)
    received = read_audio(received_path, ANALYSIS_RATE).astype(np.float64)
    sent_seconds, received_seconds = len(sent) / ANALYSIS_RATE, len(received) / ANALYSIS_RATE
    if len(sent) < FRAME * SEGMENT_FRAMES // 2 or np.sqrt(np.mean(sent ** 2)) < SILENCE_RMS:
        raise VoiceToolError("%s: the sent file is silent or shorter than one 384 ms segment" % sent_path)
    if len(received) == 0 or np.sqrt(np.mean(received ** 2)) < SILENCE_RMS:
        raise VoiceToolError("%s: the received file is silent (RMS below -70 dBFS)" % received_path)
    if received_seconds < sent_seconds / 2:
        raise VoiceToolError("%s: the received file (%.2f s) is shorter than half of the sent one (%.2f s)" % (
            received_path, received_seconds, sent_seconds))

    lag = _estimate_delay(sent, received)
    # The received samples under the sent ones after alignment, plus room for the segment shifts;
    # what the recording does not cover counts as silence (missing speech scores as lost).
    margin = SEGMENT_SHIFT_HOPS * HOP
    aligned = np.zeros(len(sent) + 2 * margin)
    start = lag - margin
    lo, hi = max(0, start), min(len(received), start + len(aligned))
    if hi > lo:
        aligned[lo - start:hi - start] = received[lo:hi]

    x = _envelopes(_frames(sent))
    # Received envelopes every SHIFT_STEP samples: sent frame m, shifted by j steps, is column
    # m * steps + margin / SHIFT_STEP + j.
    y_all = _envelopes(_frames(aligned, SHIFT_STEP))
    steps = HOP // SHIFT_STEP
    energy = 20 * np.log10(np.linalg.norm(_frames(sent), axis=1) + 1e-12)
    speaking = np.flatnonzero(energy > energy.max() - DYNAMIC_RANGE_DB)
    x = x[:, speaking]
    core = aligned[margin:margin + len(sent)]
    gain = max(np.sqrt(np.mean(core ** 2)), SILENCE_RMS) / np.sqrt(np.mean(sent ** 2))
    shifts = np.arange(-margin // SHIFT_STEP, margin // SHIFT_STEP + 1)

    def received_at(frame_shifts):
        """The received envelopes under the sent speaking frames, each frame shifted by its own steps."""
        columns = speaking * steps + margin // SHIFT_STEP + frame_shifts
        y = np.zeros_like(x)
        inside = columns < y_all.shape[1]
        y[:, inside] = y_all[:, columns[inside]]
        return y

    per_shift = np.stack([_segment_scores(x, received_at(np.full(len(speaking), shift)), gain) for shift in shifts])
    if per_shift.shape[1] == 0:
        raise VoiceToolError("%s: less than 384 ms of speech to score" % sent_path)
    # Where the delay changes inside a segment, no one shift fits both halves: each frame then takes
    # the shift of the segment centred on it, and a segment scores the better of the two alignments.
    best = shifts[np.argmax(per_shift, axis=0)]
    centred = np.clip(np.arange(len(speaking)) - SEGMENT_FRAMES // 2, 0, len(best) - 1)
    followed = _segment_scores(x, received_at(best[centred]), gain)
    value = float(np.clip(np.maximum(per_shift.max(axis=0), followed).mean(), 0.0, 1.0))
    return {"score": round(value, 4), "delay_ms": round(1000.0 * lag / ANALYSIS_RATE, 2),
            "sent_seconds": round(sent_seconds, 3), "received_seconds": round(received_seconds, 3)}


# --------------------------------------------------------------------------
# CLI

def main(argv=None):
    parser = argparse.ArgumentParser(prog="voicetool.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("speech", help="deterministic espeak-ng speech, 48 kHz mono WAV")
    p.add_argument("out")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--text", default=None, help="another text (the default is fixed)")
    p = commands.add_parser("tones", help="DTMF tones, 48 kHz mono WAV")
    p.add_argument("out")
    p.add_argument("digits")
    p.add_argument("--on-ms", type=int, default=100)
    p.add_argument("--off-ms", type=int, default=60)
    p = commands.add_parser("dtmf-decode", help="DTMF digits in an audio file (multimon-ng)")
    p.add_argument("file")
    p = commands.add_parser("tone-bursts", help="where FILE holds a pure tone (JSON [[start_ms, end_ms], ...])")
    p.add_argument("file")
    p.add_argument("--frequency", type=float, default=425.0)
    p = commands.add_parser("score", help="quality score and delay of RECEIVED against SENT (JSON)")
    p.add_argument("sent")
    p.add_argument("received")
    args = parser.parse_args(argv)
    try:
        if args.command == "speech":
            speech(args.out, args.seconds, args.text)
        elif args.command == "tones":
            tones(args.out, args.digits, args.on_ms, args.off_ms)
        elif args.command == "dtmf-decode":
            print(dtmf_decode(args.file))
        elif args.command == "tone-bursts":
            print(json.dumps(tone_bursts(args.file, args.frequency)))
        else:
            print(json.dumps(score(args.sent, args.received)))
    except VoiceToolError as error:
        print("voicetool: %s" % error, file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as error:
        print("voicetool: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
