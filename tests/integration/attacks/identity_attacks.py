#!/usr/bin/env python3
"""Identity attacks (issue 11, docs/security.md "Identities"): a stranger on the
internet with open registration, and a malicious logged-in user, against a real
tsunagu-rendezvous, its admin commands and the `tsunagu` CLI.

Run one scenario:  TSUNAGU_BUILD=build python3 identity_attacks.py SCENARIO
Each scenario is its own meson test (attacks/meson.build); exit 77 = skipped.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import harness as h  # noqa: E402
from harness import Deployment, TestFailure, log  # noqa: E402

PASSWORD = "identity-pw-1"
EXIT_USER_EXISTS = 4


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    log("  ok:", message)


def enroll(d, name, domains=(), prefixes=()):
    args = ["agent", "-d", d.dir, "enroll", name, "--out", d.path("bundle-" + name)]
    for domain in domains:
        args += ["--domain", domain]
    for prefix in prefixes:
        args += ["--prefix", prefix]
    return d.admin(args)


def account_cannot_take_an_extension_id():
    """IDs inside an enrolled domain or number prefix belong to its agent:
    neither open registration nor `user add` makes them accounts, and a domain
    that accounts already use is not enrolled until they are gone."""
    d = Deployment(node__open_registration=True)
    r = enroll(d, "acme", ["acme"], ["+81-6-1234-"])
    expect(r.code == 0, "agent acme is enrolled for domain acme and prefix +81-6-1234- (%r)" % r)
    d.start_node()
    for stolen in ("4106@acme", "mallory@acme", "+81-6-1234-0001"):
        r = d.cli(["register"], stolen, PASSWORD)
        expect(r.code != 0 and "LAN agent" in r.err,
               "a stranger cannot register %s: exit %d, %r" % (stolen, r.code, r.err.strip()))
        r = d.add_user(stolen, PASSWORD, expect=None)
        expect(r.code == EXIT_USER_EXISTS and "LAN agent" in r.err,
               "`user add %s` is refused with a reason: exit %d, %r" % (stolen, r.code, r.err.strip()))
    r = d.cli(["register"], "carol@elsewhere", PASSWORD)
    expect(r.code == 0, "an ID outside every enrolled route still registers (%r)" % r)
    r = d.admin(["user", "-d", d.dir, "list"])
    expect(r.code == 0 and "acme" not in r.out and "+81-6-1234-" not in r.out,
           "no account inside acme's routes exists: %r" % r.out)

    # An account made before its domain is enrolled blocks the enrolment.
    d.add_user("bob@globex", PASSWORD)
    r = enroll(d, "globex", ["globex"])
    expect(r.code == EXIT_USER_EXISTS and "bob@globex" in r.err and "user remove" in r.err,
           "enrolling globex is refused and lists the account inside it: exit %d, %r" % (r.code, r.err))
    r = d.admin(["agent", "-d", d.dir, "list"])
    expect("globex" not in r.out, "globex was not enrolled: %r" % r.out)
    r = d.admin(["user", "-d", d.dir, "remove", "bob@globex"])
    expect(r.code == 0, "the operator removes the account (%r)" % r)
    r = enroll(d, "globex", ["globex"])
    expect(r.code == 0, "then globex enrols (%r)" % r)


SCENARIOS = {
    "account_cannot_take_an_extension_id": account_cannot_take_an_extension_id,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
