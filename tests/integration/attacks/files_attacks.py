#!/usr/bin/env python3
"""The attacker's view of files (issue 11 §3) and agent enrolment defaults (issue 10
item 5), with the real binaries: a local unprivileged user on the gateway who
pre-creates files and symlinks where root writes keys, and a peer that sends a file
to `tsunagu listen --recv` (docs/security.md, "Files").

Run one scenario:  TSUNAGU_BUILD=build python3 files_attacks.py SCENARIO
Each scenario is its own meson test (tests/integration/attacks/meson.build); exit 77 = skipped.
"""

import os
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import harness as h  # noqa: E402
from harness import Deployment, Skip, TestFailure, log, wait_until  # noqa: E402

LAN_AGENT = os.path.join(h.BUILD, "lan-agent", "tsunagu-lan-agent")
NOBODY = 65534  # the "local unprivileged user" the files are planted by
ALICE, ALICE_PW = "alice", "alice-password-1"
BOB, BOB_PW = "bob", "bob-password-22"
LOOP = ["--ice-address", "127.0.0.1"]  # libnice ignores loopback unless given
EXIT_USAGE, EXIT_FAILED = 2, 11
CALL_TIMEOUT = 40


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    log("  ok:", message)


def need_root():
    if os.geteuid() != 0:
        raise Skip("planting files owned by another user needs root")


def write(path, content, mode):
    with open(path, "w") as f:
        f.write(content)
    os.chmod(path, mode)


def read(path):
    with open(path) as f:
        return f.read()


def enroll(d, name, out, *extra):
    return d.admin(["agent", "-d", d.dir, "enroll", name, "--domain", name, "--out", out] + list(extra))


def enrolled_agents(d):
    result = d.admin(["agent", "-d", d.dir, "list"])
    expect(result.code == 0, "agent list works (%r)" % result)
    return result.out


def plant_in_shared_directory(d, stem):
    """A world-writable directory (as /tmp-like shared space is) in which 'nobody' planted
    a 0666 NAME.tmp and a symlink at NAME pointing at a file of root's."""
    shared = d.path(stem)
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    victim = d.path(stem + "-victim")
    write(victim, "root's file\n", 0o600)
    write(os.path.join(shared, "agent.key.tmp"), "planted\n", 0o666)
    os.chown(os.path.join(shared, "agent.key.tmp"), NOBODY, NOBODY)
    os.symlink(victim, os.path.join(shared, "agent.key"))
    os.lchown(os.path.join(shared, "agent.key"), NOBODY, NOBODY)
    return shared, victim


# --------------------------------------------------------------------------
# `agent enroll --out` and `terminal issue --out`

def enroll_refuses_a_shared_out_directory_with_planted_files():
    need_root()
    d = Deployment()
    shared, victim = plant_in_shared_directory(d, "shared")
    result = enroll(d, "acme", shared, "--node", "127.0.0.1:7401", "--server-name", "127.0.0.1")
    expect(result.code != 0 and "writable by others" in result.err,
           "enroll into a world-writable --out is refused, saying why (%r)" % result)
    expect(read(victim) == "root's file\n", "nothing was written through the agent.key symlink")
    expect(read(os.path.join(shared, "agent.key.tmp")) == "planted\n", "the planted agent.key.tmp was not opened")
    expect(sorted(os.listdir(shared)) == ["agent.key", "agent.key.tmp"], "no file of ours in the directory: %r"
           % sorted(os.listdir(shared)))
    expect("acme" not in enrolled_agents(d), "the refused enrolment is not recorded at the node")


def enroll_refuses_a_directory_of_another_user():
    need_root()
    d = Deployment()
    theirs = d.path("theirs")
    os.mkdir(theirs, 0o755)
    os.chown(theirs, NOBODY, NOBODY)
    result = enroll(d, "acme", theirs, "--node", "127.0.0.1:7401", "--server-name", "127.0.0.1")
    expect(result.code != 0 and "belongs to another user" in result.err,
           "enroll into a directory owned by another user is refused (%r)" % result)
    expect(os.listdir(theirs) == [], "nothing was written there")


def enroll_does_not_replace_a_symlink_in_its_own_directory():
    d = Deployment()
    out = d.path("bundle")
    os.mkdir(out, 0o700)
    victim = d.path("victim")
    write(victim, "precious\n", 0o644)
    os.symlink(victim, os.path.join(out, "agent.key"))
    result = enroll(d, "acme", out, "--node", "127.0.0.1:7401", "--server-name", "127.0.0.1")
    expect(result.code != 0 and "symbolic link" in result.err, "a symlink at agent.key is refused (%r)" % result)
    expect(read(victim) == "precious\n", "the file it points at is untouched")
    expect(os.path.islink(os.path.join(out, "agent.key")), "the symlink is left for the admin to look at")
    expect(not any(n.startswith("agent.key.tmp") for n in os.listdir(out)),
           "no temporary file left behind: %r" % os.listdir(out))


def enroll_writes_a_private_bundle():
    d = Deployment()
    out = d.path("new/bundle")
    result = enroll(d, "acme", out, "--node", "127.0.0.1:7401", "--server-name", "127.0.0.1")
    expect(result.code == 0, "enroll into a new directory works (%r)" % result)
    expect(stat.S_IMODE(os.stat(out).st_mode) == 0o700, "the bundle directory is created 0700")
    expect(stat.S_IMODE(os.stat(os.path.join(out, "agent.key")).st_mode) == 0o600, "agent.key is 0600")
    expect(sorted(os.listdir(out)) == ["agent.crt", "agent.key", "agent.toml", "ca.crt"],
           "only the bundle's four files: %r" % sorted(os.listdir(out)))


def terminal_issue_refuses_a_shared_out_directory():
    need_root()
    d = Deployment()
    config = d.path("agent.toml")
    write(config, '[agent]\ndata_directory = "%s"\n' % d.path("agent-data"), 0o644)
    shared = d.path("shared")
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    victim = d.path("victim")
    write(victim, "root's file\n", 0o600)
    os.symlink(victim, os.path.join(shared, "terminal.key"))
    result = h.Result(subprocess.run([LAN_AGENT, "terminal", "issue", "4106", "-c", config, "--out", shared],
                                     stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=h.CLI_TIMEOUT))
    expect(result.code != 0 and "writable by others" in result.err,
           "terminal issue into a world-writable --out is refused (%r)" % result)
    expect(read(victim) == "root's file\n", "nothing was written through the terminal.key symlink")
    expect(os.listdir(shared) == ["terminal.key"], "nothing of ours in it: %r" % os.listdir(shared))


# --------------------------------------------------------------------------
# `agent enroll` defaults (issue 10 item 5)

def agent_toml_value(path, key):
    for line in read(path).splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key:
            return value.strip().strip('"')
    return None


def enroll_defaults_to_the_public_name_and_address_init_recorded():
    d = Deployment()
    public = d.path("public")
    result = d.admin(["init", public, "--name", "node.example.net", "--ip", "192.0.2.7"])
    expect(result.code == 0, "init --name --ip works (%r)" % result)
    out = d.path("acme")
    result = d.admin(["agent", "-d", public, "enroll", "acme", "--domain", "acme", "--out", out])
    expect(result.code == 0, "enroll without --node/--server-name works there (%r)" % result)
    toml = os.path.join(out, "agent.toml")
    expect(agent_toml_value(toml, "address") == "192.0.2.7:7401",
           "the bundle dials the public address with the agent port (%r)" % agent_toml_value(toml, "address"))
    expect(agent_toml_value(toml, "server_name") == "node.example.net",
           "and checks the public name (%r)" % agent_toml_value(toml, "server_name"))
    result = d.admin(["agent", "-d", public, "enroll", "globex", "--domain", "globex", "--out", d.path("globex"),
                      "--node", "gw.example.net:9000", "--server-name", "other.example.net"])
    toml = os.path.join(d.path("globex"), "agent.toml")
    expect(result.code == 0 and agent_toml_value(toml, "address") == "gw.example.net:9000" and
           agent_toml_value(toml, "server_name") == "other.example.net", "--node and --server-name still win")


def enroll_without_a_public_name_names_the_two_options():
    d = Deployment()  # `init DIR` alone: localhost only, no public name recorded
    out = d.path("acme")
    result = enroll(d, "acme", out)
    expect(result.code == EXIT_USAGE and "--node" in result.err and "--server-name" in result.err,
           "enroll refuses with exit 2, naming --node and --server-name (%r)" % result)
    expect(not os.path.exists(out), "no bundle was written")
    expect("acme" not in enrolled_agents(d), "and no enrolment recorded")


# --------------------------------------------------------------------------
# The hook spool

def spool_replay_leaves_a_hard_link_to_a_file_of_roots_alone():
    need_root()
    d = Deployment()
    spool = d.path("spool")
    os.mkdir(spool, 0o1733)  # what earlier versions made: anyone could plant here
    os.chmod(spool, 0o1733)
    victim = d.path("victim")
    write(victim, "root's file, not lease records\n", 0o600)
    os.link(victim, os.path.join(spool, "hook-0.spool"))  # as if planted by a local user
    config = d.path("agent.toml")
    write(config, '[agent]\ndata_directory = "%s"\n\n[hook]\nsocket = "%s"\nspool_directory = "%s"\n\n'
          '[sync]\non_start = false\n' % (d.path("agent-data"), d.path("hook.sock"), spool), 0o644)
    log_path = d.path("agent.log")
    with open(log_path, "w") as log_file:
        agent = h.spawn([LAN_AGENT, "run", "-c", config], stdout=log_file, stderr=subprocess.STDOUT)
    try:
        planted = os.path.join(spool, "hook-0.spool")

        def reported():  # replayed or left alone, the agent logs a line about the file
            text = read(log_path)
            if "spool " + planted in text:
                return text
            if agent.poll() is not None:
                raise TestFailure("the agent exited with %s: %s" % (agent.returncode, text))
            return None
        text = wait_until(reported, 20 * h.SLOW, 0.05, "the agent to report the planted spool file")
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.wait(timeout=10)
    expect(read(victim) == "root's file, not lease records\n", "the hard-linked file is not truncated")
    expect("hard links" in text and "not replayed, not truncated" in text,
           "the agent logs that it left the file alone, and why")
    mode = os.stat(spool).st_mode
    expect(stat.S_IMODE(mode) == 0o1770 and not mode & stat.S_IWOTH,
           "the old world-writable spool directory is now 1770 (%o)" % stat.S_IMODE(mode))


# --------------------------------------------------------------------------
# `tsunagu listen --recv DIR`

def call_setup():
    d = Deployment()
    d.start_node()
    d.add_user(ALICE, ALICE_PW)
    d.add_user(BOB, BOB_PW)
    inbox = d.path("inbox")
    os.mkdir(inbox, 0o700)
    return d, inbox


def start_listener(d, inbox):
    t = h.spawn_cli(d, ["listen", "--auto-accept-from", ALICE, "--once", "--recv", inbox] + LOOP, BOB, BOB_PW)

    def listening():
        if "listening as %s" % BOB in t.err():
            return True
        if not t.alive():
            raise TestFailure("listen exited with %s: %r" % (t.proc.returncode, t.err()))
        return False
    wait_until(listening, h.LOGIN_TIMEOUT, 0.05, "`tsunagu listen` to log in")
    return t


def exit_of(t, timeout=CALL_TIMEOUT):
    code = t.wait_exit(timeout)
    if code is None:
        raise TestFailure("%s did not exit within %d s: stderr %r" % (t.user, timeout * h.SLOW, t.err()))
    return code


def listen_recv_does_not_write_through_a_symlink_named_like_the_file():
    d, inbox = call_setup()
    victim = d.path("victim")
    write(victim, "precious\n", 0o644)
    os.symlink(victim, os.path.join(inbox, "report.bin"))
    sent = d.path("report.bin")
    write(sent, "x" * 100000, 0o644)
    listener = start_listener(d, inbox)
    caller = h.spawn_cli(d, ["call", BOB, "--send", sent] + LOOP, ALICE, ALICE_PW)
    code = exit_of(caller)
    expect(code == EXIT_FAILED and "did not store" in caller.err(),
           "the sender is told the file was not stored (exit %s, %r)" % (code, caller.err()[-600:]))
    exit_of(listener, 30)
    expect("already exists" in listener.err(), "the receiver says why (%r)" % listener.err()[-600:])
    expect(read(victim) == "precious\n", "the symlink's target is untouched")
    expect(os.listdir(inbox) == ["report.bin"] and os.path.islink(os.path.join(inbox, "report.bin")),
           "the inbox holds only the symlink: %r" % os.listdir(inbox))


def listen_recv_never_overwrites_an_existing_file():
    d, inbox = call_setup()
    write(os.path.join(inbox, "report.bin"), "mine\n", 0o600)
    sent = d.path("report.bin")
    write(sent, "y" * 5000, 0o644)
    listener = start_listener(d, inbox)
    caller = h.spawn_cli(d, ["call", BOB, "--send", sent] + LOOP, ALICE, ALICE_PW)
    expect(exit_of(caller) == EXIT_FAILED, "the sender fails (%r)" % caller.err()[-600:])
    exit_of(listener, 30)
    expect(read(os.path.join(inbox, "report.bin")) == "mine\n", "the existing report.bin is kept as it was")
    expect(os.listdir(inbox) == ["report.bin"], "nothing else in the inbox: %r" % os.listdir(inbox))


def listen_recv_removes_a_file_longer_than_announced():
    # A FIFO has size 0 when `call --send` announces it, then yields 256 KiB: the
    # sender announces 0 bytes and sends more.
    d, inbox = call_setup()
    fifo = d.path("swelling.bin")
    os.mkfifo(fifo)
    feeder_error = []

    def feed():
        deadline = time.monotonic() + 60 * h.SLOW
        fd = -1
        while fd < 0 and time.monotonic() < deadline:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: the sender has not opened it yet
                time.sleep(0.05)
        if fd < 0:
            feeder_error.append("the sender never opened the FIFO")
            return
        os.set_blocking(fd, True)
        try:
            os.write(fd, b"z" * (256 * 1024))
        except OSError:
            pass  # the sender went away: what the test expects
        finally:
            os.close(fd)

    feeder = threading.Thread(target=feed, daemon=True)
    listener = start_listener(d, inbox)
    caller = h.spawn_cli(d, ["call", BOB, "--send", fifo] + LOOP, ALICE, ALICE_PW)
    feeder.start()
    exit_of(caller)
    code = exit_of(listener, 30)
    feeder.join(timeout=10)
    expect(not feeder_error, "the FIFO was read (%r)" % feeder_error)
    expect(code == EXIT_FAILED and "more than the 0 bytes it announced" in listener.err(),
           "the receiver stops at the announced size (exit %s, %r)" % (code, listener.err()[-600:]))
    expect(os.listdir(inbox) == [], "the partial file is removed, not kept: %r" % os.listdir(inbox))


SCENARIOS = {
    "enroll_refuses_a_shared_out_directory_with_planted_files": enroll_refuses_a_shared_out_directory_with_planted_files,
    "enroll_refuses_a_directory_of_another_user": enroll_refuses_a_directory_of_another_user,
    "enroll_does_not_replace_a_symlink_in_its_own_directory": enroll_does_not_replace_a_symlink_in_its_own_directory,
    "enroll_writes_a_private_bundle": enroll_writes_a_private_bundle,
    "terminal_issue_refuses_a_shared_out_directory": terminal_issue_refuses_a_shared_out_directory,
    "enroll_defaults_to_the_public_name_and_address_init_recorded":
        enroll_defaults_to_the_public_name_and_address_init_recorded,
    "enroll_without_a_public_name_names_the_two_options": enroll_without_a_public_name_names_the_two_options,
    "spool_replay_leaves_a_hard_link_to_a_file_of_roots_alone": spool_replay_leaves_a_hard_link_to_a_file_of_roots_alone,
    "listen_recv_does_not_write_through_a_symlink_named_like_the_file":
        listen_recv_does_not_write_through_a_symlink_named_like_the_file,
    "listen_recv_never_overwrites_an_existing_file": listen_recv_never_overwrites_an_existing_file,
    "listen_recv_removes_a_file_longer_than_announced": listen_recv_removes_a_file_longer_than_announced,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
