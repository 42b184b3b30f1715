#!/usr/bin/python3
"""One Opus call between two baresip 1.0.0 instances, measured: the voice benchmark's real peer.

    /usr/bin/python3 bench/voice/baresip_call.py --speech SPEECH.wav --loss 5 [--json OUT.json]

Both instances run inside a network namespace this script creates (root needed), on
its loopback only: no registrar, no STUN/TURN/ICE, the caller dials
sip:b@127.0.0.1:5072 directly and the callee answers automatically. With --loss P an
nftables rule in the namespace drops each media (UDP) packet with probability P %, in
each direction (RTP and RTCP; SIP is kept lossless: only the media is measured). `tc netem` would do
the same, but this machine's kernel has neither sch_netem nor the tc classifiers;
nftables' `numgen random` is in every Debian kernel. The host's lo is never
touched; the namespace is deleted on every exit path, and only the PIDs started here
are signalled.

Media: Opus 32 kbit/s, mono 48 kHz, 20 ms ptime, VOIP mode, in-band FEC with 5 %
expected loss (the decoder then recovers a lost packet from the next one's FEC);
baresip's shipped jitter buffer (5-10 packets) and playout buffer (20-160 ms) unless
--jitter-buffer / --audio-buffer say otherwise.

The caller's source is the speech file plus 1 s of silence (module aufile; the call
hangs up itself when the file ends: aufile reports "end of file" and baresip closes
the call; the second lets the last words through the buffers first). The callee
has no audio device: its player and source are one aubridge device, a thread that
pulls what the callee hears at real-time pace (every 20 ms, from the jitter buffer and
the playout buffer, as a sound card would) and sends it back. The sndfile module dumps
every encoder's input, so

  caller's dump-*-enc.wav = the mouth: the speech as it was encoded, on the caller's
                            timeline (first sample = the caller's audio start)
  callee's dump-*-enc.wav = the ear: what the callee played, on the callee's timeline
                            (first sample = the callee's playout start)

Both dumps are written one 20 ms frame at a time as the frame is produced, so the
wall-clock time of each timeline's first sample is measured by watching the files grow
(every ~1 ms): origin = min over observations of (time - samples on disk / 48000) +
one frame. Mouth-to-ear latency = (delay of the speech in the ear recording, from
tests/voice/voicetool.py score) + (ear origin - mouth origin) - (delay of the speech
in the mouth dump, 0). Both pacing threads wake every 4 ms and write a frame on the
first wake-up at or after its due time, so each write lags its due time by 0-4 ms;
the minimum over ~350 frames finds the due time to within the polling interval
(median stated as poll_interval_ms, ~1 ms), and the two timelines share the same bias:
the error of the difference is about +-2 ms.

CPU: utime+stime (/proc/PID/stat) of each baresip process between "Call established"
and the call's end as seen in its log, divided by the call's seconds; the whole
process's CPU (start-up included) is reported too.

Prints one JSON object. Debian's /usr/bin/python3 (the scorer needs numpy/scipy).
"""

import argparse
import glob
import json
import re
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOICETOOL = os.path.join(ROOT, "tests", "voice", "voicetool.py")
BARESIP = "/usr/bin/baresip"
MODULES = "/usr/lib/baresip/modules"
HOST = "127.0.0.1"
CALLER_SIP, CALLEE_SIP = 5070, 5072
RATE = 48000
FRAME_S = 0.020
WAV_HEADER = 44  # libsndfile's header of a 16-bit PCM WAV file
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(message, file=sys.stderr, flush=True)


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread, exited ones included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wav_seconds(path):
    with wave.open(path) as w:
        return w.getnframes() / w.getframerate()


# ---------------------------------------------------------------- network namespace


class Namespace:
    """A network namespace with only its own loopback, optionally lossy for UDP."""

    def __init__(self, loss_pct, lossless_udp_ports=()):
        self.name = f"tsunagu-voice-{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
        self.loss_pct = loss_pct
        self.lossless_udp_ports = lossless_udp_ports
        self.created = False

    def run(self, argv):
        subprocess.run(argv, check=True, timeout=10, stdout=subprocess.DEVNULL)

    def __enter__(self):
        if os.geteuid() != 0:
            raise RuntimeError("root is needed: each call runs in a network namespace of its own (ip netns add)")
        self.run(["ip", "netns", "add", self.name])
        self.created = True
        try:
            self.run(self.prefix() + ["ip", "link", "set", "lo", "up"])
            if self.loss_pct > 0:
                self.add_loss()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def add_loss(self):
        # nftables, not tc netem: netem and the tc classifiers are kernel modules some
        # kernels (this benchmark's VM) do not have, nftables' numgen is in every Debian
        # kernel. Each UDP packet (except to the listed ports: SIP) is dropped with
        # probability loss_pct/100, independently, on delivery (the input hook: dropping
        # on output would make the sender's sendto() fail, which a real network does not).
        per_mille = round(self.loss_pct * 10)
        keep = ""
        if self.lossless_udp_ports:
            keep = "udp dport != { " + ", ".join(str(p) for p in self.lossless_udp_ports) + " } "
        rules = ("table inet tsunagu_voice_loss {\n"
                 "  chain input {\n"
                 "    type filter hook input priority 0; policy accept;\n"
                 f"    meta l4proto udp {keep}numgen random mod 1000 < {per_mille} counter drop\n"
                 "  }\n"
                 "}\n")
        subprocess.run(self.prefix() + ["nft", "-f", "-"], input=rules, text=True, check=True, timeout=10)

    def dropped_packets(self):
        """UDP packets the loss rule dropped so far, or None without loss."""
        if self.loss_pct <= 0:
            return None
        out = subprocess.run(self.prefix() + ["nft", "list", "table", "inet", "tsunagu_voice_loss"],
                             capture_output=True, text=True, timeout=10).stdout
        found = re.search(r"counter packets (\d+)", out)
        return int(found.group(1)) if found else None

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def __exit__(self, *_):
        if self.created:
            subprocess.run(["ip", "netns", "delete", self.name], timeout=10)
            self.created = False


# ---------------------------------------------------------------- baresip


def write_config(directory, name, sip_port, source, player, jitter_buffer, audio_buffer):
    dump = os.path.join(directory, "dump")
    os.makedirs(dump)
    lines = [
        "poll_method epoll",
        f"sip_listen {HOST}:{sip_port}",
        f"net_interface {HOST}",
        f"audio_source {source}",
        f"audio_player {player}",
        "audio_alert aubridge,none",
        f"ausrc_srate {RATE}", f"auplay_srate {RATE}", "ausrc_channels 1", "auplay_channels 1",
        f"audio_buffer {audio_buffer}",
        "rtp_ports 10000-10099",
        f"jitter_buffer_delay {jitter_buffer}",
        "rtp_stats yes",
        f"module_path {MODULES}",
        "module opus.so",
        "module aufile.so",
        "module aubridge.so",
        "module sndfile.so",
        "module_app account.so",
        "module_app menu.so",
        f"snd_path {dump}",
        "opus_bitrate 32000",
        "opus_application voip",
        "opus_inbandfec yes",
        "opus_packet_loss 5",
        f"opus_samplerate {RATE}",
        "opus_stereo no",
        "opus_sprop_stereo no",
        "",
    ]
    with open(os.path.join(directory, "config"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(directory, "accounts"), "w") as f:
        # regint=0: no registrar; the callee answers every call itself.
        f.write(f"<sip:{name}@{HOST}>;regint=0;answermode=auto\n")
    open(os.path.join(directory, "contacts"), "w").close()
    return dump


class Baresip:
    def __init__(self, namespace, directory, log_path, extra, started):
        argv = namespace.prefix() + [BARESIP, "-4", "-f", directory] + extra
        log("+ " + " ".join(argv))
        self.log_path = log_path
        out = open(log_path, "wb")
        # `ip netns exec` execs baresip in the same process: the PID is baresip's.
        self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        started.append(self.process)

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def stop(processes):
    for process in processes:
        if process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


class GrowthWatch:
    """Finds the wall-clock time of a growing recording's first sample."""

    def __init__(self, pattern):
        self.pattern = pattern
        self.path = None
        self.offsets = []  # time - seconds on disk, per observation of new data
        self.last_size = -1

    def poll(self, now):
        if self.path is None:
            found = glob.glob(self.pattern)
            if not found:
                return
            self.path = found[0]
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return
        if size > WAV_HEADER and size != self.last_size:
            self.last_size = size
            self.offsets.append(now - (size - WAV_HEADER) / 2 / RATE)

    def origin(self):
        """Frame k is written at origin + k*20 ms (+ lag) and then holds (k+1) frames."""
        if len(self.offsets) < 10:
            raise RuntimeError(f"{self.pattern}: too few frames seen to find its timeline")
        return min(self.offsets) + FRAME_S


def score(voicetool, sent, received):
    result = subprocess.run(["/usr/bin/python3", voicetool, "score", sent, received], capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"voicetool score {received}: {result.stderr.strip() or result.stdout.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def segment_delays(voicetool, sent, received, workdir, segment_s=1.5, slack_s=1.0):
    """Delay of each segment_s piece of SENT in RECEIVED (None where it cannot be found).

    A receiver whose playout delay changes during the call (it grows when a playout
    buffer runs dry and refills) shows it here; the whole-file score aligns once.
    """
    delays = []
    total = wav_seconds(sent)
    start = 0.0
    while start + segment_s <= total + 1e-6:
        piece, window = os.path.join(workdir, "segment-sent.wav"), os.path.join(workdir, "segment-received.wav")
        subprocess.run(["sox", sent, piece, "trim", f"{start:.3f}", f"{segment_s:.3f}"], check=True, timeout=60)
        subprocess.run(["sox", received, window, "trim", f"{start:.3f}", f"{segment_s + slack_s:.3f}"], check=True,
                       timeout=60)
        try:
            delays.append(score(voicetool, piece, window)["delay_ms"])
        except RuntimeError:
            delays.append(None)  # a silent piece
        start += segment_s
    return delays


def run_call(speech, loss_pct, workdir, voicetool=VOICETOOL, jitter_buffer="5-10", audio_buffer="20-160",
             timeout=None, tail_seconds=1.0):
    """Places one call; returns the measurements (a dict). Raises RuntimeError on failure."""
    if not os.access(BARESIP, os.X_OK):
        raise RuntimeError(f"{BARESIP} missing: apt-get install baresip")
    if not os.path.isfile(voicetool):
        raise RuntimeError(f"{voicetool} missing (the voice test tools)")
    speech_s = wav_seconds(speech)
    # The speech plus silence: the call ends when the file does, and the ear must still
    # hear the last words through the jitter and playout buffers.
    played = os.path.join(workdir, "played.wav")
    subprocess.run(["sox", speech, "-r", str(RATE), "-c", "1", "-b", "16", played, "pad", "0", str(tail_seconds)],
                   check=True, timeout=60)
    timeout = timeout or speech_s + tail_seconds + 30
    caller_dir, callee_dir = os.path.join(workdir, "caller"), os.path.join(workdir, "callee")
    os.makedirs(caller_dir)
    os.makedirs(callee_dir)
    caller_dump = write_config(caller_dir, "a", CALLER_SIP, f"aufile,{played}", "aubridge,caller-unused",
                               jitter_buffer, audio_buffer)
    callee_dump = write_config(callee_dir, "b", CALLEE_SIP, "aubridge,ear", "aubridge,ear", jitter_buffer,
                               audio_buffer)
    started = []
    with Namespace(loss_pct, lossless_udp_ports=(CALLER_SIP, CALLEE_SIP)) as ns:
        try:
            callee = Baresip(ns, callee_dir, os.path.join(workdir, "callee.log"), ["-t", str(int(timeout) + 5)],
                             started)
            deadline = time.monotonic() + 10
            while "baresip is ready" not in callee.text():
                if callee.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"callee baresip did not start; see {callee.log_path}:\n{callee.text()[-800:]}")
                time.sleep(0.01)
            caller = Baresip(ns, caller_dir, os.path.join(workdir, "caller.log"),
                             ["-e", f"/dial sip:b@{HOST}:{CALLEE_SIP}", "-t", str(int(timeout) + 5)], started)
            mouth = GrowthWatch(os.path.join(caller_dump, "dump-*-enc.wav"))
            ear = GrowthWatch(os.path.join(callee_dump, "dump-*-enc.wav"))
            established = ended = None
            cpu_at_start = {}
            deadline = time.monotonic() + timeout
            next_log_check = 0.0
            poll_gaps, last_poll = [], None
            while ended is None:
                now = time.monotonic()
                if last_poll is not None:
                    poll_gaps.append(now - last_poll)
                last_poll = now
                if now > deadline:
                    raise RuntimeError(f"the call did not end within {timeout:.0f} s; see {workdir}")
                for p in (caller.process, callee.process):
                    if p.poll() is not None:
                        raise RuntimeError(f"baresip exited early ({p.returncode}); see {workdir}")
                mouth.poll(now)
                ear.poll(now)
                if now >= next_log_check:
                    next_log_check = now + 0.005
                    text = caller.text()
                    if established is None and "Call established" in text:
                        established = now
                        cpu_at_start = {"caller": cpu_seconds(caller.process.pid),
                                        "callee": cpu_seconds(callee.process.pid)}
                    if established is not None and "terminated (duration" in text:
                        ended = now
                time.sleep(0.001)
            cpu_at_end = {"caller": cpu_seconds(caller.process.pid), "callee": cpu_seconds(callee.process.pid)}
            # The callee sees the BYE a moment later; then both are idle.
            wait_end = time.monotonic() + 5
            while "terminated (duration" not in callee.text() and time.monotonic() < wait_end:
                time.sleep(0.01)
            cpu_total = {"caller": cpu_seconds(caller.process.pid), "callee": cpu_seconds(callee.process.pid)}
            drops = ns.dropped_packets()
        finally:
            stop(started)
    caller_log, callee_log = caller.text(), callee.text()
    if not mouth.path or not ear.path:
        raise RuntimeError(f"no sndfile dumps; see {workdir}")
    call_s = ended - established
    mouth_origin, ear_origin = mouth.origin(), ear.origin()
    mouth_score = score(voicetool, speech, mouth.path)
    ear_score = score(voicetool, speech, ear.path)
    offset_ms = (ear_origin - mouth_origin) * 1000
    correction = offset_ms - mouth_score["delay_ms"]
    by_segment = [None if d is None else round(d + correction, 1)
                  for d in segment_delays(voicetool, speech, ear.path, workdir)]
    return {
        "peer": "baresip 1.0.0",
        "loss_pct": loss_pct,
        "call_seconds": round(call_s, 3),
        "cpu_per_call_second": {k: round((cpu_at_end[k] - cpu_at_start[k]) / call_s, 5) for k in cpu_at_end},
        "cpu_seconds_whole_process": cpu_total,
        "score": ear_score["score"],
        "delay_in_ear_recording_ms": ear_score["delay_ms"],
        "delay_in_mouth_recording_ms": mouth_score["delay_ms"],
        "ear_minus_mouth_origin_ms": round(offset_ms, 2),
        "mouth_to_ear_ms": round(ear_score["delay_ms"] - mouth_score["delay_ms"] + offset_ms, 1),
        "mouth_to_ear_by_segment_ms": by_segment,
        "poll_interval_ms": round(statistics.median(poll_gaps) * 1000, 2),
        "dropped_packets": drops,
        "jitter_buffer_packets": jitter_buffer,
        "audio_buffer_ms": audio_buffer,
        "caller_rtp": rtp_summary(caller_log),
        "callee_rtp": rtp_summary(callee_log),
        "recordings": {"mouth": mouth.path, "ear": ear.path},
    }


def rtp_summary(text):
    """The 'lost:' and 'packets:' lines of baresip's end-of-call statistics."""
    summary = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] in ("packets:", "lost:"):
            summary[words[0].rstrip(":")] = {"tx": int(words[1]), "rx": int(words[2])}
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speech", required=True, help="48 kHz mono 16-bit WAV (voicetool.py speech)")
    parser.add_argument("--loss", type=float, default=0.0, help="random loss of the media packets, percent (default 0)")
    parser.add_argument("--voicetool", default=VOICETOOL)
    parser.add_argument("--jitter-buffer", default="5-10", help="baresip jitter_buffer_delay, packets (default 5-10)")
    parser.add_argument("--audio-buffer", default="20-160", help="baresip audio_buffer, ms (default 20-160)")
    parser.add_argument("--workdir", help="keep the configs, logs and recordings here (default: a temp dir, removed)")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    workdir = args.workdir or tempfile.mkdtemp(prefix="tsunagu-baresip-")
    os.makedirs(workdir, exist_ok=True)
    try:
        result = run_call(os.path.abspath(args.speech), args.loss, workdir, args.voicetool, args.jitter_buffer,
                          args.audio_buffer)
    except RuntimeError as e:
        sys.exit(f"baresip_call: {e}")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
