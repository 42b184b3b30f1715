#include "proto/frame_reader.hpp"

namespace tsunagu::proto {

void FrameReader::append(ByteView bytes) {
  if (failed_) return;  // the stream is out of sync; nothing more is read
  // Drop consumed bytes before growing. Moving only when the consumed part is
  // at least as large as what is left keeps the copying linear in the bytes
  // received, whatever the sizes of the pieces.
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ > 0 && start_ >= buffer_.size() - start_) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

Expected<std::optional<ByteView>, DecodeError> FrameReader::next() {
  if (failed_) return Unexpected(*failed_);
  ByteView pending = ByteView(buffer_).subspan(start_);
  if (pending.empty()) return std::optional<ByteView>();
  auto size = announced_size(pending, max_size_);
  if (!size && size.error().code != DecodeErrc::need_more) {
    failed_ = size.error();
    return Unexpected(*failed_);
  }
  // Links never carry classic RFC 3489 messages, so a wrong cookie byte means
  // this is not a STUN stream at all (TLS inside TLS, HTTP, ...).
  for (size_t i = 4; i < 8 && i < pending.size(); ++i) {
    if (pending[i] != std::byte((magic_cookie >> (24 - 8 * (i - 4))) & 0xFF)) {
      failed_ = DecodeError{DecodeErrc::not_stun, "no magic cookie"};
      return Unexpected(*failed_);
    }
  }
  if (!size || pending.size() < *size) return std::optional<ByteView>();
  start_ += *size;
  return std::optional<ByteView>(pending.first(*size));
}

}  // namespace tsunagu::proto
