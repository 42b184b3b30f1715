"""Small faults found by earlier walks of the product as an operator and as a
LAN user (one scenario per fault; each fails without its fix). Python 3
standard library; strace for the system-call order of a durable write.

Scenarios:
  atomic_write_syncs_directory
                            every file `init` writes is renamed into place and then
                            its directory is fsynced (else a power loss may undo the
                            rename): traced with strace -y
  enroll_keeps_other_agents_bundle
                            `agent enroll B --out DIR` into a DIR holding agent A's
                            bundle (or a lone agent.key) exits 4 naming the file and
                            leaves A's agent.key as it was, enrolling nothing; A
                            enrolled again into its own bundle still works
  init_on_deployment_exits_4
                            `init DIR` on a deployment exits 4 (already exists), as
                            --help and the man page say
  card_issue_no_progress    `card issue --no-progress` prints no progress lines
                            (without it, they are there)
  hook_unreadable_config_says_so
                            tsunagu-dhcp-hook run as a user who cannot reach
                            agent.toml (a 0700 directory) says so on stderr, naming
                            the file and the error, and still tries the default socket
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import TestFailure  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOOK = os.path.join(h.BUILD, "lan-agent", "tsunagu-dhcp-hook")


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    h.log("  ok:", message)


def scratch():
    root = tempfile.mkdtemp(prefix="tsunagu-mend-")
    h._directories.append(root)
    return root


def atomic_write_syncs_directory():
    if shutil.which("strace") is None:
        raise h.Skip("strace is needed to see the order of rename and fsync (scripts/install-deps.sh installs it)")
    target = os.path.join(scratch(), "deployment")
    trace = target + ".strace"
    result = subprocess.run(["strace", "-f", "-y", "-o", trace, "-e", "trace=rename,renameat,renameat2,fsync,fdatasync",
                             h.RENDEZVOUS, "init", target], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=h.CLI_TIMEOUT)
    if result.returncode != 0 and "PTRACE" in result.stderr.upper():
        raise h.Skip("strace cannot trace here (%s)" % result.stderr.strip())
    expect(result.returncode == 0, "init under strace succeeds (%r)" % result.stderr)
    with open(trace) as f:
        lines = f.read().splitlines()
    # rename("DIR/ca.key.tmp-x", "DIR/ca.key") = 0 ... fsync(4</DIR>) = 0
    renamed, pending = [], None
    for line in lines:
        moved = re.search(r"rename\w*\(.*\"(%s/[^\"]+)\"(?:, \w+)?\) = 0" % re.escape(target), line)
        if moved:
            if pending is not None:
                raise TestFailure("%s was renamed into place but its directory not synced before the next rename"
                                  % pending)
            pending = moved.group(1)
            renamed.append(pending)
            continue
        synced = re.search(r"fsync\(\d+<([^>]+)>\) = 0", line)
        if synced and pending is not None and synced.group(1) == os.path.dirname(pending):
            pending = None
    expect(pending is None, "the directory is synced after the last rename (%s)" % pending)
    names = sorted(os.path.basename(p) for p in renamed)
    expect(names == sorted(["ca.key", "ca.crt", "node.key", "node.crt", "node.toml"]),
           "each of init's files was renamed into place and then its directory synced (%s)" % names)


def enroll(d, name, domain, out):
    return d.admin(["agent", "-d", d.dir, "enroll", name, "--domain", domain, "--out", out,
                    "--node", "127.0.0.1:7401", "--server-name", "localhost"])


def read(path):
    with open(path) as f:
        return f.read()


def enroll_keeps_other_agents_bundle():
    d = h.Deployment()
    bundle = d.path("bundle")
    first = enroll(d, "acme", "acme", bundle)
    expect(first.code == 0, "acme is enrolled into %s (%r)" % (bundle, first))
    acme_key = read(os.path.join(bundle, "agent.key"))
    h.note_private_key(os.path.join(bundle, "agent.key"))
    other = enroll(d, "globex", "globex", bundle)
    expect(other.code == 4, "enrolling globex into acme's bundle exits 4 (%r)" % other)
    expect(os.path.join(bundle, "agent.crt") in other.err and "acme" in other.err,
           "the refusal names agent.crt and whose it is (%r)" % other.err)
    expect(read(os.path.join(bundle, "agent.key")) == acme_key, "acme's agent.key is as it was")
    listed = d.admin(["agent", "-d", d.dir, "list"])
    expect(listed.code == 0 and "globex" not in listed.out, "globex is not enrolled (%r)" % listed.out)
    again = enroll(d, "acme", "acme", bundle)
    expect(again.code == 0, "acme enrolled again into its own bundle works (%r)" % again)
    expect(read(os.path.join(bundle, "agent.key")) != acme_key, "with a new agent.key")
    lone = d.path("lone")
    os.makedirs(lone, mode=0o700)
    with open(os.path.join(lone, "agent.key"), "w") as f:
        f.write("a key kept here\n")
    refused = enroll(d, "globex", "globex", lone)
    expect(refused.code == 4 and os.path.join(lone, "agent.key") in refused.err,
           "a directory holding a lone agent.key is refused too, naming it (%r)" % refused)
    expect(read(os.path.join(lone, "agent.key")) == "a key kept here\n", "and that agent.key is untouched")
    fresh = enroll(d, "globex", "globex", d.path("globex"))
    expect(fresh.code == 0, "globex into a directory of its own works (%r)" % fresh)


def init_on_deployment_exits_4():
    d = h.Deployment()
    ca = read(d.ca)
    again = d.admin(["init", d.dir])
    expect(again.code == 4 and "already holds a deployment" in again.err and "--force" in again.err,
           "init on a deployment exits 4, says --force replaces it (%r)" % again)
    expect(read(d.ca) == ca, "the CA is unchanged")
    help_text = d.admin(["--help"]).out
    expect("4 already exists" in help_text, "--help gives 4 for already exists (%r)" % help_text[-300:])


def card_issue_no_progress():
    d = h.Deployment()
    areas = os.path.join(ROOT, "docs", "areas.example.toml")
    issue = ["card", "-d", d.dir, "issue", "--units", "10", "--areas", areas, "--group", "3", "--count", "2"]
    shown = d.admin(issue + ["--out", d.path("cards-shown")], timeout=60 * h.SLOW)
    expect(shown.code == 0 and re.search(r"^issuing: ", shown.err, re.M),
           "without --no-progress, progress lines are on stderr (%r)" % shown.err)
    quiet = d.admin(issue + ["--out", d.path("cards-quiet"), "--no-progress"], timeout=60 * h.SLOW)
    expect(quiet.code == 0 and "issued 2 card(s)" in quiet.out, "card issue --no-progress issues (%r)" % quiet)
    expect(not re.search(r"^(issuing|writing): |\r", quiet.err, re.M),
           "and shows no progress on stderr (%r)" % quiet.err)


def hook_unreadable_config_says_so():
    if os.geteuid() != 0:
        raise h.Skip("needs root, to run the hook as nobody (a user who cannot reach agent.toml)")
    if shutil.which("setpriv") is None:
        raise h.Skip("setpriv (util-linux) is needed to run the hook as nobody")
    if not os.access(HOOK, os.X_OK):
        raise TestFailure("%s is not built" % HOOK)
    root = scratch()
    os.chmod(root, 0o755)
    hook = os.path.join(root, "tsunagu-dhcp-hook")
    shutil.copy(HOOK, hook)  # the build tree may not be reachable by nobody
    os.chmod(hook, 0o755)
    bundle = os.path.join(root, "bundle")
    os.makedirs(bundle, mode=0o700)
    os.chmod(bundle, 0o700)
    config = os.path.join(bundle, "agent.toml")
    with open(config, "w") as f:
        f.write('[hook]\nsocket = "%s"\n' % os.path.join(root, "hook.sock"))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TSUNAGU_AGENT_CONFIG": config}
    # dnsmasq's `init` call: it only asks the agent for its leases, so nothing is
    # spooled anywhere when no agent answers.
    result = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", hook, "init"],
                            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=h.CLI_TIMEOUT)
    expect(result.returncode == 0, "the hook exits 0 (%r)" % result)
    expect("cannot read " + config + ": Permission denied" in result.stderr,
           "stderr names agent.toml and the error (%r)" % result.stderr)
    expect("/run/tsunagu/agent-hook.sock" in result.stderr,
           "and the hook still tried the default socket, saying which (%r)" % result.stderr)


SCENARIOS = {
    "atomic_write_syncs_directory": atomic_write_syncs_directory,
    "enroll_keeps_other_agents_bundle": enroll_keeps_other_agents_bundle,
    "init_on_deployment_exits_4": init_on_deployment_exits_4,
    "card_issue_no_progress": card_issue_no_progress,
    "hook_unreadable_config_says_so": hook_unreadable_config_says_so,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
