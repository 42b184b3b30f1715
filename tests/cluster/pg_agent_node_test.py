#!/usr/bin/env python3
"""LAN agents enrolled once in PostgreSQL link to any node (issue 19, docs/cluster.md).

pg_agent_any_node: one PostgreSQL (pg_node_test.Postgres), one redis-server and
three `tsunagu-rendezvous run --pg --redis` nodes on 127.0.0.1
(redis_node_test.Cluster), accounts added once with `user add --pg`:
  - `agent --pg CONNINFO enroll acme --domain acme` writes the enrolment
    into PostgreSQL only (no node's LMDB lists it) and the agent's bundle;
  - a real `tsunagu-lan-agent` with that bundle links to node B (its hello is
    checked against PostgreSQL); `whereis 4106@acme` asked on node A is
    forwarded through B's agent link (the agent logs the lookup by alice);
  - the agent restarted against node C links there with the same bundle,
    and a lookup asked on node A reaches it again;
  - with the agent gone, node A answers "agent offline" for 4106@acme (the
    route is known from PostgreSQL, not "unknown user");
  - a second agent claiming domain acme, or a domain accounts already use,
    is refused (exit 4) and nothing is written; `user add --pg` of an ID
    inside acme's route is refused; `agent remove --pg` takes the routes,
    and node B then refuses the agent's hello (403).

pg_agent_number (and pg_agent_number_redis_cluster, on a 3-primary Redis
Cluster): two `run --pg --redis` nodes; agent "tel" enrolled with
`--prefix +81-6-1234-` only, agent "japan" with the shorter `--prefix +81-`:
  - tel linked to node B claims prefix:{+81-6-1234-} (= node-b), japan linked
    to node A prefix:{+81-};
  - `whereis` and `call` of +81-6-1234-4106 by alice on node A are answered
    through B's tel link (tel logs the lookup and the ring; the call is
    placed on B, and tel's refusal of the unbound extension reaches alice),
    not by japan on A, whose prefix is shorter;
    +81-7-0000 asked on A is japan's;
  - tel gone: the number is japan's (the longest prefix held, as on one
    node), on A and, once japan moved to B, through B;
  - both gone: node A answers "agent offline" (the route from PostgreSQL).

Run:  TSUNAGU_BUILD=build python3 tests/cluster/pg_agent_node_test.py pg_agent_any_node
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as h  # noqa: E402
from harness import Checks, TestFailure, log, wait_until  # noqa: E402
import pg_node_test  # noqa: E402
import redis_node_test as rn  # noqa: E402


def start_agent(bundle, node, log_name, number_prefixes=None):
    """The LAN agent with its bundle, dialling `node`'s agent port; returns (process, log path) once linked.
    number_prefixes: the agent announces these and no domain."""
    config = h.write_agent_toml(bundle, node.agent_address)
    if number_prefixes is not None:
        with open(config) as f:
            text = f.read()
        routes = 'domains = []\nnumber_prefixes = [%s]\n' % ", ".join('"%s"' % p for p in number_prefixes)
        if 'domains = ["acme"]\n' not in text:
            raise TestFailure("harness.write_agent_toml no longer writes domains = [\"acme\"]")
        with open(config, "w") as f:
            f.write(text.replace('domains = ["acme"]\n', routes))
    agent_log = os.path.join(bundle, log_name)
    with open(agent_log, "w") as out:
        agent = h.spawn([rn.LAN_AGENT, "run", "-c", config], stdout=out, stderr=subprocess.STDOUT)

    def linked():
        text = open(agent_log, errors="replace").read()
        if agent.poll() is not None:
            raise TestFailure("the agent exited with %s: %s" % (agent.returncode, text[-2000:]))
        return "linked to the node" in text
    wait_until(linked, 10 * h.SLOW, 0.05, "the agent to link")
    return agent, agent_log


def lookup_reached(agent_log):
    return "lookup 4106@acme by alice" in open(agent_log, errors="replace").read()


def scenario_pg_agent_any_node():
    if not os.access(rn.LAN_AGENT, os.X_OK):
        raise h.Skip("%s is not built" % rn.LAN_AGENT)
    pg = pg_node_test.Postgres()
    c = rn.Cluster(postgres=pg)
    checks = Checks()
    bundle = c.d.path("acme")
    enrolled = c.d.admin(["agent", "-d", c.d.dir, "--pg", pg.conninfo, "enroll", "acme", "--domain", "acme",
                          "--out", bundle, "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"])
    checks.check(enrolled.code == 0 and os.path.exists(os.path.join(bundle, "agent.crt")),
                 "agent enroll --pg writes the bundle: %r" % enrolled)
    if enrolled.code != 0:
        checks.finish()
    listed = c.d.admin(["agent", "--pg", pg.conninfo, "list"])
    checks.check(listed.code == 0 and listed.out.strip() == "acme  domain acme", "agent list --pg: %r" % listed)
    checks.check(pg.sql("SELECT agent FROM agent_routes WHERE route = 'd:acme'") == "acme",
                 "the route d:acme -> acme is in PostgreSQL")
    for name in c.dirs:
        local = c.d.admin(["agent", "-d", c.dirs[name], "list"])
        checks.check(local.code == 0 and local.out.strip() == "", "%s's own LMDB has no enrolment: %r" % (name, local))
    for name in c.dirs:
        c.start(name)

    # Linked to B, then (the same bundle) to C: each checks the enrolment in
    # PostgreSQL, and a lookup asked on A goes through that node's agent link.
    for name in ("node-b", "node-c"):
        agent, agent_log = start_agent(bundle, c.nodes[name], "agent-%s.log" % name)
        wait_until(lambda: c.redis.cli("GET", "agent:{acme}") == name, 10 * h.SLOW, 0.05, "agent:{acme} = " + name)
        checks.check(True, "the agent enrolled only in PostgreSQL linked to %s (agent:{acme} = %s)" % (name, name))
        result = c.whereis("node-a", rn.ALICE, "4106@acme")
        log("  whereis 4106@acme on node A, agent on %s: %r" % (name, result))
        checks.check(lookup_reached(agent_log), "the agent on %s was asked for 4106@acme by alice (on node A)" % name)
        checks.check("no such extension" in result.out, "the answer is the agent's, not node A's: %r" % result)
        agent.kill()
        agent.wait(timeout=10)
        wait_until(lambda: c.redis.cli("EXISTS", "agent:{acme}") == "0", 10 * h.SLOW, 0.05, "agent:{acme} to go")

    # No agent linked anywhere: node A knows the route from PostgreSQL.
    result = c.whereis("node-a", rn.ALICE, "4106@acme")
    checks.check(result.code != 0 and "Agent Offline" in (result.out + result.err),
                 "node A answers 'agent offline' for 4106@acme from the route in PostgreSQL: %r" % result)

    # The enrolment's checks, on PostgreSQL.
    other = c.d.admin(["agent", "-d", c.d.dir, "--pg", pg.conninfo, "enroll", "other", "--domain", "acme",
                       "--out", c.d.path("other"), "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"])
    checks.check(other.code == 4 and "routed to agent acme" in other.err,
                 "a second agent for domain acme is refused: %r" % other)
    added = c.d.admin(["user", "-d", c.d.dir, "--pg", pg.conninfo, "add", "carl@beta"], password="carl-password-1")
    checks.check(added.code == 0, "user add --pg carl@beta: %r" % added)
    beta = c.d.admin(["agent", "-d", c.d.dir, "--pg", pg.conninfo, "enroll", "beta", "--domain", "beta",
                      "--out", c.d.path("beta"), "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"])
    checks.check(beta.code == 4 and "carl@beta" in beta.err, "a domain accounts already use is refused: %r" % beta)
    checks.check(pg.sql("SELECT count(*) FROM agents") == "1", "only acme is enrolled")
    inside = c.d.admin(["user", "-d", c.d.dir, "--pg", pg.conninfo, "add", "5000@acme"], password="ext-password-1")
    checks.check(inside.code != 0 and "routed to a LAN agent" in inside.err,
                 "user add --pg of an ID inside acme's route is refused: %r" % inside)
    removed = c.d.admin(["agent", "--pg", pg.conninfo, "remove", "acme"])
    checks.check(removed.code == 0 and pg.sql("SELECT count(*) FROM agent_routes") == "0",
                 "agent remove --pg takes its routes with it: %r" % removed)
    # Removed from PostgreSQL: no node accepts the agent's hello any more.
    config = h.write_agent_toml(bundle, c.nodes["node-b"].agent_address)
    refused_log = os.path.join(bundle, "agent-removed.log")
    with open(refused_log, "w") as out:
        agent = h.spawn([rn.LAN_AGENT, "run", "-c", config], stdout=out, stderr=subprocess.STDOUT)
    wait_until(lambda: "the node refused our routes (403" in open(refused_log, errors="replace").read(),
               10 * h.SLOW, 0.05, "node B to refuse the removed agent's hello")
    checks.check("linked to the node" not in open(refused_log, errors="replace").read(),
                 "node B refuses the hello of the agent removed with agent remove --pg (403)")
    agent.kill()
    agent.wait(timeout=10)
    c.check_running(checks)
    checks.finish()


TEL_PREFIX = "+81-6-1234-"
JAPAN_PREFIX = "+81-"
NUMBER = TEL_PREFIX + "4106"
OTHER_NUMBER = "+81-7-0000"


def asked(agent_log, number):
    return ("lookup %s by alice" % number) in open(agent_log, errors="replace").read()


def number_across_nodes(redis_cluster):
    if not os.access(rn.LAN_AGENT, os.X_OK):
        raise h.Skip("%s is not built" % rn.LAN_AGENT)
    pg = pg_node_test.Postgres()
    c = rn.Cluster(names=("node-a", "node-b"), postgres=pg, redis_cluster=redis_cluster)
    checks = Checks()
    bundles = {}
    for name, prefix in (("tel", TEL_PREFIX), ("japan", JAPAN_PREFIX)):
        bundles[name] = c.d.path(name)
        enrolled = c.d.admin(["agent", "-d", c.d.dir, "--pg", pg.conninfo, "enroll", name, "--prefix", prefix,
                              "--out", bundles[name], "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"])
        if enrolled.code != 0:
            raise TestFailure("agent enroll --pg %s --prefix %s: %r" % (name, prefix, enrolled))
    for name in c.dirs:
        c.start(name)

    def row(prefix):
        return c.redis.cli("GET", "prefix:{%s}" % prefix)

    def stop_agent(agent, prefix):
        """Ends the agent's process; its link's close deletes its prefix's row."""
        agent.kill()
        agent.wait(timeout=10)
        wait_until(lambda: c.redis.cli("EXISTS", "prefix:{%s}" % prefix) == "0", 10 * h.SLOW, 0.05,
                   "prefix:{%s} to go" % prefix)

    def call_from_a():
        return c.d.cli(["call", NUMBER, "--echo-test", "1"] + rn.LOOP, rn.ALICE, rn.password_of(rn.ALICE),
                       node=c.nodes["node-a"], timeout=40 * h.SLOW)

    tel, tel_log = start_agent(bundles["tel"], c.nodes["node-b"], "tel-b.log", [TEL_PREFIX])
    japan, japan_log = start_agent(bundles["japan"], c.nodes["node-a"], "japan-a.log", [JAPAN_PREFIX])
    wait_until(lambda: row(TEL_PREFIX) == "node-b" and row(JAPAN_PREFIX) == "node-a", 10 * h.SLOW, 0.05,
               "prefix:{%s} = node-b and prefix:{%s} = node-a" % (TEL_PREFIX, JAPAN_PREFIX))
    checks.check(True, "the prefix rows name the nodes holding the agents' links")

    # The number's longest enrolled prefix is tel's, linked to B: A relays,
    # although japan, linked to A itself, holds a shorter prefix of it.
    result = c.whereis("node-a", rn.ALICE, NUMBER)
    log("  whereis %s on node A: %r" % (NUMBER, result))
    checks.check(asked(tel_log, NUMBER), "tel on node B was asked for %s by alice (on node A)" % NUMBER)
    checks.check(not asked(japan_log, NUMBER), "japan on node A (a shorter prefix) was not asked")
    checks.check("no such extension" in result.out and "Agent Offline" not in result.out + result.err,
                 "the answer is tel's, not node A's: %r" % result)
    call = call_from_a()
    log("  call %s from node A: %r" % (NUMBER, call))
    rung = re.search(r"event=call state=rung call=\w+ caller=alice callee=%s via=agent" % re.escape(NUMBER),
                     c.nodes["node-b"].log_text())
    checks.check(rung is not None and ("ring %s from alice" % NUMBER) in open(tel_log, errors="replace").read(),
                 "alice's call from node A is placed on node B and rung through tel's link there")
    checks.check(call.code != 0 and "no such extension" in call.err and "Agent Offline" not in call.err,
                 "tel's refusal (no such extension) reaches alice on node A: %r" % call)
    checks.check("event=call" not in c.nodes["node-a"].log_text(), "node A placed no call itself")
    result = c.whereis("node-a", rn.ALICE, OTHER_NUMBER)
    checks.check(asked(japan_log, OTHER_NUMBER) and not asked(tel_log, OTHER_NUMBER),
                 "%s (only japan's prefix) asked on node A is japan's: %r" % (OTHER_NUMBER, result))

    # tel gone: its row goes; the number falls to japan's shorter prefix, as on one node.
    stop_agent(tel, TEL_PREFIX)
    result = c.whereis("node-a", rn.ALICE, NUMBER)
    checks.check(asked(japan_log, NUMBER) and "no such extension" in result.out,
                 "tel gone: %s asked on node A is japan's, linked to A: %r" % (NUMBER, result))
    stop_agent(japan, JAPAN_PREFIX)
    japan, japan_log = start_agent(bundles["japan"], c.nodes["node-b"], "japan-b.log", [JAPAN_PREFIX])
    wait_until(lambda: row(JAPAN_PREFIX) == "node-b", 10 * h.SLOW, 0.05, "prefix:{%s} = node-b" % JAPAN_PREFIX)
    result = c.whereis("node-a", rn.ALICE, NUMBER)
    checks.check(asked(japan_log, NUMBER) and "no such extension" in result.out,
                 "japan moved to node B: %s asked on node A goes through B's japan link: %r" % (NUMBER, result))

    # No agent linked anywhere: node A knows the route from PostgreSQL.
    stop_agent(japan, JAPAN_PREFIX)
    result = c.whereis("node-a", rn.ALICE, NUMBER)
    checks.check(result.code != 0 and "Agent Offline" in result.out + result.err,
                 "both agents gone: node A answers 'agent offline' for %s: %r" % (NUMBER, result))
    call = call_from_a()
    checks.check(call.code != 0 and "Agent Offline" in call.out + call.err,
                 "and a call of it from node A gets 'agent offline': %r" % call)
    c.check_running(checks)
    checks.finish()


SCENARIOS = {"pg_agent_any_node": scenario_pg_agent_any_node,
             "pg_agent_number": lambda: number_across_nodes(redis_cluster=False),
             "pg_agent_number_redis_cluster": lambda: number_across_nodes(redis_cluster=True)}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
