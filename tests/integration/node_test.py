#!/usr/bin/env python3
"""Integration scenarios for tsunagu-rendezvous and the tsunagu CLI.

Run one scenario:  TSUNAGU_BUILD=build python3 node_test.py SCENARIO
Each scenario is its own meson test (tests/integration/meson.build).
"""

import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import Checks, Deployment, TestFailure, log, wait_until  # noqa: E402

ALICE, ALICE_PW = "alice", "alice-password-1"
BOB, BOB_PW = "bob", "bob-password-22"
KEEPALIVE = {"presence__keepalive_interval": 1, "presence__keepalive_misses": 2}
GRACE_S = 1 * 2  # keepalive_interval * keepalive_misses above


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    log("  ok:", message)


def addr(ip_port):
    ip, port = ip_port
    return "%s:%d" % (ip, port)


def two_users_online(d):
    """Starts the node, adds alice and bob, logs both in; returns their terminals."""
    d.start_node()
    d.add_user(ALICE, ALICE_PW)
    d.add_user(BOB, BOB_PW)
    return d.start_login(ALICE, ALICE_PW), d.start_login(BOB, BOB_PW)


def lookup_still_works(d, checks, after, bob_terminal=None):
    """alice looks bob up: he must be online at the address his terminal holds."""
    checks.check(d.node.alive(), "node still running after %s" % after)
    result = d.whereis(ALICE, ALICE_PW, BOB)
    ok = result.code == 0
    if ok:
        row = result.json()
        ok = row.get("online") is True
        if ok and bob_terminal is not None:
            ok = row.get("observed") == addr(bob_terminal.observed())
    checks.check(ok, "after %s, alice still finds bob online (%r)" % (after, result))


def offline_poll(d, target, timeout, asker=ALICE, asker_pw=ALICE_PW):
    """Polls `whereis target` until it exits 4; returns (seconds waited, the result)."""
    started = time.monotonic()

    def offline():
        result = d.whereis(asker, asker_pw, target, json_output=False)
        if result.code == 4:
            return result
        if result.code != 0:
            raise TestFailure("whereis %s: unexpected %r" % (target, result))
        return None

    result = wait_until(offline, timeout, 0.1, "%s to be reported offline" % target)
    return time.monotonic() - started, result


# --------------------------------------------------------------------------
# 1. presence and lookup

def presence_lookup():
    d = Deployment()
    ta, tb = two_users_online(d)
    node_port = d.node.tls[1]
    # Issue 11: reported (private) addresses reach only lookups of users who
    # chose addresses=yes; by default they are left out, and the row says so.
    hidden = d.whereis(BOB, BOB_PW, ALICE).json()
    expect(hidden.get("reported") == [] and hidden.get("addresses_hidden") is True,
           "alice's private addresses are hidden by default: %r" % hidden)
    for user in (ALICE, BOB):
        r = d.admin(["user", "-d", d.dir, "profile", user, "addresses=yes"])
        expect(r.code == 0, "%s shows her/his addresses (%r)" % (user, r))
    for me, my_pw, other, terminal in ((BOB, BOB_PW, ALICE, ta), (ALICE, ALICE_PW, BOB, tb)):
        result = d.whereis(me, my_pw, other)
        expect(result.code == 0, "%s finds %s (exit 0): %r" % (me, other, result))
        row = result.json()
        expect(row.get("user") == other and row.get("online") is True and row.get("in_call") is False,
               "%s is reported online and not in a call: %r" % (other, row))
        ports = h.tcp_local_ports(terminal.pid, node_port)
        expect(len(ports) == 1, "%s's terminal holds one link to the node (ports %r)" % (other, ports))
        own = "127.0.0.1:%d" % ports[0]
        expect(row.get("observed") == own,
               "observed address of %s is its terminal's own socket %s (got %r)" % (other, own, row.get("observed")))
        expect(own in row.get("reported", []), "reported addresses of %s include %s: %r" % (other, own, row))
        expect(addr(terminal.observed()) == own, "the login line printed the same observed address %s" % own)
    # The query links used by whereis must not take over the presence.
    result = d.whereis(BOB, BOB_PW, ALICE)
    expect(result.code == 0 and result.json().get("observed") == addr(ta.observed()),
           "alice's presence still points at her login after lookups made as alice: %r" % result)
    text = d.whereis(ALICE, ALICE_PW, BOB, json_output=False)
    expect(text.code == 0 and "bob is online" in text.out and addr(tb.observed()) in text.out,
           "text form says bob is online at his observed address: %r" % text)
    expect(ta.alive() and tb.alive(), "both logins still running")


# --------------------------------------------------------------------------
# 2. keepalive

def keepalive_kill():
    d = Deployment(**KEEPALIVE)
    ta, tb = two_users_online(d)
    # Keepalives hold the presence: over 2.5 grace windows bob stays online on the same link.
    first = addr(tb.observed())
    deadline = time.monotonic() + 2.5 * GRACE_S
    while time.monotonic() < deadline:
        result = d.whereis(ALICE, ALICE_PW, BOB)
        expect(result.code == 0 and result.json().get("observed") == first,
               "bob stays online on his first link while keepalives flow: %r" % result)
        time.sleep(0.5)
    expect("link to the node lost" not in tb.err(), "bob's login never lost its link: %r" % tb.err())
    tb.signal(signal.SIGKILL)
    tb.wait_exit(10)
    waited, result = offline_poll(d, BOB, GRACE_S + 6 * h.SLOW)
    expect("offline" in result.out, "whereis says bob is offline: %r" % result)
    log("  bob offline %.2f s after SIGKILL (grace window %d s)" % (waited, GRACE_S))
    expect(waited <= GRACE_S + 4 * h.SLOW, "offline within the keepalive window (+ slack): %.2f s" % waited)
    expect(ta.alive(), "alice's login unaffected")


def keepalive_stop():
    d = Deployment(**KEEPALIVE)
    checks = Checks()
    d.start_node()
    d.add_user(ALICE, ALICE_PW)
    d.add_user(BOB, BOB_PW)
    # First, on a quiet node: a presence link that sends no keepalives gets the
    # "presence expired" notice and is closed once the grace window is over.
    raw = h.RawTls(d.node)
    expect(raw.login(BOB, BOB_PW).cls == h.SUCCESS, "bob logs in on a raw presence link")
    started = time.monotonic()
    closed, chunks = raw.wait_closed(GRACE_S + 6 * h.SLOW)
    waited = time.monotonic() - started
    codes = []
    notices = h.notices_in(raw, chunks, codes)
    raw.close()
    checks.check(codes == [h.NOTICE_PRESENCE_EXPIRED], "its notice carries NOTICE-CODE presence_expired: %r" % codes)
    checks.check(closed and waited <= GRACE_S + 4 * h.SLOW,
                 "a silent presence link is closed by the node after the grace window (closed=%s after %.1f s)"
                 % (closed, waited))
    checks.check(len(notices) == 1 and "expired" in notices[0],
                 "it got one notice saying its presence expired: %r" % notices)
    ta, tb = d.start_login(ALICE, ALICE_PW), d.start_login(BOB, BOB_PW)
    first = addr(tb.observed())
    tb.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        waited, result = offline_poll(d, BOB, GRACE_S + 8 * h.SLOW)
        log("  bob offline %.2f s after SIGSTOP (keepalive_interval * keepalive_misses = %d s)" % (waited, GRACE_S))
        expect("offline" in result.out, "whereis says bob is offline: %r" % result)
        expect(waited >= 0.5, "the stopped terminal was not dropped before its grace window: %.2f s" % waited)
        expect(waited <= GRACE_S + 5 * h.SLOW, "the stopped terminal went offline within %d s + slack: %.2f s"
               % (GRACE_S, waited))
        expect(tb.alive(), "bob's process is still there (stopped), only his presence went away")
    finally:
        tb.signal(signal.SIGCONT)
    # Woken up, `tsunagu login` finds its link closed and logs in again.
    d.wait_logged_in(tb, count=2, timeout=20 * h.SLOW)
    result = wait_until(lambda: (lambda r: r if r.code == 0 else None)(d.whereis(ALICE, ALICE_PW, BOB)),
                        15 * h.SLOW, 0.2, "bob back online after SIGCONT")
    second = result.json().get("observed")
    expect(second == addr(tb.observed()) and second != first,
           "after SIGCONT bob is online again on a new link (%s, was %s)" % (second, first))
    tb.kill()
    expect(ta.alive(), "alice's login unaffected (%.1f s in)" % (time.monotonic() - stopped_at))
    checks.finish()


# --------------------------------------------------------------------------
# 3. restart and durability

def restart_keeps_accounts():
    d = Deployment()
    checks = Checks()
    node = d.start_node()
    d.add_user(ALICE, ALICE_PW)
    d.add_user(BOB, BOB_PW)
    ta = d.start_login(ALICE, ALICE_PW)
    raw_bob = h.RawTls(node)
    login = raw_bob.login(BOB, BOB_PW)
    expect(login.cls == h.SUCCESS, "bob logs in over a raw link: %r" % (login.error(),))
    expect(d.whereis(ALICE, ALICE_PW, BOB).code == 0, "alice finds bob before the restart")

    started = time.monotonic()
    status = node.stop(signal.SIGTERM, timeout=10)
    took = time.monotonic() - started
    expect(status == 0, "SIGTERM: the node exits with 0 (got %r) in %.2f s" % (status, took))
    expect(took <= 5 * h.SLOW, "the node stopped within 5 s of SIGTERM (%.2f s)" % took)
    closed, chunks = raw_bob.wait_closed(5)
    checks.check(closed, "bob's link was closed by the stopping node")
    codes = []
    notices = h.notices_in(raw_bob, chunks, codes)
    raw_bob.close()
    checks.check(h.NOTICE_SHUTTING_DOWN in codes, "its notice carries NOTICE-CODE shutting_down: %r" % codes)
    checks.check(any("shutting down" in n for n in notices),
                 "the presence link got a notice saying the node is shutting down (docs/protocol.md section 5): "
                 "notices %r" % notices)
    wait_until(lambda: "link to the node lost" in ta.err(), 10 * h.SLOW, 0.1, "alice's login to see the node go")
    expect(ta.alive(), "alice's login keeps running and retries")

    # Same deployment, same TLS port: accounts are still there and the running login comes back.
    node = d.start_node(listen=node.address)
    d.wait_logged_in(ta, count=2, timeout=40 * h.SLOW)
    log("  alice's running login logged in again after the restart")
    listing = d.admin(["user", "-d", d.dir, "list"])
    expect(listing.code == 0 and "alice" in listing.out and "bob" in listing.out,
           "user list after restart shows both accounts: %r" % listing)
    tb = d.start_login(BOB, BOB_PW)
    result = d.whereis(ALICE, ALICE_PW, BOB)
    expect(result.code == 0 and result.json().get("observed") == addr(tb.observed()),
           "bob logs in after the restart and alice finds him: %r" % result)
    tb.kill()
    wait_until(lambda: d.whereis(ALICE, ALICE_PW, BOB).code == 4, 10 * h.SLOW, 0.1, "bob offline")
    result = d.whereis(ALICE, ALICE_PW, BOB)
    checks.check(result.code == 4 and result.json().get("last_seen", 0) > 0,
                 "offline bob has a last-seen time: %r" % result)
    checks.finish()


def kill9_durability():
    d = Deployment(node__open_registration="true")
    node = d.start_node()
    d.add_user(ALICE, ALICE_PW)
    added = d.add_user("carol", "carol-password")
    expect("added carol" in added.out, "user add printed its result: %r" % added)
    node.stop(signal.SIGKILL)
    log("  node killed with SIGKILL right after `user add carol` returned")
    node = d.start_node()
    carol = d.start_login("carol", "carol-password")
    expect(carol.alive(), "carol logs in after the node was killed")
    result = d.whereis(ALICE, ALICE_PW, "carol")
    expect(result.code == 0 and result.json().get("online") is True, "alice finds carol online: %r" % result)

    reg = d.cli(["register", "--name", "Dave D"], "dave", "dave-password")
    expect(reg.code == 0 and "registered dave" in reg.out, "dave registers through the node: %r" % reg)
    node.stop(signal.SIGKILL)
    log("  node killed with SIGKILL right after `tsunagu register` was acknowledged")
    d.start_node()
    dave = d.start_login("dave", "dave-password")
    result = d.whereis(ALICE, ALICE_PW, "dave")
    expect(result.code == 0 and result.json().get("name") == "Dave D" and
           result.json().get("observed") == addr(dave.observed()),
           "the acknowledged registration survived kill -9 (name kept): %r" % result)


# --------------------------------------------------------------------------
# 4. STUN binding service

def stun_client():
    d = Deployment()
    node = d.start_node()
    program = shutil.which("stun")
    if program is None:
        raise h.Skip("the `stun` client (Debian package stun-client) is not installed")
    # stun-client 0.97 takes host:port for the server.
    result = subprocess.run([program, "%s:%d" % node.stun, "1", "-v"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=30 * h.SLOW)
    output = result.stdout + result.stderr
    log("  stun client output:\n    " + "\n    ".join(output.splitlines()[:14]))
    opened = re.search(r"Opened port (\d+)", output)
    mapped = re.search(r"MappedAddress = ([0-9.]+):(\d+)", output)
    expect(opened is not None, "the stun client says which port it used")
    expect(mapped is not None, "the stun client got a MAPPED-ADDRESS from the node")
    expect(mapped.group(1) == "127.0.0.1" and int(mapped.group(2)) == int(opened.group(1)),
           "mapped address %s:%s is the client's own 127.0.0.1:%s" % (mapped.group(1), mapped.group(2),
                                                                     opened.group(1)))
    expect(node.alive(), "node still running")


def stun_raw():
    d = Deployment()
    node = d.start_node()
    checks = Checks()

    # RFC 8489 request, with and without FINGERPRINT.
    for with_fingerprint in (True, False):
        tid = secrets.token_bytes(12)
        reply, own = h.udp_exchange(node.stun, h.encode(h.METHOD_BINDING, h.REQUEST, [], tid,
                                                        fingerprint=with_fingerprint))
        expect(reply is not None, "RFC 8489 Binding request (fingerprint=%s) answered" % with_fingerprint)
        message = h.decode(reply)
        expect(message.cls == h.SUCCESS and message.method == h.METHOD_BINDING and not message.classic,
               "answer is a Binding success response")
        expect(message.transaction_id == tid, "same transaction ID")
        mapped = message.xor_address(h.ATTR_XOR_MAPPED_ADDRESS)
        expect(mapped == own, "XOR-MAPPED-ADDRESS %r is the client's own address %r" % (mapped, own))
        expect(message.fingerprint_ok is True, "the response ends with a correct FINGERPRINT")

    # Classic RFC 3489 request: 16-byte transaction ID, no magic cookie.
    tid = secrets.token_bytes(16)
    tid = b"\x01" + tid[1:]  # never equal to the magic cookie by chance
    reply, own = h.udp_exchange(node.stun, h.encode(h.METHOD_BINDING, h.REQUEST, [], tid, classic=True))
    expect(reply is not None, "classic RFC 3489 Binding request answered")
    message = h.decode(reply)
    expect(message.classic and message.transaction_id == tid, "classic response copies the 16-byte ID")
    expect(message.cls == h.SUCCESS, "classic answer is a success response")
    mapped = message.get(h.ATTR_MAPPED_ADDRESS)
    expect(mapped is not None and h.decode_address(mapped) == own,
           "MAPPED-ADDRESS %r is the client's own address %r" % (mapped and h.decode_address(mapped), own))
    checks.check(message.get(h.ATTR_XOR_MAPPED_ADDRESS) is None and message.get(h.ATTR_FINGERPRINT) is None,
                 "classic answer has no XOR-MAPPED-ADDRESS and no FINGERPRINT")

    # Unknown comprehension-required attribute: 420 listing it.
    tid = secrets.token_bytes(12)
    reply, _ = h.udp_exchange(node.stun, h.encode(h.METHOD_BINDING, h.REQUEST, [(0x7F01, b"abcd")], tid))
    if checks.check(reply is not None, "request with unknown attribute 0x7F01 answered"):
        message = h.decode(reply)
        unknown = message.get(h.ATTR_UNKNOWN_ATTRIBUTES) or b""
        checks.check(message.cls == h.ERROR and message.error() and message.error()[0] == 420 and
                     b"\x7f\x01" in unknown, "420 Unknown Attribute listing 0x7F01: %r" % (message.error(),))

    # Things the binding service must not answer.
    silent = {
        "a Tsunagu login over UDP": h.encode(h.METHOD_LOGIN, h.REQUEST, [(h.ATTR_PROTOCOL_VERSION, h.u32(1))]),
        "a Binding indication": h.encode(h.METHOD_BINDING, h.INDICATION, []),
        "a datagram longer than its STUN length": h.encode(h.METHOD_BINDING, h.REQUEST, [], fingerprint=False) + b"xxxx",
        "random bytes": secrets.token_bytes(64),
    }
    for what, payload in silent.items():
        reply, _ = h.udp_exchange(node.stun, payload, timeout=1.0)
        checks.check(reply is None, "no answer to %s" % what)
    reply, own = h.udp_exchange(node.stun, h.encode(h.METHOD_BINDING, h.REQUEST, []))
    checks.check(reply is not None and h.decode(reply).xor_address() == own, "still answering afterwards")
    checks.finish()


# --------------------------------------------------------------------------
# 5. bad input

def bad_input_garbage():
    d = Deployment()
    ta, tb = two_users_online(d)
    checks = Checks()
    # Fixed garbage: random bytes that start like a TLS record header (0x14-0x17)
    # would make the node wait for the rest of that record, until the login
    # timeout closes the link, which is another test's subject.
    garbage = b"\x00garbage, not TLS\r\n" + bytes((i * 37 + 11) % 256 for i in range(490))
    closed, received, port = h.plain_tcp_closed(d.node.tls, garbage, 10 * h.SLOW)
    checks.check(closed, "garbage on the TLS port: the node closes the connection (received %r)" % received[:40])
    time.sleep(0.2)
    checks.check(re.search(r"from 127\.0\.0\.1:%d closed: TLS" % port, d.node.log_text()) is not None,
                 "the node's log names the TLS failure for that connection")
    lookup_still_works(d, checks, "garbage bytes", tb)
    checks.finish()


def bad_input_plain_stun():
    d = Deployment()
    ta, tb = two_users_online(d)
    checks = Checks()
    request = h.encode(h.METHOD_LOGIN, h.REQUEST, [(h.ATTR_PROTOCOL_VERSION, h.u32(1)),
                                                   (h.ATTR_USER_ID, b"alice"), (h.ATTR_PASSWORD, ALICE_PW.encode())])
    closed, received, port = h.plain_tcp_closed(d.node.tls, request, 10 * h.SLOW)
    checks.check(closed, "unencrypted STUN on the TLS port: the node closes the connection")
    checks.check(b"alice" not in received and b"\x21\x12\xa4\x42" not in received,
                 "the node answered nothing in clear")
    time.sleep(0.2)
    checks.check(re.search(r"from 127\.0\.0\.1:%d closed: TLS" % port, d.node.log_text()) is not None,
                 "the node's log names the TLS failure for that connection")
    lookup_still_works(d, checks, "a plain-TCP STUN message", tb)
    checks.finish()


def bad_input_truncated_frame():
    d = Deployment(presence__login_timeout=2)
    ta, tb = two_users_online(d)
    checks = Checks()
    # A query login, so it does not displace alice's running terminal.
    login = h.encode(h.METHOD_LOGIN, h.REQUEST, [(h.ATTR_PROTOCOL_VERSION, h.u32(1)), (h.ATTR_USER_ID, b"alice"),
                                                 (h.ATTR_PASSWORD, ALICE_PW.encode()), (h.ATTR_LINK_ROLE, h.u32(1))])
    # 1. Half a frame, then close.
    raw = h.RawTls(d.node)
    raw.send(login[:len(login) // 2])
    raw.close()
    time.sleep(0.3)
    lookup_still_works(d, checks, "a truncated frame and close", tb)
    # 2. A frame split in two writes is reassembled and answered.
    raw = h.RawTls(d.node)
    raw.send(login[:7])
    time.sleep(0.3)
    raw.send(login[7:])
    try:
        answer = raw.receive(30 * h.SLOW)
        checks.check(answer.cls == h.SUCCESS and answer.method == h.METHOD_LOGIN,
                     "a frame sent in two pieces is reassembled and answered: %r" % (answer.error(),))
    except (OSError, ConnectionError) as error:
        checks.check(False, "a frame sent in two pieces is answered (%s)" % error)
    raw.close()
    # 3. Half a frame and silence: the login timeout (2 s) closes the link.
    raw = h.RawTls(d.node)
    raw.send(login[:30])
    started = time.monotonic()
    closed, _ = raw.wait_closed(2 + 8 * h.SLOW)
    checks.check(closed, "a link stuck on half a frame is closed by the login timeout (%.1f s)"
                 % (time.monotonic() - started))
    raw.close()
    lookup_still_works(d, checks, "a link stuck on half a frame", tb)
    checks.check(ta.alive() and tb.alive(), "both terminals still logged in")
    checks.finish()


def bad_input_oversized_frame():
    d = Deployment()
    ta, tb = two_users_online(d)
    checks = Checks()
    lookup_still_works(d, checks, "start-up (warm-up)", tb)
    rss_before = h.vm_rss_kib(d.node.pid)
    header = struct.pack("!HHI", h.message_type(h.METHOD_LOGIN, h.REQUEST), 0xFFFC, h.MAGIC_COOKIE) + \
        secrets.token_bytes(12)
    # The header alone: the node must close without waiting for the body.
    raw = h.RawTls(d.node)
    raw.send(header)
    closed, _ = raw.wait_closed(5 * h.SLOW)
    checks.check(closed, "an announced length of 0xFFFC closes the link before any body arrives")
    raw.close()
    # Header plus 1 MB, several times.
    megabyte = secrets.token_bytes(1 << 20)
    for round_number in range(5):
        raw = h.RawTls(d.node)
        sent = 0
        try:
            raw.send(header)
            for offset in range(0, len(megabyte), 65536):
                raw.send(megabyte[offset:offset + 65536])
                sent += 65536
        except (OSError, ConnectionError, h.ssl.SSLError):
            pass
        closed, _ = raw.wait_closed(10 * h.SLOW)
        checks.check(closed, "round %d: the node closed the link (after %d of %d body bytes were accepted)"
                     % (round_number, sent, len(megabyte)))
        raw.close()
    time.sleep(0.5)
    rss_after = h.vm_rss_kib(d.node.pid)
    log("  node VmRSS %d KiB before, %d KiB after" % (rss_before, rss_after))
    checks.check(rss_after - rss_before <= 20 * 1024, "node memory stayed bounded (+%d KiB)" % (rss_after - rss_before))
    lookup_still_works(d, checks, "oversized frames", tb)
    checks.finish()


def bad_input_rate_limit():
    d = Deployment()
    ta, tb = two_users_online(d)
    d.add_user("victim", "victim-password")
    checks = Checks()
    codes = []
    limited = None
    for _ in range(10):
        result = d.cli(["login"], "victim", "wrong-password")
        codes.append(result.code)
        if result.code == 6:
            limited = result
            break
        expect(result.code == 5, "a wrong password is refused with exit 5 before the limit: %r" % result)
    log("  exit codes of repeated wrong passwords: %r" % codes)
    expect(limited is not None, "the rate limit engaged within 10 wrong passwords")
    checks.check("retry" in limited.err.lower(), "the message says when to retry: %r" % limited.err)
    right = d.cli(["login"], "victim", "victim-password")
    checks.check(right.code == 6, "while limited, even the right password for that ID is refused with 6: %r" % right)
    # Other IDs from the same source still work.
    lookup_still_works(d, checks, "the rate limit engaged for another ID", tb)
    ta2 = d.start_login(ALICE, ALICE_PW)
    checks.check(ta2.alive(), "alice can still log in from the same source")
    checks.finish()


def bad_input_unknown_user():
    d = Deployment()
    ta, tb = two_users_online(d)
    checks = Checks()
    unknown = d.cli(["login"], "nobody", "some-password")
    wrong = d.cli(["login"], ALICE, "not-her-password")
    checks.check(unknown.code == 5, "login as an unknown user exits 5: %r" % unknown)
    checks.check(wrong.code == 5, "login with a wrong password exits 5: %r" % wrong)
    checks.check(unknown.err == wrong.err and unknown.err.strip() != "",
                 "unknown user and wrong password give the same message (%r vs %r)" % (unknown.err, wrong.err))
    raw = h.RawTls(d.node)
    a = raw.login("nobody", "some-password").error()
    raw.close()
    raw = h.RawTls(d.node)
    b = raw.login(ALICE, "not-her-password").error()
    raw.close()
    checks.check(a is not None and a == b and a[0] == 401, "the node answers both with the same 401: %r %r" % (a, b))
    missing = d.whereis(ALICE, ALICE_PW, "nobody", json_output=False)
    checks.check(missing.code == 3 and "nobody" in missing.err, "whereis of an unknown ID exits 3: %r" % missing)
    # Issue 10, item 6: an error told no last-seen time; the JSON must not make one up.
    missing_json = d.whereis(ALICE, ALICE_PW, "nobody")
    checks.check(missing_json.code == 3 and "last_seen" not in missing_json.json(),
                 "whereis --json of an unknown ID has no last_seen: %r" % missing_json)
    lookup_still_works(d, checks, "unknown-user attempts", tb)
    checks.finish()


def bad_input_duplicate_registration():
    d = Deployment(node__open_registration="true")
    ta, tb = two_users_online(d)
    checks = Checks()
    first = d.cli(["register"], "erin", "erin-password-1")
    expect(first.code == 0 and "registered erin" in first.out, "erin registers: %r" % first)
    # tsunagu sends SCRAM credentials it derived, never the password; the audit line says who derived them.
    erin_line = wait_until(lambda: next((l for l in d.node.log_text().splitlines()
                                         if "event=register result=ok user=erin " in l), None),
                           10 * h.SLOW, 0.1, "erin's register audit line")
    checks.check(erin_line.endswith("credentials=client"), "tsunagu register sent credentials: %r" % erin_line)
    second = d.cli(["register"], "erin", "another-password")
    checks.check(second.code == 7 and "409" in second.err and "exist" in second.err.lower(),
                 "a second registration of erin is refused with 409 and exit 7: %r" % second)
    again = d.cli(["register"], ALICE, "whatever-password")
    checks.check(again.code == 7 and "409" in again.err, "registering an admin-made ID is refused too: %r" % again)
    raw = h.RawTls(d.node)
    answer = raw.request(h.METHOD_REGISTER, [(h.ATTR_USER_ID, b"erin"), (h.ATTR_PASSWORD, b"third-password")])
    raw.close()
    checks.check(answer.cls == h.ERROR and answer.error()[0] == 409, "the node answers 409: %r" % (answer.error(),))
    # An older client's password registration still works; the node derives the credentials.
    raw = h.RawTls(d.node)
    answer = raw.request(h.METHOD_REGISTER, [(h.ATTR_USER_ID, b"frank"), (h.ATTR_PASSWORD, b"frank-password")])
    raw.close()
    checks.check(answer.cls == h.SUCCESS, "a password registration is still taken: %r" % (answer,))
    frank_line = wait_until(lambda: next((l for l in d.node.log_text().splitlines()
                                          if "event=register result=ok user=frank " in l), None),
                            10 * h.SLOW, 0.1, "frank's register audit line")
    checks.check(frank_line.endswith("credentials=node"), "the node derived frank's credentials: %r" % frank_line)
    te = d.start_login("erin", "erin-password-1")
    checks.check(te.alive(), "erin's first password still works")
    checks.check(d.cli(["login"], "erin", "another-password").code == 5, "the refused registration changed nothing")
    dup = d.add_user(ALICE, "alice-other-pw", expect=None)
    checks.check(dup.code == 4 and "already exists" in dup.err, "user add of an existing ID exits 4: %r" % dup)
    lookup_still_works(d, checks, "duplicate registrations", tb)
    checks.finish()


def bad_input_invalid_ids():
    d = Deployment(node__open_registration="true")
    ta, tb = two_users_online(d)
    checks = Checks()
    asker = h.RawTls(d.node)
    expect(asker.login(ALICE, ALICE_PW, role=1).cls == h.SUCCESS, "raw query link logged in as alice")
    for bad in ("Alice", "a b", "a@b@c"):
        log(" user ID %r" % bad)
        r = d.cli(["login"], bad, "some-password")
        checks.check(r.code == 2, "tsunagu login --user %r exits 2 (bad usage): %r" % (bad, r))
        r = d.whereis(ALICE, ALICE_PW, bad, json_output=False)
        checks.check(r.code == 2, "tsunagu whereis %r exits 2: %r" % (bad, r))
        r = d.cli(["register"], bad, "some-password")
        checks.check(r.code == 2, "tsunagu register --user %r exits 2: %r" % (bad, r))
        r = d.add_user(bad, "some-password", expect=None)
        checks.check(r.code == 2 and "invalid user ID" in r.err, "tsunagu-rendezvous user add %r exits 2: %r" % (bad, r))
        raw = h.RawTls(d.node)
        answer = raw.login(bad, "some-password").error()
        raw.close()
        checks.check(answer is not None and answer[0] == 422, "node answers a raw login as %r with 422: %r"
                     % (bad, answer))
        raw = h.RawTls(d.node)
        answer = raw.request(h.METHOD_REGISTER, [(h.ATTR_USER_ID, h.text(bad)), (h.ATTR_PASSWORD, b"some-password")])
        raw.close()
        checks.check(answer.error() is not None and answer.error()[0] == 422,
                     "node answers a raw register of %r with 422: %r" % (bad, answer.error()))
        answer = asker.request(h.METHOD_LOOKUP, [(h.ATTR_USER_ID, h.text(bad))])
        checks.check(answer.error() is not None and answer.error()[0] == 422,
                     "node answers a raw lookup of %r with 422: %r" % (bad, answer.error()))
    asker.close()
    lookup_still_works(d, checks, "invalid IDs", tb)
    checks.finish()


def bad_input_stun_fingerprint():
    d = Deployment()
    ta, tb = two_users_online(d)
    checks = Checks()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        bad_tid = secrets.token_bytes(12)
        reply, _ = h.udp_exchange(d.node.stun, h.encode(h.METHOD_BINDING, h.REQUEST, [], bad_tid,
                                                        corrupt_fingerprint=True), timeout=1.5, sock=sock)
        checks.check(reply is None, "a Binding request with a bad FINGERPRINT gets no answer")
        good_tid = secrets.token_bytes(12)
        reply, own = h.udp_exchange(d.node.stun, h.encode(h.METHOD_BINDING, h.REQUEST, [], good_tid),
                                    timeout=5 * h.SLOW, sock=sock)
        ok = reply is not None
        if ok:
            message = h.decode(reply)
            ok = message.transaction_id == good_tid and message.xor_address() == own
        checks.check(ok, "a good request right after is answered with the right address")
    finally:
        sock.close()
    # The same over TLS: a bad FINGERPRINT on a framed request is a 400 and the link stays.
    raw = h.RawTls(d.node)
    tid = secrets.token_bytes(12)
    raw.send(h.encode(h.METHOD_LOGIN, h.REQUEST, [(h.ATTR_PROTOCOL_VERSION, h.u32(1)), (h.ATTR_USER_ID, b"alice"),
                                                  (h.ATTR_PASSWORD, ALICE_PW.encode())], tid,
                      corrupt_fingerprint=True))
    answer = raw.receive(30 * h.SLOW)
    checks.check(answer.transaction_id == tid and answer.error() and answer.error()[0] == 400,
                 "over TLS a bad FINGERPRINT is answered 400: %r" % (answer.error(),))
    answer = raw.login(ALICE, ALICE_PW, role=1)
    checks.check(answer.cls == h.SUCCESS, "the link stays usable after the 400")
    raw.close()
    lookup_still_works(d, checks, "bad fingerprints", tb)
    checks.finish()


def bad_input_protocol_errors():
    """docs/protocol.md sections 2, 4 and 7 on one link: errors answered, link kept, then closed when abusive."""
    d = Deployment()
    ta, tb = two_users_online(d)
    checks = Checks()
    raw = h.RawTls(d.node)
    answer = raw.request(h.METHOD_LOOKUP, [(h.ATTR_USER_ID, b"bob")])
    checks.check(answer.error() and answer.error()[0] == 401, "lookup before login: 401 (%r)" % (answer.error(),))
    answer = raw.request(h.METHOD_KEEPALIVE, [], version=None)
    checks.check(answer.error() and answer.error()[0] == 400,
                 "a request without PROTOCOL-VERSION: 400 Bad Request (%r)" % (answer.error(),))
    answer = raw.request(h.METHOD_KEEPALIVE, [], version=2)
    checks.check(answer.error() and answer.error()[0] == 426 and answer.u32(h.ATTR_PROTOCOL_VERSION) == 1,
                 "version 2: 426 carrying PROTOCOL-VERSION 1 (%r)" % (answer.error(),))
    answer = raw.request(0x8FF, [])
    checks.check(answer.error() and answer.error()[0] == 400, "an unknown method: 400 (%r)" % (answer.error(),))
    answer = raw.login(ALICE, "x" * 300)
    checks.check(answer.error() and answer.error()[0] == 400, "a 300-byte password: 400 (%r)" % (answer.error(),))
    answer = raw.login(ALICE, ALICE_PW, role=1)
    checks.check(answer.cls == h.SUCCESS, "the link still logs in after those errors")
    answer = raw.request(h.METHOD_LOOKUP, [(h.ATTR_USER_ID, b"bob")])
    checks.check(answer.cls == h.SUCCESS and answer.u32(h.ATTR_PRESENCE) & h.PRESENCE_ONLINE,
                 "and looks bob up: online")
    raw.close()
    # A peer that keeps sending malformed messages loses its link (limits.max_bad_messages = 8).
    raw = h.RawTls(d.node)
    closed = False
    for _ in range(20):
        try:
            raw.send(h.encode(h.METHOD_KEEPALIVE, h.REQUEST, [(h.ATTR_PROTOCOL_VERSION, h.u32(1))],
                              corrupt_fingerprint=True))
        except (OSError, ConnectionError):
            closed = True
            break
    if not closed:
        closed, _ = raw.wait_closed(10 * h.SLOW)
    raw.close()
    checks.check(closed, "a link sending 20 malformed messages is closed")
    lookup_still_works(d, checks, "protocol errors", tb)
    checks.finish()


# --------------------------------------------------------------------------
# 6. logout, 7. displaced login

def logout_ends_login():
    d = Deployment()
    ta, tb = two_users_online(d)
    result = d.cli(["logout"], ALICE, ALICE_PW)
    expect(result.code == 0 and "logged out alice" in result.out, "tsunagu logout succeeds: %r" % result)
    status = ta.wait_exit(10)
    expect(status == 0, "the running `tsunagu login` exits 0 (got %r; stdout %r, stderr %r)"
           % (status, ta.out(), ta.err()))
    expect("session ended" in ta.out(), "it prints that the session ended: %r" % ta.out())
    result = d.whereis(BOB, BOB_PW, ALICE, json_output=False)
    expect(result.code == 4 and "offline" in result.out, "bob sees alice offline: %r" % result)
    result = d.cli(["logout"], ALICE, ALICE_PW)
    expect(result.code == 0, "logout again is harmless (idempotent): %r" % result)
    expect(tb.alive(), "bob's login unaffected")


def displaced_login():
    d = Deployment()
    ta, tb = two_users_online(d)
    first = addr(ta.observed())
    ta2 = d.start_login(ALICE, ALICE_PW)
    status = ta.wait_exit(10)
    expect(status == 0, "the first login exits (0) when displaced (got %r; stdout %r stderr %r)"
           % (status, ta.out(), ta.err()))
    expect("logged in elsewhere" in ta.out(), "it says it was logged in elsewhere: %r" % ta.out())
    second = addr(ta2.observed())
    ports = h.tcp_local_ports(ta2.pid, d.node.tls[1])
    expect(second != first and ports and second == "127.0.0.1:%d" % ports[0],
           "the second login has its own link %s (first was %s)" % (second, first))
    result = d.whereis(BOB, BOB_PW, ALICE)
    expect(result.code == 0 and result.json().get("observed") == second,
           "alice's address follows the second login: %r" % result)
    time.sleep(2)
    expect(ta2.alive(), "the second login stays (no ping-pong)")
    result = d.whereis(BOB, BOB_PW, ALICE)
    expect(result.code == 0 and result.json().get("observed") == second, "still at the second login: %r" % result)


# --------------------------------------------------------------------------
# 8. help and usage

TERMINAL_CODES = ["Exit codes", "2 bad usage", "3 unknown user", "4 user offline", "5 authentication failed",
                  "6 rate limited", "7 refused"]
RENDEZVOUS_CODES = ["Exit codes", "2 bad usage", "3 no such user", "4 already exists"]


def help_texts():
    checks = Checks()
    # Every command and subcommand, as each --help lists them (at least those of the brief).
    commands = []
    for program, needed, expected in ((h.TERMINAL, TERMINAL_CODES, {"login", "whereis", "logout", "register"}),
                                      (h.RENDEZVOUS, RENDEZVOUS_CODES, {"init", "run", "user"})):
        found = []
        pending = [[]]
        while pending:
            path = pending.pop(0)
            found.append(path)
            pending += [path + [name] for name in h.subcommands([program] + path)]
        top = {p[0] for p in found if p}
        checks.check(expected <= top, "%s --help lists %s (found %s)" % (os.path.basename(program),
                                                                        sorted(expected), sorted(top)))
        commands += [([program] + path, needed) for path in found]
    user_sub = {tuple(c[0][1:]) for c in commands if c[0][0] == h.RENDEZVOUS}
    for sub in ("add", "remove", "list", "show", "passwd", "set-static", "clear-static"):
        checks.check(("user", sub) in user_sub, "tsunagu-rendezvous user %s exists" % sub)
    for args, needed in commands:
        result = subprocess.run(args + ["--help"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=h.CLI_TIMEOUT)
        name = " ".join([os.path.basename(args[0])] + args[1:])
        flat = " ".join(result.stdout.split())
        missing = [n for n in needed if n not in flat]
        checks.check(result.returncode == 0 and not missing,
                     "`%s --help` exits 0 (%d) and lists the exit codes (missing %r)" % (name, result.returncode,
                                                                                         missing))
    checks.finish()


def usage_errors():
    """Bad usage exits 2 (both programs' header comments), with a message on stderr."""
    checks = Checks()
    env = dict(os.environ)
    for name in ("TSUNAGU_NODE", "TSUNAGU_CA", "TSUNAGU_USER", "TSUNAGU_PASSWORD", "TSUNAGU_DIR"):
        env.pop(name, None)
    cases = [
        [h.TERMINAL],
        [h.TERMINAL, "frobnicate"],
        [h.TERMINAL, "whereis"],
        [h.TERMINAL, "whereis", "bob", "--no-such-option"],
        [h.TERMINAL, "login"],  # no node, no CA, no user
        [h.RENDEZVOUS],
        [h.RENDEZVOUS, "user"],
        [h.RENDEZVOUS, "user", "add"],
        [h.RENDEZVOUS, "run", "--log-level", "loud"],
        [h.RENDEZVOUS, "init"],
    ]
    for args in cases:
        result = subprocess.run(args, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=h.CLI_TIMEOUT)
        name = " ".join([os.path.basename(args[0])] + args[1:])
        checks.check(result.returncode == 2 and result.stderr.strip() != "",
                     "`%s` exits 2 with a message (got %d, stderr %r)" % (name, result.returncode,
                                                                         result.stderr.strip()[:80]))
    checks.finish()


# --------------------------------------------------------------------------
# session-resumption tokens (docs/security.md, "Session resumption tokens")

def resume_token_relogin():
    """A running `tsunagu login` loses its link (the node restarts: a network
    change as the terminal sees it) and logs in again with its token, one
    request; after `user passwd` and after `user remove` the token is refused
    (the node's audit line says why) and SCRAM decides."""
    d = Deployment()
    checks = Checks()
    node = d.start_node()
    d.add_user(ALICE, ALICE_PW)
    d.add_user(BOB, BOB_PW)
    ta = d.start_login(ALICE, ALICE_PW)
    checks.check("resumed" not in ta.out(), "the first login is SCRAM: %r" % ta.out())
    audit_ok = re.compile(r"event=login result=ok user=alice source=\S+ role=presence method=token$", re.M)
    checks.check(not audit_ok.search(node.log_text()), "no token login before the drop")

    status = node.stop(signal.SIGTERM, timeout=10)
    expect(status == 0, "the node stops (%r)" % status)
    wait_until(lambda: "link to the node lost" in ta.err(), 10 * h.SLOW, 0.1, "alice's login to see the link go")
    node = d.start_node(listen=node.address)
    d.wait_logged_in(ta, count=2, timeout=40 * h.SLOW)
    lines = [l for l in ta.out().splitlines() if l.startswith("logged in as alice")]
    checks.check(len(lines) == 2 and lines[1].endswith("; resumed by session token"),
                 "the second login was resumed by the token: %r" % lines)
    checks.check(audit_ok.search(node.log_text()) is not None,
                 "the restarted node's audit line says method=token: %r" %
                 [l for l in node.log_text().splitlines() if "event=login" in l])
    logins = [l for l in node.log_text().splitlines() if "event=login" in l]
    checks.check(len(logins) == 1, "and it was the only login on the restarted node (no SCRAM): %r" % logins)
    result = d.whereis(BOB, BOB_PW, ALICE)
    checks.check(result.code == 0 and result.json().get("observed") == addr(ta.observed()),
                 "bob finds alice at her resumed link: %r" % result)

    # A password change ends her link; the reconnect's token is refused (revoked)
    # and SCRAM with the old password fails: the login exits unauthenticated.
    changed = d.admin(["user", "-d", d.dir, "passwd", ALICE], password="alice-new-password")
    expect(changed.code == 0, "user passwd: %r" % changed)
    wait_until(lambda: not ta.alive(), 20 * h.SLOW, 0.1, "alice's login to end after the password change")
    revoked = re.compile(r"event=login result=failed user=alice source=\S+ method=token reason=revoked$", re.M)
    checks.check(revoked.search(node.log_text()) is not None,
                 "the node refused the token after the password change: %r" %
                 [l for l in node.log_text().splitlines() if "event=login" in l])
    checks.check(ta.proc.returncode == 5 and "wrong user ID or password" in ta.err(),
                 "then SCRAM with the old password failed: exit %r, stderr %r" % (ta.proc.returncode, ta.err()[-300:]))
    ta2 = d.start_login(ALICE, "alice-new-password")
    checks.check(ta2.alive(), "the new password logs in")
    ta2.kill()

    # A removed account: bob's token goes with it.
    tb = d.start_login(BOB, BOB_PW)
    removed = d.admin(["user", "-d", d.dir, "remove", BOB])
    expect(removed.code == 0, "user remove: %r" % removed)
    wait_until(lambda: not tb.alive(), 20 * h.SLOW, 0.1, "bob's login to end after the removal")
    revoked_bob = re.compile(r"event=login result=failed user=bob source=\S+ method=token reason=revoked$", re.M)
    checks.check(revoked_bob.search(node.log_text()) is not None,
                 "the node refused bob's token after the removal: %r" %
                 [l for l in node.log_text().splitlines() if "user=bob" in l])
    checks.check(tb.proc.returncode == 5, "bob's login exits unauthenticated (%r)" % tb.proc.returncode)

    # The restarted node's figures (`status`, its /metrics) count the token login and the refusals by reason.
    expect(node.web, "the node has a web listener (web.listen) for its /metrics")
    status = d.admin(["status", "-d", d.dir, "--web", node.web])
    token_lines = [l for l in status.out.splitlines() if l.startswith("tsunagu_node_token_logins")]
    checks.check(status.code == 0 and "tsunagu_node_token_logins_total: 1" in token_lines,
                 "status shows the one token login: %r" % (token_lines or status))
    refused = next((l for l in token_lines if l.startswith("tsunagu_node_token_logins_refused_total:")), "")
    checks.check(re.search(r"\breason=revoked [1-9]", refused) and "reason=forged 0" in refused,
                 "and the refused tokens by reason (revoked, none forged): %r" % refused)
    checks.finish()


SCENARIOS = {
    "presence_lookup": presence_lookup,
    "keepalive_kill": keepalive_kill,
    "keepalive_stop": keepalive_stop,
    "restart_keeps_accounts": restart_keeps_accounts,
    "kill9_durability": kill9_durability,
    "stun_client": stun_client,
    "stun_raw": stun_raw,
    "bad_input_garbage": bad_input_garbage,
    "bad_input_plain_stun": bad_input_plain_stun,
    "bad_input_truncated_frame": bad_input_truncated_frame,
    "bad_input_oversized_frame": bad_input_oversized_frame,
    "bad_input_rate_limit": bad_input_rate_limit,
    "bad_input_unknown_user": bad_input_unknown_user,
    "bad_input_duplicate_registration": bad_input_duplicate_registration,
    "bad_input_invalid_ids": bad_input_invalid_ids,
    "bad_input_stun_fingerprint": bad_input_stun_fingerprint,
    "bad_input_protocol_errors": bad_input_protocol_errors,
    "logout_ends_login": logout_ends_login,
    "displaced_login": displaced_login,
    "resume_token_relogin": resume_token_relogin,
    "help_texts": help_texts,
    "usage_errors": usage_errors,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
