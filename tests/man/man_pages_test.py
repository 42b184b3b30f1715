#!/usr/bin/env python3
"""The man pages (man/*.[18]) cannot drift from the programs: for each
executable, every subcommand its --help lists (recursively: `user add`) must be
a `.SS` heading in the page's COMMANDS section, every heading there must still
be a subcommand, and every long option any --help lists must appear in the page.

usage: man_pages_test.py PAGE PROGRAM [PAGE PROGRAM ...]
"""
import re
import subprocess
import sys


def help_text(program, path):
    result = subprocess.run([program, *path, "--help"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise SystemExit(f"FAIL {program} {' '.join(path)} --help exited {result.returncode}: {result.stderr}")
    return result.stdout


def subcommands(text):
    """CLI11 lists them under a line Subcommands: (SUBCOMMANDS: in newer CLI11) as '  NAME   description'."""
    names, inside = [], False
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Za-z ]*:\s*$", line):
            inside = line.strip().upper() == "SUBCOMMANDS:"
            continue
        match = re.match(r"^  (\S+)", line) if inside else None
        if match:
            names.append(match.group(1))
    return names


def long_options(text):
    """The options a --help defines: lines '  -x,--name ...' or '  --name ...' (not prose naming another program's)."""
    found = set()
    for line in text.splitlines():
        match = re.match(r"^  (?:-\w,)?(--[a-z][a-z0-9-]+)", line)
        if match:
            found.add(match.group(1))
    return found - {"--help", "--version"}


def walk(program):
    """Every subcommand path, and every long option on the way."""
    paths, options, queue = [], set(), [[]]
    while queue:
        path = queue.pop(0)
        text = help_text(program, path)
        options |= long_options(text)
        for name in subcommands(text):
            paths.append(path + [name])
            queue.append(path + [name])
    return paths, options


def page_text(page):
    with open(page, encoding="utf-8") as f:
        roff = f.read()
    plain = re.sub(r"\\f[BIRP]", "", roff).replace("\\-", "-").replace("\\(em", "-")
    headings, section = set(), None
    for line in plain.splitlines():
        if line.startswith(".SH"):
            section = line[3:].strip().strip('"')
        elif line.startswith(".SS") and section == "COMMANDS":
            words = line[3:].strip().strip('"').split()
            # A heading is the command path, then its arguments (upper case, or bracketed).
            headings.add(" ".join(w for w in words if re.fullmatch(r"[a-z][a-z0-9-]*", w)))
    return plain, headings


def main(argv):
    failures = 0
    pairs = list(zip(argv[1::2], argv[2::2]))
    for page, program in pairs:
        paths, options = walk(program)
        plain, headings = page_text(page)
        commands = {" ".join(p) for p in paths}
        for command in sorted(commands - headings):
            print(f"FAIL {page}: subcommand '{command}' of {program} has no .SS heading under COMMANDS")
            failures += 1
        for heading in sorted(headings - commands):
            print(f"FAIL {page}: .SS '{heading}' is not a subcommand of {program} (any more)")
            failures += 1
        for option in sorted(options):
            if not re.search(re.escape(option) + r"(?![a-z0-9-])", plain):
                print(f"FAIL {page}: option {option} of {program} is not in the page")
                failures += 1
        print(f"{page}: {len(commands)} subcommands, {len(options)} options checked against {program} --help")
    print(f"man pages: {len(pairs)} checked, {failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
