"""Docs that must say what the code and the tests run (Python 3 stdlib only).

docs_coturn_sample: docs/operator.md shows docs/turnserver.conf verbatim, and
that file is the one the NAT lab runs (tests/lab/lablib.py reads it and replaces
only its addresses, ports, secret and paths; every key it replaces is present).
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))


def docs_coturn_sample():
    import lablib  # only its pure helpers: nothing is started on import
    with open(os.path.join(ROOT, "docs", "turnserver.conf")) as f:
        sample = f.read()
    with open(os.path.join(ROOT, "docs", "operator.md")) as f:
        operator = f.read()
    blocks = re.findall(r"```ini\n(.*?)```", operator, re.S)
    if sample not in blocks:
        print("docs/operator.md has no ```ini block equal to docs/turnserver.conf")
        return 1
    config = lablib.coturn_config_from_sample(sample, {
        "listening-ip": "203.0.113.11", "relay-ip": "203.0.113.11", "listening-port": "3478",
        "min-port": "49152", "max-port": "49251", "static-auth-secret": "s", "log-file": "stdout",
        "pidfile": "/tmp/p", "userdb": "/tmp/u"})
    keys = {line.split("=", 1)[0] for line in config.splitlines() if line and not line.startswith("#")}
    for essential in ("realm", "use-auth-secret", "static-auth-secret", "denied-peer-ip", "fingerprint"):
        if essential not in keys:
            print("docs/turnserver.conf lacks %s" % essential)
            return 1
    for private in ("10.0.0.0-10.255.255.255", "172.16.0.0-172.31.255.255", "192.168.0.0-192.168.255.255"):
        if "denied-peer-ip=%s" % private not in config:
            print("docs/turnserver.conf does not deny %s" % private)
            return 1
    print("operator.md's coturn block is docs/turnserver.conf; the lab's config keeps its essential lines")
    return 0


if __name__ == "__main__":
    sys.exit({"docs_coturn_sample": docs_coturn_sample}[sys.argv[1]]())
