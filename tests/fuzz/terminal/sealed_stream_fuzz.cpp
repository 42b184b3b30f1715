// The sealed byte stream comes from the peer: the reader must never crash or
// hand out a packet longer than the limit, however the bytes are split.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "terminal/sealed_stream.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tsunagu;
  using namespace tsunagu::terminal;
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 64;  // the first byte chooses how the stream is cut
  SealedStreamReader reader;
  for (size_t at = 1; at < size; at += chunk) {
    size_t n = at + chunk <= size ? chunk : size - at;
    reader.append(ByteView(reinterpret_cast<const std::byte*>(data + at), n));
    while (true) {
      auto next = reader.next();
      if (!next) return 0;
      if (!next->has_value()) break;
      if ((*next)->empty() || (*next)->size() > max_sealed_packet) std::abort();
    }
  }
  return 0;
}
