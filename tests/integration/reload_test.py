#!/usr/bin/env python3
"""The node's reload (SIGHUP, the unit's ExecReload) and certificate renewal
(docs/operator.md, "Reload and certificate renewal"):

node_reload_keeps_links: alice is logged in on a link; `init --renew-certificate`
writes a new certificate and key, node.toml turns open registration on, and the
node gets SIGHUP. The link stays up and answers; bob still finds alice online; a
new connection is served the new certificate (the old one before the reload);
registration, refused before, now works; the log has `event=reload result=ok`.
A broken node.toml then gets `event=reload result=failed`, and the node keeps
serving with what it had.
"""
import os
import signal
import socket
import ssl
import sys

import harness as h

PASSWORD = "correct horse battery"


def expect(condition, message):
    if not condition:
        raise h.TestFailure(message)


def served_certificate(node):
    """The DER certificate a new TLS connection to the node is served."""
    context = ssl.create_default_context(cafile=node.ca)
    with socket.create_connection(node.tls, timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=node.tls[0]) as tls:
            return tls.getpeercert(binary_form=True)


def file_certificate(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def reload_lines(node, result):
    return [line for line in node.log_text().splitlines() if "event=reload result=%s" % result in line]


def node_reload_keeps_links():
    d = h.Deployment()
    d.add_user("alice", PASSWORD)
    d.add_user("bob", PASSWORD)
    node = d.start_node()
    certificate_path = os.path.join(d.dir, "node.crt")
    old_certificate = file_certificate(certificate_path)
    expect(served_certificate(node) == old_certificate, "the node serves node.crt")

    link = h.RawTls(node)
    expect(link.login("alice", PASSWORD).cls == h.SUCCESS, "alice logs in")
    refused = d.cli(["register", "--name", "Carol"], "carol", PASSWORD)
    expect(refused.code != 0, "registration is refused while node.open_registration is false (%r)" % refused)

    renewed = d.admin(["init", d.dir, "--renew-certificate"])
    expect(renewed.code == 0, "init --renew-certificate: %r" % renewed)
    new_certificate = file_certificate(certificate_path)
    expect(new_certificate != old_certificate, "init --renew-certificate wrote a new node.crt")
    expect(served_certificate(node) == old_certificate, "before the reload the node still serves the old certificate")
    d.set("node", "open_registration", "true")

    os.kill(node.pid, signal.SIGHUP)
    h.wait_until(lambda: reload_lines(node, "ok"), 10 * h.SLOW, 0.1, "the reload's audit line")
    h.log("   ", reload_lines(node, "ok")[0])
    expect(node.alive(), "the node runs on after SIGHUP")
    expect(link.request(h.METHOD_KEEPALIVE).cls == h.SUCCESS, "alice's link answers after the reload")
    found = d.whereis("bob", PASSWORD, "alice")
    expect(found.code == 0, "bob finds alice online across the reload: %r" % found)
    expect(served_certificate(node) == new_certificate, "a new connection is served the renewed certificate")
    registered = d.cli(["register", "--name", "Carol"], "carol", PASSWORD)
    expect(registered.code == 0, "registration works once node.toml turned it on and the node reloaded: %r"
           % registered)

    # A broken node.toml: the reload is refused and nothing changes.
    with open(d.config, "a") as f:
        f.write("\n[node]\nthis is not toml\n")
    os.kill(node.pid, signal.SIGHUP)
    h.wait_until(lambda: reload_lines(node, "failed"), 10 * h.SLOW, 0.1, "the failed reload's audit line")
    h.log("   ", reload_lines(node, "failed")[0])
    expect(node.alive(), "a broken node.toml does not stop the node")
    expect(link.request(h.METHOD_KEEPALIVE).cls == h.SUCCESS, "alice's link still answers")
    expect(served_certificate(node) == new_certificate, "the renewed certificate is still served")
    link.close()
    expect(node.stop() == 0, "the node stops cleanly after reloads")


SCENARIOS = {
    "node_reload_keeps_links": node_reload_keeps_links,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
