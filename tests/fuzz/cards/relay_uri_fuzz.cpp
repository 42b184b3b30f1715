// Fuzz target: an access point's relay URI from a card (cards/relay_uri.*).
// What parses must print back (scheme, host_port, transport) to the same relay.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cards/relay_uri.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto relay = tsunagu::cards::parse_relay_uri(text);
  if (!relay) return 0;
  using tsunagu::cards::RelayScheme;
  std::string printed = relay->scheme == RelayScheme::stun ? "stun:" : relay->scheme == RelayScheme::turn ? "turn:" : "turns:";
  printed += relay->host_port();
  if (relay->scheme == RelayScheme::turn && relay->tcp) printed += "?transport=tcp";
  // A card's text is at most 255 characters, so a host that fills one leaves
  // no room for the port and query this prints: such a form is never a card's
  // text, and parse_relay_uri rightly refuses it (found by this target).
  if (printed.size() > 255) return 0;
  auto again = tsunagu::cards::parse_relay_uri(printed);
  if (!again || again->host != relay->host || again->port != relay->port || again->tcp != relay->tcp ||
      again->scheme != relay->scheme || relay->port == 0)
    std::abort();
  return 0;
}
