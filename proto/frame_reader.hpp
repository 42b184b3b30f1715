// Splits a TLS byte stream into STUN messages (as TURN-over-TLS does: the STUN
// length field delimits messages). Bytes arrive in any pieces; an announced
// length above the limit is rejected as soon as its 4-byte prefix is seen,
// before anything is buffered.
#pragma once

#include <cstddef>
#include <optional>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/stun_message.hpp"

namespace tsunagu::proto {

class FrameReader {
 public:
  explicit FrameReader(size_t max_message_size = default_max_message_size) : max_size_(max_message_size) {}

  // Adds bytes from the stream. After an error the reader stays failed: the
  // stream has lost sync and the link must be closed.
  void append(ByteView bytes);

  // The next whole message's bytes (valid until the next append/next call), or
  // nullopt when more bytes are needed, or the framing error.
  Expected<std::optional<ByteView>, DecodeError> next();

  size_t buffered() const { return buffer_.size() - start_; }
  bool failed() const { return failed_.has_value(); }

 private:
  size_t max_size_;
  Bytes buffer_;
  size_t start_ = 0;
  std::optional<DecodeError> failed_;
};

}  // namespace tsunagu::proto
