#include "cards/areas_file.hpp"

#include <doctest/doctest.h>

#include "base/toml_reader.hpp"

namespace tsunagu::cards {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_areas(text, "areas.toml");
  } catch (const ConfigFileError& error) {
    return error.what();
  }
  return "";
}

const std::string one_area = R"(
[[area]]
code = "a"
[[area.internet]]
name = "a-net"
node = "node.example.net:7400"
cost_per_minute = 1
)";

}  // namespace

TEST_CASE("areas file: the documented example (docs/areas.example.toml) loads") {
  auto areas = load_areas_file(TSUNAGU_SOURCE_ROOT "/docs/areas.example.toml");
  REQUIRE(areas.size() == 2);
  const Area& kansai = areas[0];
  CHECK(kansai.code == "kansai");
  REQUIRE(kansai.internet.size() == 2);
  CHECK(kansai.internet[0].relays.size() == 2);
  CHECK(kansai.internet[0].cost_at(7 * 60) == 1);
  CHECK(kansai.internet[0].cost_at(8 * 60) == 2);
  CHECK(kansai.internet[0].cost_at(20 * 60) == 1);
  REQUIRE(kansai.premium.size() == 1);
  CHECK(kansai.premium[0].destinations == std::vector<std::string>{"+81"});
  REQUIRE(kansai.agents.size() == 1);
  CHECK(kansai.agents[0].relays.empty());
  CHECK(areas[1].internet[0].name == "kanto-net");
}

TEST_CASE("areas file: clock times parse from 00:00 to 24:00") {
  CHECK(parse_clock_minutes("00:00") == 0);
  CHECK(parse_clock_minutes("08:30") == 510);
  CHECK(parse_clock_minutes("24:00") == 1440);
  CHECK_FALSE(parse_clock_minutes("24:01").has_value());
  CHECK_FALSE(parse_clock_minutes("8:30").has_value());
  CHECK_FALSE(parse_clock_minutes("08:60").has_value());
}

TEST_CASE("areas file: errors name the file, the entry and what is wrong") {
  CHECK(error_of(one_area).empty());
  CHECK(error_of("") == "areas.toml: area: missing: write one [[area]] table per service area");
  CHECK(error_of(one_area + "colour = 1\n").find("unknown key \"colour\"") != std::string::npos);
  std::string no_cost = R"(
[[area]]
code = "a"
[[area.internet]]
name = "a-net"
node = "n:1"
)";
  CHECK(error_of(no_cost) == "areas.toml: area[0].internet[0].cost_per_minute: missing");
  std::string bad_band = one_area + "tariff = [{ from = \"20:00\", to = \"08:00\", cost_per_minute = 2 }]\n";
  CHECK(error_of(bad_band).find("area[0].internet[0].tariff[0].to") != std::string::npos);
  std::string negative = one_area;
  negative.replace(negative.find("cost_per_minute = 1"), 19, "cost_per_minute = -1");
  CHECK(error_of(negative).find("between 0 and 1000000") != std::string::npos);
  CHECK(error_of(one_area + one_area).find("area codes must be unique") != std::string::npos);
  CHECK(error_of("[[area]\n").find("areas.toml: syntax:") == 0);
}

TEST_CASE("areas file: overlapping bands are refused, bands out of order are sorted") {
  std::string overlapping = one_area +
      "tariff = [{ from = \"08:00\", to = \"12:00\", cost_per_minute = 2 },"
      " { from = \"11:00\", to = \"13:00\", cost_per_minute = 3 }]\n";
  CHECK(error_of(overlapping).find("not overlap") != std::string::npos);
  std::string reversed = one_area +
      "tariff = [{ from = \"12:00\", to = \"13:00\", cost_per_minute = 3 },"
      " { from = \"08:00\", to = \"12:00\", cost_per_minute = 2 }]\n";
  auto areas = parse_areas(reversed, "areas.toml");
  CHECK(areas[0].internet[0].tariff[0].start_minute == 480);
}

TEST_CASE("areas file: a file above 256 KiB is refused") {
  CHECK(error_of(one_area + std::string(max_areas_file_size, '#')).find("larger than 256 KiB") != std::string::npos);
}

}  // namespace tsunagu::cards
