#!/usr/bin/env python3
"""NAT lab scenarios (suite `lab`): real NATs (nftables in network namespaces), real DHCP
(dnsmasq + tsunagu-dhcp-hook + the LAN agent), a real relay (coturn), libnice on both ends.

Run one:   sudo TSUNAGU_BUILD=build python3 tests/lab/lab_test.py punch_eim
The table: sudo TSUNAGU_BUILD=build python3 tests/lab/lab_test.py table
Each scenario is its own meson test (tests/lab/meson.build); exit 77 = skipped.

Calls between users logged in directly (home <-> acme-1, acme-1 <-> acme-2), the home gateway
renumbered, a wrong password, and the DHCP -> agent -> forwarded lookup path (a-f); then calls
to LAN extensions (`tsunagu call 4106@acme`, the callee a LAN terminal `tsunagu listen --lan`
rung by the agent): hole punched, relayed, inside the LAN, renumbered, across an agent
restart, and refused by the agent's edge policy (ext_*).
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lablib as lab  # noqa: E402
from lablib import Checks, Lab, log, wait_until  # noqa: E402

PAYLOAD_SIZE = 10 * 1000 * 1000  # 10 MB through --pipe
CALL_TIMEOUT = 60                # one whole CLI call (seconds, x SLOW)


def unless(ok, proc):
    """The process's exit status and output for a failed check's message; nothing when it passed."""
    return "" if ok else " (%s)" % proc.describe(stdout=False)


def greeting_file(l, who):
    """The callee's side of a --pipe call: a short greeting, so the caller's first byte marks call setup."""
    path = l.path("greeting-%s.txt" % who)
    with open(path, "w") as f:
        f.write("hello from %s\n" % who)
    return path


def pipe_call(l, checks, caller_host, callee_host, callee_id=None, size=PAYLOAD_SIZE, lan=False):
    """A --pipe call of `size` random bytes from caller_host to the terminal listening in callee_host
    (listen --pipe --once --auto-accept-from CALLER). Checks: both exit 0, the bytes arrive
    byte-identical, the callee's greeting arrives at the caller. Returns (caller report, callee report,
    caller Proc, callee Proc).
    lan=False: the callee is the host's user, logged in to the node; callee_id defaults to that user.
    lan=True: the callee is a LAN terminal (Lab.start_lan_terminal, `listen --lan`, no node
    login) and callee_id defaults to its extension, e.g. 4106@acme."""
    caller_user = lab.TERMINALS[caller_host]["user"]
    if lan:
        callee_id = callee_id or "%s@%s" % (lab.TERMINALS[callee_host]["ext"], lab.ACME_DOMAIN)
    else:
        callee_id = callee_id or lab.TERMINALS[callee_host]["user"]
    payload = lab.write_random(l.path("payload-%s.bin" % caller_host), size)
    caller_report, callee_report = l.path("report-caller.json"), l.path("report-callee.json")
    greeting = greeting_file(l, callee_id)
    listen_args = ["--auto-accept-from", caller_user, "--pipe", "--once", "--report", callee_report]
    if lan:
        listener = l.start_lan_terminal(callee_host, listen_args, stdin=greeting)
    else:
        listener = l.listen(callee_host, listen_args, stdin=greeting)
    caller = l.call(caller_host, callee_id, ["--pipe"], stdin=payload, report=caller_report)
    code = caller.wait(CALL_TIMEOUT)
    checks.check(code == 0, "%s's call to %s exits 0%s" % (caller_user, callee_id, unless(code == 0, caller)))
    lcode = listener.wait(20)
    checks.check(lcode == 0, "%s's `listen --once` exits 0%s" % (callee_id, unless(lcode == 0, listener)))
    if listener.alive():
        listener.stop()
    got = os.path.getsize(listener.out_path) if os.path.exists(listener.out_path) else 0
    identical = got == size and lab.sha256_file(listener.out_path) == lab.sha256_file(payload)
    checks.check(identical, "%d bytes through --pipe arrived byte-identical (%d bytes, SHA-256 compared)" % (size, got))
    with open(caller.out_path, "rb") as f, open(greeting, "rb") as g:
        checks.check(f.read() == g.read(), "the callee's greeting arrived at the caller")
    report, callee = lab.read_report(caller_report), lab.read_report(callee_report)
    checks.check(report is not None, "the caller wrote its report (call %s)" % (report or {}).get("call_id"))
    checks.check(callee is not None, "the callee wrote its report (call %s)" % (callee or {}).get("call_id"))
    check_setup_time(checks, report)
    log("  caller: %s" % " | ".join(line for line in caller.err().splitlines()
                                    if re.match(r"(connected|accepted|first byte|path changed|transferred)", line)))
    log("  callee: %s" % " | ".join(line for line in listener.err().splitlines()
                                    if re.match(r"(connected|first byte|path changed|transferred)", line)))
    return report or {}, callee or {}, caller, listener


SETUP_LIMIT_MS = 15000  # call -> first byte; fails beyond (the CLI's ICE timeout is 20 s)
SETUP_TARGET_MS = 1000  # noted beyond: see docs/lab.md, "STUN at the node plus TURN"


def check_setup_time(checks, report):
    first = (report or {}).get("first_byte_ms")
    if not isinstance(first, int):
        checks.check(False, "the caller's report has a first-byte time: %r" % (first,))
        return
    checks.check(first <= SETUP_LIMIT_MS * lab.SLOW, "call -> first byte %d ms (limit %d ms)" % (first, SETUP_LIMIT_MS))
    if first > SETUP_TARGET_MS:
        log("  note: call -> first byte %d ms is over the %d ms target (accepted after %s ms: candidate gathering, "
            "see docs/lab.md)" % (first, SETUP_TARGET_MS, report.get("accepted_ms")))


def row_of(report, caller_proc, nats):
    tp = lab.throughput_of(caller_proc.err())
    return {
        "NATs": nats,
        "path (caller side)": "%s <-> %s" % (report.get("local_type"), report.get("remote_type")),
        "caller local": report.get("local", ""),
        "caller remote": report.get("remote", ""),
        "connected ms": report.get("connected_ms"),
        "first byte ms": report.get("first_byte_ms"),
        "throughput": ("%.1f MB in %.2f s, %.0f Mbit/s" % (tp[0] / 1e6, tp[2], tp[3])) if tp else "-",
    }


def on_net(address, prefix):
    return (address or "").startswith(prefix)


def relay_address(address):
    m = re.fullmatch(re.escape(lab.TURN_IP) + r":(\d+)", address or "")
    return m is not None and lab.TURN_MIN_PORT <= int(m.group(1)) <= lab.TURN_MAX_PORT


# --------------------------------------------------------------------------
# a. home -> akiko@acme-1, both NATs endpoint-independent: hole punched, no relay

def punch_eim():
    with Lab("punch_eim", nat={"gw-acme": "eim", "gw-home": "eim"}) as l:
        l.up()
        checks = Checks()
        report, callee, caller, _ = pipe_call(l, checks, "home", "acme-1")
        types = (report.get("local_type"), report.get("remote_type"))
        checks.check(types[0] in ("srflx", "prflx") and types[1] in ("srflx", "prflx"),
                     "the caller's selected pair is reflexive on both ends (hole punched): %s <-> %s" % types)
        checks.check("relay" not in types and "relay" not in (callee.get("local_type"), callee.get("remote_type")),
                     "no relay on either side (callee: %s <-> %s)" % (callee.get("local_type"),
                                                                      callee.get("remote_type")))
        checks.check(on_net(report.get("local"), lab.HOME_WAN + ":") and on_net(report.get("remote"),
                                                                                 lab.ACME_WAN + ":"),
                     "the pair runs between the two gateways' public addresses: %s <-> %s" % (
                         report.get("local"), report.get("remote")))
        checks.finish()
        return row_of(report, caller, "EIM / EIM")


# --------------------------------------------------------------------------
# b. both NATs symmetric: the call goes through coturn

def relay_symmetric():
    with Lab("relay_symmetric", nat={"gw-acme": "symmetric", "gw-home": "symmetric"}) as l:
        l.up()
        checks = Checks()
        report, callee, caller, _ = pipe_call(l, checks, "home", "acme-1")
        types = (report.get("local_type"), report.get("remote_type"))
        checks.check("relay" in types, "the caller's selected pair uses a coturn relay candidate: %s <-> %s" % types)
        checks.check(relay_address(report.get("local")) or relay_address(report.get("remote")),
                     "a pair address is a coturn relay port on %s (%d-%d): %s <-> %s" % (
                         lab.TURN_IP, lab.TURN_MIN_PORT, lab.TURN_MAX_PORT, report.get("local"),
                         report.get("remote")))
        checks.check("relay" in (callee.get("local_type"), callee.get("remote_type")),
                     "the callee's pair goes through the relay too: %s <-> %s" % (callee.get("local_type"),
                                                                                  callee.get("remote_type")))
        checks.check(l.coturn.alive(), "coturn is still running")
        checks.finish()
        return row_of(report, caller, "symmetric / symmetric")


# --------------------------------------------------------------------------
# c. akiko@acme-1 -> taro@acme-2, both inside the acme LAN: a host pair

def lan_host_pair():
    with Lab("lan_host_pair") as l:
        l.up()
        checks = Checks()
        report, callee, caller, _ = pipe_call(l, checks, "acme-1", "acme-2")
        types = (report.get("local_type"), report.get("remote_type"))
        checks.check(types == ("host", "host"), "the selected pair is host <-> host: %s <-> %s" % types)
        checks.check(report.get("local", "").split(":")[0] == l.addresses["acme-1"] and
                     report.get("remote", "").split(":")[0] == l.addresses["acme-2"],
                     "between the two DHCP addresses %s and %s: %s <-> %s" % (
                         l.addresses["acme-1"], l.addresses["acme-2"], report.get("local"), report.get("remote")))
        checks.finish()
        return row_of(report, caller, "inside the acme LAN")


# --------------------------------------------------------------------------
# d. issue scenario 6: gw-home's public address changes; the terminal reconnects by itself,
#    lookups show the new address, a call reaches it

def home_address_change():
    with Lab("home_address_change") as l:
        l.up()
        checks = Checks()
        kenji = "kenji"
        # kenji stays online (no --once: `listen` reconnects by itself) and takes data calls from akiko.
        greeting = greeting_file(l, kenji)
        listener = l.listen("home", ["--auto-accept-from", "akiko", "--pipe"], stdin=greeting)
        seen = re.findall(r"the node sees you at ([0-9.]+):(\d+)", listener.err())
        checks.check(seen and seen[-1][0] == lab.HOME_WAN, "kenji is online, seen at gw-home's %s (%s)" % (
            lab.HOME_WAN, seen[-1] if seen else None))
        code, row, _ = l.whereis("acme-1", kenji)
        checks.check(code == 0 and row and (row.get("observed") or "").startswith(lab.HOME_WAN + ":"),
                     "whereis kenji (from acme-1): observed %s" % (row or {}).get("observed"))

        renumbered = time.monotonic()
        l.renumber_uplink("gw-home", lab.HOME_WAN_RENUMBERED)
        log("  gw-home's uplink renumbered %s -> %s" % (lab.HOME_WAN, lab.HOME_WAN_RENUMBERED))
        # Bounded: one keepalive interval to notice, plus the reconnect backoff.
        bound = l.keepalive_interval * 3 + 10
        l.wait_listening(listener, kenji, count=2, timeout=bound)
        reconnected_s = time.monotonic() - renumbered
        seen = re.findall(r"the node sees you at ([0-9.]+):(\d+)", listener.err())
        checks.check(seen[-1][0] == lab.HOME_WAN_RENUMBERED,
                     "kenji's terminal reconnected by itself %.1f s after the change, seen at %s:%s" % (
                         reconnected_s, seen[-1][0], seen[-1][1]))

        def follows():
            code, row, _ = l.whereis("acme-1", kenji)
            return row if code == 0 and row and (row.get("observed") or "").startswith(
                lab.HOME_WAN_RENUMBERED + ":") else None
        row = wait_until(follows, 10, 0.2, "whereis kenji to show %s" % lab.HOME_WAN_RENUMBERED)
        checks.check(True, "whereis kenji (from acme-1) follows: observed %s, online %s" % (
            row.get("observed"), row.get("online")))

        # akiko calls kenji at his new address.
        payload = lab.write_random(l.path("payload.bin"), 2 * 1000 * 1000)
        report_path = l.path("report-caller.json")
        caller = l.call("acme-1", kenji, ["--pipe"], stdin=payload, report=report_path)
        code = caller.wait(CALL_TIMEOUT)
        checks.check(code == 0, "akiko's call reaches kenji after the change (%s)" % caller.describe(stdout=False))
        wait_until(lambda: "call ended" in listener.err() or not listener.alive(), 15, 0.05,
                   "kenji's listener to see the call end")
        got = os.path.getsize(listener.out_path)
        checks.check(got == os.path.getsize(payload) and lab.sha256_file(listener.out_path) ==
                     lab.sha256_file(payload), "2 MB arrived byte-identical at kenji (%d bytes)" % got)
        report = lab.read_report(report_path) or {}
        check_setup_time(checks, report)
        checks.check(on_net(report.get("remote"), lab.HOME_WAN_RENUMBERED + ":"),
                     "akiko's pair reaches kenji at the new address: %s %s <-> %s %s" % (
                         report.get("local_type"), report.get("local"), report.get("remote_type"),
                         report.get("remote")))
        checks.check(listener.alive(), "kenji's listener keeps listening after the call")
        checks.finish()
        row = row_of(report, caller, "EIM / EIM, gw-home renumbered")
        row["path (caller side)"] += " (reconnected in %.1f s)" % reconnected_s
        return row


# --------------------------------------------------------------------------
# e. issue scenario 7 (its wrong-password half): the caller gets nothing, the callee is not rung

def wrong_password():
    with Lab("wrong_password") as l:
        l.up()
        checks = Checks()
        os.makedirs(l.path("inbox"), exist_ok=True)
        listener = l.listen("acme-1", ["--auto-accept-from", "*", "--recv", l.path("inbox")])
        for attempt in range(1, 4):
            caller = l.call("home", "akiko", ["--echo-test", "3"], binary=False, password="not-kenjis-password")
            code = caller.wait(30)
            checks.check(code == lab.EXIT_AUTH_FAILED,
                         "attempt %d with a wrong password: exit %d (authentication failed) (%s)" % (
                             attempt, lab.EXIT_AUTH_FAILED, caller.describe()))
            checks.check(caller.out() == "" and "ringing" not in caller.err() and "accepted" not in caller.err(),
                         "attempt %d: nothing but the refusal: %r" % (attempt, caller.err().strip()[-200:]))
        time.sleep(0.5)
        rung = [line for line in listener.err().splitlines()
                if "call from" in line or "incoming" in line or "accepting" in line]
        checks.check(not rung, "akiko's terminal was never rung: %r" % rung)
        checks.check(listener.alive(), "akiko's listener is still online")
        whereis_code, row, _ = l.whereis("acme-2", "kenji")
        checks.check(whereis_code == 4 or (row and not row.get("online")),
                     "kenji never appeared online (whereis from acme-2: exit %d, %r)" % (whereis_code, row))
        # The same caller with the right password is rung and connects: the refusal was the password.
        caller = l.call("home", "akiko", ["--echo-test", "3"], binary=False, report=l.path("report.json"))
        code = caller.wait(CALL_TIMEOUT)
        checks.check(code == 0, "with the right password the call connects (%s)" % caller.describe())
        checks.check("accepting a call from kenji" in listener.err(), "and akiko's terminal was rung by kenji")
        checks.finish()
        report = lab.read_report(l.path("report.json")) or {}
        return {"NATs": "EIM / EIM", "path (caller side)": "wrong password: exit 5 x3, no ring; then %s <-> %s" % (
            report.get("local_type"), report.get("remote_type")), "caller local": report.get("local", ""),
            "caller remote": report.get("remote", ""), "connected ms": report.get("connected_ms"),
            "first byte ms": report.get("first_byte_ms"), "throughput": "-"}


# --------------------------------------------------------------------------
# f. DHCP -> hook -> agent table -> forwarded lookup from home; renumbering followed

def lease_row(l, ext, address):
    return re.search(r"^%s\s+\S+\s+%s\s" % (re.escape(ext), re.escape(address)), l.agent_list(), re.M)


def dhcp_lookup():
    with Lab("dhcp_lookup") as l:
        l.up(dhcp_hosts=())
        checks = Checks()
        ext, target = lab.TERMINALS["acme-1"]["ext"], "%s@%s" % (lab.TERMINALS["acme-1"]["ext"], lab.ACME_DOMAIN)
        l.dhcp_start("acme-1")
        first, lease_ms = l.dhcp_wait_bound("acme-1")
        checks.check(first.startswith("10.77.0."), "acme-1 got %s from dnsmasq in %.0f ms" % (first, lease_ms))
        start = lab.now_ms()
        wait_until(lambda: lease_row(l, ext, first), 5, 0.05, "the agent's table to show %s at %s" % (ext, first))
        table_ms = lab.now_ms() - start
        checks.check(True, "tsunagu-lan-agent list shows %s at %s (%.0f ms after the lease)" % (ext, first, table_ms))

        def lookup_gives(address):
            code, row, _ = l.whereis("home", target)
            return row if code == 0 and row and row.get("lease") == [address] and row.get("agent") == "acme" else None
        start = lab.now_ms()
        row = wait_until(lambda: lookup_gives(first), 5, 0.05, "whereis %s from home to give %s" % (target, first))
        first_lookup_ms = lab.now_ms() - start
        checks.check(True, "whereis %s from home (kenji, behind gw-home): lease %s from agent %s, expires %s" % (
            target, row.get("lease"), row.get("agent"), row.get("lease_expires")))

        # Renumbering: acme-1 releases its lease and comes back asking for another address.
        released = lab.now_ms()
        code = l.dhcp_release("acme-1")
        checks.check(code == 0, "udhcpc released the lease and exited (SIGTERM, -R): exit %s" % code)

        def no_lease():
            code, row, _ = l.whereis("home", target)
            return code == 4 and row and row.get("error") == 481
        wait_until(no_lease, 5, 0.05, "whereis %s to say 481 (no live lease) after the release" % target)
        checks.check(True, "after the release whereis %s: 481 no live lease, exit 4 (%.0f ms)" % (
            target, lab.now_ms() - released))
        time.sleep(max(0, 1.1 - (lab.now_ms() - released) / 1000))  # a later second than the release
        want = next(a for a in ("10.77.0.77", "10.77.0.78") if a != first)
        l.dhcp_start("acme-1", request=want)
        second, lease_ms = l.dhcp_wait_bound("acme-1")
        checks.check(second != first, "acme-1 came back at a new address %s (was %s, asked for %s)" % (
            second, first, want))
        start = lab.now_ms()
        wait_until(lambda: lease_row(l, ext, second), 5, 0.05, "the agent's table to show %s at %s" % (ext, second))
        wait_until(lambda: lookup_gives(second), 5, 0.05, "whereis %s to follow to %s" % (target, second))
        follow_ms = lab.now_ms() - start
        checks.check(True, "table and whereis %s follow to %s within %.0f ms of the new lease" % (
            target, second, follow_ms))
        code, row, _ = l.whereis("home", target)
        checks.check(row and first not in row.get("lease", []), "the old address %s is gone: %r" % (first, row))
        # A renewal (udhcpc SIGUSR1) keeps it.
        os.unlink(l.path("bound-acme-1"))
        l.dhcp["acme-1"].signal(10)  # SIGUSR1: renew
        renewed, _ = l.dhcp_wait_bound("acme-1")
        checks.check(renewed == second and lookup_gives(second),
                     "after a renewal (udhcpc SIGUSR1) whereis still gives %s" % second)
        checks.finish()
        return {"NATs": "EIM / EIM", "path (caller side)": "lookup %s: %s, then %s" % (target, first, second),
                "caller local": "(whereis from home)", "caller remote": "agent acme",
                "connected ms": "-", "first byte ms": "-",
                "throughput": "table %.0f ms, lookup %.0f ms, follow %.0f ms" % (table_ms, first_lookup_ms,
                                                                                  follow_ms)}


# --------------------------------------------------------------------------
# Calls to LAN extensions: the callee is a LAN terminal (`tsunagu listen --lan`, no node login),
# rung by the agent at the address of its DHCP lease.

def agent_rang(l, address):
    """The agent's log line for a ring it passed to the LAN terminal at ADDRESS:7480."""
    return "passing it to the terminal at %s:%d" % (address, l.LAN_TERMINAL_PORT) in l.agent_log()


def check_agent_rang(checks, l, ext, host):
    address = l.addresses[host]
    checks.check(agent_rang(l, address), "the agent passed the ring for %s to the LAN terminal at %s:%d" % (
        ext, address, l.LAN_TERMINAL_PORT))


def ext_row(report, caller_proc, nats, target):
    row = row_of(report, caller_proc, nats)
    row["path (caller side)"] = "%s: %s" % (target, row["path (caller side)"])
    return row


# 1. home calls 4106@acme, both NATs endpoint-independent: hole punched, no relay

def ext_punch_eim():
    with Lab("ext_punch_eim", nat={"gw-acme": "eim", "gw-home": "eim"}) as l:
        l.up()
        checks = Checks()
        report, callee, caller, _ = pipe_call(l, checks, "home", "acme-1", lan=True)
        check_agent_rang(checks, l, "4106@acme", "acme-1")
        types = (report.get("local_type"), report.get("remote_type"))
        checks.check(types[0] in ("srflx", "prflx") and types[1] in ("srflx", "prflx"),
                     "the caller's selected pair is reflexive on both ends (hole punched): %s <-> %s" % types)
        checks.check("relay" not in types and "relay" not in (callee.get("local_type"), callee.get("remote_type")),
                     "no relay on either side (the LAN terminal: %s <-> %s)" % (callee.get("local_type"),
                                                                                callee.get("remote_type")))
        checks.check(on_net(report.get("local"), lab.HOME_WAN + ":") and on_net(report.get("remote"),
                                                                                 lab.ACME_WAN + ":"),
                     "the pair runs between the two gateways' public addresses: %s <-> %s" % (
                         report.get("local"), report.get("remote")))
        checks.finish()
        return ext_row(report, caller, "EIM / EIM", "4106@acme")


# 2. both NATs symmetric: the call to 4106@acme goes through coturn

def ext_relay_symmetric():
    with Lab("ext_relay_symmetric", nat={"gw-acme": "symmetric", "gw-home": "symmetric"}) as l:
        l.up()
        checks = Checks()
        report, callee, caller, _ = pipe_call(l, checks, "home", "acme-1", lan=True)
        check_agent_rang(checks, l, "4106@acme", "acme-1")
        types = (report.get("local_type"), report.get("remote_type"))
        checks.check("relay" in types, "the caller's selected pair uses a coturn relay candidate: %s <-> %s" % types)
        checks.check(relay_address(report.get("local")) or relay_address(report.get("remote")),
                     "a pair address is a coturn relay port on %s (%d-%d): %s <-> %s" % (
                         lab.TURN_IP, lab.TURN_MIN_PORT, lab.TURN_MAX_PORT, report.get("local"),
                         report.get("remote")))
        checks.check("relay" in (callee.get("local_type"), callee.get("remote_type")),
                     "the LAN terminal's pair goes through the relay too (TURN settings came in the ring): "
                     "%s <-> %s" % (callee.get("local_type"), callee.get("remote_type")))
        checks.check(l.coturn.alive(), "coturn is still running")
        checks.finish()
        return ext_row(report, caller, "symmetric / symmetric", "4106@acme")


# 3. akiko (logged in on acme-1) calls 4107@acme, acme-2's LAN terminal: a host pair inside the LAN

def ext_lan_host_pair():
    with Lab("ext_lan_host_pair") as l:
        l.up()
        checks = Checks()
        report, callee, caller, _ = pipe_call(l, checks, "acme-1", "acme-2", lan=True)
        check_agent_rang(checks, l, "4107@acme", "acme-2")
        types = (report.get("local_type"), report.get("remote_type"))
        checks.check(types == ("host", "host"), "the selected pair is host <-> host: %s <-> %s" % types)
        checks.check(report.get("local", "").split(":")[0] == l.addresses["acme-1"] and
                     report.get("remote", "").split(":")[0] == l.addresses["acme-2"],
                     "between the two DHCP addresses %s and %s: %s <-> %s" % (
                         l.addresses["acme-1"], l.addresses["acme-2"], report.get("local"), report.get("remote")))
        checks.finish()
        return ext_row(report, caller, "inside the acme LAN", "4107@acme")


# Helpers for the scenarios below: a LAN terminal that stays up across several calls (bound to
# 0.0.0.0:7480, no --once), each call a --pipe of `size` bytes appended to its stdout file.

EXT_CALL_SIZE = 2 * 1000 * 1000


def start_lasting_lan_terminal(l, host, accept_from="*"):
    """`listen --lan` with --pipe and stdin /dev/null (its side sends nothing: the caller's first
    byte is the terminal's end-of-stream, right after ICE connects), no --once."""
    return l.start_lan_terminal(host, ["--auto-accept-from", accept_from, "--pipe",
                                       "--report", l.path("report-lan-%s.json" % host)])


def ext_call(l, checks, caller_host, target, listener, label, size=EXT_CALL_SIZE):
    """One --pipe call of `size` random bytes to the lasting LAN terminal `listener`; checks exit 0
    and that exactly those bytes were appended to the terminal's output. Returns (report, caller)."""
    payload = lab.write_random(l.path("payload-%s.bin" % label), size)
    report_path = l.path("report-%s.json" % label)
    before = os.path.getsize(listener.out_path)
    caller = l.call(caller_host, target, ["--pipe"], stdin=payload, report=report_path)
    code = caller.wait(CALL_TIMEOUT)
    checks.check(code == 0, "%s: %s's call to %s exits 0%s" % (label, lab.TERMINALS[caller_host]["user"], target,
                                                               unless(code == 0, caller)))
    # The caller ends once the terminal acknowledged the end of its stream (all written).
    with open(listener.out_path, "rb") as f:
        f.seek(before)
        got = f.read()
    with open(payload, "rb") as f:
        sent = f.read()
    checks.check(got == sent, "%s: %d bytes arrived byte-identical at the LAN terminal (%d)" % (label, size, len(got)))
    report = lab.read_report(report_path) or {}
    check_setup_time(checks, report)
    log("  %s: %s %s <-> %s %s, connected %s ms, first byte %s ms" % (
        label, report.get("local_type"), report.get("local"), report.get("remote_type"), report.get("remote"),
        report.get("connected_ms"), report.get("first_byte_ms")))
    return report, caller


def renumber_lease(l, checks, host):
    """`host` releases its lease (udhcpc -R) and comes back asking for another address in a later
    second (the table orders events by time). Returns (old, new)."""
    old = l.addresses[host]
    released = time.monotonic()
    code = l.dhcp_release(host)
    checks.check(code == 0, "%s's udhcpc released %s and exited: exit %s" % (host, old, code))
    time.sleep(max(0.0, 1.1 - (time.monotonic() - released)))
    want = next(a for a in ("10.77.0.77", "10.77.0.78") if a != old)
    l.dhcp_start(host, request=want)
    new, lease_ms = l.dhcp_wait_bound(host)
    checks.check(new != old, "%s came back at a new address %s (was %s, asked for %s) in %.0f ms" % (
        host, new, old, want, lease_ms))
    return old, new


def lookup_gives(l, target, address, from_host="home"):
    code, row, _ = l.whereis(from_host, target)
    return row if code == 0 and row and row.get("lease") == [address] and row.get("agent") == "acme" else None


# 4. Renumbering: acme-1's lease is released, it gets another address; the next call to 4106@acme
#    reaches it there (the LAN terminal keeps running, bound to 0.0.0.0:7480)

def ext_renumbered():
    with Lab("ext_renumbered") as l:
        l.up()
        checks = Checks()
        ext, target = lab.TERMINALS["acme-1"]["ext"], "4106@acme"
        listener = start_lasting_lan_terminal(l, "acme-1")
        # Before: taro (logged in on acme-2) calls 4106@acme: a host pair to acme-1's first address.
        report, _ = ext_call(l, checks, "acme-2", target, listener, "before")
        old = l.addresses["acme-1"]
        checks.check(agent_rang(l, old) and on_net(report.get("remote"), old + ":"),
                     "before: rung at %s:%d, taro's pair reaches %s (%s)" % (old, l.LAN_TERMINAL_PORT, old,
                                                                            report.get("remote")))
        old, new = renumber_lease(l, checks, "acme-1")
        start = lab.now_ms()
        wait_until(lambda: lease_row(l, ext, new) and lookup_gives(l, target, new), 5, 0.05,
                   "the agent's table and whereis %s to follow to %s" % (target, new))
        follow_ms = lab.now_ms() - start
        checks.check(True, "the table and whereis %s (from home) follow to %s within %.0f ms" % (target, new,
                                                                                                 follow_ms))
        checks.check(listener.alive(), "the LAN terminal (bound to 0.0.0.0:%d) kept running" % l.LAN_TERMINAL_PORT)
        # After: the same call reaches it at the new address; then home calls it through both NATs.
        report, _ = ext_call(l, checks, "acme-2", target, listener, "after")
        checks.check(agent_rang(l, new), "after: the agent rang the terminal at the new address %s:%d" % (
            new, l.LAN_TERMINAL_PORT))
        checks.check((report.get("local_type"), report.get("remote_type")) == ("host", "host") and
                     on_net(report.get("remote"), new + ":"),
                     "after: taro's pair is host <-> host to the new address %s: %s <-> %s" % (
                         new, report.get("local"), report.get("remote")))
        report_home, caller_home = ext_call(l, checks, "home", target, listener, "after, from home",
                                            size=PAYLOAD_SIZE)
        types = (report_home.get("local_type"), report_home.get("remote_type"))
        checks.check("relay" not in types and on_net(report_home.get("remote"), lab.ACME_WAN + ":"),
                     "after, from home: hole punched to gw-acme: %s %s <-> %s %s" % (
                         types[0], report_home.get("local"), types[1], report_home.get("remote")))
        checks.finish()
        row = ext_row(report_home, caller_home, "EIM / EIM, acme-1 renumbered", target)
        row["path (caller side)"] += " (%s -> %s; from acme-2 host <-> host %s)" % (old, new, report.get("remote"))
        return row


# 5. The agent is killed and started again while leases change and calls are placed

def spooled_bytes(l):
    spool = os.path.join(os.path.dirname(l.agent_config), "spool")
    total = 0
    for root, _dirs, files in os.walk(spool):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def ext_agent_restart():
    with Lab("ext_agent_restart") as l:
        l.up(dhcp_hosts=("acme-1",))
        checks = Checks()
        target = "4106@acme"
        listener = start_lasting_lan_terminal(l, "acme-1", accept_from="kenji")
        ext_call(l, checks, "home", target, listener, "before the restart")
        first_pid = l.agent.pid
        code = l.kill_agent()
        checks.check(code == -9, "the agent (pid %d) was killed (SIGKILL): exit %s" % (first_pid, code))

        # A call placed while the agent is down: refused at once, nothing rung.
        started = lab.now_ms()
        caller = l.call("home", target, ["--echo-test", "3"], binary=False)
        code = caller.wait(30)
        refusal = caller.err().strip().splitlines()[-1:] or [""]
        checks.check(code == 4, "a call to %s while the agent is down: exit 4 after %.0f ms (%s)" % (
            target, lab.now_ms() - started, refusal[0]))

        # Leases change while it is down: acme-1 releases and takes another address, acme-2 gets
        # its first lease. dnsmasq runs the hook for each; the hook finds no agent and spools.
        before_spool = spooled_bytes(l)
        old, new = renumber_lease(l, checks, "acme-1")
        l.dhcp_start("acme-2")
        acme2, _ = l.dhcp_wait_bound("acme-2")
        # dnsmasq runs the hook after each lease change: wait until the spool grew and stayed put for 0.5 s.
        seen = {"size": -1, "since": time.monotonic()}

        def spool_settled():
            size = spooled_bytes(l)
            if size != seen["size"]:
                seen.update(size=size, since=time.monotonic())
            return size > before_spool and time.monotonic() - seen["since"] >= 0.5
        wait_until(spool_settled, 10, 0.05, "the hook to spool the lease events")
        checks.check(True, "while the agent was down: acme-1 %s -> %s, acme-2 leased %s; the hook spooled %d bytes" % (
            old, new, acme2, spooled_bytes(l) - before_spool))

        linked_ms = l.run_agent()
        checks.check(l.agent.pid != first_pid, "the agent started again (pid %d) and linked to the node in %.0f ms" % (
            l.agent.pid, linked_ms))
        start = lab.now_ms()
        wait_until(lambda: lease_row(l, "4106", new) and lease_row(l, "4107", acme2), 10, 0.05,
                   "the agent's table to show the leases made while it was down")
        table = l.agent_list()
        checks.check(not lease_row(l, "4106", old), "the table has 4106 at %s and 4107 at %s (made while the agent "
                     "was down), 4106's old %s gone (%.0f ms after start):\n%s" % (new, acme2, old,
                                                                                  lab.now_ms() - start, table.rstrip()))
        replayed = re.findall(r"spool \S+: replayed (\d+) event", l.agent_log())
        checks.check(replayed and sum(int(n) for n in replayed) >= 3,
                     "the agent replayed the spool: %s event(s) (release + lease + lease)" % "+".join(replayed))
        attempts = []

        def lookups():
            began = lab.now_ms()
            code, row, _ = l.whereis("home", "4107@acme")
            attempts.append("exit %d %s in %.0f ms" % (code, (row or {}).get("lease") or (row or {}).get("error"),
                                                      lab.now_ms() - began))
            return code == 0 and row and row.get("lease") == [acme2] and lookup_gives(l, target, new)
        wait_until(lookups, 10, 0.05, "lookups through the restarted agent")
        checks.check(True, "lookups resume: whereis 4107@acme -> %s, 4106@acme -> %s from home, %.0f ms after "
                     "the agent started (whereis 4107@acme: %s)" % (acme2, new, lab.now_ms() - start,
                                                                     "; ".join(attempts)))
        report, caller = ext_call(l, checks, "home", target, listener, "after the restart", size=PAYLOAD_SIZE)
        checks.check(agent_rang(l, new), "the restarted agent rang the LAN terminal at %s:%d" % (
            new, l.LAN_TERMINAL_PORT))
        checks.check(listener.alive(), "the LAN terminal kept listening through the agent's restart")
        checks.finish()
        row = ext_row(report, caller, "EIM / EIM, agent killed + restarted", target)
        row["path (caller side)"] += " (relinked in %.0f ms; 4106 %s -> %s, 4107 %s spooled)" % (linked_ms, old, new,
                                                                                                 acme2)
        return row


# 7 (policy half). The agent's edge policy keeps 4107 inside: callers through the node are refused
#    with the reason, the LAN terminal is never rung; 4106 (no rule) is reachable from home.

POLICY_REASON = "Forbidden: this extension cannot be reached from outside"
EXIT_POLICY = 7


def ext_policy_refused():
    policy = """[[policy.rule]]
extensions = ["4107"]
deny_callers = ["*"]
"""
    with Lab("ext_policy_refused", policy=policy) as l:
        l.up()
        checks = Checks()
        kept_inside = l.start_lan_terminal("acme-2", ["--auto-accept-from", "*", "--pipe",
                                                      "--report", l.path("report-4107.json")])
        refusals = []
        for caller_host in ("home", "acme-1"):
            started = lab.now_ms()
            caller = l.call(caller_host, "4107@acme", ["--echo-test", "3"], binary=False)
            code = caller.wait(30)
            elapsed = lab.now_ms() - started
            err = caller.err()
            user = lab.TERMINALS[caller_host]["user"]
            checks.check(code == EXIT_POLICY, "%s (%s) calls 4107@acme: exit %d after %.0f ms (%s)" % (
                user, caller_host, EXIT_POLICY, elapsed, caller.describe()))
            checks.check(POLICY_REASON in err and caller.out() == "",
                         "%s is told why: %r" % (user, err.strip().splitlines()[-1:]))
            refusals.append("%s exit %s" % (user, code))
        time.sleep(0.3)
        rung = [line for line in kept_inside.err().splitlines()
                if "call from" in line or "incoming" in line or "accepting" in line]
        checks.check(not rung, "4107's LAN terminal never logged a ring: %r" % rung)
        checks.check(not agent_rang(l, l.addresses["acme-2"]), "the agent never opened a connection to 4107's "
                     "terminal at %s" % l.addresses["acme-2"])
        checks.check(kept_inside.alive(), "4107's LAN terminal is still listening")
        # The same path to an extension without a rule connects: the refusal was the policy.
        report_path = l.path("report-4106.json")
        l.start_lan_terminal("acme-1", ["--auto-accept-from", "kenji", "--pipe", "--once"])
        caller = l.call("home", "4106@acme", ["--echo-test", "3"], binary=False, report=report_path)
        code = caller.wait(CALL_TIMEOUT)
        checks.check(code == 0, "kenji's call to 4106@acme (no rule) connects (%s)" % caller.describe())
        checks.finish()
        report = lab.read_report(report_path) or {}
        return {"NATs": "EIM / EIM", "path (caller side)": "4107@acme: exit 7 (%s), no ring; 4106@acme: %s <-> %s" % (
            ", ".join(refusals), report.get("local_type"), report.get("remote_type")),
            "caller local": report.get("local", ""), "caller remote": report.get("remote", ""),
            "connected ms": report.get("connected_ms"), "first byte ms": report.get("first_byte_ms"),
            "throughput": "-"}


# --------------------------------------------------------------------------
# Access cards (docs/cards.md): the home terminal calls on a card whose area
# lists two access points, the cheaper one unreachable; least-cost routing
# falls back to the node, the call completes and the ledger is debited.

def card_fallback():
    with Lab("card_fallback", nat={"gw-acme": "eim", "gw-home": "eim"}) as l:
        l.up()
        checks = Checks()
        areas = l.path("areas.toml")
        with open(areas, "w") as f:
            f.write('[[area]]\ncode = "home"\n'
                    '[[area.internet]]\nname = "home-closed"\nnode = "%s:7499"\ncost_per_minute = 1\n'
                    '[[area.internet]]\nname = "home-node"\nnode = "%s"\ncost_per_minute = 2\n'
                    % (lab.NODE_IP, lab.NODE_TLS))
        out = l.path("cards")
        l.sh([lab.RENDEZVOUS, "card", "-d", l.deployment, "issue", "--units", "50", "--areas", areas,
              "--group", "1", "--out", out])
        with open(os.path.join(out, "cards.tsv")) as f:
            serial, _, password, card_file = f.read().splitlines()[1].split("\t")
        key = l.sh([lab.RENDEZVOUS, "card", "-d", l.deployment, "keys"]).stdout.split()[2]
        card_env = dict(TSUNAGU_CARD_DIR=l.path("home-cards"), TSUNAGU_CARD_AREA="home",
                        TSUNAGU_CARD_PASSWORD=password)
        env = dict(l.terminal_env("kenji"), **card_env)
        loaded = l.sh([lab.TERMINAL, "card", "load", card_file, "--issuer-key", key], ns="home", env=env)
        checks.check("verified and kept" in loaded.stdout, "the home terminal loads and verifies the card")
        payload = lab.write_random(l.path("payload-card.bin"), 64 * 1024)
        greeting = greeting_file(l, "akiko")
        listener = l.listen("acme-1", ["--auto-accept-from", "kenji", "--pipe", "--once"], stdin=greeting)
        caller = l.spawn("home", [lab.TERMINAL, "call", "akiko", "--card", "--pipe"], "call-card-kenji", env=env,
                         stdin=payload, binary_stdout=True)
        code = caller.wait(CALL_TIMEOUT)
        checks.check(code == 0, "kenji's call on the card exits 0%s" % unless(code == 0, caller))
        checks.check("access point home-closed" in caller.err() and ("does not answer" in caller.err()
                     or "unreachable; trying the next" in caller.err()),
                     "LCR tried the cheaper, unreachable access point first and fell back")
        checks.check("card: 50 units left" in caller.err() and "card: 48 units left" in caller.err(),
                     "the caller was told 50 units, then 48 after the first minute's debit")
        lcode = listener.wait(20)
        checks.check(lcode == 0, "akiko's `listen --once` exits 0%s" % unless(lcode == 0, listener))
        got = os.path.getsize(listener.out_path) if os.path.exists(listener.out_path) else 0
        checks.check(got == 64 * 1024 and lab.sha256_file(listener.out_path) == lab.sha256_file(payload),
                     "64 KiB through the card call arrived byte-identical")
        ledger = l.sh([lab.RENDEZVOUS, "card", "-d", l.deployment, "show", serial]).stdout
        checks.check("debit  2  left 48" in ledger and "route home-node" in ledger,
                     "the ledger has one debit of 2 units on route home-node")
        checks.finish()


SCENARIOS = {
    "punch_eim": punch_eim,
    "relay_symmetric": relay_symmetric,
    "lan_host_pair": lan_host_pair,
    "home_address_change": home_address_change,
    "wrong_password": wrong_password,
    "dhcp_lookup": dhcp_lookup,
    "ext_punch_eim": ext_punch_eim,
    "ext_relay_symmetric": ext_relay_symmetric,
    "ext_lan_host_pair": ext_lan_host_pair,
    "ext_renumbered": ext_renumbered,
    "ext_agent_restart": ext_agent_restart,
    "ext_policy_refused": ext_policy_refused,
    "card_fallback": card_fallback,
}

if __name__ == "__main__":
    sys.exit(lab.run_scenarios(SCENARIOS, sys.argv))
