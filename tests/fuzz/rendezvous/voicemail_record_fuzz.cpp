// Fuzz target: the durable voicemail header record, which a damaged or
// foreign data file can fill with anything. It decodes or is refused, never
// crashes; whatever decodes re-encodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "rendezvous/voicemail_store.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(reinterpret_cast<const std::byte*>(data), size);
  auto entry = decode_voicemail_record(input);
  if (!entry) return 0;
  if (input.size() > max_voicemail_record_size) std::abort();
  Bytes again = encode_voicemail_record(*entry);
  if (again.size() != input.size() || !std::equal(again.begin(), again.end(), input.begin())) std::abort();
  return 0;
}
