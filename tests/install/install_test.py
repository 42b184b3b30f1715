#!/usr/bin/env python3
"""The Debian packages, installed into a clean Debian 12 root and used as an
admin would. The admin's walk is docs/operator.md's ("From the packages to a
first call"): this test runs the fenced blocks whose info string starts with
`install-walk`, in order, changing only what the table in docs/operator.md
("The install test") lists (WALK_SUBSTITUTIONS below):

  1. scripts/build-debs.sh builds the three packages and runs lintian;
  2. mmdebstrap makes a Debian 12 root from the configured apt sources (a
     tarball cached under TSUNAGU_CACHE, default /var/cache/tsunagu-build,
     keyed by the sources and the packages' run-time dependencies);
  3. the walk, in the root and a network namespace that has only lo: apt
     installs the .debs (never into this machine; no systemd runs, so the
     postinst scripts make the user and directories and enable the units),
     init, two accounts, an agent enrolled, the DHCP hook wired and one lease
     event played, a second terminal listening as bob, alice's lookups (one
     forwarded to the agent) and her --pipe call to bob; `systemctl start` is
     the unit's ExecStart/User/Group/UMask/StateDirectory/RuntimeDirectory
     lines run by this test with NOTIFY_SOCKET bound, waiting for READY=1;
  4. checks after the steps (step=install: what the postinst made; step=call:
     the lookups, bob's terminal got the bytes, the call's audit line); both
     daemons stop on SIGTERM (STOPPING=1, exit 0);
  5. apt purges the packages: what remains is only the data the admin made
     (the deployment in /var/lib/tsunagu, the bundle in /etc/tsunagu, the
     dnsmasq wiring in /etc/dnsmasq.d).

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
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
WALK_DOC = "docs/operator.md"
WALK_FENCE = re.compile(r"^```sh install-walk(?P<attrs>[^\n]*)\n(?P<body>.*?)^```$", re.M | re.S)
# What the test changes in the walk's lines (docs/operator.md, "The install
# test", says why); systemctl and the retries are handled in run_walk_line.
WALK_SUBSTITUTIONS = (
    (re.compile(r"\bapt install\b"), "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"),
    (re.compile(r"\b203\.0\.113\.7\b"), "127.0.0.1"),
    (re.compile(r"\bjournalctl -u ([a-z-]+)"), r"cat /run/tsunagu-test/\1.log"),
)
WALK_HOSTS_LINE = "127.0.0.1 node.example.net\n"  # the walk's node name, on the namespace's lo
SYSTEMCTL = re.compile(r"^systemctl (start|restart|stop) ([a-z-]+)$")
RETRIED = re.compile(r"\bjournalctl\b|\btsunagu whereis\b")  # looked at again, as a person would
RETRY_SECONDS = 15
BASE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
ROOT_PACKAGES = ["systemd"]  # a server has it; systemd-sysusers and -tmpfiles run the postinst steps
KEPT_AFTER_PURGE = ("/var/lib/tsunagu", "/etc/tsunagu", "/etc/dnsmasq.d")  # the admin's data and wiring
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
    if os.path.isfile(tarball):
        return tarball, True
    if os.path.isdir(tarball):  # left by an older version of this test, which made a directory
        shutil.rmtree(tarball)
    # --format=tar: mmdebstrap otherwise picks the format from the name's
    # extension, and made a directory of a name ending in ".partial".
    partial = os.path.join(cache, f"partial-{os.getpid()}-" + os.path.basename(tarball))
    try:
        run(["mmdebstrap", "--variant=minbase", "--format=tar", "--include=" + ",".join(packages),
             "--aptopt=Acquire::Check-Valid-Until \"false\"", "bookworm", partial, sources], timeout=1200)
        if not os.path.isfile(partial):
            fail(f"mmdebstrap made no tarball at {partial}")
        os.rename(partial, tarball)
    finally:
        if os.path.isdir(partial):
            shutil.rmtree(partial)
        elif os.path.exists(partial):
            os.unlink(partial)
    for old in os.listdir(cache):  # roots of older dependency lists
        if old.startswith("debian12-root-") and old.endswith(".tar") and old != os.path.basename(tarball):
            os.unlink(os.path.join(cache, old))
    return tarball, False


def unit_log(unit):
    return unit.removesuffix(".service") + ".log"


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
        full_env = dict(BASE_ENV)
        full_env.update(env or {})
        args = ["ip", "netns", "exec", self.netns, "chroot", self.root, "/bin/sh", "-c", command]
        return run(args, check=check, env=full_env, timeout=timeout, input=stdin)

    def test_directory(self):
        """/run/tsunagu-test in the root: notify sockets, the daemons' output, the walk's state."""
        directory = os.path.join(self.root, "run/tsunagu-test")
        os.makedirs(directory, mode=0o755, exist_ok=True)
        return directory

    def notify_socket(self, name):
        path = os.path.join(self.test_directory(), name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # Bound through the directory's descriptor: the root's path under a
        # longer TSUNAGU_CACHE passes sun_path's 108 bytes.
        directory = os.open(self.test_directory(), os.O_RDONLY | os.O_DIRECTORY)
        try:
            sock.bind("/proc/self/fd/%d/%s" % (directory, name))
        finally:
            os.close(directory)
        os.chmod(path, 0o666)
        self.notify_sockets.append(sock)
        return sock, "/run/tsunagu-test/" + name

    def start_unit(self, unit):
        """Starts the unit's ExecStart as systemd would (User, Group, UMask,
        StateDirectory, RuntimeDirectory, NOTIFY_SOCKET) and waits for READY=1.
        Its output goes to /run/tsunagu-test/UNIT.log (the walk's journal)."""
        log_name = unit_log(unit)
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
        log = open(os.path.join(self.test_directory(), log_name), "w")
        command = f"umask {settings.get('UMask', '0022')} && exec {settings['ExecStart']}"
        env = {"PATH": BASE_ENV["PATH"], "LANG": "C.UTF-8", "NOTIFY_SOCKET": notify_path}
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
            with open(os.path.join(self.root, "run/tsunagu-test", name), errors="replace") as f:
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
        with open(os.path.join(box.root, "etc/hosts"), "a") as hosts:  # the minimal root may have none
            hosts.write(WALK_HOSTS_LINE)
        before = snapshot(box.root)
        os.makedirs(os.path.join(box.root, "root/debs"), exist_ok=True)
        for deb in debs:
            shutil.copy(deb, os.path.join(box.root, "root/debs"))
        shutil.copy("/etc/resolv.conf", os.path.join(box.root, "etc/resolv.conf"))
        box.mount_proc()
        box.make_netns()
        phases.done("unpack the root")

        walk = Walk(box, walk_blocks(source), phases)
        walk.run()
        walk.stop_daemons()
        check_no_secrets(walk)
        phases.done("the daemons stop on SIGTERM")

        install_env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": BASE_ENV["PATH"]}
        purged = run(["chroot", box.root, "apt-get", "purge", "-y", "-q", "tsunagu", "tsunagu-rendezvous",
                      "tsunagu-lan-agent"], env=install_env, timeout=300)
        check_purged(box, before, purged.stdout + purged.stderr)
        phases.done("apt purge, and what remains")
    except BaseException:
        for name in ("tsunagu-rendezvous.log", "tsunagu-lan-agent.log", "terminal2.log"):
            print(f"--- {name} (last lines)\n{box.log(name)}")
        raise
    finally:
        box.close()
        # Timed on its own: a passing run spent ~60 s after its last phase (unmeasured until now).
        phases.done("clean up (processes, namespace, /proc, the root's files)")
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


def walk_blocks(source):
    """The walk's blocks from docs/operator.md: (attributes, lines)."""
    with open(os.path.join(source, WALK_DOC)) as f:
        text = f.read()
    blocks = []
    for match in WALK_FENCE.finditer(text):
        attributes = {}
        for word in shlex.split(match.group("attrs")):
            key, _, value = word.partition("=")
            attributes[key] = value
        blocks.append((attributes, match.group("body").splitlines()))
    steps = [a.get("step") for a, _ in blocks]
    for needed in ("install", "call"):
        if needed not in steps:
            fail(f"{WALK_DOC} has no install-walk block with step={needed} (found {steps})")
    return blocks


def for_the_test(line):
    for pattern, replacement in WALK_SUBSTITUTIONS:
        line = pattern.sub(replacement, line)
    return line


def segments(lines):
    """A block's lines cut into shell scripts: a systemctl line or a retried
    line stands alone, the rest (here-documents whole) run together."""
    pieces, current, heredoc_end = [], [], None
    for line in lines:
        if heredoc_end is None and (SYSTEMCTL.match(line.strip()) or RETRIED.search(line)):
            if current:
                pieces.append(current)
            pieces.append([line])
            current = []
            continue
        current.append(line)
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
        else:
            heredoc = re.search(r"<<-?\s*'?(\w+)'?", line)
            if heredoc:
                heredoc_end = heredoc.group(1)
    if current:
        pieces.append(current)
    return pieces


class Walk:
    """docs/operator.md's walk in the root: the first terminal's state (its
    exported variables and directory) carries from block to block."""

    def __init__(self, box, blocks, phases):
        self.box, self.blocks, self.phases = box, blocks, phases
        self.env = dict(BASE_ENV)
        self.cwd = "/root/debs"
        self.units = {}  # unit -> (process, notify socket)
        self.background = []  # (process, log name, attributes)
        self.outputs = {}  # step -> what its block printed
        box.test_directory()

    def run(self):
        for attributes, lines in self.blocks:
            if "background" in attributes:
                self.start_background(attributes, lines)
                continue
            printed = []
            for piece in segments(lines):
                printed.append(self.run_segment(piece))
            step = attributes.get("step", "")
            self.outputs[step] = "\n".join(printed)
            check = STEP_CHECKS.get(step)
            if check:
                check(self)
            self.phases.done(f"walk step {step or '-'} ({len(lines)} lines)")
        for process, log_name, attributes in self.background:
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                fail(f"the background terminal ({attributes}) did not exit:\n{self.box.log(log_name)}")
            if code != 0:
                fail(f"the background terminal exited {code}:\n{self.box.log(log_name)}")

    def run_segment(self, piece):
        systemctl = SYSTEMCTL.match(piece[0].strip()) if len(piece) == 1 else None
        if systemctl:
            action, unit = systemctl.group(1), systemctl.group(2) + ".service"
            if action in ("restart", "stop") and unit in self.units:
                self.stop_unit(unit)
            if action in ("start", "restart"):
                self.units[unit] = self.box.start_unit(unit)
            return f"$ {piece[0]}"
        script = "\n".join(for_the_test(line) for line in piece)
        deadline = time.monotonic() + (RETRY_SECONDS if len(piece) == 1 and RETRIED.search(piece[0]) else 0)
        while True:
            result = self.shell(script)
            if result.returncode == 0 or time.monotonic() >= deadline:
                break
            time.sleep(0.3)
        if result.returncode != 0 and "apt-get install" in script:  # a dependency the cached root lacks
            self.box.inside("apt-get update -q", timeout=600)
            result = self.shell(script)
        if result.returncode != 0:
            fail(f"the walk's lines exited {result.returncode}:\n{script}\n--- stdout\n{result.stdout[-3000:]}"
                 f"\n--- stderr\n{result.stderr[-3000:]}")
        return f"$ {script}\n{result.stdout}"

    def shell(self, script):
        """The script in the first terminal; its exports and directory are kept."""
        state = "/run/tsunagu-test/walk-state"
        wrapped = (f"cd {shlex.quote(self.cwd)}\nset -e\n{script}\n"
                   f"pwd > {state}.cwd && env -0 > {state}.env")
        result = run(["ip", "netns", "exec", self.box.netns, "chroot", self.box.root, "/bin/sh", "-c", wrapped],
                     check=False, env=self.env, timeout=900)
        if result.returncode == 0:
            with open(self.box.root + state + ".cwd") as f:
                self.cwd = f.read().strip()
            with open(self.box.root + state + ".env") as f:
                pairs = [entry.partition("=") for entry in f.read().split("\0") if "=" in entry]
            self.env = {k: v for k, _, v in pairs if k not in ("PWD", "OLDPWD", "SHLVL", "_")}
        return result

    def start_background(self, attributes, lines):
        """A second terminal: a fresh login's environment, its output kept."""
        log_name = f"terminal{len(self.background) + 2}.log"
        log = open(os.path.join(self.box.test_directory(), log_name), "w")
        script = "cd /root\nset -e\n" + "\n".join(for_the_test(line) for line in lines)
        process = subprocess.Popen(["ip", "netns", "exec", self.box.netns, "chroot", self.box.root,
                                    "/bin/sh", "-c", script], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=dict(BASE_ENV))
        self.box.processes.append(process)
        self.background.append((process, log_name, attributes))
        until = attributes.get("until", "")

        def shows_until():
            if process.poll() is not None:
                fail(f"the background terminal exited {process.returncode} before saying {until!r}:\n"
                     f"{self.box.log(log_name)}")
            return until in self.box.log(log_name)
        wait_for(f"the background terminal to say {until!r}", shows_until, 30)
        self.phases.done(f"walk: second terminal ({until})")

    def stop_unit(self, unit):
        process, notify = self.units.pop(unit)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        messages = []
        try:
            while True:
                messages.append(notify.recv(4096))
        except (socket.timeout, BlockingIOError):
            pass
        if code != 0:
            fail(f"{unit} exited {code} on SIGTERM:\n{self.box.log(unit_log(unit))}")
        if not any(b"STOPPING=1" in m for m in messages):
            fail(f"{unit} sent no STOPPING=1 on SIGTERM (got {messages})")

    def stop_daemons(self):
        for unit in ("tsunagu-lan-agent.service", "tsunagu-rendezvous.service"):
            if unit not in self.units:
                fail(f"the walk never started {unit}")
            self.stop_unit(unit)
        print("  node and agent stopped on SIGTERM (STOPPING=1, exit 0)")


def check_call(walk):
    printed = walk.outputs["call"]
    for expected, what in (("192.0.2.50", "the forwarded lookup of 4106@acme shows the hook's lease"),
                           ("acme", "the forwarded lookup names agent acme")):
        if expected not in printed:
            fail(f"{what}: {expected!r} is not in what the call step printed:\n{printed}")
    bob = walk.box.log("terminal2.log")
    if "hello from alice" not in bob:
        fail(f"bob's terminal did not print what alice sent:\n{bob}")
    audit = walk.box.log("tsunagu-rendezvous.log")
    for line in ("event=login result=ok user=bob", "event=call state=accepted", "event=call state=ended"):
        if line not in audit:
            fail(f"the node's log has no {line!r}:\n{audit}")
    ended = re.search(r"event=call state=ended .*caller=alice callee=bob reason=hung_up\b.* path=host/host$", audit,
                      re.M)
    if not ended:
        fail(f"the call's end line is not alice's call to bob, hung up, on the host/host path both reported:\n{audit}")
    print(f"  call alice -> bob on loopback, bob got the bytes; audit: {ended.group(0)[:160]}")


def check_hook_wiring(walk):
    if not re.search(r"^ok +dnsmasq hook /usr/lib/tsunagu/tsunagu-dhcp-hook ", walk.outputs["hook"], re.M):
        fail(f"doctor did not find the dnsmasq hook wiring:\n{walk.outputs['hook']}")


def check_no_secrets(walk):
    """No password the walk exported and no line of a private key it made is in
    the daemons' logs, the second terminal's output or what the steps printed."""
    secrets = set()
    for block in walk.blocks:
        secrets.update(re.findall(r"TSUNAGU_PASSWORD='([^']+)'", "\n".join(block[1])))
    for key in ("var/lib/tsunagu/node.key", "var/lib/tsunagu/ca.key", "etc/tsunagu/agent.key"):
        with open(os.path.join(walk.box.root, key)) as f:
            secrets.update(l for l in f.read().splitlines() if not l.startswith("-----") and len(l) >= 32)
    if not secrets:
        fail("found no password or key to look for: the walk changed and this check did not")
    # A step's output starts with its own lines ("$ " and the script), which
    # export the password: only what the commands printed is searched.
    script_lines = {for_the_test(line) for _, lines in walk.blocks for line in lines}
    texts = {"step " + step: "\n".join(l for l in text.splitlines()
                                        if l not in script_lines and l[2:] not in script_lines)
             for step, text in walk.outputs.items()}
    directory = os.path.join(walk.box.root, "run/tsunagu-test")
    for name in os.listdir(directory):
        if name.endswith(".log"):
            with open(os.path.join(directory, name), errors="replace") as f:
                texts[name] = f.read()
    leaks = [f"{where} holds {secret[:6]!r}..." for where, text in texts.items() for secret in secrets if secret in text]
    if leaks:
        fail("a password or private key in the logs: " + "; ".join(leaks))
    print(f"  no password or key line ({len(secrets)} looked for) in {len(texts)} logs and outputs")


STEP_CHECKS = {"install": lambda walk: check_installed(walk.box), "hook": check_hook_wiring, "call": check_call}


def check_purged(box, before, apt_output):
    after = snapshot(box.root)
    left = sorted(after - before)
    unexpected = [p for p in left if not p.startswith(KEPT_AFTER_PURGE)]
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
