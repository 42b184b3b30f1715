"""Process-level test harness for the rendezvous node and the terminal CLI.

Python 3 standard library only. Everything runs on 127.0.0.1 with port 0.
Every process started here is tracked by PID and killed (SIGKILL, by PID,
never by name) when the test ends, however it ends; every temporary directory
is removed. Every wait is bounded.

Environment: TSUNAGU_BUILD = the meson build directory holding
node/tsunagu-rendezvous and terminal/tsunagu.
"""

import atexit
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import zlib

BUILD = os.environ.get("TSUNAGU_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
RENDEZVOUS = os.path.join(BUILD, "node", "tsunagu-rendezvous")
TERMINAL = os.path.join(BUILD, "terminal", "tsunagu")

# Sanitizer builds are several times slower; every bound below is generous.
def _sanitized(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return b"__asan_init" in data or b"__ubsan_handle" in data
    except OSError:
        return False


SLOW = 3.0 if _sanitized(RENDEZVOUS) or _sanitized(TERMINAL) else 1.0
if os.environ.get("TSUNAGU_TEST_SLOW"):
    SLOW = float(os.environ["TSUNAGU_TEST_SLOW"])

CLI_TIMEOUT = 30 * SLOW        # one short CLI command (whereis, user add, ...)
READY_TIMEOUT = 20 * SLOW      # node start-up until the ready file appears
LOGIN_TIMEOUT = 20 * SLOW      # `tsunagu login` until it prints "logged in as"

SKIP = 77  # meson's "skipped" exit status


# --------------------------------------------------------------------------
# Process and directory bookkeeping

_processes = []   # every Popen we started
_directories = []  # every temporary directory we made
_deployments = []  # for dumping logs when a scenario fails
_sanitizer_reports = []  # AddressSanitizer/UBSan output seen in any process's output
# Passwords and private keys the scenario handed out: no log, no stderr or stdout
# of ours may hold one (docs/operator.md, "Audit log": never a password or a key).
_secrets = set()
_command_outputs = []  # (what, text) of the admin commands run through Deployment.admin
SECRET_MIN_LENGTH = 12  # shorter test passwords ("password1") are words a log may hold for other reasons


def note_secret(value):
    if isinstance(value, str) and len(value) >= SECRET_MIN_LENGTH:
        _secrets.add(value)


def note_private_key(path):
    """Each base64 line of a PEM private key: a leak of any part of it shows."""
    try:
        with open(path) as f:
            pem = f.read()
    except OSError:
        return
    for line in pem.splitlines():
        if not line.startswith("-----") and len(line) >= 32:
            _secrets.add(line)


def _secrets_in(where, text):
    for secret in _secrets:
        if secret in text:
            return "%s holds %r" % (where, secret[:6] + "..." if len(secret) > 24 else secret)
    return None

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def _note_sanitizer_output(where, output):
    for line in output.splitlines():
        if any(marker in line for marker in SANITIZER_MARKERS):
            _sanitizer_reports.append("%s: %s" % (where, line.strip()))
            return


def _cleanup():
    for proc in _processes:
        if proc.poll() is None:
            try:
                proc.kill()  # SIGKILL by PID; also ends a SIGSTOPped process
            except ProcessLookupError:
                pass
    for proc in _processes:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    _processes.clear()
    for directory in _directories:
        shutil.rmtree(directory, ignore_errors=True)
    _directories.clear()


atexit.register(_cleanup)


def _on_signal(signum, _frame):
    # meson sends SIGTERM on timeout: turn it into an exit so atexit runs.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def spawn(args, env=None, stdout=None, stderr=None):
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    _processes.append(proc)
    return proc


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    pass


def wait_until(predicate, timeout, interval=0.1, what="condition"):
    """Polls predicate() until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def log(*parts):
    print(*parts, flush=True)


class Checks:
    """Collects failed expectations so one run reports every problem it saw."""

    def __init__(self):
        self.failures = []

    def check(self, condition, message):
        if condition:
            log("  ok:", message)
        else:
            log("  FAIL:", message)
            self.failures.append(message)
        return condition

    def finish(self):
        if self.failures:
            raise TestFailure("%d check(s) failed:\n  - %s" % (len(self.failures), "\n  - ".join(self.failures)))


# --------------------------------------------------------------------------
# /proc helpers

def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise TestFailure("no VmRSS for pid %d" % pid)


def tcp_local_ports(pid, remote_port):
    """Local ports of the TCP sockets process `pid` has open to 127.0.0.1:remote_port."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    ports = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode in inodes and int(remote.split(":")[1], 16) == remote_port and state == "01":  # ESTABLISHED
                ports.append(int(local.split(":")[1], 16))
    return ports


# --------------------------------------------------------------------------
# STUN codec (RFC 8489 message format; constants from proto/signalling.hpp)

MAGIC_COOKIE = 0x2112A442
FINGERPRINT_XOR = 0x5354554E
HEADER_SIZE = 20

REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3

METHOD_BINDING = 0x001
METHOD_REGISTER = 0x801
METHOD_LOGIN = 0x802
METHOD_KEEPALIVE = 0x803
METHOD_LOGOUT = 0x804
METHOD_LOOKUP = 0x805
METHOD_NOTICE = 0x806

ATTR_MAPPED_ADDRESS = 0x0001
ATTR_ERROR_CODE = 0x0009
ATTR_UNKNOWN_ATTRIBUTES = 0x000A
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_SOFTWARE = 0x8022
ATTR_FINGERPRINT = 0x8028
ATTR_PROTOCOL_VERSION = 0xC001
ATTR_USER_ID = 0xC002
ATTR_PASSWORD = 0xC003
ATTR_REPORTED_ADDRESS = 0xC004
ATTR_OBSERVED_ADDRESS = 0xC005
ATTR_PRESENCE = 0xC006
ATTR_DISPLAY_NAME = 0xC007
ATTR_KEEPALIVE_INTERVAL = 0xC008
ATTR_LAST_SEEN = 0xC009
ATTR_LINK_ROLE = 0xC00A
ATTR_RETRY_AFTER = 0xC00D
ATTR_NOTICE_REASON = 0xC00E
ATTR_NOTICE_CODE = 0xC00F
NOTICE_SHUTTING_DOWN, NOTICE_PRESENCE_EXPIRED, NOTICE_NODE_FULL = 3, 4, 7

PROTOCOL_VERSION = 1
PRESENCE_ONLINE = 1


def message_type(method, cls):
    return ((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


def split_message_type(value):
    method = (value & 0x000F) | ((value & 0x00E0) >> 1) | ((value & 0x3E00) >> 2)
    cls = ((value >> 4) & 1) | ((value >> 7) & 2)
    return method, cls


def _pad(value):
    return value + b"\0" * (-len(value) % 4)


def u32(value):
    return struct.pack("!I", value)


def text(value):
    return value.encode("utf-8") if isinstance(value, str) else value


def xor_address(ip, port):
    """XOR address value (IPv4) keyed with the magic cookie."""
    raw = socket.inet_aton(ip)
    cookie = struct.pack("!I", MAGIC_COOKIE)
    return struct.pack("!BBH", 0, 1, port ^ (MAGIC_COOKIE >> 16)) + bytes(a ^ b for a, b in zip(raw, cookie))


def encode(method, cls, attributes=(), transaction_id=None, fingerprint=True, classic=False,
           corrupt_fingerprint=False):
    """Builds a message; attributes are (type, bytes) pairs. Classic = RFC 3489 (16-byte ID, no cookie)."""
    if transaction_id is None:
        transaction_id = secrets.token_bytes(16 if classic else 12)
    body = b"".join(struct.pack("!HH", t, len(v)) + _pad(v) for t, v in attributes)
    mtype = message_type(method, cls)
    if classic:
        assert len(transaction_id) == 16
        return struct.pack("!HH", mtype, len(body)) + transaction_id + body
    assert len(transaction_id) == 12
    if fingerprint:
        header = struct.pack("!HHI", mtype, len(body) + 8, MAGIC_COOKIE) + transaction_id
        crc = (zlib.crc32(header + body) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
        if corrupt_fingerprint:
            crc ^= 0x00010000
        return header + body + struct.pack("!HHI", ATTR_FINGERPRINT, 4, crc)
    return struct.pack("!HHI", mtype, len(body), MAGIC_COOKIE) + transaction_id + body


class Message:
    def __init__(self, method, cls, transaction_id, attributes, classic, fingerprint_ok, raw):
        self.method = method
        self.cls = cls
        self.transaction_id = transaction_id
        self.attributes = attributes  # list of (type, value bytes) in order
        self.classic = classic
        self.fingerprint_ok = fingerprint_ok  # None when absent
        self.raw = raw

    def get(self, attr_type):
        for t, v in self.attributes:
            if t == attr_type:
                return v
        return None

    def get_all(self, attr_type):
        return [v for t, v in self.attributes if t == attr_type]

    def u32(self, attr_type):
        v = self.get(attr_type)
        return struct.unpack("!I", v)[0] if v is not None and len(v) == 4 else None

    def u64(self, attr_type):
        v = self.get(attr_type)
        return struct.unpack("!Q", v)[0] if v is not None and len(v) == 8 else None

    def error(self):
        """(code, reason) from ERROR-CODE, or None."""
        v = self.get(ATTR_ERROR_CODE)
        if v is None or len(v) < 4:
            return None
        return (v[2] & 7) * 100 + v[3], v[4:].decode("utf-8", "replace")

    def xor_address(self, attr_type=ATTR_XOR_MAPPED_ADDRESS):
        v = self.get(attr_type)
        return decode_xor_address(v) if v is not None else None

    def __repr__(self):
        return "Message(method=0x%03x, class=%d, attributes=%s)" % (
            self.method, self.cls, ["0x%04x" % t for t, _ in self.attributes])


def decode_address(value):
    family, port = value[1], struct.unpack("!H", value[2:4])[0]
    if family != 1 or len(value) != 8:
        raise TestFailure("not an IPv4 address attribute: %r" % value)
    return socket.inet_ntoa(value[4:8]), port


def decode_xor_address(value):
    ip, port = decode_address(value)
    raw = bytes(a ^ b for a, b in zip(socket.inet_aton(ip), struct.pack("!I", MAGIC_COOKIE)))
    return socket.inet_ntoa(raw), port ^ (MAGIC_COOKIE >> 16)


def decode(data):
    """Decodes one whole message (raises TestFailure when malformed)."""
    if len(data) < HEADER_SIZE:
        raise TestFailure("message shorter than a STUN header: %d bytes" % len(data))
    mtype, length = struct.unpack("!HH", data[:4])
    if mtype & 0xC000:
        raise TestFailure("first two bits are not 0")
    cookie = struct.unpack("!I", data[4:8])[0]
    classic = cookie != MAGIC_COOKIE
    transaction_id = data[4:20] if classic else data[8:20]
    if length % 4 or HEADER_SIZE + length != len(data):
        raise TestFailure("length field %d does not match %d bytes" % (length, len(data)))
    attributes = []
    offset = HEADER_SIZE
    fingerprint_ok = None
    while offset < len(data):
        if offset + 4 > len(data):
            raise TestFailure("attribute header overruns the message")
        t, n = struct.unpack("!HH", data[offset:offset + 4])
        value = data[offset + 4:offset + 4 + n]
        if len(value) != n:
            raise TestFailure("attribute 0x%04x overruns the message" % t)
        if t == ATTR_FINGERPRINT:
            expected = (zlib.crc32(data[:offset]) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
            fingerprint_ok = (n == 4 and struct.unpack("!I", value)[0] == expected
                              and offset + 8 == len(data))
        attributes.append((t, value))
        offset += 4 + n + (-n % 4)
    method, cls = split_message_type(mtype)
    return Message(method, cls, transaction_id, attributes, classic, fingerprint_ok, data)


# --------------------------------------------------------------------------
# Raw clients

def udp_exchange(server, payload, timeout=5.0, sock=None):
    """Sends one datagram to server (host, port) and returns (reply bytes or None, our address)."""
    own = sock is None
    if own:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
    try:
        sock.settimeout(timeout)
        sock.sendto(payload, server)
        try:
            data, _ = sock.recvfrom(65535)
        except socket.timeout:
            data = None
        return data, sock.getsockname()
    finally:
        if own:
            sock.close()


class RawTls:
    """A TLS link to the node speaking raw STUN-format frames."""

    def __init__(self, node, timeout=10.0, source=None):
        """source: a local address to connect from (another loopback 'host', e.g. "127.0.0.2")."""
        context = ssl.create_default_context(cafile=node.ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        raw = socket.create_connection(node.tls, timeout=timeout, source_address=(source, 0) if source else None)
        try:
            self.sock = context.wrap_socket(raw, server_hostname=node.tls[0])
        except Exception:
            raw.close()
            raise
        self.sock.settimeout(timeout)
        self.buffer = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _read(self, count, deadline):
        while len(self.buffer) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("no message in time")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the node closed the link")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def receive(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        header = self._read(HEADER_SIZE, deadline)
        length = struct.unpack("!H", header[2:4])[0]
        return decode(header + self._read(length, deadline))

    def request(self, method, attributes=(), version=PROTOCOL_VERSION, timeout=30.0):
        """Sends a request and returns the response with its transaction ID (skipping indications)."""
        attrs = list(attributes)
        if version is not None:
            attrs.insert(0, (ATTR_PROTOCOL_VERSION, u32(version)))
        tid = secrets.token_bytes(12)
        self.send(encode(method, REQUEST, attrs, tid))
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(max(0.1, deadline - time.monotonic()))
            if message.transaction_id == tid and message.cls in (SUCCESS, ERROR):
                return message

    def login(self, user, password, role=0, timeout=30.0):
        note_secret(password)
        return self.request(METHOD_LOGIN, [(ATTR_USER_ID, text(user)), (ATTR_PASSWORD, text(password)),
                                           (ATTR_LINK_ROLE, u32(role))], timeout=timeout)

    def wait_closed(self, timeout):
        """True when the node closes the link (EOF or reset) within timeout; messages before that are kept."""
        deadline = time.monotonic() + timeout
        received = []
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False, received
            except (ConnectionError, ssl.SSLError, OSError):
                return True, received
            if not chunk:
                return True, received
            received.append(chunk)
        return False, received


def notices_in(raw, chunks, codes=None):
    """NOTICE-REASON texts of the notice indications among bytes read by RawTls.wait_closed;
    their NOTICE-CODEs are appended to `codes` when it is given (None for a notice without one)."""
    data = raw.buffer + b"".join(chunks)
    raw.buffer = b""
    reasons = []
    while len(data) >= HEADER_SIZE:
        length = struct.unpack("!H", data[2:4])[0]
        if len(data) < HEADER_SIZE + length:
            break
        message = decode(data[:HEADER_SIZE + length])
        data = data[HEADER_SIZE + length:]
        if message.method == METHOD_NOTICE and message.cls == INDICATION:
            reasons.append((message.get(ATTR_NOTICE_REASON) or b"").decode("utf-8", "replace"))
            if codes is not None:
                codes.append(message.u32(ATTR_NOTICE_CODE))
    return reasons


def plain_tcp_closed(address, payload, timeout):
    """Sends payload in clear over TCP; returns (closed by peer in time, bytes received, our port)."""
    sock = socket.create_connection(address, timeout=timeout)
    port = sock.getsockname()[1]
    received = b""
    try:
        try:
            sock.sendall(payload)
        except (ConnectionError, OSError):
            return True, received, port
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                return False, received, port
            except (ConnectionError, OSError):
                return True, received, port
            if not chunk:
                return True, received, port
            received += chunk
        return False, received, port
    finally:
        sock.close()


# --------------------------------------------------------------------------
# Deployments, nodes and terminals

def _edit_toml(path, section, key, value):
    """Sets `key = value` (value is TOML text) in [section], adding the line when missing."""
    with open(path) as f:
        lines = f.read().splitlines()
    current = None
    header_index = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        m = re.match(r"^\[([^\]]+)\]", stripped)
        if m:
            current = m.group(1).strip()
            if current == section:
                header_index = i
            continue
        if current == section and re.match(r"^%s\s*=" % re.escape(key), stripped):
            lines[i] = "%s = %s" % (key, value)
            break
    else:
        if header_index is None:
            lines += ["", "[%s]" % section, "%s = %s" % (key, value)]
        else:
            lines.insert(header_index + 1, "%s = %s" % (key, value))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class Node:
    def __init__(self, deployment, proc, ready, log_path):
        self.deployment = deployment
        self.proc = proc
        self.pid = proc.pid
        self.log_path = log_path
        host, port = ready["tls"].rsplit(":", 1)
        self.tls = (host, int(port))
        host, port = ready["stun"].rsplit(":", 1)
        self.stun = (host, int(port))
        self.agent_address = ready.get("agent")  # host:port for LAN agents, when listening for them
        self.web = ready.get("web")  # host:port of the HTTPS listener, when it is on
        self.ca = deployment.ca
        if ready.get("pid") != proc.pid:
            raise TestFailure("ready file pid %r is not the node's pid %d" % (ready.get("pid"), proc.pid))

    @property
    def address(self):
        return "%s:%d" % self.tls

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, signum=signal.SIGTERM, timeout=10.0):
        """Sends signum and waits; returns the exit status (None when it did not exit in time)."""
        if self.proc.poll() is None:
            os.kill(self.pid, signum)
        try:
            return self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


class Result:
    def __init__(self, completed):
        self.code = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr
        _note_sanitizer_output(" ".join(os.path.basename(a) for a in completed.args[:2]), self.err)

    def __repr__(self):
        return "exit %d, stdout %r, stderr %r" % (self.code, self.out, self.err)

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError:
            raise TestFailure("not JSON: %r" % self.out)


class Terminal:
    """A running `tsunagu login`."""

    def __init__(self, proc, user, out_path, err_path):
        self.proc = proc
        self.pid = proc.pid
        self.user = user
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
        return self.proc.poll() is None

    def observed(self):
        """(ip, port) from the latest 'the node sees you at IP:PORT' line."""
        found = re.findall(r"the node sees you at ([0-9.]+):(\d+)", self.out())
        return (found[-1][0], int(found[-1][1])) if found else None

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, signum):
        if self.proc.poll() is None:
            os.kill(self.pid, signum)

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)


_run_help = None


def _run_supports(option):
    global _run_help
    if _run_help is None:
        _run_help = subprocess.run([RENDEZVOUS, "run", "--help"], stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=CLI_TIMEOUT).stdout
    return option in _run_help


def subcommands(program_and_path):
    """Subcommand names listed in a CLI11 --help output."""
    out = subprocess.run(program_and_path + ["--help"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=CLI_TIMEOUT).stdout
    names, inside = [], False
    for line in out.splitlines():
        if line.strip() == "Subcommands:":
            inside = True
            continue
        if inside:
            if not line.strip():
                break
            names.append(line.split()[0])
    return names


class Deployment:
    """A temporary deployment directory made with `tsunagu-rendezvous init`."""

    def __init__(self, **settings):
        for program in (RENDEZVOUS, TERMINAL):
            if not os.access(program, os.X_OK):
                raise TestFailure("%s is not built (set TSUNAGU_BUILD)" % program)
        self.root = tempfile.mkdtemp(prefix="tsunagu-int-")
        _directories.append(self.root)
        self.dir = os.path.join(self.root, "deployment")
        result = self.admin(["init", self.dir])
        if result.code != 0:
            raise TestFailure("init failed: %r" % result)
        self.ca = os.path.join(self.dir, "ca.crt")
        self.config = os.path.join(self.dir, "node.toml")
        for key in ("node.key", "ca.key"):
            note_private_key(os.path.join(self.dir, key))
        # Loopback only, ports picked by the kernel, for every listener the node has.
        with open(self.config) as f:
            keys = re.findall(r"^\s*(\w+)\s*=", f.read(), re.M)
        for key in ("listen", "stun_listen", "agent_listen"):
            if key in keys:
                self.set("node", key, '"127.0.0.1:0"')
        if re.search(r"^\[web\]", open(self.config).read(), re.M):
            self.set("web", "listen", '"127.0.0.1:0"')
        # The cheapest scrypt cost and SCRAM iterations the node accepts (the
        # test harness's setting; production keeps scram_iterations >= 600000):
        # these tests are not about hashing.
        self.set("passwords", "scrypt_log2_n", "14")
        self.set("passwords", "scram_iterations", "4096")
        for name, value in settings.items():
            section, key = name.split("__", 1)
            self.set(section, key, value)
        self.node = None
        self._counter = 0
        _deployments.append(self)

    def set(self, section, key, value):
        _edit_toml(self.config, section, key, value if isinstance(value, str) else json.dumps(value))

    def path(self, name):
        return os.path.join(self.root, name)

    def _next(self, stem):
        self._counter += 1
        return self.path("%s-%d" % (stem, self._counter))

    # -- admin CLI ----------------------------------------------------------

    def admin(self, args, password=None, timeout=CLI_TIMEOUT):
        env = dict(os.environ)
        env.pop("TSUNAGU_PASSWORD", None)
        env.pop("TSUNAGU_DIR", None)
        if password is not None:
            env["TSUNAGU_PASSWORD"] = password
            note_secret(password)
        result = Result(subprocess.run([RENDEZVOUS] + args, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                       text=True, timeout=timeout))
        _command_outputs.append((" ".join(["tsunagu-rendezvous"] + args[:2]), result.out + result.err))
        return result

    def add_user(self, user, password, expect=0):
        result = self.admin(["user", "-d", self.dir, "add", user], password=password)
        if expect is not None and result.code != expect:
            raise TestFailure("user add %s: expected exit %d, got %r" % (user, expect, result))
        return result

    # -- the node -------------------------------------------------------------

    def start_node(self, listen="127.0.0.1:0", stun_listen="127.0.0.1:0", prefix=(), ready=None):
        """prefix: a command the node runs under (setpriv as another user); ready:
        where it writes its ready file (one that user may write)."""
        ready = ready or self._next("ready") + ".json"
        log_path = self._next("node") + ".log"
        args = list(prefix) + [RENDEZVOUS, "run", "-d", self.dir, "--listen", listen, "--stun-listen", stun_listen,
                "--ready-file", ready, "--log-level", "debug"]
        if _run_supports("--agent-listen"):
            args += ["--agent-listen", "127.0.0.1:0"]
        with open(log_path, "w") as log_file:
            proc = spawn(args, stdout=log_file, stderr=subprocess.STDOUT)

        def ready_now():
            if proc.poll() is not None:
                with open(log_path, errors="replace") as f:
                    raise TestFailure("node exited with %d before it was ready:\n%s" % (proc.returncode, f.read()))
            try:
                with open(ready) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None

        data = wait_until(ready_now, READY_TIMEOUT, 0.05, "the node's ready file")
        self.node = Node(self, proc, data, log_path)
        return self.node

    # -- the terminal CLI -------------------------------------------------------

    def terminal_env(self, user, password, node=None):
        node = node or self.node
        env = dict(os.environ)
        for name in ("TSUNAGU_NODE", "TSUNAGU_CA", "TSUNAGU_USER", "TSUNAGU_PASSWORD"):
            env.pop(name, None)
        env["TSUNAGU_NODE"] = node.address
        env["TSUNAGU_CA"] = self.ca
        if user is not None:
            env["TSUNAGU_USER"] = user
        if password is not None:
            env["TSUNAGU_PASSWORD"] = password
            note_secret(password)
        return env

    def cli(self, args, user=None, password=None, node=None, timeout=CLI_TIMEOUT):
        env = self.terminal_env(user, password, node)
        return Result(subprocess.run([TERMINAL] + args, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                     text=True, timeout=timeout))

    def whereis(self, asker, password, target, json_output=True):
        args = ["whereis", target] + (["--json"] if json_output else [])
        return self.cli(args, asker, password)

    def start_login(self, user, password, node=None, wait=True):
        out_path = self._next("login-%s" % user) + ".out"
        err_path = out_path[:-4] + ".err"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = spawn([TERMINAL, "login"], env=self.terminal_env(user, password, node), stdout=out, stderr=err)
        terminal = Terminal(proc, user, out_path, err_path)
        if wait:
            self.wait_logged_in(terminal)
        return terminal

    def wait_logged_in(self, terminal, count=1, timeout=LOGIN_TIMEOUT):
        def logged_in():
            if terminal.out().count("logged in as %s" % terminal.user) >= count:
                return True
            if not terminal.alive():
                raise TestFailure("`tsunagu login` as %s exited with %d: stdout %r stderr %r" % (
                    terminal.user, terminal.proc.returncode, terminal.out(), terminal.err()))
            return False
        wait_until(logged_in, timeout, 0.05, "`tsunagu login` as %s to log in" % terminal.user)


def _dump_logs(lines=40):
    for deployment in _deployments:
        for entry in sorted(os.listdir(deployment.root)):
            if entry.endswith((".log", ".out", ".err")):
                with open(os.path.join(deployment.root, entry), errors="replace") as f:
                    tail = f.read().splitlines()[-lines:]
                if tail:
                    log("---- %s (last %d lines)" % (entry, len(tail)))
                    log("\n".join(tail))


def _scan_logs():
    leaks = []
    for deployment in _deployments:
        for name in ("agent.key",):  # keys of bundles `agent enroll` wrote into the deployment's root
            for entry in os.listdir(deployment.root):
                note_private_key(os.path.join(deployment.root, entry, name))
        for entry in sorted(os.listdir(deployment.root)):
            if entry.endswith((".log", ".err", ".out")):
                with open(os.path.join(deployment.root, entry), errors="replace") as f:
                    text = f.read()
                if entry.endswith((".log", ".err")):
                    _note_sanitizer_output(entry, text)
                leak = _secrets_in(entry, text)
                if leak:
                    leaks.append(leak)
    for what, text in _command_outputs:
        leak = _secrets_in("the output of `%s`" % what, text)
        if leak:
            leaks.append(leak)
    if leaks:
        raise TestFailure("a password or private key in the logs: " + "; ".join(leaks))


def run_scenarios(scenarios, argv):
    """Entry point: runs the scenario named in argv[1]; exit 0 pass, 1 fail, 77 skip."""
    if len(argv) != 2 or argv[1] not in scenarios:
        print("usage: %s SCENARIO\nscenarios: %s" % (argv[0], ", ".join(sorted(scenarios))), file=sys.stderr)
        return 2
    name = argv[1]
    log("== scenario %s (build %s)" % (name, BUILD))
    started = time.monotonic()
    try:
        scenarios[name]()
        _scan_logs()
        if _sanitizer_reports:
            raise TestFailure("sanitizer reports:\n  " + "\n  ".join(_sanitizer_reports))
    except Skip as skip:
        log("SKIP %s: %s" % (name, skip))
        return SKIP
    except TestFailure as failure:
        log("FAIL %s after %.1f s: %s" % (name, time.monotonic() - started, failure))
        _dump_logs()
        return 1
    except SystemExit:  # SIGTERM (e.g. meson's timeout): say so, show the logs, clean up
        log("INTERRUPTED %s after %.1f s" % (name, time.monotonic() - started))
        _dump_logs()
        raise
    except Exception:  # an unexpected error in the test itself or a raw client
        import traceback
        traceback.print_exc(file=sys.stdout)
        log("FAIL %s after %.1f s (exception above)" % (name, time.monotonic() - started))
        _dump_logs()
        return 1
    finally:
        _cleanup()
    log("PASS %s in %.1f s" % (name, time.monotonic() - started))
    return 0


# --------------------------------------------------------------------------
# Calls (appended for call_test.py): raw call clients, CLI call processes,
# coturn and a minimal TURN client. Constants from proto/signalling.hpp.

METHOD_CALL = 0x820
METHOD_RING = 0x821
METHOD_CALL_EVENT = 0x822
METHOD_HANGUP = 0x823
METHOD_TURN_CREDENTIALS = 0x824
METHOD_CALL_CANDIDATE = 0x825
METHOD_CALL_PATH = 0x860  # indication: the ICE path a party selected (ATTR_ICE_PATH)
ATTR_ICE_PATH = 0xC0A0

ATTR_SERVICES = 0xC00B
ATTR_CALLER_ID = 0xC012
ATTR_CALL_ID = 0xC020
ATTR_ICE_DESCRIPTION = 0xC021
ATTR_KEY_MATERIAL = 0xC022
ATTR_CALL_STATE = 0xC023
ATTR_END_CODE = 0xC024
ATTR_TURN_SERVER = 0xC025
ATTR_TURN_USERNAME = 0xC026
ATTR_TURN_PASSWORD = 0xC027
ATTR_STUN_SERVER = 0xC028
ATTR_TURN_LIFETIME = 0xC02A
ATTR_CALL_MEDIA = 0xC02B

CALL_RINGING, CALL_ACCEPTED, CALL_ENDED = 0, 1, 2
PRESENCE_IN_CALL = 2


def error_code_value(code, reason=""):
    """ERROR-CODE attribute value (RFC 8489 section 14.8)."""
    return struct.pack("!HBB", 0, code // 100, code % 100) + text(reason)


class CallClient(RawTls):
    """A raw TLS link that logs in and speaks the call methods; keeps every message it did not wait for."""

    def __init__(self, node, timeout=10.0):
        super().__init__(node, timeout)
        self.inbox = []

    def request(self, method, attributes=(), version=PROTOCOL_VERSION, timeout=30.0):
        attrs = list(attributes)
        if version is not None:
            attrs.insert(0, (ATTR_PROTOCOL_VERSION, u32(version)))
        tid = secrets.token_bytes(12)
        self.send(encode(method, REQUEST, attrs, tid))
        return self.wait_for(lambda m: m.transaction_id == tid and m.cls in (SUCCESS, ERROR), timeout,
                             "the response to method 0x%03x" % method)

    def wait_for(self, predicate, timeout, what="a message"):
        """Returns the first message (kept or new) matching predicate; others stay in the inbox."""
        for i, message in enumerate(self.inbox):
            if predicate(message):
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TestFailure("timed out after %.1f s waiting for %s (kept: %r)" % (timeout, what, self.inbox))
            try:
                message = self.receive(remaining)
            except socket.timeout:
                raise TestFailure("timed out after %.1f s waiting for %s (kept: %r)" % (timeout, what, self.inbox))
            if predicate(message):
                return message
            self.inbox.append(message)

    def quiet_for(self, predicate, seconds):
        """True when no message matching predicate arrives (or is kept) within seconds."""
        try:
            self.wait_for(predicate, seconds)
        except TestFailure:
            return True
        return False

    def login_presence(self, user, password):
        response = self.login(user, password, role=0)
        if response.cls != SUCCESS:
            raise TestFailure("raw login as %s refused: %r" % (user, response.error()))
        return response

    def call(self, callee, offer="raw-offer ufrag pwd", media=1):
        return self.request(METHOD_CALL, [(ATTR_USER_ID, text(callee)), (ATTR_ICE_DESCRIPTION, text(offer)),
                                          (ATTR_CALL_MEDIA, u32(media))])

    def hangup(self, call_id):
        return self.request(METHOD_HANGUP, [(ATTR_CALL_ID, text(call_id))])

    def wait_ring(self, timeout):
        return self.wait_for(lambda m: m.method == METHOD_RING and m.cls == REQUEST, timeout, "a ring")

    def answer(self, ring, description="raw-answer ufrag pwd"):
        self.send(encode(METHOD_RING, SUCCESS, [(ATTR_PROTOCOL_VERSION, u32(PROTOCOL_VERSION)),
                                                (ATTR_ICE_DESCRIPTION, text(description))], ring.transaction_id))

    def refuse(self, ring, code, reason="refused"):
        self.send(encode(METHOD_RING, ERROR, [(ATTR_PROTOCOL_VERSION, u32(PROTOCOL_VERSION)),
                                              (ATTR_ERROR_CODE, error_code_value(code, reason))], ring.transaction_id))

    def wait_event(self, call_id, state, timeout):
        def match(m):
            return (m.method == METHOD_CALL_EVENT and m.cls == INDICATION and m.get(ATTR_CALL_ID) == text(call_id)
                    and m.u32(ATTR_CALL_STATE) == state)
        return self.wait_for(match, timeout, "call_event state %d for call %s" % (state, call_id))


def call_id_of(message):
    value = message.get(ATTR_CALL_ID)
    return value.decode("utf-8", "replace") if value is not None else None


def write_agent_toml(bundle, node_address, domain="acme", server_name="127.0.0.1"):
    """agent.toml for a LAN agent enrolled into `bundle` (`agent enroll --out`): linked to the node's
    agent port at node_address, quick heartbeats and reconnects, one table rule; returns its path."""
    path = os.path.join(bundle, "agent.toml")
    with open(path, "w") as f:
        f.write("""[node]
address = "%s"
server_name = "%s"
ca_certificate = "ca.crt"
certificate = "agent.crt"
private_key = "agent.key"
heartbeat_interval = 2
request_timeout = 5
reconnect_min_ms = 100
reconnect_max_ms = 1000

[agent]
name = "%s"
domains = ["%s"]
data_directory = "%s/data"
log_level = "debug"

[table]
hostname_rule = "ext{ext}"

[hook]
socket = "%s/hook.sock"
spool_directory = "%s/spool"
""" % (node_address, server_name, domain, domain, bundle, bundle, bundle))
    return path


def spawn_cli(deployment, args, user, password, stdin=None, binary_stdout=False, wrapper=(), node=None):
    """Starts `tsunagu ARGS` with stdout/stderr in files of the deployment; returns a Terminal.
    stdin: None (= /dev/null), a path to read from, or subprocess.PIPE (then Terminal.proc.stdin is ours).
    binary_stdout: stdout goes to a .bin file, which a failing scenario's log dump leaves out.
    wrapper: a command prefix (`ip netns exec NS`, which execs: the PID is the terminal's);
    node: what has .address for TSUNAGU_NODE (default: the deployment's node)."""
    stem = deployment._next("%s-%s" % (args[0], user))
    out_path, err_path = stem + (".bin" if binary_stdout else ".out"), stem + ".err"
    if stdin is None:
        stdin_arg = subprocess.DEVNULL
    elif stdin == subprocess.PIPE:
        stdin_arg = subprocess.PIPE
    else:
        stdin_arg = open(stdin, "rb")
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(list(wrapper) + [TERMINAL] + args, env=deployment.terminal_env(user, password, node),
                                    stdin=stdin_arg,
                                    stdout=out, stderr=err)
    finally:
        if stdin_arg not in (subprocess.DEVNULL, subprocess.PIPE):
            stdin_arg.close()
    _processes.append(proc)
    return Terminal(proc, user, out_path, err_path)


def free_udp_port():
    """A port on 127.0.0.1 that was free a moment ago for both UDP and TCP."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise TestFailure("no port free for both UDP and TCP on 127.0.0.1")


# -- a minimal STUN/TURN client (RFC 8489 / RFC 8656) for coturn -----------------

METHOD_ALLOCATE = 0x003
METHOD_REFRESH = 0x004
ATTR_USERNAME = 0x0006
ATTR_MESSAGE_INTEGRITY = 0x0008
ATTR_LIFETIME = 0x000D
ATTR_REALM = 0x0014
ATTR_NONCE = 0x0015
ATTR_XOR_RELAYED_ADDRESS = 0x0016
ATTR_REQUESTED_TRANSPORT = 0x0019


def encode_with_integrity(method, cls, attributes, key, transaction_id=None):
    """A message with MESSAGE-INTEGRITY (HMAC-SHA1 with key) and FINGERPRINT."""
    import hmac
    import hashlib
    if transaction_id is None:
        transaction_id = secrets.token_bytes(12)
    body = b"".join(struct.pack("!HH", t, len(v)) + _pad(v) for t, v in attributes)
    mtype = message_type(method, cls)
    # The length covers MESSAGE-INTEGRITY while it is computed (RFC 8489 14.5).
    header = struct.pack("!HHI", mtype, len(body) + 24, MAGIC_COOKIE) + transaction_id
    mac = hmac.new(key, header + body, hashlib.sha1).digest()
    body += struct.pack("!HH", ATTR_MESSAGE_INTEGRITY, 20) + mac
    header = struct.pack("!HHI", mtype, len(body) + 8, MAGIC_COOKIE) + transaction_id
    crc = (zlib.crc32(header + body) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    return header + body + struct.pack("!HHI", ATTR_FINGERPRINT, 4, crc)


def turn_rest_credentials(secret, user, expiry_unix):
    """coturn's TURN REST API credentials: (username, password)."""
    import base64
    import hmac
    import hashlib
    username = "%d:%s" % (expiry_unix, user)
    password = base64.b64encode(hmac.new(text(secret), text(username), hashlib.sha1).digest()).decode()
    return username, password


def turn_allocate(server, username, password, timeout=5.0):
    """The long-term-credential dance over UDP: Allocate -> 401 (REALM, NONCE) -> Allocate with
    MESSAGE-INTEGRITY. Returns (first response, second response); releases a granted allocation."""
    import hashlib
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        transport = [(ATTR_REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))]  # UDP
        data, _ = udp_exchange(server, encode(METHOD_ALLOCATE, REQUEST, transport), timeout, sock)
        if data is None:
            raise TestFailure("coturn did not answer the first Allocate")
        first = decode(data)
        realm, nonce = first.get(ATTR_REALM), first.get(ATTR_NONCE)
        if realm is None or nonce is None:
            return first, None
        key = hashlib.md5(text(username) + b":" + realm + b":" + text(password)).digest()
        attrs = transport + [(ATTR_USERNAME, text(username)), (ATTR_REALM, realm), (ATTR_NONCE, nonce)]
        data, _ = udp_exchange(server, encode_with_integrity(METHOD_ALLOCATE, REQUEST, attrs, key), timeout, sock)
        if data is None:
            raise TestFailure("coturn did not answer the authenticated Allocate")
        second = decode(data)
        if second.cls == SUCCESS:  # release it: Refresh with LIFETIME 0
            attrs = [(ATTR_LIFETIME, u32(0)), (ATTR_USERNAME, text(username)), (ATTR_REALM, realm),
                     (ATTR_NONCE, nonce)]
            udp_exchange(server, encode_with_integrity(METHOD_REFRESH, REQUEST, attrs, key), timeout, sock)
        return first, second


class Coturn:
    """A real coturn (`turnserver`) on 127.0.0.1 with a temporary config; stopped by PID."""

    def __init__(self, secret, realm="tsunagu.test", directory=None, allow_loopback_peers=True):
        self.binary = shutil.which("turnserver") or next(
            (p for p in ("/usr/bin/turnserver", "/usr/sbin/turnserver") if os.access(p, os.X_OK)), None)
        if self.binary is None:
            raise Skip("coturn is not installed (no `turnserver`; Debian package coturn, see scripts/install-deps.sh)")
        self.secret = secret
        self.realm = realm
        self.root = tempfile.mkdtemp(prefix="coturn-", dir=directory)  # under a deployment: its log is dumped
        _directories.append(self.root)
        self.directory = directory
        # Off: coturn refuses (403) to relay to 127.0.0.1, where every peer of a loopback test is.
        self.allow_loopback_peers = allow_loopback_peers
        self.config = os.path.join(self.root, "turnserver.conf")
        self.proc = None
        self._configure()

    def _configure(self):
        """Picks a listening port and a relay port range and writes the config."""
        self.port = free_udp_port()
        base = 20000 + secrets.randbelow(400) * 100  # 20000..59900: a private relay port range
        self.min_port, self.max_port = base, base + 99
        self.log_path = (os.path.join(self.directory, "coturn-%d.log" % self.port) if self.directory
                         else os.path.join(self.root, "turnserver-%d.log" % self.port))
        secret, realm = self.secret, self.realm
        lines = [
            "listening-ip=127.0.0.1", "relay-ip=127.0.0.1", "listening-port=%d" % self.port,
            "min-port=%d" % self.min_port, "max-port=%d" % self.max_port,
            "use-auth-secret", "static-auth-secret=%s" % secret, "realm=%s" % realm,
            "fingerprint", "no-tls", "no-dtls", "no-tcp", "no-cli", "no-tcp-relay",
            "log-file=stdout", "simple-log",
            "pidfile=%s" % os.path.join(self.root, "turnserver.pid"),
            "userdb=%s" % os.path.join(self.root, "turndb.sqlite"),
        ]
        if self.allow_loopback_peers:
            lines.append("allow-loopback-peers")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def address(self):
        return ("127.0.0.1", self.port)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self, attempts=3):
        """Starts coturn; picks another port when the chosen one was taken meanwhile."""
        for attempt in range(attempts):
            if attempt:
                self._configure()
            with open(self.log_path, "w") as log_file:
                self.proc = spawn([self.binary, "-c", self.config], stdout=log_file, stderr=subprocess.STDOUT)

            def answering():
                if self.proc.poll() is not None:
                    raise TestFailure("turnserver exited with %d:\n%s" % (self.proc.returncode, self.log_text()[-3000:]))
                if "Address already in use" in self.log_text():
                    return "taken"
                reply, _ = udp_exchange(self.address, encode(METHOD_BINDING, REQUEST), timeout=0.3)
                return "up" if reply is not None else None
            state = wait_until(answering, 15 * SLOW, 0.1, "coturn to answer a Binding request on 127.0.0.1:%d" % self.port)
            if state == "up":
                return self
            log("  coturn could not bind 127.0.0.1:%d (taken meanwhile); trying another port" % self.port)
            self.stop()
        raise TestFailure("coturn could not bind a port in %d attempts" % attempts)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # by PID
            self.proc.wait(timeout=10)
