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

import fcntl
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


def run_pages(scenario, node, extra=None, microphone=None):
    """Runs one scenario of pages.mjs in Chromium; raises TestFailure when it fails."""
    os.makedirs(ARTEFACTS, exist_ok=True)
    settings = {"url": node.url, "password": PASSWORD, "admin": ADMIN, "alice": ALICE, "bob": BOB,
                "carol": CAROL, "dave": DAVE}
    settings.update(extra or {})
    env = dict(os.environ)
    env.update({
        "TSUNAGU_NODE_MODULES": os.path.join(NPM_DIR, "node_modules"),
        "TSUNAGU_CHROMIUM": CHROMIUM,
        "TSUNAGU_BROWSER_ARTEFACTS": ARTEFACTS,
        "TSUNAGU_BROWSER_SETTINGS": json.dumps(settings),
        "TSUNAGU_FAKE_MICROPHONE": microphone or "",
    })
    log("  running pages.mjs %s in Chromium" % scenario)
    proc = h.spawn(["node", os.path.join(HERE, "pages.mjs"), scenario], env=env)
    try:
        code = proc.wait(timeout=SCENARIO_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise TestFailure("pages.mjs %s did not finish in %d s" % (scenario, SCENARIO_TIMEOUT))
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
    users, adds one, resets its password, verifies one and removes one; a plain user is
    refused the operator's API."""
    prepared()
    node = WebNode()
    node.add_user(ADMIN, admin=True)
    for user in (ALICE, BOB):
        node.add_user(user)
    node.start()
    run_pages("admin_sees_users", node, {"new_user": "frank"})
    d = node.deployment
    expect(d.admin(["user", "-d", d.dir, "show", "frank"]).code == 3,
           "the user the operator added and removed in the page is gone from the store")
    result = d.admin(["user", "-d", d.dir, "show", ALICE])
    expect(result.code == 0 and re.search(r"^verified:\s+yes$", result.out, re.M),
           "the store has alice's row verified, as the operator's page set it (%r)" % result.out)


SCENARIOS = {f.__name__: f for f in (pages_accessible, register_publish_find, lookup_online_offline, csrf_refused,
                                     voicemail_from_page, admin_sees_users)}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
