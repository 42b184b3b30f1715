"""docs/protocol.md section 9 (Limits), one check per row, on a real node over
raw TLS and UDP links on 127.0.0.1 (issue 11 §8: the doc and the node had
drifted apart). Python 3 stdlib only; see harness.py.

protocol_limits_table: every row of the limits table, at the limit (accepted)
and just past it (refused as the table says).
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import Checks, Deployment  # noqa: E402

ALICE, BOB = "alice", "bob"
PASSWORD = "limits-pw-1"

METHOD_VOICEMAIL_BEGIN, METHOD_VOICEMAIL_CHUNK = 0x830, 0x831
METHOD_DIRECTORY_SEARCH = 0x838
ATTR_VOICEMAIL_UPLOAD, ATTR_VOICEMAIL_SIZE, ATTR_VOICEMAIL_OFFSET, ATTR_VOICEMAIL_DATA = 0xC040, 0xC041, 0xC042, 0xC043
ATTR_DIRECTORY_QUERY, ATTR_DIRECTORY_LIMIT = 0xC050, 0xC053


def code_of(message):
    error = message.error()
    return error[0] if error else 200


def binding_of_size(size):
    """An RFC 8489 Binding request of exactly `size` bytes (a multiple of 4), padded with SOFTWARE."""
    padding = size - 20 - 4 - 8  # header, the SOFTWARE attribute header, FINGERPRINT
    return h.encode(h.METHOD_BINDING, h.REQUEST, [(h.ATTR_SOFTWARE, b"x" * padding)])


def protocol_limits_table():
    d = Deployment(node__open_registration="true", voicemail__max_message_kb=64, voicemail__mailbox_quota_kb=100)
    node = d.start_node()
    for user in (ALICE, BOB):
        d.add_user(user, PASSWORD)
    r = d.admin(["user", "-d", d.dir, "profile", BOB, "voicemail=yes"])
    if r.code != 0:
        raise h.TestFailure("bob takes voicemail (%r)" % r)
    checks = Checks()

    # one message on UDP: 1500 bytes answered, 1504 dropped.
    reply, _ = h.udp_exchange(node.stun, binding_of_size(1500))
    checks.check(reply is not None, "UDP: a 1500-byte Binding request is answered")
    reply, _ = h.udp_exchange(node.stun, binding_of_size(1504), timeout=1.5)
    checks.check(reply is None, "UDP: a 1504-byte one is dropped, no answer")

    raw = h.RawTls(node)
    # PROTOCOL-VERSION: not 4 bytes is malformed (400); another version is 426.
    tid = os.urandom(12)
    raw.send(h.encode(h.METHOD_KEEPALIVE, h.REQUEST, [(h.ATTR_PROTOCOL_VERSION, b"\x00\x01")], tid))
    answer = raw.receive()
    checks.check(code_of(answer) == 400, "PROTOCOL-VERSION of 2 bytes: 400 (%r)" % (answer.error(),))
    checks.check(code_of(raw.request(h.METHOD_KEEPALIVE, [], version=2)) == 426, "PROTOCOL-VERSION 2: 426")

    # PASSWORD 8..256: register refuses 7 with 400; login answers 7 like a wrong password (401), 257 with 400.
    checks.check(code_of(raw.request(h.METHOD_REGISTER, [(h.ATTR_USER_ID, h.text("carol")),
                                                         (h.ATTR_PASSWORD, h.text("x" * 7))])) == 400,
                 "register with a 7-byte password: 400")
    checks.check(code_of(raw.login(ALICE, "x" * 7)) == 401, "login with a 7-byte password: 401")
    checks.check(code_of(raw.login(ALICE, "x" * 257)) == 400, "login with a 257-byte password: 400")
    # DISPLAY-NAME 128 bytes.
    checks.check(code_of(raw.request(h.METHOD_REGISTER, [(h.ATTR_USER_ID, h.text("dave")),
                                                         (h.ATTR_PASSWORD, h.text(PASSWORD)),
                                                         (h.ATTR_DISPLAY_NAME, h.text("d" * 129))])) == 400,
                 "register with a 129-byte DISPLAY-NAME: 400")
    checks.check(code_of(raw.request(h.METHOD_REGISTER, [(h.ATTR_USER_ID, h.text("dave")),
                                                         (h.ATTR_PASSWORD, h.text(PASSWORD)),
                                                         (h.ATTR_DISPLAY_NAME, h.text("d" * 128))])) == 200,
                 "register with a 128-byte DISPLAY-NAME: accepted")

    checks.check(raw.login(ALICE, PASSWORD, role=1).cls == h.SUCCESS, "alice logs in on the raw link")
    # USER-ID 128 bytes: 64 local + @ + 63 domain.
    long_id = "a" * 64 + "@" + "b" * 64
    checks.check(code_of(raw.request(h.METHOD_LOOKUP, [(h.ATTR_USER_ID, h.text(long_id))])) == 422,
                 "lookup of a 129-byte USER-ID: 422")
    # attributes in a message: 128.
    many = [(h.ATTR_SOFTWARE, b"")] * 128
    checks.check(code_of(raw.request(h.METHOD_KEEPALIVE, many)) == 400, "a request with 129+ attributes: 400")

    # VOICEMAIL-DATA 8192 bytes; one voicemail (413); one mailbox (507).
    begin = raw.request(METHOD_VOICEMAIL_BEGIN, [(h.ATTR_USER_ID, h.text(BOB)),
                                                 (ATTR_VOICEMAIL_SIZE, struct.pack("!Q", 64 * 1024 + 1))])
    checks.check(code_of(begin) == 413, "a voicemail of max_message_kb + 1 byte: 413 (%r)" % (begin.error(),))
    begin = raw.request(METHOD_VOICEMAIL_BEGIN, [(h.ATTR_USER_ID, h.text(BOB)),
                                                 (ATTR_VOICEMAIL_SIZE, struct.pack("!Q", 20000))])
    checks.check(begin.cls == h.SUCCESS, "a 20000-byte voicemail begins (%r)" % (begin.error(),))
    upload = begin.get(ATTR_VOICEMAIL_UPLOAD) or b"\0\0\0\0"
    chunk = raw.request(METHOD_VOICEMAIL_CHUNK, [(ATTR_VOICEMAIL_UPLOAD, upload),
                                                 (ATTR_VOICEMAIL_OFFSET, struct.pack("!Q", 0)),
                                                 (ATTR_VOICEMAIL_DATA, b"v" * 8193)])
    checks.check(code_of(chunk) == 400, "a chunk of 8193 bytes: 400 (%r)" % (chunk.error(),))
    chunk = raw.request(METHOD_VOICEMAIL_CHUNK, [(ATTR_VOICEMAIL_UPLOAD, upload),
                                                 (ATTR_VOICEMAIL_OFFSET, struct.pack("!Q", 0)),
                                                 (ATTR_VOICEMAIL_DATA, b"v" * 8192)])
    checks.check(chunk.cls == h.SUCCESS, "a chunk of 8192 bytes: accepted (%r)" % (chunk.error(),))
    # (The mailbox quota row, 507, needs stored messages: voicemail_test.py's voicemail_limits.)

    # DIRECTORY-QUERY 64 bytes; DIRECTORY-LIMIT 50, 0 = the default.
    def search(query, limit=None):
        attrs = [(ATTR_DIRECTORY_QUERY, h.text(query))]
        if limit is not None:
            attrs.append((ATTR_DIRECTORY_LIMIT, h.u32(limit)))
        return code_of(raw.request(METHOD_DIRECTORY_SEARCH, attrs))
    checks.check(search("q" * 64) == 200 and search("q" * 65) == 400, "DIRECTORY-QUERY: 64 bytes searched, 65: 400")
    checks.check(search("q", 50) == 200 and search("q", 51) == 400, "DIRECTORY-LIMIT: 50 searched, 51: 400")
    checks.check(search("q", 0) == 200, "DIRECTORY-LIMIT 0: the default page")

    # CARD 8192 bytes, CARD-PASSWORD 64 (a call on an access card; docs/cards.md): at the limit
    # the card is read (and refused, 402: these bytes are no card); above it, 400.
    def card_call(card, password):
        return code_of(raw.request(0x820, [(h.ATTR_USER_ID, h.text(BOB)), (0xC070, card),
                                           (0xC071, h.text(password))]))
    checks.check(card_call(b"c" * 8192, "1" * 64) == 402, "CARD of 8192 bytes, CARD-PASSWORD of 64: read (402)")
    checks.check(card_call(b"c" * 8193, "1") == 400, "CARD of 8193 bytes: 400")
    checks.check(card_call(b"c", "1" * 65) == 400, "CARD-PASSWORD of 65 bytes: 400")
    raw.close()

    # one message on a TLS link: 16 KiB; a larger announced size closes the link.
    raw = h.RawTls(node)
    header = struct.pack("!HHI", 0x0803, 16 * 1024 - 20 + 4, 0x2112A442) + os.urandom(12)
    try:
        raw.send(header)
    except OSError:
        pass
    closed, _ = raw.wait_closed(10 * h.SLOW)
    checks.check(closed, "a frame announcing more than 16 KiB closes the link")
    raw.close()
    checks.finish()


if __name__ == "__main__":
    sys.exit(h.run_scenarios({"protocol_limits_table": protocol_limits_table}, sys.argv))
