// One-shot digests and MACs; Sha256Stream (sha256_stream.hpp) for data that
// does not fit in memory.
#pragma once

#include "base/bytes.hpp"

namespace tsunagu::security {

Bytes sha256(ByteView data);  // 32 bytes
// SHA-1 only where a protocol fixes it (the WebSocket handshake's accept key); 20 bytes.
Bytes sha1(ByteView data);
// HMAC-SHA1 as STUN's MESSAGE-INTEGRITY needs it (20 bytes).
Bytes hmac_sha1(ByteView key, ByteView data);
// HMAC-SHA256 (32 bytes): keyed derivations such as an access card's password.
Bytes hmac_sha256(ByteView key, ByteView data);

}  // namespace tsunagu::security
