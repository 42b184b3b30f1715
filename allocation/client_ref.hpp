// What an extension is bound to: a MAC address or a DHCP client-id / DUID,
// normalised (see field_normalisation.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "allocation/parse_error.hpp"
#include "base/expected.hpp"

namespace tsunagu::alloc {

struct ClientRef {
  enum class Kind : uint8_t { mac = 1, client_id = 2 };
  Kind kind = Kind::mac;
  std::string value;

  static Expected<ClientRef, ParseError> mac(std::string_view text);
  static Expected<ClientRef, ParseError> client_id(std::string_view text);
  // Six bytes of hex are a MAC; anything else in hex is a client-id.
  static Expected<ClientRef, ParseError> parse(std::string_view text);
  // "m=aa:bb:.." or "c=01:aa:..": the form stored in the table's indexes.
  std::string index_key() const;
  static Expected<ClientRef, ParseError> from_index_key(std::string_view key);

  friend bool operator==(const ClientRef&, const ClientRef&) = default;
};

}  // namespace tsunagu::alloc
