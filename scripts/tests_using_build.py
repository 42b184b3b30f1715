#!/usr/bin/env python3
"""Reads `meson introspect BUILD_DIR --tests` on stdin and prints the names of
the tests that use that build directory, highest priority first (meson's own
order):

  meson introspect build-asan --tests | scripts/tests_using_build.py build-asan

A test uses it when it depends on a target or names a path inside it in its
command line, environment or working directory. The others (the voice tools'
own check, the layering checks, a docs check) run nothing the build made, so
they give the same answer in every build directory: scripts/test.sh runs them
in build/ only. Each left out is named on stderr."""
import json
import os
import re
import sys


def names_path_inside(strings, build):
    for text in strings:
        for part in re.split(r"[:=,\s]", text or ""):
            if part.startswith("/") and (os.path.normpath(part) + "/").startswith(build + "/"):
                return True
    return False


def main(argv):
    build = os.path.realpath(argv[1])
    tests = json.load(sys.stdin)
    for test in sorted(tests, key=lambda t: -t["priority"]):
        strings = test["cmd"] + list(test["env"].values()) + [test["workdir"]]
        if test["depends"] or names_path_inside(strings, build):
            print(test["name"])
        else:
            print(f"left out (runs nothing of {argv[1]}): {test['name']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
