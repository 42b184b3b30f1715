#!/usr/bin/python3
"""A browser in the NAT lab (issue 16, suite `lab`): Debian's Chromium runs in the `home`
namespace, behind gw-home's NAT, and its dialing page calls `4106@acme`: the agent rings
`tsunagu listen --lan` on acme-1 (a DHCP-leased LAN terminal behind gw-acme's NAT), which
answers in WebRTC's profile (docs/webrtc.md).

Run one:  sudo TSUNAGU_BUILD=build /usr/bin/python3 tests/lab/browser_lab_test.py browser_lab_punch_eim
(Debian's /usr/bin/python3: voicetool needs numpy/scipy.) Each scenario is its own meson test
(tests/lab/meson.build); exit 77 = skipped with the reason (not root, a lab tool, Chromium,
Node.js, the npm packages or a measuring tool missing).

Both scenarios leave Chromium's mDNS host names on (tests/browser/pages.mjs,
TSUNAGU_BROWSER_MDNS):
  browser_lab_punch_eim        both NATs endpoint-independent. The page speaks through WebAudio
                               and holds no microphone permission, so Chromium offers its host
                               address as `<uuid>.local`: the terminal drops that candidate and
                               the call must still connect, through the punched hole (no relay
                               on either side's selected pair).
  browser_lab_relay_symmetric  both NATs symmetric: relayed by coturn (the page's or the
                               terminal's selected pair has a relay candidate). The page uses
                               Chromium's fake microphone with the permission granted, as a user
                               who allowed the microphone: Chromium then shows real addresses.
In both, the page presses 4106# after its speech: the terminal's recording must score the
page's speech (envelope correlation >= 0.9) and decode the digits (at most one tone missing, as
browser_cli_call allows), and the page's recording (MediaRecorder, decoded by WebAudio) must
score the terminal's speech.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "browser"))
sys.path.insert(0, HERE)

# browser_test (and its harness) first: lablib's signal handlers, which remove the lab's
# namespaces, are then the ones installed.
import browser_test as browser  # noqa: E402
import harness  # noqa: E402
import lablib as lab  # noqa: E402
from lablib import Lab, log  # noqa: E402

CALLER_HOST, CALLEE_HOST = "home", "acme-1"
CALLER = lab.TERMINALS[CALLER_HOST]["user"]
EXTENSION = "%s@%s" % (lab.TERMINALS[CALLEE_HOST]["ext"], lab.ACME_DOMAIN)


class LabWeb:
    """What browser_test.run_pages needs of a node: its URL and a place for the page's files."""

    def __init__(self, l):
        self.url = "https://" + lab.NODE_WEB
        self.deployment = l

    def check_reachable(self):
        """The node's HTTPS listener seen from `home`, through gw-home's NAT, with a certificate
        that verifies against the deployment's CA (Chromium is told to ignore certificate errors)."""
        probe = ("import socket, ssl, sys\n"
                 "c = ssl.create_default_context(cafile=sys.argv[1])\n"
                 "with socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5) as raw:\n"
                 "    with c.wrap_socket(raw, server_hostname=sys.argv[2]) as tls:\n"
                 "        tls.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n"
                 "        print(tls.recv(16).decode(errors='replace'))\n")
        host, port = lab.NODE_WEB.rsplit(":", 1)
        deployment = self.deployment
        lab.wait_until(lambda: deployment.sh([sys.executable, "-c", probe, deployment.ca, host, port], ns=CALLER_HOST,
                                             check=False).stdout.startswith("HTTP/1.1 200"),
                       15, 0.2, "the node's web listener %s from home" % lab.NODE_WEB)
        log("  ok: the node serves its pages on %s to home, certificate from the deployment's CA" % lab.NODE_WEB)


def translated(scenario):
    """browser_test's failures and skips as lablib's, so run_scenarios reports them as such."""
    def run():
        try:
            return scenario()
        except harness.Skip as skip:
            raise lab.Skip(str(skip))
        except harness.TestFailure as failure:
            raise lab.LabFailure(str(failure))
    run.__name__ = scenario.__name__
    return run


def last_call(report_path):
    report = lab.read_report(report_path) or {}
    calls = report.get("calls")
    return calls[-1] if isinstance(calls, list) and calls else report


def browser_lab_call(name, nat, page_speaks_through_webaudio):
    """One call from the page in home to 4106@acme; returns (the page's path, the terminal's report)."""
    browser.prepared()
    browser.require_voicetool()
    with Lab(name, nat={"gw-acme": nat, "gw-home": nat}, web=True) as l:
        l.up(dhcp_hosts=(CALLEE_HOST,))
        web = LabWeb(l)
        web.check_reachable()
        page_speech, page_microphone, cli_speech, cli_input = browser.speech_files(l, 3)
        heard, report = l.path("lan-listen-heard.wav"), l.path("lan-listen-report.json")
        page_heard, path_file = l.path("page-heard.wav"), l.path("page-path.json")
        listener = l.start_lan_terminal(CALLEE_HOST, ["--auto-accept-from", CALLER, "--once", "--audio-in", cli_input,
                                                      "--audio-out", heard, "--report", report], binary=False)
        extra = {"alice": CALLER, "password": lab.PASSWORDS[CALLER], "extension": EXTENSION,
                 "page_heard": [page_heard], "path_file": path_file, "digits": browser.CLI_CALL_DIGITS}
        if page_speaks_through_webaudio:
            raw = l.path("page-microphone.raw")
            subprocess.run(["sox", page_microphone, "-t", "raw", "-r", "48000", "-c", "1", "-b", "16", "-e", "signed",
                            raw], check=True, timeout=60)
            extra["speech_pcm"] = raw

        def page_called_terminal():
            code = listener.wait(30)
            log("  listen --lan stderr:\n%s" % listener.err()[-2500:])
            browser.expect(code == 0, "`tsunagu listen --lan --once` answered the page's call and exits 0 (exit %s)"
                           % code)
            browser.expect_answered_in_webrtc(report, "listen --lan")
            browser.check_heard(page_speech, heard, "listen --lan", browser.CLI_CALL_DIGITS, listener.out())
            browser.check_heard(cli_speech, page_heard, "the calling page")

        browser.run_pages("browser_lab_call", web, extra=extra,
                          microphone=None if page_speaks_through_webaudio else page_microphone,
                          requests={"page-called-terminal": page_called_terminal}, netns=l.ns(CALLER_HOST), mdns=True)
        with open(path_file) as f:
            path = json.load(f)
        terminal = last_call(report)
        log("  the page's selected pair: %r -> %r; offered %r (host %r)" % (
            path.get("local"), path.get("remote"), path.get("offeredTypes"), path.get("offeredHosts")))
        log("  the terminal's pair: %s %s <-> %s %s" % (terminal.get("local_type"), terminal.get("local"),
                                                         terminal.get("remote_type"), terminal.get("remote")))
        return path, terminal


def row_of(nats, path, terminal):
    local, remote = path.get("local") or {}, path.get("remote") or {}
    return {
        "NATs": nats,
        "path (caller side)": "%s <-> %s (page in home -> %s, WebRTC)" % (local.get("type"), remote.get("type"),
                                                                         EXTENSION),
        "caller local": "%s:%s" % (local.get("address"), local.get("port")),
        "caller remote": "%s:%s" % (remote.get("address"), remote.get("port")),
        "connected ms": terminal.get("connected_ms"),
        "first byte ms": terminal.get("first_byte_ms"),
        "throughput": "terminal %s %s <-> %s %s" % (terminal.get("local_type"), terminal.get("local"),
                                                   terminal.get("remote_type"), terminal.get("remote")),
    }


def browser_lab_punch_eim():
    path, terminal = browser_lab_call("browser_lab_punch_eim", "eim", page_speaks_through_webaudio=True)
    hosts = path.get("offeredHosts") or []
    browser.expect(hosts and all(h.endswith(".local") for h in hosts),
                   "Chromium offered its host candidates as mDNS names only: %r" % hosts)
    dropped = (terminal.get("webrtc") or {}).get("mdns_candidates")
    browser.expect(dropped is not None and dropped >= len(hosts),
                   "the terminal received them and dropped them (report: mdns_candidates %r)" % dropped)
    types = ((path.get("local") or {}).get("type"), (path.get("remote") or {}).get("type"))
    # The page reads its pair once, at connected; ICE may nominate a relayed pair first and move
    # to the punched one a moment later (seen in CI: relay <-> srflx at connected, then the
    # terminal's "path changed" to srflx <-> srflx). The terminal's last pair says where the media
    # ended: its remote being the page's reflexive address (not coturn's) means the page sends
    # through the punched hole too.
    terminal_punched = (terminal.get("local_type") in ("srflx", "prflx", "host")
                        and terminal.get("remote_type") in ("srflx", "prflx"))
    browser.expect(all(t in ("host", "srflx", "prflx") for t in types) or terminal_punched,
                   "the call ends punched, not relayed: the page's pair at connected %s <-> %s, the terminal's "
                   "last %s <-> %s" % (types + (terminal.get("local_type"), terminal.get("remote_type"))))
    browser.expect(terminal.get("local_type") in ("srflx", "prflx", "host")
                   and terminal.get("remote_type") in ("srflx", "prflx"),
                   "the terminal reached the page at its reflexive address (its .local name dropped): %s %s <-> %s %s"
                   % (terminal.get("local_type"), terminal.get("local"), terminal.get("remote_type"),
                      terminal.get("remote")))
    return row_of("EIM / EIM", path, terminal)


def browser_lab_relay_symmetric():
    path, terminal = browser_lab_call("browser_lab_relay_symmetric", "symmetric", page_speaks_through_webaudio=False)
    types = ((path.get("local") or {}).get("type"), (path.get("remote") or {}).get("type"))
    browser.expect("relay" in types or "relay" in (terminal.get("local_type"), terminal.get("remote_type")),
                   "the call went through coturn: the page's pair %s <-> %s, the terminal's %s <-> %s"
                   % (types + (terminal.get("local_type"), terminal.get("remote_type"))))
    return row_of("symmetric / symmetric", path, terminal)


SCENARIOS = {f.__name__: translated(f) for f in (browser_lab_punch_eim, browser_lab_relay_symmetric)}

if __name__ == "__main__":
    sys.exit(lab.run_scenarios(SCENARIOS, sys.argv))
