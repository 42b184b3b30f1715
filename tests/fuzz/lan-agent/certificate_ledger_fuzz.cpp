// The terminal certificate ledgers (DATA_DIRECTORY/lan/issued and revoked),
// read by the agent before each ring: any text parses or is refused, and what
// parses formats back to lines that parse to the same entries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lan-agent/terminal_certificates.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tsunagu::lanagent;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ledger = parse_certificate_ledger(text);
  if (!ledger) return 0;
  std::string again;
  for (const auto& entry : ledger->entries) again += format_certificate_ledger_line(entry);
  auto reparsed = parse_certificate_ledger(again);
  if (!reparsed || reparsed->bad_lines != 0 || reparsed->entries != ledger->entries) std::abort();
  return 0;
}
