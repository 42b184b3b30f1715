#!/usr/bin/env python3
"""The node's HTTPS listener from outside (docs/web.md): a real tsunagu-rendezvous
with [web] listen on 127.0.0.1, spoken to over TLS verified against the
deployment's CA, the way an attacker or a script would, without a browser.

Run one scenario:  TSUNAGU_BUILD=build python3 web_test.py SCENARIO
Each scenario is its own meson test (tests/integration/meson.build); exit 77 = skipped.
"""

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import Deployment, TestFailure, log  # noqa: E402

PASSWORD = "web-test-pw-1"


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    log("  ok:", message)


class Web:
    """Raw HTTPS/1.1 to the node's web listener, one connection per request
    unless kept; the certificate is checked against the deployment's CA."""

    def __init__(self, deployment, node):
        if not node.web:
            raise TestFailure("the node's ready file names no web address")
        host, port = node.web.rsplit(":", 1)
        self.address = (host, int(port))
        self.context = ssl.create_default_context(cafile=deployment.ca)
        self.context.check_hostname = True

    def connect(self):
        raw = socket.create_connection(self.address, timeout=10)
        return self.context.wrap_socket(raw, server_hostname=self.address[0])

    def exchange(self, request_bytes):
        """Sends raw bytes, returns (status, headers dict, body bytes) of the first answer."""
        with self.connect() as conn:
            conn.sendall(request_bytes)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            return status, headers, body[:length]

    def request(self, method, path, body=None, content_type="application/json", cookie=None, csrf=None,
                extra=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % self.address, "Connection: close"]
        if body is not None:
            lines += ["Content-Type: %s" % content_type, "Content-Length: %d" % len(body)]
        if cookie:
            lines.append("Cookie: %s" % cookie)
        if csrf:
            lines.append("X-CSRF-Token: %s" % csrf)
        lines += extra or []
        return self.exchange(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))

    def login(self, user, password):
        status, headers, body = self.request("POST", "/api/login", {"id": user, "password": password})
        if status != 200:
            raise TestFailure("web login as %s: %d %r" % (user, status, body))
        return headers["set-cookie"].split(";", 1)[0], json.loads(body)["csrf_token"]


def json_error(status_body, status, code, what):
    got_status, headers, body = status_body
    try:
        answer = json.loads(body)
    except ValueError:
        raise TestFailure("%s: the answer is not JSON: %d %r" % (what, got_status, body[:200]))
    expect(got_status == status and answer.get("error") == code and answer.get("message"),
           "%s: %d %s (%s)" % (what, got_status, answer.get("error"), answer.get("message")))
    expect(headers.get("content-type", "").startswith("application/json"), "%s: answered as JSON" % what)


def still_serving(web, node, what):
    expect(node.alive(), "the node is still running after %s" % what)
    status, _, _ = web.request("GET", "/")
    expect(status == 200, "the node still serves pages after %s" % what)


def web_bad_input():
    d = Deployment()
    node = d.start_node()
    d.add_user("alice", PASSWORD)
    d.add_user("bob", PASSWORD)
    web = Web(d, node)
    status, headers, body = web.request("GET", "/")
    expect(status == 200 and b"<html" in body.lower(), "GET / is a page, over TLS verified against ca.crt")
    expect("default-src 'self'" in headers.get("content-security-policy", ""), "pages carry CSP default-src 'self'")

    json_error(web.request("POST", "/api/login", "{\"id\": \"alice\", "), 400, "bad_request", "malformed JSON")
    json_error(web.request("POST", "/api/login", {"id": 5, "password": PASSWORD}), 400, "bad_request",
               "a number where the ID belongs")
    json_error(web.request("POST", "/api/login", "id=alice&password=x", "application/x-www-form-urlencoded"), 415,
               "unsupported_media_type", "a form body to a JSON endpoint")
    json_error(web.request("POST", "/api/login", {"id": "alice", "password": "x" * 40000}), 413,
               "payload_too_large", "a 40 KB JSON body")
    json_error(web.request("POST", "/api/login", {"id": "alice", "password": "wrong-password"}), 401,
               "unauthenticated", "a wrong password")
    json_error(web.request("GET", "/api/lookup?id=bob", cookie="tsunagu_session=" + "A" * 43), 401,
               "unauthenticated", "a made-up session cookie")

    cookie, csrf = web.login("alice", PASSWORD)
    status, _, body = web.request("GET", "/api/lookup?id=bob", cookie=cookie)
    expect(status == 200 and json.loads(body)["state"] == "offline", "a real session looks bob up: %s" % body)
    json_error(web.request("PUT", "/api/profile", {"publish": True}, cookie=cookie), 403, "csrf",
               "a state change without X-CSRF-Token")
    json_error(web.request("PUT", "/api/profile", {"publish": "yes"}, cookie=cookie, csrf=csrf), 400, "bad_request",
               "a string where a boolean belongs")
    json_error(web.request("POST", "/api/voicemail?to=bob", b"\0" * (2 << 20), "audio/ogg", cookie=cookie, csrf=csrf),
               413, "payload_too_large", "a 2 MiB recording (over [web] max_body_kb)")
    json_error(web.request("GET", "/api/lookup?id=no%20such%20id", cookie=cookie), 422, "invalid_user_id",
               "an ID with a space")

    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd", "/pages/../meson.build",
                 "/index.html/../../node.key", "/%00index.html"):
        status, headers, body = web.request("GET", path)
        expect(status in (400, 404) and b"root:" not in body and b"PRIVATE KEY" not in body and
               json.loads(body).get("error") in ("bad_request", "not_found"),
               "path traversal %s: %d %s" % (path, status, body[:80]))
    json_error(web.request("POST", "/index.html", {}), 405, "method_not_allowed", "POST to a page")

    plain = socket.create_connection(web.address, timeout=10)
    plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while True:
        chunk = plain.recv(4096)
        if not chunk:
            break
        answer += chunk
    plain.close()
    expect(answer.startswith(b"HTTP/1.1 400 ") and b"https://" in answer,
           "plain HTTP on the HTTPS port: a readable 400 naming https:// (%r)" % answer[:60])

    status, _, body = web.exchange(b"GARBAGE\r\n\r\n")
    expect(status == 400 and json.loads(body).get("error") == "bad_request", "a request that is not HTTP: 400 JSON")
    status, _, body = web.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n")
    expect(status == 431, "20 KB of headers: 431 (%s)" % body[:80])

    # WebSocket of events: the session cookie is the credential, and only this site's pages may open it.
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + key]
    status, _, _ = web.exchange(("GET /api/events HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % "\r\n".join(upgrade)).encode())
    expect(status == 401, "the event socket without a session: 401")
    status, _, _ = web.exchange(("GET /api/events HTTP/1.1\r\nHost: %s:%d\r\nCookie: %s\r\nOrigin: https://evil.example\r\n"
                                 "%s\r\n\r\n" % (web.address + (cookie, "\r\n".join(upgrade)))).encode())
    expect(status == 403, "the event socket opened from another site's page: 403")
    status, headers, _ = web.exchange(("GET /api/events HTTP/1.1\r\nHost: %s:%d\r\nCookie: %s\r\nOrigin: https://%s:%d\r\n"
                                       "%s\r\n\r\n" % (web.address + (cookie,) + web.address + ("\r\n".join(upgrade),))).encode())
    expect(status == 101 and headers.get("upgrade", "").lower() == "websocket",
           "the event socket from this site's page with a session: 101")
    still_serving(web, node, "every bad request")


def web_metrics():
    d = Deployment()
    node = d.start_node()
    d.add_user("alice", PASSWORD)
    web = Web(d, node)
    web.login("alice", PASSWORD)
    web.request("POST", "/api/login", {"id": "alice", "password": "wrong-password"})
    status, headers, body = web.request("GET", "/metrics")
    text = body.decode()
    expect(status == 200 and headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
           "/metrics answers a loopback client in the text format 0.0.4")
    expect('tsunagu_node_logins_total{result="ok"} 1' in text and 'tsunagu_node_logins_total{result="failed"} 1' in text,
           "the web logins are counted like any other: %s" %
           [line for line in text.splitlines() if line.startswith("tsunagu_node_logins_total")])
    expect("tsunagu_node_web_sessions 1" in text, "one web session is open")
    expect("alice" not in text and "127.0.0.1" not in text, "no user ID or address appears in /metrics")
    promtool = shutil.which("promtool")
    if promtool:
        check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
        expect(check.returncode == 0, "promtool check metrics passes (%s)" % check.stdout.decode()[-300:])
    else:
        log("  promtool is not installed (Debian package prometheus): the format is not checked by it")

    # With a token file, /metrics answers the token holder and nobody else.
    node.stop()
    token = "metrics-" + os.urandom(12).hex()
    with open(os.path.join(d.dir, "metrics.token"), "w") as f:
        f.write(token + "\n")
    d.set("web", "metrics_token_file", '"metrics.token"')
    node = d.start_node()
    web = Web(d, node)
    json_error(web.request("GET", "/metrics"), 401, "unauthenticated", "/metrics without the token")
    json_error(web.request("GET", "/metrics", extra=["Authorization: Bearer wrong-" + token]), 401,
               "unauthenticated", "/metrics with a wrong token")
    status, _, body = web.request("GET", "/metrics", extra=["Authorization: Bearer " + token])
    expect(status == 200 and b"tsunagu_node_links" in body, "/metrics with the token: 200")


def web_card_ledger():
    """The operator reads the card ledger over HTTPS (GET /api/admin/cards[/SERIAL]):
    what `tsunagu-rendezvous card show SERIAL` prints, as JSON; a non-admin gets 403."""
    d = Deployment()
    node = d.start_node()
    made = d.admin(["user", "-d", d.dir, "add", "--admin", "root"], password=PASSWORD)
    expect(made.code == 0, "an operator account root (%r)" % (made,))
    d.add_user("alice", PASSWORD)
    areas = d.path("areas.toml")
    with open(areas, "w") as f:
        f.write('[[area]]\ncode = "home"\n[[area.internet]]\nname = "home-node"\nnode = "%s"\n'
                'cost_per_minute = 3\n' % node.address)
    issued = d.admin(["card", "-d", d.dir, "issue", "--units", "100", "--areas", areas, "--group", "1",
                      "--count", "2", "--out", d.path("cards")])
    expect(issued.code == 0, "card issue makes two cards" if issued.code == 0 else "card issue: %r" % issued)
    for args in (["topup", "1", "25", "--note", "shop 12"], ["revoke", "2", "--note", "reported stolen"]):
        done = d.admin(["card", "-d", d.dir] + args)
        expect(done.code == 0, "card " + " ".join(args) if done.code == 0 else "card %s: %r" % (args[0], done))
    web = Web(d, node)
    cookie, csrf = web.login("root", PASSWORD)

    status, headers, body = web.request("GET", "/api/admin/cards/1", cookie=cookie)
    expect(status == 200 and headers.get("content-type", "").startswith("application/json"),
           "GET /api/admin/cards/1: 200 JSON (%d %r)" % (status, body[:200]))
    card = json.loads(body)
    shown = d.admin(["card", "-d", d.dir, "show", "1"]).out
    expect(card["units_left"] == 125 and "units left 125 of 100" in shown,
           "the page's units left are the CLI's: %d / %r" % (card["units_left"], shown.splitlines()[0]))
    expect(card["card_id"] in shown and card["password"] == "issuer" and card["revoked"] is False,
           "card 1: its card ID, the issuer's password in force, not revoked")
    events = [(e["event"], e["units"], e["units_left"], e["note"]) for e in card["history"]]
    expect(events == [("issued", 100, 100, ""), ("top-up", 25, 125, "shop 12")],
           "card 1's history: issued, then the top-up with its note: %r" % events)

    card2 = json.loads(web.request("GET", "/api/admin/cards/2", cookie=cookie)[2])
    expect(card2["revoked"] is True and card2["history"][-1]["event"] == "revoked"
           and card2["history"][-1]["note"] == "reported stolen", "card 2 is revoked, and why")
    listed = json.loads(web.request("GET", "/api/admin/cards", cookie=cookie)[2])
    expect([(c["serial"], c["units_left"], c["revoked"]) for c in listed["cards"]] == [(1, 125, False), (2, 100, True)],
           "GET /api/admin/cards lists both cards: %r" % listed)

    json_error(web.request("GET", "/api/admin/cards/3", cookie=cookie), 404, "not_found", "an unknown serial")
    json_error(web.request("GET", "/api/admin/cards/one", cookie=cookie), 400, "bad_request", "a serial not a number")
    alice_cookie, _ = web.login("alice", PASSWORD)
    json_error(web.request("GET", "/api/admin/cards/1", cookie=alice_cookie), 403, "forbidden", "a non-admin")
    json_error(web.request("GET", "/api/admin/cards/1"), 401, "unauthenticated", "no session")
    status, _, page = web.request("GET", "/admin.html")
    expect(status == 200 and b'id="cards"' in page, "the operator page has the Cards view")


SCENARIOS = {f.__name__: f for f in (web_bad_input, web_metrics, web_card_ledger)}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
