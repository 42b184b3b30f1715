// Fuzz target: the frame reader fed in pieces. Input layout:
//   byte 0      number of chunk-size bytes that follow (low 4 bits, plus 1)
//   byte 1      message size limit: 0 = the default, else 20 + 64 * value
//   chunk sizes one byte each, used in turn (0 is an empty append)
//   the rest    the stream
// The pieces must give the same messages and the same end state as the whole
// stream in one append.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "proto/frame_reader.hpp"

using namespace tsunagu;
using namespace tsunagu::proto;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

struct Outcome {
  std::vector<Bytes> messages;
  bool failed = false;
  DecodeErrc error = DecodeErrc::need_more;
  size_t buffered = 0;
};

void drain(FrameReader& reader, Outcome& out, size_t limit) {
  for (;;) {
    auto next = reader.next();
    if (!next) {
      require(reader.failed());
      require(next.error().code != DecodeErrc::need_more);
      out.failed = true;
      out.error = next.error().code;
      return;
    }
    if (!next->has_value()) return;
    ByteView m = **next;
    require(m.size() >= header_size && m.size() <= limit && m.size() % 4 == 0);
    auto size = announced_size(m, limit);
    require(size.has_value() && *size == m.size());
    // A whole frame never needs more; it may still be malformed inside.
    auto d = decode(m, limit);
    require(d.has_value() || d.error().code != DecodeErrc::need_more);
    if (d) require(d->consumed == m.size());
    out.messages.emplace_back(m.begin(), m.end());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t chunk_count = (data[0] & 0x0F) + 1u;
  const size_t limit = data[1] == 0 ? default_max_message_size : header_size + 64u * data[1];
  if (size < 2 + chunk_count) return 0;
  const uint8_t* chunks = data + 2;
  ByteView stream(reinterpret_cast<const std::byte*>(data + 2 + chunk_count), size - 2 - chunk_count);

  Outcome pieces;
  FrameReader reader(limit);
  size_t at = 0;
  for (size_t turn = 0; at < stream.size() && !pieces.failed; ++turn) {
    size_t n = std::min<size_t>(chunks[turn % chunk_count], stream.size() - at);
    reader.append(stream.subspan(at, n));
    at += n;
    drain(reader, pieces, limit);
    require(reader.buffered() <= limit + 255);
    if (turn > stream.size() + chunk_count) break;  // all-zero chunk sizes
  }
  if (pieces.failed) {
    // Once failed, more bytes change nothing.
    reader.append(stream.subspan(at));
    auto again = reader.next();
    require(!again && again.error().code == pieces.error);
  } else {
    reader.append(stream.subspan(at));
    drain(reader, pieces, limit);
    pieces.buffered = reader.buffered();
  }

  Outcome whole;
  FrameReader one(limit);
  one.append(stream);
  drain(one, whole, limit);
  whole.buffered = one.buffered();

  require(pieces.messages == whole.messages);
  require(pieces.failed == whole.failed && pieces.error == whole.error);
  if (!pieces.failed) require(pieces.buffered == whole.buffered);
  return 0;
}
