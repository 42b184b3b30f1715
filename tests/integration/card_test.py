"""tsunagu-rendezvous card issue/show/topup/revoke as an operator runs them
(Python 3 stdlib only; zbarimg from zbar-tools reads the QR images).

Every command is a short-lived process run to completion with a timeout;
nothing is left running. Each scenario works in its own temporary directory,
removed however the scenario ends.

  card_issue_show_topup_revoke  files, QR images, passwords list, ledger changes, rekey
  card_forgery_refused          a flipped signature bit, another deployment's card, a cut file
  card_usage_errors             a bad areas.toml, a missing option, an unknown serial
  card_load_png                 tsunagu card load IMAGE.png: the issued QR image, and an image with no QR
                                code, a cut PNG, too many pixels, too many bytes, each refused with its reason

Calls on a card (a real node, `tsunagu listen` and `tsunagu call --card` on
loopback; [cards] debit_interval_s = 1 so debits come each second):
  card_call_debited             card load (offline, --issuer-key), card show; LCR skips a dead
                                access point; units told at the start and per debit; the ledger's debits
  card_call_refused             a flipped signature byte, a revoked serial, a wrong password, the same
                                card in a second call at once: each refused with its reason, audited
  card_call_units_run_out       the call is ended by the node with "Units Exhausted"; the next is refused
  card_call_relay_probe         the probe's STUN Binding: a silent relay port skips its access point, a real
                                coturn on loopback keeps its own
  card_password_set             tsunagu card password: the holder's password replaces the printed one (card show
                                with the old one is refused, with the new one answered); a short one is refused
  card_key_rollover             after `card rekey`, the old key's endorsement of the new one brings an update
                                of the new key to a terminal that kept only the old key
  card_agent_call               two nodes: a holder with no login calls through the card's connection agent
                                (cheapest route), debited at the agent's tariff; revoked / wrong password refused
"""
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402  (for RENDEZVOUS and _edit_toml; starts nothing on import)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
AREAS = os.path.join(ROOT, "docs", "areas.example.toml")


class Failure(Exception):
    pass


def run(*args, expect=0):
    done = subprocess.run([h.RENDEZVOUS] + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)
    if expect is not None and done.returncode != expect:
        raise Failure("%s: exit %d (expected %d)\nstdout: %s\nstderr: %s" %
                      (" ".join(args), done.returncode, expect, done.stdout, done.stderr))
    return done


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what)
    if not condition:
        raise Failure(what)


def deployment(root, name):
    directory = os.path.join(root, name)
    run("init", directory)
    # The cheapest scrypt cost the node accepts: issuing hashes one password a card.
    h._edit_toml(os.path.join(directory, "node.toml"), "passwords", "scrypt_log2_n", "14")
    h._edit_toml(os.path.join(directory, "node.toml"), "passwords", "scram_iterations", "4096")
    return directory


def issue(directory, out, count=2, units=100):
    return run("card", "-d", directory, "issue", "--units", str(units), "--areas", AREAS, "--group", "7",
               "--count", str(count), "--out", out)


def listing(out):
    with open(os.path.join(out, "cards.tsv")) as f:
        rows = [line.split("\t") for line in f.read().splitlines()[1:]]
    return [{"serial": r[0], "card_id": r[1], "password": r[2], "file": r[3]} for r in rows]


def card_issue_show_topup_revoke(root):
    directory = deployment(root, "deployment")
    out = os.path.join(root, "cards")
    issued = issue(directory, out)
    cards = listing(out)
    check(len(cards) == 2 and [c["serial"] for c in cards] == ["1", "2"], "two cards, serials 1 and 2")
    check(all(len(c["password"]) == 14 and c["password"][4] == "-" for c in cards), "passwords are 0000-0000-0000")
    check(cards[0]["password"] in issued.stdout, "issue prints the list")
    for c in cards:
        check(os.path.exists(c["file"]) and os.path.exists(c["file"][:-len(".card")] + ".png"),
              "%s has a .card and a .png" % c["card_id"])
    for name in ("card_issuer.key", "card_password.secret"):
        mode = stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode)
        check(mode == 0o600, "%s is 0600" % name)
    check(stat.S_IMODE(os.stat(os.path.join(out, "cards.tsv")).st_mode) == 0o600, "cards.tsv is 0600")

    shown = run("card", "-d", directory, "show", cards[0]["file"])
    check(shown.stdout.startswith("valid:"), "show FILE verifies the card")
    check("units left 100 of 100" in shown.stdout, "show FILE gives the ledger's units")
    check("area kansai" in shown.stdout and "kansai-premium" in shown.stdout, "show FILE lists the area table")

    if shutil.which("zbarimg"):
        png = cards[1]["file"][:-len(".card")] + ".png"
        scanned = subprocess.run(["zbarimg", "--quiet", "--raw", png], capture_output=True, text=True, timeout=60)
        check(scanned.returncode == 0 and scanned.stdout.startswith("TSU1:"), "zbarimg reads TSU1: text from the PNG")
        text_file = os.path.join(root, "scanned.txt")
        with open(text_file, "w") as f:
            f.write(scanned.stdout)
        from_qr = run("card", "-d", directory, "show", text_file)
        check(from_qr.stdout.startswith("valid:") and "serial       2" in from_qr.stdout,
              "the scanned QR text verifies as card 2")
    else:
        print("skip  zbarimg not installed (apt-get install zbar-tools)")

    topped = run("card", "-d", directory, "topup", "1", "50", "--note", "shop 12")
    check("150 left" in topped.stdout, "topup 1 50 leaves 150")
    history = run("card", "-d", directory, "show", "1")
    check("top-up  50  left 150  shop 12" in history.stdout, "the history shows the top-up and its note")
    run("card", "-d", directory, "revoke", "2", "--note", "reported stolen")
    revoked = run("card", "-d", directory, "show", "2")
    check("REVOKED" in revoked.stdout and "reported stolen" in revoked.stdout, "show 2 says revoked and why")
    again = run("card", "-d", directory, "revoke", "2", expect=1)
    check("already revoked" in again.stderr, "revoking twice says already revoked")
    refused = run("card", "-d", directory, "topup", "2", "5", expect=1)
    check("revoked" in refused.stderr, "a revoked card takes no top-up")

    keys_before = run("card", "-d", directory, "keys").stdout.split()
    check(len(keys_before) == 3 and keys_before[0] == "current", "card keys prints the current key")
    rekeyed = run("card", "-d", directory, "rekey").stdout.split()
    check(rekeyed[0] == "current" and rekeyed[1] != keys_before[1] and rekeyed[3:6] == ["retired"] + keys_before[1:],
          "rekey makes a new current key and retires the old one")
    old = run("card", "-d", directory, "show", cards[0]["file"])
    check(old.stdout.startswith("valid: signed by this deployment's issuer key (retired)"),
          "a card of the retired key is still valid")
    issue(directory, os.path.join(root, "more"), count=1)
    newer = listing(os.path.join(root, "more"))[0]
    check(newer["serial"] == "3", "the next issue continues at serial 3")
    shown = run("card", "-d", directory, "show", newer["file"])
    check(shown.stdout.startswith("valid: signed by this deployment's issuer key (current)"),
          "a card issued after rekey is signed by the new key")
    return 0


def card_forgery_refused(root):
    directory = deployment(root, "deployment")
    out = os.path.join(root, "cards")
    issue(directory, out, count=1)
    card = listing(out)[0]["file"]
    with open(card, "rb") as f:
        data = bytearray(f.read())

    flipped = os.path.join(root, "flipped.card")
    data[-1] ^= 0x01
    with open(flipped, "wb") as f:
        f.write(data)
    result = run("card", "-d", directory, "show", flipped, expect=1)
    check("NOT VALID: bad signature" in result.stdout, "a flipped signature bit: bad signature")
    check("what it claims (unverified)" in result.stdout, "what a bad card claims is shown as unverified")
    data[-1] ^= 0x01

    cut = os.path.join(root, "cut.card")
    with open(cut, "wb") as f:
        f.write(data[:len(data) // 2])
    result = run("card", "-d", directory, "show", cut, expect=1)
    check("NOT VALID: truncated" in result.stdout, "half a card: truncated")

    other = deployment(root, "other")
    result = run("card", "-d", other, "show", card, expect=1)
    check("NOT VALID: unknown key" in result.stdout, "another deployment's card: unknown key")
    return 0


def card_usage_errors(root):
    directory = deployment(root, "deployment")
    bad_areas = os.path.join(root, "areas.toml")
    with open(bad_areas, "w") as f:
        f.write('[[area]]\ncode = "a"\n[[area.internet]]\nname = "x"\nnode = "n:1"\ncost_per_minute = -3\n')
    result = run("card", "-d", directory, "issue", "--units", "5", "--areas", bad_areas, "--group", "1",
                 "--out", os.path.join(root, "cards"), expect=2)
    check("area[0].internet[0].cost_per_minute" in result.stderr, "a bad areas.toml names the entry: " +
          result.stderr.strip())
    run("card", "-d", directory, "issue", "--areas", AREAS, "--group", "1", "--out", os.path.join(root, "c"), expect=2)
    result = run("card", "-d", directory, "topup", "99", "1", expect=3)
    check("no card with serial 99" in result.stderr, "an unknown serial exits 3")
    run("card", "-d", directory, "revoke", "abc", expect=2)
    return 0


def png_file(path, width, height, rows):
    """A grey 8-bit PNG; `rows` is the raw IDAT data before compression (None: a tiny
    IDAT that does not fill the image, for a header that only claims its size)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(rows if rows is not None else b"\0" * 16)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def card_load_png(root):
    directory = deployment(root, "deployment")
    out = os.path.join(root, "cards")
    issue(directory, out, count=1)
    card = listing(out)[0]
    key = run("card", "-d", directory, "keys").stdout.split()[2]
    env = dict(os.environ, TSUNAGU_CARD_DIR=os.path.join(root, "terminal-cards"))

    def load(path):
        return subprocess.run([h.TERMINAL, "card", "load", path, "--issuer-key", key], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, env=env)

    png = card["file"][:-len(".card")] + ".png"
    loaded = load(png)
    check(loaded.returncode == 0 and "verified and kept" in loaded.stdout, "card load reads the issued PNG: %s" % (loaded.stdout + loaded.stderr).strip())
    with open(card["file"], "rb") as issued, open(os.path.join(env["TSUNAGU_CARD_DIR"], "1.card"), "rb") as kept:
        check(issued.read() == kept.read(), "the card kept from the image is the issued .card, byte for byte")

    def refused(path, reason):
        result = load(path)
        check(result.returncode == 2 and reason in result.stderr,
              "%s: exit 2, %r: %s" % (os.path.basename(path), reason, result.stderr.strip()))

    blank = os.path.join(root, "blank.png")
    png_file(blank, 200, 200, b"".join(b"\0" + b"\xff" * 200 for _ in range(200)))
    refused(blank, "no QR code in the image (200 x 200 pixels")
    cut = os.path.join(root, "cut.png")
    with open(png, "rb") as f, open(cut, "wb") as g:
        g.write(f.read()[:600])
    refused(cut, "truncated or corrupt PNG")
    huge = os.path.join(root, "huge.png")
    png_file(huge, 5000, 4000, None)
    refused(huge, "image too large (5000 x 4000 pixels, at most 16000000)")
    heavy = os.path.join(root, "heavy.png")
    with open(png, "rb") as f, open(heavy, "wb") as g:
        g.write(f.read())
        g.truncate(9 * 1024 * 1024)  # sparse: the bytes after the image read as zeros
    refused(heavy, "file too large (9437184 bytes, at most 8388608)")
    kept = sorted(name for name in os.listdir(env["TSUNAGU_CARD_DIR"]) if name.endswith(".card"))
    check(kept == ["1.card"], "no refused image left a card behind: %s" % kept)
    return 0


# ---------------------------------------------------------------- calls on a card

ALICE, ALICE_PW = "alice", "alice-password-1"
BOB, BOB_PW = "bob", "bob-password-22"
LOOP = ["--ice-address", "127.0.0.1"]
EXIT_REFUSED, EXIT_CALL_FAILED = 7, 11


def dead_address():
    """127.0.0.1:PORT where nothing listens (bound, then closed)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "127.0.0.1:%d" % port


def card_setup(root, cost=3, units=100, count=1, max_calls=1, area_prefixes=None, areas_text=None, node_settings=None):
    """A node with alice and bob, an area "home" whose cheapest access point is dead
    and whose second is the node; `count` cards of `units`; the terminal's card env.
    `area_prefixes`: the node's [cards.areas] lines, {prefix: area}. `areas_text`: the
    areas.toml instead, with {node} for the node's address."""
    d = h.Deployment(cards__debit_interval_s=1, cards__max_calls_per_card=max_calls, **(node_settings or {}))
    for prefix, area in (area_prefixes or {}).items():
        d.set("cards.areas", '"%s"' % prefix, '"%s"' % area)
    d.start_node()
    d.add_user(ALICE, ALICE_PW)
    d.add_user(BOB, BOB_PW)
    areas = d.path("areas.toml")
    with open(areas, "w") as f:
        if areas_text is not None:
            f.write(areas_text.replace("{node}", d.node.address))
        else:
            f.write('[[area]]\ncode = "home"\n'
                    '[[area.internet]]\nname = "home-dead"\nnode = "%s"\ncost_per_minute = 1\n'
                    '[[area.internet]]\nname = "home-node"\nnode = "%s"\ncost_per_minute = %d\n'
                    % (dead_address(), d.node.address, cost))
    out = d.path("cards")
    result = d.admin(["card", "-d", d.dir, "issue", "--units", str(units), "--areas", areas, "--group", "1",
                      "--count", str(count), "--out", out])
    if result.code != 0:
        raise Failure("card issue: %r" % result)
    cards = listing(out)
    os.environ["TSUNAGU_CARD_DIR"] = d.path("terminal-cards")
    os.environ["TSUNAGU_CARD_AREA"] = "home"
    os.environ["TSUNAGU_CARD_PASSWORD"] = cards[0]["password"]
    return d, cards


def issuer_key(d):
    return d.admin(["card", "-d", d.dir, "keys"]).out.split()[2]


def load(d, card):
    result = d.cli(["card", "load", card["file"], "--issuer-key", issuer_key(d)])
    if result.code != 0:
        raise Failure("card load: %r" % result)
    return result


def listen(d):
    t = h.spawn_cli(d, ["listen", "--auto-accept-from", ALICE] + LOOP, BOB, BOB_PW)
    h.wait_until(lambda: "listening as %s" % BOB in t.err(), h.LOGIN_TIMEOUT, 0.05, "bob's listen")
    return t


def card_call(d, mode=("--pipe",)):
    """alice calls bob on the card; with --pipe, stdin stays open until hang_up()."""
    return h.spawn_cli(d, ["call", BOB, "--card"] + list(mode) + LOOP, ALICE, ALICE_PW,
                       stdin=subprocess.PIPE if "--pipe" in mode else None)


def wait_text(t, text, timeout=30):
    def seen():
        if text in t.err():
            return True
        if not t.alive():
            raise Failure("exited (%s) before %r: %r" % (t.proc.returncode, text, t.err()))
        return False
    h.wait_until(seen, timeout * h.SLOW, 0.05, repr(text))


def hang_up(t):
    t.proc.stdin.close()
    return t.wait_exit(30)


def ledger(d, serial):
    return d.admin(["card", "-d", d.dir, "show", str(serial)]).out


def check_debits(d, serial, price, route, issued=100):
    """The card's ledger: three or more debits of `price` on `route`, and units left to match."""
    history = ledger(d, serial)
    debits = [line for line in history.splitlines() if "debit" in line]
    check(len(debits) >= 3 and all("  %d  " % price in line and route in line for line in debits),
          "the ledger has the debits of %d units on route %s: %r" % (price, route, debits))
    left = int(re.search(r"units left (\d+)", history).group(1))
    check(left == issued - price * len(debits),
          "units left %d = %d - %d x %d debits" % (left, issued, price, len(debits)))


def card_call_debited(root):
    d, cards = card_setup(root)
    loaded = load(d, cards[0])
    check("verified and kept" in loaded.out, "card load --issuer-key verifies the card offline")
    shown = d.cli(["card", "show"], ALICE, ALICE_PW)
    check("area home" in shown.out and "home-node" in shown.out and "units left   100" in shown.out,
          "card show lists the area and asks the node for the units: %r" % shown.out)
    listener = listen(d)
    caller = card_call(d)
    wait_text(caller, "connected after")
    check("access point home-dead" in caller.err() and ("does not answer" in caller.err()
          or "unreachable; trying the next" in caller.err()),
          "LCR measured the cheaper dead access point before the call and went to the next: %r" % caller.err()[:600])
    check("card: 100 units left" in caller.err(), "the caller is told the units at the start")
    wait_text(caller, "card: 91 units left")
    check("card: 97 units left" in caller.err() and "card: 94 units left" in caller.err(),
          "each period (1 s here) is debited at the route's 3 units")
    code = hang_up(caller)
    check(code == 0, "the call hangs up cleanly (exit %s)" % code)
    check_debits(d, 1, 3, "home-node")
    listener.kill()
    return 0


def card_call_refused(root):
    d, cards = card_setup(root, count=3, max_calls=1)
    card_dir = os.environ["TSUNAGU_CARD_DIR"]
    os.makedirs(card_dir)
    listener = listen(d)

    def refused_with(card_file, reason, password=None):
        for name in os.listdir(card_dir):
            os.remove(os.path.join(card_dir, name))
        shutil.copy(card_file, os.path.join(card_dir, "card.card"))
        if password is not None:
            os.environ["TSUNAGU_CARD_PASSWORD"] = password
        t = card_call(d)
        code = t.wait_exit(40)
        check(code == EXIT_REFUSED and "Card Refused: " + reason in t.err(),
              "refused: %s (exit %s, %r)" % (reason, code, t.err()[-300:]))

    with open(cards[0]["file"], "rb") as f:
        data = bytearray(f.read())
    data[-1] ^= 0x01
    forged = os.path.join(root, "forged.card")
    with open(forged, "wb") as f:
        f.write(data)
    refused_with(forged, "invalid: bad signature", cards[0]["password"])
    d.admin(["card", "-d", d.dir, "revoke", cards[1]["serial"]])
    refused_with(cards[1]["file"], "revoked", cards[1]["password"])
    refused_with(cards[2]["file"], "wrong card password", "0000-0000-0000")

    # The same card in a second call while the first is up.
    os.environ["TSUNAGU_CARD_PASSWORD"] = cards[2]["password"]
    first = card_call(d)
    wait_text(first, "connected after")
    refused_with(cards[2]["file"], "already in a call")
    hang_up(first)
    log = d.node.log_text()
    for reason in ("invalid: bad signature", "revoked", "wrong card password", "already in a call"):
        check(re.search(r'event=card result=refused .*reason="?%s' % re.escape(reason), log) is not None,
              "the node audits the refusal: %s" % reason)
    check("in_use_from=" in log, "the in-use refusal names where the card is in use")
    listener.kill()
    return 0


def card_call_units_run_out(root):
    d, cards = card_setup(root, cost=3, units=5)
    load(d, cards[0])
    listener = listen(d)
    # 500 echoes 20 ms apart: the call would last 10 s; the card pays for two.
    caller = card_call(d, ("--echo-test", "500"))
    wait_text(caller, "card: 2 units left")
    check("warning: the units left do not pay for the next minute" in caller.err(),
          "the caller is warned when the next period cannot be paid")
    code = caller.wait_exit(30)
    check(code == EXIT_CALL_FAILED and "Units Exhausted" in caller.err(),
          "the node ends the call: Units Exhausted (exit %s, %r)" % (code, caller.err()[-300:]))
    check("units left 0" in ledger(d, 1), "the ledger has 0 units left")
    again = card_call(d)
    code = again.wait_exit(40)
    check(code == EXIT_REFUSED and "Card Refused: no units left" in again.err(),
          "a call on the empty card is refused: no units left (exit %s)" % code)
    listener.kill()
    return 0


def card_call_area_from_node(root):
    """No --area, TSUNAGU_CARD_AREA or terminal.toml: the node's [cards.areas] places the
    terminal (127.0.0.1) in area "home" (the node's 404 for an address no prefix holds:
    node_cards_test.cpp)."""
    d, cards = card_setup(root, area_prefixes={"127.0.0.0/8": "home", "10.0.0.0/8": "elsewhere"})
    del os.environ["TSUNAGU_CARD_AREA"]
    os.environ["TSUNAGU_CONFIG"] = d.path("no-terminal.toml")
    load(d, cards[0])
    listener = listen(d)
    caller = card_call(d, ("--echo-test", "3"))
    code = caller.wait_exit(40)
    check(code == 0, "the call on the card completes (exit %s, %r)" % (code, caller.err()[-400:]))
    check("places this terminal in area home" in caller.err(),
          "the terminal took its area from the node: %r" % caller.err()[:400])
    check("home-node" in ledger(d, 1), "the call was debited on the area's route")
    listener.kill()
    return 0


def card_revoked_offline(root):
    """The issuer's signed update reaches the terminal: a new area table (the next call
    routes by it) and then a revocation, after which the terminal refuses the card itself."""
    d, cards = card_setup(root)
    load(d, cards[0])
    new_areas = d.path("areas-new.toml")
    with open(new_areas, "w") as f:
        f.write('[[area]]\ncode = "home"\n[[area.internet]]\nname = "home-updated"\nnode = "%s"\n'
                'cost_per_minute = 2\n' % d.node.address)
    published = d.admin(["card", "-d", d.dir, "publish", "--areas", new_areas])
    check(published.code == 0 and "update version 1" in published.out, "card publish: %r" % (published,))
    listener = listen(d)
    first = card_call(d, ("--echo-test", "3"))
    code = first.wait_exit(40)
    check(code == 0 and "issuer update version 1 kept" in first.err(),
          "the first call brings the update to the terminal (exit %s, %r)" % (code, first.err()[-500:]))
    second = card_call(d, ("--echo-test", "3"))
    code = second.wait_exit(40)
    check(code == 0 and "access point home-updated" in second.err() and "home-dead" not in second.err(),
          "the next call routes by the update's area table (exit %s, %r)" % (code, second.err()[-500:]))
    check("home-updated" in ledger(d, 1), "the node priced the call at the update's route")
    revoked = d.admin(["card", "-d", d.dir, "revoke", "1", "--note", "stolen"])
    check(revoked.code == 0 and "update version 2" in revoked.out, "card revoke publishes: %r" % (revoked,))
    shown = d.cli(["card", "show"], ALICE, ALICE_PW)
    check("Card Refused: revoked" in shown.err and "issuer update version 2 kept" in shown.err,
          "the node refuses the card and hands over the update: %r" % (shown,))
    listener.kill()
    d.node.stop()
    refused = card_call(d)
    code = refused.wait_exit(20)
    check(code == EXIT_REFUSED and "was revoked by its issuer (issuer update version 2)" in refused.err(),
          "with the node stopped, the terminal refuses the revoked card itself (exit %s, %r)"
          % (code, refused.err()[-300:]))
    offline = d.cli(["card", "show"])
    check("REVOKED" in offline.out, "card show marks it revoked: %r" % (offline,))
    return 0


def free_udp_port():
    """A UDP port on 127.0.0.1 nothing is bound to (bound, then closed)."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stun_answers(port, timeout=0.5):
    """Whether a STUN Binding request to 127.0.0.1:port gets a response with its transaction ID."""
    import socket
    transaction = os.urandom(12)
    request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(request, ("127.0.0.1", port))
        try:
            answer, _ = s.recvfrom(1500)
        except OSError:
            return False
    return answer[8:20] == transaction


def card_call_relay_probe(root):
    """The reachability probe asks each relay of the area's access points with a STUN Binding
    request (UDP, 2 s) beside the node's TCP probe: an access point whose relay is silent (a closed
    port) is skipped, one whose relay (a real coturn on loopback) answers is called through."""
    turnserver = shutil.which("turnserver") or "/usr/bin/turnserver"
    if not os.access(turnserver, os.X_OK):
        print("SKIP: coturn's turnserver is not installed (Debian package coturn)")
        return 77
    port, silent = free_udp_port(), free_udp_port()
    coturn = subprocess.Popen([turnserver, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
                               "--listening-port=%d" % port, "--no-tls", "--no-dtls", "--no-cli",
                               "--log-file=stdout", "--pidfile=%s" % os.path.join(root, "turnserver.pid"),
                               "--userdb=%s" % os.path.join(root, "turndb.sqlite"), "--realm=tsunagu.test",
                               "--use-auth-secret", "--static-auth-secret=card-relay-probe"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    h._processes.append(coturn)  # killed by PID however the scenario ends
    def answers():
        if coturn.poll() is not None:
            raise Failure("coturn exited with %s" % coturn.returncode)
        return stun_answers(port)
    h.wait_until(answers, 10 * h.SLOW, 0.1, "coturn to answer STUN on 127.0.0.1:%d" % port)
    areas = ('[[area]]\ncode = "home"\n'
             '[[area.internet]]\nname = "home-silent-relay"\nnode = "{node}"\nrelays = ["stun:127.0.0.1:%d"]\n'
             'cost_per_minute = 1\n'
             '[[area.internet]]\nname = "home-coturn"\nnode = "{node}"\n'
             'relays = ["stun:127.0.0.1:%d", "turn:127.0.0.1:%d"]\ncost_per_minute = 3\n' % (silent, port, port))
    d, cards = card_setup(root, areas_text=areas)
    load(d, cards[0])
    listener = listen(d)
    caller = card_call(d)
    wait_text(caller, "connected after")
    err = caller.err()
    check("card: access point home-silent-relay (%s) relay stun:127.0.0.1:%d does not answer" % (d.node.address, silent)
          in err, "the silent relay makes its access point unreachable: %r" % err[:600])
    check(not any("home-coturn" in line and "does not answer" in line for line in err.splitlines()),
          "coturn's answer keeps its access point: nothing reported against it")
    check("calling through internet access point home-coturn" in err and "trying the next" not in err,
          "the one attempt goes through the access point whose relay answered")
    check(hang_up(caller) == 0, "the call hangs up cleanly")
    check("route home-coturn" in ledger(d, 1), "the node debits the route whose relay answered")
    listener.kill()
    return 0


def card_password_set(root):
    d, cards = card_setup(root)
    load(d, cards[0])
    short = d.path("short.txt")
    with open(short, "w") as f:
        f.write("1234-567\n")
    result = d.cli(["card", "password", "--new-password-file", short], ALICE, ALICE_PW)
    check(result.code == 2 and "fewer than 8 letters and digits" in result.err,
          "a new password of 7 digits is refused before asking the node: %r" % (result,))
    chosen = d.path("chosen.txt")
    with open(chosen, "w") as f:
        f.write("7391 2204 5518\n")
    shown = d.cli(["card", "show"], ALICE, ALICE_PW)
    check(shown.code == 0 and "password     the printed one (the issuer's)\n" in shown.out,
          "card show says the printed password is in force: %r" % (shown.out,))
    result = d.cli(["card", "password", "--new-password-file", chosen], ALICE, ALICE_PW)
    check(result.code == 0 and "password set" in result.out, "card password sets the holder's password: %r" % (result,))
    shown = d.cli(["card", "show"], ALICE, ALICE_PW)  # TSUNAGU_CARD_PASSWORD: the printed one
    check(shown.code == EXIT_REFUSED and "password" in shown.err,
          "the printed password is refused from now on: %r" % (shown,))
    again = d.cli(["card", "password", "--new-password-file", chosen], ALICE, ALICE_PW)
    check(again.code == EXIT_REFUSED, "nor can the printed password set another one: %r" % (again,))
    os.environ["TSUNAGU_CARD_PASSWORD"] = "7391-2204-5518"
    shown = d.cli(["card", "show"], ALICE, ALICE_PW)
    check(shown.code == 0 and "units left   100" in shown.out, "the holder's password is accepted: %r" % (shown,))
    set_line = re.search(r"password     the holder's, set (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", shown.out)
    check(set_line is not None, "card show says the holder's password is in force and when it was set: %r" % shown.out)
    import datetime
    set_at = datetime.datetime.strptime(set_line.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=datetime.timezone.utc)
    check(abs((datetime.datetime.now(datetime.timezone.utc) - set_at).total_seconds()) < 600,
          "the time it was set is now's (%s)" % set_line.group(1))
    history = ledger(d, 1)
    check("password" in history and "set by the holder" in history, "the ledger's history has the change: %r" % history)
    return 0


def card_key_rollover(root):
    """After `card rekey`, an update signed by the new key reaches a terminal that kept only the old
    key: the node serves the old key's endorsement of the new one beside the update, the terminal
    follows it, keeps the update, and refuses a card the update revokes, offline."""
    import hashlib
    d, cards = card_setup(root, count=2)
    old_key = issuer_key(d)
    load(d, cards[0])
    rekeyed = d.admin(["card", "-d", d.dir, "rekey"])
    check(rekeyed.code == 0, "card rekey: %r" % (rekeyed,))
    new_key = issuer_key(d)
    check(new_key != old_key and os.path.exists(os.path.join(d.dir, "card_key_rollovers")),
          "rekey made a new key and wrote the old key's endorsement of it")
    revoked = d.admin(["card", "-d", d.dir, "revoke", cards[1]["serial"], "--note", "lost"])
    check(revoked.code == 0 and "update version 1" in revoked.out, "revoke publishes update 1 (new key): %r" % (revoked,))
    shown = d.cli(["card", "show"], ALICE, ALICE_PW)
    new_id = hashlib.sha256(bytes.fromhex(new_key)).hexdigest()[:16]
    check("issuer key %s kept (endorsed by a key kept here)" % new_id in shown.err and
          "issuer update version 1 kept" in shown.err,
          "the terminal follows the rollover to the new key and keeps the update: %r" % (shown.err,))
    check(os.path.exists(os.path.join(os.environ["TSUNAGU_CARD_DIR"], new_id + ".issuer")), "the new key is kept")
    # The revoked card (of the old key) is refused by the terminal itself now.
    loaded = d.cli(["card", "load", cards[1]["file"], "--issuer-key", old_key])
    check(loaded.code == 0, "the second card loads under the old key: %r" % (loaded,))
    os.environ["TSUNAGU_CARD_PASSWORD"] = cards[1]["password"]
    d.node.stop()
    refused = h.spawn_cli(d, ["call", BOB, "--card", cards[1]["serial"]] + LOOP, ALICE, ALICE_PW)
    code = refused.wait_exit(20)
    check(code == EXIT_REFUSED and "was revoked by its issuer (issuer update version 1)" in refused.err(),
          "offline, the terminal refuses the card the new key's update revokes (exit %s, %r)"
          % (code, refused.err()[-300:]))
    return 0


def write_tone_wav(path, frequency, seconds, amplitude=3000):
    """A 48 kHz mono 16-bit WAV of one sine (0 Hz: silence)."""
    import math
    import struct
    import wave
    rate = 48000
    samples = bytearray()
    for i in range(int(rate * seconds)):
        value = int(amplitude * math.sin(2 * math.pi * frequency * i / rate)) if frequency else 0
        samples += struct.pack("<h", value)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(samples))


def tone_power(samples, frequency, rate=48000):
    """Goertzel power of one frequency, normalised by the window's length."""
    import math
    k = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - k * s1 * s2) / (len(samples) ** 2)


def card_voice_warning_tone(root):
    """A voice call on a card that can pay one period: the caller's recording (what it
    heard) holds the warning beeps at 1400 Hz over bob's 300 Hz, then the call ends."""
    import struct
    import wave
    d, cards = card_setup(root, cost=3, units=5)
    load(d, cards[0])
    bob_voice, alice_voice, heard = d.path("bob-300hz.wav"), d.path("alice-silence.wav"), d.path("alice-heard.wav")
    write_tone_wav(bob_voice, 300, 10)
    write_tone_wav(alice_voice, 0, 10)
    listener = h.spawn_cli(d, ["listen", "--auto-accept-from", ALICE, "--once", "--audio-in", bob_voice,
                               "--audio-out", d.path("bob-heard.wav")] + LOOP, BOB, BOB_PW)
    h.wait_until(lambda: "listening as %s" % BOB in listener.err(), h.LOGIN_TIMEOUT, 0.05, "bob's listen")
    caller = h.spawn_cli(d, ["call", BOB, "--card", "--audio-in", alice_voice, "--audio-out", heard] + LOOP,
                         ALICE, ALICE_PW)
    code = caller.wait_exit(40)
    listener.kill()
    check(code == EXIT_CALL_FAILED and "Units Exhausted" in caller.err() and "warning" in caller.err(),
          "warned, then ended for want of units (exit %s, %r)" % (code, caller.err()[-400:]))
    with wave.open(heard, "rb") as w:
        raw = w.readframes(w.getnframes())
        rate = w.getframerate()
    pcm = struct.unpack("<%dh" % (len(raw) // 2), raw)
    window = rate // 20  # 50 ms
    windows = [pcm[i:i + window] for i in range(0, len(pcm) - window + 1, window)]
    check(len(windows) >= 10, "the caller heard at least half a second (%d windows)" % len(windows))
    beeps = [tone_power(w, 1400, rate) for w in windows]
    voice = [tone_power(w, 300, rate) for w in windows]
    loud = [i for i, p in enumerate(beeps) if p > 1e4]
    check(len(loud) >= 6, "the 1400 Hz beeps are in what the caller heard (%d windows of 50 ms; powers %r)"
          % (len(loud), [int(p) for p in beeps[:30]]))
    check(max(voice) > 1e4, "bob's 300 Hz is heard too (max %d)" % max(voice))
    # The call may end after a few beeps, so most windows can be loud: look for the gaps
    # between beeps (a continuous 1400 Hz would have none) rather than at the median.
    gaps = [i for i in range(loud[0], loud[-1]) if beeps[i] * 100 < max(beeps)]
    check(len(gaps) >= 2, "between the beeps there is no 1400 Hz (%d quiet windows between the first and "
          "last beep; powers %r)" % (len(gaps), [int(p) for p in beeps[:30]]))
    return 0


def card_agent_call(root):
    """Connection agents (seed 002, claims 6-7): two real nodes. The home node holds
    alice's account; the agent node ([cards] connection_agent = true) issued the card
    and holds the ledger and bob. The card's area "home" has the home node at 5 units a
    minute and the agent at 2: LCR picks the agent, and the holder's terminal (no user
    ID, no login anywhere) places the call through it; bob is rung by the card's caller
    ID, the agent's ledger is debited at 2 on the agent route, the home node sees no card
    use. A revoked card and a wrong password are refused by the agent with their reasons."""
    home = h.Deployment()
    home.start_node()
    home.add_user(ALICE, ALICE_PW)
    agent = h.Deployment(cards__debit_interval_s=1, cards__connection_agent=True)
    agent.start_node()
    agent.add_user(BOB, BOB_PW)
    areas = agent.path("areas.toml")
    with open(areas, "w") as f:
        f.write('[[area]]\ncode = "home"\n'
                '[[area.internet]]\nname = "home-net"\nnode = "%s"\ncost_per_minute = 5\n'
                '[[area.agent]]\nname = "home-agent"\nnode = "%s"\ncost_per_minute = 2\n'
                % (home.node.address, agent.node.address))
    out = agent.path("cards")
    issued = agent.admin(["card", "-d", agent.dir, "issue", "--units", "100", "--areas", areas, "--group", "3",
                          "--count", "3", "--out", out])
    if issued.code != 0:
        raise Failure("card issue: %r" % issued)
    cards = listing(out)
    # The terminal trusts both deployments' CAs (one file, as a bundle).
    bundle = agent.path("both-ca.crt")
    with open(bundle, "w") as f:
        for d in (home, agent):
            with open(d.ca) as ca:
                f.write(ca.read())
    agent.ca = bundle
    card_dir = agent.path("terminal-cards")
    os.environ["TSUNAGU_CARD_DIR"] = card_dir
    os.environ["TSUNAGU_CARD_AREA"] = "home"
    key = issuer_key(agent)

    def use_card(card, password):
        if os.path.isdir(card_dir):
            shutil.rmtree(card_dir)
        loaded = agent.cli(["card", "load", card["file"], "--issuer-key", key])
        if loaded.code != 0:
            raise Failure("card load: %r" % loaded)
        os.environ["TSUNAGU_CARD_PASSWORD"] = password

    listener = h.spawn_cli(agent, ["listen", "--auto-accept-from", "*"] + LOOP, BOB, BOB_PW)
    h.wait_until(lambda: "listening as %s" % BOB in listener.err(), h.LOGIN_TIMEOUT, 0.05, "bob's listen")
    use_card(cards[0], cards[0]["password"])
    caller = h.spawn_cli(agent, ["call", BOB, "--card", "--pipe"] + LOOP, None, None, stdin=subprocess.PIPE)
    wait_text(caller, "connected after")
    check("calling through agent access point home-agent" in caller.err(),
          "LCR picked the agent (2 units/min) over the home node (5): %r" % caller.err()[:500])
    check("card: 100 units left" in caller.err(), "the agent told the holder the units at the start")
    wait_text(caller, "card: 94 units left")
    check("card: 98 units left" in caller.err() and "card: 96 units left" in caller.err(),
          "each period is debited at the agent route's 2 units")
    code = hang_up(caller)
    check(code == 0, "the call through the agent hangs up cleanly (exit %s, %r)" % (code, caller.err()[-300:]))
    check("accepting a call from card-" + cards[0]["card_id"] in listener.err(),
          "bob was rung by the card's caller ID: %r" % listener.err()[-300:])
    check_debits(agent, cards[0]["serial"], 2, "home-agent")
    log = agent.node.log_text()
    check(re.search(r"event=card result=admitted serial=%s user=card-%s .*agent=1" %
                    (cards[0]["serial"], re.escape(cards[0]["card_id"])), log) is not None,
          "the agent audits the admission as a connection agent's call")
    check("event=card" not in home.node.log_text(), "the home node saw no card use")

    # Refusals, each by the agent with its reason.
    agent.admin(["card", "-d", agent.dir, "revoke", cards[1]["serial"]])
    for card, password, reason in ((cards[1], cards[1]["password"], "revoked"),
                                   (cards[2], "0000-0000-0000", "wrong card password")):
        use_card(card, password)
        t = h.spawn_cli(agent, ["call", BOB, "--card", "--pipe"] + LOOP, None, None, stdin=subprocess.PIPE)
        code = t.wait_exit(40)
        check(code == EXIT_REFUSED and "Card Refused: " + reason in t.err(),
              "the agent refuses: %s (exit %s, %r)" % (reason, code, t.err()[-300:]))
        check(re.search(r'event=card result=refused serial=%s .*reason="?%s' % (card["serial"], re.escape(reason)),
                        agent.node.log_text()) is not None, "the agent audits the refusal: %s" % reason)
    listener.kill()
    return 0


def card_password_required(root):
    """[cards] holder_password_required: the printed password is refused for calls, with the reason,
    until the holder sets their own; card show (with the printed one) still answers and says so."""
    d, cards = card_setup(root, node_settings={"cards__holder_password_required": True})
    load(d, cards[0])
    listener = listen(d)
    refused = card_call(d, ("--echo-test", "1"))
    code = refused.wait_exit(40)
    check(code == EXIT_REFUSED and "Card Refused: the printed card password must first be replaced by the holder's own"
          in refused.err(), "a call with the printed password is refused with the reason (exit %s, %r)"
          % (code, refused.err()[-400:]))
    shown = d.cli(["card", "show"], ALICE, ALICE_PW)
    check(shown.code == 0 and "password     the printed one (the issuer's); the node takes the card for calls only "
          "after `tsunagu card password`" in shown.out, "card show still answers and says what to do: %r" % (shown.out,))
    chosen = d.path("chosen.txt")
    with open(chosen, "w") as f:
        f.write("5820 1164 9937\n")
    result = d.cli(["card", "password", "--new-password-file", chosen], ALICE, ALICE_PW)
    check(result.code == 0, "the printed password may set the holder's: %r" % (result,))
    os.environ["TSUNAGU_CARD_PASSWORD"] = "5820-1164-9937"
    caller = card_call(d)
    wait_text(caller, "connected after")
    check(hang_up(caller) == 0, "with the holder's password the call is placed and hangs up cleanly")
    check(re.search(r'event=card result=refused .*reason="the printed card password must first be replaced',
                    d.node.log_text()) is not None, "the node audits the refusal")
    listener.kill()
    return 0


def card_relay_by_name(root):
    """A card's turn: relay named by host name (localhost, never an external name) is resolved by the
    node off its loop and handed to the caller: the node's own [turn] servers are none here, so a
    --relay-only call connects only through the relay the card's route names."""
    import secrets
    secret = secrets.token_hex(16)
    try:
        coturn = h.Coturn(secret, directory=root)
    except h.Skip as skip:
        print("SKIP: %s" % skip)
        return 77
    coturn.start()
    areas = ('[[area]]\ncode = "home"\n'
             '[[area.internet]]\nname = "home-named-relay"\nnode = "{node}"\nrelays = ["turn:localhost:%d"]\n'
             'cost_per_minute = 2\n' % coturn.port)
    try:
        d, cards = card_setup(root, areas_text=areas, node_settings={"turn__secret": '"%s"' % secret})
        load(d, cards[0])
        listener = listen(d)
        report = d.path("caller-report.json")
        caller = card_call(d, ("--pipe", "--relay-only", "--report", report))
        wait_text(caller, "connected after")
        check(hang_up(caller) == 0, "the relay-only call on the card connects and hangs up cleanly")
        import json
        with open(report) as f:
            pair = json.load(f)
        local = pair.get("local") or ""
        check(pair.get("local_type") == "relay" and local.startswith("127.0.0.1:")
              and coturn.min_port <= int(local.rsplit(":", 1)[1]) <= coturn.max_port,
              "the caller's candidate is a relay port of coturn, named localhost on the card: %r" % (pair,))
        check("route home-named-relay" in ledger(d, 1), "the route named is the one debited")
        check("does not resolve" not in d.node.log_text(), "the node logged no failed lookup")
        listener.kill()
    finally:
        coturn.stop()
    return 0


def card_holder_id_reserved(root):
    """IDs starting with card- are a connection agent's caller IDs for card holders: user add,
    user add --pg and open registration refuse them with the reason."""
    d = h.Deployment(node__open_registration=True)
    d.start_node()
    reason = "user IDs starting with card- are reserved for the calls connection agents place on access cards"
    added = d.admin(["user", "-d", d.dir, "add", "card-20261205-0007-000001"], password="a-password-123")
    check(added.code == 2 and reason in added.err, "user add refuses a card- ID (exit 2): %r" % (added,))
    pg = d.admin(["user", "-d", d.dir, "add", "--pg", "postgresql://127.0.0.1:1/none", "card-x"],
                 password="a-password-123")
    check(pg.code == 2 and reason in pg.err, "user add --pg refuses it before connecting (exit 2): %r" % (pg,))
    registered = d.cli(["register"], "card-x", "a-password-123")
    check(registered.code != 0 and "reserved" in registered.err,
          "tsunagu register is refused by the node with the reason: %r" % (registered,))
    ok = d.cli(["register"], "cardholder", "a-password-123")
    check(ok.code == 0, "an ID that only starts with card (no dash) registers: %r" % (ok,))
    return 0


SCENARIOS = {f.__name__: f for f in (card_voice_warning_tone, card_revoked_offline, card_issue_show_topup_revoke, card_forgery_refused, card_usage_errors,
                                     card_load_png,
                                     card_call_debited, card_call_refused, card_call_units_run_out,
                                     card_call_area_from_node, card_call_relay_probe, card_key_rollover,
                                     card_password_set, card_agent_call, card_password_required, card_relay_by_name,
                                     card_holder_id_reserved)}

if __name__ == "__main__":
    if not os.access(h.RENDEZVOUS, os.X_OK):
        print("%s is not built" % h.RENDEZVOUS)
        sys.exit(1)
    root = tempfile.mkdtemp(prefix="tsunagu-cards-")
    try:
        sys.exit(SCENARIOS[sys.argv[1]](root))
    except (Failure, h.TestFailure) as failure:
        print("FAIL: %s" % failure)
        sys.exit(1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
