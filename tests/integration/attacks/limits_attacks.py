#!/usr/bin/env python3
"""The node's limits from an attacker's view (issue 11 §5, docs/security.md "Limits"):
a real tsunagu-rendezvous on loopback, raw TLS clients bound to distinct loopback
source addresses (127.0.0.2, 127.0.0.3, ...) standing for distinct hosts.

Run one scenario:  TSUNAGU_BUILD=build python3 limits_attacks.py SCENARIO
Each scenario is its own meson test (tests/integration/attacks/meson.build); exit 77 = skipped.
"""

import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import harness as h  # noqa: E402
from harness import Deployment, TestFailure, log  # noqa: E402

OWNER, OWNER_PW = "alice", "alice-password-1"
QUERY_ROLE = 1


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    log("  ok:", message)


def SourcedTls(node, source):  # noqa: N802 (reads like the class it makes)
    """A raw TLS link from a chosen loopback address, standing for another host."""
    return h.RawTls(node, source=source)


def wrong_logins(d, source, count):
    """`count` wrong-password logins for OWNER from `source`; returns the error codes."""
    raw = SourcedTls(d.node, source)
    try:
        return [raw.login(OWNER, "not-the-password", role=QUERY_ROLE).error()[0] for _ in range(count)]
    finally:
        raw.close()


def refused_with_notice(raw, timeout=5.0, codes=None):
    """The notice reasons a link got before the node closed it (None if it stayed open)."""
    closed, chunks = raw.wait_closed(timeout)
    return h.notices_in(raw, chunks, codes) if closed else None


def password_flood_does_not_lock_out_the_owner():
    d = Deployment()
    d.start_node()
    d.add_user(OWNER, OWNER_PW)
    started = time.monotonic()
    for k in range(3):  # three flooding hosts, more than enough wrong passwords each
        codes = wrong_logins(d, "127.0.0.%d" % (10 + k), 8)
        expect(codes[:5] == [401] * 5 and 429 in codes[5:],
               "host 127.0.0.%d is refused 401 five times, then held back with 429: %r" % (10 + k, codes))
    owner = SourcedTls(d.node, "127.0.0.3")
    try:
        answer = owner.login(OWNER, OWNER_PW, role=QUERY_ROLE)
        expect(answer.cls == h.SUCCESS, "the owner, from a host with no failures, logs in: %r" % (answer.error(),))
    finally:
        owner.close()
    result = d.cli(["whereis", OWNER], OWNER, OWNER_PW)
    expect(result.code in (0, 4), "the owner's CLI from 127.0.0.1 works too (exit %d): %r" % (result.code, result))
    log("  flood and owner login took %.1f s" % (time.monotonic() - started))


def register_flood_is_limited_per_source():
    d = Deployment(node__open_registration="true")
    d.start_node()
    raw = SourcedTls(d.node, "127.0.0.20")
    codes = []
    try:
        for i in range(8):
            answer = raw.request(h.METHOD_REGISTER, [(h.ATTR_USER_ID, h.text("spam%d" % i)),
                                                     (h.ATTR_PASSWORD, h.text("spam-password"))])
            codes.append(0 if answer.cls == h.SUCCESS else answer.error()[0])
            if answer.cls == h.ERROR and answer.error()[0] == 429:
                expect(answer.u32(h.ATTR_RETRY_AFTER) and answer.u32(h.ATTR_RETRY_AFTER) > 0,
                       "the 429 says when to retry (%r s)" % answer.u32(h.ATTR_RETRY_AFTER))
    finally:
        raw.close()
    expect(codes == [0] * 5 + [429] * 3, "five registrations pass, then 429: %r" % codes)
    other = SourcedTls(d.node, "127.0.0.21")
    try:
        answer = other.request(h.METHOD_REGISTER, [(h.ATTR_USER_ID, h.text("honest")),
                                                   (h.ATTR_PASSWORD, h.text("honest-password"))])
        expect(answer.cls == h.SUCCESS, "another host still registers: %r" % (answer.error(),))
    finally:
        other.close()


def links_not_logged_in_are_capped_per_source():
    d = Deployment(limits__max_prelogin_links_per_source=4)
    d.start_node()
    d.add_user(OWNER, OWNER_PW)
    held = []
    try:
        for _ in range(4):
            held.append(SourcedTls(d.node, "127.0.0.30"))
        for raw in held:  # each finished TLS; none is refused
            expect(refused_with_notice(raw, 0.3) is None, "a link within the cap stays open")
        extra = SourcedTls(d.node, "127.0.0.30")
        held.append(extra)
        reasons = refused_with_notice(extra)
        expect(reasons is not None and any("not logged in" in r for r in reasons),
               "the fifth link from that host is told why and closed: %r" % reasons)
        other = SourcedTls(d.node, "127.0.0.31")
        held.append(other)
        answer = other.login(OWNER, OWNER_PW, role=QUERY_ROLE)
        expect(answer.cls == h.SUCCESS, "another host logs in meanwhile: %r" % (answer.error(),))
    finally:
        for raw in held:
            raw.close()


def node_full_refuses_links_with_a_notice():
    d = Deployment(limits__max_links=16)
    d.start_node()
    d.add_user(OWNER, OWNER_PW)
    held = []
    try:
        for i in range(16):
            held.append(SourcedTls(d.node, "127.0.1.%d" % (i + 1)))
        extra = SourcedTls(d.node, "127.0.2.1")
        held.append(extra)
        codes = []
        reasons = refused_with_notice(extra, codes=codes)
        expect(reasons is not None and any(r.startswith("node full") for r in reasons),
               "the 17th link is told the node is full and closed: %r" % reasons)
        expect(codes == [h.NOTICE_NODE_FULL], "its notice carries NOTICE-CODE node_full: %r" % codes)
        held.pop(0).close()
        ok = False
        deadline = time.monotonic() + 5
        while not ok and time.monotonic() < deadline:  # the node sees the close within a loop turn
            time.sleep(0.1)
            retry = SourcedTls(d.node, "127.0.2.2")
            held.append(retry)
            answer = None
            try:
                answer = retry.login(OWNER, OWNER_PW, role=QUERY_ROLE, timeout=2)
            except (ConnectionError, OSError, socket.timeout):
                pass
            ok = answer is not None and answer.cls == h.SUCCESS
        expect(ok, "once a link closed, a new one is served")
        expect(d.node.alive(), "the node is still running")
    finally:
        for raw in held:
            raw.close()


def idle_query_links_are_closed():
    d = Deployment(limits__idle_timeout=5)
    d.start_node()
    d.add_user(OWNER, OWNER_PW)
    raw = SourcedTls(d.node, "127.0.0.40")
    try:
        answer = raw.login(OWNER, OWNER_PW, role=QUERY_ROLE)
        expect(answer.cls == h.SUCCESS, "a query link logs in")
        started = time.monotonic()
        closed, chunks = raw.wait_closed(12)
        waited = time.monotonic() - started
        reasons = h.notices_in(raw, chunks)
        expect(closed and 4 <= waited <= 10, "the silent query link is closed after about 5 s (%.1f s)" % waited)
        expect(any(r.startswith("idle") for r in reasons), "with a notice saying why: %r" % reasons)
    finally:
        raw.close()


METHOD_VOICEMAIL_BEGIN, METHOD_VOICEMAIL_CHUNK = 0x830, 0x831
ATTR_VOICEMAIL_UPLOAD, ATTR_VOICEMAIL_SIZE, ATTR_VOICEMAIL_OFFSET, ATTR_VOICEMAIL_DATA = 0xC040, 0xC041, 0xC042, 0xC043
EXIT_REFUSED, EXIT_RATE_LIMITED = 7, 6


def voicemail_deployment(mailboxes, **settings):
    d = Deployment(**settings)
    d.start_node()
    for user in [OWNER, "mallory"] + mailboxes:
        d.add_user(user, OWNER_PW)
    for user in mailboxes:
        r = d.admin(["user", "-d", d.dir, "profile", user, "voicemail=yes"])
        expect(r.code == 0, "%s takes voicemail (%r)" % (user, r))
    return d


def send_voicemail(d, sender, callee, size):
    path = d.path("message-%d" % size)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return d.cli(["voicemail", "send", callee, path], sender, OWNER_PW)


def one_sender_cannot_fill_the_voicemail_store():
    mailboxes = ["box%d" % i for i in range(6)]
    d = voicemail_deployment(mailboxes, voicemail__sender_messages_per_day=3, voicemail__store_quota_mb=1,
                             voicemail__max_message_kb=256, voicemail__mailbox_quota_kb=512)
    results = [send_voicemail(d, "mallory", box, 200 * 1024).code for box in mailboxes]
    expect(results[:3] == [0, 0, 0] and all(code != 0 for code in results[3:]),
           "mallory leaves 3 messages in 3 mailboxes, then is refused for the day: %r" % results)
    r = send_voicemail(d, "mallory", mailboxes[5], 1000)
    expect(r.code != 0 and "today" in r.err, "the refusal says why: %r" % r)
    r = send_voicemail(d, OWNER, mailboxes[4], 200 * 1024)
    expect(r.code == 0, "another sender still leaves a message: %r" % r)
    # The store (1 MiB) now holds 800 KiB: the next 256 KiB is refused with 507
    # while the LMDB map has plenty left, and logins keep working.
    r = send_voicemail(d, OWNER, mailboxes[5], 256 * 1024)
    expect(r.code == EXIT_REFUSED and "store is full" in r.err, "the store quota refuses clearly: %r" % r)
    raw = SourcedTls(d.node, "127.0.0.50")
    try:
        expect(raw.login(OWNER, OWNER_PW, role=QUERY_ROLE).cls == h.SUCCESS, "logins still work")
    finally:
        raw.close()


def slow_uploads_do_not_hold_the_budget():
    d = voicemail_deployment(["bob"], voicemail__pending_uploads_mb=1, voicemail__max_message_kb=1024,
                             voicemail__upload_max_seconds=4, voicemail__upload_idle_timeout=30)
    raw = SourcedTls(d.node, "127.0.0.60")
    try:
        expect(raw.login("mallory", OWNER_PW, role=QUERY_ROLE).cls == h.SUCCESS, "mallory logs in")
        begun = raw.request(METHOD_VOICEMAIL_BEGIN, [(h.ATTR_USER_ID, h.text("bob")),
                                                     (ATTR_VOICEMAIL_SIZE, struct.pack("!Q", 1 << 20))])
        expect(begun.cls == h.SUCCESS, "mallory begins a 1 MiB upload: the whole budget")
        upload = begun.get(ATTR_VOICEMAIL_UPLOAD)
        r = send_voicemail(d, OWNER, "bob", 1000)
        expect(r.code != 0 and "retry later" in r.err, "meanwhile the budget is held: %r" % r)
        started = time.monotonic()
        answer = None
        for offset in range(10):  # a byte a second, bounded
            time.sleep(1)
            answer = raw.request(METHOD_VOICEMAIL_CHUNK, [(ATTR_VOICEMAIL_UPLOAD, upload),
                                                          (ATTR_VOICEMAIL_OFFSET, struct.pack("!Q", offset)),
                                                          (ATTR_VOICEMAIL_DATA, b"x")])
            if answer.cls == h.ERROR:
                break
        waited = time.monotonic() - started
        expect(answer is not None and answer.cls == h.ERROR and answer.error()[0] == 404 and waited < 7,
               "the trickling upload is dropped after upload_max_seconds (%.1f s): %r" % (waited, answer.error()))
    finally:
        raw.close()
    r = send_voicemail(d, OWNER, "bob", 1000)
    expect(r.code == 0, "the budget is free again: %r" % r)


LAN_AGENT = os.path.join(h.BUILD, "lan-agent", "tsunagu-lan-agent")


def start_lan_terminal(d, *extra):
    """`tsunagu listen --lan` for extension 4106 of a freshly enrolled agent, on 127.0.0.1; returns (proc, port)."""
    acme, bundle = d.path("acme"), d.path("t4106")
    r = d.admin(["agent", "-d", d.dir, "enroll", "acme", "--domain", "acme", "--out", acme,
                 "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"])
    expect(r.code == 0, "agent acme enrolled (%r)" % r)
    issued = subprocess.run([LAN_AGENT, "terminal", "issue", "4106", "--out", bundle, "-c",
                             os.path.join(acme, "agent.toml")], capture_output=True, text=True, timeout=30)
    expect(issued.returncode == 0, "a terminal bundle for 4106 issued (%r)" % issued.stderr)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err_path = d.path("lan-terminal.err")
    with open(err_path, "w") as err:
        proc = h.spawn([h.TERMINAL, "listen", "--lan", bundle, "--lan-listen", "127.0.0.1:%d" % port,
                        "--ice-address", "127.0.0.1"] + list(extra), stdout=subprocess.DEVNULL, stderr=err)

    def listening():
        if proc.poll() is not None:
            raise TestFailure("the LAN terminal exited with %d: %s" % (proc.returncode, open(err_path).read()))
        return "listening on the LAN" in open(err_path).read()

    h.wait_until(listening, 10, 0.05, "the LAN terminal listening")
    return proc, port


def closed_by_peer(sock, timeout):
    """True when the peer closes (EOF or reset) within timeout; the terminal speaks first never (TLS server)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1024) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def connect_from(source, port):
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))


def lan_terminal_takes_rings_only_from_its_agent_address():
    d = Deployment()
    _, port = start_lan_terminal(d, "--agent-address", "127.0.0.5")
    with connect_from("127.0.0.9", port) as rogue:
        expect(closed_by_peer(rogue, 2.0), "a LAN host that is not the agent is cut off at once")
    with connect_from("127.0.0.5", port) as agent:
        expect(not closed_by_peer(agent, 1.5), "a connection from the agent's address is kept for its TLS handshake")


def one_lan_host_cannot_hold_every_ring_slot():
    d = Deployment()
    _, port = start_lan_terminal(d)
    held = []
    try:
        for _ in range(4):
            held.append(connect_from("127.0.0.9", port))
        expect(not any(closed_by_peer(sock, 0.3) for sock in held), "four silent connections from one host are held")
        extra = connect_from("127.0.0.9", port)
        held.append(extra)
        expect(closed_by_peer(extra, 2.0), "a fifth from that host is cut off at once")
        other = connect_from("127.0.0.10", port)
        held.append(other)
        expect(not closed_by_peer(other, 1.0), "another address (the agent's, say) still gets a slot")
    finally:
        for sock in held:
            sock.close()


def turn_credentials_only_inside_a_call():
    """A logged-in user cannot mint relay credentials for itself: TURN credentials
    come only with a prepared call to someone who can be rung, to its parties."""
    d = Deployment()
    d.set("turn", "secret", '"attack-test-secret"')
    d.set("turn", "servers", ["127.0.0.1:3478"])  # never contacted: only the node's answers are checked
    d.start_node()
    for user in (OWNER, "mallory", "bob"):
        d.add_user(user, OWNER_PW)
    mallory, alice, bob = h.CallClient(d.node), h.CallClient(d.node), h.CallClient(d.node)
    try:
        mallory.login_presence("mallory", OWNER_PW)
        r = mallory.request(h.METHOD_TURN_CREDENTIALS)
        expect(r.cls == h.ERROR and r.error()[0] == 400 and r.get(h.ATTR_TURN_USERNAME) is None,
               "asked outside a call: 400, no credentials (%r)" % (r.error(),))
        r = mallory.request(h.METHOD_TURN_CREDENTIALS, [(h.ATTR_CALL_ID, h.text("0" * 32))])
        expect(r.cls == h.ERROR and r.error()[0] == 481, "with an invented CALL-ID: 481 (%r)" % (r.error(),))
        r = mallory.request(h.METHOD_CALL, [(h.ATTR_USER_ID, h.text(OWNER))])
        expect(r.cls == h.ERROR and r.error()[0] == 480 and r.get(h.ATTR_TURN_USERNAME) is None,
               "preparing a call to an offline user: 480, no credentials (%r)" % (r.error(),))
        alice.login_presence(OWNER, OWNER_PW)
        bob.login_presence("bob", OWNER_PW)
        prepared = alice.request(h.METHOD_CALL, [(h.ATTR_USER_ID, h.text("bob"))])
        expect(prepared.cls == h.SUCCESS and prepared.get(h.ATTR_TURN_USERNAME) is not None,
               "alice preparing a call to bob gets credentials (%r)" % (prepared.error(),))
        call_id = prepared.get(h.ATTR_CALL_ID)
        r = mallory.request(h.METHOD_TURN_CREDENTIALS, [(h.ATTR_CALL_ID, call_id)])
        expect(r.cls == h.ERROR and r.error()[0] == 481, "mallory with alice's CALL-ID: 481 (%r)" % (r.error(),))
        r = bob.request(h.METHOD_TURN_CREDENTIALS, [(h.ATTR_CALL_ID, call_id)])
        expect(r.cls == h.ERROR and r.error()[0] == 481, "bob before he is rung: 481 (%r)" % (r.error(),))
        expect(alice.request(h.METHOD_TURN_CREDENTIALS, [(h.ATTR_CALL_ID, call_id)]).cls == h.SUCCESS,
               "alice may ask once more (a lost answer)")
        r = alice.request(h.METHOD_TURN_CREDENTIALS, [(h.ATTR_CALL_ID, call_id)])
        expect(r.cls == h.ERROR and r.error()[0] == 429, "but not a third time: 429 (%r)" % (r.error(),))
    finally:
        for client in (mallory, alice, bob):
            client.close()


SCENARIOS = {
    "password_flood_does_not_lock_out_the_owner": password_flood_does_not_lock_out_the_owner,
    "register_flood_is_limited_per_source": register_flood_is_limited_per_source,
    "links_not_logged_in_are_capped_per_source": links_not_logged_in_are_capped_per_source,
    "node_full_refuses_links_with_a_notice": node_full_refuses_links_with_a_notice,
    "idle_query_links_are_closed": idle_query_links_are_closed,
    "one_sender_cannot_fill_the_voicemail_store": one_sender_cannot_fill_the_voicemail_store,
    "slow_uploads_do_not_hold_the_budget": slow_uploads_do_not_hold_the_budget,
    "lan_terminal_takes_rings_only_from_its_agent_address": lan_terminal_takes_rings_only_from_its_agent_address,
    "one_lan_host_cannot_hold_every_ring_slot": one_lan_host_cannot_hold_every_ring_slot,
    "turn_credentials_only_inside_a_call": turn_credentials_only_inside_a_call,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
