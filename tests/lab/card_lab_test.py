#!/usr/bin/env python3
"""Access cards through the NAT lab (issue 15's proof; docs/cards.md, docs/lab.md).

Run one:   sudo TSUNAGU_BUILD=build python3 tests/lab/card_lab_test.py card_lab_routes
Each scenario is its own meson test (tests/lab/meson.build, suite `lab`); exit 77 = skipped.

The lab of lablib.py (the home user kenji behind gw-home, akiko on acme-1 behind gw-acme, the
node on the public net), up without the LAN agent and DHCP (Lab.up_without_agent: acme-1 on a
static address; cards do not involve the agent), with two more coturns beside the lab's own, all
sharing the node's TURN secret, and one area table on every card:

  area kansai  (the node's [cards.areas] puts gw-home's address 203.0.113.30 here)
    internet kansai-net      relay 203.0.113.12 (A's coturn)          1 unit/min
    premium  kansai-premium  relay 203.0.113.11 (the premium coturn)  5 units/min
  area kanto   (gw-acme's address 203.0.113.20)
    internet kanto-net       relay 203.0.113.13 (B's coturn)          3 units/min
    premium  kanto-premium   relay 203.0.113.11                       5 units/min
  area clock   (chosen with TSUNAGU_CARD_AREA; tariffs that flip at 08:00 and 20:00 UTC)
    internet clock-a         relay 203.0.113.12   1, from 08:00 to 20:00: 4
    internet clock-b         relay 203.0.113.13   4, from 08:00 to 20:00: 1

The node hands a card call's caller the TURN relay of the route it debits (the access point's
turn: relay); callers use --relay-only, so the relay that carried a call is the address of the
caller's selected local candidate, and the route is the node's `result=admitted route=` line.
A "minute" is one second here ([cards] debit_interval_s = 1).

  card_lab_routes    A's terminal through A's relay, B's through B's; a card moved from B to A
                     follows its area; the time of day flips the route (TSUNAGU_TEST_CARD_CLOCK);
                     A's relay stopped: the next call goes premium in one attempt
  card_lab_ledger    10 short calls on two cards from both areas: each card's ledger equals the
                     sum over its calls of minutes x the route's tariff, exactly
  card_lab_refusals  rewritten units, another issuer's card, a revoked serial, a clone in a
                     second place while the card is in a call: each refused with its reason and
                     audited; a card running out is cut with the notice
"""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lablib as lab  # noqa: E402
from lablib import Checks, Lab, log, wait_until  # noqa: E402

RELAY_A = "203.0.113.12"
RELAY_B = "203.0.113.13"
PREMIUM = lab.TURN_IP  # the lab's own coturn, also the node's [turn] server (the callees use it)
CALL_TIMEOUT = 40
EXIT_REFUSED, EXIT_CALL_FAILED = 7, 11
TARIFF = {"kansai-net": 1, "kansai-premium": 5, "kanto-net": 3, "kanto-premium": 5}

NODE_CONFIG = [
    ("cards", "debit_interval_s", "1"),
    ("cards", "max_calls_per_card", "1"),
    ("cards.areas", '"%s/32"' % lab.HOME_WAN, '"kansai"'),
    ("cards.areas", '"%s/32"' % lab.ACME_WAN, '"kanto"'),
]


def relays(ip):
    return '["stun:%s:%d", "turn:%s:%d"]' % (ip, lab.TURN_PORT, ip, lab.TURN_PORT)


def areas_toml():
    node = lab.NODE_TLS
    return (
        '[[area]]\ncode = "kansai"\n'
        '[[area.internet]]\nname = "kansai-net"\nnode = "%s"\nrelays = %s\ncost_per_minute = 1\n'
        '[[area.premium]]\nname = "kansai-premium"\nnode = "%s"\nrelays = %s\ncost_per_minute = 5\n'
        '[[area]]\ncode = "kanto"\n'
        '[[area.internet]]\nname = "kanto-net"\nnode = "%s"\nrelays = %s\ncost_per_minute = 3\n'
        '[[area.premium]]\nname = "kanto-premium"\nnode = "%s"\nrelays = %s\ncost_per_minute = 5\n'
        '[[area]]\ncode = "clock"\n'
        '[[area.internet]]\nname = "clock-a"\nnode = "%s"\nrelays = %s\ncost_per_minute = 1\n'
        'tariff = [{ from = "08:00", to = "20:00", cost_per_minute = 4 }]\n'
        '[[area.internet]]\nname = "clock-b"\nnode = "%s"\nrelays = %s\ncost_per_minute = 4\n'
        'tariff = [{ from = "08:00", to = "20:00", cost_per_minute = 1 }]\n'
        % (node, relays(RELAY_A), node, relays(PREMIUM), node, relays(RELAY_B), node, relays(PREMIUM),
           node, relays(RELAY_A), node, relays(RELAY_B)))


class CardLab:
    """The lab up with A's and B's coturns, the area table written, and helpers to issue cards, give
    them to a terminal and call on them."""

    def __init__(self, l):
        self.l = l
        l.up_without_agent()
        self.relay_a = l.start_coturn(RELAY_A, "coturn-a")
        self.relay_b = l.start_coturn(RELAY_B, "coturn-b")
        self.areas = l.path("areas.toml")
        with open(self.areas, "w") as f:
            f.write(areas_toml())
        self.batches = 0
        self.calls = 0

    def issue(self, units, count, deployment=None):
        """`card issue`; the cards.tsv rows as dicts (serial, id, password, file)."""
        self.batches += 1
        out = self.l.path("cards-%d" % self.batches)
        self.l.sh([lab.RENDEZVOUS, "card", "-d", deployment or self.l.deployment, "issue", "--units", str(units),
                   "--areas", self.areas, "--group", str(self.batches), "--count", str(count), "--out", out])
        with open(os.path.join(out, "cards.tsv")) as f:
            rows = [line.split("\t") for line in f.read().splitlines()[1:]]
        return [dict(serial=r[0], id=r[1], password=r[2], file=r[3]) for r in rows]

    def issuer_key(self):
        return self.l.sh([lab.RENDEZVOUS, "card", "-d", self.l.deployment, "keys"]).stdout.split()[2]

    def holder(self, host, card, name, load=True):
        """A card directory of its own for `card` in `host`: loaded with `card load --issuer-key`, or
        (load=False) copied in as it is, as a forger would. Returns the environment of its calls."""
        directory = self.l.path("carddir-%s" % name)
        os.makedirs(directory)
        env = dict(self.l.terminal_env(lab.TERMINALS[host]["user"]), TSUNAGU_CARD_DIR=directory,
                   TSUNAGU_CARD_PASSWORD=card["password"])
        env.pop("TSUNAGU_CARD_AREA", None)
        env.pop("TSUNAGU_TEST_CARD_CLOCK", None)
        if load:
            self.l.sh([lab.TERMINAL, "card", "load", card["file"], "--issuer-key", self.issuer_key()], ns=host, env=env)
        else:
            shutil.copy(card["file"], os.path.join(directory, "card.card"))
        return env

    def call(self, host, callee, env, args=("--echo-test", "3"), wait=True, **extra_env):
        """`tsunagu call CALLEE --card --relay-only ARGS` in `host`; waited for unless wait=False.
        Returns (exit code or None, Proc, report dict or None)."""
        self.calls += 1
        report = self.l.path("report-card-%d.json" % self.calls)
        stdin = subprocess.PIPE if "--pipe" in args else None
        proc = self.l.spawn(host, [lab.TERMINAL, "call", callee, "--card", "--relay-only"] + list(args) +
                            ["--report", report], "card-call-%d" % self.calls, env=dict(env, **extra_env), stdin=stdin)
        if not wait:
            return None, proc, None
        code = proc.wait(CALL_TIMEOUT)
        return code, proc, lab.read_report(report)

    def admitted_routes(self):
        """The routes of the node's admissions, in order (its audit lines)."""
        return re.findall(r"event=card result=admitted .*?route=(\S+)", self.node_log())

    def node_log(self):
        return self.l.node.err() + self.l.node.out()

    def ledger(self, serial):
        return self.l.sh([lab.RENDEZVOUS, "card", "-d", self.l.deployment, "show", str(serial)]).stdout


def listen_all(l, host):
    """A persistent `tsunagu listen --auto-accept-from *` (echo calls) as the host's user."""
    return l.listen(host, ["--auto-accept-from", "*"], binary=False)


def relay_of(report):
    """The IP of the caller's local relay candidate, or None."""
    if not report or report.get("local_type") != "relay":
        return None
    return (report.get("local") or "").rsplit(":", 1)[0]


def unless(ok, proc):
    return "" if ok else " (%s)" % proc.describe(stdout=False)


def check_call(checks, c, what, code, proc, report, route, relay, kind="internet"):
    """One card call that went through `route` (debited there) and `relay` (carried it)."""
    checks.check(code == 0, "%s: the call exits 0%s" % (what, unless(code == 0, proc)))
    err = proc.err()
    checks.check("calling through %s access point %s " % (kind, route) in err,
                 "%s: LCR chose %s %s" % (what, kind, route))
    checks.check(c.admitted_routes()[-1:] == [route], "%s: the node admitted and debits route %s (audit: %s)" % (
        what, route, c.admitted_routes()[-1:]))
    checks.check(relay_of(report) == relay, "%s: the call was carried by %s's relay %s (caller's pair: %s %s)" % (
        what, route, relay, (report or {}).get("local_type"), (report or {}).get("local")))


# --------------------------------------------------------------------------

def card_lab_routes():
    with Lab("card_lab_routes", node_config=NODE_CONFIG, with_agent=False) as l:
        c = CardLab(l)
        checks = Checks()
        first, moving = c.issue(1000, 2)
        home = c.holder("home", first, "home-first")
        acme = c.holder("acme-1", moving, "acme-moving")
        listen_all(l, "home")
        listen_all(l, "acme-1")

        code, proc, report = c.call("home", "akiko", home)
        checks.check("places this terminal in area kansai" in proc.err(), "the node places the home terminal in kansai")
        check_call(checks, c, "home (area A)", code, proc, report, "kansai-net", RELAY_A)

        code, proc, report = c.call("acme-1", "kenji", acme)
        checks.check("places this terminal in area kanto" in proc.err(), "the node places acme-1 in kanto")
        check_call(checks, c, "acme-1 (area B)", code, proc, report, "kanto-net", RELAY_B)

        # The second card moves to the home terminal: it follows kansai's table.
        moved = c.holder("home", moving, "home-moved")
        code, proc, report = c.call("home", "akiko", moved)
        check_call(checks, c, "the card moved from kanto to kansai", code, proc, report, "kansai-net", RELAY_A)
        checks.check("units left" in proc.err(), "the moved card's call is paid from the same ledger entry")

        # Least cost by time of day: the same card, the terminal's clock injected (test hook).
        code, proc, report = c.call("home", "akiko", home, TSUNAGU_CARD_AREA="clock", TSUNAGU_TEST_CARD_CLOCK="03:00")
        check_call(checks, c, "03:00 (clock-a costs 1, clock-b 4)", code, proc, report, "clock-a", RELAY_A)
        code, proc, report = c.call("home", "akiko", home, TSUNAGU_CARD_AREA="clock", TSUNAGU_TEST_CARD_CLOCK="12:00")
        check_call(checks, c, "12:00 (clock-a costs 4, clock-b 1)", code, proc, report, "clock-b", RELAY_B)

        # A's relay stops: the STUN probe finds it dead before the call, and the one attempt goes premium.
        c.relay_a.stop()
        admitted_before = len(c.admitted_routes())
        code, proc, report = c.call("home", "akiko", home)
        err = proc.err()
        checks.check("access point kansai-net" in err and "relay stun:%s:%d does not answer" % (RELAY_A, lab.TURN_PORT)
                     in err, "the probe reports A's relay silent: %r" % [x for x in err.splitlines() if "card:" in x])
        check_call(checks, c, "A's relay stopped", code, proc, report, "kansai-premium", PREMIUM, kind="premium")
        checks.check(err.count("calling through") == 1 and "trying the next" not in err,
                     "the fallback took one attempt (no call tried through the dead relay)")
        checks.check(len(c.admitted_routes()) == admitted_before + 1, "the node saw exactly one card call")
        checks.finish()
        return {"NATs": "EIM / EIM", "path (caller side)": "relay per route: A .12, B .13, premium .11"}


def card_lab_ledger():
    with Lab("card_lab_ledger", node_config=NODE_CONFIG, with_agent=False) as l:
        c = CardLab(l)
        checks = Checks()
        card_a, card_b = c.issue(500, 2)
        holders = {"home": (c.holder("home", card_a, "home"), card_a, "akiko", "kansai-net"),
                   "acme-1": (c.holder("acme-1", card_b, "acme"), card_b, "kenji", "kanto-net")}
        listen_all(l, "home")
        listen_all(l, "acme-1")
        told = {}
        for n in range(10):
            host = "home" if n % 2 == 0 else "acme-1"
            env, card, callee, route = holders[host]
            code, proc, report = c.call(host, callee, env, args=("--echo-test", str(5 + 50 * (n % 3))))  # 0.1 to 2.1 s
            checks.check(code == 0 and "access point %s " % route in proc.err(),
                         "call %d from %s through %s exits 0%s" % (n + 1, host, route, unless(code == 0, proc)))
            told.setdefault(card["serial"], []).extend(int(u) for u in re.findall(r"card: (\d+) units left", proc.err()))
        for host, (env, card, callee, route) in holders.items():
            history = c.ledger(card["serial"])
            debits = re.findall(r"debit\s+(\d+)\s+left\s+(\d+).*?call (\w+) route (\S+)", history)
            per_call = {}
            for units, _, call, debit_route in debits:
                per_call.setdefault((call, debit_route), []).append(int(units))
            left = int(re.search(r"units left (\d+)", history).group(1))
            expected = sum(len(units) * TARIFF[r] for (_, r), units in per_call.items())
            checks.check(len(per_call) == 5, "card %s: debits of 5 calls in the ledger (%d)" % (card["serial"],
                                                                                                len(per_call)))
            checks.check(all(u == TARIFF[r] for (_, r), units in per_call.items() for u in units),
                         "card %s: every minute debited at its route's tariff (%s)" % (card["serial"], route))
            checks.check(500 - left == expected,
                         "card %s: issued 500 - left %d = %d = sum of minutes x tariff over its calls (%s)" % (
                             card["serial"], left, expected,
                             ", ".join("%d x %d" % (len(u), TARIFF[r]) for (_, r), u in per_call.items())))
            lefts = {500} | {int(after) for _, after, _, _ in debits}
            checks.check(told.get(card["serial"]) and set(told[card["serial"]]) <= lefts,
                         "card %s: every 'units left' its caller was told is a balance of the ledger's history (%s)"
                         % (card["serial"], sorted(set(told.get(card["serial"], [])))))
        checks.finish()
        return {"NATs": "EIM / EIM", "path (caller side)": "10 relayed card calls, ledger exact"}


def card_lab_refusals():
    with Lab("card_lab_refusals", node_config=NODE_CONFIG, with_agent=False) as l:
        c = CardLab(l)
        checks = Checks()
        rewritten, revoked, clone = c.issue(100, 3)
        listen_all(l, "acme-1")

        def refused(card, reason, name, host="home", callee="akiko", load=False):
            env = c.holder(host, card, name, load=load)
            code, proc, _ = c.call(host, callee, env)
            checks.check(code == EXIT_REFUSED and "Card Refused: " + reason in proc.err(),
                         "%s: refused through the NAT: %s (exit %s%s)" % (name, reason, code,
                                                                          unless(code == EXIT_REFUSED, proc)))

        # Units rewritten on the card (100 -> 200: key 5, uint8 0x64 -> 0xc8): the signature no longer holds.
        with open(rewritten["file"], "rb") as f:
            data = f.read()
        checks.check(data.count(b"\x05\x18\x64") == 1, "the card's units field is found once")
        forged = dict(rewritten, file=l.path("rewritten.card"))
        with open(forged["file"], "wb") as f:
            f.write(data.replace(b"\x05\x18\x64", b"\x05\x18\xc8"))
        refused(forged, "invalid: bad signature", "rewritten-units")

        # A card of another issuer (a deployment of its own, its own key).
        other = l.path("other-issuer")
        l.sh([lab.RENDEZVOUS, "init", other, "--name", "other.tsunagu.lab", "--ip", lab.NODE_IP])
        lab._edit_toml(os.path.join(other, "node.toml"), "passwords", "scrypt_log2_n", "14")
        foreign = c.issue(100, 1, deployment=other)[0]
        refused(foreign, "invalid: unknown key", "other-key")

        l.sh([lab.RENDEZVOUS, "card", "-d", l.deployment, "revoke", revoked["serial"], "--note", "lab: stolen"])
        refused(revoked, "revoked", "revoked")

        # The clone: the card in a call from home, its copy used at acme-1 at the same time.
        owner = c.holder("home", clone, "clone-owner", load=True)
        _, first, _ = c.call("home", "akiko", owner, args=("--pipe",), wait=False)
        wait_until(lambda: "connected after" in first.err() or (not first.alive() and lab.Lab._raise(
            "the clone's original call ended: %s" % first.describe(stdout=False))), CALL_TIMEOUT, 0.1,
            "the original card call to connect")
        refused(clone, "already in a call", "clone", host="acme-1", callee="taro")
        first.popen.stdin.close()
        code = first.wait(CALL_TIMEOUT)
        checks.check(code == 0, "the original call on the cloned card hangs up cleanly%s" % unless(code == 0, first))

        # Units running out: a card of 3 units at kansai-net's 1 a minute; a call that would last 10 s.
        short = c.issue(3, 1)[0]
        env = c.holder("home", short, "short", load=True)
        code, proc, _ = c.call("home", "akiko", env, args=("--echo-test", "500"))
        err = proc.err()
        checks.check("warning: the units left do not pay for the next minute" in err,
                     "the caller is warned before the last paid minute ends")
        checks.check(code == EXIT_CALL_FAILED and "Units Exhausted" in err,
                     "the node cuts the call: Units Exhausted (exit %s, %r)" % (code, err[-300:]))
        checks.check("units left 0" in c.ledger(short["serial"]), "the short card's ledger has 0 units left")
        code, proc, _ = c.call("home", "akiko", env)
        checks.check(code == EXIT_REFUSED and "Card Refused: no units left" in proc.err(),
                     "the next call on it is refused: no units left (exit %s)" % code)
        log_text = c.node_log()
        for reason in ("invalid: bad signature", "invalid: unknown key", "revoked", "already in a call",
                       "no units left"):
            checks.check(re.search(r'event=card result=refused .*reason="?%s' % re.escape(reason), log_text)
                         is not None, "the node audits the refusal: %s" % reason)
        in_use = re.search(r'event=card result=refused .*reason="already in a call".*in_use_from=(\S+)', log_text)
        checks.check(in_use is not None and lab.HOME_WAN in in_use.group(1),
                     "the in-use refusal names where the card is in use (%s)" % (in_use.group(1) if in_use else None))
        checks.finish()
        return {"NATs": "EIM / EIM", "path (caller side)": "refusals through the NATs"}


SCENARIOS = {
    "card_lab_routes": card_lab_routes,
    "card_lab_ledger": card_lab_ledger,
    "card_lab_refusals": card_lab_refusals,
}

if __name__ == "__main__":
    sys.exit(lab.run_scenarios(SCENARIOS, sys.argv))
