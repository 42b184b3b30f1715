// Normalisation of the fields DHCP servers print, shared by all parsers:
// MACs (ISC prints "1:f2:3c:..." unpadded; any case) -> "01:f2:3c:..",
// client-ids and DUIDs -> lowercase colon hex, hostnames -> lowercase without the
// trailing dot Kea v6 leaves, addresses -> proto::SocketAddress with port 0.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "allocation/mac_address.hpp"
#include "allocation/parse_error.hpp"
#include "base/expected.hpp"
#include "proto/socket_address.hpp"

namespace tsunagu::alloc {

inline constexpr size_t kMaxHostnameLength = 253;
inline constexpr size_t kMaxClientIdBytes = 130;  // DUID: 2-byte type + up to 128
inline constexpr size_t kMaxServerTagLength = 64;

// "aa:bb:cc:dd:ee:ff", "1:f2:3c:4:5:6", "AA-BB-CC-DD-EE-FF", "aabbccddeeff";
// exactly six octets (bad_mac otherwise). No heap allocation.
Expected<MacAddress, ParseError> normalise_mac(std::string_view text);
// Hex bytes with ':' or '-' separators (1 or 2 digits a group) or none (even
// length). One allocation, for the result, and none when it fits std::string's
// inline buffer.
Expected<std::string, ParseError> normalise_client_id(std::string_view text);
// A DHCPv4 client-id beside the lease's MAC, which keys the lease: one this
// program cannot keep (DHCPv4 allows 255 bytes, the table at most 130; or not
// hex) comes back empty, as if the client had sent none. Any LAN host picks
// its client-id: refusing it lost the lease, and its line in the lease file
// made every sync end nothing.
std::string client_id_beside_mac(std::string_view text);
std::string hex_colon(std::span<const uint8_t> bytes);
Expected<std::vector<uint8_t>, ParseError> parse_hex_bytes(std::string_view text, size_t max_bytes);
// The same into `out` (at most out.size() bytes, else too_large): the count.
Expected<size_t, ParseError> parse_hex_bytes_into(std::string_view text, std::span<uint8_t> out);
// Lowercase, one trailing dot removed, "*" (dnsmasq's "none") -> "". A name
// over 253 characters or with characters outside [a-z0-9-_.] is not an error:
// it comes back empty, since a lease must not be lost for a client's odd name
// (ISC records "John's phone", or 255 characters, verbatim).
Expected<std::string, ParseError> normalise_hostname(std::string_view text);
// The server tag (an interface name, a server DUID): 1-64 bytes of printable
// ASCII without spaces, shown in `list`, `show`, logs and the status page.
bool valid_server_tag(std::string_view tag);
Expected<proto::SocketAddress, ParseError> parse_ip_address(std::string_view text);
std::string ip_to_string(const proto::SocketAddress& address);
// Decimal integer, optional leading '-', no other characters; at most 19 digits.
Expected<int64_t, ParseError> parse_decimal(std::string_view text);

}  // namespace tsunagu::alloc
