#!/usr/bin/env python3
"""The Debian packages, installed into a clean Debian 12 root and used as an
admin would (docs/operator.md, "Installing the packages"):

  1. scripts/build-debs.sh builds the three packages and runs lintian;
  2. mmdebstrap makes a Debian 12 root from the configured apt sources (a
     tarball cached under TSUNAGU_CACHE, default /var/cache/tsunagu-build,
     keyed by the sources and the packages' run-time dependencies);
  3. apt installs the .debs into it (never into this machine), without systemd
     running: the postinst scripts make the user, the directories, enable units;
  4. the admin's walk: init, two accounts, an agent enrolled and its bundle
     copied to /etc/tsunagu; then the node and the agent start from their
     units' ExecStart/User/Group/UMask/StateDirectory/RuntimeDirectory lines
     (systemd does not run in a chroot) with NOTIFY_SOCKET bound by this test,
     in a network namespace of their own that has only lo;
  5. alice logs in (`tsunagu login`), bob looks her up, a DHCP hook event gives
     extension 4106 a lease and alice's lookup of 4106@acme is forwarded to the
     agent and answered with it; both daemons stop on SIGTERM, exit 0;
  6. apt purges the packages: what remains is only the data the admin made
     (the deployment in /var/lib/tsunagu, the bundle in /etc/tsunagu).

Prints how long each phase took. TSUNAGU_DEBS=DIR uses the .debs in DIR
instead of building them (for work on this test). Exits 77 (skip), saying why, when not root or
a tool is missing. Every process is killed by PID, the namespace deleted, /proc
unmounted and the root removed on every exit path.

usage: install_test.py SOURCE_ROOT
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
PASSWORD = "install-test-password"
ROOT_PACKAGES = ["systemd"]  # a server has it; systemd-sysusers and -tmpfiles run the postinst steps
EXCLUDED = ("proc", "dev", "sys", "run", "tmp", "var/cache", "var/lib/apt", "var/lib/dpkg", "var/log",
            "etc/ld.so.cache", "etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-", "root")


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def fail(message):
    raise AssertionError(message)


class Phases:
    def __init__(self):
        self.start = self.last = time.monotonic()
        self.rows = []

    def done(self, name):
        now = time.monotonic()
        self.rows.append((name, now - self.last))
        print(f"  {name}: {now - self.last:.1f} s", flush=True)
        self.last = now

    def report(self):
        total = time.monotonic() - self.start
        slowest = max(self.rows, key=lambda r: r[1]) if self.rows else ("-", 0)
        print(f"install test: {total:.1f} s in all; the longest phase: {slowest[0]} ({slowest[1]:.1f} s)")


def run(args, check=True, **kw):
    result = subprocess.run(args, capture_output=True, text=True, **kw)
    if check and result.returncode != 0:
        fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def snapshot(root):
    paths = set()
    for directory, dirs, files in os.walk(root):
        rel = os.path.relpath(directory, root)
        rel = "" if rel == "." else rel
        dirs[:] = [d for d in dirs if os.path.join(rel, d) not in EXCLUDED]
        for name in dirs + files:
            path = os.path.join(rel, name)
            if path not in EXCLUDED:
                paths.add("/" + path)
    return paths


def depends_of(debs):
    """Run-time dependencies of our packages (first alternative, no version)."""
    names = set()
    for deb in debs:
        field = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
        for clause in field.split(","):
            name = clause.split("|")[0].strip().split(" ")[0].split(":")[0]
            if name and not name.startswith("tsunagu"):
                names.add(name)
    return sorted(names)


def apt_sources():
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return path
    skip("no apt sources configured (mmdebstrap makes the root from them)")


def root_tarball(cache, packages):
    sources = apt_sources()
    with open(sources, "rb") as f:
        key = hashlib.sha256(f.read() + ",".join(packages).encode()).hexdigest()[:16]
    tarball = os.path.join(cache, f"debian12-root-{key}.tar")
    if os.path.exists(tarball):
        return tarball, True
    partial = tarball + f".{os.getpid()}.partial"
    try:
        run(["mmdebstrap", "--variant=minbase", "--include=" + ",".join(packages),
             "--aptopt=Acquire::Check-Valid-Until \"false\"", "bookworm", partial, sources], timeout=1200)
        os.rename(partial, tarball)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    for old in os.listdir(cache):  # roots of older dependency lists
        if old.startswith("debian12-root-") and old.endswith(".tar") and old != os.path.basename(tarball):
            os.unlink(os.path.join(cache, old))
    return tarball, False


def unit_settings(path):
    settings = {}
    with open(path) as f:
        for line in f:
            match = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
            if match:
                settings.setdefault(match.group(1), match.group(2))
    return settings


class Sandbox:
    """The extracted root, its /proc, the network namespace and the daemons."""

    def __init__(self, cache):
        os.makedirs(os.path.join(cache, "roots"), exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="install-", dir=os.path.join(cache, "roots"))
        self.root = os.path.join(self.dir, "root")
        self.netns = f"tsunagu-install-{os.getpid()}"
        self.processes = []
        self.proc_mounted = False
        self.netns_made = False
        self.notify_sockets = []

    def mount_proc(self):
        run(["mount", "-t", "proc", "proc", os.path.join(self.root, "proc")])
        self.proc_mounted = True

    def make_netns(self):
        run(["ip", "netns", "add", self.netns])
        self.netns_made = True
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        links = run(["ip", "-n", self.netns, "-o", "link"]).stdout.strip().splitlines()
        if len(links) != 1 or ": lo:" not in links[0]:
            fail(f"the test namespace should hold only lo: {links}")

    def inside(self, command, env=None, check=True, timeout=60, stdin=None):
        """A shell command in the root, in the namespace, as root."""
        full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
        full_env.update(env or {})
        args = ["ip", "netns", "exec", self.netns, "chroot", self.root, "/bin/sh", "-c", command]
        return run(args, check=check, env=full_env, timeout=timeout, input=stdin)

    def notify_socket(self, name):
        directory = os.path.join(self.root, "run/tsunagu-test")
        os.makedirs(directory, mode=0o755, exist_ok=True)
        path = os.path.join(directory, name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        os.chmod(path, 0o666)
        self.notify_sockets.append(sock)
        return sock, "/run/tsunagu-test/" + name

    def start_unit(self, unit, log_name):
        """Starts the unit's ExecStart as systemd would (User, Group, UMask,
        StateDirectory, RuntimeDirectory, NOTIFY_SOCKET) and waits for READY=1."""
        settings = unit_settings(os.path.join(self.root, "lib/systemd/system", unit))
        for condition in [settings.get("ConditionPathExists")]:
            if condition and not os.path.exists(self.root + condition):
                fail(f"{unit}: ConditionPathExists={condition} is not met")
        user, group = settings["User"], settings["Group"]
        for key, base in (("StateDirectory", "/var/lib"), ("RuntimeDirectory", "/run")):
            if key in settings:
                mode = settings.get(key + "Mode", "0755")
                for name in settings[key].split():
                    self.inside(f"install -d -o {user} -g {group} -m {mode} {base}/{name}")
        notify, notify_path = self.notify_socket(unit + ".notify")
        log = open(os.path.join(self.dir, log_name), "w")
        command = f"umask {settings.get('UMask', '0022')} && exec {settings['ExecStart']}"
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "NOTIFY_SOCKET": notify_path}
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "chroot", self.root, "setpriv", f"--reuid={user}",
             f"--regid={group}", "--init-groups", "--", "/bin/sh", "-c", command],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        self.processes.append(process)
        notify.settimeout(0.5)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                fail(f"{unit} exited {process.returncode} before READY=1:\n{self.log(log_name)}")
            try:
                if b"READY=1" in notify.recv(4096).split(b"\n"):
                    return process, notify
            except socket.timeout:
                pass
        fail(f"{unit}: no READY=1 within 30 s:\n{self.log(log_name)}")

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def close(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for sock in self.notify_sockets:
            sock.close()
        if self.netns_made:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        if self.proc_mounted:
            subprocess.run(["umount", "-l", os.path.join(self.root, "proc")], capture_output=True)
        with open("/proc/self/mounts") as f:
            if self.dir in f.read():
                print(f"warning: something is still mounted under {self.dir}; not removing it")
                return
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(what, predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    fail(f"{what}: not within {seconds} s")


def main(argv):
    source = os.path.abspath(argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "../.."))
    if os.geteuid() != 0:
        skip("not root (the test makes a chroot, mounts /proc and a network namespace)")
    for tool in ("mmdebstrap", "dpkg-buildpackage", "dh", "lintian", "ip", "chroot"):
        if shutil.which(tool) is None:
            skip(f"{tool} is missing (scripts/install-deps.sh test installs it)")
    cache = os.environ.get("TSUNAGU_CACHE", "/var/cache/tsunagu-build")
    os.makedirs(cache, exist_ok=True)
    phases = Phases()

    debs_dir = os.environ.get("TSUNAGU_DEBS")  # .debs already built (when working on this test)
    if not debs_dir:
        debs_dir = os.path.join(cache, "debs")
        build = run(["bash", os.path.join(source, "scripts/build-debs.sh"), debs_dir], check=False, timeout=3000)
        print(build.stdout.strip())
        if build.returncode != 0:
            fail(f"building the packages failed:\n{build.stderr[-6000:]}")
    debs = sorted(os.path.join(debs_dir, d) for d in os.listdir(debs_dir) if d.endswith(".deb"))
    names = sorted(run(["dpkg-deb", "-f", d, "Package"]).stdout.strip() for d in debs)
    if names != ["tsunagu", "tsunagu-lan-agent", "tsunagu-rendezvous"]:
        fail(f"expected the packages tsunagu, tsunagu-lan-agent, tsunagu-rendezvous; built {names}")
    phases.done("build the packages (scripts/build-debs.sh, lintian)")

    tarball, cached = root_tarball(cache, sorted(set(ROOT_PACKAGES + depends_of(debs))))
    phases.done(f"Debian 12 root ({'cached' if cached else 'mmdebstrap'}: {os.path.basename(tarball)})")

    box = Sandbox(cache)
    try:
        os.makedirs(box.root)
        run(["tar", "-xf", tarball, "-C", box.root])
        before = snapshot(box.root)
        os.makedirs(os.path.join(box.root, "tmp/debs"), exist_ok=True)
        for deb in debs:
            shutil.copy(deb, os.path.join(box.root, "tmp/debs"))
        shutil.copy("/etc/resolv.conf", os.path.join(box.root, "etc/resolv.conf"))
        box.mount_proc()
        phases.done("unpack the root")

        # apt, as an admin: `apt install ./tsunagu*.deb`. No systemd runs here.
        install_env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        apt = ["chroot", box.root, "apt-get", "install", "-y", "-q", "--no-install-recommends"] + \
              ["/tmp/debs/" + os.path.basename(d) for d in debs]
        installed = run(apt, check=False, env=install_env, timeout=900)
        if installed.returncode != 0:  # a dependency the cached root lacks: fetch it
            run(["chroot", box.root, "apt-get", "update", "-q"], env=install_env, timeout=600)
            installed = run(apt, env=install_env, timeout=900)
        for line in installed.stdout.splitlines() + installed.stderr.splitlines():
            if re.search(r"\b(warning|error)\b", line, re.I) and "debconf" not in line:
                print(f"  apt: {line}")
        phases.done("apt install ./tsunagu*.deb")

        box.make_netns()
        check_installed(box)
        phases.done("check what the postinst scripts made")

        walk(box)
        phases.done("the admin's walk: init, accounts, enrolment, node and agent, login, lookups")

        purged = run(["chroot", box.root, "apt-get", "purge", "-y", "-q", "tsunagu", "tsunagu-rendezvous",
                      "tsunagu-lan-agent"], env=install_env, timeout=300)
        check_purged(box, before, purged.stdout + purged.stderr)
        phases.done("apt purge, and what remains")
    except BaseException:
        for name in ("node.log", "agent.log", "login.log"):
            print(f"--- {name} (last lines)\n{box.log(name)}")
        raise
    finally:
        box.close()
    phases.report()
    print("install test: passed")
    return 0


def check_installed(box):
    passwd = box.inside("getent passwd tsunagu").stdout.strip()
    if not passwd.startswith("tsunagu:") or ":/var/lib/tsunagu:" not in passwd:
        fail(f"systemd-sysusers did not make the user tsunagu (home /var/lib/tsunagu): {passwd!r}")
    for path, mode in (("/var/lib/tsunagu", "750 tsunagu tsunagu"), ("/var/spool/tsunagu", "1770 tsunagu tsunagu")):
        stat = box.inside(f"stat -c '%a %U %G' {path}", check=False).stdout.strip()
        if stat != mode:
            fail(f"{path}: expected mode/owner {mode!r} (tmpfiles.d), got {stat!r}")
    conffiles = box.inside("dpkg-query -W -f='${Conffiles}' tsunagu-lan-agent").stdout
    if "/etc/tsunagu/agent.toml" not in conffiles:
        fail(f"/etc/tsunagu/agent.toml is not a conffile: {conffiles!r}")
    for unit in ("tsunagu-rendezvous.service", "tsunagu-lan-agent.service"):
        link = f"/etc/systemd/system/multi-user.target.wants/{unit}"
        if box.inside(f"test -L {link}", check=False).returncode != 0:
            fail(f"{unit} was not enabled at install ({link} missing)")
    for page in ("man1/tsunagu.1.gz", "man8/tsunagu-rendezvous.8.gz", "man8/tsunagu-lan-agent.8.gz",
                 "man8/tsunagu-dhcp-hook.8.gz"):
        if not os.path.exists(os.path.join(box.root, "usr/share/man", page)):
            fail(f"man page {page} is not installed")
    # The shipped agent.toml is a working configuration (no node link).
    doctor = box.inside("tsunagu-lan-agent doctor -c /etc/tsunagu/agent.toml", check=False).stdout
    if not re.search(r"^ok +configuration /etc/tsunagu/agent.toml: parses", doctor, re.M):
        fail(f"the shipped agent.toml does not parse:\n{doctor}")
    print("  user tsunagu, /var/lib/tsunagu 0750, /var/spool/tsunagu 1770, conffile agent.toml, units enabled, "
          "man pages: ok")


def walk(box):
    as_service = "runuser -u tsunagu --"
    box.inside(f"{as_service} tsunagu-rendezvous init /var/lib/tsunagu --name node.test --ip 127.0.0.1")
    for user in ("alice", "bob"):
        box.inside(f"{as_service} tsunagu-rendezvous user add {user}", env={"TSUNAGU_PASSWORD": PASSWORD})
    box.inside(f"{as_service} tsunagu-rendezvous agent enroll acme --domain acme --out /tmp/acme")
    # The bundle goes where the unit reads it; the admin's own lines added.
    box.inside("cp /tmp/acme/* /etc/tsunagu/ && chgrp tsunagu /etc/tsunagu/agent.key && "
               "chmod 0640 /etc/tsunagu/agent.key && "
               "printf '\\n[table]\\nhostname_rule = \"ext{ext}\"\\n\\n[policy]\\nshow_lease_addresses = true\\n' "
               ">> /etc/tsunagu/agent.toml")

    node, node_notify = box.start_unit("tsunagu-rendezvous.service", "node.log")
    agent, agent_notify = box.start_unit("tsunagu-lan-agent.service", "agent.log")
    wait_for("the agent links to the node", lambda: "linked to the node" in box.log("agent.log"), 15)

    terminal_env = {"TSUNAGU_NODE": "127.0.0.1:7400", "TSUNAGU_CA": "/var/lib/tsunagu/ca.crt",
                    "TSUNAGU_PASSWORD": PASSWORD}
    login_log = open(os.path.join(box.dir, "login.log"), "w")
    login = subprocess.Popen(["ip", "netns", "exec", box.netns, "chroot", box.root, "tsunagu", "login"],
                             env={**terminal_env, "TSUNAGU_USER": "alice", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                             stdout=login_log, stderr=subprocess.STDOUT)
    box.processes.append(login)

    def whereis(as_user, target):
        result = box.inside(f"tsunagu whereis {target} --json", env={**terminal_env, "TSUNAGU_USER": as_user},
                            check=False, timeout=30)
        try:
            return result.returncode, json.loads(result.stdout or "{}")
        except ValueError:
            return result.returncode, {"unparsable": result.stdout}

    found = wait_for("bob finds alice online", lambda: (lambda r: r if r[0] == 0 else None)(whereis("bob", "alice")), 15)
    print(f"  login as alice, lookup by bob: {json.dumps(found[1])[:160]}")

    hook = box.inside("/usr/lib/tsunagu/tsunagu-dhcp-hook add 52:54:00:12:34:56 192.0.2.50 ext4106")
    if hook.returncode != 0:
        fail(f"the hook failed: {hook.stderr}")
    forwarded = wait_for("4106@acme resolves through the agent",
                         lambda: (lambda r: r if r[0] == 0 and "192.0.2.50" in r[1].get("lease", []) else None)(
                             whereis("alice", "4106@acme")), 10)
    if forwarded[1].get("agent") != "acme":
        fail(f"the forwarded lookup was not answered by agent acme: {forwarded[1]}")
    print(f"  forwarded lookup of 4106@acme: {json.dumps(forwarded[1])[:160]}")

    login.terminate()
    login.wait(timeout=10)
    for process, notify, name in ((agent, agent_notify, "agent"), (node, node_notify, "node")):
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        messages = []
        try:
            while True:
                messages.append(notify.recv(4096))
        except (socket.timeout, BlockingIOError):
            pass
        if code != 0:
            fail(f"the {name} exited {code} on SIGTERM:\n{box.log(name + '.log')}")
        if not any(b"STOPPING=1" in m for m in messages):
            fail(f"the {name} sent no STOPPING=1 on SIGTERM (got {messages})")
    audit = box.log("node.log")
    if "event=login result=ok user=alice" not in audit:
        fail(f"the node's log has no audit line for alice's login:\n{audit}")
    print("  node and agent stopped on SIGTERM (STOPPING=1, exit 0)")


def check_purged(box, before, apt_output):
    after = snapshot(box.root)
    left = sorted(after - before)
    kept_prefixes = ("/var/lib/tsunagu", "/etc/tsunagu")
    unexpected = [p for p in left if not p.startswith(kept_prefixes)]
    if unexpected:
        fail("purge left files the admin did not make:\n  " + "\n  ".join(unexpected[:40]))
    for must_go in ("/etc/tsunagu/agent.toml", "/var/spool/tsunagu", "/usr/bin/tsunagu-rendezvous",
                    "/usr/lib/tsunagu", "/lib/systemd/system/tsunagu-rendezvous.service"):
        if os.path.lexists(box.root + must_go):
            fail(f"{must_go} is still there after purge")
    for must_stay in ("/var/lib/tsunagu/node.toml", "/var/lib/tsunagu/ca.key", "/var/lib/tsunagu/db/data.mdb",
                      "/etc/tsunagu/agent.key"):
        if not os.path.exists(box.root + must_stay):
            fail(f"purge removed {must_stay}, which the admin made")
    if "kept the deployment in /var/lib/tsunagu" not in apt_output:
        fail(f"purge did not say where the deployment was kept:\n{apt_output[-2000:]}")
    kept = sorted({p for p in left if p.count("/") <= 4})
    print(f"  purge removed everything but the admin's data: {', '.join(kept[:12])}{' ...' if len(kept) > 12 else ''}")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except AssertionError as error:
        print(f"FAIL: {error}")
        sys.exit(1)
