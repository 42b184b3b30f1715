// Fuzz target: the terminal's route memory file (cards/route_memory.*). What
// parses must print back to text that parses to the same memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cards/route_memory.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto memory = tsunagu::cards::parse_route_memory(text);
  if (!memory) return 0;
  auto again = tsunagu::cards::parse_route_memory(tsunagu::cards::route_memory_text(*memory));
  if (!again || !(*again == *memory)) std::abort();
  return 0;
}
