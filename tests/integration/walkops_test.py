"""Faults found by running a node as an operator would, from docs/operator.md
alone (one scenario per fault; each fails without its fix). Python 3 standard
library; strace for the kill -9 at a chosen system call.

Scenarios:
  node_second_run_refused   a second `run` on a deployment whose node runs exits 1
                            naming the first's PID, and the first serves on; after
                            the first is killed (-9) a new one starts
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import TestFailure  # noqa: E402

PASSWORD = "correct horse battery"


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    h.log("  ok:", message)


def login_ok(node, user, password=PASSWORD):
    raw = h.RawTls(node)
    try:
        return raw.login(user, password, role=1).cls == h.SUCCESS
    finally:
        raw.close()


def run_node_args(d):
    return [h.RENDEZVOUS, "run", "-d", d.dir, "--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0",
            "--agent-listen", "127.0.0.1:0", "--web-listen", "off"]


def node_second_run_refused():
    d = h.Deployment()
    d.add_user("alice", PASSWORD)
    first = d.start_node()
    ready, log_path = d.path("second-ready.json"), d.path("second-node.log")
    with open(log_path, "w") as log_file:
        second = h.spawn(run_node_args(d) + ["--ready-file", ready], stdout=log_file, stderr=subprocess.STDOUT)
    h.wait_until(lambda: second.poll() is not None or os.path.exists(ready), h.READY_TIMEOUT, 0.05,
                 "the second node to exit or serve")
    with open(log_path) as f:
        output = f.read()
    h.log("  second node: %s: %s" % ("serving" if second.poll() is None else "exit %d" % second.returncode,
                                     output.strip()))
    expect(second.poll() is not None, "a second node on the same deployment does not serve")
    expect(second.returncode == 1, "it exits 1 (exit %d)" % second.returncode)
    expect("another node already runs on the database in %s" % os.path.join(d.dir, "db") in output and
           "process %d" % first.pid in output, "and says which process holds it")
    expect(first.alive() and login_ok(first, "alice"), "the first node serves on")
    first.kill()
    again = d.start_node()
    expect(login_ok(again, "alice"), "after a kill -9 of the first, a new node starts and serves")
    expect(again.stop() == 0, "and stops cleanly")






SCENARIOS = {
    "node_second_run_refused": node_second_run_refused,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
