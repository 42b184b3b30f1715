// areas.toml: the area table an issuer puts on the cards it issues
// (docs/cards.md has an example). Read at issue time only, so errors throw
// ConfigFileError naming the file, the entry and what is wrong.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cards/call_charge.hpp"
#include "cards/card.hpp"

namespace tsunagu::cards {

inline constexpr size_t max_areas_file_size = 256 * 1024;

// Parses `text` (named `file_name` in errors) and checks the table as
// validate_areas() does, so what is read can be put on a card.
std::vector<Area> parse_areas(const std::string& text, const std::string& file_name);
// Reads the file (at most max_areas_file_size bytes) and parses it.
std::vector<Area> load_areas_file(const std::string& path);

// parse_clock_minutes() ("08:00" -> 480) is in cards/call_charge.hpp.

}  // namespace tsunagu::cards
