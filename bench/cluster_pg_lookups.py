#!/usr/bin/env python3
"""Lookups on a node with LMDB against nodes with `run --pg`, with and without
the account cache, in the same run (docs/cluster.md, "The node on
PostgreSQL"): the cost of the blocking account reads on the loop, and what
the cache takes off it.

Starts its own PostgreSQL (tests/cluster/pg_node_test.py's Postgres: a
postmaster on a unix socket in a temporary directory, its process group
killed on every exit path) and three nodes on loopback: one embedded (LMDB),
one with --pg and its account cache (the default), one with --pg and
`[cluster] account_cache = 0` (every read a round trip, as before the
cache); one raw TLS client per node does N lookups of an offline user back
to back, for each of R rounds alternating the nodes, and prints the
microseconds per lookup round trip of each.

With --clients K (K > 1), K raw TLS clients per node, each in its own
thread, share the N lookups, each client back to back: it prints the
microseconds of wall time per lookup over all clients, which shows whether
one client's read holds up the others (a read on the loop does; a read
parked off the loop lets the loop serve the others meanwhile).

    TSUNAGU_BUILD=build python3 bench/cluster_pg_lookups.py [--lookups 2000] [--rounds 3] [--clients 1]
"""
import argparse
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import pg_node_test as cluster  # noqa: E402
from harness import Deployment  # noqa: E402


def timed_lookups(name, deployment, node, lookups, clients):
    """Wall-clock microseconds per lookup of `lookups` shared by `clients` links."""
    links = []
    for _ in range(clients):
        link, reply = cluster.raw_login(deployment, node, "bob", role=1)
        if reply.error() is not None:
            raise harness.TestFailure("login on %s: %r" % (name, reply.error()))
        links.append(link)
    each = max(1, lookups // clients)
    failures = []
    start = threading.Barrier(clients + 1)

    def run(link):
        start.wait()
        for _ in range(each):
            answer = link.request(harness.METHOD_LOOKUP, [(harness.ATTR_USER_ID, harness.text("alice"))])
            if answer.get(harness.ATTR_DISPLAY_NAME) is None:
                failures.append(answer.error())
                return

    threads = [threading.Thread(target=run, args=(link,)) for link in links]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for link in links:
        link.close()
    if failures:
        raise harness.TestFailure("lookups on %s: %r" % (name, failures[:3]))
    return elapsed / (each * clients) * 1e6


def measure(lookups, rounds, clients):
    pg = cluster.Postgres()
    admin = Deployment()
    if admin.admin(["cluster", "migrate", "--pg", pg.conninfo]).code != 0:
        raise harness.TestFailure("cluster migrate failed")
    for user in ("alice", "bob"):
        admin.admin(["user", "--pg", pg.conninfo, "add", user], password=cluster.PASSWORD)
    pg_deployment, pg_node = cluster.start_cluster_node(pg)
    uncached_deployment = Deployment()
    uncached_deployment.set("web", "listen", '""')
    uncached_deployment.set("cluster", "postgres", '"%s"' % pg.conninfo)
    uncached_deployment.set("cluster", "account_cache", "0")
    uncached_node = uncached_deployment.start_node()
    lmdb_deployment = Deployment()
    lmdb_deployment.set("web", "listen", '""')
    for user in ("alice", "bob"):
        lmdb_deployment.add_user(user, cluster.PASSWORD)
    lmdb_node = lmdb_deployment.start_node()
    figures = {"lmdb": [], "pg": [], "pg-uncached": []}
    nodes = (("lmdb", lmdb_deployment, lmdb_node), ("pg", pg_deployment, pg_node),
             ("pg-uncached", uncached_deployment, uncached_node))
    for _ in range(rounds):
        for name, deployment, node in nodes:
            figures[name].append(timed_lookups(name, deployment, node, lookups, clients))
    for name, values in figures.items():
        print("%-11s us per lookup (%d client(s)): %s" % (name, clients, " ".join("%.0f" % v for v in values)))
    for name in ("pg", "pg-uncached"):
        ratios = [p / l for p, l in zip(figures[name], figures["lmdb"])]
        print("%s / lmdb per round: %s" % (name, " ".join("%.1f" % r for r in ratios)))
    ratios = [u / c for u, c in zip(figures["pg-uncached"], figures["pg"])]
    print("pg-uncached / pg per round: %s" % " ".join("%.1f" % r for r in ratios))
    print("load average: %.1f %.1f %.1f" % os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1)
    args = parser.parse_args()
    return harness.run_scenarios({"bench": lambda: measure(args.lookups, args.rounds, max(1, args.clients))},
                                 [sys.argv[0], "bench"])


if __name__ == "__main__":
    sys.exit(main())
