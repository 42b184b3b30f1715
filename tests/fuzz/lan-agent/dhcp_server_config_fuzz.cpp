// What `tsunagu-lan-agent doctor` reads out of a DHCP server's configuration
// file (dnsmasq, Kea, ISC dhcpd): any text, up to the 4 MiB doctor reads.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lan-agent/doctor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tsunagu;
  if (size > 65536) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)lanagent::dnsmasq_hook_paths(text);
  (void)lanagent::kea_hook_paths(text);
  (void)lanagent::isc_hook_paths(text);
  return 0;
}
