// The /metrics text `status` summarises (fetched over the
// network, at most 4 MiB).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ops/metrics_status.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65536) return 0;
  (void)tsunagu::ops::summarise_metrics(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
