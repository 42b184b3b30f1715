#!/usr/bin/env python3
"""Browser scenarios for the node's web pages (docs/web.md, "Pages").

A real tsunagu-rendezvous with its web listener on 127.0.0.1, real `tsunagu login`
terminals, and Debian's Chromium driven by playwright-core (tests/browser/pages.mjs),
with axe-core run on every page it visits. This script prepares the deployment and
the users, runs one scenario of pages.mjs, and checks what the scenario leaves
behind outside the browser (a voicemail arriving at `tsunagu login --mailbox`).

Run one scenario:  TSUNAGU_BUILD=build python3 tests/browser/browser_test.py SCENARIO
Each scenario is its own meson test (suite 'browser'); exit 77 = skipped (no
Chromium, no Node.js/npm, or the npm packages cannot be installed).

Environment:
  TSUNAGU_BUILD              the meson build directory
  TSUNAGU_BROWSER_NPM        where `npm ci` installs tests/browser/package-lock.json
                             (default BUILD/tests/browser/npm)
  TSUNAGU_BROWSER_ARTEFACTS  where screenshots go (default BUILD/meson-logs/browser)
  TSUNAGU_CHROMIUM           the browser (default /usr/bin/chromium)
"""

import contextlib
import fcntl
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness as h  # noqa: E402
from harness import Deployment, Skip, TestFailure, log, wait_until  # noqa: E402

CHROMIUM = os.environ.get("TSUNAGU_CHROMIUM", "/usr/bin/chromium")
NPM_DIR = os.environ.get("TSUNAGU_BROWSER_NPM", os.path.join(h.BUILD, "tests", "browser", "npm"))
ARTEFACTS = os.environ.get("TSUNAGU_BROWSER_ARTEFACTS", os.path.join(h.BUILD, "meson-logs", "browser"))
NPM_TIMEOUT = 600
SCENARIO_TIMEOUT = 180 * h.SLOW

PASSWORD = "browser-pw-1"
ADMIN = "root"
ALICE, BOB, CAROL, DAVE = "alice", "bob", "carol", "dave"


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    log("  ok:", message)


# --------------------------------------------------------------------------
# What the browser side needs: Chromium, Node.js, and the npm packages

def require_tools():
    if not os.access(CHROMIUM, os.X_OK):
        raise Skip("no Chromium at %s (Debian package chromium; scripts/install-deps.sh test)" % CHROMIUM)
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Skip("no `%s` (Debian packages nodejs npm; scripts/install-deps.sh test)" % tool)


def install_npm_packages():
    """`npm ci` of tests/browser/package-lock.json into NPM_DIR, once per lock file.

    Parallel tests share the install, so it runs under a file lock; a finished
    install is stamped with the lock file it installed and not repeated."""
    os.makedirs(NPM_DIR, exist_ok=True)
    with open(os.path.join(HERE, "package-lock.json"), "rb") as f:
        lock = f.read()
    stamp = os.path.join(NPM_DIR, "installed-package-lock.json")
    with open(os.path.join(NPM_DIR, ".install.lock"), "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            with open(stamp, "rb") as f:
                if f.read() == lock and os.path.isdir(os.path.join(NPM_DIR, "node_modules", "playwright-core")):
                    return
        except OSError:
            pass
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(HERE, name), os.path.join(NPM_DIR, name))
        command = ["npm", "ci", "--prefix", NPM_DIR, "--prefer-offline", "--no-audit", "--no-fund",
                   "--loglevel", "error"]
        log("  installing the npm packages: %s" % " ".join(command))
        try:
            result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                    timeout=NPM_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Skip("`npm ci` did not finish in %d s (no registry and no cache?)" % NPM_TIMEOUT)
        if result.returncode != 0:
            raise Skip("`npm ci` failed (no registry and no cache?): %s" % (result.stderr or result.stdout)[-1500:])
        with open(stamp, "wb") as f:
            f.write(lock)


def fake_microphone(directory):
    """A spoken WAV file for Chromium's fake microphone (espeak-ng, resampled by sox);
    None when neither is installed: Chromium's own fake device then beeps."""
    wav = os.path.join(directory, "microphone.wav")
    spoken = os.path.join(directory, "spoken.wav")
    if shutil.which("espeak-ng") is None:
        return None
    text = "Hello, this is Alice leaving you a message from the web page. Please call me back."
    if subprocess.run(["espeak-ng", "-w", spoken, text], capture_output=True, timeout=60).returncode != 0:
        return None
    if shutil.which("sox") is None:
        return spoken
    if subprocess.run(["sox", spoken, "-r", "48000", "-c", "1", "-b", "16", wav], capture_output=True,
                      timeout=60).returncode != 0:
        return spoken
    return wav


# --------------------------------------------------------------------------
# The node with its web listener

class WebNode:
    """A deployment whose node listens for HTTPS on 127.0.0.1 (docs/web.md: [web] listen)."""

    def __init__(self, **settings):
        self.deployment = Deployment(node__open_registration=True, **settings)
        self.deployment.set("web", "listen", '"127.0.0.1:0"')  # the kernel picks; the ready file says which
        self.port = None
        self.url = None

    def add_user(self, user, admin=False):
        d = self.deployment
        args = ["user", "-d", d.dir, "add"] + (["--admin"] if admin else []) + [user]
        result = d.admin(args, password=PASSWORD)
        expect(result.code == 0, "account %s%s made (%r)" % (user, " (admin)" if admin else "", result))

    def profile(self, user, *words):
        d = self.deployment
        result = d.admin(["user", "-d", d.dir, "profile", user] + list(words))
        expect(result.code == 0, "%s's profile: %s (%r)" % (user, " ".join(words), result))

    def start(self):
        self.deployment.start_node()
        web = self.ready_web_address()
        if not web:
            raise TestFailure("the node's ready file names no web listener (\"web\"): is [web] listen wired?")
        self.port = int(web.rsplit(":", 1)[1])
        self.url = "https://127.0.0.1:%d" % self.port
        self.wait_web_ready()
        return self

    def ready_web_address(self):
        root = self.deployment.root
        readies = sorted((f for f in os.listdir(root) if f.startswith("ready-") and f.endswith(".json")),
                         key=lambda f: os.path.getmtime(os.path.join(root, f)))
        if not readies:
            return None
        with open(os.path.join(root, readies[-1])) as f:
            return json.load(f).get("web")

    def wait_web_ready(self):
        """Waits for the HTTPS listener and checks its certificate against the deployment's CA:
        the browser is told to ignore certificate errors (docs/web.md says why), so this is
        where the certificate chain is checked."""
        context = ssl.create_default_context(cafile=self.deployment.ca)  # checks the chain and 127.0.0.1 in the SAN

        def answering():
            if not self.deployment.node.alive():
                raise TestFailure("the node exited:\n%s" % self.deployment.node.log_text()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw:
                    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                        tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                        return tls.recv(64)
            except ssl.SSLCertVerificationError as error:
                raise TestFailure("the web listener's certificate does not verify against ca.crt: %s" % error)
            except OSError:
                return None
        first = wait_until(answering, h.READY_TIMEOUT, 0.1, "the web listener on 127.0.0.1:%d" % self.port)
        expect(first.startswith(b"HTTP/1.1 200"), "the web listener serves / over TLS with a certificate from the "
               "deployment's CA (%r)" % first[:40])


AGENT = os.path.join(h.BUILD, "lan-agent", "tsunagu-lan-agent")
HOOK = os.path.join(h.BUILD, "lan-agent", "tsunagu-dhcp-hook")
AGENT_NAME, AGENT_DOMAIN = "acme", "acme"


class LanAgent:
    """A LAN agent enrolled at the node (docs/lan-agent.md), run with no DHCP server:
    lease events come from running tsunagu-dhcp-hook the way dnsmasq does."""

    def __init__(self, node, web=False, terminal_port=None):
        for program in (AGENT, HOOK):
            if not os.access(program, os.X_OK):
                raise TestFailure("%s is not built" % program)
        d = node.deployment
        self.dir = d.path("agent-" + AGENT_NAME)
        result = d.admin(["agent", "-d", d.dir, "enroll", AGENT_NAME, "--domain", AGENT_DOMAIN, "--out", self.dir,
                          "--node", "127.0.0.1:1", "--server-name", "127.0.0.1"])
        expect(result.code == 0, "agent %s enrolled for domain %s (%r)" % (AGENT_NAME, AGENT_DOMAIN, result))
        self.node = node
        self.config = os.path.join(self.dir, "agent.toml")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.proc = None
        self.web_port = h.free_udp_port() if web else None
        self.token = "browser-agent-token-%s" % os.urandom(8).hex() if web else None
        self.terminal_port = terminal_port  # [calls] terminal_port: where LAN terminals take rings

    def write_config(self):
        """agent.toml pointing at the running node (its agent port is known once it runs)."""
        address = self.node.deployment.node.agent_address
        if not address:
            raise TestFailure("the node's ready file names no agent listener (\"agent\")")
        text = """[node]
address = "%s"
server_name = "127.0.0.1"
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

[policy]
show_lease_addresses = true

[hook]
socket = "%s/hook.sock"
spool_directory = "%s/spool"
""" % (address, AGENT_NAME, AGENT_DOMAIN, self.dir, self.dir, self.dir)
        if self.web_port:
            token_file = os.path.join(self.dir, "web.token")
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.token + "\n")
            text += '\n[web]\nlisten = "127.0.0.1:%d"\ntoken_file = "%s"\n' % (self.web_port, token_file)
        if self.terminal_port:
            text += "\n[calls]\nterminal_port = %d\nconnect_timeout_ms = 3000\n" % self.terminal_port
        with open(self.config, "w") as f:
            f.write(text)

    def start(self):
        self.write_config()
        with open(self.log_path, "a") as out:
            self.proc = h.spawn([AGENT, "run", "-c", self.config], stdout=out, stderr=subprocess.STDOUT)
        log("  agent %s started (pid %d)" % (AGENT_NAME, self.proc.pid))

        def linked():
            if self.proc.poll() is not None:
                raise TestFailure("the agent exited with %d:\n%s" % (self.proc.returncode, self.log_text()[-3000:]))
            return "linked to the node" in self.log_text()
        wait_until(linked, 10 * h.SLOW, 0.05, "the agent to link to the node")
        log("  ok: the agent's log says it linked to the node")

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wait_web_ready(self):
        """Waits for the status page's HTTPS listener and checks its certificate against the
        agent's LAN CA (data_directory/lan/ca.crt): the browser ignores certificate errors."""
        lan_ca = os.path.join(self.dir, "data", "lan", "ca.crt")
        wait_until(lambda: os.path.exists(lan_ca), 10 * h.SLOW, 0.05, "the agent's LAN CA " + lan_ca)
        context = ssl.create_default_context(cafile=lan_ca)

        def answering():
            if self.proc.poll() is not None:
                raise TestFailure("the agent exited:\n%s" % self.log_text()[-3000:])
            try:
                with socket.create_connection(("127.0.0.1", self.web_port), timeout=2) as raw:
                    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                        tls.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                        return tls.recv(64)
            except ssl.SSLCertVerificationError as error:
                raise TestFailure("the agent's status page certificate does not verify against its LAN CA: %s" % error)
            except OSError:
                return None
        first = wait_until(answering, h.READY_TIMEOUT, 0.1, "the agent's status page on 127.0.0.1:%d" % self.web_port)
        expect(first.startswith(b"HTTP/1.1 401"), "the agent serves HTTPS with a certificate from its LAN CA, and "
               "/api/status without the token is 401 (%r)" % first[:40])
        return "https://127.0.0.1:%d" % self.web_port


def run_pages(scenario, node, extra=None, microphone=None, requests=None, netns=None, mdns=False):
    """Runs one scenario of pages.mjs in Chromium; raises TestFailure when it fails.

    netns: a network namespace to run Chromium in (the NAT lab's `home`); mdns: leave
    Chromium's mDNS host names on (pages.mjs, TSUNAGU_BROWSER_MDNS).

    requests: {name: function} the scenario may ask for while it runs (say, "start the
    agent now"): pages.mjs writes REQUESTS/NAME, this runs the function and then writes
    REQUESTS/NAME.done (or NAME.failed with the reason) for the page to go on."""
    os.makedirs(ARTEFACTS, exist_ok=True)
    settings = {"url": node.url, "password": PASSWORD, "admin": ADMIN, "alice": ALICE, "bob": BOB,
                "carol": CAROL, "dave": DAVE}
    settings.update(extra or {})
    mailbox = None
    if requests:
        mailbox = node.deployment.path("page-requests")
        os.makedirs(mailbox, exist_ok=True)
        settings["requests"] = mailbox
    env = dict(os.environ)
    env.update({
        "TSUNAGU_NODE_MODULES": os.path.join(NPM_DIR, "node_modules"),
        "TSUNAGU_CHROMIUM": CHROMIUM,
        "TSUNAGU_BROWSER_ARTEFACTS": ARTEFACTS,
        "TSUNAGU_BROWSER_SETTINGS": json.dumps(settings),
        "TSUNAGU_FAKE_MICROPHONE": microphone or "",
        "TSUNAGU_BROWSER_MDNS": "1" if mdns else "",
    })
    log("  running pages.mjs %s in Chromium%s" % (scenario, " in namespace " + netns if netns else ""))
    inside = ["ip", "netns", "exec", netns] if netns else []
    proc = h.spawn(inside + ["node", os.path.join(HERE, "pages.mjs"), scenario], env=env)
    deadline = time.monotonic() + SCENARIO_TIMEOUT
    pending = dict(requests or {})
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise TestFailure("pages.mjs %s did not finish in %d s" % (scenario, SCENARIO_TIMEOUT))
        for name in [n for n in pending if os.path.exists(os.path.join(mailbox, n))]:
            log("  the page asks: %s" % name)
            try:
                pending.pop(name)()
                outcome = name + ".done"
            except TestFailure as error:
                outcome = name + ".failed"
                with open(os.path.join(mailbox, outcome + ".tmp"), "w") as f:
                    f.write(str(error))
                os.rename(os.path.join(mailbox, outcome + ".tmp"), os.path.join(mailbox, outcome))
                raise
            open(os.path.join(mailbox, outcome), "w").close()
        time.sleep(0.02)
    code = proc.returncode
    if code == h.SKIP:
        raise Skip("pages.mjs %s: the browser could not run (see above)" % scenario)
    if code != 0:
        raise TestFailure("pages.mjs %s failed (exit %d; see above)" % (scenario, code))


def prepared():
    require_tools()
    install_npm_packages()


# --------------------------------------------------------------------------
# Scenarios

def pages_accessible():
    """Every page, logged in as an operator, at desktop and phone width: axe finds nothing
    serious, no CSP violation, nothing wider than a phone; screenshots of each."""
    prepared()
    node = WebNode()
    node.add_user(ADMIN, admin=True)
    node.add_user(ALICE)
    node.start()
    run_pages("pages_accessible", node)
    shots = sorted(f for f in os.listdir(ARTEFACTS) if f.endswith(".png"))
    expect(len([s for s in shots if s.startswith("page-")]) >= 12, "screenshots of every page saved in %s: %s"
           % (ARTEFACTS, shots))


def register_publish_find():
    """A new user registers through the form, publishes a business entry on the profile
    page, and finds it in the directory by name and by its category."""
    prepared()
    node = WebNode()
    node.start()
    run_pages("register_publish_find", node, {"new_user": "erin"})
    d = node.deployment
    result = d.admin(["user", "-d", d.dir, "show", "erin"])
    expect(result.code == 0 and re.search(r"^category:\s+bakery$", result.out, re.M)
           and re.search(r"^published:\s+yes$", result.out, re.M),
           "the node's store holds erin's published row as the page saved it (%r)" % result)


def lookup_online_offline():
    """The dial screen shows carol (a `tsunagu login` terminal) online, dave offline, and
    the API's message for a user that does not exist and for a number no LAN agent serves."""
    prepared()
    node = WebNode()
    for user in (ALICE, CAROL, DAVE):
        node.add_user(user)
    node.profile(DAVE, "voicemail=yes")
    node.start()
    carol = node.deployment.start_login(CAROL, PASSWORD)
    run_pages("lookup_online_offline", node)
    expect(carol.alive(), "carol's terminal stayed logged in throughout")


def csrf_refused():
    """A POST, PUT or DELETE without the session's X-CSRF-Token is refused with 403 csrf
    and changes nothing; the page's own save (which sends it) works."""
    prepared()
    node = WebNode()
    node.add_user(ALICE)
    node.start()
    run_pages("csrf_refused", node)


def voicemail_from_page():
    """Alice records two voicemails for bob with the page's recorder (Chromium's fake
    microphone speaking an espeak-ng WAV); bob's inbox page plays one and deletes the
    other; the one left arrives at bob's `tsunagu login --mailbox`."""
    prepared()
    node = WebNode()
    node.add_user(ALICE)
    node.add_user(BOB)
    node.profile(BOB, "voicemail=yes")
    node.start()
    d = node.deployment
    microphone = fake_microphone(d.root)
    log("  fake microphone: %s" % (microphone or "Chromium's own beep (espeak-ng is not installed)"))
    run_pages("voicemail_from_page", node, microphone=microphone)

    box = d.path("bob-mailbox")
    os.makedirs(box)
    env = d.terminal_env(BOB, PASSWORD)
    with open(d.path("mailbox-bob.out"), "w") as out, open(d.path("mailbox-bob.err"), "w") as err:
        proc = h.spawn([h.TERMINAL, "login", "--mailbox", box], env=env, stdout=out, stderr=err)

    def saved():
        if proc.poll() is not None:
            raise TestFailure("`tsunagu login --mailbox` exited with %d" % proc.returncode)
        return [f for f in os.listdir(box) if f.endswith(".msg")]
    files = wait_until(saved, h.LOGIN_TIMEOUT, 0.1, "the voicemail to arrive in bob's mailbox folder")
    time.sleep(1.0)  # a second message, had the page's delete not worked, would arrive in the same login
    files = saved()
    expect(len(files) == 1 and re.search(r"-%s-[0-9]+\.msg$" % ALICE, files[0]),
           "exactly the one message bob kept arrives at `tsunagu login --mailbox`, from alice: %s" % files)
    with open(os.path.join(box, files[0]), "rb") as f:
        data = f.read()
    container = "WebM" if data[:4] == b"\x1a\x45\xdf\xa3" else "Ogg" if data[:4] == b"OggS" else None
    expect(container is not None and len(data) > 2000,
           "it is the browser's recording: %s, %d bytes" % (container or repr(data[:8]), len(data)))
    proc.kill()


def admin_sees_users():
    """An operator (made with `tsunagu-rendezvous user add --admin`) lists and searches
    users, adds one, resets its password, verifies one and removes one, and reads a
    card's ledger in the Cards view; a plain user is refused the operator's API."""
    prepared()
    node = WebNode()
    node.add_user(ADMIN, admin=True)
    for user in (ALICE, BOB):
        node.add_user(user)
    node.start()
    d = node.deployment
    # One access card with a top-up, for the page's Cards view (the ledger per card).
    areas = d.path("areas.toml")
    with open(areas, "w") as f:
        f.write('[[area]]\ncode = "home"\n[[area.internet]]\nname = "home-node"\nnode = "%s"\n'
                'cost_per_minute = 3\n' % d.node.address)
    for args in (["issue", "--units", "100", "--areas", areas, "--group", "1", "--count", "1", "--out", d.path("cards")],
                 ["topup", "1", "25", "--note", "shop 12"]):
        result = d.admin(["card", "-d", d.dir] + args)
        expect(result.code == 0, "card %s (%r)" % (args[0], result))
    run_pages("admin_sees_users", node, {"new_user": "frank"})
    expect(d.admin(["user", "-d", d.dir, "show", "frank"]).code == 3,
           "the user the operator added and removed in the page is gone from the store")
    result = d.admin(["user", "-d", d.dir, "show", ALICE])
    expect(result.code == 0 and re.search(r"^verified:\s+yes$", result.out, re.M),
           "the store has alice's row verified, as the operator's page set it (%r)" % result.out)
    expect(re.search(r"^admin:\s+no$", result.out, re.M),
           "alice's operator role, given and taken back in the page, is off in the store (%r)" % result.out)


def admin_sees_agent_online():
    """An enrolled LAN agent shows on the operator page as not linked; once it runs
    (`tsunagu-lan-agent run`) and links to the node, Refresh shows it linked."""
    prepared()
    node = WebNode()
    node.add_user(ADMIN, admin=True)
    agent = LanAgent(node)
    node.start()
    try:
        run_pages("admin_sees_agent_online", node, {"agent": AGENT_NAME, "domain": AGENT_DOMAIN},
                  requests={"start-agent": agent.start})
        expect(agent.proc is not None and agent.proc.poll() is None, "the agent stayed up throughout")
    finally:
        agent.stop()


LEASE = {"mac": "02:00:5e:00:41:06", "ip": "10.99.0.57", "extension": "4106"}


def agent_status_page():
    """The agent's HTTPS status page (certificate from its LAN CA) opened with its token
    shows the node link up; a lease event from tsunagu-dhcp-hook, run as dnsmasq runs
    it, shows in the allocation table within about a second; a wrong token gets the
    log-in form."""
    prepared()
    node = WebNode()
    agent = LanAgent(node, web=True)
    node.start()

    def lease():
        hostname = "ext" + LEASE["extension"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DNSMASQ_")}
        env.update({"DNSMASQ_LEASE_EXPIRES": str(int(time.time()) + 3600), "DNSMASQ_INTERFACE": "lan0",
                    "DNSMASQ_TIME_REMAINING": "3600", "TSUNAGU_AGENT_CONFIG": agent.config})
        result = subprocess.run([HOOK, "add", LEASE["mac"], LEASE["ip"], hostname], env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=10)
        expect(result.returncode == 0, "`tsunagu-dhcp-hook add %s %s %s` (as dnsmasq runs it) exits 0; stderr: %r"
               % (LEASE["mac"], LEASE["ip"], hostname, result.stderr))
        if "spool" in result.stderr:
            raise TestFailure("the hook spooled the event instead of handing it to the agent: %s" % result.stderr)

    try:
        agent.start()
        url = agent.wait_web_ready()
        settings = {"agent_url": url, "agent_token": agent.token, "agent": AGENT_NAME}
        settings.update(LEASE)
        run_pages("agent_status_page", node, settings, requests={"lease": lease})
        expect(agent.proc.poll() is None, "the agent stayed up throughout")
    finally:
        agent.stop()


def events_socket():
    """A logged-in page's /api/events WebSocket carries {"type":"voicemail_waiting"} when
    alice leaves bob a voicemail with `tsunagu voicemail send`, and the page lights its
    Voicemail link. The event leaves in the node's turn that stored the message."""
    prepared()
    node = WebNode()
    node.add_user(ALICE)
    node.add_user(BOB)
    node.profile(BOB, "voicemail=yes")
    node.start()
    d = node.deployment

    def leave_voicemail():
        message = d.path("message.bin")
        with open(message, "wb") as f:
            f.write(b"OggS" + os.urandom(3000))  # the node stores any bytes (docs/voicemail.md)
        result = subprocess.run([h.TERMINAL, "voicemail", "send", BOB, message], env=d.terminal_env(ALICE, PASSWORD),
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=h.CLI_TIMEOUT)
        expect(result.returncode == 0, "alice leaves bob a voicemail with `tsunagu voicemail send` (%s%s)"
               % (result.stdout.strip(), result.stderr.strip()))

    run_pages("events_socket", node, {"event_wait_ms": 40000}, requests={"leave-voicemail": leave_voicemail})


def contacts_presence():
    """Bob's dial page lists his contacts (alice, and carol who shows her presence to
    nobody); when alice's `tsunagu login` terminal logs in, alice turns online on the
    page through the event socket, without a reload, and offline when it stops; carol's
    state stays hidden."""
    prepared()
    node = WebNode()
    for user in (ALICE, BOB, CAROL):
        node.add_user(user)
    node.profile(BOB, "contacts=%s,%s" % (ALICE, CAROL))
    node.profile(CAROL, "presence=nobody")
    node.start()
    d = node.deployment
    terminals = []

    def alice_online():
        terminals.append(d.start_login(ALICE, PASSWORD))
        d.start_login(CAROL, PASSWORD)

    def alice_offline():
        proc = terminals[0].proc
        proc.terminate()
        proc.wait(timeout=h.CLI_TIMEOUT)

    run_pages("contacts_presence", node, requests={"alice-online": alice_online, "alice-offline": alice_offline})


@contextlib.contextmanager
def loopback_namespace(prefix, scenario):
    """A network namespace with only a loopback interface, up; deleted on every exit.
    Chromium gathers candidates on every interface of the host, and ICE then checks
    them: inside it, every packet stays on 127.0.0.1."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise Skip("%s runs in a network namespace of its own: needs root and iproute2" % scenario)
    namespace = "%s-%d" % (prefix, os.getpid())
    made = subprocess.run(["ip", "netns", "add", namespace], capture_output=True, text=True)
    if made.returncode != 0:
        raise Skip("cannot create a network namespace: %s" % made.stderr.strip())
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        yield namespace
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)


def webrtc_interop():
    """Chromium's own RTCPeerConnection offers audio from its fake microphone; our parts
    answer (tests/browser/webrtc_interop_peer.cpp: the SDP answer, libnice ICE on
    127.0.0.1, DtlsSession as DTLS client, SrtpSession around a VoiceSession). Passes when
    the peer decrypted and decoded 50 of Chromium's Opus packets and sent 50, and
    Chromium's getStats() shows its DTLS transport connected and our audio received.
    Then the other way round: the peer offers (build_offer), Chromium answers
    setup:active, the peer is the DTLS server and controls ICE. Then with the peer
    expecting another certificate's fingerprint: it refuses the handshake and
    Chromium's transport fails. No node is involved (docs/webrtc.md)."""
    prepared()
    env = dict(os.environ)
    env.update({"TSUNAGU_NODE_MODULES": os.path.join(NPM_DIR, "node_modules"), "TSUNAGU_CHROMIUM": CHROMIUM})
    peer = os.path.join(h.BUILD, "tests", "browser", "webrtc_interop_peer")
    with loopback_namespace("tsu-webrtc", "webrtc_interop") as namespace:
        for mode, what in (([], "Chromium offers, we answer: audio both ways (we are the DTLS client)"),
                           (["we-offer"], "we offer, Chromium answers: audio both ways (we are the DTLS server)"),
                           (["wrong-fingerprint"], "a certificate that does not match the SDP fingerprint is refused")):
            proc = h.spawn(["ip", "netns", "exec", namespace, "node", os.path.join(HERE, "webrtc_interop.mjs"), peer]
                           + mode, env=env)
            try:
                code = proc.wait(timeout=SCENARIO_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise TestFailure("webrtc_interop.mjs %s did not finish in %d s" % (" ".join(mode), SCENARIO_TIMEOUT))
            if code == h.SKIP:
                raise Skip("webrtc_interop.mjs: the browser could not run (see above)")
            expect(code == 0, "%s (webrtc_interop.mjs exit %d)" % (what, code))


def in_loopback_namespace(scenario):
    """Runs this script's SCENARIO again inside a network namespace with only loopback
    (Chromium's candidates are then 127.0.0.1 only); True in the parent, which is done
    once it returns; False inside the namespace, where the scenario runs."""
    if os.environ.get("TSUNAGU_IN_CALL_NAMESPACE") == "1":
        return False
    with loopback_namespace("tsu-call", scenario) as namespace:
        env = dict(os.environ, TSUNAGU_IN_CALL_NAMESPACE="1")
        proc = h.spawn(["ip", "netns", "exec", namespace, sys.executable, os.path.abspath(__file__), scenario],
                       env=env)
        try:
            code = proc.wait(timeout=SCENARIO_TIMEOUT + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise TestFailure("%s did not finish in its namespace" % scenario)
        if code == h.SKIP:
            raise Skip("%s was skipped in its namespace (see above)" % scenario)
        expect(code == 0, "%s in a namespace with only loopback (exit %d)" % (scenario, code))
    return True


def browser_call():
    """Two Chromium pages call each other through the node (docs/web.md, "Calls from
    the page"): bob's dialing page takes calls, alice calls, bob answers, audio flows
    both ways (getStats), keypad tones, mute, hang-up; a declined call offers voicemail.
    Like webrtc_interop, it runs in a network namespace with only a loopback
    interface (the node too), so Chromium's candidates are 127.0.0.1 only."""
    if in_loopback_namespace("browser_call"):
        return
    prepared()
    node = WebNode()
    node.add_user(ALICE)
    node.add_user(BOB)
    node.profile(BOB, "voicemail=yes")
    node.start()
    run_pages("browser_call", node)


VOICETOOL = os.path.join(HERE, "..", "voice", "voicetool.py")
CLI_CALL_DIGITS = "4106#"     # the page's keypad; no digit twice in a row (dtmf-decode collapses repeats)
CLI_CALL_MIN_SCORE = 0.9      # voicetool's envelope correlation (tests/voice/README.md)


def voicetool(*args):
    """tests/voice/voicetool.py under Debian's python3 (numpy, scipy): its stdout."""
    result = subprocess.run(["/usr/bin/python3", VOICETOOL] + list(args), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise TestFailure("voicetool %s: %s" % (" ".join(args), (result.stderr or result.stdout)[-800:]))
    return result.stdout.strip()


def require_voicetool():
    for tool in ("espeak-ng", "sox", "multimon-ng"):
        if shutil.which(tool) is None:
            raise Skip("%s is not installed (Debian package %s)" % (tool, tool))
    if subprocess.run(["/usr/bin/python3", "-c", "import numpy, scipy"], capture_output=True).returncode != 0:
        raise Skip("voicetool needs /usr/bin/python3 with numpy and scipy (python3-numpy, python3-scipy)")


def check_heard(sent, heard, who, digits=None, printed=None):
    """What one side recorded: the other side's speech (envelope correlation), and the
    keypad's digits decoded from the recording and printed as `dtmf: D` lines."""
    expect(os.path.exists(heard), "%s's recording %s exists" % (who, heard))
    scored = json.loads(voicetool("score", sent, heard))
    expect(scored["score"] >= CLI_CALL_MIN_SCORE, "%s heard the other side's speech: score %.3f >= %.1f (delay %.0f ms)"
           % (who, scored["score"], CLI_CALL_MIN_SCORE, scored["delay_ms"]))
    if digits is not None:
        lines = "".join(re.findall(r"^dtmf: ([0-9A-D*#])\s*$", printed, re.M))
        expect(lines == digits, "%s printed the digits as `dtmf: D` lines: %r" % (who, lines))
        # The tones played from Chromium's RFC 4733 events: every one, in order. (Chromium
        # announces each 20 ms of an event a frame after it began; VoiceSession plays an
        # event on until its end packet, so a shallow loopback buffer still has every tone.)
        decoded = voicetool("dtmf-decode", heard)
        if decoded != digits:
            os.makedirs(ARTEFACTS, exist_ok=True)
            shutil.copy(heard, ARTEFACTS)
            log("  %s's recording kept in %s" % (who, ARTEFACTS))
        expect(decoded == digits, "multimon-ng decodes exactly %r from %s's recording: %r" % (digits, who, decoded))


def cli_report(path, who):
    with open(path) as f:
        report = json.load(f)
    log("  %s's report: webrtc %r, media %r" % (who, report.get("webrtc"), report.get("media")))
    return report


def node_metrics(node):
    """The node's /metrics (loopback needs no token) as {'name{labels}': value}."""
    connection = http.client.HTTPSConnection("127.0.0.1", node.port, timeout=5,
                                             context=ssl.create_default_context(cafile=node.deployment.ca))
    connection.request("GET", "/metrics")
    body = connection.getresponse().read()
    connection.close()
    values = {}
    for line in body.decode(errors="replace").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values


def speech_files(d, cli_silence_s):
    """voicetool speech for a page and a CLI: (page_speech, page_microphone, cli_speech, cli_input).
    Chromium's fake microphone loops its file from getUserMedia on: 2 s of silence
    first (the call connects meanwhile), so each call hears the speech once, whole,
    before the page's digits. The CLI's input: its speech, then `cli_silence_s` of
    silence (while the page sends its digits)."""
    page_speech, cli_speech = d.path("page-speech.wav"), d.path("cli-speech.wav")
    page_microphone, cli_input = d.path("page-microphone.wav"), d.path("cli-input.wav")
    voicetool("speech", page_speech, "--seconds", "3")
    voicetool("speech", cli_speech, "--seconds", "3", "--text", "The birch canoe slid on the smooth planks.")
    subprocess.run(["sox", page_speech, page_microphone, "pad", "2", "4"], check=True, timeout=60)
    subprocess.run(["sox", cli_speech, cli_input, "pad", "0", str(cli_silence_s)], check=True, timeout=60)
    return page_speech, page_microphone, cli_speech, cli_input


def listener_finished(state, what):
    """Waits for the CLI in state["listener"] to exit; (its Terminal, its exit code)."""
    t = state["listener"]
    code = t.wait_exit(30 * h.SLOW)
    log("  %s stderr:\n%s" % (what, t.err()[-2500:]))
    return t, code


PATH_WORDS = r"(?:host|srflx|prflx|relay)/(?:host|srflx|prflx|relay)"


def ended_with_path(node, pattern=""):
    """The node's call end audit lines (matching `pattern`) that carry a path=."""
    ended = re.findall(r"event=call state=ended .*", node.deployment.node.log_text())
    return [line for line in ended if re.search(pattern, line) and re.search(r" path=%s(?: |$)" % PATH_WORDS, line)]


def expect_trickled(webrtc, who):
    """The page sent its description at once and its candidates after it (trickle ICE), and the
    CLI added them to its ICE session (--report's webrtc.trickled_candidates)."""
    expect(webrtc.get("trickled_candidates", 0) >= 1,
           "%s took the page's trickled candidates: trickled_candidates %r (mdns_candidates %r)"
           % (who, webrtc.get("trickled_candidates"), webrtc.get("mdns_candidates")))


def expect_answered_in_webrtc(report_path, who):
    """The CLI's --report says it spoke WebRTC's profile, refused no DTLS and took trickled candidates."""
    webrtc = cli_report(report_path, who).get("webrtc") or {}
    expect(webrtc.get("srtp_profile") and webrtc.get("srtp_packets", 0) >= 100 and webrtc.get("dtls_refused") == 0,
           "%s spoke WebRTC's profile: SRTP %r, %s packets unprotected" % (who, webrtc.get("srtp_profile"),
                                                                        webrtc.get("srtp_packets")))
    expect_trickled(webrtc, who)


def browser_cli_call():
    """The CLI speaks WebRTC's profile to a page (docs/webrtc.md): Chromium's page calls
    `tsunagu listen --audio-in/--audio-out`, then `tsunagu call` calls the page. Each
    side's recording is scored against what the other side spoke (voicetool's envelope
    correlation >= 0.9; the page records the remote track with MediaRecorder and decodes
    it with WebAudio), and the page's keypad digits are decoded from the CLI's
    recording. Then a page whose offer carries another certificate's fingerprint: the
    CLI refuses the DTLS handshake, says why, and counts it in its report."""
    if in_loopback_namespace("browser_cli_call"):
        return
    prepared()
    require_voicetool()
    node = WebNode()
    node.add_user(ALICE)
    node.add_user(BOB)
    node.start()
    d = node.deployment
    page_speech, page_microphone, cli_speech, cli_input = speech_files(d, 5)
    loop = ["--ice-address", "127.0.0.1"]
    state = {}

    def listen(name, extra=()):
        stem = d.path(name)
        t = h.spawn_cli(d, ["listen", "--auto-accept-from", ALICE, "--once", "--audio-in", cli_input, "--audio-out",
                            stem + ".wav", "--report", stem + ".json"] + list(extra) + loop, BOB, PASSWORD)
        wait_until(lambda: "listening as %s" % BOB in t.err() or not t.alive(), h.LOGIN_TIMEOUT, 0.05,
                   "`tsunagu listen` to log in")
        expect(t.alive(), "bob's `tsunagu listen` is logged in (%r)" % t.err()[-600:])
        state["listener"], state["stem"] = t, stem

    def finished(what):
        return listener_finished(state, what)

    def page_called_cli():
        t, code = finished("listen")
        expect(code == 0, "`tsunagu listen --once` answered the page's call and exits 0 (exit %s)" % code)
        expect_answered_in_webrtc(state["stem"] + ".json", "listen")
        check_heard(page_speech, state["stem"] + ".wav", "listen", CLI_CALL_DIGITS, t.out())
        check_heard(cli_speech, d.path("page-heard-1.wav"), "the calling page")

    def cli_calls_page():
        stem = d.path("cli-call")
        t = h.spawn_cli(d, ["call", BOB, "--audio-in", cli_input, "--audio-out", stem + ".wav", "--report",
                            stem + ".json"] + loop, ALICE, PASSWORD)
        state["listener"], state["stem"] = t, stem

    def cli_call_done():
        t, code = finished("call")
        expect(code == 0, "`tsunagu call bob` to the page exits 0 (exit %s)" % code)
        report = cli_report(state["stem"] + ".json", "call")
        webrtc = report.get("webrtc") or {}
        expect(webrtc.get("srtp_profile") and webrtc.get("srtp_packets", 0) >= 100,
               "call spoke WebRTC's profile: SRTP %r, %s packets" % (webrtc.get("srtp_profile"),
                                                                    webrtc.get("srtp_packets")))
        expect_trickled(webrtc, "call")
        check_heard(page_speech, state["stem"] + ".wav", "call", CLI_CALL_DIGITS, t.out())
        check_heard(cli_speech, d.path("page-heard-2.wav"), "the called page")

    def tampered_refused():
        t, code = finished("listen (tampered fingerprint)")
        expect(code != 0, "listen ends the call with a tampered fingerprint as failed (exit %s)" % code)
        expect(re.search(r"DTLS with the browser: .*fingerprint", t.err()) is not None,
               "listen says why: %r" % re.findall(r"tsunaga?u?: DTLS.*", t.err()))
        webrtc = cli_report(state["stem"] + ".json", "listen").get("webrtc") or {}
        expect(webrtc.get("dtls_refused") == 1 and not webrtc.get("srtp_packets"),
               "the refusal is counted (dtls_refused %r) and no media was taken" % webrtc.get("dtls_refused"))
        metrics = node_metrics(node)
        expect(metrics.get('tsunagu_node_calls_ended_total{reason="media_refused"}') == 1,
               "the node counts the refused call: calls_ended{reason=\"media_refused\"} %r"
               % metrics.get('tsunagu_node_calls_ended_total{reason="media_refused"}'))
        # Each page sent its selected pair once connected (call_path); the tampered call never connected.
        expect(metrics.get("tsunagu_node_browser_call_paths_total") == 2,
               "both pages reported their call's path: browser_call_paths %r"
               % metrics.get("tsunagu_node_browser_call_paths_total"))
        paths = ended_with_path(node)
        expect(len(paths) == 2, "the two calls that connected end with path= (%r)" % paths)
        # ICE connected the third, but DTLS did not: no path is reported, the end line says why instead.
        refused = re.findall(r"event=call state=ended .*reason=media_refused.*", node.deployment.node.log_text())
        expect(len(refused) == 1 and " path=" not in refused[0],
               "the refused call's end line has reason=media_refused and no path= (%r)" % refused)
        expect(metrics.get("tsunagu_node_browser_calls_placed_total") == 2
               and metrics.get("tsunagu_node_browser_calls_answered_total") == 1
               and metrics.get('tsunagu_node_browser_rings_total{result="delivered"}') == 1,
               "/metrics counts the pages' calls: 2 placed, 1 answered, 1 ring delivered (%r)"
               % {k: v for k, v in metrics.items() if "browser" in k})

    requests = {
        "listen": lambda: listen("listen-1"),
        "page-called-cli": page_called_cli,
        "cli-calls-page": cli_calls_page,
        "cli-call-done": cli_call_done,
        "listen-tampered": lambda: listen("listen-tampered"),
        "tampered-refused": tampered_refused,
    }
    run_pages("browser_cli_call", node, microphone=page_microphone, requests=requests,
              extra={"page_heard": [d.path("page-heard-1.wav"), d.path("page-heard-2.wav")],
                     "digits": CLI_CALL_DIGITS})


def browser_agent_call():
    """A page calls a LAN extension (docs/webrtc.md, docs/lan-agent.md): alice's page
    calls 4106@acme; the node rings the agent "acme", which passes the ring (with
    MEDIA-PROFILE webrtc and the page's SDP offer) to `tsunagu listen --lan` at the
    extension's leased address, 127.0.0.1. The terminal answers in WebRTC's profile:
    its report counts SRTP packets and its recording scores the page's speech. Then the
    same terminal without audio declines the page's call with 603."""
    if in_loopback_namespace("browser_agent_call"):
        return
    prepared()
    require_voicetool()
    node = WebNode()
    node.add_user(ALICE)
    agent = LanAgent(node, terminal_port=h.free_udp_port())
    node.start()
    d = node.deployment
    page_speech, page_microphone, cli_speech, cli_input = speech_files(d, 3)
    bundle = d.path("t4106")
    state = {}

    def lease_and_issue():
        env = {k: v for k, v in os.environ.items() if not k.startswith("DNSMASQ_")}
        env.update({"DNSMASQ_LEASE_EXPIRES": str(int(time.time()) + 3600), "DNSMASQ_INTERFACE": "lo",
                    "TSUNAGU_AGENT_CONFIG": agent.config})
        result = subprocess.run([HOOK, "add", "02:00:00:00:41:06", "127.0.0.1", "ext4106"], env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        expect(result.returncode == 0 and "spool" not in result.stderr,
               "the hook handed the agent a lease of 127.0.0.1 for ext4106 (%r)" % result.stderr)
        result = subprocess.run([AGENT, "terminal", "issue", "4106", "--out", bundle, "-c", agent.config],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        expect(result.returncode == 0, "the agent issued 4106's terminal bundle (%r)" % result.stderr[-600:])

    def listen(name, audio):
        stem = d.path(name)
        args = ["listen", "--lan", bundle, "--lan-listen", "127.0.0.1:%d" % agent.terminal_port, "--once",
                "--auto-accept-from", ALICE, "--ice-address", "127.0.0.1", "--report", stem + ".json"]
        if audio:
            args += ["--audio-in", cli_input, "--audio-out", stem + ".wav"]
        t = h.spawn_cli(d, args, "4106", PASSWORD)
        wait_until(lambda: "listening on the LAN" in t.err() or not t.alive(), h.LOGIN_TIMEOUT, 0.05,
                   "`tsunagu listen --lan` to listen")
        expect(t.alive(), "4106's `tsunagu listen --lan` listens (%r)" % t.err()[-600:])
        state["listener"], state["stem"] = t, stem

    def page_called_terminal():
        t, code = listener_finished(state, "listen --lan")
        expect(code == 0, "`tsunagu listen --lan --once` answered the page's call and exits 0 (exit %s)" % code)
        expect("passing it to the terminal at 127.0.0.1:%d" % agent.terminal_port in agent.log_text(),
               "the agent passed the ring to the terminal at its leased address")
        expect_answered_in_webrtc(state["stem"] + ".json", "listen --lan")
        check_heard(page_speech, state["stem"] + ".wav", "listen --lan")
        check_heard(cli_speech, d.path("page-heard-agent.wav"), "the calling page")
        expect("the terminal's path report relayed to the node" in agent.log_text(),
               "the agent relayed the LAN terminal's call_path to the node")
        paths = ended_with_path(node, r"callee=4106@%s " % AGENT_DOMAIN)
        expect(len(paths) == 1, "the node's end line of the call to 4106@%s has path= (%r)" % (AGENT_DOMAIN, paths))

    def declined():
        t = state["listener"]
        said = "declined a call from %s: the other party is a browser" % ALICE
        wait_until(lambda: said in t.err() or not t.alive(), 10 * h.SLOW, 0.05, "the audio-less terminal to decline")
        expect(said in t.err(), "the LAN terminal without audio declined the page's call and said why (%r)"
               % t.err()[-600:])
        # --once: one ring handled, answered or declined.
        code = t.wait_exit(10 * h.SLOW)
        expect(code == 0, "`listen --lan --once` exits 0 by itself after declining its one ring (exit %s)" % code)

    requests = {
        "lease": lease_and_issue,
        "listen": lambda: listen("lan-listen", True),
        "page-called-terminal": page_called_terminal,
        "listen-silent": lambda: listen("lan-listen-silent", False),
        "declined": declined,
    }
    try:
        agent.start()
        run_pages("browser_agent_call", node, microphone=page_microphone, requests=requests,
                  extra={"page_heard": [d.path("page-heard-agent.wav")], "extension": "4106@" + AGENT_DOMAIN})
    finally:
        agent.stop()


SCENARIOS = {f.__name__: f for f in (pages_accessible, register_publish_find, lookup_online_offline, csrf_refused,
                                     voicemail_from_page, admin_sees_users, admin_sees_agent_online,
                                     agent_status_page, events_socket, contacts_presence, webrtc_interop,
                                     browser_call, browser_cli_call, browser_agent_call)}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
