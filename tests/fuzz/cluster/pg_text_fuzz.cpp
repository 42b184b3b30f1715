// The text forms the cluster stores read back from PostgreSQL: text[]
// (contacts, reported addresses) and bytea's hex. A decoded array encodes
// and decodes to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cluster/pg/pg_connection.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto items = tsunagu::cluster::decode_text_array(text)) {
    auto again = tsunagu::cluster::decode_text_array(tsunagu::cluster::encode_text_array(*items));
    if (!again || *again != *items) std::abort();
  }
  (void)tsunagu::cluster::decode_bytea_hex(text);
  return 0;
}
