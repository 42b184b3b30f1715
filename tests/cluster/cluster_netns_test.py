#!/usr/bin/env python3
"""Issue 19's proof in network namespaces: three rendezvous nodes, one PostgreSQL, one Redis.

    hub (10.99.0.1: bridge br0, PostgreSQL :5432, redis-server)
     |-- na  10.99.0.11  node A: run --redis --pg
     |-- nb  10.99.0.12  node B: run --redis --pg (the LAN agent links here)
     |-- nc  10.99.0.13  node C: run --redis --pg
     `-- term 10.99.0.20 the terminals (alice, bob, carol) and the LAN agent of acme

Every namespace is made here (named "tc<pid>-..."), nothing is added to the root
namespace, and the namespaces go with every process in them on every exit path
(atexit, SIGTERM from meson's timeout, failures). Accounts are added once in
PostgreSQL (`user add --pg`), and the LAN agent is enrolled once there
(`agent --pg enroll`); no node has an account or an agent in its LMDB. Every node carries the
deployment's one certificate, so the terminals check the name 127.0.0.1 it holds.

Scenario `netns_three_nodes`:
  - bob listens given the node list C,A,B (on C); alice on A calls him: ring, accept, ICE, data;
  - alice on A talks with carol on C (`call --audio-in/--audio-out`, `listen --once` with a
    greeting): Opus/RTP both ways, each side's recording scored against what the other said;
  - a lookup of 4106@acme asked on A is answered through the agent linked to B, from its table;
  - a call from A through C's signalling; kill -9 of node C: the caller's call ends with
    "link lost", bob's terminal moves to A by itself and is online as seen from B in < 5 s
    (the time is printed); a new call from alice to bob succeeds.
Scenario `netns_redis_cluster`: the same on a 3-primary Redis Cluster (three redis-server
  --cluster-enabled in the hub namespace, joined with `redis-cli --cluster create`), the nodes
  given all three as seeds.
Scenario `netns_restarts` (nodes A and C):
  - Redis killed: a lookup of bob (on C) asked on A gets 503; Redis started again empty: node C
    reconnects and bob's row is back from his keepalives within one keepalive interval of that
    (both times printed), bob is reachable from A and a call from A to him works (the bus
    subscribed again);
  - each node holds two PostgreSQL connections;
  - carol's login and `user add --pg dave` acknowledged, then kill -9 of PostgreSQL: a login on A
    is refused with 503 (storage error), `user add --pg` fails, bob stays reachable, the nodes stay
    up; PostgreSQL started again (crash recovery): carol's and bob's login rows and dave's account
    are there, nothing of the refused writes is, and a login on A works and is recorded.
Exit 77 (skipped, saying why) when not root or without ip, redis-server or PostgreSQL.
"""

import atexit
import os
import re
import shutil
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

import harness as h  # noqa: E402
from harness import Checks, Deployment, Skip, TestFailure, log, wait_until  # noqa: E402
import redis_node_test as rn  # noqa: E402

NET = "10.99.0"
HUB_IP = NET + ".1"
NODE_IPS = {"node-a": NET + ".11", "node-b": NET + ".12", "node-c": NET + ".13"}
TERM_IP = NET + ".20"
TLS_PORT, STUN_PORT, AGENT_PORT = 7400, 3478, 7401
CERT_NAME = ["--server-name", "127.0.0.1"]  # the name the deployment's node certificate carries
EXT_MAC, EXT_IP = "02:00:00:00:41:06", "10.77.0.50"


def ip_tool():
    for candidate in (shutil.which("ip"), "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise Skip("ip (iproute2) is not installed")


class Namespaces:
    """The test's network: a hub namespace with a bridge, one veth per other namespace."""

    def __init__(self, members):
        if os.geteuid() != 0:
            raise Skip("needs root (network namespaces)")
        self.ip = ip_tool()
        self.prefix = "tc%d-" % os.getpid()
        self.made = []
        atexit.register(self.teardown)
        self.add("hub")
        self.sh(["link", "add", "br0", "type", "bridge", "forward_delay", "0"], "hub")
        self.sh(["addr", "add", HUB_IP + "/24", "dev", "br0"], "hub")
        self.sh(["link", "set", "br0", "up"], "hub")
        for short, address in members.items():
            self.add(short)
            # Both ends made inside their namespaces; "eth0" because libnice skips interfaces named veth*.
            made = self.sh(["link", "add", "eth0", "netns", self.name(short), "type", "veth", "peer", "name",
                            "p-" + short, "netns", self.name("hub")], None, check=False)
            if made.returncode != 0:
                raise Skip("cannot create a veth pair: %s" % made.stderr.strip())
            self.sh(["link", "set", "p-" + short, "master", "br0", "up"], "hub")
            self.sh(["addr", "add", address + "/24", "dev", "eth0"], short)
            self.sh(["link", "set", "eth0", "up"], short)

    def name(self, short):
        return self.prefix + short

    def wrapper(self, short):
        """A command prefix running a program inside the namespace (ip execs it: the PID is the program's)."""
        return [self.ip, "netns", "exec", self.name(short)]

    def sh(self, args, short, check=True):
        full = (self.wrapper(short) + [self.ip] if short else [self.ip]) + args
        result = subprocess.run(full, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise TestFailure("%s: %s" % (" ".join(full), result.stderr.strip()))
        return result

    def add(self, short):
        result = self.sh(["netns", "add", self.name(short)], None, check=False)
        if result.returncode != 0:
            raise Skip("cannot create network namespaces: %s" % result.stderr.strip())
        self.made.append(self.name(short))
        self.sh(["link", "set", "lo", "up"], short)
        # IPv4 only: no IPv6 link-local ICE candidates, no duplicate address detection to wait for.
        subprocess.run(self.wrapper(short) + ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"],
                       capture_output=True, timeout=20, stdin=subprocess.DEVNULL)

    def teardown(self):
        # Whatever still runs inside our namespaces is ours (started here); then the namespaces go.
        for name in self.made:
            pids = subprocess.run([self.ip, "netns", "pids", name], capture_output=True, text=True, timeout=10)
            for pid in pids.stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
        for name in self.made:
            subprocess.run([self.ip, "netns", "del", name], capture_output=True, timeout=10)
        self.made = []


def node_list(*names):
    return types.SimpleNamespace(address=",".join("%s:%d" % (NODE_IPS[n], TLS_PORT) for n in names))


class NetnsRedisCluster:
    """Three redis-server --cluster-enabled primaries in the hub namespace on HUB_IP, joined by
    `redis-cli --cluster create` run there; the nodes are given all three as seeds."""

    def __init__(self, root, netns):
        self.servers = [rn.Redis(root, "redis-%d" % i, cluster_mode=True, netns=netns, host=HUB_IP) for i in range(3)]
        create = subprocess.run(["ip", "netns", "exec", netns, "redis-cli", "--cluster", "create"] +
                                [s.address for s in self.servers] + ["--cluster-replicas", "0", "--cluster-yes"],
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if create.returncode != 0:
            raise TestFailure("redis-cli --cluster create: %s %s" % (create.stdout[-500:], create.stderr[-500:]))
        wait_until(lambda: all("cluster_state:ok" in (s.cli("CLUSTER", "INFO") or "") for s in self.servers),
                   20 * h.SLOW, 0.1, "the Redis Cluster to be ok on every primary")

    def cli(self, *args):
        return self.servers[0].cli(*args)  # redis-cli -c: redirects followed

    def owner_of(self, key):
        """The address of the primary whose slot range holds key's slot."""
        slot = int(self.cli("CLUSTER", "KEYSLOT", key))
        for line in (self.cli("CLUSTER", "NODES") or "").splitlines():
            fields = line.split()
            for span in fields[8:]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return fields[1].split("@")[0]
        return None

    @property
    def address(self):
        return ",".join(s.address for s in self.servers)


class Lab:
    def __init__(self, redis_cluster=False):
        for program in ("redis-server", "redis-cli"):
            if shutil.which(program) is None:
                raise Skip("%s is not installed (scripts/install-deps.sh test)" % program)
        if not os.access(rn.LAN_AGENT, os.X_OK):
            raise Skip("%s is not built" % rn.LAN_AGENT)
        self.net = Namespaces({"na": NODE_IPS["node-a"], "nb": NODE_IPS["node-b"], "nc": NODE_IPS["node-c"],
                               "term": TERM_IP})
        from pg_node_test import Postgres
        self.pg = Postgres(netns=self.net.name("hub"), host=HUB_IP)
        self.d = Deployment(presence__keepalive_interval=rn.KEEPALIVE_S, presence__keepalive_misses=rn.MISSES)
        if redis_cluster:
            self.redis = NetnsRedisCluster(self.d.root, self.net.name("hub"))
        else:
            self.redis = rn.Redis(self.d.root, netns=self.net.name("hub"), host=HUB_IP)
        self.run_admin(["cluster", "migrate", "--pg", self.pg.conninfo])
        for user, password in rn.USERS:
            self.run_admin(["user", "-d", self.d.dir, "--pg", self.pg.conninfo, "add", user], password)
        self.dirs, self.nodes = {}, {}
        for name in NODE_IPS:
            self.dirs[name] = os.path.join(self.d.root, name)
            shutil.copytree(self.d.dir, self.dirs[name])

    def run_admin(self, args, password=None):
        result = self.d.admin(args, password=password)
        if result.code != 0:
            raise TestFailure("tsunagu-rendezvous %s: %r" % (" ".join(args), result))
        return result

    def start_node(self, name):
        short = "n" + name[-1]
        pg = ["--pg", self.pg.tcp_conninfo]
        saved, self.d.dir = self.d.dir, self.dirs[name]
        try:
            node = self.d.start_node_with(["--redis", self.redis.address, "--node-name", name] + pg,
                                          wrapper=self.net.wrapper(short), ip=NODE_IPS[name],
                                          ports=(TLS_PORT, STUN_PORT, AGENT_PORT))
        finally:
            self.d.dir = saved
        self.nodes[name] = node
        return node

    def cli(self, args, user, nodes, timeout=h.CLI_TIMEOUT):
        env = self.d.terminal_env(user, rn.password_of(user), nodes)
        return h.Result(subprocess.run(self.net.wrapper("term") + [h.TERMINAL] + args + CERT_NAME, env=env,
                                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout))

    def spawn_cli(self, args, user, nodes, stdin=None):
        return h.spawn_cli(self.d, args + CERT_NAME, user, rn.password_of(user), stdin=stdin,
                           wrapper=self.net.wrapper("term"), node=nodes)

    def whereis(self, asker, target, *on):
        return self.cli(["whereis", target, "--json"], asker, node_list(*on))

    def start_agent(self):
        bundle = self.d.path("acme")
        self.run_admin(["agent", "-d", self.dirs["node-b"], "--pg", self.pg.conninfo, "enroll", "acme", "--domain", "acme",
                        "--out", bundle,
                        "--node", "%s:%d" % (NODE_IPS["node-b"], AGENT_PORT), "--server-name", "127.0.0.1"])
        config = h.write_agent_toml(bundle, "%s:%d" % (NODE_IPS["node-b"], AGENT_PORT))
        # One table entry: extension 4106 bound to a MAC whose DHCP lease gave it an address.
        leases = os.path.join(bundle, "dnsmasq.leases")
        self.lease_expires = int(time.time()) + 3600
        with open(leases, "w") as f:
            f.write("%d %s %s ext4106 *\n" % (self.lease_expires, EXT_MAC, EXT_IP))
        for args in (["bind", "4106", EXT_MAC], ["sync", "--from", "dnsmasq:" + leases, "--no-progress"]):
            done = subprocess.run([rn.LAN_AGENT] + args + ["-c", config], capture_output=True, text=True,
                                  timeout=h.CLI_TIMEOUT, stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise TestFailure("tsunagu-lan-agent %s: %s%s" % (args[0], done.stdout, done.stderr))
        self.agent_log = os.path.join(bundle, "agent.log")
        with open(self.agent_log, "w") as out:
            self.agent = h.spawn(self.net.wrapper("term") + [rn.LAN_AGENT, "run", "-c", config], stdout=out,
                                 stderr=subprocess.STDOUT)
        wait_until(lambda: "linked to the node" in self.read(self.agent_log) or (
            self.agent.poll() is not None and rn._raise("the agent exited: %s" % self.read(self.agent_log))),
            10 * h.SLOW, 0.05, "the agent to link to node B")
        wait_until(lambda: self.redis.cli("GET", "agent:{acme}") == "node-b", 10 * h.SLOW, 0.05,
                   "agent:{acme} = node-b in Redis")

    @staticmethod
    def read(path):
        with open(path, errors="replace") as f:
            return f.read()


def echo_call(lab, checks, what):
    caller = lab.spawn_cli(["call", rn.BOB, "--echo-test", "5"], rn.ALICE, node_list("node-a"))
    code = rn.exit_of(caller)
    echo = re.search(r"echo test: (\d+) sent, (\d+) returned", caller.out())
    checks.check(code == 0 and echo is not None and echo.groups() == ("5", "5"),
                 "%s: exit 0, the echo test over ICE 5 sent, 5 returned (exit %s, %r %r)" % (
                     what, code, caller.out().strip()[-200:], caller.err()[-600:]))


def voice_call(lab, checks):
    """alice on node A talks with carol on node C: the call's signalling crosses the nodes through
    Redis, its Opus/RTP media runs between the terminals over ICE; both recordings are scored."""
    import voice_test as vt
    vt.require_voice()
    speech = vt.make_speech(lab.d, "cross-speech.wav", vt.SPEECH_SECONDS + 2)
    greeting = vt.make_speech(lab.d, "cross-greeting.wav", vt.GREETING_SECONDS, vt.GREETING_TEXT)
    carol_heard, alice_heard = lab.d.path("carol-heard.wav"), lab.d.path("alice-heard.wav")
    listener = lab.spawn_cli(["listen", "--auto-accept-from", rn.ALICE, "--once", "--audio-in", greeting,
                              "--audio-out", carol_heard], rn.CAROL, node_list("node-c"))
    wait_until(lambda: "listening as carol" in listener.err() or (not listener.alive() and rn._raise(
        "listen as carol exited: %r" % listener.err())), h.LOGIN_TIMEOUT, 0.05, "carol to listen")
    wait_until(lambda: lab.redis.cli("GET", "presence:{carol}") == "node-c", 10 * h.SLOW, 0.05,
               "presence:{carol} = node-c")
    caller = lab.spawn_cli(["call", rn.CAROL, "--audio-in", speech, "--audio-out", alice_heard], rn.ALICE,
                           node_list("node-a"))
    code, lcode = rn.exit_of(caller, 60), rn.exit_of(listener, 30)
    checks.check(code == 0 and lcode == 0 and "audio: Opus" in caller.err(),
                 "alice on node A calls carol on node C with voice: both exit 0 (%s, %s; %r)" % (
                     code, lcode, caller.err()[-400:]))
    vt.check_score(checks, speech, carol_heard, "alice's speech heard by carol on node C")
    vt.check_score(checks, greeting, alice_heard, "carol's greeting heard by alice on node A")


def scenario_netns_three_nodes(redis_cluster=False):
    started = time.monotonic()
    lab = Lab(redis_cluster=redis_cluster)
    checks = Checks()
    for name in NODE_IPS:
        lab.start_node(name)
    lab.start_agent()
    checks.check(True, "three nodes in namespaces on one PostgreSQL and %s; acme's agent linked to node B" % (
        "a 3-primary Redis Cluster" if redis_cluster else "one Redis"))
    if redis_cluster:
        owners = {name: lab.redis.owner_of("node:{%s}" % name) for name in NODE_IPS}
        log("  the nodes' bus channels on the primaries: %r" % owners)
        checks.check(len(set(owners.values())) > 1, "the three nodes' channels are not all on one primary (%r)" % owners)

    # bob is given the whole list, C first.
    listener = lab.spawn_cli(["listen", "--auto-accept-from", rn.ALICE], rn.BOB, node_list("node-c", "node-a", "node-b"))
    wait_until(lambda: "listening as bob" in listener.err() or (not listener.alive() and rn._raise(
        "listen as bob exited: %r" % listener.err())), h.LOGIN_TIMEOUT, 0.05, "bob to listen")
    wait_until(lambda: lab.redis.cli("GET", "presence:{bob}") == "node-c", 10 * h.SLOW, 0.05,
               "presence:{bob} = node-c")
    checks.check(True, "bob, given the nodes C,A,B, listens on node C")

    echo_call(lab, checks, "alice on node A calls bob on node C (ring, accept, ICE, data)")
    voice_call(lab, checks)

    result = lab.whereis(rn.ALICE, "4106@acme", "node-a")
    row = result.json() if result.out.strip().startswith("{") else {}
    log("  whereis 4106@acme on node A: %r" % result)
    checks.check("lookup 4106@acme by alice" in lab.read(lab.agent_log),
                 "the lookup of 4106@acme asked on node A reached the agent linked to node B")
    checks.check(result.code == 0 and row.get("online") is True and row.get("agent") == "acme" and
                 row.get("lease_expires") == lab.lease_expires,
                 "and is answered from the agent's table: 4106 online, its lease's expiry (%r)" % result)

    # A call whose signalling runs through node C, then node C dies.
    caller = lab.spawn_cli(["call", rn.BOB, "--pipe"], rn.ALICE, node_list("node-a"), stdin=subprocess.PIPE)
    wait_until(lambda: "connected after" in caller.err() or (not caller.alive() and rn._raise(
        "the caller exited early: %r" % caller.err())), 30 * h.SLOW, 0.05, "the call A -> C to connect")
    lab.nodes["node-c"].kill()
    killed_at = time.monotonic()
    code = rn.exit_of(caller, 20)
    checks.check(code == rn.EXIT_FAILED and "Link Lost" in caller.err(),
                 "the call through node C's signalling ends, link lost, when node C is killed (exit %s, %r)" % (
                     code, caller.err()[-300:]))

    def bob_online_from_b():
        found = lab.whereis(rn.ALICE, rn.BOB, "node-b")
        return found.code == 0 and found.json().get("online") is True and \
            lab.redis.cli("GET", "presence:{bob}") != "node-c"
    wait_until(bob_online_from_b, 10 * h.SLOW, 0.05, "bob online again as seen from node B")
    took = time.monotonic() - killed_at
    log("  measured: bob reachable again through node %s %.2f s after kill -9 of node C" % (
        lab.redis.cli("GET", "presence:{bob}"), took))
    checks.check(took < 5 * h.SLOW, "bob's terminal moved by itself and is reachable in < 5 s (%.2f s)" % took)
    checks.check(listener.alive() and "next node %s:%d" % (NODE_IPS["node-a"], TLS_PORT) in listener.err(),
                 "bob's `listen` stayed up and tried node A next (%r)" % listener.err()[-300:])
    checks.check("link to the node lost" in listener.err().split("next node", 1)[-1],
                 "bob's side of the call through node C ended with its link (%r)" % listener.err()[-300:])
    checks.check(lab.redis.cli("GET", "presence:{bob}") == "node-a", "presence:{bob} names node-a")

    echo_call(lab, checks, "a new call from alice to bob after node C's death")
    rn.Cluster.check_running(types.SimpleNamespace(nodes=lab.nodes), checks, ["node-a", "node-b"])
    log("  scenario took %.1f s" % (time.monotonic() - started))
    checks.finish()


def redis_clients_from(lab, name):
    """How many connections the restarted Redis holds from a node's address (its commands and its bus)."""
    listed = lab.redis.cli("CLIENT", "LIST") or ""
    return listed.count("addr=%s:" % NODE_IPS[name])


def logins_row(lab, user):
    return lab.pg.sql("SELECT observed FROM logins WHERE user_id = '%s'" % user)


def scenario_netns_restarts():
    """Redis restarted empty: presence comes back from keepalives; PostgreSQL killed -9 and started
    again: writes get 503 meanwhile, and every write acknowledged before is there afterwards."""
    started = time.monotonic()
    lab = Lab()
    checks = Checks()
    for name in ("node-a", "node-c"):
        lab.start_node(name)
    listener = lab.spawn_cli(["listen", "--auto-accept-from", rn.ALICE], rn.BOB, node_list("node-c"))
    wait_until(lambda: "listening as bob" in listener.err() or (not listener.alive() and rn._raise(
        "listen as bob exited: %r" % listener.err())), h.LOGIN_TIMEOUT, 0.05, "bob to listen")
    wait_until(lambda: lab.redis.cli("GET", "presence:{bob}") == "node-c", 10 * h.SLOW, 0.05,
               "presence:{bob} = node-c")
    connections = redis_clients_from(lab, "node-c")
    checks.check(connections >= 2, "bob listens on node C, which holds %d connections to Redis" % connections)
    held = {name: lab.pg.sql("SELECT count(*) FROM pg_stat_activity WHERE client_addr = '%s'" % NODE_IPS[name])
            for name in lab.nodes}
    checks.check(set(held.values()) == {"2"},
                 "each node holds two PostgreSQL connections, the group commit's and the reads' (%r)" % held)

    # Redis killed and started again empty (no persistence).
    lab.redis.kill()
    result = wait_until(lambda: (lambda r: r if r.code != 0 and r.json().get("error") == 503 else None)(
        lab.whereis(rn.ALICE, rn.BOB, "node-a")), 10 * h.SLOW, 0.1, "a lookup on node A to get 503 with Redis down")
    checks.check(True, "with Redis down, bob (on node C) asked on node A: 503, not offline (%s)" % result.out.strip())
    lab.redis.start()
    back_at = time.monotonic()
    seen = {}

    def rebuilt():
        now = time.monotonic()
        if "connected" not in seen and redis_clients_from(lab, "node-c") >= connections:
            seen["connected"] = now
        if "row" not in seen and lab.redis.cli("GET", "presence:{bob}") == "node-c":
            seen["row"] = now
        return len(seen) == 2
    wait_until(rebuilt, (rn.KEEPALIVE_S * rn.MISSES + 10) * h.SLOW, 0.02,
               "node C to reconnect to the restarted Redis and bob's row to come back")
    after_connect = seen["row"] - seen["connected"]
    log("  measured: node C reconnected %.2f s after Redis answered again; bob's row back %.2f s after that "
        "(keepalive interval %d s)" % (seen["connected"] - back_at, after_connect, rn.KEEPALIVE_S))
    # One keepalive interval, plus a second for the keepalive's trip and this poll on a loaded machine.
    checks.check(after_connect <= rn.KEEPALIVE_S * h.SLOW + 1.0,
                 "presence rebuilt from bob's keepalives within one interval of node C's reconnection (%.2f s)" %
                 after_connect)
    found = lab.whereis(rn.ALICE, rn.BOB, "node-a")
    checks.check(found.code == 0 and found.json().get("online") is True,
                 "bob reachable again from node A after the Redis restart (%r)" % found)
    echo_call(lab, checks, "alice on node A calls bob on node C after the Redis restart (the bus subscribed again)")

    # Writes acknowledged before PostgreSQL dies: carol's presence login (its last-login row is
    # committed before the reply leaves) and an account added with `user add --pg`.
    carol = lab.spawn_cli(["login"], rn.CAROL, node_list("node-a"))
    wait_until(lambda: "logged in as carol" in carol.out() or (not carol.alive() and rn._raise(
        "login as carol exited: %r" % carol.err())), h.LOGIN_TIMEOUT, 0.05, "carol to log in on node A")
    carol_row = logins_row(lab, rn.CAROL)
    checks.check(carol_row.startswith(TERM_IP + ":"), "carol's login is in PostgreSQL's logins table (%r)" % carol_row)
    bob_row = logins_row(lab, rn.BOB)
    added = lab.d.admin(["user", "-d", lab.d.dir, "--pg", lab.pg.conninfo, "add", "dave"], password="dave-password-4")
    checks.check(added.code == 0, "user add --pg dave, acknowledged (%r)" % added)
    carol.kill()

    lab.pg.crash()  # kill -9 of the postmaster and its backends
    late = lab.spawn_cli(["login"], rn.ALICE, node_list("node-a"))
    wait_until(lambda: "storage error" in late.err() or (not late.alive() and rn._raise(
        "login as alice exited: %r" % late.err())), h.LOGIN_TIMEOUT, 0.05, "a login on node A to be refused")
    checks.check("logged in as" not in late.out(),
                 "with PostgreSQL down, alice's login on node A gets 503, storage error (%r)" % late.err()[-200:])
    late.kill()
    refused = lab.d.admin(["user", "-d", lab.d.dir, "--pg", lab.pg.conninfo, "add", "erin"], password="erin-password-5")
    checks.check(refused.code != 0 and "PostgreSQL" in refused.err,
                 "user add --pg erin fails with PostgreSQL down (%r)" % refused)
    found = lab.whereis(rn.ALICE, rn.BOB, "node-a")
    checks.check(found.code == 0 and found.json().get("online") is True,
                 "bob, whose link needs no write, stays reachable from node A meanwhile (%r)" % found)
    checks.check(all(node.alive() for node in lab.nodes.values()), "both nodes stay up with PostgreSQL down")

    lab.pg.start()  # crash recovery
    checks.check(logins_row(lab, rn.CAROL) == carol_row and logins_row(lab, rn.BOB) == bob_row,
                 "the logins acknowledged before kill -9 are there after crash recovery (carol %r, bob %r)" % (
                     carol_row, bob_row))
    checks.check(lab.pg.sql("SELECT string_agg(user_id, ',' ORDER BY user_id) FROM accounts") == "alice,bob,carol,dave",
                 "dave's acknowledged account is there, erin's refused one is not")
    checks.check(logins_row(lab, rn.ALICE) == "", "alice's refused login was not recorded")
    again = lab.spawn_cli(["login"], rn.ALICE, node_list("node-a"))
    wait_until(lambda: "logged in as alice" in again.out() or (not again.alive() and rn._raise(
        "login as alice exited: %r" % again.err())), h.LOGIN_TIMEOUT, 0.05, "alice to log in after the restart")
    checks.check(logins_row(lab, rn.ALICE).startswith(TERM_IP + ":"),
                 "after the restart alice's login on node A works and is recorded")
    again.kill()
    listener.kill()
    rn.Cluster.check_running(types.SimpleNamespace(nodes=lab.nodes), checks)
    log("  scenario took %.1f s" % (time.monotonic() - started))
    checks.finish()


SCENARIOS = {"netns_three_nodes": scenario_netns_three_nodes,
             "netns_redis_cluster": lambda: scenario_netns_three_nodes(redis_cluster=True),
             "netns_restarts": scenario_netns_restarts}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
