// One-shot digests and MACs; Sha256Stream (sha256_stream.hpp) for data that
// does not fit in memory.
#pragma once

#include "base/bytes.hpp"

namespace tsunagu::security {

Bytes sha256(ByteView data);  // 32 bytes
// HMAC-SHA1 as STUN's MESSAGE-INTEGRITY needs it (20 bytes).
Bytes hmac_sha1(ByteView key, ByteView data);

}  // namespace tsunagu::security
