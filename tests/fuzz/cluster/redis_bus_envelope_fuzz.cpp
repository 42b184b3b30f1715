// Fuzz target: the Redis bus envelope. Whatever decodes re-encodes to the same
// bytes (the encoding is canonical: one attribute order, a fingerprint) and
// decodes to the same envelope; nothing over the size limit decodes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cluster/redis/bus_envelope.hpp"

using namespace tsunagu;
using namespace tsunagu::cluster;

namespace {
void require(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(reinterpret_cast<const std::byte*>(data), size);
  auto decoded = decode_bus_envelope(input);
  if (!decoded) return 0;
  require(size <= bus_max_envelope_size);
  require(decoded->from_node.size() <= bus_max_node_id_size);
  auto encoded = encode_bus_envelope(*decoded);
  require(encoded.has_value());
  auto again = decode_bus_envelope(*encoded);
  require(again.has_value() && *again == *decoded);
  // Extra attributes in the input are allowed on decode but dropped on encode.
  require(encoded->size() <= size);
  return 0;
}
