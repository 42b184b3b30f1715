#!/usr/bin/env python3
"""Cluster mode against the embedded default, in the same run (docs/cluster.md,
"Measured: cluster mode against embedded"):

  - lookups and logins per node CPU-second (the node's utime+stime from
    /proc/PID/stat around a batch of back-to-back requests from one raw TLS
    client) on an embedded node (LMDB) and on a cluster node (`run --pg
    --redis`, the accounts in PostgreSQL, presence in Redis);
  - the ring's latency (`tsunagu call --echo-test 1`'s "accepted after N ms":
    the caller's call request to the callee's acceptance coming back) when
    caller and callee are on one cluster node and when they are on two.

Starts its own PostgreSQL (tests/cluster/pg_node_test.py's Postgres), one
redis-server and three nodes on loopback; every process is killed by its
PID on every exit path (harness.py). Rounds alternate the two sides.

    TSUNAGU_BUILD=build python3 bench/cluster_mode.py [--lookups 1000] [--logins 40] [--rings 5] [--rounds 3]
"""
import argparse
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import pg_node_test  # noqa: E402
import redis_node_test as rn  # noqa: E402
from harness import Deployment  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def lookups_per_cpu_second(node, count):
    link = harness.RawTls(node)
    reply = link.login(rn.ALICE, rn.ALICE_PW, role=1)
    if reply.error() is not None:
        raise harness.TestFailure("login: %r" % (reply.error(),))
    before, started = cpu_seconds(node.pid), time.perf_counter()
    for _ in range(count):
        link.request(harness.METHOD_LOOKUP, [(harness.ATTR_USER_ID, harness.text(rn.CAROL))])
    wall, cpu = time.perf_counter() - started, cpu_seconds(node.pid) - before
    link.close()
    return count / max(cpu, 1.0 / CLOCK_TICKS), wall / count * 1e6


def logins_per_cpu_second(node, count):
    before = cpu_seconds(node.pid)
    for _ in range(count):
        link = harness.RawTls(node)
        reply = link.login(rn.BOB, rn.BOB_PW, role=1)
        if reply.error() is not None:
            raise harness.TestFailure("login: %r" % (reply.error(),))
        link.close()
    return count / max(cpu_seconds(node.pid) - before, 1.0 / CLOCK_TICKS)


def ring_ms(c, caller_node, callee_node, rings):
    listener = rn.start_listener(c, callee_node, ["--auto-accept-from", rn.ALICE])
    harness.wait_until(lambda: c.holder(rn.BOB) == callee_node, 10, 0.05, "bob's row")
    values = []
    for _ in range(rings):
        caller = harness.spawn_cli(c.use(caller_node), ["call", rn.BOB, "--echo-test", "1"] + rn.LOOP, rn.ALICE,
                                   rn.ALICE_PW)
        if rn.exit_of(caller) != 0:
            raise harness.TestFailure("call failed: %r" % caller.err())
        found = re.search(r"accepted after (\d+) ms", caller.err())
        values.append(int(found.group(1)))
    listener.kill()
    harness.wait_until(lambda: c.holder(rn.BOB) in (None, ""), 10, 0.05, "bob's row to go")
    return values


def measure(lookups, logins, rings, rounds):
    pg = pg_node_test.Postgres()
    c = rn.Cluster(names=("node-a", "node-c"), postgres=pg)
    for name in c.dirs:
        c.start(name)
    embedded = Deployment()
    embedded.set("web", "listen", '""')
    for user, password in rn.USERS:
        embedded.add_user(user, password)
    embedded_node = embedded.start_node()
    sides = (("embedded", embedded_node), ("cluster", c.nodes["node-a"]))
    figures = {name: {"lookups": [], "us": [], "logins": []} for name, _ in sides}
    rings_same, rings_cross = [], []
    for _ in range(rounds):
        for name, node in sides:
            per_cpu, us = lookups_per_cpu_second(node, lookups)
            figures[name]["lookups"].append(per_cpu)
            figures[name]["us"].append(us)
            figures[name]["logins"].append(logins_per_cpu_second(node, logins))
        rings_same += ring_ms(c, "node-a", "node-a", rings)
        rings_cross += ring_ms(c, "node-a", "node-c", rings)
    for name, values in figures.items():
        print("%-8s lookups per node CPU-second: %s (wall %s us each); logins per node CPU-second: %s" % (
            name, " ".join("%.0f" % v for v in values["lookups"]), " ".join("%.0f" % v for v in values["us"]),
            " ".join("%.0f" % v for v in values["logins"])))
    print("ring accepted after, same node: median %.0f ms %r" % (statistics.median(rings_same), rings_same))
    print("ring accepted after, A -> C:    median %.0f ms %r" % (statistics.median(rings_cross), rings_cross))
    print("load average: %.1f %.1f %.1f" % os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--logins", type=int, default=40)
    parser.add_argument("--rings", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    return harness.run_scenarios({"bench": lambda: measure(args.lookups, args.logins, args.rings, args.rounds)},
                                 [sys.argv[0], "bench"])


if __name__ == "__main__":
    sys.exit(main())
