#include "rendezvous/area_prefixes.hpp"

#include <algorithm>
#include <charconv>

namespace tsunagu::rendezvous {
namespace {

bool prefix_holds(const std::array<uint8_t, 16>& prefix, unsigned length, const uint8_t* address) {
  unsigned whole = length / 8;
  if (!std::equal(prefix.begin(), prefix.begin() + whole, address)) return false;
  unsigned rest = length % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (address[whole] & mask) == prefix[whole];
}

}  // namespace

std::optional<std::string> AreaPrefixes::add(std::string_view prefix, std::string area) {
  if (entries_.size() >= max_prefixes) return "more than " + std::to_string(max_prefixes) + " prefixes";
  std::string_view address_text = prefix;
  std::optional<unsigned> length;
  if (size_t slash = prefix.find('/'); slash != std::string_view::npos) {
    address_text = prefix.substr(0, slash);
    std::string_view digits = prefix.substr(slash + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size())
      return "\"" + std::string(prefix) + "\": the length after / is not a number";
    length = value;
  }
  // A bare address only: SocketAddress::parse would also take a port
  // ("198.51.100.0:7400", "[2001:db8::]:7400").
  auto colons = std::count(address_text.begin(), address_text.end(), ':');
  bool bare = !address_text.empty() && address_text.front() != '[' && colons != 1;
  auto address = bare ? proto::SocketAddress::parse(address_text, 0) : std::nullopt;
  if (!address) return "\"" + std::string(prefix) + "\" is not ADDRESS/LENGTH";
  unsigned bits = static_cast<unsigned>(address->ip_size()) * 8;
  unsigned prefix_length = length.value_or(bits);
  if (prefix_length > bits) return "\"" + std::string(prefix) + "\": the length is above " + std::to_string(bits);
  Entry entry{address->family, {}, prefix_length, std::move(area)};
  std::copy(address->ip.begin(), address->ip.end(), entry.bits.begin());
  // Host bits set past the length are a typo more often than not
  // (198.51.100.1/24): refused rather than guessed.
  std::array<uint8_t, 16> masked{};
  std::copy(entry.bits.begin(), entry.bits.begin() + prefix_length / 8, masked.begin());
  if (prefix_length % 8 != 0)
    masked[prefix_length / 8] = static_cast<uint8_t>(entry.bits[prefix_length / 8] & (0xFF << (8 - prefix_length % 8)));
  if (masked != entry.bits) return "\"" + std::string(prefix) + "\" has address bits set past its length";
  for (const auto& other : entries_)
    if (other.family == entry.family && other.length == entry.length && other.bits == entry.bits)
      return "\"" + std::string(prefix) + "\" is given twice";
  entries_.push_back(std::move(entry));
  return std::nullopt;
}

const std::string* AreaPrefixes::area_of(const proto::SocketAddress& address) const {
  auto family = address.family;
  const uint8_t* ip = address.ip.data();
  static constexpr std::array<uint8_t, 12> v4_mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (family == proto::SocketAddress::Family::ipv6 && std::equal(v4_mapped.begin(), v4_mapped.end(), ip)) {
    family = proto::SocketAddress::Family::ipv4;
    ip += 12;
  }
  const Entry* best = nullptr;
  for (const auto& entry : entries_)
    if (entry.family == family && (best == nullptr || entry.length > best->length) &&
        prefix_holds(entry.bits, entry.length, ip))
      best = &entry;
  return best ? &best->area : nullptr;
}

}  // namespace tsunagu::rendezvous
