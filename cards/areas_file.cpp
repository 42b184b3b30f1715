#include "cards/areas_file.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "base/toml_reader.hpp"
#include "cards/card_codec.hpp"

namespace tsunagu::cards {

namespace {

class AreasReader {
 public:
  explicit AreasReader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& where, std::string_view what) const {
    throw ConfigFileError(file_ + ": " + where + ": " + std::string(what));
  }

  const toml::table& table(const toml::node& node, const std::string& where) const {
    const auto* t = node.as_table();
    if (t == nullptr) fail(where, "must be a table");
    return *t;
  }

  void only_keys(const toml::table& t, std::initializer_list<std::string_view> known, const std::string& where) const {
    for (const auto& [key, value] : t) {
      if (std::find(known.begin(), known.end(), key.str()) == known.end())
        fail(where, "unknown key \"" + std::string(key.str()) + "\"");
    }
  }

  std::string text(const toml::table& t, std::string_view key, const std::string& where, bool required) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) {
      if (required) fail(where + "." + std::string(key), "missing");
      return {};
    }
    auto value = node->value<std::string>();
    if (!node->is_string() || !value) fail(where + "." + std::string(key), "must be a string");
    if (value->size() > max_text_size) fail(where + "." + std::string(key), "longer than 255 bytes");
    return *value;
  }

  uint32_t cost(const toml::table& t, std::string_view key, const std::string& where) const {
    const toml::node* node = t.get(key);
    std::string name = where + "." + std::string(key);
    if (node == nullptr) fail(name, "missing");
    if (!node->is_integer()) fail(name, "must be an integer");
    int64_t value = *node->value<int64_t>();
    if (value < 0 || value > max_cost_per_minute) fail(name, "must be between 0 and 1000000");
    return static_cast<uint32_t>(value);
  }

  std::vector<std::string> strings(const toml::table& t, std::string_view key, const std::string& where,
                                   size_t max_items) const {
    std::vector<std::string> out;
    const toml::node* node = t.get(key);
    if (node == nullptr) return out;
    std::string name = where + "." + std::string(key);
    const auto* array = node->as_array();
    if (array == nullptr) fail(name, "must be a list of strings");
    if (array->size() > max_items) fail(name, "more than " + std::to_string(max_items) + " entries");
    for (const auto& item : *array) {
      auto value = item.value<std::string>();
      if (!item.is_string() || !value) fail(name, "must be a list of strings");
      if (value->size() > max_text_size) fail(name, "an entry is longer than 255 bytes");
      out.push_back(std::move(*value));
    }
    return out;
  }

  TariffBand band(const toml::node& node, const std::string& where) const {
    const toml::table& t = table(node, where);
    only_keys(t, {"from", "to", "cost_per_minute"}, where);
    auto from = parse_clock_minutes(text(t, "from", where, true));
    auto to = parse_clock_minutes(text(t, "to", where, true));
    if (!from || *from >= minutes_per_day) fail(where + ".from", "must be a time of day, \"HH:MM\" from 00:00 to 23:59");
    if (!to || *to <= *from) fail(where + ".to", "must be \"HH:MM\" after from (24:00 for midnight)");
    return TariffBand{static_cast<uint16_t>(*from), static_cast<uint16_t>(*to), cost(t, "cost_per_minute", where)};
  }

  AccessPoint access_point(const toml::node& node, const std::string& where) const {
    const toml::table& t = table(node, where);
    only_keys(t, {"name", "node", "relays", "cost_per_minute", "tariff", "destinations"}, where);
    AccessPoint point;
    point.name = text(t, "name", where, true);
    point.node = text(t, "node", where, true);
    point.relays = strings(t, "relays", where, max_relays);
    point.cost_per_minute = cost(t, "cost_per_minute", where);
    point.destinations = strings(t, "destinations", where, max_destinations);
    if (const toml::node* tariff = t.get("tariff")) {
      const auto* bands = tariff->as_array();
      if (bands == nullptr) fail(where + ".tariff", "must be a list of { from, to, cost_per_minute }");
      if (bands->size() > max_tariff_bands) fail(where + ".tariff", "more than 24 bands");
      for (size_t i = 0; i < bands->size(); ++i)
        point.tariff.push_back(band(*bands->get(i), where + ".tariff[" + std::to_string(i) + "]"));
      std::sort(point.tariff.begin(), point.tariff.end(),
                [](const TariffBand& a, const TariffBand& b) { return a.start_minute < b.start_minute; });
    }
    return point;
  }

  std::vector<AccessPoint> access_points(const toml::table& t, std::string_view key, const std::string& where) const {
    std::vector<AccessPoint> out;
    const toml::node* node = t.get(key);
    if (node == nullptr) return out;
    std::string name = where + "." + std::string(key);
    const auto* array = node->as_array();
    if (array == nullptr) fail(name, "must be an array of tables ([[area." + std::string(key) + "]])");
    if (array->size() > max_access_points_per_list) fail(name, "more than 16 entries");
    for (size_t i = 0; i < array->size(); ++i)
      out.push_back(access_point(*array->get(i), name + "[" + std::to_string(i) + "]"));
    return out;
  }

 private:
  std::string file_;
};

}  // namespace

std::vector<Area> parse_areas(const std::string& text, const std::string& file_name) {
  AreasReader reader(file_name);
  if (text.size() > max_areas_file_size) reader.fail("file", "larger than 256 KiB");
  toml::table root;
  try {
    root = toml::parse(text, file_name);
  } catch (const toml::parse_error& error) {
    std::ostringstream out;
    out << error.description() << " (line " << error.source().begin.line << ")";
    reader.fail("syntax", out.str());
  }
  reader.only_keys(root, {"area"}, "top level");
  const auto* areas = root.get_as<toml::array>("area");
  if (areas == nullptr) reader.fail("area", "missing: write one [[area]] table per service area");
  if (areas->size() > max_areas) reader.fail("area", "more than 64 areas");
  std::vector<Area> out;
  for (size_t i = 0; i < areas->size(); ++i) {
    std::string where = "area[" + std::to_string(i) + "]";
    const toml::table& t = reader.table(*areas->get(i), where);
    reader.only_keys(t, {"code", "internet", "premium", "agent"}, where);
    Area area;
    area.code = reader.text(t, "code", where, true);
    area.internet = reader.access_points(t, "internet", where);
    area.premium = reader.access_points(t, "premium", where);
    area.agents = reader.access_points(t, "agent", where);
    out.push_back(std::move(area));
  }
  auto valid = validate_areas(out);
  if (!valid) reader.fail("area", valid.error().detail);
  return out;
}

std::vector<Area> load_areas_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigFileError(path + ": cannot be read");
  std::string text(max_areas_file_size + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return parse_areas(text, path);
}

}  // namespace tsunagu::cards
