// The ICE-DESCRIPTION signalling attribute: what one side of a call tells the
// other (credentials and candidates) through the node. Pure: no libnice here,
// so the codec is unit-tested and fuzzed on its own (it reads peer input).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.hpp"

namespace tsunagu::terminal {

// Credentials and SDP candidate lines exactly as
// nice_agent_generate_local_candidate_sdp makes them ("a=candidate:...").
struct IceDescription {
  std::string ufrag, password;
  std::vector<std::string> candidates;
  friend bool operator==(const IceDescription&, const IceDescription&) = default;
};

// The ICE-DESCRIPTION signalling attribute is at most this long.
inline constexpr size_t max_ice_description_size = 4096;
inline constexpr size_t max_ice_candidates = 16;
inline constexpr size_t max_ice_candidate_line = 256;

// One string for signalling: "ice1 UFRAG PWD" then one candidate per line,
// lines separated by '\n'. Fails (static detail) when a field breaks the
// rules decode checks, so what encodes always decodes.
Expected<std::string, std::string_view> encode_ice_description(const IceDescription& description);
// Reads network input: bounded by max_ice_description_size, ice-char
// credentials (RFC 8445: ufrag 4..256, password 22..256), at most
// max_ice_candidates lines of printable ASCII starting "a=candidate:".
Expected<IceDescription, std::string_view> decode_ice_description(std::string_view text);

// The rules above, for a description being built (empty: it passes). The
// session drops local candidate lines that fail them rather than send them.
std::string_view check_ice_candidate_line(std::string_view line);
std::string_view check_ice_description(const IceDescription& description);

}  // namespace tsunagu::terminal
