#!/usr/bin/env python3
"""Open registration and the web listener in cluster mode (issue 19, docs/cluster.md), with real processes.

pg_web_two_nodes: one PostgreSQL (pg_node_test.Postgres), `cluster migrate`,
two `tsunagu-rendezvous run --pg` nodes A and B on loopback with
node.open_registration on and their HTTPS web listeners on, each with its
own deployment directory and LMDB; an operator added once with
`user add --pg --admin`:
  - dave registers on node A with the real `tsunagu register` (the signalling
    `register`); the account is in PostgreSQL, not in A's LMDB, and dave logs
    in on node B (`tsunagu login`); a second registration of dave on node B
    is refused as taken;
  - erin registers over node A's web API (POST /api/register) and sets her
    profile there (PUT /api/profile: name, category, publish); she logs in
    over node B's web API (HTTPS, certificate checked against B's CA), which
    shows the profile: the login's display name, GET /api/profile, GET
    /api/directory; unpublished on A, B's directory drops her at once (the
    scan reads PostgreSQL, not B's account cache);
  - a card- ID, a quarantined ID (`user remove --pg` before) and a taken ID
    are refused over the web too (422, 409, 409);
  - the operator on node B lists users from PostgreSQL (GET /api/admin/users),
    adds frank (who then logs in on node A) and removes him (his login on A is
    refused after); GET /api/admin/cards answers 501; GET /api/admin/voicemail
    answers from PostgreSQL;
  - a session cookie of node A is not valid on node B (sessions are per node);
  - /metrics answers on both nodes and counts A's two registrations;
  - node A's registration limiter holds: with limits.registrations_per_source
    = 4, the fifth registration from loopback gets 429.

Run:  TSUNAGU_BUILD=build python3 tests/cluster/pg_web_test.py pg_web_two_nodes
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import Checks, Deployment, TestFailure, log, wait_until  # noqa: E402
from pg_node_test import PASSWORD, Postgres, raw_login  # noqa: E402
from web_test import Web  # noqa: E402

REGISTRATIONS_PER_SOURCE = 4


def start_web_cluster_node(pg):
    deployment = Deployment(node__open_registration=True,
                            limits__registrations_per_source=str(REGISTRATIONS_PER_SOURCE),
                            limits__registration_refill_seconds_per_source="3600")
    deployment.set("cluster", "postgres", '"%s"' % pg.conninfo)
    node = deployment.start_node()
    if not node.web:
        raise TestFailure("the cluster node's ready file names no web listener")
    return deployment, node


def answer(status_headers_body):
    status, headers, body = status_headers_body
    try:
        return status, headers, json.loads(body) if body else None
    except ValueError:
        return status, headers, body


def web_session(web, user):
    status, headers, body = answer(web.request("POST", "/api/login", {"id": user, "password": PASSWORD}))
    if status != 200:
        return status, None, None, body
    return status, headers["set-cookie"].split(";", 1)[0], body["csrf_token"], body


def scenario_pg_web_two_nodes():
    started = time.monotonic()
    checks = Checks()
    pg = Postgres()
    admin = Deployment()
    migrate = admin.admin(["cluster", "migrate", "--pg", pg.conninfo])
    if migrate.code != 0:
        raise TestFailure("cluster migrate: %r" % migrate)
    for user, extra in (("root", ["--admin"]), ("gone", [])):
        added = admin.admin(["user", "-d", admin.dir, "--pg", pg.conninfo, "add", user] + extra, password=PASSWORD)
        checks.check(added.code == 0, "user add --pg %s: %r" % (user, added))
    removed = admin.admin(["user", "-d", admin.dir, "--pg", pg.conninfo, "remove", "gone"])
    checks.check(removed.code == 0, "user remove --pg gone (its ID is quarantined): %r" % removed)
    a_dep, a = start_web_cluster_node(pg)
    b_dep, b = start_web_cluster_node(pg)
    web_a, web_b = Web(a_dep, a), Web(b_dep, b)
    log("two nodes on one PostgreSQL with web listeners: A %s (web %s), B %s (web %s) (%.1f s)" %
        (a.address, a.web, b.address, b.web, time.monotonic() - started))

    # The signalling register on A, a login on B.
    registered = a_dep.cli(["register", "--name", "Dave D"], "dave", PASSWORD, node=a)
    checks.check(registered.code == 0 and "registered dave" in registered.out,
                 "dave registers on node A with `tsunagu register`: %r" % registered)
    checks.check(pg.sql("SELECT display_name FROM accounts WHERE user_id = 'dave'") == "Dave D",
                 "dave's account is in PostgreSQL")
    local = admin.admin(["user", "-d", a_dep.dir, "list"])
    checks.check(local.code == 0 and "dave" not in local.out, "node A's own LMDB holds no dave: %r" % local)
    link, reply = raw_login(b_dep, b, "dave")
    checks.check(reply.error() is None, "dave logs in on node B: %r" % (reply.error(),))
    link.close()
    on_b = b_dep.start_login("dave", PASSWORD, node=b)
    checks.check(on_b.alive(), "dave's `tsunagu login` on node B is logged in")
    on_b.kill()
    again = b_dep.cli(["register"], "dave", PASSWORD, node=b)
    checks.check(again.code != 0 and "exists" in (again.out + again.err).lower(),
                 "a second registration of dave, on node B, is refused as taken: %r" % again)

    # The web registration on A; a profile set over A's web API; a web login on B shows it.
    status, _, body = answer(web_a.request("POST", "/api/register",
                                           {"id": "erin", "password": PASSWORD, "display_name": "Erin"}))
    checks.check(status == 201 and body == {"id": "erin"}, "erin registers over node A's web API: %d %r" % (status, body))
    status, a_cookie, a_csrf, body = web_session(web_a, "erin")
    checks.check(status == 200 and body.get("display_name") == "Erin", "erin logs in over node A's web API: %r" % body)
    status, _, body = answer(web_a.request("PUT", "/api/profile",
                                           {"display_name": "Erin Baker", "category": "Bakery", "publish": True},
                                           cookie=a_cookie, csrf=a_csrf))
    checks.check(status == 200 and body.get("display_name") == "Erin Baker",
                 "erin's profile set over node A's web API: %d %r" % (status, body))
    status, b_cookie, b_csrf, body = web_session(web_b, "erin")
    checks.check(status == 200 and body.get("display_name") == "Erin Baker" and body.get("admin") is False,
                 "erin logs in over node B's web API, with the name set on A: %d %r" % (status, body))
    status, _, body = answer(web_b.request("GET", "/api/profile", cookie=b_cookie))
    checks.check(status == 200 and body.get("display_name") == "Erin Baker" and body.get("category") == "bakery"
                 and body.get("publish") is True, "node B's web API shows the profile set on A: %d %r" % (status, body))
    status, _, body = answer(web_b.request("GET", "/api/directory?q=baker&kind=name", cookie=b_cookie))
    checks.check(status == 200 and [e["id"] for e in body.get("entries", [])] == ["erin"],
                 "node B's directory finds her: %d %r" % (status, body))
    # While B holds her account in its cache, the directory's scan (PostgreSQL) sees a change at once.
    status, _, _ = answer(web_a.request("PUT", "/api/profile", {"publish": False}, cookie=a_cookie, csrf=a_csrf))
    checks.check(status == 200, "erin unpublishes over node A's web API")
    status, _, body = answer(web_b.request("GET", "/api/directory?q=baker&kind=name", cookie=b_cookie))
    checks.check(status == 200 and body.get("entries") == [], "node B's directory no longer lists her: %d %r" % (status, body))
    status, _, _ = answer(web_b.request("GET", "/api/session", cookie=a_cookie))
    checks.check(status == 401, "node A's session cookie is not valid on node B (sessions are per node): %d" % status)

    for user, code, error in (("card-1234", 422, "invalid_user_id"), ("gone", 409, "conflict"),
                              ("erin", 409, "conflict")):
        status, _, body = answer(web_b.request("POST", "/api/register", {"id": user, "password": PASSWORD}))
        checks.check(status == code and isinstance(body, dict) and body.get("error") == error,
                     "registering %s over node B's web API is refused: %d %r" % (user, status, body))
    checks.check(pg.sql("SELECT count(*) FROM accounts WHERE user_id IN ('card-1234', 'gone')") == "0",
                 "neither refused ID is in PostgreSQL")

    # The operator on B: accounts in PostgreSQL; the card ledger is refused.
    status, root_cookie, root_csrf, body = web_session(web_b, "root")
    checks.check(status == 200 and body.get("admin") is True, "the operator logs in on node B: %d %r" % (status, body))
    status, _, body = answer(web_b.request("GET", "/api/admin/users?q=er", cookie=root_cookie))
    listed = sorted(u["id"] for u in body.get("users", [])) if status == 200 else body
    checks.check(listed == ["erin"], "GET /api/admin/users?q=er on node B lists erin from PostgreSQL: %r" % listed)
    status, _, body = answer(web_b.request("POST", "/api/admin/users", {"id": "frank", "password": PASSWORD},
                                           cookie=root_cookie, csrf=root_csrf))
    checks.check(status == 201, "the operator adds frank on node B: %d %r" % (status, body))
    status, _, body = answer(web_b.request("POST", "/api/admin/users", {"id": "gone", "password": PASSWORD},
                                           cookie=root_cookie, csrf=root_csrf))
    checks.check(status == 409, "a quarantined ID is refused there too: %d %r" % (status, body))
    status, frank_cookie, _, _ = web_session(web_a, "frank")
    checks.check(status == 200, "frank logs in over node A's web API: %d" % status)
    status, _, body = answer(web_b.request("DELETE", "/api/admin/users/frank", cookie=root_cookie, csrf=root_csrf))
    checks.check(status == 204, "the operator removes frank on node B: %d %r" % (status, body))
    # Node A ends frank's session when it sees the shared epoch move (accounts.check_interval_ms, 1 s).
    wait_until(lambda: web_a.request("GET", "/api/session", cookie=frank_cookie)[0] == 401, 10 * harness.SLOW, 0.2,
               "frank's web session on node A to end after his removal on node B")
    status, _, _, body = web_session(web_a, "frank")
    checks.check(status == 401, "frank's login on node A is refused after: %d %r" % (status, body))
    status, _, body = answer(web_b.request("GET", "/api/admin/cards", cookie=root_cookie))
    checks.check(status == 501 and body.get("error") == "not_implemented" and "cluster mode" in body.get("message", ""),
                 "GET /api/admin/cards answers 501 in cluster mode: %d %r" % (status, body))
    status, _, body = answer(web_b.request("POST", "/api/admin/users/erin/verify", cookie=root_cookie, csrf=root_csrf))
    checks.check(status == 501, "verify has no cluster form yet: 501: %d %r" % (status, body))
    status, _, body = answer(web_b.request("GET", "/api/admin/voicemail", cookie=root_cookie))
    checks.check(status == 200 and body.get("messages") == 0, "GET /api/admin/voicemail on node B: %d %r" % (status, body))

    # /metrics on both nodes.
    for name, web, registrations in (("A", web_a, 2), ("B", web_b, 0)):
        status, headers, body = web.request("GET", "/metrics")
        text = body.decode()
        checks.check(status == 200 and headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
                     "/metrics answers on node %s in cluster mode: %d" % (name, status))
        line = 'tsunagu_node_registrations_total{result="ok"} %d' % registrations
        checks.check(line in text, "node %s's /metrics: %s" % (
            name, [x for x in text.splitlines() if x.startswith("tsunagu_node_registrations_total")]))

    # A's limiter: dave and erin were two; the fourth is the last the burst allows.
    for user in ("gina", "hank"):
        status, _, body = answer(web_a.request("POST", "/api/register", {"id": user, "password": PASSWORD}))
        checks.check(status == 201, "%s registers on node A: %d %r" % (user, status, body))
    status, headers, body = answer(web_a.request("POST", "/api/register", {"id": "ivan", "password": PASSWORD}))
    checks.check(status == 429 and "retry-after" in headers,
                 "the fifth registration from loopback on node A gets 429: %d %r" % (status, body))
    checks.check(pg.sql("SELECT count(*) FROM accounts WHERE user_id = 'ivan'") == "0", "ivan is not in PostgreSQL")

    checks.check(a.alive() and b.alive(), "both nodes are up")
    log("done in %.1f s" % (time.monotonic() - started))
    checks.finish()


if __name__ == "__main__":
    sys.exit(harness.run_scenarios({"pg_web_two_nodes": scenario_pg_web_two_nodes}, sys.argv))
