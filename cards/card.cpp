#include "cards/card.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace tsunagu::cards {

namespace {

std::optional<uint32_t> digits(std::string_view text, size_t count) {
  if (text.size() != count) return std::nullopt;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  return value;
}

}  // namespace

std::string CardId::text() const {
  char out[32];
  std::snprintf(out, sizeof out, "%08u-%04u-%06u", issue_date, group, sequence);
  return out;
}

std::optional<CardId> CardId::parse(std::string_view text) {
  if (text.size() != 20 || text[8] != '-' || text[13] != '-') return std::nullopt;
  auto date = digits(text.substr(0, 8), 8);
  auto group = digits(text.substr(9, 4), 4);
  auto sequence = digits(text.substr(14, 6), 6);
  if (!date || !group || !sequence) return std::nullopt;
  return CardId{*date, *group, *sequence};
}

uint32_t AccessPoint::cost_at(int minute_of_day) const {
  for (const TariffBand& band : tariff)
    if (minute_of_day >= band.start_minute && minute_of_day < band.end_minute) return band.cost_per_minute;
  return cost_per_minute;
}

bool AccessPoint::reaches(std::string_view destination) const {
  if (destinations.empty()) return true;
  return std::any_of(destinations.begin(), destinations.end(),
                     [&](const std::string& prefix) { return destination.starts_with(prefix); });
}

const Area* Card::find_area(std::string_view code) const {
  for (const Area& area : areas)
    if (area.code == code) return &area;
  return nullptr;
}

std::optional<Bytes> from_hex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out;
  for (size_t i = 0; i < text.size(); i += 2) {
    int high = digit(text[i]), low = digit(text[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(std::byte(static_cast<uint8_t>(high * 16 + low)));
  }
  return out;
}

bool CardUpdate::revokes(uint64_t serial) const {
  return std::binary_search(revoked.begin(), revoked.end(), serial);
}

}  // namespace tsunagu::cards
