"""Operator scenarios (issue 17): the audit log a real node writes, and
`tsunagu-rendezvous doctor` / `tsunagu-lan-agent doctor` on healthy and
deliberately broken deployments. Python 3 standard library and the openssl CLI.

Scenarios:
  audit_log_lines    logins ok and failed, a limited one, an admin command and a
                     web-less node: the key=value lines in the node's log, with the
                     journal's <N> levels when JOURNAL_STREAM names its stderr
  doctor_healthy     a running node's deployment passes; its ports are "held by" it
  doctor_broken      expired certificate, world-readable key, port in use: each named, exit 1
  status_live        `status` prints a running node's /metrics figures
  backup_restore     `backup` of a running node, restored in place: serves what it held
  agent_doctor       an agent whose dnsmasq and Kea hooks point at a missing file and a
                     non-executable one: named, exit 1; fixed: exit 0
  audit_agent_link   `agent enroll` writes its enrolment line (ok, and failed for a domain
                     taken); a real agent's link up and, on its SIGTERM, down in the node's log;
                     the agent's own lines carry <N> levels when JOURNAL_STREAM names its stderr
  audit_login_flood  260 login attempts from one source: the limiter answers 429, the log keeps
                     200 `limited` lines (the flood limit) and a later successful login's line
  progress_terminal_and_lines
                     backup, restore, a card batch and a lease-file sync: a bar redrawn with
                     carriage returns when stderr is a terminal (a pty), plain lines otherwise
"""

import json
import os
import pty
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import TestFailure  # noqa: E402

AGENT = os.path.join(h.BUILD, "lan-agent", "tsunagu-lan-agent")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    h.log("  ok:", message)


def start_node_to_journal(d):
    """Starts the node as harness.start_node does, but with JOURNAL_STREAM naming
    its log file, as systemd does when stderr is the journal."""
    ready = d.path("ready-journal.json")
    log_path = d.path("node-journal.log")
    log_file = open(log_path, "w")
    st = os.fstat(log_file.fileno())
    env = dict(os.environ)
    env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    args = [h.RENDEZVOUS, "run", "-d", d.dir, "--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0",
            "--agent-listen", "127.0.0.1:0", "--ready-file", ready, "--log-level", "info"]
    proc = h.spawn(args, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()

    def ready_now():
        if proc.poll() is not None:
            raise TestFailure("node exited with %d:\n%s" % (proc.returncode, open(log_path).read()))
        try:
            with open(ready) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    data = h.wait_until(ready_now, h.READY_TIMEOUT, 0.05, "the node's ready file")
    d.node = h.Node(d, proc, data, log_path)
    return d.node


def audit_lines(text):
    return [line for line in text.splitlines() if "event=" in line]


def audit_log_lines():
    d = h.Deployment()
    added = d.add_user("alice", "correct horse battery")
    expect(re.search(r"info: event=admin via=cli by=\S+ action=user_add target=alice result=ok exit=0", added.err),
           "`user add` writes its audit line (got %r)" % added.err)
    refused = d.add_user("alice", "another password", expect=4)
    expect("action=user_add target=alice result=failed exit=4" in refused.err, "a refused `user add` is audited too")
    expect("correct horse" not in added.err + refused.err and "another password" not in refused.err,
           "no password in the admin lines")
    # The group's -d is taken after the subcommand too (the order an admin types it in).
    shown = d.admin(["user", "show", "alice", "-d", d.dir])
    expect(shown.code == 0 and "alice" in shown.out, "`user show alice -d DIR` works (%r)" % shown)
    agents = d.admin(["agent", "list", "-d", d.dir])
    expect(agents.code == 0, "`agent list -d DIR` works (%r)" % agents)
    node = start_node_to_journal(d)
    raw = h.RawTls(node)
    port = raw.sock.getsockname()[1]
    expect(raw.login("alice", "wrong password here", role=1).cls == h.ERROR, "a wrong password is refused")
    expect(raw.login("alice", "correct horse battery", role=1).cls == h.SUCCESS, "the right one logs in")
    # A login flood from one source: the limiter answers 429 and the log says 'limited'.
    flood = h.RawTls(node)
    for _ in range(7):
        flood.login("mallory", "guess guess guess", role=1)
    flood_port = flood.sock.getsockname()[1]

    def logged():
        lines = audit_lines(node.log_text())
        return lines if any("result=limited" in line for line in lines) else None

    lines = h.wait_until(logged, 10 * h.SLOW, 0.1, "the audit lines in the node's log")
    for line in lines:
        h.log("   ", line)
    source = "127.0.0.1:%d" % port
    expect(any(re.match(r"<6>\S+ tsunagu-rendezvous\[\d+\] info: event=login result=failed user=alice source=%s$"
                        % re.escape(source), line) for line in lines),
           "the failed login is one <6> info line with user and source")
    expect(any(line.endswith("info: event=login result=ok user=alice source=%s role=query" % source) for line in lines),
           "the successful login is one line with its role")
    expect(any(line.endswith("event=login result=limited user=mallory source=127.0.0.1:%d" % flood_port)
               for line in lines), "a login refused by the limiter is logged as limited")
    # A call placed, rung, accepted and hung up: four call lines, the last with its reason and durations.
    d.add_user("bob", "bob's long password")
    alice, bob = h.CallClient(node), h.CallClient(node)
    alice.login_presence("alice", "correct horse battery")
    bob.login_presence("bob", "bob's long password")
    placed = alice.call("bob")
    call_id = h.call_id_of(placed)
    ring = bob.wait_ring(10 * h.SLOW)
    bob.answer(ring)
    alice.wait_event(call_id, h.CALL_ACCEPTED, 10 * h.SLOW)
    # The callee reports its ICE path (its side: local relay, remote srflx) after
    # a malformed report; the caller's later report does not replace it.
    for reporter, path in ((bob, "relay/wormhole"), (bob, "relay/srflx"), (alice, "host/host")):
        reporter.send(h.encode(h.METHOD_CALL_PATH, h.INDICATION, [
            (h.ATTR_PROTOCOL_VERSION, h.u32(h.PROTOCOL_VERSION)), (h.ATTR_CALL_ID, h.text(call_id)),
            (h.ATTR_ICE_PATH, h.text(path))]))
        # The answer comes after the node handled the report: the order holds across links.
        expect(reporter.request(h.METHOD_KEEPALIVE).cls == h.SUCCESS, "the link answers after a path report")
    expect(bob.hangup(call_id).cls == h.SUCCESS, "bob hangs up")
    ended_line = h.wait_until(lambda: next((l for l in audit_lines(node.log_text())
                                            if "event=call state=ended call=%s" % call_id in l), None),
                              10 * h.SLOW, 0.1, "the call's ended line")
    h.log("   ", ended_line)
    for state in ("placed", "rung", "accepted"):
        expect(any("event=call state=%s call=%s caller=alice callee=bob" % (state, call_id) in l
                   for l in audit_lines(node.log_text())), "the call's %s line" % state)
    expect(re.search(r"caller=alice callee=bob reason=hung_up code=\d+ duration_s=\d+\.\d{3} talk_s=\d+\.\d{3} "
                     r"path=srflx/relay$", ended_line),
           "the ended line has the reason, both durations and the path bob reported, from alice's side")
    alice.close()
    bob.close()
    text = node.log_text()
    expect("wrong password here" not in text and "correct horse" not in text and "guess guess" not in text,
           "no password appears in the node's log")
    expect(all(line.startswith("<") for line in text.splitlines() if line), "every line carries a journal level")
    raw.close()
    flood.close()


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def doctor(d):
    result = d.admin(["doctor", "-d", d.dir])
    h.log(result.out)
    return result


def doctor_healthy():
    d = h.Deployment()
    listen = free_port()
    d.set("node", "listen", '"127.0.0.1:%d"' % listen)
    before = doctor(d)
    expect(before.code == 1 and re.search(r"FAIL +LMDB map .*no data.mdb", before.out),
           "before the first start doctor says the database is missing")
    args_port = ["--listen", "127.0.0.1:%d" % listen]
    # start_node overrides --listen with port 0: run with the configured port instead.
    ready = d.path("ready-fixed.json")
    log_path = d.path("node-fixed.log")
    with open(log_path, "w") as log_file:
        proc = h.spawn([h.RENDEZVOUS, "run", "-d", d.dir, "--ready-file", ready, "--stun-listen", "127.0.0.1:0",
                        "--agent-listen", "127.0.0.1:0"] + args_port, stdout=log_file, stderr=subprocess.STDOUT)
    h.wait_until(lambda: os.path.exists(ready) or proc.poll() is not None, h.READY_TIMEOUT, 0.05, "the node")
    expect(proc.poll() is None, "the node runs")
    result = doctor(d)
    expect(result.code == 0, "doctor passes on a healthy deployment (exit %d)" % result.code)
    expect("FAIL" not in result.out, "no FAIL line")
    expect(re.search(r"ok +terminal listener node.listen tcp 127.0.0.1:%d: held by tsunagu-rendezvous \(pid %d\)"
                     % (listen, proc.pid), result.out), "the node's own port is recognised as held by it")
    expect(re.search(r"^(ok|warn) +clock", result.out, re.M), "the clock is checked")
    for check in ("configuration", "node certificate", "node key", "CA certificate", "LMDB map"):
        expect(re.search(r"^ok +%s" % re.escape(check), result.out, re.M), "%s is ok" % check)
    proc.terminate()
    proc.wait(timeout=10 * h.SLOW)


def expired_certificate(directory, key_path, cert_path):
    """A self-signed certificate valid only in January 2020, written with the openssl CLI."""
    work = os.path.join(directory, "expired-ca")
    os.makedirs(work)
    open(os.path.join(work, "index.txt"), "w").close()
    with open(os.path.join(work, "serial"), "w") as f:
        f.write("01\n")
    config = os.path.join(work, "ca.cnf")
    with open(config, "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\nserial = %s/serial\n"
                "default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n" % (work, work, work))
    csr = os.path.join(work, "req.csr")
    for args in (["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key_path, "-out", csr, "-subj", "/CN=localhost"],
                 ["openssl", "ca", "-batch", "-config", config, "-selfsign", "-keyfile", key_path, "-in", csr,
                  "-out", cert_path, "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-notext"]):
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise TestFailure("%s: %s" % (" ".join(args[:2]), done.stderr))


def doctor_broken():
    d = h.Deployment()
    node_crt, node_key = os.path.join(d.dir, "node.crt"), os.path.join(d.dir, "node.key")
    expired_certificate(d.root, node_key, node_crt)
    os.chmod(node_key, 0o644)
    # A port some other process holds (this test), named in node.listen.
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    port = squatter.getsockname()[1]
    d.set("node", "listen", '"127.0.0.1:%d"' % port)
    redis_password = os.path.join(d.dir, "redis.password")
    with open(redis_password, "w") as f:
        f.write("cluster bus password\n")
    os.chmod(redis_password, 0o640)
    d.set("cluster", "redis_password_file", '"redis.password"')
    result = doctor(d)
    expect(result.code == 1, "doctor exits 1 (got %d)" % result.code)
    expect(re.search(r"^FAIL +node certificate \S+node.crt: expired on 2020-02-01", result.out, re.M),
           "the expired certificate is named with its date")
    expect(re.search(r"^FAIL +node key \S+node.key: mode 0644 .*chmod 600 ", result.out, re.M),
           "the world-readable key is named with the chmod that fixes it")
    expect(re.search(r"^FAIL +terminal listener node.listen tcp 127.0.0.1:%d: in use by \S+ \(pid %d\)"
                     % (port, os.getpid()), result.out, re.M), "the port in use is named with its holder")
    expect(re.search(r"^FAIL +Redis password cluster.redis_password_file \S+redis.password: mode 0640 .*chmod 600 ",
                     result.out, re.M), "the group-readable Redis password file is named with the chmod that fixes it")
    os.chmod(redis_password, 0o600)
    squatter.close()
    os.chmod(node_key, 0o600)
    # A certificate that expires in 10 days warns and does not fail.
    soon = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-keyout", node_key, "-out", node_crt, "-days", "10", "-subj", "/CN=localhost"],
                          capture_output=True, text=True, timeout=30)
    expect(soon.returncode == 0, "openssl made a 10-day certificate")
    os.chmod(node_key, 0o600)
    again = doctor(d)
    expect(re.search(r"^warn +node certificate \S+: expires in (9|10) day", again.out, re.M),
           "a certificate expiring within 30 days warns")
    expect(not re.search(r"^FAIL +(node certificate|node key|terminal listener|Redis password)", again.out, re.M),
           "the fixed faults no longer fail")


def agent_doctor():
    if not os.access(AGENT, os.X_OK):
        raise TestFailure("%s is not built" % AGENT)
    misuse = subprocess.run([AGENT, "list", "--no-such-option"], capture_output=True, text=True, timeout=h.CLI_TIMEOUT)
    expect(misuse.returncode == 2 and "--no-such-option" in misuse.stderr,
           "a usage mistake exits 2 as --help says (%r)" % misuse)
    root = h.tempfile.mkdtemp(prefix="tsunagu-doctor-")
    h._directories.append(root)
    data = os.path.join(root, "data")
    config = os.path.join(root, "agent.toml")
    with open(config, "w") as f:
        f.write('[agent]\nname = "acme"\ndomains = ["acme"]\ndata_directory = "%s"\n'
                '[hook]\nsocket = "%s/hook.sock"\nspool_directory = "%s/spool"\n' % (data, root, root))
    os.makedirs(data, mode=0o750)
    hook = os.path.join(root, "tsunagu-dhcp-hook")
    with open(hook, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(hook, 0o644)  # not executable
    dnsmasq = os.path.join(root, "dnsmasq.conf")
    with open(dnsmasq, "w") as f:
        f.write("# the hook moved\ndhcp-script=/nonexistent/lib/tsunagu/tsunagu-dhcp-hook\n")
    kea = os.path.join(root, "kea-dhcp4.conf")
    with open(kea, "w") as f:
        f.write('{ "Dhcp4": { "hooks-libraries": [ { "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/'
                'libdhcp_run_script.so", "parameters": { "name": "%s", "sync": false } } ] } }\n' % hook)

    def run():
        result = subprocess.run([AGENT, "doctor", "-c", config, "--dnsmasq-conf", dnsmasq, "--kea-conf", kea],
                                capture_output=True, text=True, timeout=h.CLI_TIMEOUT)
        h.log(result.stdout + result.stderr)
        return result

    broken = run()
    expect(broken.returncode == 1, "agent doctor exits 1 (got %d)" % broken.returncode)
    expect(re.search(r"^FAIL +dnsmasq hook /nonexistent/lib/tsunagu/tsunagu-dhcp-hook .*no such file", broken.stdout,
                     re.M), "the dnsmasq hook path that does not exist is named")
    expect(re.search(r"^warn +dnsmasq configuration .*script-on-renewal", broken.stdout, re.M),
           "a missing script-on-renewal warns")
    expect(re.search(r"^FAIL +Kea hook %s .*not executable; run: chmod 755" % re.escape(hook), broken.stdout, re.M),
           "the non-executable Kea hook is named with the fix")
    expect(re.search(r"^warn +allocation table .*has not run", broken.stdout, re.M), "a table not made yet warns")
    with open(dnsmasq, "w") as f:
        f.write("dhcp-script=%s\nscript-on-renewal\n" % hook)
    os.chmod(hook, 0o755)
    fixed = run()
    expect(fixed.returncode == 0 and "FAIL" not in fixed.stdout, "with the hooks fixed the agent doctor passes")
    expect(re.search(r"^ok +dnsmasq hook %s" % re.escape(hook), fixed.stdout, re.M), "the dnsmasq hook is ok")
    bad = subprocess.run([AGENT, "doctor", "-c", os.path.join(root, "missing.toml")], capture_output=True, text=True,
                         timeout=h.CLI_TIMEOUT)
    expect(bad.returncode == 1 and re.search(r"^FAIL +configuration ", bad.stdout, re.M),
           "a configuration that cannot be read is a FAIL line")


def backup_restore():
    """`backup` while the node runs and serves logins; the copy, put in place of
    db/data.mdb, serves the accounts it held and not one added after it."""
    d = h.Deployment()
    d.add_user("alice", "correct horse battery")
    node = d.start_node()
    d.add_user("bob", "battery staple horse")  # written by the CLI while the node runs
    raw = h.RawTls(node)
    expect(raw.login("bob", "battery staple horse", role=1).cls == h.SUCCESS, "bob logs in before the backup")
    out = d.path("backup")
    result = d.admin(["backup", "-d", d.dir, out])
    expect(result.code == 0 and "data.mdb" in result.out, "backup succeeds while the node runs (%r)" % result)
    expect(os.stat(out).st_mode & 0o777 == 0o700, "the backup directory is 0700")
    expect(raw.login("alice", "correct horse battery", role=1).cls == h.SUCCESS, "the node served on during the backup")
    again = d.admin(["backup", "-d", d.dir, out])
    expect(again.code != 0 and "exists" in again.err, "a second backup into the same directory is refused")
    expect("copying: 100%" in result.err, "without a terminal, progress is plain lines on stderr (%r)" % result.err)
    d.add_user("carol", "after the backup")
    raw.close()
    backup_file = os.path.join(out, "data.mdb")
    busy = d.admin(["restore", backup_file, "-d", d.dir])
    expect(busy.code == 1 and "stop the daemon first" in busy.err and "process %d" % node.proc.pid in busy.err,
           "restore refuses while the node runs, naming its PID (%r)" % busy)
    expect(raw_login_ok(node, "carol", "after the backup"), "the refused restore changed nothing")
    not_backup = d.admin(["restore", os.path.join(d.dir, "node.toml"), "-d", d.dir])
    expect(not_backup.code == 2 and "not an LMDB file" in not_backup.err, "a file that is no backup: exit 2 (%r)"
           % not_backup)
    expect(node.stop() == 0, "the node stops")
    done = d.admin(["restore", backup_file, "-d", d.dir, "--no-progress"])
    expect(done.code == 0 and "before-restore" in done.out and "restoring" not in done.err,
           "restore with the node stopped (%r)" % done)
    expect("action=restore" in done.err and "result=ok" in done.err, "the restore is audited")
    expect(os.path.exists(os.path.join(d.dir, "db", "data.mdb.before-restore")), "the replaced database is kept")
    restored = d.start_node()
    raw = h.RawTls(restored)
    expect(raw.login("alice", "correct horse battery", role=1).cls == h.SUCCESS, "alice logs in on the restored node")
    expect(raw.login("bob", "battery staple horse", role=1).cls == h.SUCCESS, "bob, added while it ran, too")
    expect(raw.login("carol", "after the backup", role=1).cls == h.ERROR, "carol, added after the backup, is not there")
    raw.close()


def raw_login_ok(node, user, password):
    raw = h.RawTls(node)
    try:
        return raw.login(user, password, role=1).cls == h.SUCCESS
    finally:
        raw.close()


def status_live():
    """`status` prints the running node's figures from its /metrics."""
    d = h.Deployment()
    d.add_user("alice", "correct horse battery")
    node = d.start_node()
    if not node.web:
        raise TestFailure("the node has no web listener (web.listen)")
    raw = h.RawTls(node)
    expect(raw.login("alice", "correct horse battery", role=1).cls == h.SUCCESS, "alice logs in")
    expect(raw.login("alice", "not her password", role=1).cls == h.ERROR, "and fails once")
    result = d.admin(["status", "-d", d.dir, "--web", node.web])
    h.log(result.out)
    expect(result.code == 0, "status exits 0 (%r)" % result)
    expect(re.search(r"^tsunagu_node_links: .*kind=terminal 1\b", result.out, re.M), "one terminal link is shown")
    expect(re.search(r"^tsunagu_node_logins_total: .*result=ok 1\b.*", result.out, re.M) and
           re.search(r"^tsunagu_node_logins_total: .*result=failed 1\b", result.out, re.M),
           "the logins by result are shown")
    expect("_bucket" not in result.out, "histogram buckets are left out")
    raw.close()
    node.stop()
    gone = d.admin(["status", "-d", d.dir, "--web", node.web])
    expect(gone.code == 1 and "cannot connect" in gone.err, "a stopped node: exit 1 and why (%r)" % gone.err)


def audit_agent_link():
    """The enrolment line of `agent enroll` and the node's agent_link lines for a
    real agent's link coming up and going down."""
    if not os.access(AGENT, os.X_OK):
        raise TestFailure("%s is not built" % AGENT)
    d = h.Deployment()
    bundle = d.path("acme")

    def enroll(name, domain):
        return d.admin(["agent", "-d", d.dir, "enroll", name, "--domain", domain, "--prefix", "+81-6-1234-",
                        "--out", d.path(name), "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"])

    enrolled = enroll("acme", "acme")
    expect(enrolled.code == 0, "agent enroll acme succeeds (%r)" % enrolled)
    expect(re.search(r"info: event=enrolment via=cli by=\S+ agent=acme domains=acme prefixes=\+81-6-1234- "
                     r"result=ok exit=0$", enrolled.err, re.M), "the enrolment line (%r)" % enrolled.err)
    taken = enroll("acme2", "acme")
    expect(taken.code == 4 and re.search(r"event=enrolment via=cli by=\S+ agent=acme2 domains=acme .*"
                                         r"result=failed exit=4$", taken.err, re.M),
           "a refused enrolment is audited with its exit status (%r)" % taken.err)
    node = d.start_node()
    expect(node.agent_address is not None, "the node listens for agents")
    config = os.path.join(bundle, "agent.toml")
    with open(config, "w") as f:
        f.write('[node]\naddress = "%s"\nserver_name = "127.0.0.1"\nca_certificate = "ca.crt"\n'
                'certificate = "agent.crt"\nprivate_key = "agent.key"\nreconnect_min_ms = 100\n'
                'reconnect_max_ms = 1000\n[agent]\nname = "acme"\ndomains = ["acme"]\nnumber_prefixes = ["+81-6-1234-"]\n'
                'data_directory = "%s/data"\n[hook]\nsocket = "%s/hook.sock"\nspool_directory = "%s/spool"\n'
                % (node.agent_address, bundle, bundle, bundle))
    agent_log_path = d.path("agent.log")
    with open(agent_log_path, "w") as agent_log:
        # As under systemd: JOURNAL_STREAM names its stderr, so its lines carry <N> levels.
        st = os.fstat(agent_log.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        agent = h.spawn([AGENT, "run", "-c", config], env=env, stdout=agent_log, stderr=subprocess.STDOUT)

    def node_line(pattern):
        def found():
            if agent.poll() is not None and "state=down" not in pattern:
                raise TestFailure("the agent exited with %d" % agent.returncode)
            return next((l for l in audit_lines(node.log_text()) if re.search(pattern, l)), None)
        return h.wait_until(found, 10 * h.SLOW, 0.05, "a node line matching %r" % pattern)

    up = node_line(r"info: event=agent_link state=up agent=acme source=127\.0\.0\.1:\d+$")
    h.log("   ", up)
    agent.terminate()  # by PID
    expect(agent.wait(timeout=10 * h.SLOW) == 0, "the agent exits 0 on SIGTERM")
    down = node_line(r"info: event=agent_link state=down agent=acme source=127\.0\.0\.1:\d+$")
    h.log("   ", down)
    expect(up.split("source=")[1] == down.split("source=")[1], "up and down name the same source")
    with open(agent_log_path) as f:
        agent_lines = [l for l in f.read().splitlines() if l]
    expect(agent_lines and all(re.match(r"<[3467]>", l) for l in agent_lines) and
           any(re.match(r"<6>\S+ tsunagu-lan-agent\[\d+\] info: .*linked to the node", l) for l in agent_lines),
           "under the journal every agent line carries its level, <6> for info (%r)" % agent_lines[:3])


def audit_login_flood():
    """A password-guessing flood against a real node: every attempt is answered,
    the log holds at most the flood limit of its kind, and the owner's login
    still leaves its line."""
    d = h.Deployment()
    d.add_user("alice", "correct horse battery")
    node = d.start_node()
    attempts, limit = 260, 200  # audit::AuditLog's default burst per 10 s
    flood = h.RawTls(node)
    answers = [flood.login("alice", "guess number %03d" % i, role=1).error() for i in range(attempts)]
    codes = [a[0] if a else None for a in answers]
    expect(codes.count(429) >= attempts - 10 and set(codes) <= {401, 429},
           "every guess is answered, nearly all by the limiter with 429 (%s)" % sorted(set(codes), key=str))
    owner = h.RawTls(node, source="127.0.0.2")  # another source: the limits of the guessing one do not hold it
    expect(owner.login("alice", "correct horse battery", role=1).cls == h.SUCCESS, "alice still logs in")

    def ok_line():
        text = node.log_text()
        return text if "event=login result=ok user=alice" in text else None

    text = h.wait_until(ok_line, 10 * h.SLOW, 0.05, "alice's login line")
    limited = len(re.findall(r"info: event=login result=limited user=alice ", text))
    failed = len(re.findall(r"info: event=login result=failed user=alice ", text))
    expect(limited == limit, "the log holds exactly %d limited lines for %d limited attempts (got %d)"
           % (limit, codes.count(429), limited))
    expect(failed == codes.count(401), "each wrong password before the limiter is one failed line (%d)" % failed)
    expect("event=login result=ok user=alice" in text, "the flood did not hide the successful login")
    flood.close()
    owner.close()


def run_on_pty(args, timeout=None):
    """Runs args with stderr on a pseudo-terminal (stdout a pipe); returns
    (exit status, stdout, what the terminal showed)."""
    controller, terminal = pty.openpty()
    try:
        proc = h.spawn(args, stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        terminal = None
        shown = b""
        deadline = time.monotonic() + (timeout or h.CLI_TIMEOUT)
        while time.monotonic() < deadline:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        out = proc.stdout.read().decode(errors="replace")
        code = proc.wait(timeout=10 * h.SLOW)
        return code, out, shown.decode(errors="replace")
    finally:
        os.close(controller)
        if terminal is not None:
            os.close(terminal)


def expect_bar(shown, what, context):
    expect(("\r%s" % what) in shown and re.search(r"\[#{30}\] 100%", shown) and " of " not in shown,
           "%s on a terminal: a %r bar redrawn with carriage returns, no plain lines (%r)" % (context, what,
                                                                                         shown[-200:]))


def expect_lines(text, what, total, context):
    lines = [l for l in text.splitlines() if l.startswith(what + ":")]
    expect("\r" not in text and lines and lines[-1] == "%s: 100%% (%d of %d)" % (what, total, total) and
           len(lines) <= 11, "%s without a terminal: plain %r lines, at most one a tenth (%r)" % (context, what, lines))


def progress_terminal_and_lines():
    if not os.access(AGENT, os.X_OK):
        raise TestFailure("%s is not built" % AGENT)
    d = h.Deployment()
    d.add_user("alice", "correct horse battery")
    # Backup and restore: the bar on a terminal; lines are checked by backup_restore.
    code, out, shown = run_on_pty([h.RENDEZVOUS, "backup", "-d", d.dir, d.path("backup")])
    expect(code == 0 and "data.mdb" in out, "backup on a terminal succeeds (%r)" % out)
    expect_bar(shown, "copying", "backup")
    backup_file = os.path.join(d.path("backup"), "data.mdb")
    code, out, shown = run_on_pty([h.RENDEZVOUS, "restore", "-d", d.dir, backup_file])
    expect(code == 0 and "before-restore" in out, "restore on a terminal succeeds (%r)" % out)
    expect_bar(shown, "restoring", "restore")
    lines = d.admin(["restore", "-d", d.dir, backup_file])
    expect(lines.code == 0, "restore again without a terminal (%r)" % lines)
    size = os.path.getsize(backup_file)
    expect_lines(lines.err, "restoring", size, "restore")
    # A card batch: one scrypt hash per card.
    areas = os.path.join(ROOT, "docs", "areas.example.toml")
    issue = [h.RENDEZVOUS, "card", "-d", d.dir, "issue", "--units", "10", "--areas", areas, "--group", "3",
             "--count", "4"]
    code, out, shown = run_on_pty(issue + ["--out", d.path("cards-tty")], timeout=60 * h.SLOW)
    expect(code == 0 and "issued 4 card(s)" in out, "card issue on a terminal succeeds (%r)" % out)
    expect("correct horse" not in shown, "nothing secret on the terminal's stderr")
    bar_what = re.search(r"\r(\w+)", shown)
    expect(bar_what is not None, "card issue draws a bar on a terminal (%r)" % shown)
    expect_bar(shown, bar_what.group(1), "card issue")
    batch = d.admin(issue[1:] + ["--out", d.path("cards-lines")], timeout=60 * h.SLOW)
    expect(batch.code == 0, "card issue without a terminal (%r)" % batch)
    expect_lines(batch.err, bar_what.group(1), 4, "card issue")
    # A lease-file sync of more than 5,000 leases (the size where the agent shows progress).
    config = d.path("agent.toml")
    with open(config, "w") as f:
        f.write('[agent]\nname = "acme"\ndomains = ["acme"]\ndata_directory = "%s"\n[table]\n'
                'hostname_rule = "ext{ext}"\n[hook]\nsocket = "%s"\nspool_directory = "%s"\n'
                % (d.path("agent-data"), d.path("hook.sock"), d.path("spool")))
    leases = d.path("dnsmasq.leases")
    expiry = int(time.time()) + 3600
    count = 6000
    with open(leases, "w") as f:
        for i in range(count):
            f.write("%d 52:54:00:%02x:%02x:%02x 10.%d.%d.%d ext%d *\n" % (
                expiry, i >> 16, (i >> 8) & 255, i & 255, 20 + (i >> 16), (i >> 8) & 255, i & 255, 1000 + i))
    sync = [AGENT, "sync", "-c", config, "--from", "dnsmasq:" + leases]
    code, out, shown = run_on_pty(sync, timeout=120 * h.SLOW)
    expect(code == 0 and "synced dnsmasq:" in out, "sync on a terminal succeeds (%r %r)" % (out, shown[-300:]))
    expect_bar(shown, "applying", "lease-file sync")
    plain = subprocess.run(sync, capture_output=True, text=True, timeout=120 * h.SLOW)
    expect(plain.returncode == 0, "sync without a terminal (%r)" % plain.stderr[-300:])
    expect_lines(plain.stderr, "applying", count, "lease-file sync")
    quiet = subprocess.run(sync + ["--no-progress"], capture_output=True, text=True, timeout=120 * h.SLOW)
    expect(quiet.returncode == 0 and "applying" not in quiet.stderr, "--no-progress shows nothing (%r)"
           % quiet.stderr[-300:])


SCENARIOS = {
    "audit_login_flood": audit_login_flood,
    "audit_agent_link": audit_agent_link,
    "progress_terminal_and_lines": progress_terminal_and_lines,
    "status_live": status_live,
    "backup_restore": backup_restore,
    "audit_log_lines": audit_log_lines,
    "doctor_healthy": doctor_healthy,
    "doctor_broken": doctor_broken,
    "agent_doctor": agent_doctor,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
