#!/usr/bin/env python3
"""Voicemail scenarios (docs/voicemail.md): real tsunagu-rendezvous, `tsunagu voicemail`,
`tsunagu login --mailbox`, `tsunagu call --voicemail`, and a raw TLS client for the
terminal that goes away before it acknowledges.

Run one scenario:  TSUNAGU_BUILD=build python3 voicemail_test.py SCENARIO
Each scenario is its own meson test (tests/integration/meson.build); exit 77 = skipped.
"""

import hashlib
import os
import signal
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import Deployment, TestFailure, log, wait_until  # noqa: E402

ALICE, BOB, CAROL = "alice", "bob", "carol"
PASSWORD = "voicemail-pw-1"
EXIT_USAGE, EXIT_UNKNOWN, EXIT_OFFLINE, EXIT_REFUSED = 2, 3, 4, 7

METHOD_VOICEMAIL_LIST = 0x833
METHOD_VOICEMAIL_FETCH = 0x834
ATTR_VOICEMAIL_OFFSET = 0xC042
ATTR_VOICEMAIL_DATA = 0xC043
ATTR_VOICEMAIL_ID = 0xC044
ATTR_VOICEMAIL_ENTRY = 0xC045
ATTR_VOICEMAIL_SIZE = 0xC041
PRESENCE_VOICEMAIL_WAITING = 4


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    log("  ok:", message)


def setup(**settings):
    d = Deployment(**settings)
    d.start_node()
    for user in (ALICE, BOB, CAROL):
        d.add_user(user, PASSWORD)
    r = d.admin(["user", "-d", d.dir, "profile", BOB, "voicemail=yes"])
    expect(r.code == 0, "bob takes voicemail (%r)" % r)
    return d


def message_file(d, name, size):
    path = d.path(name)
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return path, hashlib.sha256(data).hexdigest()


def sha_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def send(d, callee, path, sender=ALICE):
    return d.cli(["voicemail", "send", callee, path], sender, PASSWORD)


def listing(d, user=BOB):
    r = d.cli(["voicemail", "list", "--json"], user, PASSWORD)
    if r.code != 0:
        raise TestFailure("voicemail list: %r" % r)
    return r.json()


def mailbox(d, name):
    path = d.path(name)
    os.makedirs(path, exist_ok=True)
    return path


def files_in(path):
    return sorted(f for f in os.listdir(path) if not f.endswith(".part"))


def voicemail_deliver_on_login():
    d = setup()
    path, digest = message_file(d, "hello.opus", 100_000)
    r = send(d, BOB, path)
    expect(r.code == 0 and "stored (100000 bytes" in r.out, "alice leaves bob a 100 kB message: %r" % r)
    flags = d.whereis(CAROL, PASSWORD, BOB)
    expect(flags.code == EXIT_OFFLINE, "bob is offline meanwhile")
    entries = listing(d)
    expect(len(entries) == 1 and entries[0]["from"] == ALICE and entries[0]["size"] == 100_000,
           "bob's mailbox lists it: %r" % entries)
    box = mailbox(d, "bob-mailbox")
    env = d.terminal_env(BOB, PASSWORD)
    out_path = d.path("bob-login.out")
    with open(out_path, "w") as out, open(d.path("bob-login.err"), "w") as err:
        proc = h.spawn([h.TERMINAL, "login", "--mailbox", box], env=env, stdout=out, stderr=err)
    terminal = h.Terminal(proc, BOB, out_path, d.path("bob-login.err"))
    d.wait_logged_in(terminal)
    wait_until(lambda: "voicemail saved" in terminal.out(), 20 * h.SLOW, 0.05, "delivery on login")
    saved = files_in(box)
    expect(len(saved) == 1 and saved[0].endswith("-alice-%d.msg" % entries[0]["id"]),
           "login saves the message into the mailbox folder: %r" % saved)
    expect(sha_of(os.path.join(box, saved[0])) == digest, "the saved bytes are the caller's, intact")
    wait_until(lambda: listing(d) == [], 10 * h.SLOW, 0.2, "the acknowledged message to be deleted on the node")
    log("  ok: the node deleted it after the acknowledgement")
    # The node's audit lines for the message: stored, delivered (once, not per chunk), deleted.
    message_id = entries[0]["id"]
    audit = [l.split(" info: ", 1)[1] for l in d.node.log_text().splitlines() if " info: event=voicemail " in l]
    for line in audit:
        log("   ", line)
    expect(audit == ["event=voicemail action=stored result=ok owner=bob id=%d from=alice bytes=100000" % message_id,
                     "event=voicemail action=delivered owner=bob id=%d from=alice to=user" % message_id,
                     "event=voicemail action=deleted result=ok owner=bob id=%d" % message_id],
           "the node logged the message stored, delivered once and deleted")
    terminal.kill()
    # A second login delivers nothing more.
    with open(out_path, "w") as out, open(d.path("bob-login2.err"), "w") as err:
        proc = h.spawn([h.TERMINAL, "login", "--mailbox", box], env=env, stdout=out, stderr=err)
    terminal = h.Terminal(proc, BOB, out_path, d.path("bob-login2.err"))
    d.wait_logged_in(terminal)
    r = d.cli(["voicemail", "fetch", "--mailbox", box], BOB, PASSWORD)
    expect(r.code == 0 and "no messages" in r.out, "nothing is delivered a second time: %r" % r)
    expect(files_in(box) == saved, "the mailbox folder still holds exactly one file")
    terminal.kill()


def voicemail_survives_restart_and_kill9():
    d = setup()
    first, first_digest = message_file(d, "one.wav", 30_000)
    r = send(d, BOB, first)
    expect(r.code == 0, "first message stored: %r" % r)
    d.node.stop()
    d.start_node()
    expect([e["size"] for e in listing(d)] == [30_000], "the message survives a clean restart")
    second, second_digest = message_file(d, "two.wav", 50_000)
    r = send(d, BOB, second)
    expect(r.code == 0, "second message acknowledged: %r" % r)
    d.node.proc.send_signal(signal.SIGKILL)  # right after the acknowledgement
    d.node.proc.wait(timeout=10)
    d.start_node()
    entries = listing(d)
    expect([e["size"] for e in entries] == [30_000, 50_000], "both survive kill -9 right after the "
           "acknowledgement: %r" % entries)
    box = mailbox(d, "box")
    r = d.cli(["voicemail", "fetch", "--mailbox", box], BOB, PASSWORD)
    expect(r.code == 0 and r.out.count("saved ") == 2, "fetch saves both: %r" % r)
    digests = sorted(sha_of(os.path.join(box, f)) for f in files_in(box))
    expect(digests == sorted([first_digest, second_digest]), "both arrive intact")
    expect(listing(d) == [], "and are deleted after the acknowledgement")


def voicemail_limits():
    d = setup(voicemail__max_message_kb=64, voicemail__mailbox_quota_kb=100)
    big, _ = message_file(d, "big", 64 * 1024 + 1)
    r = send(d, BOB, big)
    expect(r.code == EXIT_REFUSED and "Too Large" in r.err and "at most 64 KiB" in r.err,
           "a message above voicemail.max_message_kb is refused clearly: %r" % r)
    ok, _ = message_file(d, "ok", 60 * 1024)
    expect(send(d, BOB, ok).code == 0, "a 60 KiB message fits")
    r = send(d, BOB, ok, sender=CAROL)
    expect(r.code == EXIT_REFUSED and "Over Quota" in r.err and "mailbox is full" in r.err,
           "a message that would pass the mailbox quota is refused clearly: %r" % r)
    expect(len(listing(d)) == 1, "the refused messages were not stored")
    r = send(d, CAROL, ok)
    expect(r.code == EXIT_REFUSED and "does not take voicemail" in r.err,
           "a user without the voicemail service refuses messages: %r" % r)
    r = send(d, "nobody", ok)
    expect(r.code == EXIT_UNKNOWN, "voicemail for an unknown user: %r" % r)
    # (Voicemail for LAN extensions of an enrolled domain: lan-agent/lan_call_test.sh.)
    r = send(d, "4106@acme", ok)
    expect(r.code == EXIT_UNKNOWN, "voicemail for an extension of a domain no agent serves is unknown: %r" % r)
    empty = d.path("empty")
    open(empty, "wb").close()
    r = send(d, BOB, empty)
    expect(r.code == EXIT_USAGE and "empty" in r.err, "an empty file is refused locally: %r" % r)
    r = d.cli(["voicemail", "delete", "999"], BOB, PASSWORD)
    expect(r.code == EXIT_REFUSED and "no message 999" in r.err, "deleting a missing message says so: %r" % r)


def raw_fetch_without_ack(d, user):
    """Lists and fetches every message over a raw link, never acknowledges, and drops the link."""
    raw = h.RawTls(d.node)
    try:
        login = raw.login(user, PASSWORD, role=1)
        if login.cls != h.SUCCESS:
            raise TestFailure("raw login: %r" % (login.error(),))
        listed = raw.request(METHOD_VOICEMAIL_LIST)
        ids = [struct.unpack("!Q", v[:8])[0] for v in listed.get_all(ATTR_VOICEMAIL_ENTRY)]
        for vid in ids:
            got = raw.request(METHOD_VOICEMAIL_FETCH, [(ATTR_VOICEMAIL_ID, struct.pack("!Q", vid)),
                                                       (ATTR_VOICEMAIL_OFFSET, struct.pack("!Q", 0))])
            if got.cls != h.SUCCESS or not got.get(ATTR_VOICEMAIL_DATA):
                raise TestFailure("raw fetch %d: %r" % (vid, got.error()))
        return ids
    finally:
        raw.close()


def voicemail_redelivered_until_acknowledged():
    d = setup()
    path, digest = message_file(d, "msg", 20_000)
    expect(send(d, BOB, path).code == 0, "a message for bob")
    r = d.whereis(CAROL, PASSWORD, BOB)
    ids = raw_fetch_without_ack(d, BOB)
    expect(len(ids) == 1, "a terminal fetches it and disconnects before acknowledging")
    ids_again = raw_fetch_without_ack(d, BOB)
    expect(ids_again == ids, "the node offers the same message again")
    box = mailbox(d, "box")
    r = d.cli(["voicemail", "fetch", "--mailbox", box], BOB, PASSWORD)
    expect(r.code == 0 and "deleted on the node" in r.out, "the next fetch saves and acknowledges it: %r" % r)
    expect([sha_of(os.path.join(box, f)) for f in files_in(box)] == [digest], "intact")
    expect(raw_fetch_without_ack(d, BOB) == [], "after the acknowledgement it is never offered again")
    r = d.cli(["voicemail", "fetch", "--mailbox", box], BOB, PASSWORD)
    expect(r.code == 0 and "no messages" in r.out and len(files_in(box)) == 1, "no second delivery: %r" % r)


def voicemail_presence_flag():
    d = setup()
    login = d.start_login(BOB, PASSWORD)
    raw = h.RawTls(d.node)
    try:
        raw.login(CAROL, PASSWORD, role=1)
        before = raw.request(h.METHOD_LOOKUP, [(h.ATTR_USER_ID, h.text(BOB))]).u32(h.ATTR_PRESENCE)
        path, _ = message_file(d, "m", 1000)
        expect(send(d, BOB, path).code == 0, "a message for bob while he is online")
        after = raw.request(h.METHOD_LOOKUP, [(h.ATTR_USER_ID, h.text(BOB))]).u32(h.ATTR_PRESENCE)
    finally:
        raw.close()
    expect(not before & PRESENCE_VOICEMAIL_WAITING and after & PRESENCE_VOICEMAIL_WAITING,
           "the voicemail-waiting flag is set in bob's presence (%r -> %r)" % (before, after))
    login.kill()


def voicemail_call_missed():
    d = setup()
    path, digest = message_file(d, "after-the-tone", 5000)
    r = d.cli(["call", BOB, "--voicemail", path, "--ice-address", "127.0.0.1"], ALICE, PASSWORD, timeout=60 * h.SLOW)
    expect(r.code == 0 and "leaving voicemail for bob" in r.out and "stored (5000 bytes" in r.out,
           "a call to an offline user leaves the file as voicemail: %r" % r)
    entries = listing(d)
    expect(len(entries) == 1 and entries[0]["from"] == ALICE, "bob's mailbox holds it: %r" % entries)


def voicemail_call_interactive():
    """On a terminal, a missed call asks for a file to leave (driven through a pseudo-terminal)."""
    import pty
    import select
    d = setup()
    path, _ = message_file(d, "spoken", 3000)
    master, slave = pty.openpty()
    env = d.terminal_env(ALICE, PASSWORD)
    proc = h.subprocess.Popen([h.TERMINAL, "call", BOB, "--ice-address", "127.0.0.1"], env=env, stdin=slave,
                              stdout=slave, stderr=slave)
    h._processes.append(proc)  # killed by PID however the test ends
    os.close(slave)
    seen = b""
    answered = False
    deadline = h.time.monotonic() + 30 * h.SLOW
    try:
        while h.time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"a file to send" in seen:
                os.write(master, (path + "\n").encode())
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    expect(answered and code == 0 and "stored (3000 bytes" in text,
           "a missed call on a terminal prompts, and the file given is left (exit %r): %r" % (code, text))
    expect(len(listing(d)) == 1, "bob's mailbox holds it")


SCENARIOS = {
    "voicemail_call_interactive": voicemail_call_interactive,
    "voicemail_deliver_on_login": voicemail_deliver_on_login,
    "voicemail_survives_restart_and_kill9": voicemail_survives_restart_and_kill9,
    "voicemail_limits": voicemail_limits,
    "voicemail_redelivered_until_acknowledged": voicemail_redelivered_until_acknowledged,
    "voicemail_presence_flag": voicemail_presence_flag,
    "voicemail_call_missed": voicemail_call_missed,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
