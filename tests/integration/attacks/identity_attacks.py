#!/usr/bin/env python3
"""Identity attacks (issue 11, docs/security.md "Identities"): a stranger on the
internet with open registration, and a malicious logged-in user, against a real
tsunagu-rendezvous, its admin commands and the `tsunagu` CLI.

Run one scenario:  TSUNAGU_BUILD=build python3 identity_attacks.py SCENARIO
Each scenario is its own meson test (attacks/meson.build); exit 77 = skipped.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import harness as h  # noqa: E402
from harness import Deployment, TestFailure, log  # noqa: E402

PASSWORD = "identity-pw-1"
EXIT_USER_EXISTS = 4


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    log("  ok:", message)


LAN_AGENT = os.path.join(h.BUILD, "lan-agent", "tsunagu-lan-agent")


def enroll(d, name, domains=(), prefixes=()):
    args = ["agent", "-d", d.dir, "enroll", name, "--out", d.path("bundle-" + name),
            "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"]  # the bundle is never used to dial
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


def logged_in_raw(d, user, password):
    raw = h.RawTls(d.node)
    answer = raw.login(user, password)
    expect(answer.cls == h.SUCCESS, "%s is logged in on a raw link (%r)" % (user, answer))
    return raw


def ended_at_once(raw, what, limit_s=5.0):
    started = time.monotonic()
    closed, chunks = raw.wait_closed(limit_s * h.SLOW)
    elapsed = time.monotonic() - started
    notices = h.notices_in(raw, chunks)
    raw.close()
    expect(closed, "%s: the node closed the link within %.1f s (notices %r)" % (what, elapsed, notices))
    expect(any("log in again" in n for n in notices), "%s: the link was told why: %r" % (what, notices))
    return elapsed


def removed_account_links_end_at_once():
    """`user remove` (another process) ends the account's idle link within
    accounts.check_interval_ms, deletes its mailbox, and a stranger cannot
    register the ID to read what was meant for its owner."""
    d = Deployment(node__open_registration=True)
    d.start_node()
    for user in ("alice", "bob"):
        d.add_user(user, PASSWORD)
    r = d.admin(["user", "-d", d.dir, "profile", "alice", "voicemail=yes"])
    expect(r.code == 0, "alice takes voicemail (%r)" % r)
    message = d.path("message.bin")
    with open(message, "wb") as f:
        f.write(os.urandom(3000))
    r = d.cli(["voicemail", "send", "alice", message], "bob", PASSWORD)
    expect(r.code == 0, "bob leaves alice a message (%r)" % r)
    raw = logged_in_raw(d, "alice", PASSWORD)
    r = d.admin(["user", "-d", d.dir, "remove", "alice"])
    expect(r.code == 0 and "1 voicemail" in r.out, "the operator removes alice and her mailbox (%r)" % r)
    elapsed = ended_at_once(raw, "alice removed")
    log("  measured: the removed account's idle link ended %.2f s after `user remove` returned" % elapsed)
    r = d.whereis("bob", PASSWORD, "alice")
    expect(r.code == 3, "alice is unknown now (%r)" % r)

    r = d.cli(["register", "--name", "Alice"], "alice", "mallory-pw-1")
    expect(r.code != 0 and "removed recently" in r.err,
           "a stranger cannot register the removed ID: exit %d, %r" % (r.code, r.err.strip()))
    r = d.add_user("alice", PASSWORD, expect=None)
    expect(r.code == EXIT_USER_EXISTS and "--reuse-removed-id" in r.err,
           "`user add` of the removed ID needs --reuse-removed-id: exit %d, %r" % (r.code, r.err.strip()))
    r = d.admin(["user", "-d", d.dir, "add", "alice", "--reuse-removed-id"], password=PASSWORD)
    expect(r.code == 0, "the operator gives the ID back on purpose (%r)" % r)
    r = d.cli(["voicemail", "list", "--json"], "alice", PASSWORD)
    expect(r.code == 0 and r.json() == [], "the old mailbox is gone: %r" % r)


def password_change_ends_links_at_once():
    """`user passwd` (another process) ends the links logged in with the old
    password at once: someone who learnt it is locked out of the open link."""
    d = Deployment()
    d.start_node()
    d.add_user("alice", PASSWORD)
    raw = logged_in_raw(d, "alice", PASSWORD)
    r = d.admin(["user", "-d", d.dir, "passwd", "alice"], password="new-identity-pw")
    expect(r.code == 0, "the operator resets alice's password (%r)" % r)
    elapsed = ended_at_once(raw, "password changed")
    log("  measured: the old login's idle link ended %.2f s after `user passwd` returned" % elapsed)
    fresh = h.RawTls(d.node)
    try:
        expect(fresh.login("alice", PASSWORD).error()[0] == 401, "the old password no longer logs in")
        expect(fresh.login("alice", "new-identity-pw").cls == h.SUCCESS, "the new one does")
    finally:
        fresh.close()


def unknown_and_hidden_ids_answer_alike():
    """A logged-in user probing IDs: a user with presence=nobody answers
    exactly like an ID that does not exist (whereis, voicemail), online or not;
    and by default nobody's private (reported) addresses are shown."""
    d = Deployment()
    d.start_node()
    for user in ("alice", "bob", "carol"):
        d.add_user(user, PASSWORD)
    r = d.cli(["profile", "set", "presence=nobody"], "alice", PASSWORD)
    expect(r.code == 0, "alice hides herself with `tsunagu profile set presence=nobody` (%r)" % r)
    r = d.cli(["profile", "show"], "alice", PASSWORD)
    expect(r.code == 0 and "presence:  nobody" in r.out, "profile show says so: %r" % r.out)

    def probe(target):
        where = d.whereis("bob", PASSWORD, target)
        row = where.json() if where.out.strip() else {}
        message = d.path("probe.bin")
        with open(message, "wb") as f:
            f.write(b"x" * 100)
        mail = d.cli(["voicemail", "send", target, message], "bob", PASSWORD)
        return (where.code, row.get("error"), row.get("reason"), mail.code,
                mail.err.replace(target, "ID"))

    unknown = probe("nosuchuser")
    expect(unknown[0] == 3 and unknown[1] == 404, "an unknown ID: exit 3, 404 (%r)" % (unknown,))
    expect(probe("alice") == unknown, "hidden and offline, alice answers like an unknown ID: %r" % (probe("alice"),))
    terminal = d.start_login("alice", PASSWORD)
    expect(probe("alice") == unknown, "hidden and online, alice still answers like an unknown ID")
    r = d.whereis("alice", PASSWORD, "alice")
    expect(r.code == 0 and r.json().get("online") is True, "alice still finds herself (%r)" % r)
    terminal.kill()

    carol = d.start_login("carol", PASSWORD)
    row = d.whereis("bob", PASSWORD, "carol").json()
    expect(row.get("online") is True and row.get("reported") == [] and row.get("addresses_hidden") is True,
           "carol is seen online but her private addresses are not shown by default: %r" % row)
    r = d.cli(["whereis", "carol"], "bob", PASSWORD)
    expect("hidden by the user" in r.out, "the text form says the addresses are hidden: %r" % r.out)
    r = d.cli(["profile", "set", "addresses=yes"], "carol", PASSWORD)
    expect(r.code == 0, "carol chooses to show them (%r)" % r)
    row = d.whereis("bob", PASSWORD, "carol").json()
    expect(len(row.get("reported", [])) >= 1 and row.get("addresses_hidden") is False,
           "then lookups carry them: %r" % row)
    carol.kill()


def directory_marks_unverified_rows_and_limits_scans():
    """A malicious user publishes a look-alike row with someone else's number:
    `directory number` marks the rows no operator verified; and one account
    cannot read the whole directory over and over (scans per account are
    limited, 429 with RETRY-AFTER, `tsunagu` exit 6)."""
    d = Deployment(directory__scan_burst=3, directory__scan_interval_ms=60000)
    d.start_node()
    for user in ("bank", "mallory", "alice"):
        d.add_user(user, PASSWORD)
    number = "+81-3-5555-0000"
    r = d.admin(["user", "-d", d.dir, "profile", "bank", "name=Real Bank", "phone=" + number, "publish=yes"])
    expect(r.code == 0, "the bank's row is published (%r)" % r)
    r = d.admin(["user", "-d", d.dir, "verify", "bank", "yes"])
    expect(r.code == 0, "the operator verifies it (%r)" % r)
    r = d.cli(["profile", "set", "name=Real Bank", "phone=" + number, "publish=yes"], "mallory", PASSWORD)
    expect(r.code == 0, "mallory publishes a look-alike row with the same number (%r)" % r)
    r = d.cli(["directory", "number", number, "--json"], "alice", PASSWORD)
    rows = {e["user"]: e["verified"] for e in r.json()["entries"]} if r.code == 0 else {}
    expect(rows == {"bank": True, "mallory": False}, "the JSON says which row the operator verified: %r" % r)
    r = d.cli(["directory", "number", number], "alice", PASSWORD)
    lines = {line.split()[0]: line for line in r.out.splitlines() if line.strip()}
    expect("(unverified)" in lines.get("mallory", "") and "(unverified)" not in lines.get("bank", "x (unverified)"),
           "the text marks mallory's row unverified and not the bank's: %r" % r.out)
    for n in range(3):
        r = d.cli(["directory", "search", "bank"], "mallory", PASSWORD)
        expect(r.code == 0, "mallory's scan %d of a burst of 3 (%r)" % (n + 1, r))
    r = d.cli(["directory", "search", "bank"], "mallory", PASSWORD)
    expect(r.code == 6 and "Too Many" in r.err, "mallory's 4th scan is refused (exit 6): %r" % r)
    r = d.cli(["directory", "search", "bank"], "alice", PASSWORD)
    expect(r.code == 0, "alice, another account, still searches (%r)" % r)


def start_agent(d, name, domains):
    """Enrolls agent `name` with the running node and runs it on loopback; returns its process.
    A message for an extension is taken only while its agent can apply its edge policy."""
    bundle = d.path("bundle-" + name)
    args = ["agent", "-d", d.dir, "enroll", name, "--out", bundle,
            "--node", d.node.agent_address, "--server-name", "127.0.0.1"]
    for domain in domains:
        args += ["--domain", domain]
    r = d.admin(args)
    expect(r.code == 0, "agent %s is enrolled (%r)" % (name, r))
    config = os.path.join(bundle, "agent.toml")
    with open(config) as f:
        text = f.read().replace("[agent]\n", '[agent]\ndata_directory = "%s"\n' % os.path.join(bundle, "data"), 1)
    text += '\n[hook]\nsocket = "%s"\nspool_directory = "%s"\n' % (
        os.path.join(bundle, "hook.sock"), os.path.join(bundle, "spool"))
    with open(config, "w") as f:
        f.write(text)
    log_path = os.path.join(bundle, "agent.log")
    with open(log_path, "w") as log_file:
        proc = h.spawn([LAN_AGENT, "run", "-c", config], stdout=log_file, stderr=subprocess.STDOUT)

    def linked():
        if proc.poll() is not None:
            raise TestFailure("agent %s exited with %d: %s" % (name, proc.returncode, open(log_path).read()))
        return "linked to the node" in open(log_path).read()

    h.wait_until(linked, 15, 0.05, "agent %s linked to the node" % name)
    return proc, config


def removed_agent_leaves_no_mail_for_the_next_owner():
    """Messages wait for extension 4106@acme in its mailbox on the node; when
    the operator removes agent acme, the ID becomes registrable, and whoever
    registers it must not read the extension's mail."""
    d = Deployment(node__open_registration=True)
    d.start_node()
    agent, config = start_agent(d, "acme", ["acme"])
    bound = subprocess.run([LAN_AGENT, "bind", "-c", config, "4106", "02:00:00:41:06:0d"], capture_output=True,
                           text=True, timeout=30)
    expect(bound.returncode == 0, "extension 4106 is bound to a phone (%r)" % bound.stderr)
    d.add_user("carol", PASSWORD)
    message = d.path("for-4106.bin")
    with open(message, "wb") as f:
        f.write(os.urandom(2000))
    r = d.cli(["voicemail", "send", "4106@acme", message], "carol", PASSWORD)
    expect(r.code == 0, "carol leaves a message for extension 4106@acme (%r)" % r)
    agent.terminate()
    agent.wait(10)
    r = d.admin(["agent", "-d", d.dir, "remove", "acme"])
    expect(r.code == 0 and "1 undelivered voicemail" in r.out, "the operator removes agent acme (%r)" % r)
    r = d.cli(["register"], "4106@acme", "mallory-pw-1")
    expect(r.code == 0, "4106@acme is an ordinary ID again (%r)" % r)
    r = d.cli(["voicemail", "list", "--json"], "4106@acme", "mallory-pw-1")
    expect(r.code == 0 and r.json() == [], "its new owner finds no mail meant for the extension: %r" % r)


SCENARIOS = {
    "account_cannot_take_an_extension_id": account_cannot_take_an_extension_id,
    "removed_account_links_end_at_once": removed_account_links_end_at_once,
    "password_change_ends_links_at_once": password_change_ends_links_at_once,
    "unknown_and_hidden_ids_answer_alike": unknown_and_hidden_ids_answer_alike,
    "directory_marks_unverified_rows_and_limits_scans": directory_marks_unverified_rows_and_limits_scans,
    "removed_agent_leaves_no_mail_for_the_next_owner": removed_agent_leaves_no_mail_for_the_next_owner,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
