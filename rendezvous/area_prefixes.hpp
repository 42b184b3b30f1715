// The node's map of address prefixes to card areas (node.toml [cards.areas];
// docs/cards.md, "The terminal's area"): a terminal that does not know its
// area asks the node (card_area), which answers with the area of the
// longest prefix holding the address it sees the terminal's link come from.
// Pure: no sockets, no configuration reading.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/socket_address.hpp"

namespace tsunagu::rendezvous {

class AreaPrefixes {
 public:
  static constexpr size_t max_prefixes = 4096;

  // "198.51.100.0/24" or "2001:db8::/32" (a bare address is a /32 or /128);
  // an error text when the prefix is malformed, has bits set past its length,
  // is there already, or the map is full.
  std::optional<std::string> add(std::string_view prefix, std::string area);
  // The area of the longest prefix holding `address`; nullptr when none does.
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is looked up as IPv4.
  const std::string* area_of(const proto::SocketAddress& address) const;
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    proto::SocketAddress::Family family;
    std::array<uint8_t, 16> bits;
    unsigned length;
    std::string area;
  };
  std::vector<Entry> entries_;
};

}  // namespace tsunagu::rendezvous
