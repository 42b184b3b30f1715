#!/usr/bin/env python3
"""Cluster mode with real processes: one redis-server and three tsunagu-rendezvous
nodes (A, B, C) on 127.0.0.1, started by this test with `run --redis --node-name`.

The three nodes share one deployment's CA and certificates (its directory copied
before any node ran) and each keeps its own LMDB: until accounts live in
PostgreSQL (docs/cluster.md) the same accounts are added to each.

Run one scenario:  TSUNAGU_BUILD=build python3 redis_node_test.py SCENARIO
Each scenario is its own meson test (suite cluster); exit 77 = skipped, saying why.
Every process is started here and killed by its PID (harness.py) on every exit path.
"""

import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import harness as h  # noqa: E402
from harness import Checks, Deployment, TestFailure, log, wait_until  # noqa: E402

ALICE, ALICE_PW = "alice", "alice-password-1"
BOB, BOB_PW = "bob", "bob-password-22"
CAROL, CAROL_PW = "carol", "carol-password-333"
USERS = ((ALICE, ALICE_PW), (BOB, BOB_PW), (CAROL, CAROL_PW))
LOOP = ["--ice-address", "127.0.0.1"]
KEEPALIVE_S = 2  # presence.keepalive_interval here: rows live KEEPALIVE_S * MISSES seconds after the last one
MISSES = 2
EXIT_FAILED = 11  # `tsunagu call`: the call failed or ended abnormally
LAN_AGENT = os.path.join(h.BUILD, "lan-agent", "tsunagu-lan-agent")


def password_of(user):
    return dict(USERS)[user]


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_tcp_port(cluster_bus=False):
    """A free port; with cluster_bus, one whose +10000 (a Redis Cluster member's bus port,
    which must be a port at all: below 65536) is free too, so picked below the ephemeral range."""
    if not cluster_bus:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for _ in range(200):
        port = random.randrange(20000, 30000)
        if port_is_free(port) and port_is_free(port + 10000):
            return port
    raise TestFailure("no free port pair (P, P+10000) for a Redis Cluster member in 200 tries")


class Redis:
    """A redis-server child on a port picked here; no persistence (a restart starts empty).
    cluster_mode: a member of a Redis Cluster (RedisCluster joins three)."""

    def __init__(self, root, name="redis", cluster_mode=False, password=None, netns=None, host="127.0.0.1"):
        """netns/host: run inside that network namespace, bound to host (the port is picked in this one).
        password: requirepass, so the nodes must AUTH ([cluster] redis_password_file)."""
        self.password = password
        self.wrapper = ["ip", "netns", "exec", netns] if netns else []
        self.host = host
        self.port = free_tcp_port(cluster_bus=cluster_mode)
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.cluster_mode = cluster_mode
        self.proc = None
        self.start()

    def start(self):
        extra = []
        if self.cluster_mode:
            extra = ["--cluster-enabled", "yes", "--cluster-config-file", os.path.join(self.dir, "nodes.conf"),
                     "--cluster-node-timeout", "2000"]
        if self.password:
            extra += ["--requirepass", self.password]
        if self.host != "127.0.0.1":  # reached from other namespaces the test made, nowhere else
            extra += ["--protected-mode", "no"]
        self.proc = h.spawn(self.wrapper + ["redis-server", "--port", str(self.port), "--bind", self.host, "--save", "",
                             "--appendonly", "no", "--daemonize", "no", "--dir", self.dir,
                             "--logfile", os.path.join(self.dir, "redis.log")] + extra)
        wait_until(lambda: self.cli("PING") == "PONG", 10 * h.SLOW, 0.05, "redis-server to answer PING")

    def cli(self, *args):
        try:
            env = dict(os.environ, REDISCLI_AUTH=self.password) if self.password else None
            out = subprocess.run(self.wrapper + ["redis-cli", "-c", "-h", self.host, "-p", str(self.port), "--raw"] +
                                 list(args), capture_output=True,
                                 text=True, timeout=10, stdin=subprocess.DEVNULL, env=env)
        except subprocess.TimeoutExpired:
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)


class RedisCluster:
    """Three primaries joined by `redis-cli --cluster create`, every slot assigned."""

    def __init__(self, root):
        self.servers = [Redis(root, "redis-%d" % i, cluster_mode=True) for i in range(3)]
        create = subprocess.run(["redis-cli", "--cluster", "create"] + [s.address for s in self.servers] +
                                ["--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True,
                                timeout=60, stdin=subprocess.DEVNULL)
        if create.returncode != 0:
            raise TestFailure("redis-cli --cluster create: %s %s" % (create.stdout[-500:], create.stderr[-500:]))
        wait_until(lambda: all("cluster_state:ok" in (s.cli("CLUSTER", "INFO") or "") for s in self.servers),
                   20 * h.SLOW, 0.1, "the Redis Cluster to be ok on every primary")

    def cli(self, *args):
        return self.servers[0].cli(*args)  # -c: redirects followed

    @property
    def address(self):
        return ",".join(s.address for s in self.servers)


class Cluster:
    """A deployment copied into one directory per node, the accounts in each, one Redis."""

    def __init__(self, names=("node-a", "node-b", "node-c"), redis_cluster=False, postgres=None, redis_password=None):
        for program in ("redis-server", "redis-cli"):
            if shutil.which(program) is None:
                raise h.Skip("%s is not installed (scripts/install-deps.sh test)" % program)
        self.d = Deployment(presence__keepalive_interval=KEEPALIVE_S, presence__keepalive_misses=MISSES)
        self.redis = RedisCluster(self.d.root) if redis_cluster else Redis(self.d.root, password=redis_password)
        self.postgres = postgres
        if postgres is not None:  # the accounts once, in PostgreSQL, for every node
            migrate = self.d.admin(["cluster", "migrate", "--pg", postgres.conninfo])
            if migrate.code != 0:
                raise TestFailure("cluster migrate: %r" % migrate)
            for user, password in USERS:
                result = self.d.admin(["user", "-d", self.d.dir, "--pg", postgres.conninfo, "add", user],
                                      password=password)
                if result.code != 0:
                    raise TestFailure("user add --pg %s: %r" % (user, result))
        self.dirs = {}
        for name in names:
            directory = os.path.join(self.d.root, name)
            shutil.copytree(self.d.dir, directory)
            for user, password in USERS if postgres is None else ():
                result = self.d.admin(["user", "-d", directory, "add", user], password=password)
                if result.code != 0:
                    raise TestFailure("user add %s on %s: %r" % (user, name, result))
            self.dirs[name] = directory
        self.nodes = {}

    def start(self, name):
        """`run --redis --node-name` for one node's directory; returns a harness Node."""
        saved = self.d.dir
        self.d.dir = self.dirs[name]
        try:
            pg = ["--pg", self.postgres.conninfo] if self.postgres is not None else []
            node = self.d.start_node_with(["--redis", self.redis.address, "--node-name", name] + pg)
        finally:
            self.d.dir = saved
        self.nodes[name] = node
        return node

    def use(self, name):
        """Later CLI commands of the deployment go to this node."""
        self.d.node = self.nodes[name]
        return self.d

    def whereis(self, name, asker, target):
        return self.d.cli(["whereis", target, "--json"], asker, password_of(asker), node=self.nodes[name])

    def check_running(self, checks, names=None):
        for name in names or self.nodes:
            checks.check(self.nodes[name].alive(), "node %s is still running" % name)

    def holder(self, user):
        return self.redis.cli("GET", "presence:{%s}" % user)


def start_node_with(self, extra, wrapper=(), ip="127.0.0.1", ports=(0, 0, 0)):
    """Deployment.start_node with extra `run` options (cluster mode's); wrapper: a command prefix
    (`ip netns exec NS`); ip and ports (TLS, STUN, agents) of its listeners."""
    ready = self._next("ready") + ".json"
    log_path = self._next("node") + ".log"
    args = list(wrapper) + [
        h.RENDEZVOUS, "run", "-d", self.dir, "--listen", "%s:%d" % (ip, ports[0]),
        "--stun-listen", "%s:%d" % (ip, ports[1]), "--agent-listen", "%s:%d" % (ip, ports[2]), "--web-listen", "off",
        "--ready-file", ready, "--log-level", "debug"]
    with open(log_path, "w") as log_file:
        proc = h.spawn(args + extra, stdout=log_file, stderr=subprocess.STDOUT)

    def ready_now():
        if proc.poll() is not None:
            with open(log_path, errors="replace") as f:
                raise TestFailure("node exited with %d before it was ready:\n%s" % (proc.returncode, f.read()))
        try:
            with open(ready) as f:
                return h.json.load(f)
        except (OSError, ValueError):
            return None

    data = wait_until(ready_now, h.READY_TIMEOUT, 0.05, "the node's ready file")
    return h.Node(self, proc, data, log_path)


Deployment.start_node_with = start_node_with


def start_listener(c, name, args, user=BOB):
    d = c.use(name)
    t = h.spawn_cli(d, ["listen"] + args + LOOP, user, password_of(user))
    wait_until(lambda: "listening as %s" % user in t.err() or (not t.alive() and _raise(
        "listen as %s exited with %s: %r" % (user, t.proc.returncode, t.err()))),
        h.LOGIN_TIMEOUT, 0.05, "`tsunagu listen` as %s to log in" % user)
    return t


def _raise(message):
    raise TestFailure(message)


def exit_of(t, timeout=40):
    code = t.wait_exit(timeout)
    if code is None:
        raise TestFailure("%s did not exit within %d s: stderr %r" % (t.user, timeout * h.SLOW, t.err()))
    return code


# --------------------------------------------------------------------------
# 1. a lookup from A of a user on C, and a call from A to C

def lookup_and_call(redis_cluster=False, postgres=None):
    c = Cluster(redis_cluster=redis_cluster, postgres=postgres)
    checks = Checks()
    for name in c.dirs:
        c.start(name)
    callee_report = c.d.path("callee-report.json")
    caller_report = c.d.path("caller-report.json")
    listener = start_listener(c, "node-c", ["--auto-accept-from", ALICE, "--once", "--report", callee_report])
    wait_until(lambda: c.holder(BOB) == "node-c", 10 * h.SLOW, 0.05, "presence:{bob} = node-c in Redis")
    checks.check(True, "bob's presence row names node-c")

    result = c.whereis("node-a", CAROL, BOB)
    row = result.json() if result.code == 0 else {}
    checks.check(result.code == 0 and row.get("online") is True,
                 "whereis bob asked on node A: online, answered by node C (%r)" % result)
    checks.check(c.whereis("node-a", CAROL, "nobody-here").code != 0, "whereis of an unknown ID on node A still fails")

    caller = h.spawn_cli(c.use("node-a"), ["call", BOB, "--echo-test", "5", "--report", caller_report] + LOOP,
                         ALICE, ALICE_PW)
    code = exit_of(caller)
    checks.check(code == 0, "alice on node A calls bob on node C: exit 0 (%r)" % caller.err()[-800:])
    echo = re.search(r"echo test: (\d+) sent, (\d+) returned", caller.out())
    checks.check(echo is not None and echo.groups() == ("5", "5"),
                 "the echo test over ICE on loopback: 5 sent, 5 returned (%r)" % caller.out().strip())
    checks.check(exit_of(listener, 30) == 0, "bob's `listen --once` exits 0 after the call (%r)" % listener.err()[-800:])
    if os.path.exists(caller_report) and os.path.exists(callee_report):
        with open(caller_report) as f1, open(callee_report) as f2:
            a, b = h.json.load(f1), h.json.load(f2)
        checks.check(a.get("call_id") and a.get("call_id") == b.get("call_id"), "both reports name the same call")

    # carol logs in on C, then again on A: the link on C is displaced, as on one node.
    first = c.d.start_login(CAROL, CAROL_PW, node=c.nodes["node-c"])
    wait_until(lambda: c.holder(CAROL) == "node-c", 10 * h.SLOW, 0.05, "presence:{carol} = node-c")
    second = c.d.start_login(CAROL, CAROL_PW, node=c.nodes["node-a"])
    status = first.wait_exit(10)
    checks.check(status == 0 and "logged in elsewhere" in first.out(),
                 "carol's login on node C ends, logged in elsewhere, when she logs in on node A (exit %r, %r)" % (
                     status, first.out()[-300:]))
    checks.check(c.holder(CAROL) == "node-a", "presence:{carol} names node-a (the compare-delete on C left it)")
    result = c.whereis("node-b", ALICE, CAROL)
    checks.check(result.code == 0 and result.json().get("observed") == "%s:%d" % second.observed(),
                 "whereis carol from node B: the login on node A (%r)" % result)
    second.kill()
    c.check_running(checks)
    checks.finish()


# --------------------------------------------------------------------------
# 2. an agent linked to B answers a lookup of EXT@DOMAIN (and of +NUMBER) asked on A

PREFIX = "+81-6-1234-"


def agent_lookup():
    if not os.access(LAN_AGENT, os.X_OK):
        raise h.Skip("%s is not built" % LAN_AGENT)
    c = Cluster()
    checks = Checks()
    bundle = c.d.path("acme")
    result = c.d.admin(["agent", "-d", c.dirs["node-b"], "enroll", "acme", "--domain", "acme", "--prefix", PREFIX,
                        "--out", bundle, "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"])
    if result.code != 0:
        raise TestFailure("agent enroll on node B: %r" % result)
    # A +NUMBER's route is read from the asking node's own enrolments (its LMDB here): A is given them too.
    result = c.d.admin(["agent", "-d", c.dirs["node-a"], "enroll", "acme", "--domain", "acme", "--prefix", PREFIX,
                        "--out", c.d.path("acme-on-a"), "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"])
    if result.code != 0:
        raise TestFailure("agent enroll on node A: %r" % result)
    for name in c.dirs:
        c.start(name)
    agent_toml = h.write_agent_toml(bundle, c.nodes["node-b"].agent_address)
    with open(agent_toml) as f:
        text = f.read()
    with open(agent_toml, "w") as f:
        f.write(text.replace('domains = ["acme"]\n', 'domains = ["acme"]\nnumber_prefixes = ["%s"]\n' % PREFIX, 1))
    agent_log = os.path.join(bundle, "agent.log")
    with open(agent_log, "w") as out:
        agent = h.spawn([LAN_AGENT, "run", "-c", agent_toml], stdout=out,
                        stderr=subprocess.STDOUT)
    wait_until(lambda: "linked to the node" in open(agent_log, errors="replace").read() or (
        agent.poll() is not None and _raise("the agent exited: %s" % open(agent_log).read())),
        10 * h.SLOW, 0.05, "the agent to link to node B")
    wait_until(lambda: c.redis.cli("GET", "agent:{acme}") == "node-b", 10 * h.SLOW, 0.05,
               "agent:{acme} = node-b in Redis")
    checks.check(True, "the agent's domain row names node-b")

    result = c.whereis("node-a", ALICE, "4106@acme")
    row = result.json() if result.out.strip().startswith("{") else {}
    log("  whereis 4106@acme on node A: %r" % result)
    checks.check("lookup 4106@acme by alice" in open(agent_log, errors="replace").read(),
                 "the agent on node B was asked for 4106@acme on behalf of alice (asked on node A)")
    checks.check(row.get("error") != 502, "node A did not answer 'agent offline' itself (%r)" % row)
    # Node A alone would say "Unknown User" for an ID it has no account or route for.
    checks.check(row.get("agent") == "acme" or "no such extension" in row.get("reason", ""),
                 "the answer is the agent's (%r)" % row)
    checks.check(c.redis.cli("GET", "prefix:{%s}" % PREFIX) == "node-b", "the agent's prefix row names node-b")
    result = c.whereis("node-a", ALICE, PREFIX + "4106")
    checks.check(("lookup %s4106 by alice" % PREFIX) in open(agent_log, errors="replace").read() and
                 "no such extension" in result.out,
                 "%s4106 asked on node A (the route from A's LMDB) is answered by the agent on B: %r" % (PREFIX, result))

    # The agent's link closes: its row goes at once, and A answers from what it knows.
    agent.kill()
    agent.wait(timeout=10)
    wait_until(lambda: c.redis.cli("EXISTS", "agent:{acme}") == "0" and
               c.redis.cli("EXISTS", "prefix:{%s}" % PREFIX) == "0", 10 * h.SLOW, 0.05, "the agent's rows to go")
    checks.check(True, "agent:{acme} and prefix:{%s} deleted when the agent's link closed" % PREFIX)
    checks.check(c.whereis("node-a", ALICE, "4106@acme").code != 0, "whereis 4106@acme on node A fails once the agent is gone")
    c.check_running(checks)
    checks.finish()


# --------------------------------------------------------------------------
# 3. kill -9 of node C: its call ends on A, its terminal reachable again through A,
#    its rows expire; a Redis restart is rebuilt from keepalives

def node_death():
    c = Cluster()
    checks = Checks()
    for name in c.dirs:
        c.start(name)
    carol = c.d.start_login(CAROL, CAROL_PW, node=c.nodes["node-c"])
    listener = start_listener(c, "node-c", ["--auto-accept-from", ALICE])
    wait_until(lambda: c.holder(BOB) == "node-c" and c.holder(CAROL) == "node-c", 10 * h.SLOW, 0.05,
               "bob's and carol's rows naming node-c")
    caller = h.spawn_cli(c.use("node-a"), ["call", BOB, "--pipe"] + LOOP, ALICE, ALICE_PW, stdin=subprocess.PIPE)
    wait_until(lambda: ("connected after" in caller.err() and "accepted after" in caller.err())
               or (not caller.alive() and _raise("the caller exited early: %r" % caller.err())),
               30 * h.SLOW, 0.05, "alice's call (node A) to bob (node C) to connect")
    checks.check(True, "the call from node A to node C connected")

    c.nodes["node-c"].kill()
    killed_at = time.monotonic()
    listener.kill()  # its node is gone; it stands for a terminal that restarts against another node
    carol.kill()
    code = exit_of(caller, 20)
    checks.check(code == EXIT_FAILED and "Link Lost: the node holding the call is gone" in caller.err(),
                 "the caller on node A is told the call ended, link lost, when node C died (exit %s, %r)" % (
                     code, caller.err()[-300:]))

    # bob's terminal again, against node A: reachable from node B within 5 s of the kill.
    bob = c.d.start_login(BOB, BOB_PW, node=c.nodes["node-a"])

    def bob_online_from_b():
        result = c.whereis("node-b", ALICE, BOB)
        return result.code == 0 and result.json().get("online") is True
    wait_until(bob_online_from_b, 10 * h.SLOW, 0.1, "bob online as seen from node B")
    took = time.monotonic() - killed_at
    log("  bob reachable from node B %.1f s after node C was killed" % took)
    checks.check(c.holder(BOB) == "node-a", "presence:{bob} now names node-a")
    checks.check(took < 5 * h.SLOW, "bob reachable again through node A within 5 s of the kill (%.1f s)" % took)

    # carol did not come back: her row expires by its TTL.
    ttl_ms = int(c.redis.cli("PTTL", "presence:{%s}" % CAROL) or -2)
    checks.check(0 < ttl_ms <= KEEPALIVE_S * MISSES * 1000, "carol's row has a TTL (%d ms)" % ttl_ms)
    wait_until(lambda: c.redis.cli("EXISTS", "presence:{%s}" % CAROL) == "0", (KEEPALIVE_S * MISSES + 5) * h.SLOW,
               0.1, "carol's row to expire")
    checks.check(True, "carol's row (node C) expired by its TTL")

    # Redis restarted empty: bob's row is written again by his next keepalive.
    c.redis.kill()
    # While it is down, a node that does not hold bob cannot know who does: 503, not "offline".
    result = wait_until(lambda: (lambda r: r if r.code != 0 and r.json().get("error") == 503 else None)(
        c.whereis("node-b", ALICE, BOB)), 10 * h.SLOW, 0.2, "a lookup on node B to get 503 with Redis down")
    checks.check(True, "with Redis down, bob (on node A) asked on node B: 503 (%r)" % result.out.strip())
    result = c.whereis("node-a", ALICE, BOB)
    checks.check(result.code == 0 and result.json().get("online") is True,
                 "with Redis down, bob asked on node A, which holds him: online (%r)" % result)
    c.redis.start()
    checks.check(c.holder(BOB) in (None, ""), "the restarted Redis starts empty")
    wait_until(lambda: c.holder(BOB) == "node-a", (KEEPALIVE_S * 3 + 5) * h.SLOW, 0.1,
               "bob's row to come back after the Redis restart")
    checks.check(True, "presence rebuilt from keepalives after the Redis restart")
    result = c.whereis("node-b", ALICE, BOB)
    checks.check(result.code == 0 and result.json().get("online") is True,
                 "bob reachable from node B again after the Redis restart (%r)" % result)
    bob.kill()
    wait_until(lambda: c.holder(BOB) in (None, ""), 10 * h.SLOW, 0.05, "bob's row to go when his link closed")
    checks.check(True, "bob's row deleted when his link to node A closed")
    c.check_running(checks, ["node-a", "node-b"])
    checks.finish()


# --------------------------------------------------------------------------
# 4. the same lookup and call with the nodes on a 3-primary Redis Cluster

def redis_cluster_lookup_and_call():
    lookup_and_call(redis_cluster=True)


# --------------------------------------------------------------------------
# 5. the whole of cluster mode: accounts added once in PostgreSQL, presence and
#    delivery in Redis; no node holds an account of its own

def postgres_lookup_and_call():
    from pg_node_test import Postgres
    postgres = Postgres()
    lookup_and_call(postgres=postgres)
    # Presence logins record the last login (query links, like alice's call, do not).
    users = postgres.sql("SELECT string_agg(user_id, ',' ORDER BY user_id) FROM logins")
    if users != "bob,carol":
        raise TestFailure("bob's and carol's presence logins (on nodes C and A) are recorded in PostgreSQL's "
                          "logins table, and only theirs (%r)" % users)
    log("ok    bob's and carol's presence logins are in PostgreSQL's logins table")


# --------------------------------------------------------------------------
# 6. Redis with a password: nodes AUTH from [cluster] redis_password_file

def write_redis_password(c, name, password, mode=0o600):
    """[cluster] redis_password_file in the node's node.toml, and the file itself."""
    directory = c.dirs[name]
    path = os.path.join(directory, "redis.password")
    with open(path, "w") as f:
        f.write(password + "\n")
    os.chmod(path, mode)
    with open(os.path.join(directory, "node.toml"), "a") as f:
        f.write('\n[cluster]\nredis_password_file = "redis.password"\n')


def redis_auth():
    secret = "bus secret " + secrets.token_hex(8)
    c = Cluster(names=("node-a", "node-c", "node-x", "node-y"), redis_password=secret)
    checks = Checks()
    for name in ("node-a", "node-c"):
        write_redis_password(c, name, secret)
    write_redis_password(c, "node-x", "not the password")
    write_redis_password(c, "node-y", secret, mode=0o644)
    for name in ("node-a", "node-c", "node-x"):
        c.start(name)

    listener = start_listener(c, "node-c", ["--auto-accept-from", ALICE, "--once"])
    wait_until(lambda: c.holder(BOB) == "node-c", 10 * h.SLOW, 0.05, "presence:{bob} = node-c in a Redis with a password")
    checks.check(True, "node C, with the password, wrote bob's presence row")
    result = c.whereis("node-a", CAROL, BOB)
    checks.check(result.code == 0 and result.json().get("online") is True,
                 "whereis bob asked on node A (with the password): online (%r)" % result)

    # node X has the wrong password: Redis refuses it, so it cannot see or reach bob.
    result = c.whereis("node-x", CAROL, BOB)
    checks.check(result.code != 0 and (result.json() or {}).get("error") == 503,
                 "whereis bob asked on node X (wrong password): 503, not a guess that he is offline (%r)" % result)
    wait_until(lambda: "AUTH refused" in open(c.nodes["node-x"].log_path, errors="replace").read(),
               10 * h.SLOW, 0.1, "node X's log to say Redis refused its AUTH")
    checks.check(True, "node X's log says Redis refused its AUTH")
    checks.check(c.redis.cli("CLIENT", "LIST") is not None, "Redis still answers the test's own AUTHed client")

    # node Y's password file may be read by others: it does not start.
    saved = c.d.dir
    c.d.dir = c.dirs["node-y"]
    try:
        start = c.d.admin(["run", "-d", c.dirs["node-y"], "--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0",
                           "--agent-listen", "127.0.0.1:0", "--web-listen", "off", "--redis", c.redis.address,
                           "--node-name", "node-y"])
    finally:
        c.d.dir = saved
    checks.check(start.code != 0 and "may be read by others" in start.err,
                 "node Y refuses to start with a password file others may read (%r)" % (start,))
    listener.kill()
    c.check_running(checks, ["node-a", "node-c", "node-x"])
    checks.finish()


SCENARIOS = {"auth": redis_auth, "postgres_lookup_and_call": postgres_lookup_and_call, "lookup_and_call": lookup_and_call, "redis_cluster_lookup_and_call": redis_cluster_lookup_and_call, "agent_lookup": agent_lookup, "node_death": node_death}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
