// ICE-DESCRIPTION arrives from the other party through the node: decode must
// never crash, and what decodes must encode and decode to the same thing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "terminal/ice_description.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tsunagu::terminal;
  auto decoded = decode_ice_description(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!decoded) return 0;
  auto encoded = encode_ice_description(*decoded);
  if (!encoded) std::abort();  // what decodes must encode
  auto again = decode_ice_description(*encoded);
  if (!again || !(*again == *decoded)) std::abort();
  return 0;
}
