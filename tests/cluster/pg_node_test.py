#!/usr/bin/env python3
"""Cluster mode's accounts on PostgreSQL (issue 19, docs/cluster.md), with real processes.

pg_two_nodes: one PostgreSQL (initdb into a temporary directory, a postmaster
  on a unix socket only, run as the `postgres` user when the test runs as
  root), `cluster migrate`, and two `tsunagu-rendezvous run --pg` nodes on
  loopback ports, each with its own deployment directory and LMDB:
  - a user added once (`user add --pg`) logs in with the real `tsunagu login`
    on both nodes, and is found by a lookup on the other node, whose
    offline answer carries her last login from PostgreSQL;
  - `user list --pg` lists it; the last login is in PostgreSQL's logins table;
  - voicemail is served (its mailboxes are in PostgreSQL), not refused;
  - `user remove --pg` ends the user's link on the other node (the shared
    account epoch) and later logins fail;
  - a login whose last-login write does not commit (a trigger terminates the
    committing backend: the server's own fault, no fake) is answered 503 and
    not recorded; the node reconnects and the next logins commit;
  - PostgreSQL stopped: a login gets 503 ("Unavailable: storage error"), the
    node stays up; started again: logins work on both nodes;
  - a login acknowledged right before kill -9 of the postmaster is in the
    logins table after the restart (crash recovery).

Run:  TSUNAGU_BUILD=build python3 tests/cluster/pg_node_test.py pg_two_nodes
"""

import atexit
import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import Checks, Deployment, RawTls, Skip, TestFailure, log, wait_until  # noqa: E402

PASSWORD = "correct horse battery"
METHOD_VOICEMAIL_LIST = 0x833
ERROR_OFFLINE = 480
ERROR_UNAVAILABLE = 503


class Postgres:
    """A postmaster of our own: its process group is killed on every exit path."""

    def __init__(self, netns=None, host=None):
        """netns/host: the server runs inside that network namespace and also listens on TCP at host
        (trusting that /24); `conninfo` stays the unix socket, `tcp_conninfo` is for the namespaces."""
        self.netns, self.host = netns, host
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not bins:
            raise Skip("no PostgreSQL server under /usr/lib/postgresql (scripts/install-deps.sh test)")
        self.bin = os.path.dirname(bins[-1])
        self.uid, self.gid = os.getuid(), os.getgid()
        if self.uid == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise Skip("running as root and there is no 'postgres' user to run the server as")
            self.uid, self.gid = user.pw_uid, user.pw_gid
        self.root = tempfile.mkdtemp(prefix="tsunagu-pgnode-")
        os.chmod(self.root, 0o755)
        os.chown(self.root, self.uid, self.gid)
        self.proc = None
        atexit.register(self.cleanup)
        self._run([self.bin + "/initdb", "-D", self.root + "/data", "--auth=trust", "--username=postgres",
                   "--no-sync", "--encoding=UTF8", "--locale=C"], "initdb")
        if host is not None:
            network = host.rsplit(".", 1)[0] + ".0/24"
            with open(self.root + "/data/pg_hba.conf", "a") as hba:
                hba.write("host all all %s trust\n" % network)
        self.start()

    def _as_owner(self, server):
        uid, gid = self.uid, self.gid
        netns = self.netns if server else None

        def become():
            if netns is not None:  # entered as root, before giving up root
                with open("/run/netns/" + netns) as handle:
                    if ctypes.CDLL("libc.so.6", use_errno=True).setns(handle.fileno(), 0x40000000) != 0:  # CLONE_NEWNET
                        os._exit(120)
            if os.getuid() == 0:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            if server:  # ends with the test however the test ends
                ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        return become

    def _run(self, argv, what):
        with open(os.path.join(self.root, what + ".log"), "a") as out:
            code = subprocess.run(argv, preexec_fn=self._as_owner(False), stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=120).returncode
        if code != 0:
            raise TestFailure("%s failed with %d; see %s/%s.log" % (what, code, self.root, what))

    @property
    def conninfo(self):
        return "host=%s port=5432 dbname=postgres user=postgres" % self.root

    @property
    def tcp_conninfo(self):
        return "host=%s port=5432 dbname=postgres user=postgres" % self.host

    def start(self):
        with open(os.path.join(self.root, "server.log"), "a") as out:
            self.proc = subprocess.Popen(
                [self.bin + "/postgres", "-D", self.root + "/data", "-k", self.root, "-p", "5432",
                 "-c", "listen_addresses=" + (self.host or ""), "-c", "max_connections=20", "-c", "fsync=on"],
                preexec_fn=self._as_owner(True), start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        wait_until(lambda: self.sql("SELECT 1", check=False) == "1", 60, 0.1, "PostgreSQL to accept connections")

    def sql(self, statement, check=True):
        result = subprocess.run([self.bin + "/psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo,
                                 "-c", statement], capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise TestFailure("psql %r: %s" % (statement, result.stderr))
        return result.stdout.strip()

    def _kill_group(self, signum):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signum)  # our postmaster's group: it and its backends
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def crash(self):
        self._kill_group(signal.SIGKILL)

    def stop(self):
        self._kill_group(signal.SIGINT)  # a fast shutdown

    def cleanup(self):
        self._kill_group(signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster_node(pg):
    deployment = Deployment()
    deployment.set("web", "listen", '""')  # not needed here (pg_web_test.py runs it)
    deployment.set("cluster", "postgres", '"%s"' % pg.conninfo)
    return deployment, deployment.start_node()


def raw_login(deployment, node, user, password=PASSWORD, role=0):
    link = RawTls(node)
    reply = link.login(user, password, role=role)
    return link, reply


def scenario_pg_two_nodes():
    started = time.monotonic()
    pg = Postgres()
    admin = Deployment()
    migrate = admin.admin(["cluster", "migrate", "--pg", pg.conninfo])
    if migrate.code != 0:
        raise TestFailure("cluster migrate: %r" % migrate)
    checks = Checks()

    a_dep, a = start_cluster_node(pg)
    b_dep, b = start_cluster_node(pg)
    log("two nodes on one PostgreSQL: A %s, B %s (%.1f s)" % (a.address, b.address, time.monotonic() - started))

    added = admin.admin(["user", "-d", admin.dir, "--pg", pg.conninfo, "add", "alice", "--name", "Alice"],
                        password=PASSWORD)
    checks.check(added.code == 0, "user add --pg: %r" % added)
    added = admin.admin(["user", "-d", admin.dir, "--pg", pg.conninfo, "add", "bob"], password=PASSWORD)
    checks.check(added.code == 0, "user add --pg bob: %r" % added)
    again = admin.admin(["user", "-d", admin.dir, "--pg", pg.conninfo, "add", "alice"], password=PASSWORD)
    checks.check(again.code == 4 and "already exists" in again.err, "a second add of alice exits 4: %r" % again)
    listed = admin.admin(["user", "-d", admin.dir, "--pg", pg.conninfo, "list"])
    checks.check(listed.code == 0 and "alice" in listed.out and "bob" in listed.out, "user list --pg: %r" % listed)
    local = admin.admin(["user", "-d", a_dep.dir, "list"])
    checks.check(local.code == 0 and "alice" not in local.out, "node A's own LMDB holds no alice: %r" % local)

    # The real terminal CLI logs in on both nodes with the one account.
    on_a = a_dep.start_login("alice", PASSWORD, node=a)
    on_b = b_dep.start_login("bob", PASSWORD, node=b)
    log("alice logged in on A, bob on B with `tsunagu login`")
    recorded = pg.sql("SELECT observed IS NOT NULL AND time > 0 FROM logins WHERE user_id = 'alice'")
    checks.check(recorded == "t", "alice's last login is in PostgreSQL: %r" % recorded)
    # A lookup on B of alice (logged in on A) finds her account; presence across
    # nodes is Redis' part (h-clbus), so she is offline as far as B knows.
    asker, reply = raw_login(b_dep, b, "bob", role=1)
    lookup = asker.request(harness.METHOD_LOOKUP, [(harness.ATTR_USER_ID, harness.text("alice"))])
    name = lookup.get(harness.ATTR_DISPLAY_NAME)
    checks.check((lookup.error() or (None,))[0] == ERROR_OFFLINE and name == b"Alice",
                 "B finds alice's account (offline there: presence across nodes is Redis'): %r %r" % (
                     lookup.error(), name))
    # Her last login, read on B's committer worker rather than on its loop.
    last_login = pg.sql("SELECT time FROM logins WHERE user_id = 'alice'")
    checks.check(str(lookup.u64(harness.ATTR_LAST_SEEN)) == last_login,
                 "B's offline answer says when alice last logged in (%s): %r" % (
                     last_login, lookup.u64(harness.ATTR_LAST_SEEN)))
    asker.close()
    on_a.kill()
    on_a2 = b_dep.start_login("alice", PASSWORD, node=b)
    log("alice logged in on B too")
    on_a2.kill()
    on_b.kill()

    link, reply = raw_login(a_dep, a, "alice", role=1)
    checks.check(reply.error() is None, "query login on A: %r" % (reply.error(),))
    # Voicemail is in PostgreSQL too (pg_shared_features_test.py): an empty mailbox, not a refusal.
    listed = link.request(METHOD_VOICEMAIL_LIST, [])
    checks.check(listed.error() is None, "voicemail is served in cluster mode: %r" % (listed.error(),))
    link.close()

    # The group commit's transaction dies (its backend is terminated inside
    # it): the login's reply, held for that commit, becomes a 503.
    added = admin.admin(["user", "-d", admin.dir, "--pg", pg.conninfo, "add", "carol"], password=PASSWORD)
    checks.check(added.code == 0, "user add --pg carol: %r" % added)
    pg.sql("CREATE FUNCTION end_own_backend() RETURNS trigger LANGUAGE plpgsql AS "
           "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$")
    pg.sql("CREATE TRIGGER carol_dies BEFORE INSERT OR UPDATE ON logins FOR EACH ROW "
           "WHEN (NEW.user_id = 'carol') EXECUTE FUNCTION end_own_backend()")
    link, reply = raw_login(a_dep, a, "carol")
    code, reason = reply.error() or (None, "")
    checks.check(code == ERROR_UNAVAILABLE and "storage" in reason,
                 "a login whose commit failed is answered 503: %r" % ((code, reason),))
    link.close()
    checks.check(pg.sql("SELECT count(*) FROM logins WHERE user_id = 'carol'") == "0",
                 "the failed login is not recorded")
    checks.check(a.alive(), "node A stays up after a failed commit")
    pg.sql("DROP TRIGGER carol_dies ON logins")
    link, reply = raw_login(a_dep, a, "carol")
    checks.check(reply.error() is None, "the next login commits (the committer reconnected): %r" % (reply.error(),))
    link.close()
    checks.check(pg.sql("SELECT count(*) FROM logins WHERE user_id = 'carol'") == "1", "and is recorded")
    log("a failed group commit answered 503; the next one committed")

    # `user remove --pg` moves the shared epoch on: carol's link on B ends.
    on_b_link, reply = raw_login(b_dep, b, "carol")
    checks.check(reply.error() is None, "carol logs in on B: %r" % (reply.error(),))
    removed = admin.admin(["user", "-d", admin.dir, "--pg", pg.conninfo, "remove", "carol"])
    checks.check(removed.code == 0, "user remove --pg carol: %r" % removed)
    checks.check(on_b_link.wait_closed(10), "carol's link on B ends after the removal (account epoch in PostgreSQL)")
    link, reply = raw_login(a_dep, a, "carol")
    checks.check((reply.error() or (None,))[0] == 401, "carol can no longer log in on A: %r" % (reply.error(),))
    link.close()

    # PostgreSQL stopped: logins get 503, the nodes stay up.
    pg.stop()
    for node, dep in ((a, a_dep), (b, b_dep)):
        link, reply = raw_login(dep, node, "alice")
        code, reason = reply.error() or (None, "")
        checks.check(code == ERROR_UNAVAILABLE and "storage" in reason, "login with PostgreSQL down: %r" % ((code, reason),))
        link.close()
        checks.check(node.alive(), "the node stays up with PostgreSQL down")
    log("PostgreSQL stopped: logins refused with 503 on both nodes")

    pg.start()

    def login_works(node, dep):
        def attempt():
            link, reply = raw_login(dep, node, "alice")
            link.close()
            return reply.error() is None
        wait_until(attempt, 20, 0.3, "a login to succeed again after PostgreSQL restarted")
    login_works(a, a_dep)
    login_works(b, b_dep)
    log("PostgreSQL started again: logins work on both nodes")

    # Acknowledged, then kill -9: the row is there after crash recovery.
    link, reply = raw_login(b_dep, b, "bob")
    checks.check(reply.error() is None, "bob's login on B: %r" % (reply.error(),))
    mapped = reply.xor_address()
    pg.crash()
    link.close()
    pg.start()
    observed = pg.sql("SELECT observed FROM logins WHERE user_id = 'bob'")
    checks.check(mapped is not None and observed == "%s:%d" % mapped,
                 "the login acknowledged before kill -9 is recorded: %r vs %r" % (observed, mapped))
    checks.check(a.alive() and b.alive(), "both nodes outlived the PostgreSQL crash")
    log("a login acknowledged before kill -9 of the postmaster survived (%.1f s)" % (time.monotonic() - started))
    checks.finish()


if __name__ == "__main__":
    sys.exit(harness.run_scenarios({"pg_two_nodes": scenario_pg_two_nodes}, sys.argv))
