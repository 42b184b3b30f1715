"""Faults found by running a node as an operator would, from docs/operator.md
alone (one scenario per fault; each fails without its fix). Python 3 standard
library; strace for the kill -9 at a chosen system call.

Scenarios:
  node_second_run_refused   a second `run` on a deployment whose node runs exits 1
                            naming the first's PID, and the first serves on; after
                            the first is killed (-9) a new one starts
  backup_killed_leaves_no_copy
                            `backup` killed -9 in the middle of writing leaves no
                            data.mdb in OUT (only a data.mdb.partial-* file), and a
                            new backup into OUT works; a backup cut short is refused
                            by `restore` (exit 2, nothing changed)
  restore_killed_keeps_a_database
                            `restore` killed -9 at each of its renames and links:
                            db/data.mdb is always there, the old database or the
                            backup, and the node starts on it and serves its accounts
  doctor_renewal_advice     doctor's advice for an expiring node certificate is
                            `init DIR --renew-certificate` (not `--force`: a new CA);
                            run as given, doctor is satisfied and the CA unchanged;
                            a certificate naming no host is not renewed for none
  doctor_card_secrets       doctor checks card_issuer.key and card_password.secret
                            (0600) like the other keys
  init_refuses_deployment_without_ca_key
                            `init DIR` on a deployment whose ca.key is offline refuses
                            (it used to make a new CA over it)
  wrong_user_says_why       an admin command run as a user who cannot read the
                            deployment names the file, the error and runuser
  doctor_metrics_token      doctor checks web.metrics_token_file: missing (the node
                            would not start) or readable by others: FAIL
  card_issue_keeps_earlier_batch
                            a second `card issue` into an earlier batch's --out is
                            refused (it replaced cards.tsv, the passwords' only copy)
  restore_as_root_keeps_owner
                            `restore` run as root gives db/ files to the deployment's
                            owner (the node, run as that user, opens them), and makes
                            db/ when a deployment put back on a new machine has none
"""

import os
import re
import shutil
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


def strace_or_skip():
    if shutil.which("strace") is None:
        raise h.Skip("strace is not installed (Debian package strace): it delivers the kill -9 at a chosen call")


def killed_at(args, syscall, when):
    """Runs args under strace, SIGKILLed on entry to its when-th call of syscall."""
    traced = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall,
              "-e", "inject=%s:signal=KILL:when=%d" % (syscall, when)] + args
    return subprocess.run(traced, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=h.CLI_TIMEOUT)


def backup_killed_leaves_no_copy():
    strace_or_skip()
    d = h.Deployment()
    d.add_user("alice", PASSWORD)
    out = d.path("backup")
    backup = [h.RENDEZVOUS, "backup", "-d", d.dir, out, "--no-progress"]
    # The compacting copy is the command's first write(2) (--no-progress: nothing
    # is printed before it); killed there, the copy is empty.
    killed = killed_at(backup, "write", 1)
    expect(killed.returncode != 0, "backup killed -9 at its first write (exit %d, %r)"
           % (killed.returncode, killed.stderr[-300:]))
    left = sorted(os.listdir(out)) if os.path.isdir(out) else []
    h.log("  left in OUT: %s" % left)
    expect("data.mdb" not in left, "no data.mdb in OUT: nothing there looks like a backup")
    whole = d.admin(["backup", "-d", d.dir, out, "--no-progress"])
    expect(whole.code == 0 and os.path.exists(os.path.join(out, "data.mdb")),
           "a new backup into the same OUT works (%r)" % whole)
    expect(not any(name.startswith("data.mdb.partial-") for name in os.listdir(out)
                   if name not in left), "a finished backup leaves no partial file of its own")
    # A copy cut short some other way (an interrupted scp): restore refuses it.
    cut = d.path("cut.mdb")
    with open(os.path.join(out, "data.mdb"), "rb") as f:
        data = f.read()
    expect(len(data) >= 4 * 4096, "the backup is %d bytes (pages to cut)" % len(data))
    with open(cut, "wb") as f:
        f.write(data[:-4096])  # one page short
    before = os.stat(os.path.join(d.dir, "db", "data.mdb"))
    refused = d.admin(["restore", "-d", d.dir, cut, "--no-progress"])
    h.log("  restore of a cut copy: exit %d: %s" % (refused.code, refused.err.strip()))
    expect(refused.code == 2 and "cut short" in refused.err, "restore refuses a copy cut short with exit 2")
    after = os.stat(os.path.join(d.dir, "db", "data.mdb"))
    expect((before.st_ino, before.st_size, before.st_mtime_ns) == (after.st_ino, after.st_size, after.st_mtime_ns),
           "and leaves the database as it was")
    node = d.start_node()
    expect(login_ok(node, "alice"), "the node serves the database it had")


def restore_killed_keeps_a_database():
    strace_or_skip()
    d = h.Deployment()
    d.add_user("alice", PASSWORD)
    out = d.path("backup")
    made = d.admin(["backup", "-d", d.dir, out, "--no-progress"])
    expect(made.code == 0, "a backup holding alice (%r)" % made)
    backup_file = os.path.join(out, "data.mdb")
    d.add_user("bob", PASSWORD)  # in the live database only
    data_mdb = os.path.join(d.dir, "db", "data.mdb")
    restore = [h.RENDEZVOUS, "restore", "-d", d.dir, backup_file, "--no-progress"]
    kills = 0
    for syscall in ("unlink", "link", "rename"):
        for when in (1, 2, 3):
            killed = killed_at(restore, syscall, when)
            finished = killed.returncode == 0
            if not finished:
                kills += 1
            h.log("  killed at %s #%d: %s" % (syscall, when, "not reached, restore finished" if finished
                                              else "exit %d" % killed.returncode))
            expect(os.path.exists(data_mdb), "after restore killed at %s #%d, db/data.mdb exists" % (syscall, when))
            node = d.start_node()
            alice = login_ok(node, "alice")
            bob = login_ok(node, "bob")
            expect(alice, "the node starts on it and alice (in both databases) logs in (bob, only in the "
                   "live one: %s)" % ("there" if bob else "gone"))
            expect(node.stop() == 0, "the node stops")
            if finished:
                expect(not bob, "the finished restore serves the backup (bob, added after it, is gone)")
                # Put bob's database back for the next kill point.
                shutil.copyfile(os.path.join(d.dir, "db", "data.mdb.before-restore"), d.path("live.mdb"))
                put_back = d.admin(["restore", "-d", d.dir, d.path("live.mdb"), "--no-progress"])
                expect(put_back.code == 0, "the live database is put back (%r)" % put_back)
                break
    expect(kills >= 3, "restore was killed at %d points (a link, the renames)" % kills)


def doctor_renewal_advice():
    """doctor's advice for the node's certificate renews it (and leaves the CA):
    followed word for word, doctor is satisfied and the node serves the new one."""
    d = h.Deployment()
    d.add_user("alice", PASSWORD)
    node_crt, node_key = os.path.join(d.dir, "node.crt"), os.path.join(d.dir, "node.key")
    ca_crt = os.path.join(d.dir, "ca.crt")
    with open(ca_crt) as f:
        ca_before = f.read()
    # The node's certificate, from the deployment's CA, expiring in 10 days.
    csr, extensions = d.path("node.csr"), d.path("san.cnf")
    with open(extensions, "w") as f:
        f.write("subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1\n")
    for args in (["openssl", "req", "-new", "-key", node_key, "-subj", "/CN=localhost", "-out", csr],
                 ["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", os.path.join(d.dir, "ca.key"),
                  "-CAcreateserial", "-days", "10", "-extfile", extensions, "-out", node_crt]):
        made = subprocess.run(args, capture_output=True, text=True, timeout=30)
        expect(made.returncode == 0, "openssl %s (%s)" % (args[1], made.stderr.strip()[-200:]))
    doctor = d.admin(["doctor", "-d", d.dir])
    line = next((l for l in doctor.out.splitlines() if " node certificate " in l), "")
    h.log("  " + line)
    expect(line.startswith("warn") and "expires in" in line, "doctor warns of the expiring node certificate")
    advice = re.search(r"(tsunagu-rendezvous init \S+ --renew-certificate)", line)
    expect(advice and "--force" not in line, "and names --renew-certificate, not init --force (a new CA)")
    renewed = d.admin(advice.group(1).split()[1:])
    expect(renewed.code == 0 and "renewed the node certificate" in renewed.out, "the advice, run: %r" % renewed)
    again = d.admin(["doctor", "-d", d.dir])
    expect(re.search(r"^ok +node certificate \S+: valid until", again.out, re.M),
           "doctor is satisfied with the node certificate")
    with open(ca_crt) as f:
        expect(f.read() == ca_before, "the CA certificate is the one terminals already have")
    node = d.start_node()
    expect(login_ok(node, "alice"), "the node serves the renewed certificate to a terminal trusting the old ca.crt")
    node.stop()
    # A certificate naming its host only in the subject: renewal without
    # --name/--ip is refused rather than issued for no name.
    import operator_test  # noqa: E402 (its openssl helper for an expired certificate)
    shutil.rmtree(os.path.join(d.root, "expired-ca"), ignore_errors=True)
    operator_test.expired_certificate(d.root, node_key, node_crt)
    os.chmod(node_key, 0o600)
    expired = d.admin(["doctor", "-d", d.dir])
    line = next((l for l in expired.out.splitlines() if " node certificate " in l), "")
    expect(line.startswith("FAIL") and "--renew-certificate" in line and "--force" not in line,
           "an expired node certificate: FAIL, with the same advice (%s)" % line)
    with open(node_crt) as f:
        subject_only = f.read()
    refused = d.admin(["init", d.dir, "--renew-certificate"])
    expect(refused.code != 0 and "names no DNS name or IP address" in refused.err,
           "renewing a certificate that names no host needs --name/--ip (%r)" % refused)
    with open(node_crt) as f:
        expect(f.read() == subject_only, "and changes nothing")
    named = d.admin(["init", d.dir, "--renew-certificate", "--name", "localhost", "--ip", "127.0.0.1"])
    expect(named.code == 0, "with --name/--ip it renews (%r)" % named)


def doctor_card_secrets():
    """doctor checks the card issuer's secret files like the other keys."""
    d = h.Deployment()
    areas = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "areas.example.toml")
    issued = d.admin(["card", "-d", d.dir, "issue", "--units", "10", "--areas", areas, "--group", "1",
                      "--count", "1", "--out", d.path("cards")])
    expect(issued.code == 0, "a card is issued (%r)" % issued)
    for name in ("card_issuer.key", "card_password.secret"):
        path = os.path.join(d.dir, name)
        h.note_private_key(path)
        expect(os.stat(path).st_mode & 0o777 == 0o600, "%s is made 0600" % name)
    healthy = d.admin(["doctor", "-d", d.dir])
    for name in ("card_issuer.key", "card_password.secret"):
        expect(re.search(r"^ok +%s \S+%s: mode 0600" % (re.escape(name), re.escape(name)), healthy.out, re.M),
               "doctor checks %s: ok" % name)
    os.chmod(os.path.join(d.dir, "card_issuer.key"), 0o644)
    broken = d.admin(["doctor", "-d", d.dir])
    expect(broken.code == 1 and re.search(r"^FAIL +card_issuer.key \S+: mode 0644 .*chmod 600 ", broken.out, re.M),
           "a world-readable card issuer key fails doctor, with the chmod that fixes it")


def init_refuses_deployment_without_ca_key():
    """A deployment whose ca.key is kept offline (as docs/operator.md advises) is
    still one: `init DIR` again refuses rather than replacing its CA."""
    d = h.Deployment()
    d.add_user("alice", PASSWORD)
    os.rename(os.path.join(d.dir, "ca.key"), d.path("offline-ca.key"))
    kept = {}
    for name in ("ca.crt", "node.crt", "node.key", "node.toml"):
        with open(os.path.join(d.dir, name)) as f:
            kept[name] = f.read()
    again = d.admin(["init", d.dir])
    expect(again.code == 4 and "already holds a deployment" in again.err,
           "init on a deployment without ca.key refuses (%r)" % again)
    for name, text in kept.items():
        with open(os.path.join(d.dir, name)) as f:
            expect(f.read() == text, "%s is unchanged" % name)
    expect(not os.path.exists(os.path.join(d.dir, "ca.key")), "no new ca.key was made")
    node = d.start_node()
    expect(login_ok(node, "alice"), "the node still serves with the certificate terminals trust")


def wrong_user_says_why():
    """An admin command run as a user who cannot read the deployment (the docs:
    run them as the service's user) says which file and why, in words."""
    d = h.Deployment()
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            raise h.Skip("setpriv (util-linux) is needed to run a command as nobody")
        as_other = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    else:
        as_other = []  # this user, with the deployment made unreadable below
    os.chmod(d.root, 0o755)

    def attempt(what):
        result = subprocess.run(as_other + [h.RENDEZVOUS, "user", "-d", d.dir, "list"], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=h.CLI_TIMEOUT)
        h.log("  %s: exit %d: %s" % (what, result.returncode, result.stderr.strip()))
        expect(result.returncode == 2 and "node.toml: cannot read it: Permission denied" in result.stderr and
               "runuser -u tsunagu" in result.stderr and "filesystem error" not in result.stderr,
               "%s: exit 2, the file and why, and how to run it" % what)

    if not as_other:
        os.chmod(d.dir, 0o000)
    attempt("a deployment directory the user cannot enter")
    os.chmod(d.dir, 0o751 if as_other else 0o700)
    if not as_other:
        os.chmod(d.config, 0o000)
    attempt("a node.toml the user cannot read")
    os.chmod(d.config, 0o640)
    os.chmod(d.dir, 0o750)


def doctor_metrics_token():
    """web.metrics_token_file: doctor checks it like a key (the node does not
    start without it, and a readable one lets anyone on the host scrape)."""
    d = h.Deployment()
    d.set("web", "metrics_token_file", '"metrics.token"')
    missing = d.admin(["doctor", "-d", d.dir])
    expect(missing.code == 1 and re.search(r"^FAIL +metrics token web.metrics_token_file \S+: missing", missing.out,
                                           re.M), "a token file that is not there fails doctor")
    token = os.path.join(d.dir, "metrics.token")
    with open(token, "w") as f:
        f.write("0123456789abcdef0123\n")
    os.chmod(token, 0o644)
    readable = d.admin(["doctor", "-d", d.dir])
    expect(re.search(r"^FAIL +metrics token \S+ \S+: mode 0644 .*chmod 600 ", readable.out, re.M),
           "a world-readable token fails doctor, with the chmod that fixes it")
    os.chmod(token, 0o600)
    fixed = d.admin(["doctor", "-d", d.dir])
    expect(re.search(r"^ok +metrics token \S+ \S+: mode 0600", fixed.out, re.M), "0600: ok")


def card_issue_keeps_earlier_batch():
    """A second `card issue` into the --out of an earlier batch would replace its
    cards.tsv, the only copy of those cards' printed passwords: refused."""
    d = h.Deployment()
    areas = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "areas.example.toml")
    out = d.path("cards")

    def issue():
        return d.admin(["card", "-d", d.dir, "issue", "--units", "10", "--areas", areas, "--group", "1",
                        "--count", "2", "--out", out])

    first = issue()
    expect(first.code == 0, "the first batch (%r)" % first)
    listing = os.path.join(out, "cards.tsv")
    with open(listing) as f:
        passwords = f.read()
    second = issue()
    h.log("  second batch: exit %d: %s" % (second.code, second.err.strip().splitlines()[0] if second.err else ""))
    expect(second.code != 0 and "already holds a batch" in second.err, "a second batch into the same --out is refused")
    with open(listing) as f:
        expect(f.read() == passwords, "the first batch's cards.tsv (its passwords) is kept")
    unused = d.admin(["card", "-d", d.dir, "show", "3"])
    expect(unused.code == 3, "the refused batch took no serials from the ledger (%r)" % unused)
    elsewhere = d.admin(["card", "-d", d.dir, "issue", "--units", "10", "--areas", areas, "--group", "1",
                         "--count", "2", "--out", d.path("cards-2")])
    expect(elsewhere.code == 0 and "\n3\t" in elsewhere.out, "into a new directory it goes on with serial 3")


def restore_as_root_keeps_owner():
    """`restore` as root (docs: `systemctl stop`, restore, `systemctl start`) on a
    deployment of the service's user: the files it makes are that user's, so the
    node, run as that user, opens them; on a new machine without db/ it makes it."""
    if os.geteuid() != 0:
        raise h.Skip("needs root: the point is root restoring a deployment another user runs")
    if shutil.which("setpriv") is None:
        raise h.Skip("setpriv (util-linux) is needed to run the node as nobody")
    import pwd
    service = pwd.getpwnam("nobody")
    as_service = ["setpriv", "--reuid=nobody", "--regid=%d" % service.pw_gid, "--clear-groups"]
    d = h.Deployment()
    d.add_user("alice", PASSWORD)
    out = d.path("backup")
    expect(d.admin(["backup", "-d", d.dir, out, "--no-progress"]).code == 0, "a backup holding alice")
    os.chmod(d.root, 0o711)
    for top, dirs, files in os.walk(d.dir):
        for name in [top] + [os.path.join(top, f) for f in dirs + files]:
            os.chown(name, service.pw_uid, service.pw_gid)
    database = os.path.join(d.dir, "db")

    def restored_and_served(what):
        done = d.admin(["restore", "-d", d.dir, os.path.join(out, "data.mdb"), "--no-progress"])
        expect(done.code == 0, "%s: restore as root (%r)" % (what, done))
        expect(("data.mdb.before-restore" in done.out) == (what == "in place") and
               ("no database there before" in done.out) == (what != "in place"),
               "%s: it says what it replaced, or that nothing was there" % what)
        for name in ("data.mdb", "lock.mdb"):
            st = os.stat(os.path.join(database, name))
            expect((st.st_uid, st.st_gid) == (service.pw_uid, service.pw_gid),
                   "%s: db/%s belongs to the deployment's owner, not root" % (what, name))
        ready = os.path.join(d.dir, "ready-as-service.json")  # where the service's user may write
        if os.path.exists(ready):
            os.unlink(ready)
        node = d.start_node(prefix=as_service, ready=ready)
        expect(login_ok(node, "alice"), "%s: the node, run as that user, serves the restored accounts" % what)
        expect(node.stop() == 0, "and stops")

    restored_and_served("in place")
    os.rename(database, d.path("old-db"))  # a new machine: the deployment's files, no database yet
    restored_and_served("no db/ yet")
    expect(os.stat(database).st_mode & 0o777 == 0o700, "the database directory it made is 0700")


SCENARIOS = {
    "restore_as_root_keeps_owner": restore_as_root_keeps_owner,
    "card_issue_keeps_earlier_batch": card_issue_keeps_earlier_batch,
    "doctor_metrics_token": doctor_metrics_token,
    "wrong_user_says_why": wrong_user_says_why,
    "init_refuses_deployment_without_ca_key": init_refuses_deployment_without_ca_key,
    "doctor_card_secrets": doctor_card_secrets,
    "doctor_renewal_advice": doctor_renewal_advice,
    "node_second_run_refused": node_second_run_refused,
    "backup_killed_leaves_no_copy": backup_killed_leaves_no_copy,
    "restore_killed_keeps_a_database": restore_killed_keeps_a_database,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
