#!/usr/bin/python3
"""Voicemail as sound (issue 13): `tsunagu voicemail record ID --from FILE` stores Ogg Opus on
the node, `tsunagu voicemail play N --to FILE` brings it back as sound; what comes back is scored
against what was recorded by tests/voice/voicetool.py. A message that is not sound, and a file
to record that is not sound, are refused with a clear message.

    TSUNAGU_BUILD=build /usr/bin/python3 tests/integration/voicemail_audio_test.py voicemail_recorded_and_played
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness as h  # noqa: E402
from harness import Checks  # noqa: E402
import voice_test as vt  # noqa: E402
import voicemail_test as vm  # noqa: E402

PLAYED_SCORE = 0.95  # one Opus encoding at the recorder's bitrate (tests/voice/README.md: 0.98 at 32 kbit/s)


def voicemail_recorded_and_played():
    vt.require_voice()
    d = vm.setup()
    checks = Checks()
    speech = vt.make_speech(d, "memo.wav", 5.0)
    r = d.cli(["voicemail", "record", vm.BOB, "--from", speech], vm.ALICE, vm.PASSWORD)
    checks.check(r.code == 0 and "recorded 5 s as Ogg Opus" in r.err and "stored" in r.out,
                 "alice records 5 s for bob from a file (%r)" % r)
    entries = vm.listing(d)
    checks.check(len(entries) == 1, "bob has one message: %r" % entries)
    message = entries[0]["id"] if entries else 0
    size = entries[0]["size"] if entries else 0
    checks.check(0 < size < 5 * 6000, "it is stored compressed: %d bytes for 5 s (WAV would be 480,000)" % size)

    box = vm.mailbox(d, "box")
    r = d.cli(["voicemail", "fetch", "--keep", "--mailbox", box, str(message)], vm.BOB, vm.PASSWORD)
    saved = [os.path.join(box, name) for name in os.listdir(box)] if r.code == 0 else []
    head = open(saved[0], "rb").read(64) if saved else b""
    checks.check(head.startswith(b"OggS") and b"OpusHead" in head, "the stored message is Ogg Opus: %r" % head[:40])

    played = d.path("played.wav")
    r = d.cli(["voicemail", "play", str(message), "--to", played], vm.BOB, vm.PASSWORD)
    checks.check(r.code == 0 and os.path.exists(played), "bob plays message %d into a file (%r)" % (message, r))
    if os.path.exists(played):
        vt.check_score(checks, speech, played, "the message as bob hears it", PLAYED_SCORE)
    checks.check(len(vm.listing(d)) == 1, "playing keeps the message on the node")

    not_sound = d.path("notes.txt")
    with open(not_sound, "w") as f:
        f.write("these are not sounds\n" * 50)
    r = d.cli(["voicemail", "record", vm.BOB, "--from", not_sound], vm.ALICE, vm.PASSWORD)
    checks.check(r.code == 2 and "voicemail record:" in r.err and len(vm.listing(d)) == 1,
                 "a file that is not sound is refused before anything is left (%r)" % r)
    r = d.cli(["voicemail", "send", vm.BOB, not_sound], vm.ALICE, vm.PASSWORD)
    entries = vm.listing(d)
    other = max(e["id"] for e in entries) if entries else 0
    r = d.cli(["voicemail", "play", str(other), "--to", d.path("nope.wav")], vm.BOB, vm.PASSWORD)
    checks.check(r.code == 2 and "not a recording" in r.err and not os.path.exists(d.path("nope.wav")),
                 "a message that is not sound says so and writes nothing (%r)" % r)
    r = d.cli(["voicemail", "play", "9999", "--to", d.path("nope.wav")], vm.BOB, vm.PASSWORD)
    checks.check(r.code != 0 and r.err.strip() != "", "an unknown message number is an error (%r)" % r)
    checks.finish()


SCENARIOS = {"voicemail_recorded_and_played": voicemail_recorded_and_played}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
