#!/usr/bin/env python3
"""Crash and disk-full proofs of the node and the LAN agent (issue 12), with real processes.

node_kill9_acknowledged_writes: raw TLS clients make durable writes as fast as
  the node acknowledges them (registrations, profile changes, voicemail
  messages), the node is killed with SIGKILL at a random point, restarted, and
  every acknowledged write must be there. Five kill points; the number of
  acknowledged writes over all rounds is at least TSUNAGU_CRASH_WRITES
  (default 10000, the issue's count: about 30 s; TSUNAGU_CRASH_SEED fixes the
  kill points).

node_disk_full_voicemail: the node's database lives on a small tmpfs mounted in
  a private mount namespace (the scenario re-runs itself under `unshare -m`;
  the mount goes away with the namespace on every exit path). Voicemail uploads
  fill it: the client gets 507 (never a success for a message not stored), the
  node keeps serving, restarts on the full disk and serves every stored
  message, and takes messages again once space is freed.

agent_kill9_hook_events: 1,000 lease events through the real tsunagu-dhcp-hook,
  dnsmasq-style (one call at a time) and Kea-style (16 at once, one client's
  calls in order); the agent is killed with SIGKILL at a random point in the
  first half, the hooks spool the rest, the agent restarts and replays the
  spool, and `tsunagu-lan-agent list` must equal the events' final state.

node_open_failure_is_fatal: a database that cannot be opened stops the node
  with exit 1 and a message naming the directory and LMDB's error.

Run one scenario:  TSUNAGU_BUILD=build python3 crash_test.py SCENARIO
"""

import hashlib
import os
import random
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import Deployment, TestFailure, log  # noqa: E402

METHOD_VOICEMAIL_BEGIN = 0x830
METHOD_VOICEMAIL_CHUNK = 0x831
METHOD_VOICEMAIL_FINISH = 0x832
METHOD_VOICEMAIL_FETCH = 0x834
METHOD_PROFILE_GET = 0x83A
METHOD_PROFILE_SET = 0x83B
ATTR_VOICEMAIL_UPLOAD = 0xC040
ATTR_VOICEMAIL_SIZE = 0xC041
ATTR_VOICEMAIL_OFFSET = 0xC042
ATTR_VOICEMAIL_DATA = 0xC043
ATTR_VOICEMAIL_ID = 0xC044
ROLE_QUERY = 1
UNKNOWN_USER, OVER_QUOTA, UNAVAILABLE = 404, 507, 503
PASSWORD = "crash-test-pw-1"

LINK_ERRORS = (OSError, ConnectionError, ssl.SSLError, socket.timeout)


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    log("  ok:", message)


def u64(value):
    return struct.pack("!Q", value)


def versioned(attributes):
    return [(h.ATTR_PROTOCOL_VERSION, h.u32(h.PROTOCOL_VERSION))] + list(attributes)


def logged_in(node, user):
    link = h.RawTls(node)
    reply = link.login(user, PASSWORD, role=ROLE_QUERY)
    if reply.cls != h.SUCCESS:
        link.close()
        raise TestFailure("login as %s: %r" % (user, reply.error()))
    return link


# --------------------------------------------------------------------------
# Writers: each keeps requests in flight on its own link and records what the
# node acknowledged. A write counts only once its success answer is read.

class Writer(threading.Thread):
    depth = 16  # requests in flight on the link

    def __init__(self, node, name):
        super().__init__(daemon=True)
        self.node = node
        self.name = name
        self.acked = 0
        self.error = None

    def run(self):
        try:
            self.write()
        except LINK_ERRORS as error:  # the node was killed: expected
            self.error = error

    def pipeline(self, link, make_request, on_success):
        """Sends make_request() while fewer than `depth` are unanswered; calls on_success(key, reply)."""
        in_flight = {}
        while True:
            while len(in_flight) < self.depth:
                method, attributes, key = make_request()
                tid = secrets.token_bytes(12)
                link.send(h.encode(method, h.REQUEST, versioned(attributes), tid))
                in_flight[tid] = key
            reply = link.receive(timeout=30)
            key = in_flight.pop(reply.transaction_id, None)
            if key is None:
                continue
            if reply.cls == h.SUCCESS:
                on_success(key, reply)
                self.acked += 1


class ProfileWriter(Writer):
    """Sets its own display name to NAME-SEQ, SEQ counting up."""

    def __init__(self, node, user):
        super().__init__(node, user)
        self.user = user
        self.sent = 0
        self.highest_acked = 0

    def write(self):
        link = logged_in(self.node, self.user)

        def make():
            self.sent += 1
            return METHOD_PROFILE_SET, [(h.ATTR_DISPLAY_NAME, h.text("%s-%d" % (self.user, self.sent)))], self.sent

        def acked(seq, _reply):
            self.highest_acked = max(self.highest_acked, seq)

        self.pipeline(link, make, acked)


class RegistrationWriter(Writer):
    """Registers new IDs (each a scrypt hash on the node's thread pool)."""
    depth = 8

    def __init__(self, node, prefix):
        super().__init__(node, prefix)
        self.prefix = prefix
        self.count = 0
        self.registered = []

    def write(self):
        link = h.RawTls(self.node)

        def make():
            self.count += 1
            user = "%s%d" % (self.prefix, self.count)
            return h.METHOD_REGISTER, [(h.ATTR_USER_ID, h.text(user)), (h.ATTR_PASSWORD, h.text(PASSWORD))], user

        self.pipeline(link, make, lambda user, _reply: self.registered.append(user))


class VoicemailWriter(Writer):
    """Leaves messages for MAILBOX one after another (begin, chunk, finish); only finish is durable."""

    def __init__(self, node, sender, mailbox):
        super().__init__(node, sender)
        self.sender = sender
        self.mailbox = mailbox
        self.stored = {}  # VOICEMAIL-ID -> sha256 of the message

    def request(self, link, method, attributes):
        reply = link.request(method, attributes, timeout=30)
        if reply.cls != h.SUCCESS:
            raise TestFailure("voicemail 0x%x refused: %r" % (method, reply.error()))
        return reply

    def write(self):
        link = logged_in(self.node, self.sender)
        while True:
            data = ("%s->%s %s" % (self.sender, self.mailbox, secrets.token_hex(24))).encode()
            begun = self.request(link, METHOD_VOICEMAIL_BEGIN, [(h.ATTR_USER_ID, h.text(self.mailbox)),
                                                                (ATTR_VOICEMAIL_SIZE, u64(len(data)))])
            upload = begun.get(ATTR_VOICEMAIL_UPLOAD)
            self.request(link, METHOD_VOICEMAIL_CHUNK, [(ATTR_VOICEMAIL_UPLOAD, upload),
                                                        (ATTR_VOICEMAIL_OFFSET, u64(0)), (ATTR_VOICEMAIL_DATA, data)])
            done = self.request(link, METHOD_VOICEMAIL_FINISH, [(ATTR_VOICEMAIL_UPLOAD, upload)])
            self.stored[done.u64(ATTR_VOICEMAIL_ID)] = hashlib.sha256(data).hexdigest()
            self.acked += 1


def fetch_sha(link, vid):
    """sha256 of message VID fetched chunk by chunk, or None when it cannot be read."""
    data = b""
    while True:
        reply = link.request(METHOD_VOICEMAIL_FETCH, [(ATTR_VOICEMAIL_ID, u64(vid)),
                                                      (ATTR_VOICEMAIL_OFFSET, u64(len(data)))])
        chunk = reply.get(ATTR_VOICEMAIL_DATA)
        if reply.cls != h.SUCCESS or not chunk:
            return None
        data += chunk
        if len(data) >= reply.u64(ATTR_VOICEMAIL_SIZE):
            return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# 1. kill -9 while writes are acknowledged at full speed

def node_kill9_acknowledged_writes():
    target = int(os.environ.get("TSUNAGU_CRASH_WRITES", "10000"))
    rounds = 5
    d = Deployment(node__open_registration="true", limits__registrations_per_source="100000",
                   voicemail__max_messages="100000", voicemail__sender_messages_per_day="1000000",
                   voicemail__uploads_per_sender="8")
    profiles = ["p%d" % i for i in range(4)]
    senders = ["s%d" % i for i in range(4)]
    for user in profiles + senders + ["box"]:
        d.add_user(user, PASSWORD)
    r = d.admin(["user", "-d", d.dir, "profile", "box", "voicemail=yes"])
    expect(r.code == 0, "box takes voicemail (%r)" % r)
    rng = random.Random(int(os.environ.get("TSUNAGU_CRASH_SEED", str(int(time.time())))))

    highest = {user: 0 for user in profiles}   # highest acknowledged SEQ per profile, over all rounds
    sent = {user: 0 for user in profiles}
    registered, stored = [], {}
    total = 0
    started = time.monotonic()
    node = d.start_node()
    for round_number in range(rounds):
        # A random kill point: after a random share of this round's writes.
        left = max(1, target - total)
        share = left / (rounds - round_number)
        last = round_number == rounds - 1
        kill_after = max(50, int(share * (rng.uniform(1.0, 1.2) if last else rng.uniform(0.6, 1.4))))
        writers = [ProfileWriter(node, user) for user in profiles]
        for writer in writers:
            writer.sent = sent[writer.user]  # names go on counting up across rounds
        registrations = RegistrationWriter(node, "r%dx" % round_number)
        voicemail = [VoicemailWriter(node, sender, "box") for sender in senders]
        everyone = writers + [registrations] + voicemail
        began = time.monotonic()
        for writer in everyone:
            writer.start()
        h.wait_until(lambda: sum(w.acked for w in everyone) >= kill_after or
                     not any(w.is_alive() for w in everyone), 120 * h.SLOW, 0.002, "%d acknowledged writes" % kill_after)
        failed = [w for w in everyone if not w.is_alive()]
        if failed:
            raise TestFailure("writer %s stopped before the kill: %r" % (failed[0].name, failed[0].error))
        node.stop(signal.SIGKILL)
        seconds = time.monotonic() - began
        for writer in everyone:
            writer.join(timeout=30)
            if writer.is_alive():
                raise TestFailure("writer %s did not notice the killed node" % writer.name)
        acked = sum(w.acked for w in everyone)
        total += acked
        for writer in writers:
            if writer.highest_acked > 0:
                highest[writer.user] = writer.highest_acked
            sent[writer.user] = writer.sent
        registered += registrations.registered
        for writer in voicemail:
            stored.update(writer.stored)
        log("  round %d: killed after %d acknowledged writes in %.2f s (%.0f/s): %d profile changes, %d registrations, "
            "%d voicemail messages" % (round_number + 1, acked, seconds, acked / max(seconds, 1e-3),
                                       sum(w.acked for w in writers), registrations.acked,
                                       sum(w.acked for w in voicemail)))

        node = d.start_node()
        # Every acknowledged write is there: profiles at or past the last
        # acknowledged change (a later one may have landed unacknowledged)...
        for user in profiles:
            link = logged_in(node, user)
            reply = link.request(METHOD_PROFILE_GET)
            link.close()
            name = reply.get(h.ATTR_DISPLAY_NAME).decode() if reply.get(h.ATTR_DISPLAY_NAME) is not None else ""
            seq = int(name.rsplit("-", 1)[1]) if name.startswith(user + "-") else 0
            if not highest[user] <= seq <= sent[user]:
                raise TestFailure("round %d: %s's name is %r; acknowledged up to %d, sent up to %d" % (
                    round_number + 1, user, name, highest[user], sent[user]))
            highest[user] = seq  # what is durable now is the floor from here on
        # ...every acknowledged registration exists...
        asker = logged_in(node, profiles[0])
        for user in registered:
            reply = asker.request(h.METHOD_LOOKUP, [(h.ATTR_USER_ID, h.text(user))])
            if reply.cls == h.ERROR and reply.error()[0] == UNKNOWN_USER:
                raise TestFailure("round %d: acknowledged registration %s is gone" % (round_number + 1, user))
        asker.close()
        # ...and every acknowledged voicemail message, byte for byte.
        owner = logged_in(node, "box")
        for vid, digest in stored.items():
            if fetch_sha(owner, vid) != digest:
                raise TestFailure("round %d: acknowledged voicemail %d is missing or changed" % (round_number + 1, vid))
        owner.close()
        log("  round %d: after restart all %d registrations, %d voicemail messages and 4 profiles check out" % (
            round_number + 1, len(registered), len(stored)))
    expect(total >= target, "%d acknowledged writes over %d kill -9 rounds in %.0f s (asked for %d)" % (
        total, rounds, time.monotonic() - started, target))
    expect("storage error" not in node.log_text() and "group commit failed" not in node.log_text(),
           "the node logged no storage failure")


# --------------------------------------------------------------------------
# 2. disk full under voicemail uploads

IN_NAMESPACE = "TSUNAGU_CRASH_IN_MOUNT_NAMESPACE"


def run_in_private_mount_namespace(scenario):
    """Re-runs this scenario inside a new mount namespace; returns its exit status."""
    if os.geteuid() == 0:
        prefix = ["unshare", "-m", "--propagation", "private"]
    else:
        prefix = ["unshare", "-U", "-r", "-m", "--propagation", "private"]
    probe = subprocess.run(prefix + ["true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        raise h.Skip("cannot make a mount namespace (%s): %s" % (" ".join(prefix), probe.stderr.strip()))
    env = dict(os.environ, **{IN_NAMESPACE: "1"})
    child = h.spawn(prefix + [sys.executable, os.path.abspath(__file__), scenario], env=env)
    status = child.wait(timeout=240 * h.SLOW)
    if status == h.SKIP:
        raise h.Skip("skipped inside the namespace (see above)")
    if status != 0:
        raise TestFailure("the scenario failed inside the mount namespace (exit %d; see above)" % status)


def leave_message(node, sender, mailbox, data):
    """(code, VOICEMAIL-ID or None, reason): code 0 when the message was stored."""
    link = logged_in(node, sender)
    try:
        begun = link.request(METHOD_VOICEMAIL_BEGIN, [(h.ATTR_USER_ID, h.text(mailbox)),
                                                      (ATTR_VOICEMAIL_SIZE, u64(len(data)))])
        if begun.cls != h.SUCCESS:
            return begun.error()[0], None, begun.error()[1]
        upload = begun.get(ATTR_VOICEMAIL_UPLOAD)
        for at in range(0, len(data), 8192):
            chunk = link.request(METHOD_VOICEMAIL_CHUNK, [(ATTR_VOICEMAIL_UPLOAD, upload),
                                                          (ATTR_VOICEMAIL_OFFSET, u64(at)),
                                                          (ATTR_VOICEMAIL_DATA, data[at:at + 8192])])
            if chunk.cls != h.SUCCESS:
                return chunk.error()[0], None, chunk.error()[1]
        done = link.request(METHOD_VOICEMAIL_FINISH, [(ATTR_VOICEMAIL_UPLOAD, upload)])
        if done.cls != h.SUCCESS:
            return done.error()[0], None, done.error()[1]
        return 0, done.u64(ATTR_VOICEMAIL_ID), ""
    finally:
        link.close()


def node_disk_full_voicemail():
    if os.environ.get(IN_NAMESPACE) != "1":
        return run_in_private_mount_namespace("node_disk_full_voicemail")
    d = Deployment(voicemail__max_messages="100000", voicemail__sender_messages_per_day="1000000",
                   voicemail__mailbox_quota_kb="1000000", voicemail__domain_quota_mb="1000",
                   voicemail__sender_mb_per_day="100000")
    mount_point = d.path("small-disk")
    os.makedirs(mount_point)
    size_kib = 3 * 1024
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk,mode=0700" % size_kib, "tmpfs", mount_point],
                             capture_output=True, text=True, timeout=30)
    if mounted.returncode != 0:
        raise h.Skip("cannot mount a tmpfs: %s" % mounted.stderr.strip())
    try:
        disk_full_on(d, mount_point, size_kib)
    finally:
        for proc in h._processes:  # nothing may hold the mount when it goes
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        subprocess.run(["umount", "-l", mount_point], capture_output=True, timeout=30)


def disk_full_on(d, mount_point, size_kib):
    database = os.path.join(mount_point, "db")
    os.makedirs(database)
    d.set("storage", "directory", '"%s"' % database)
    for user in ("alice", "bob"):
        d.add_user(user, PASSWORD)
    r = d.admin(["user", "-d", d.dir, "profile", "bob", "voicemail=yes"])
    expect(r.code == 0, "bob takes voicemail (%r)" % r)
    # Ballast the operator can delete later: a third of the disk.
    ballast = os.path.join(mount_point, "ballast")
    with open(ballast, "wb") as f:
        f.write(b"\0" * (size_kib * 1024 // 3))
    node = d.start_node()

    stored = {}  # VOICEMAIL-ID -> the message
    answers = []
    for attempt in range(200):
        data = os.urandom(48 * 1024)
        code, vid, reason = leave_message(node, "alice", "bob", data)
        answers.append((code, reason))
        if code == 0:
            stored[vid] = data
        elif len([a for a in answers if a[0] != 0]) >= 3:
            break
    refused = [a for a in answers if a[0] != 0]
    log("  %d messages stored, then %r" % (len(stored), refused[:3]))
    expect(len(stored) >= 3 and len(refused) >= 3, "the %d KiB disk filled after %d stored messages" % (
        size_kib, len(stored)))
    expect(all(code == OVER_QUOTA and reason.startswith("Insufficient Storage") for code, reason in refused),
           "every upload that found the disk full got 507 Insufficient Storage")
    expect(all(code != 0 for code, _ in answers[answers.index(refused[0]):]),
           "no message was acknowledged once the disk was full")
    expect(node.alive(), "the node keeps running on a full disk")
    text = node.log_text()
    expect("group commit failed" in text and "disk full (mdb_txn_commit" in text,
           "the node's log says a commit failed and why (disk full, with LMDB's text)")

    # The environment is not corrupt: restarted on the still-full disk, the
    # node serves every stored message.
    node.stop(signal.SIGKILL)
    node = d.start_node()
    owner = logged_in(node, "bob")
    for vid, data in stored.items():
        if fetch_sha(owner, vid) != hashlib.sha256(data).hexdigest():
            raise TestFailure("stored message %d unreadable after the restart on a full disk" % vid)
    owner.close()
    expect(True, "after kill -9 and a restart on the full disk, all %d stored messages read back intact" % len(stored))
    code, _, reason = leave_message(node, "alice", "bob", os.urandom(48 * 1024))
    expect(code == OVER_QUOTA, "still full after the restart: 507 (%r)" % reason)

    # Space returns: the operator deletes the ballast; uploads work again.
    os.remove(ballast)
    resumed = 0
    for attempt in range(3):
        data = os.urandom(48 * 1024)
        code, vid, reason = leave_message(node, "alice", "bob", data)
        if code == 0:
            stored[vid] = data
            resumed += 1
    expect(resumed == 3, "after the ballast was deleted, 3 of 3 new messages were stored")
    owner = logged_in(node, "bob")
    intact = sum(1 for vid, data in stored.items() if fetch_sha(owner, vid) == hashlib.sha256(data).hexdigest())
    owner.close()
    expect(intact == len(stored), "all %d messages read back" % len(stored))
    expect(node.stop() == 0, "the node stops cleanly")


# --------------------------------------------------------------------------
# 3. kill -9 of the LAN agent while hook events flow

AGENT = os.path.join(h.BUILD, "lan-agent", "tsunagu-lan-agent")
HOOK = os.path.join(h.BUILD, "lan-agent", "tsunagu-dhcp-hook")


class LeaseScript:
    """Events for CLIENTS clients, STEPS each, and the table state they must leave.

    Each client renews with ever later expiries, moves to a second address half
    way, and every other client ends with a release of its last lease (the same
    expiry: it ends that lease). The table's ordering rules make this final
    state independent of the order Kea's concurrent calls arrive in.
    """

    def __init__(self, server, first_octet, clients, steps, base_time):
        self.server = server
        self.calls = []   # (client index, argv, env) in the order a serial server makes them
        self.final = {}   # MAC -> address of the live lease, or None when it ended
        for step in range(steps):  # the clients' events interleave, as on a real LAN
            for c in range(clients):
                mac = "02:%02x:00:00:%02x:%02x" % (first_octet, c // 256, c % 256)
                address = "10.%d.%d.%d" % (first_octet, 1 if step < steps // 2 else 2, c + 1)
                expires = base_time + 3600 + step * 10
                ending = step == steps - 1 and c % 2 == 1
                if ending:
                    expires -= 10  # the release names the lease it ends
                self.calls.append((c, self.call(ending, mac, address, "pc-%d-%d" % (first_octet, c), expires)))
                self.final[mac] = None if ending else address

    def call(self, ending, mac, address, hostname, expires):
        if self.server == "dnsmasq":
            env = {"DNSMASQ_LEASE_EXPIRES": str(expires), "DNSMASQ_INTERFACE": "lan0"}
            return ["del" if ending else "old", mac, address, hostname], env
        lifetime = 3600
        env = {"LEASE4_ADDRESS": address, "LEASE4_HWADDR": mac, "LEASE4_HOSTNAME": hostname,
               "LEASE4_CLTT": str(expires - lifetime), "LEASE4_VALID_LIFETIME": str(lifetime),
               "QUERY4_IFACE_NAME": "lan0"}
        return ["lease4_release" if ending else "lease4_renew"], env


class HookRunner(threading.Thread):
    """Runs a script's hook calls: one at a time (dnsmasq) or `parallel` at once (Kea).

    Calls of different clients run concurrently and finish in any order; one
    client's calls keep their order (a DHCP server answers a client's next
    request after the last), as with Kea's asynchronous run_script.
    """

    def __init__(self, script, config, parallel):
        super().__init__(daemon=True)
        self.script, self.config, self.parallel = script, config, parallel
        self.done = 0
        self.error = None

    def run(self):
        try:
            running = {}  # client -> its hook process
            for client, (argv, env) in self.script.calls:
                while len(running) >= self.parallel or client in running:
                    self.reap(running, client if client in running else None)
                running[client] = h.spawn([HOOK, "--config", self.config] + argv, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while running:
                self.reap(running, next(iter(running)))
        except Exception as error:  # reported by the scenario
            self.error = error

    def reap(self, running, waiting_for):
        """Reaps finished hooks; blocks on `waiting_for`'s (or any) when none has finished."""
        finished = [c for c, proc in running.items() if proc.poll() is not None]
        if not finished:
            client = waiting_for if waiting_for is not None else next(iter(running))
            running[client].wait(timeout=60)
            finished = [client]
        for client in finished:
            del running[client]
            self.done += 1


def agent_table(config):
    """MAC -> address of every live lease, from `tsunagu-lan-agent list`."""
    result = subprocess.run([AGENT, "list", "-c", config], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise TestFailure("tsunagu-lan-agent list: exit %d %s" % (result.returncode, result.stderr))
    table = {}
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and re_mac(fields[1]):
            table[fields[1]] = fields[2]
    return table


def re_mac(text):
    return len(text) == 17 and text.count(":") == 5


def start_agent(config, log_path):
    with open(log_path, "a") as log_file:
        proc = h.spawn([AGENT, "run", "-c", config], stdout=log_file, stderr=subprocess.STDOUT)
    socket_path = os.path.join(os.path.dirname(config), "hook.sock")
    h.wait_until(lambda: proc.poll() is not None or os.path.exists(socket_path), 10 * h.SLOW, 0.02,
                 "the agent's hook socket")
    if proc.poll() is not None:
        raise TestFailure("the agent exited at start (%d)" % proc.returncode)
    return proc


def agent_kill9_hook_events():
    for program in (AGENT, HOOK):
        if not os.access(program, os.X_OK):
            raise TestFailure("%s is not built" % program)
    # On tmpfs when there is one: a kill -9 loses no page cache, so this proves
    # the same thing without a disk's fsync per hook call.
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    work = h.tempfile.mkdtemp(prefix="tsunagu-agent-crash-", dir=shm)
    h._directories.append(work)
    os.chmod(work, 0o755)
    config = os.path.join(work, "agent.toml")
    spool = os.path.join(work, "spool")
    with open(config, "w") as f:
        f.write('[agent]\ndata_directory = "%s/data"\nlog_level = "debug"\n[table]\nhostname_rule = "ext{ext}"\n'
                '[hook]\nsocket = "%s/hook.sock"\nspool_directory = "%s"\n' % (work, work, spool))
    log_path = os.path.join(work, "agent.log")
    agent = start_agent(config, log_path)

    events = int(os.environ.get("TSUNAGU_AGENT_CRASH_EVENTS", "1000"))
    per_client = 10
    base = int(time.time())
    serial = LeaseScript("dnsmasq", 201, events // 2 // per_client, per_client, base)
    concurrent = LeaseScript("kea", 202, events // 2 // per_client, per_client, base)
    rng = random.Random(int(os.environ.get("TSUNAGU_CRASH_SEED", str(base))))
    total = len(serial.calls) + len(concurrent.calls)
    # Killed at a random point in the first half; the rest (every client's last
    # events among them) can only reach the table through the spool.
    kill_at = rng.randint(total // 5, total // 2)
    runners = [HookRunner(serial, config, 1), HookRunner(concurrent, config, 16)]
    started = time.monotonic()
    for runner in runners:
        runner.start()
    done = lambda: sum(r.done for r in runners)  # noqa: E731
    h.wait_until(lambda: done() >= kill_at, 120 * h.SLOW, 0.005, "%d hook calls" % kill_at)
    agent.kill()
    agent.wait(timeout=10)
    killed_after = done()
    for runner in runners:
        runner.join(timeout=180 * h.SLOW)
        if runner.is_alive() or runner.error:
            raise TestFailure("hook calls did not finish: %r" % runner.error)
    spooled = os.path.getsize(os.path.join(spool, "hook-%d.spool" % os.getuid()))
    seconds = time.monotonic() - started
    agent = start_agent(config, log_path)
    log("  %d hook events (%d dnsmasq-style one at a time, %d Kea-style 16 at once) in %.1f s; agent killed with "
        "SIGKILL after %d; %d bytes spooled after that" % (
            total, len(serial.calls), len(concurrent.calls), seconds, killed_after, spooled))
    expect(spooled > 0, "the hooks spooled while the agent was down")
    spool_file = os.path.join(spool, "hook-%d.spool" % os.getuid())
    h.wait_until(lambda: os.path.getsize(spool_file) == 0, 10 * h.SLOW, 0.1, "the spool to be replayed")
    expected = {mac: address for script in (serial, concurrent) for mac, address in script.final.items() if address}
    table = agent_table(config)
    missing = {mac: a for mac, a in expected.items() if table.get(mac) != a}
    extra = {mac: a for mac, a in table.items() if mac not in expected}
    if missing or extra:
        raise TestFailure("the table differs from the events' final state: wrong or missing %r, should have ended %r"
                          % (dict(list(missing.items())[:5]), dict(list(extra.items())[:5])))
    expect(True, "after the restart and the spool replay the table holds exactly the %d live leases of the events' "
           "final state (%d ended)" % (len(expected), len(serial.final) + len(concurrent.final) - len(expected)))
    with open(log_path) as f:
        agent_log = f.read()
    # The table commits to the page cache only (docs/security.md): a SIGKILL of
    # the agent loses none of it, so the table is kept, not rebuilt (there is no
    # lease file here to rebuild it from: a rebuild would have failed the check above).
    expect("the machine has not rebooted since" in agent_log and "discarding the allocation table" not in agent_log,
           "without the clean-shutdown marker but in the same boot, the agent kept its table")
    agent.send_signal(signal.SIGTERM)
    expect(agent.wait(timeout=10 * h.SLOW) == 0, "the agent exits 0 on SIGTERM")
    expect(os.path.exists(os.path.join(work, "data", "table", "clean-shutdown")),
           "the orderly stop left the table's clean-shutdown marker")


# --------------------------------------------------------------------------
# 4. a database that cannot be opened stops the node at start

def node_open_failure_is_fatal():
    d = Deployment()
    node = d.start_node()
    expect(node.stop() == 0, "the node starts and stops on a fresh database")
    database = os.path.join(d.dir, "db")
    with open(os.path.join(database, "data.mdb"), "r+b") as f:
        f.write(b"\xab" * 16384)  # both meta pages: not an LMDB file any more
    result = subprocess.run([h.RENDEZVOUS, "run", "-d", d.dir, "--listen", "127.0.0.1:0", "--stun-listen",
                             "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=h.READY_TIMEOUT)
    output = result.stdout + result.stderr
    log("  " + output.strip().replace("\n", "\n  "))
    expect(result.returncode == 1, "the node exits 1 when its database cannot be opened (exit %d)" % result.returncode)
    expect("cannot open the node's database in %s" % database in output, "the message names the data directory")
    expect("MDB_INVALID" in output or "corrupted" in output, "and gives LMDB's error")


SCENARIOS = {
    "agent_kill9_hook_events": agent_kill9_hook_events,
    "node_open_failure_is_fatal": node_open_failure_is_fatal,
    "node_kill9_acknowledged_writes": node_kill9_acknowledged_writes,
    "node_disk_full_voicemail": node_disk_full_voicemail,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
