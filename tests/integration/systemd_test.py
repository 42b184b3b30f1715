"""The daemons under systemd's contract, and the units that run them (Python 3 stdlib only).

systemd_units UNIT...: each generated unit (build/systemd/*.service), with its
    ExecStart program replaced by the build's binary, passes `systemd-analyze
    verify` with no output, its ExecStart flags are ones the program accepts,
    and `systemd-analyze security --offline=yes` rates it below 3.0 ("OK")
    and exactly as docs/operator.md reports it ("**UNIT SCORE BAND**");
    the scores are printed. Skipped (77) without systemd-analyze.
watchdog_node / watchdog_agent: the daemon runs with NOTIFY_SOCKET bound here
    (an AF_UNIX datagram socket in a temporary directory), WATCHDOG_USEC=400000
    and WATCHDOG_PID its own PID; it must send READY=1, then WATCHDOG=1 about
    every 200 ms, keep pinging across a SIGHUP (the agent's re-sync), and send
    STOPPING=1 and exit 0 on SIGTERM.
syscalls_node / syscalls_agent UNIT: the daemon, run under `strace -f -c`
    through the same start, watchdog pings, SIGHUP (reload) and SIGTERM, makes
    no system call outside the unit's SystemCallFilter= lines (expanded with
    `systemd-analyze syscall-filter`), which under systemd would fail with
    EPERM. Skipped (77) without strace or systemd-analyze.

Environment: TSUNAGU_BUILD (the meson build directory), TSUNAGU_BINDIR (the
install bindir written into the units). Every process started here is killed
by its PID on every exit path; the temporary directory is removed.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("TSUNAGU_BUILD", "build")
RENDEZVOUS = os.path.join(BUILD, "node", "tsunagu-rendezvous")
AGENT = os.path.join(BUILD, "lan-agent", "tsunagu-lan-agent")
SKIP = 77
EXPOSURE_LIMIT = 3.0  # systemd-analyze's "OK" band ends at 3.9; we hold the units under 3.0
OPERATOR_DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "operator.md")

_processes = []
_work = tempfile.mkdtemp(prefix="tsunagu-sd-")


def cleanup():
    for proc in _processes:
        if proc.poll() is None:
            proc.kill()  # by PID
            proc.wait(timeout=10)
    shutil.rmtree(_work, ignore_errors=True)


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


# ---------------------------------------------------------------- units

def systemd_units(unit_paths):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("SKIP: systemd-analyze is not installed (Debian package systemd)")
        return SKIP
    bindir = os.environ["TSUNAGU_BINDIR"]
    built = {"tsunagu-rendezvous": os.path.abspath(RENDEZVOUS), "tsunagu-lan-agent": os.path.abspath(AGENT)}
    for unit_path in unit_paths:
        name = os.path.basename(unit_path)
        with open(unit_path) as f:
            text = f.read()
        exec_start = re.search(r"^ExecStart=(\S+)(.*)$", text, re.M)
        check(exec_start is not None, "%s has no ExecStart" % name)
        program = os.path.basename(exec_start.group(1))
        check(exec_start.group(1) == os.path.join(bindir, program),
              "%s: ExecStart runs %s, not the installed %s/%s" % (name, exec_start.group(1), bindir, program))
        check(program in built, "%s: ExecStart runs %s, which is not one of ours" % (name, program))
        for required in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "Restart=on-failure",
                         "ExecReload=/bin/kill -HUP $MAINPID", "ProtectHome=yes", "PrivateTmp=yes",
                         "User=tsunagu", "CapabilityBoundingSet=\n", "ProtectSystem=strict", "NoNewPrivileges=yes"):
            check(required in text, "%s lacks %r" % (name, required.strip()))

        # The flags of ExecStart are ones the program accepts: CLI11 checks
        # every option before it prints --help.
        args = exec_start.group(2).split()
        helped = subprocess.run([built[program]] + args + ["--help"], capture_output=True, text=True, timeout=30)
        check(helped.returncode == 0, "%s: `%s %s --help` exits %d: %s" %
              (name, program, " ".join(args), helped.returncode, helped.stderr.strip()))

        # verify needs ExecStart's program to exist: a copy with the build's binary.
        local = os.path.join(_work, name)
        with open(local, "w") as f:
            f.write(text.replace(exec_start.group(1), built[program], 1))
        verified = subprocess.run([analyze, "verify", local], capture_output=True, text=True, timeout=60)
        output = (verified.stdout + verified.stderr).strip()
        check(verified.returncode == 0 and output == "",
              "systemd-analyze verify %s: exit %d, output:\n%s" % (name, verified.returncode, output))

        rated = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", local],
                               capture_output=True, text=True, timeout=60)
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", rated.stdout)
        check(score is not None, "systemd-analyze security %s printed no exposure level:\n%s%s" %
              (name, rated.stdout, rated.stderr))
        exposure = float(score.group(1))
        print("%s: verify clean, exposure %.1f %s" % (name, exposure, score.group(2)))
        check(exposure < EXPOSURE_LIMIT, "%s: exposure %.1f is not below %.1f; still open:\n%s" %
              (name, exposure, EXPOSURE_LIMIT, "\n".join(l for l in rated.stdout.splitlines() if "\u2717" in l)))
        with open(OPERATOR_DOC) as f:
            documented = re.search(r"\*\*%s ([0-9.]+) (\w+)\*\*" % re.escape(name), f.read())
        check(documented is not None, "docs/operator.md reports no exposure score for %s" % name)
        check((documented.group(1), documented.group(2)) == ("%.1f" % exposure, score.group(2)),
              "docs/operator.md reports %s %s for %s, systemd-analyze says %.1f %s: update the doc" %
              (documented.group(1), documented.group(2), name, exposure, score.group(2)))
    return 0


# ---------------------------------------------------------------- watchdog

WATCHDOG_USEC = 400000
PING_MS = WATCHDOG_USEC / 2000.0


class NotifySocket:
    """The NOTIFY_SOCKET systemd would bind: one datagram per sd_notify call."""

    def __init__(self):
        self.path = os.path.join(_work, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.received = []  # (monotonic seconds, message)

    def next_message(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        message = data.decode(errors="replace").strip()
        self.received.append((time.monotonic(), message))
        return message

    def wait_for(self, wanted, timeout):
        """Messages until one equals wanted; returns the ones before it."""
        deadline = time.monotonic() + timeout
        before = []
        while True:
            left = deadline - time.monotonic()
            check(left > 0, "no %s within %.0f s; got %r" % (wanted, timeout, before))
            message = self.next_message(left)
            check(message is not None, "no %s within %.0f s; got %r" % (wanted, timeout, before))
            if message == wanted:
                return before
            before.append(message)


def start_under_notify(argv, notify, log_path, traced=False):
    environment = dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    # sd_watchdog_enabled() wants WATCHDOG_PID to be the daemon's own PID: the
    # shell sets it to its own and execs the daemon in its place.
    wrap = ["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"']
    if traced:  # argv = strace's options, then the daemon: strace runs the shell
        split = argv.index("-o") + 2
        wrapper = argv[:split] + wrap + argv[split:]
    else:
        wrapper = wrap + argv
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(wrapper, env=environment, stdout=log, stderr=subprocess.STDOUT)
    _processes.append(proc)
    return proc


def expect_pings(notify, proc, count, what, spacing=True):
    """count WATCHDOG=1 messages, each about PING_MS after the one before
    (spacing=False: only that they come, for runs where the gaps are not the
    subject and strace stretches them)."""
    times = []
    for _ in range(count):
        message = notify.next_message(timeout=PING_MS * 5 / 1000.0)
        check(message is not None, "%s: no WATCHDOG=1 within %.0f ms (process %s)" %
              (what, PING_MS * 5, "running" if proc.poll() is None else "exited %s" % proc.returncode))
        check(message == "WATCHDOG=1", "%s: expected WATCHDOG=1, got %r" % (what, message))
        times.append(notify.received[-1][0])
    gaps = [(b - a) * 1000.0 for a, b in zip(times, times[1:])]
    median = sorted(gaps)[len(gaps) // 2]
    print("%s: %d pings, gaps %s ms (median %.0f)" % (what, count, [round(g) for g in gaps], median))
    if not spacing:
        return
    # Half of WATCHDOG_USEC, with room for a loaded machine; a timer at the full
    # interval (400 ms) or a tight loop (a few ms) both fail.
    check(0.75 * PING_MS <= median <= 1.5 * PING_MS, "%s: median gap %.0f ms, expected about %.0f ms" %
          (what, median, PING_MS))
    check(min(gaps) >= 0.5 * PING_MS, "%s: a gap of %.0f ms is far below %.0f ms" % (what, min(gaps), PING_MS))


def stop_and_expect_stopping(notify, proc, what):
    os.kill(proc.pid, signal.SIGTERM)
    notify.wait_for("STOPPING=1", timeout=15)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise Failure("%s did not exit within 20 s of SIGTERM" % what)
    check(code == 0, "%s exited %d after SIGTERM" % (what, code))
    print("%s: STOPPING=1, exit 0" % what)


def run_checked(argv, what):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    check(done.returncode == 0, "%s failed (%d): %s%s" % (what, done.returncode, done.stdout, done.stderr))


def make_deployment():
    deployment = os.path.join(_work, "node")
    run_checked([RENDEZVOUS, "init", deployment], "tsunagu-rendezvous init")
    return deployment


def node_argv(deployment):
    return [RENDEZVOUS, "run", "-d", deployment, "--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0",
            "--agent-listen", "127.0.0.1:0", "--web-listen", "off"]


def watchdog_node():
    check(os.access(RENDEZVOUS, os.X_OK), "%s is not built" % RENDEZVOUS)
    deployment = make_deployment()
    notify = NotifySocket()
    log_path = os.path.join(_work, "node.log")
    proc = start_under_notify(node_argv(deployment), notify, log_path)
    try:
        before = notify.wait_for("READY=1", timeout=30)
        check(before == [], "messages before READY=1: %r" % before)
        expect_pings(notify, proc, 6, "node")
        stop_and_expect_stopping(notify, proc, "node")
    except Failure:
        print(open(log_path, errors="replace").read()[-4000:])
        raise
    return 0


def agent_bundle():
    """An enrolled agent's agent.toml with everything in the work directory."""
    for program in (RENDEZVOUS, AGENT):
        check(os.access(program, os.X_OK), "%s is not built" % program)
    deployment = make_deployment()
    bundle = os.path.join(_work, "acme")
    # The node need not run: the agent is ready once its table and hook socket
    # are, and keeps retrying the (closed) node port meanwhile.
    run_checked([RENDEZVOUS, "agent", "-d", deployment, "enroll", "acme", "--domain", "acme", "--out", bundle,
                 "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"], "agent enroll")
    config = os.path.join(bundle, "agent.toml")
    with open(config, "w") as f:
        f.write("""[node]
address = "127.0.0.1:1"
server_name = "127.0.0.1"
ca_certificate = "ca.crt"
certificate = "agent.crt"
private_key = "agent.key"
reconnect_min_ms = 100
reconnect_max_ms = 1000

[agent]
name = "acme"
domains = ["acme"]
data_directory = "%(b)s/data"

[hook]
socket = "%(b)s/hook.sock"
spool_directory = "%(b)s/spool"
# Not our group: the agent chgrps the spool directory (the unit's @chown).
allowed_groups = ["daemon"]
""" % {"b": bundle})
    return config


def watchdog_agent():
    config = agent_bundle()
    notify = NotifySocket()
    log_path = os.path.join(_work, "agent.log")
    proc = start_under_notify([AGENT, "run", "-c", config], notify, log_path)
    try:
        before = notify.wait_for("READY=1", timeout=30)
        check(before == [], "messages before READY=1: %r" % before)
        expect_pings(notify, proc, 4, "agent")
        os.kill(proc.pid, signal.SIGHUP)  # ExecReload: agent.toml re-read and a re-sync, not a stop
        before = notify.wait_for("READY=1", timeout=15)
        check("RELOADING=1" in before, "agent: READY=1 after SIGHUP without RELOADING=1 (%r)" % before)
        expect_pings(notify, proc, 4, "agent after SIGHUP")
        check(proc.poll() is None, "the agent exited on SIGHUP")
        stop_and_expect_stopping(notify, proc, "agent")
    except Failure:
        print(open(log_path, errors="replace").read()[-4000:])
        raise
    return 0


# ---------------------------------------------------------------- syscalls

_filter_groups = {}


def syscall_group(name):
    """The system calls of a systemd syscall group, nested groups expanded."""
    if name not in _filter_groups:
        listed = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name],
                                capture_output=True, text=True, timeout=30)
        check(listed.returncode == 0, "systemd-analyze syscall-filter %s: %s" % (name, listed.stderr.strip()))
        calls = set()
        for line in listed.stdout.splitlines()[1:]:
            word = line.split("#")[0].strip()
            if word.startswith("@"):
                calls |= syscall_group(word)
            elif word:
                calls.add(word)
        _filter_groups[name] = calls
    return _filter_groups[name]


def unit_syscall_allow_list(unit_path):
    """SystemCallFilter= lines in order: the first sets the allow list, ~ lines
    take calls out, later plain lines put them back (systemd.exec(5))."""
    allowed = None
    with open(unit_path) as f:
        for line in f:
            if not line.startswith("SystemCallFilter="):
                continue
            value = line.split("=", 1)[1].strip()
            deny = value.startswith("~")
            calls = set()
            for item in value.lstrip("~").split():
                calls |= syscall_group(item) if item.startswith("@") else {item}
            check(allowed is not None or not deny, "%s: the first SystemCallFilter= is a deny list" % unit_path)
            allowed = (allowed or set()) - calls if deny else (allowed or set()) | calls
    check(allowed, "%s has no SystemCallFilter=" % unit_path)
    return allowed


def strace_summary_calls(path):
    calls = set()
    with open(path) as f:
        for line in f:
            words = line.split()
            if len(words) >= 5 and words[0][0].isdigit() and words[-1] != "total":
                calls.add(words[-1])
    return calls


def sanitized(binary):
    """Whether the binary carries ASan/UBSan: their runtimes make system calls
    (personality, sigaltstack, madvise...) the product itself never makes."""
    result = subprocess.run(["ldd", binary], capture_output=True, text=True)
    return re.search(r"lib(asan|ubsan)\.so", result.stdout) is not None


def syscalls_within_filter(unit_path, argv, what, hangup):
    for tool in ("strace", "systemd-analyze"):
        if shutil.which(tool) is None:
            print("SKIP: %s is not installed" % tool)
            return SKIP
    daemon = next((a for a in argv if os.path.isabs(a) and os.access(a, os.X_OK)), None)
    if daemon is not None and sanitized(daemon):
        print("SKIP: %s is a sanitizer build; its runtime's system calls are not the daemon's" % daemon)
        return SKIP
    allowed = unit_syscall_allow_list(unit_path)
    summary = os.path.join(_work, "strace.txt")
    notify = NotifySocket()
    log_path = os.path.join(_work, what + ".log")
    # strace follows the shell that execs the daemon (same PID, so the
    # watchdog runs too); the daemon is the traced child of strace.
    proc = start_under_notify(["strace", "-f", "-qq", "-c", "-o", summary] + argv, notify, log_path, traced=True)
    try:
        notify.wait_for("READY=1", timeout=30)
        # Under strace -f on a loaded machine a gap can pass 1.5 intervals (one of
        # 328 ms failed a run at load 14); the watchdog_* tests check the spacing.
        expect_pings(notify, proc, 3, what, spacing=False)
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
            daemon = int(f.read().split()[0])
        if hangup:
            os.kill(daemon, signal.SIGHUP)
            if hangup == "reload":  # the daemon tells systemd RELOADING=1, then READY=1 when done
                before = notify.wait_for("READY=1", timeout=15)
                check("RELOADING=1" in before, "%s: READY=1 after SIGHUP without RELOADING=1 (%r)" % (what, before))
            expect_pings(notify, proc, 2, what + " after SIGHUP", spacing=False)
        os.kill(daemon, signal.SIGTERM)
        notify.wait_for("STOPPING=1", timeout=15)
        check(proc.wait(timeout=30) == 0, "%s under strace exited %s" % (what, proc.returncode))
    except Failure:
        print(open(log_path, errors="replace").read()[-4000:])
        raise
    used = strace_summary_calls(summary)
    check(len(used) > 10, "strace counted only %r" % sorted(used))
    outside = sorted(used - allowed)
    check(not outside, "%s makes system calls its unit refuses (EPERM under systemd): %s" % (what, outside))
    print("%s: %d distinct system calls, all within %s's SystemCallFilter" %
          (what, len(used), os.path.basename(unit_path)))
    return 0


def syscalls_node(unit_path):
    check(os.access(RENDEZVOUS, os.X_OK), "%s is not built" % RENDEZVOUS)
    # hangup: the reload (ExecReload) re-reads node.toml and the certificates.
    return syscalls_within_filter(unit_path, node_argv(make_deployment()), "node", hangup="reload")


def syscalls_agent(unit_path):
    config = agent_bundle()
    # hangup: the reload (ExecReload) re-reads agent.toml, then re-syncs.
    return syscalls_within_filter(unit_path, [AGENT, "run", "-c", config], "agent", hangup="reload")


SCENARIOS = {"watchdog_node": watchdog_node, "watchdog_agent": watchdog_agent}
UNIT_SCENARIOS = {"systemd_units": systemd_units, "syscalls_node": lambda units: syscalls_node(units[0]),
                  "syscalls_agent": lambda units: syscalls_agent(units[0])}

if __name__ == "__main__":
    try:
        if len(sys.argv) >= 3 and sys.argv[1] in UNIT_SCENARIOS:
            code = UNIT_SCENARIOS[sys.argv[1]](sys.argv[2:])
        elif len(sys.argv) == 2 and sys.argv[1] in SCENARIOS:
            code = SCENARIOS[sys.argv[1]]()
        else:
            print("usage: systemd_test.py {%s} UNIT... | %s" % (",".join(UNIT_SCENARIOS), " | ".join(SCENARIOS)))
            code = 2
    except Failure as failure:
        print("FAIL: %s" % failure)
        code = 1
    finally:
        cleanup()
    sys.exit(code)
