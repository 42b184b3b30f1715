#include "terminal/sealed_stream.hpp"

namespace tsunagu::terminal {

void append_stream_frame(Bytes& out, ByteView sealed_packet) {
  size_t at = out.size();
  out.resize(at + 2 + sealed_packet.size());
  store_be16(out.data() + at, static_cast<uint16_t>(sealed_packet.size()));
  std::copy(sealed_packet.begin(), sealed_packet.end(), out.begin() + static_cast<std::ptrdiff_t>(at + 2));
}

void SealedStreamReader::append(ByteView bytes) {
  if (failed_) return;
  // Drop what was consumed once it is at least half the buffer: linear overall.
  if (start_ > 0 && start_ * 2 >= buffer_.size()) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

Expected<std::optional<ByteView>, std::string_view> SealedStreamReader::next() {
  if (failed_) return Unexpected(std::string_view("stream already failed"));
  size_t available = buffer_.size() - start_;
  if (available < 2) return std::optional<ByteView>{};
  size_t length = load_be16(buffer_.data() + start_);
  if (length == 0 || length > max_sealed_packet) {
    failed_ = true;
    return Unexpected(std::string_view("sealed frame length out of range"));
  }
  if (available < 2 + length) return std::optional<ByteView>{};
  ByteView packet(buffer_.data() + start_ + 2, length);
  start_ += 2 + length;
  return std::optional<ByteView>{packet};
}

}  // namespace tsunagu::terminal
