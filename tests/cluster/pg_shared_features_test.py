#!/usr/bin/env python3
"""The directory, profiles and voicemail on PostgreSQL in the running node (issue 19, docs/cluster.md).

pg_directory_two_nodes: one PostgreSQL (pg_node_test.Postgres), `cluster
migrate`, two `tsunagu-rendezvous run --pg` nodes A and B on loopback, each
with its own deployment directory and LMDB, accounts added once with
`user add --pg`; the real `tsunagu` CLI:
  - alice's `profile set` on node A (name, phone, category, publish) is
    acknowledged and is in PostgreSQL's accounts row;
  - bob's `directory search`, `directory number`, `directory business` and
    `directory categories` on node B find her; carol (not published) is not
    found; alice's `profile show` on B shows the change;
  - alice unpublishes on node B: a search on node A no longer finds her;
  - no node's own LMDB holds any of it.

pg_voicemail_two_nodes: the same two nodes; bob takes voicemail
(`profile set voicemail=yes`, on node B) and is offline:
  - alice's `voicemail send bob FILE` on node A is acknowledged with its ID,
    and the message (header and recording) is in PostgreSQL;
  - bob's `voicemail list` on node A lists it;
  - bob's `login --mailbox DIR` on node B saves it, byte for byte, and the
    node deletes it after his acknowledgement (gone from PostgreSQL);
  - a message for a user who does not take voicemail is refused (403).

Run:  TSUNAGU_BUILD=build python3 tests/cluster/pg_shared_features_test.py pg_directory_two_nodes
      TSUNAGU_BUILD=build python3 tests/cluster/pg_shared_features_test.py pg_voicemail_two_nodes
"""
import hashlib
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import Checks, Deployment, TestFailure, log, wait_until  # noqa: E402
from pg_node_test import PASSWORD, Postgres, start_cluster_node  # noqa: E402


def directory(dep, node, asker, args):
    result = dep.cli(["directory"] + args + ["--json"], asker, PASSWORD, node=node)
    if result.code != 0:
        raise TestFailure("directory %s on %s: %r" % (" ".join(args), node.address, result))
    return result.json()


def found_ids(answer):
    return [entry["user"] for entry in answer["entries"]]


def two_nodes(checks):
    """One PostgreSQL, migrated, alice, bob and carol added once, nodes A and B."""
    started = time.monotonic()
    pg = Postgres()
    admin = Deployment()
    migrate = admin.admin(["cluster", "migrate", "--pg", pg.conninfo])
    if migrate.code != 0:
        raise TestFailure("cluster migrate: %r" % migrate)
    for user, name in (("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol Smith")):
        added = admin.admin(["user", "-d", admin.dir, "--pg", pg.conninfo, "add", user, "--name", name],
                            password=PASSWORD)
        checks.check(added.code == 0, "user add --pg %s: %r" % (user, added))
    a_dep, a = start_cluster_node(pg)
    b_dep, b = start_cluster_node(pg)
    log("two nodes on one PostgreSQL: A %s, B %s (%.1f s)" % (a.address, b.address, time.monotonic() - started))
    return pg, admin, a_dep, a, b_dep, b


def scenario_pg_directory_two_nodes():
    started = time.monotonic()
    checks = Checks()
    pg, admin, a_dep, a, b_dep, b = two_nodes(checks)

    before = directory(b_dep, b, "bob", ["search", "smith"])
    checks.check(found_ids(before) == [], "nobody published yet (carol is not): %r" % before)

    changed = a_dep.cli(["profile", "set", "name=Alice Smith", "phone=+81-6-1234-0000", "category=Bakery",
                         "publish=yes"], "alice", PASSWORD, node=a)
    checks.check(changed.code == 0 and "Alice Smith" in changed.out, "alice's profile set on node A: %r" % changed)
    row = pg.sql("SELECT display_name || '|' || phone || '|' || category || '|' || publish FROM accounts "
                 "WHERE user_id = 'alice'")
    checks.check(row == "Alice Smith|+81-6-1234-0000|bakery|true", "the change is in PostgreSQL: %r" % row)

    by_name = directory(b_dep, b, "bob", ["search", "smith"])
    checks.check(found_ids(by_name) == ["alice"] and by_name["entries"][0]["name"] == "Alice Smith",
                 "a search on node B finds the profile set on node A, not unpublished carol: %r" % by_name)
    by_number = directory(b_dep, b, "bob", ["number", "+81 6 1234 0000"])
    checks.check(found_ids(by_number) == ["alice"], "directory number on B: %r" % by_number)
    bakeries = directory(b_dep, b, "bob", ["business", "BAKERY"])
    checks.check(found_ids(bakeries) == ["alice"], "directory business on B: %r" % bakeries)
    categories = b_dep.cli(["directory", "categories", "--json"], "bob", PASSWORD, node=b)
    checks.check(categories.code == 0 and categories.json() == [{"category": "bakery", "businesses": 1}],
                 "directory categories on B: %r" % categories)
    shown = b_dep.cli(["profile", "show"], "alice", PASSWORD, node=b)
    checks.check(shown.code == 0 and "Alice Smith" in shown.out and "+81-6-1234-0000" in shown.out,
                 "alice's profile show on node B: %r" % shown)
    log("a profile set on node A is found by searches on node B")

    hidden = b_dep.cli(["profile", "set", "publish=no"], "alice", PASSWORD, node=b)
    checks.check(hidden.code == 0, "alice unpublishes on node B: %r" % hidden)
    after = directory(a_dep, a, "bob", ["search", "smith"])
    checks.check(found_ids(after) == [], "a search on node A no longer finds her: %r" % after)
    checks.check(pg.sql("SELECT publish FROM accounts WHERE user_id = 'alice'") == "f", "publish is false in PostgreSQL")

    for dep in (a_dep, b_dep):
        local = admin.admin(["user", "-d", dep.dir, "list"])
        checks.check(local.code == 0 and "alice" not in local.out, "no node's LMDB holds alice: %r" % local)
    checks.check(a.alive() and b.alive(), "both nodes are up")
    log("done in %.1f s" % (time.monotonic() - started))
    checks.finish()


def voicemail_entries(dep, node, user):
    listed = dep.cli(["voicemail", "list", "--json"], user, PASSWORD, node=node)
    if listed.code != 0:
        raise TestFailure("voicemail list on %s: %r" % (node.address, listed))
    return listed.json()


def scenario_pg_voicemail_two_nodes():
    started = time.monotonic()
    checks = Checks()
    pg, admin, a_dep, a, b_dep, b = two_nodes(checks)
    takes = b_dep.cli(["profile", "set", "voicemail=yes"], "bob", PASSWORD, node=b)
    checks.check(takes.code == 0, "bob takes voicemail (profile set on node B): %r" % takes)

    message = a_dep.path("hello.msg")
    payload = os.urandom(100_000)
    with open(message, "wb") as out:
        out.write(payload)
    sent = a_dep.cli(["voicemail", "send", "bob", message], "alice", PASSWORD, node=a)
    checks.check(sent.code == 0 and "stored (100000 bytes" in sent.out,
                 "alice leaves bob a 100 kB message on node A while he is offline: %r" % sent)
    stored = pg.sql("SELECT v.sender || '|' || v.size || '|' || octet_length(d.data) FROM voicemail v "
                    "JOIN voicemail_data d USING (id) WHERE v.recipient = 'bob'")
    checks.check(stored == "alice|100000|100000", "the message is in PostgreSQL: %r" % stored)
    entries = voicemail_entries(a_dep, a, "bob")
    checks.check(len(entries) == 1 and entries[0]["from"] == "alice" and entries[0]["size"] == 100_000,
                 "bob's mailbox, listed on node A: %r" % entries)
    refused = a_dep.cli(["voicemail", "send", "carol", message], "alice", PASSWORD, node=a)
    checks.check(refused.code != 0 and "does not take voicemail" in refused.err,
                 "carol does not take voicemail: refused: %r" % refused)

    box = b_dep.path("bob-mailbox")
    os.makedirs(box, exist_ok=True)
    env = b_dep.terminal_env("bob", PASSWORD, node=b)
    out_path, err_path = b_dep.path("bob-login.out"), b_dep.path("bob-login.err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = harness.spawn([harness.TERMINAL, "login", "--mailbox", box], env=env, stdout=out, stderr=err)
    terminal = harness.Terminal(proc, "bob", out_path, err_path)
    try:
        b_dep.wait_logged_in(terminal)
        wait_until(lambda: "voicemail saved" in terminal.out(), 20 * harness.SLOW, 0.05, "delivery on login")
        saved = sorted(f for f in os.listdir(box) if not f.endswith(".part"))
        checks.check(len(saved) == 1, "bob's login on node B saved one message: %r" % saved)
        if saved:
            with open(os.path.join(box, saved[0]), "rb") as f:
                checks.check(hashlib.sha256(f.read()).digest() == hashlib.sha256(payload).digest(),
                             "the saved bytes are alice's, intact")
        wait_until(lambda: pg.sql("SELECT count(*) FROM voicemail") == "0", 10 * harness.SLOW, 0.1,
                   "the acknowledged message to be deleted in PostgreSQL")
        checks.check(pg.sql("SELECT count(*) FROM voicemail_data") == "0", "its recording went with it")
        log("a message left for bob on node A was delivered at his login on node B (%.1f s)" %
            (time.monotonic() - started))
    finally:
        terminal.kill()
    checks.check(a.alive() and b.alive(), "both nodes are up")
    checks.finish()


if __name__ == "__main__":
    sys.exit(harness.run_scenarios({"pg_directory_two_nodes": scenario_pg_directory_two_nodes,
                                    "pg_voicemail_two_nodes": scenario_pg_voicemail_two_nodes}, sys.argv))
