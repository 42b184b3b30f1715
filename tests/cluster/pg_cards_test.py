#!/usr/bin/env python3
"""Access cards on PostgreSQL in the running node (issue 19, docs/cluster.md, "Access cards").

pg_cards_two_nodes: one PostgreSQL (pg_node_test.Postgres), `cluster migrate`,
two `tsunagu-rendezvous run --pg` nodes A and B on loopback (a charged period
of 1 s), alice and bob added once with `user add --pg`; the real `tsunagu`:
  - `card issue --pg` writes two cards into PostgreSQL's ledger, none into the
    node's LMDB; `card show --pg SERIAL` reads the entry;
  - alice's card call to bob through node A (the card's access point) is
    debited at the route's 3 units a period: the debits are in PostgreSQL's
    card_history, and `card show --pg` and alice's `card show` (card_status)
    on node B tell the same units as the ledger;
  - `card topup --pg` is seen by node B's card_status at once;
  - alice's `card password` on node B: node A refuses the printed password
    and takes hers;
  - `card revoke --pg`: the card is refused (402 "revoked") on node A and on
    node B, and the ledger lists it revoked;
  - both nodes stay up.

Run:  TSUNAGU_BUILD=build python3 tests/cluster/pg_cards_test.py pg_cards_two_nodes
"""
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import Checks, Deployment, TestFailure, log, wait_until  # noqa: E402
from pg_node_test import PASSWORD, Postgres  # noqa: E402

LOOP = ["--ice-address", "127.0.0.1"]
COST = 3


def start_card_node(pg):
    deployment = Deployment(cards__debit_interval_s=1)
    deployment.set("web", "listen", '""')  # the web API is not in cluster mode yet
    deployment.set("cluster", "postgres", '"%s"' % pg.conninfo)
    return deployment, deployment.start_node()


def card_listing(out_dir):
    with open(os.path.join(out_dir, "cards.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return [dict(zip(("serial", "card_id", "password", "file"), row)) for row in rows]


def units_shown(result):
    """The units in `tsunagu card show`'s answer from the node."""
    found = re.search(r"units left\s+(\d+)", result.out)
    return int(found.group(1)) if found else None


def scenario_pg_cards_two_nodes():
    started = time.monotonic()
    checks = Checks()
    pg = Postgres()
    admin = Deployment()
    migrate = admin.admin(["cluster", "migrate", "--pg", pg.conninfo])
    if migrate.code != 0:
        raise TestFailure("cluster migrate: %r" % migrate)
    for user in ("alice", "bob"):
        added = admin.admin(["user", "-d", admin.dir, "--pg", pg.conninfo, "add", user], password=PASSWORD)
        checks.check(added.code == 0, "user add --pg %s: %r" % (user, added))
    a_dep, a = start_card_node(pg)
    b_dep, b = start_card_node(pg)
    log("two nodes on one PostgreSQL: A %s, B %s (%.1f s)" % (a.address, b.address, time.monotonic() - started))

    # The cards are issued with node A's deployment's issuer key; node B is
    # given the same key files (one issuer for the cluster), which it reads
    # when the first card of that key comes.
    areas = a_dep.path("areas.toml")
    with open(areas, "w") as f:
        f.write('[[area]]\ncode = "home"\n[[area.internet]]\nname = "home-node"\nnode = "%s"\n'
                'cost_per_minute = %d\n' % (a.address, COST))
    out = a_dep.path("cards")
    issued = admin.admin(["card", "-d", a_dep.dir, "--pg", pg.conninfo, "issue", "--units", "100", "--areas", areas,
                          "--group", "1", "--count", "2", "--out", out])
    if issued.code != 0:
        raise TestFailure("card issue --pg: %r" % issued)
    cards = card_listing(out)
    checks.check([c["serial"] for c in cards] == ["1", "2"], "two cards issued: %r" % cards)
    checks.check(pg.sql("SELECT string_agg(serial || ':' || units_left, ',' ORDER BY serial) FROM card_accounts")
                 == "1:100,2:100", "their entries are in PostgreSQL")
    local = admin.admin(["card", "-d", a_dep.dir, "show", "1"])
    checks.check(local.code == 3 and "no card with serial 1" in local.out,
                 "node A's own LMDB ledger has no card: %r" % local)
    shown = admin.admin(["card", "-d", a_dep.dir, "--pg", pg.conninfo, "show", "1"])
    checks.check(shown.code == 0 and "units left 100 of 100 issued" in shown.out and "issued" in shown.out,
                 "card show --pg reads the entry: %r" % shown)
    for name in ("card_issuer.key", "card_password.secret"):
        shutil.copy2(os.path.join(a_dep.dir, name), os.path.join(b_dep.dir, name))

    os.environ["TSUNAGU_CARD_DIR"] = a_dep.path("terminal-cards")
    os.environ["TSUNAGU_CARD_AREA"] = "home"
    os.environ["TSUNAGU_CARD_PASSWORD"] = cards[0]["password"]
    issuer_key = admin.admin(["card", "-d", a_dep.dir, "keys"]).out.split()[2]
    loaded = a_dep.cli(["card", "load", cards[0]["file"], "--issuer-key", issuer_key])
    if loaded.code != 0:
        raise TestFailure("card load: %r" % loaded)

    before = b_dep.cli(["card", "show"], "alice", PASSWORD, node=b)
    checks.check(units_shown(before) == 100, "alice's card_status on node B: 100 units: %r" % before)

    listener = harness.spawn_cli(a_dep, ["listen", "--auto-accept-from", "alice"] + LOOP, "bob", PASSWORD, node=a)
    try:
        wait_until(lambda: "listening as bob" in listener.err(), harness.LOGIN_TIMEOUT, 0.05, "bob's listen on A")
        caller = harness.spawn_cli(a_dep, ["call", "bob", "--card", "--pipe"] + LOOP, "alice", PASSWORD,
                                   stdin=subprocess.PIPE, node=a)
        try:
            def debited_twice():
                if "card: 94 units left" in caller.err():
                    return True
                if not caller.alive():
                    raise TestFailure("the card call exited (%s): %r" % (caller.proc.returncode, caller.err()[-800:]))
                return False
            wait_until(debited_twice, 40 * harness.SLOW, 0.05, "two periods debited")
            checks.check("card: 97 units left" in caller.err(), "each period is debited at the route's 3 units")
            caller.proc.stdin.close()
            code = caller.wait_exit(30)
            checks.check(code == 0, "the call hangs up cleanly (exit %s)" % code)
        finally:
            caller.kill()
    finally:
        listener.kill()

    left = int(pg.sql("SELECT units_left FROM card_accounts WHERE serial = 1"))
    debits = pg.sql("SELECT count(*) || ':' || coalesce(sum(units), 0) || ':' || bool_and(note LIKE '%route home-node') "
                    "FROM card_history WHERE serial = 1 AND kind = 2").split(":")
    checks.check(int(debits[0]) >= 2 and int(debits[1]) == COST * int(debits[0]) and debits[2] == "true",
                 "the debits are in PostgreSQL's history, 3 units each on route home-node: %r" % debits)
    checks.check(left == 100 - int(debits[1]), "units left %d = 100 - the debits %s" % (left, debits[1]))
    shown = admin.admin(["card", "-d", b_dep.dir, "--pg", pg.conninfo, "show", "1"])
    checks.check(shown.code == 0 and ("units left %d of 100" % left) in shown.out and shown.out.count("debit") >= 2,
                 "card show --pg tells the same units and the debits: %r" % shown)
    on_b = b_dep.cli(["card", "show"], "alice", PASSWORD, node=b)
    checks.check(units_shown(on_b) == left, "alice's card_status on node B: %d units: %r" % (left, on_b))
    log("a card call on node A debited %s units; node B and card show --pg see %d left (%.1f s)"
        % (debits[1], left, time.monotonic() - started))

    topped = admin.admin(["card", "-d", a_dep.dir, "--pg", pg.conninfo, "topup", "1", "10", "--note", "shop"])
    checks.check(topped.code == 0 and ("%d left" % (left + 10)) in topped.out, "card topup --pg: %r" % topped)
    on_b = b_dep.cli(["card", "show"], "alice", PASSWORD, node=b)
    checks.check(units_shown(on_b) == left + 10, "node B sees the top-up: %r" % on_b)

    # The holder's password, set through node B, is the one node A takes.
    chosen = a_dep.path("chosen.txt")
    with open(chosen, "w") as f:
        f.write("7391 2204 5518\n")
    changed = b_dep.cli(["card", "password", "--new-password-file", chosen], "alice", PASSWORD, node=b)
    checks.check(changed.code == 0 and "password set" in changed.out, "card password on node B: %r" % changed)
    checks.check(pg.sql("SELECT password_set_at > 0 FROM card_accounts WHERE serial = 1") == "t",
                 "the holder's password is in PostgreSQL")
    printed = a_dep.cli(["card", "show"], "alice", PASSWORD, node=a)
    checks.check(printed.code != 0 and "password" in printed.err,
                 "node A refuses the printed password from then on: %r" % printed)
    os.environ["TSUNAGU_CARD_PASSWORD"] = "7391-2204-5518"
    holders = a_dep.cli(["card", "show"], "alice", PASSWORD, node=a)
    checks.check(holders.code == 0 and "password     the holder's, set" in holders.out,
                 "node A takes the holder's password: %r" % holders)

    revoked = admin.admin(["card", "-d", a_dep.dir, "--pg", pg.conninfo, "revoke", "1", "--note", "stolen"])
    checks.check(revoked.code == 0 and "card 1 revoked" in revoked.out and "1 revoked serial" in revoked.out,
                 "card revoke --pg, and the update published from PostgreSQL's revoked serials: %r" % revoked)
    checks.check(pg.sql("SELECT revoked FROM card_accounts WHERE serial = 1") == "t", "revoked in PostgreSQL")
    for dep, node, name in ((a_dep, a, "A"), (b_dep, b, "B")):
        refused = dep.cli(["card", "show"], "alice", PASSWORD, node=node)
        checks.check(refused.code != 0 and "Card Refused: revoked" in refused.err,
                     "the revoked card is refused on node %s: %r" % (name, refused))
    checks.check(a.alive() and b.alive(), "both nodes are up")
    log("done in %.1f s" % (time.monotonic() - started))
    checks.finish()


if __name__ == "__main__":
    sys.exit(harness.run_scenarios({"pg_cards_two_nodes": scenario_pg_cards_two_nodes}, sys.argv))
