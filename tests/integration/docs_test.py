"""Docs that must say what the code and the tests run (Python 3 stdlib only).

docs_commands_parse: every command line in a code block of README.md and
docs/*.md that runs tsunagu, tsunagu-rendezvous or tsunagu-lan-agent names
subcommands that exist and options that the subcommand's --help lists (on it or
on a parent group); the programs come from $TSUNAGU_BUILD.

docs_coturn_sample: docs/operator.md shows docs/turnserver.conf verbatim, and
that file is the one the NAT lab runs (tests/lab/lablib.py reads it and replaces
only its addresses, ports, secret and paths; every key it replaces is present).
"""
import os
import re
import shlex
import subprocess
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


PROGRAMS = {"tsunagu": "terminal", "tsunagu-rendezvous": "node", "tsunagu-lan-agent": "lan-agent"}


class HelpTree:
    """`PROGRAM [SUBCOMMAND...] --help`, read once per path: its subcommands and option names."""

    def __init__(self, build):
        self.build = build
        self.cache = {}

    def node(self, program, path):
        key = (program, tuple(path))
        if key not in self.cache:
            binary = os.path.join(self.build, PROGRAMS[program], program)
            out = subprocess.run([binary] + list(path) + ["--help"], capture_output=True, text=True,
                                 timeout=30).stdout
            section, subcommands, options = None, set(), set()
            for line in out.splitlines():
                if re.match(r"^[A-Z][A-Za-z ]*:$", line):
                    section = line[:-1]
                    continue
                if section == "Subcommands":
                    m = re.match(r"^  (\S+)", line)
                    if m:
                        subcommands.add(m.group(1))
                elif section == "Options":
                    m = re.match(r"^  (\S+)", line)
                    if m:
                        options.update(m.group(1).split(","))
            self.cache[key] = (subcommands, options)
        return self.cache[key]


def command_lines(text):
    """Lines of fenced code blocks that run one of the programs: (line, the words from the program on)."""
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.splitlines():
            code = line.split(" #", 1)[0].strip()
            try:
                words = shlex.split(code)
            except ValueError:
                continue
            for at, word in enumerate(words):
                arguments = words[at + 1:]
                if arguments and not re.match(r"^(-|[a-z][a-z-]*$)", arguments[0]):
                    break  # a diagram or table naming the program, not a command
                if os.path.basename(word) in PROGRAMS and (at == 0 or words[at - 1] in ("sudo", "then", "do")
                                                          or words[at - 1].endswith("#") or "=" in words[at - 1]):
                    yield line, words[at:]
                    break


def check_command(tree, words):
    """What is wrong with one command line, or None."""
    program = os.path.basename(words[0])
    path = []
    for word in words[1:]:
        if word in ("|", "&&", ";", "||", ">", "<", "2>", ">>", "&") or word.startswith((">", "<", "2>")):
            break
        subcommands, options = tree.node(program, path)
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            if name == "--":
                break
            known = set(options)
            for depth in range(len(path)):  # a group's options are taken after its subcommands too
                known |= tree.node(program, path[:depth])[1]
            if name not in known:
                return "%s %s has no option %s" % (program, " ".join(path), name)
        elif word in subcommands:
            path.append(word)
        elif subcommands and not path:
            return "%s has no subcommand %r" % (program, word)
    subcommands, _ = tree.node(program, path)
    if subcommands and "--help" not in words and "-h" not in words:
        return "%s %s needs one of its subcommands (%s)" % (program, " ".join(path), ", ".join(sorted(subcommands)))
    return None


def docs_commands_parse():
    build = os.environ.get("TSUNAGU_BUILD", os.path.join(ROOT, "build"))
    tree = HelpTree(build)
    checked, wrong = 0, []
    files = [os.path.join(ROOT, "README.md")] + sorted(
        os.path.join(ROOT, "docs", name) for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
    for path in files:
        with open(path) as f:
            text = f.read()
        for line, words in command_lines(text):
            checked += 1
            problem = check_command(tree, words)
            if problem:
                wrong.append("%s: %s\n    %s" % (os.path.relpath(path, ROOT), problem, line.strip()))
    for problem in wrong:
        print(problem)
    print("%d command lines checked against --help, %d wrong" % (checked, len(wrong)))
    return 1 if wrong or checked < 50 else 0


if __name__ == "__main__":
    sys.exit({"docs_coturn_sample": docs_coturn_sample, "docs_commands_parse": docs_commands_parse}[sys.argv[1]]())
