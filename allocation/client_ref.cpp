#include "allocation/client_ref.hpp"

#include "allocation/field_normalisation.hpp"

namespace tsunagu::alloc {

Expected<ClientRef, ParseError> ClientRef::mac(std::string_view text) {
  auto m = normalise_mac(text);
  if (!m) return Unexpected(m.error());
  return ClientRef{Kind::mac, m->str()};
}

Expected<ClientRef, ParseError> ClientRef::client_id(std::string_view text) {
  auto c = normalise_client_id(text);
  if (!c) return Unexpected(c.error());
  return ClientRef{Kind::client_id, std::move(*c)};
}

Expected<ClientRef, ParseError> ClientRef::parse(std::string_view text) {
  auto bytes = parse_hex_bytes(text, kMaxClientIdBytes);
  if (!bytes) return Unexpected(bytes.error());
  return ClientRef{bytes->size() == 6 ? Kind::mac : Kind::client_id, hex_colon(*bytes)};
}

std::string ClientRef::index_key() const { return (kind == Kind::mac ? "m=" : "c=") + value; }

Expected<ClientRef, ParseError> ClientRef::from_index_key(std::string_view key) {
  if (key.size() < 3 || key[1] != '=' || (key[0] != 'm' && key[0] != 'c'))
    return Unexpected(ParseError{ParseErrc::bad_syntax, "bad client key", 0});
  return key[0] == 'm' ? mac(key.substr(2)) : client_id(key.substr(2));
}

}  // namespace tsunagu::alloc
