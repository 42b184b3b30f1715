"""The NAT lab: a public network, an enterprise gateway with NAT + DHCP + LAN
agent, LAN terminals and a home user behind a second NAT, all as network
namespaces on this machine (docs/lab.md has the diagram).

Python 3 standard library only. Used by lab_test.py (one meson test per
scenario, suite `lab`). Environment: TSUNAGU_BUILD = the meson build directory.

Rules it keeps:
  - every namespace name starts with a prefix unique to this process
    ("tl<pid>-"), so parallel runs never collide;
  - only the lab's namespaces (and nothing in the root namespace) carry traffic:
    the root namespace gets no interface, address, route or rule;
  - every process is started here, tracked by PID, and stopped by that PID;
    namespaces, processes and the work directory are removed on every exit path
    (normal end, failure, exception, SIGTERM from meson's timeout, SIGINT);
  - every wait is bounded;
  - exit 77 (meson's "skipped") with a reason when not root, or when namespaces,
    nftables, dnsmasq, busybox or coturn are missing.

Calls to LAN extensions (phase 2): the agent's [calls] and [policy] sections
(agent_calls_section()), the LAN terminals' certificates (issue_lan_terminal()) and
`tsunagu listen --lan` in a terminal's namespace (start_lan_terminal()); the agent can be
killed and started again (kill_agent(), run_agent()).
"""

import atexit
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77

BUILD = os.path.abspath(os.environ.get("TSUNAGU_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build")))
RENDEZVOUS = os.path.join(BUILD, "node", "tsunagu-rendezvous")
TERMINAL = os.path.join(BUILD, "terminal", "tsunagu")
AGENT = os.path.join(BUILD, "lan-agent", "tsunagu-lan-agent")
HOOK = os.path.join(BUILD, "lan-agent", "tsunagu-dhcp-hook")

# Bounds are multiplied by this (a loaded CI machine; TSUNAGU_TEST_SLOW=3 for sanitizer builds).
SLOW = float(os.environ.get("TSUNAGU_TEST_SLOW", "1"))

# --------------------------------------------------------------------------
# Addresses (docs/lab.md). Public side: TEST-NET-3 203.0.113.0/24, one bridge in `pub`.

PUB_NET = "203.0.113.0/24"
NODE_IP = "203.0.113.10"           # tsunagu-rendezvous: TLS 7400, agents 7401, STUN 3478
TURN_IP = "203.0.113.11"           # coturn 3478, relay ports 49152-49251
NODE_TLS = NODE_IP + ":7400"
NODE_AGENT = NODE_IP + ":7401"
NODE_STUN = NODE_IP + ":3478"
NODE_WEB = NODE_IP + ":8443"        # the node's HTTPS pages and API, with Lab(web=True) (browser_lab_test.py)
TURN_PORT = 3478
TURN_MIN_PORT, TURN_MAX_PORT = 49152, 49251
COTURN_SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "turnserver.conf")


def coturn_config_from_sample(sample, values):
    """The sample with each `key=value` line of `values` replaced; every key must be in it."""
    lines, seen = [], set()
    for line in sample.splitlines():
        key = line.split("=", 1)[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in values:
            line = "%s=%s" % (key, values[key])
            seen.add(key)
        lines.append(line)
    missing = sorted(set(values) - seen)
    if missing:
        raise RuntimeError("docs/turnserver.conf lacks %s" % ", ".join(missing))
    return "\n".join(lines) + "\n"
ACME_WAN = "203.0.113.20"          # gw-acme uplink (eth0)
HOME_WAN = "203.0.113.30"          # gw-home uplink (eth0); scenario d renumbers it
HOME_WAN_RENUMBERED = "203.0.113.31"
ACME_LAN_GW = "10.77.0.1"          # gw-acme lan0 (a bridge): dnsmasq, 10.77.0.50-99
ACME_DHCP_RANGE = ("10.77.0.50", "10.77.0.99")
HOME_LAN_GW = "192.168.7.1"        # gw-home lan0
HOME_IP = "192.168.7.2"            # home eth0 (static, like a home router's first lease)
ACME_DOMAIN = "acme"
HOSTNAME_RULE = "ext{ext}"         # DHCP hostname ext4106 -> extension 4106

# The terminals: which namespace, MAC, DHCP hostname (extension) and the
# directly logged-in user each one has.
TERMINALS = {
    "acme-1": {"mac": "02:00:00:41:06:01", "ext": "4106", "user": "akiko"},
    "acme-2": {"mac": "02:00:00:41:07:01", "ext": "4107", "user": "taro"},
    "home": {"user": "kenji"},
}
PASSWORDS = {"akiko": "akiko-lab-password", "taro": "taro-lab-password", "kenji": "kenji-lab-password"}

NAT_MODES = {
    # endpoint-independent mapping, port preserving (ICE-FACTS: "masquerade persistent")
    "eim": "masquerade persistent",
    # symmetric: a new random port per destination
    "symmetric": "masquerade random,fully-random",
}

EXIT_AUTH_FAILED = 5


class Skip(Exception):
    pass


class LabFailure(AssertionError):
    pass


def log(*parts):
    print(*parts, flush=True)


def now_ms():
    return time.monotonic() * 1000.0


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns a true value (returned); bounded by timeout * SLOW."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabFailure("timed out after %.1f s waiting for %s" % (timeout * SLOW, what))
        time.sleep(interval)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            f.write(chunk)
            left -= len(chunk)
    return path


def _edit_toml(path, section, key, value):
    """Sets `key = value` (value is TOML text) in [section], adding the line or section when missing."""
    with open(path) as f:
        lines = f.read().splitlines()
    current, header_index = None, None
    for i, line in enumerate(lines):
        stripped = line.strip()
        m = re.match(r"^\[([^\]]+)\]", stripped)
        if m:
            current = m.group(1).strip()
            if current == section:
                header_index = i
            continue
        if current == section and re.match(r"^#?\s*%s\s*=" % re.escape(key), stripped):
            lines[i] = "%s = %s" % (key, value)
            break
    else:
        if header_index is None:
            lines += ["", "[%s]" % section, "%s = %s" % (key, value)]
        else:
            lines.insert(header_index + 1, "%s = %s" % (key, value))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# Processes

class Proc:
    """A process the lab started (in a namespace), with its output in files."""

    def __init__(self, lab, name, popen, out_path, err_path):
        self.lab = lab
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self.out_path = out_path
        self.err_path = err_path

    def _read(self, path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def out(self):
        return self._read(self.out_path)

    def err(self):
        return self._read(self.err_path)

    def alive(self):
        return self.popen.poll() is None

    @property
    def returncode(self):
        return self.popen.returncode

    def wait(self, timeout):
        """Exit status, or None when it did not exit within timeout * SLOW."""
        try:
            return self.popen.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, signum):
        if self.popen.poll() is None:
            os.kill(self.pid, signum)

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(timeout=10)

    def describe(self, stdout=True):
        text = "%s: exit %s, stderr %r" % (self.name, self.popen.returncode, self.err()[-1500:])
        if stdout and not self.out_path.endswith(".bin"):
            text += ", stdout %r" % self.out()[-500:]
        return text


# --------------------------------------------------------------------------
# The lab

_active_labs = []


def _cleanup_all():
    for lab in list(_active_labs):
        lab.teardown()


atexit.register(_cleanup_all)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)  # meson's timeout sends SIGTERM: unwind, then clean up


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def preflight(programs=(RENDEZVOUS, TERMINAL, AGENT, HOOK)):
    """Raises Skip with a reason when the lab cannot run here."""
    if os.geteuid() != 0:
        raise Skip("needs root (network namespaces, nftables)")
    for program in programs:
        if not os.access(program, os.X_OK):
            raise Skip("%s is not built (TSUNAGU_BUILD=%s)" % (program, BUILD))
    tools = {"ip": "iproute2", "nft": "nftables", "dnsmasq": "dnsmasq-base", "busybox": "busybox",
             "turnserver": "coturn", "sysctl": "procps"}
    for tool, package in tools.items():
        if shutil.which(tool) is None and not any(os.access(os.path.join(d, tool), os.X_OK)
                                                  for d in ("/usr/sbin", "/sbin", "/usr/bin")):
            raise Skip("%s is not installed (Debian package %s)" % (tool, package))


def _tool(name):
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    return name


class Lab:
    """One run of the lab. Use as a context manager; teardown() is idempotent.

    nat: {"gw-acme": "eim"|"symmetric", "gw-home": ...}
    """

    NAMESPACES = ("pub", "gw-acme", "gw-home", "acme-1", "acme-2", "home")

    def __init__(self, scenario, nat=None, keepalive_interval=5, policy="", home_wire=None, calls="",
                 node_config=(), with_agent=True, web=False):
        """node_config: (section, key, TOML value) lines set in the node's node.toml before it starts.
        with_agent=False: a lab without the LAN agent, dnsmasq or DHCP (up_without_agent()): the acme
        terminals get static addresses; the agent and hook need not be built.
        policy: TOML appended to agent.toml after its [policy] section: [[policy.rule]] tables, "" for none.
        calls: TOML lines added to the agent's [calls] section (e.g. 'call_waiting = ["4106"]').
        home_wire: {"loss": %, "delay": ms, "jitter": ms, "seed": n} makes the home cable (home <-> gw-home)
        an impaired wire (impaired_wire.py: netem's loss/delay/jitter in user space), or None for a veth.
        web: the node also serves its web pages on NODE_WEB ([web] listen), for a browser in `home`."""
        self.home_wire = home_wire
        self.node_config = list(node_config)
        self.with_agent = with_agent
        self.web = web
        preflight() if with_agent else preflight((RENDEZVOUS, TERMINAL))
        self.scenario = scenario
        self.policy = policy
        self.calls = calls
        self.prefix = "tl%d-" % os.getpid()
        self.nat = {"gw-acme": "eim", "gw-home": "eim"}
        self.nat.update(nat or {})
        self.keepalive_interval = keepalive_interval
        self.work = tempfile.mkdtemp(prefix="tsunagu-lab-")
        os.chmod(self.work, 0o755)  # dnsmasq may drop to nobody; the hook reads the agent config
        self.procs = []
        self.made_namespaces = []
        self.counter = 0
        self.torn_down = False
        self.failed = False
        self.addresses = {}  # terminal namespace -> its current IPv4 address
        self.dhcp = {}       # terminal namespace -> its udhcpc Proc
        self.home_wan = HOME_WAN
        self.ip = _tool("ip")
        self.nft = _tool("nft")
        self.dnsmasq = _tool("dnsmasq")
        self.busybox = _tool("busybox")
        self.turnserver = _tool("turnserver")
        self.sysctl = _tool("sysctl")
        _active_labs.append(self)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not issubclass(exc_type, Skip):
            self.failed = True
        self.teardown()
        return False

    # -- names and paths --------------------------------------------------------

    def ns(self, short):
        return self.prefix + short

    def path(self, name):
        return os.path.join(self.work, name)

    def _next(self, stem):
        self.counter += 1
        return self.path("%02d-%s" % (self.counter, stem))

    # -- commands -----------------------------------------------------------------

    def sh(self, args, ns=None, check=True, timeout=20, env=None, input_text=None):
        """Runs a short command (in namespace `ns`); returns CompletedProcess (text)."""
        full = ([self.ip, "netns", "exec", self.ns(ns)] if ns else []) + list(args)
        try:
            result = subprocess.run(full, capture_output=True, text=True, timeout=timeout * SLOW, env=env,
                                    input=input_text, stdin=None if input_text is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise LabFailure("%s timed out after %.0f s" % (" ".join(full), timeout * SLOW))
        if check and result.returncode != 0:
            raise LabFailure("%s exited %d: %s%s" % (" ".join(full), result.returncode, result.stdout, result.stderr))
        return result

    def spawn(self, ns, args, name, env=None, stdin=None, binary_stdout=False):
        """Starts a long-running process in namespace ns; stdout/stderr go to files in the work directory.
        stdin: None (/dev/null), a file path, or subprocess.PIPE."""
        stem = self._next(name)
        out_path, err_path = stem + (".bin" if binary_stdout else ".out"), stem + ".err"
        if stdin is None:
            stdin_arg = subprocess.DEVNULL
        elif stdin == subprocess.PIPE:
            stdin_arg = subprocess.PIPE
        else:
            stdin_arg = open(stdin, "rb")
        try:
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                popen = subprocess.Popen([self.ip, "netns", "exec", self.ns(ns)] + list(args), env=env,
                                         stdin=stdin_arg, stdout=out, stderr=err)
        finally:
            if stdin_arg not in (subprocess.DEVNULL, subprocess.PIPE):
                stdin_arg.close()
        proc = Proc(self, name, popen, out_path, err_path)
        self.procs.append(proc)
        return proc

    # -- topology -----------------------------------------------------------------

    def build_network(self):
        """Namespaces, veth pairs, bridges, addresses, routes and the two NAT gateways."""
        for short in self.NAMESPACES:
            result = self.sh([self.ip, "netns", "add", self.ns(short)], check=False)
            if result.returncode != 0:
                raise Skip("cannot create network namespaces: %s" % result.stderr.strip())
            self.made_namespaces.append(self.ns(short))
            self.sh([self.ip, "link", "set", "lo", "up"], ns=short)
            # IPv4 only (TEST-NET and RFC 1918 addresses): no IPv6 link-local candidates, no DAD waits.
            self.sh([self.sysctl, "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"], ns=short, check=False)
            self.sh([self.sysctl, "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"], ns=short, check=False)
        ip = self.ip
        n = self.ns

        def veth(name_a, ns_a, name_b, ns_b):
            # Both ends are made directly inside their namespaces: nothing appears in the root namespace.
            result = self.sh([ip, "link", "add", name_a, "netns", n(ns_a), "type", "veth", "peer", "name", name_b,
                              "netns", n(ns_b)], check=False)
            if result.returncode != 0:
                raise Skip("cannot create a veth pair: %s" % result.stderr.strip())

        # pub: one bridge, the node's and coturn's addresses on it.
        self.sh([ip, "link", "add", "br0", "type", "bridge", "forward_delay", "0"], ns="pub")
        self.sh([ip, "addr", "add", NODE_IP + "/24", "dev", "br0"], ns="pub")
        self.sh([ip, "addr", "add", TURN_IP + "/24", "dev", "br0"], ns="pub")
        self.sh([ip, "link", "set", "br0", "up"], ns="pub")
        # Uplinks: eth0 in each gateway, a port of br0 in pub. (libnice skips interfaces named
        # veth*, docker*, virbr*, vnet*: the names here are eth0 / lan0 / port*.)
        for gw, port, wan in (("gw-acme", "port-acme", ACME_WAN), ("gw-home", "port-home", HOME_WAN)):
            veth("eth0", gw, port, "pub")
            self.sh([ip, "link", "set", port, "master", "br0", "up"], ns="pub")
            self.sh([ip, "addr", "add", wan + "/24", "dev", "eth0"], ns=gw)
            self.sh([ip, "link", "set", "eth0", "up"], ns=gw)
            self.sh([self.sysctl, "-q", "-w", "net.ipv4.ip_forward=1"], ns=gw)
        # acme LAN: a bridge lan0 in gw-acme, one port per terminal; terminals get addresses by DHCP.
        self.sh([ip, "link", "add", "lan0", "type", "bridge", "forward_delay", "0"], ns="gw-acme")
        self.sh([ip, "addr", "add", ACME_LAN_GW + "/24", "dev", "lan0"], ns="gw-acme")
        self.sh([ip, "link", "set", "lan0", "up"], ns="gw-acme")
        for host in ("acme-1", "acme-2"):
            port = "port-" + host
            veth("eth0", host, port, "gw-acme")
            self.sh([ip, "link", "set", port, "master", "lan0", "up"], ns="gw-acme")
            self.sh([ip, "link", "set", "eth0", "address", TERMINALS[host]["mac"]], ns=host)
            self.sh([ip, "link", "set", "eth0", "up"], ns=host)
        # home LAN: one cable, a static address.
        if self.home_wire:
            self.start_home_wire(**self.home_wire)
        else:
            veth("lan0", "gw-home", "eth0", "home")
        self.sh([ip, "addr", "add", HOME_LAN_GW + "/24", "dev", "lan0"], ns="gw-home")
        self.sh([ip, "link", "set", "lan0", "up"], ns="gw-home")
        self.sh([ip, "addr", "add", HOME_IP + "/24", "dev", "eth0"], ns="home")
        self.sh([ip, "link", "set", "eth0", "up"], ns="home")
        self.sh([ip, "route", "add", "default", "via", HOME_LAN_GW], ns="home")
        self.addresses["home"] = HOME_IP
        for gw in ("gw-acme", "gw-home"):
            self.set_nat(gw, self.nat[gw])

    def start_home_wire(self, loss=0.0, delay=0.0, jitter=0.0, seed=1):
        """The home cable as two TAP ends joined by impaired_wire.py (run in gw-home, which makes both ends
        there; the home end then moves into `home`). Stopped by PID with the lab's other processes."""
        wire = os.path.join(os.path.dirname(os.path.abspath(__file__)), "impaired_wire.py")
        self.wire = self.spawn("gw-home", [sys.executable, wire, "lan0", "wire-home", "--loss", str(loss),
                                           "--delay", str(delay), "--jitter", str(jitter), "--seed", str(seed)],
                               "impaired-wire")
        wait_until(lambda: "READY" in self.wire.out() or not self.wire.alive(), 10, what="the impaired wire")
        if not self.wire.alive():
            raise Skip("cannot make TAP devices for the impaired wire: %s" % self.wire.err().strip())
        self.sh([self.ip, "link", "set", "wire-home", "netns", self.ns("home")], ns="gw-home")
        self.sh([self.ip, "link", "set", "wire-home", "name", "eth0"], ns="home")

    def set_nat(self, gw, mode):
        """(Re)loads the gateway's nftables ruleset: NAT on its uplink eth0 plus the firewall every
        real router has (unsolicited inbound on the uplink dropped: ICE-FACTS, Linux NAT)."""
        if mode not in NAT_MODES:
            raise LabFailure("unknown NAT mode %r" % mode)
        rules = """flush ruleset
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "eth0" %s
  }
}
table inet filter {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "eth0" ct state new drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "eth0" ct state new drop
  }
}
""" % NAT_MODES[mode]
        path = self.path("nft-%s.conf" % gw)
        with open(path, "w") as f:
            f.write(rules)
        result = self.sh([self.nft, "-f", path], ns=gw, check=False)
        if result.returncode != 0:
            raise Skip("nftables cannot be loaded in a namespace (%s): %s" % (gw, result.stderr.strip()))
        self.nat[gw] = mode

    def renumber_uplink(self, gw, new_address):
        """The ISP gives the gateway another public address (dynamic IP): the old one is removed,
        which also drops the gateway's NAT mappings made with it (masquerade)."""
        old = ACME_WAN if gw == "gw-acme" else self.home_wan
        # Old first: deleting a primary address also deletes the secondaries of its subnet.
        self.sh([self.ip, "addr", "del", old + "/24", "dev", "eth0"], ns=gw)
        self.sh([self.ip, "addr", "add", new_address + "/24", "dev", "eth0"], ns=gw)
        if gw == "gw-home":
            self.home_wan = new_address

    # -- the public side ----------------------------------------------------------

    def start_node(self):
        self.deployment = self.path("node")
        self.sh([RENDEZVOUS, "init", self.deployment, "--name", "node.tsunagu.lab", "--ip", NODE_IP])
        config = os.path.join(self.deployment, "node.toml")
        self.ca = os.path.join(self.deployment, "ca.crt")
        for key, value in (("listen", NODE_TLS), ("stun_listen", NODE_STUN), ("agent_listen", NODE_AGENT),
                           ("log_level", "debug")):
            _edit_toml(config, "node", key, json.dumps(value))
        if self.web:
            _edit_toml(config, "web", "listen", json.dumps(NODE_WEB))
        _edit_toml(config, "passwords", "scrypt_log2_n", "14")  # the lab is not about hashing
        _edit_toml(config, "passwords", "scram_iterations", "4096")
        _edit_toml(config, "presence", "keepalive_interval", str(self.keepalive_interval))
        for section, key, value in self.node_config:
            _edit_toml(config, section, key, value)
        _edit_toml(config, "turn", "secret", json.dumps(self.turn_secret))
        _edit_toml(config, "turn", "servers", json.dumps(["%s:%d" % (TURN_IP, TURN_PORT)]))
        if os.environ.get("TSUNAGU_LAB_NODE_STUN", "1") != "0":
            # As docs/operator.md says to deploy: terminals use the node's STUN service. With
            # TSUNAGU_LAB_NODE_STUN=0 they get only coturn (its Allocate reply yields srflx too):
            # docs/lab.md compares the two.
            _edit_toml(config, "turn", "stun_server", json.dumps(NODE_STUN))
        for user, password in PASSWORDS.items():
            env = dict(os.environ, TSUNAGU_PASSWORD=password)
            self.sh([RENDEZVOUS, "user", "-d", self.deployment, "add", user, "--name", user.capitalize()], env=env)
        self.sh([RENDEZVOUS, "agent", "-d", self.deployment, "enroll", "acme", "--domain", ACME_DOMAIN,
                 "--out", self.path("acme"), "--node", NODE_AGENT, "--server-name", NODE_IP])
        ready = self.path("node-ready.json")
        self.node = self.spawn("pub", [RENDEZVOUS, "run", "-d", self.deployment, "--ready-file", ready],
                               "node")

        def ready_now():
            if not self.node.alive():
                raise LabFailure("the node exited at start: %s" % self.node.describe())
            try:
                with open(ready) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None
        info = wait_until(ready_now, 20, what="the node's ready file")
        log("  node pid %d: terminals %s, agents %s, STUN %s" % (self.node.pid, info.get("tls"), info.get("agent"),
                                                                  info.get("stun")))

    def start_coturn(self, ip=TURN_IP, name="coturn"):
        """A coturn on `ip` (added to pub's bridge when it is not TURN_IP) with the lab's TURN secret, so
        the node's credentials work on it; the lab's own one (self.coturn) is the default. Returns its Proc."""
        root = self.path(name)
        os.makedirs(root)
        if ip != TURN_IP:
            self.sh([self.ip, "addr", "add", ip + "/24", "dev", "br0"], ns="pub")
        config = os.path.join(root, "turnserver.conf")
        # The operator's sample (docs/turnserver.conf, shown in docs/operator.md) as it is,
        # with only the lab's addresses, ports, secret and paths put in.
        with open(COTURN_SAMPLE) as f:
            sample = f.read()
        with open(config, "w") as f:
            f.write(coturn_config_from_sample(sample, {
                "listening-ip": ip, "relay-ip": ip, "listening-port": str(TURN_PORT),
                "min-port": str(TURN_MIN_PORT), "max-port": str(TURN_MAX_PORT),
                "static-auth-secret": self.turn_secret, "log-file": "stdout",
                "pidfile": os.path.join(root, "turnserver.pid"), "userdb": os.path.join(root, "turndb.sqlite"),
            }))
        coturn = self.spawn("pub", [self.turnserver, "-c", config], name)
        if ip == TURN_IP:
            self.coturn = coturn
        # Ready when it listens on UDP 3478 (bounded).
        wait_until(lambda: self._udp_listening("pub", ip, TURN_PORT) or
                   (not coturn.alive() and self._raise("coturn exited: %s" % coturn.describe())),
                   15, 0.1, "coturn to listen on %s:%d" % (ip, TURN_PORT))
        log("  %s pid %d on %s:%d, relay ports %d-%d" % (name, coturn.pid, ip, TURN_PORT, TURN_MIN_PORT,
                                                          TURN_MAX_PORT))
        return coturn

    def _udp_listening(self, ns, address, port):
        result = self.sh(["cat", "/proc/net/udp"], ns=ns, check=False)
        want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(address.split("."))), port)
        return any(line.split()[1] == want for line in result.stdout.splitlines()[1:] if line.split())

    @staticmethod
    def _raise(message):
        raise LabFailure(message)

    # -- the enterprise gateway ---------------------------------------------------

    LAN_TERMINAL_PORT = 7480            # agent.toml calls.terminal_port; `listen --lan` binds 0.0.0.0:7480
    LAN_CONNECT_TIMEOUT_MS = 3000       # agent.toml calls.connect_timeout_ms (default 5000)

    def agent_calls_section(self):
        """The agent's [calls] section (rings for our extensions pass to LAN terminals on TLS
        port 7480) and the scenario's edge policy, appended to agent.toml."""
        text = "[calls]\nenabled = true\nterminal_port = %d\nconnect_timeout_ms = %d\n" % (
            self.LAN_TERMINAL_PORT, self.LAN_CONNECT_TIMEOUT_MS)
        if self.calls:
            text += self.calls.strip() + "\n"
        # dhcp_lookup checks the leased address whereis shows: off by default (issue 11 §6).
        text += "\n[policy]\nshow_lease_addresses = true\n"
        if self.policy:
            text += "\n" + self.policy.strip() + "\n"
        return text

    def start_agent(self):
        bundle = self.path("acme")
        self.agent_config = os.path.join(bundle, "agent.toml")
        with open(self.agent_config, "w") as f:
            f.write("""[node]
address = "{node}"
server_name = "{server}"
ca_certificate = "ca.crt"
certificate = "agent.crt"
private_key = "agent.key"
heartbeat_interval = 2
request_timeout = 5
reconnect_min_ms = 100
reconnect_max_ms = 1000

[agent]
name = "acme"
domains = ["{domain}"]
data_directory = "{bundle}/data"
log_level = "debug"

[table]
hostname_rule = "{rule}"

[hook]
socket = "{bundle}/hook.sock"
spool_directory = "{bundle}/spool"

[sync]
lease_files = ["dnsmasq:{leases}"]

{calls}""".format(node=NODE_AGENT, server=NODE_IP, domain=ACME_DOMAIN, bundle=bundle, rule=HOSTNAME_RULE,
                  leases=self.path("dnsmasq.leases"), calls=self.agent_calls_section()))
        self.run_agent()

    def agent_log(self):
        return self.agent.err() + self.agent.out()

    def run_agent(self):
        """`tsunagu-lan-agent run` in gw-acme with the config start_agent() wrote (again after
        kill_agent()); waits until it is linked to the node and rings pass to LAN terminals.
        Returns the milliseconds from start to linked."""
        bundle = os.path.dirname(self.agent_config)
        started = now_ms()
        self.agent = self.spawn("gw-acme", [AGENT, "run", "-c", self.agent_config], "agent")
        wait_until(lambda: "linked to the node" in self.agent_log() or
                   (not self.agent.alive() and self._raise("the agent exited: %s" % self.agent.describe())),
                   15, 0.05, "the agent to link to the node")
        linked_ms = now_ms() - started
        want = "LAN calls: rings pass to terminals on TLS port %d" % self.LAN_TERMINAL_PORT
        if want not in self.agent_log():
            raise LabFailure("the agent did not log %r: %s" % (want, self.agent.describe()))
        wait_until(lambda: os.path.exists(os.path.join(bundle, "hook.sock")), 5, 0.05, "the agent's hook socket")
        log("  agent pid %d in gw-acme linked to the node (%.0f ms); LAN calls on TLS port %d" % (
            self.agent.pid, linked_ms, self.LAN_TERMINAL_PORT))
        return linked_ms

    def kill_agent(self, signum=signal.SIGKILL):
        """Stops the agent by its PID (SIGKILL by default: no chance to tidy up); returns its exit status."""
        self.agent.signal(signum)
        code = self.agent.wait(10)
        if code is None:
            raise LabFailure("the agent (pid %d) did not exit after signal %d" % (self.agent.pid, signum))
        return code

    def start_dnsmasq(self):
        env = dict(os.environ, TSUNAGU_AGENT_CONFIG=self.agent_config)
        self.dnsmasq_proc = self.spawn("gw-acme", [
            self.dnsmasq, "-k", "--conf-file=/dev/null", "--port=0", "--interface=lan0", "--bind-interfaces",
            "--no-ping", "--dhcp-range=%s,%s,255.255.255.0,2m" % ACME_DHCP_RANGE, "--dhcp-script=" + HOOK,
            "--script-on-renewal", "--dhcp-leasefile=" + self.path("dnsmasq.leases"),
            "--pid-file=" + self.path("dnsmasq.pid"), "--log-dhcp"], "dnsmasq", env=env)
        time.sleep(0.2)
        if not self.dnsmasq_proc.alive():
            raise LabFailure("dnsmasq did not start: %s" % self.dnsmasq_proc.describe())
        log("  dnsmasq pid %d serving %s-%s on gw-acme lan0" % ((self.dnsmasq_proc.pid,) + ACME_DHCP_RANGE))

    def _write_udhcpc_script(self):
        script = self.path("udhcpc.sh")
        with open(script, "w") as f:
            f.write("""#!/bin/sh
# busybox udhcpc event script: address, default route, and a mark file the lab waits for.
case "$1" in
  deconfig) ip addr flush dev "$interface" scope global ;;
  bound|renew)
    ip addr flush dev "$interface" scope global
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    echo "$ip" > "$MARK.tmp" && mv "$MARK.tmp" "$MARK" ;;
esac
exit 0
""")
        os.chmod(script, 0o755)
        return script

    def dhcp_start(self, host, request=None):
        """busybox udhcpc in `host` (hostname = ext<extension>), releasing on SIGTERM (-R)."""
        info = TERMINALS[host]
        mark = self.path("bound-" + host)
        if os.path.exists(mark):
            os.unlink(mark)
        script = self.path("udhcpc.sh")
        if not os.path.exists(script):
            self._write_udhcpc_script()
        args = [self.busybox, "udhcpc", "-f", "-R", "-i", "eth0", "-s", script, "-x", "hostname:ext" + info["ext"],
                "-t", "20", "-T", "1"]
        if request:
            args += ["-r", request]
        env = dict(os.environ, MARK=mark)
        self.dhcp[host] = self.spawn(host, args, "udhcpc-" + host, env=env)
        return self.dhcp[host]

    def dhcp_wait_bound(self, host, timeout=20):
        mark = self.path("bound-" + host)
        started = now_ms()

        def bound():
            try:
                with open(mark) as f:
                    return f.read().strip()
            except OSError:
                return None
        address = wait_until(bound, timeout, 0.02, "%s to get a DHCP lease" % host)
        self.addresses[host] = address
        return address, now_ms() - started

    def dhcp_release(self, host):
        """SIGTERM: udhcpc -R sends DHCPRELEASE and exits."""
        proc = self.dhcp.pop(host)
        code = proc.stop(timeout=5)
        self.addresses.pop(host, None)
        return code

    # -- start everything ---------------------------------------------------------

    def up(self, dhcp_hosts=("acme-1", "acme-2")):
        started = time.monotonic()
        self.turn_secret = os.urandom(16).hex()
        self.build_network()
        log("  namespaces %s* up; NAT gw-acme=%s gw-home=%s" % (self.prefix, self.nat["gw-acme"],
                                                                   self.nat["gw-home"]))
        self.start_node()
        self.start_coturn()
        self.start_agent()
        self.start_dnsmasq()
        for host in dhcp_hosts:
            self.dhcp_start(host)
        for host in dhcp_hosts:
            address, ms = self.dhcp_wait_bound(host)
            log("  %s got %s from dnsmasq in %.0f ms" % (host, address, ms))
        log("  lab up in %.1f s (work directory %s)" % (time.monotonic() - started, self.work))
        return self

    def up_without_agent(self, static=(("acme-1", "10.77.0.60"), ("acme-2", "10.77.0.61"))):
        """The network, the node and coturn; the acme terminals on static addresses behind gw-acme."""
        started = time.monotonic()
        self.turn_secret = os.urandom(16).hex()
        self.build_network()
        self.start_node()
        self.start_coturn()
        for host, address in static:
            self.sh([self.ip, "addr", "add", address + "/24", "dev", "eth0"], ns=host)
            self.sh([self.ip, "route", "add", "default", "via", ACME_LAN_GW], ns=host)
            self.addresses[host] = address
        log("  lab up (no agent) in %.1f s (work directory %s)" % (time.monotonic() - started, self.work))
        return self

    # -- terminals (users logged in directly to the node) ---------------------------

    def terminal_env(self, user, password=None):
        env = dict(os.environ)
        for name in ("TSUNAGU_NODE", "TSUNAGU_CA", "TSUNAGU_USER", "TSUNAGU_PASSWORD"):
            env.pop(name, None)
        env.update(TSUNAGU_NODE=NODE_TLS, TSUNAGU_CA=self.ca, TSUNAGU_USER=user,
                   TSUNAGU_PASSWORD=PASSWORDS[user] if password is None else password)
        return env

    def listen(self, host, args, stdin=None, binary=True, wait=True):
        """`tsunagu listen ARGS` in `host` as that host's user; waits until it is online."""
        user = TERMINALS[host]["user"]
        proc = self.spawn(host, [TERMINAL, "listen"] + list(args), "listen-%s" % user, env=self.terminal_env(user),
                          stdin=stdin, binary_stdout=binary)
        if wait:
            self.wait_listening(proc, user)
        return proc

    def wait_listening(self, proc, user, count=1, timeout=20):
        def listening():
            if proc.err().count("listening as %s" % user) >= count:
                return True
            if not proc.alive():
                raise LabFailure("`tsunagu listen` as %s exited: %s" % (user, proc.describe(stdout=False)))
            return False
        wait_until(listening, timeout, 0.05, "`tsunagu listen` as %s to be online" % user)

    def call(self, host, callee, args, stdin=None, binary=True, password=None, report=None):
        """`tsunagu call CALLEE ARGS --report FILE` in `host` as that host's user (started, not waited)."""
        user = TERMINALS[host]["user"]
        extra = ["--report", report] if report else []
        return self.spawn(host, [TERMINAL, "call", callee] + list(args) + extra, "call-%s-%s" % (user, callee),
                          env=self.terminal_env(user, password), stdin=stdin, binary_stdout=binary)

    def whereis(self, host, target):
        """`tsunagu whereis TARGET --json` in `host` as that host's user: (exit code, parsed JSON or None)."""
        user = TERMINALS[host]["user"]
        result = self.sh([TERMINAL, "whereis", target, "--json"], ns=host, check=False, env=self.terminal_env(user))
        try:
            parsed = json.loads(result.stdout) if result.stdout.strip() else None
        except ValueError:
            parsed = None
        return result.returncode, parsed, result

    def agent_list(self):
        return self.sh([AGENT, "list", "-c", self.agent_config], ns="gw-acme").stdout

    # -- LAN terminals: extensions rung by the agent (`tsunagu listen --lan`) ---------
    #
    #   agent.toml [calls] terminal_port = 7480                   -> agent_calls_section()
    #   tsunagu-lan-agent terminal issue EXT --out DIR -c AGENT.TOML  -> issue_lan_terminal()
    #   tsunagu listen --lan DIR [--auto-accept-from ID|*] [--pipe|--recv DIR] [--once] [--report F]
    #       no node login; TLS on 0.0.0.0:7480; STUN/TURN settings come in the ring -> start_lan_terminal()
    #   the caller runs `tsunagu call 4106@acme ...` as usual         -> call(host, "4106@acme", ...)

    def issue_lan_terminal(self, host):
        """The agent issues the LAN terminal certificate bundle for `host`'s extension (once per
        run); returns the bundle directory (readable from every namespace: same filesystem)."""
        ext = TERMINALS[host]["ext"]
        bundle = self.path("lan-terminal-%s" % ext)
        if not os.path.exists(os.path.join(bundle, "terminal.crt")):
            self.sh([AGENT, "terminal", "issue", ext, "--out", bundle, "-c", self.agent_config], ns="gw-acme")
        return bundle

    def start_lan_terminal(self, host, args, stdin=None, binary=True, wait=True):
        """`tsunagu listen --lan BUNDLE ARGS` in `host` (an extension with a DHCP lease), bound to
        0.0.0.0:7480 (the default), so that it keeps answering when its lease changes; waits
        until it listens."""
        bundle = self.issue_lan_terminal(host)
        env = dict(os.environ)
        for name in ("TSUNAGU_NODE", "TSUNAGU_CA", "TSUNAGU_USER", "TSUNAGU_PASSWORD"):
            env.pop(name, None)
        proc = self.spawn(host, [TERMINAL, "listen", "--lan", bundle] + list(args), "lan-listen-%s" % host,
                          env=env, stdin=stdin, binary_stdout=binary)
        if wait:
            self.wait_lan_listening(proc, host)
        return proc

    def wait_lan_listening(self, proc, host, timeout=20):
        """Waits for the LAN terminal's readiness line ("listening on the LAN as extension EXT at
        ADDR:PORT") and for its TCP listener on 7480 in the host's namespace."""
        ext = TERMINALS[host]["ext"]

        def listening():
            if not proc.alive():
                raise LabFailure("`tsunagu listen --lan` in %s exited: %s" % (host, proc.describe(stdout=False)))
            if "listening on the LAN as extension %s at" % ext not in proc.err():
                return False
            result = self.sh(["cat", "/proc/net/tcp"], ns=host, check=False)
            return any(line.split()[1].endswith(":%04X" % self.LAN_TERMINAL_PORT) and line.split()[3] == "0A"
                       for line in result.stdout.splitlines()[1:] if line.split())
        wait_until(listening, timeout, 0.05, "the LAN terminal in %s to listen on %d" % (host,
                                                                                         self.LAN_TERMINAL_PORT))

    # -- teardown -----------------------------------------------------------------

    def dump_logs(self, lines=30):
        for entry in sorted(os.listdir(self.work)) if os.path.isdir(self.work) else []:
            if entry.endswith((".out", ".err", ".log")):
                try:
                    with open(os.path.join(self.work, entry), errors="replace") as f:
                        tail = f.read().splitlines()[-lines:]
                except OSError:
                    continue
                if tail:
                    log("---- %s (last %d lines)" % (entry, len(tail)))
                    log("\n".join(tail))

    def teardown(self):
        if self.torn_down:
            return
        self.torn_down = True
        if self.failed:
            self.dump_logs()
        # 1. Our processes, by PID: SIGTERM (udhcpc releases, the agent commits), then SIGKILL.
        for proc in reversed(self.procs):
            if proc.popen.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 3
        for proc in self.procs:
            try:
                proc.popen.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.kill()
                try:
                    proc.popen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        # 2. Anything still running inside the lab's own namespaces (children of ours, e.g. a hook
        #    dnsmasq just forked), then the namespaces themselves (their interfaces go with them).
        for name in self.made_namespaces:
            result = subprocess.run([self.ip, "netns", "pids", name], capture_output=True, text=True, timeout=10)
            for pid in result.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for name in self.made_namespaces:
            subprocess.run([self.ip, "netns", "del", name], capture_output=True, timeout=10)
        self.made_namespaces = []
        if os.environ.get("TSUNAGU_LAB_KEEP") and self.failed:
            log("  (TSUNAGU_LAB_KEEP: work directory kept at %s)" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        if self in _active_labs:
            _active_labs.remove(self)


# --------------------------------------------------------------------------
# Results: printed per scenario, and kept in the build tree for the combined table

class Checks:
    """Collects failed expectations so one run reports every problem it saw."""

    def __init__(self):
        self.failures = []

    def check(self, condition, message):
        log(("  ok: " if condition else "  FAIL: ") + message)
        if not condition:
            self.failures.append(message)
        return condition

    def finish(self):
        if self.failures:
            raise LabFailure("%d check(s) failed:\n  - %s" % (len(self.failures), "\n  - ".join(self.failures)))


def read_report(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def throughput_of(stderr_text):
    """(bytes out, bytes in, seconds, Mbit/s) from the CLI's 'transferred ...' line, or None."""
    m = re.findall(r"transferred (\d+) bytes out, (\d+) in, in ([0-9.]+) s \(([0-9.]+) Mbit/s\)", stderr_text)
    if not m:
        return None
    out, inn, seconds, mbps = m[-1]
    return int(out), int(inn), float(seconds), float(mbps)


RESULT_COLUMNS = ("scenario", "NATs", "path (caller side)", "caller local", "caller remote", "connected ms",
                  "first byte ms", "throughput", "result")


def results_dir():
    return os.path.join(BUILD, "meson-logs", "lab")


def record_result(row):
    """Keeps one scenario's row (a dict with RESULT_COLUMNS keys) in BUILD/meson-logs/lab/."""
    try:
        os.makedirs(results_dir(), exist_ok=True)
        with open(os.path.join(results_dir(), "%s.json" % row["scenario"]), "w") as f:
            json.dump(row, f)
    except OSError as error:
        log("  (could not keep the result row: %s)" % error)


def format_table(rows):
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in RESULT_COLUMNS]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(RESULT_COLUMNS, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")).ljust(w) for c, w in zip(RESULT_COLUMNS, widths)) + " |")
    return "\n".join(lines)


def print_table(order=()):
    rows = []
    directory = results_dir()
    for entry in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if entry.endswith(".json"):
            with open(os.path.join(directory, entry)) as f:
                rows.append(json.load(f))
    order = list(order)
    rows.sort(key=lambda r: (order.index(r["scenario"]) if r.get("scenario") in order else len(order),
                             r.get("scenario", "")))
    if not rows:
        log("no lab results in %s (run: meson test -C BUILD --suite lab)" % directory)
        return 1
    log(format_table(rows))
    return 0


def run_scenarios(scenarios, argv):
    """Entry point: argv[1] names the scenario; exit 0 pass, 1 fail, 77 skip. `table` prints the last results."""
    if len(argv) == 2 and argv[1] == "table":
        return print_table(scenarios)
    if len(argv) != 2 or argv[1] not in scenarios:
        print("usage: %s SCENARIO|table\nscenarios: %s" % (argv[0], ", ".join(scenarios)), file=sys.stderr)
        return 2
    name = argv[1]
    log("== lab scenario %s (build %s)" % (name, BUILD))
    started = time.monotonic()
    try:
        row = scenarios[name]()
    except Skip as skip:
        log("SKIP %s: %s" % (name, skip))
        return SKIP
    except LabFailure as failure:
        log("FAIL %s after %.1f s: %s" % (name, time.monotonic() - started, failure))
        record_result({"scenario": name, "result": "FAIL"})
        return 1
    except SystemExit:
        log("INTERRUPTED %s after %.1f s" % (name, time.monotonic() - started))
        raise
    except Exception:
        import traceback
        traceback.print_exc(file=sys.stdout)
        log("FAIL %s after %.1f s (exception above)" % (name, time.monotonic() - started))
        record_result({"scenario": name, "result": "FAIL"})
        return 1
    finally:
        _cleanup_all()
    row = dict(row or {}, scenario=name, result="PASS (%.1f s)" % (time.monotonic() - started))
    record_result(row)
    log(format_table([row]))
    log("PASS %s in %.1f s" % (name, time.monotonic() - started))
    return 0
