#!/usr/bin/env python3
"""Prints the slowest tests of the given build directories' last meson test
runs (meson-logs/testlog.json), with their suites and results, longest first:

  scripts/slowest_tests.py [--count N] BUILD_DIR...

scripts/test.sh prints them at the end of a run, so the tests worth a meson
`priority:` (started first) or a shorter set-up can be seen in CI's log."""
import argparse
import json
import os
import sys


def read_log(build):
    path = os.path.join(build, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        return []
    rows = []
    with open(path) as log:
        for line in log:
            if line.strip():
                entry = json.loads(line)
                rows.append((entry["duration"], build, entry["name"], entry["result"]))
    return rows


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("builds", nargs="+")
    options = parser.parse_args(argv)
    rows = [row for build in options.builds for row in read_log(build)]
    if not rows:
        print("slowest tests: no test logs")
        return 0
    total = sum(row[0] for row in rows)
    print(f"slowest tests ({len(rows)} tests, {total:.0f} s of test time in all):")
    for duration, build, name, result in sorted(rows, reverse=True)[:options.count]:
        print(f"  {duration:7.1f} s  {build}: {name} ({result})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
