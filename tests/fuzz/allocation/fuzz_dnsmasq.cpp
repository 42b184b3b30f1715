// dnsmasq --dhcp-script calls and lease file lines.
#include <cstddef>
#include <cstdint>

#include "allocation/dnsmasq_hook_parser.hpp"
#include "allocation/dnsmasq_lease_file_parser.hpp"
#include "fuzz_hook_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!text.empty() && text[0] == 'H') {
    auto in = tsunagu::alloc::fuzz::split_hook_input(text.substr(1));
    (void)tsunagu::alloc::parse_dnsmasq_hook(in.call());
  } else {
    (void)tsunagu::alloc::parse_dnsmasq_lease_file(text, 1795334000);
  }
  return 0;
}
