// An Ethernet MAC address in the text form the table keys and shows
// ("aa:bb:cc:dd:ee:ff": six octets, lowercase, two digits each, colons), held
// inline: a lease parsed from a 100,000-line file costs no heap string for it
// (17 characters is past std::string's inline capacity of 15). Made by
// normalise_mac (field_normalisation.hpp), which refuses anything but six
// octets: other hardware types (InfiniBand's 20 octets) are not MACs here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tsunagu::alloc {

class MacAddress {
 public:
  static constexpr size_t kOctets = 6;
  static constexpr size_t kTextLength = kOctets * 3 - 1;

  MacAddress() = default;
  explicit MacAddress(std::span<const uint8_t, kOctets> octets) {
    static constexpr char kDigits[] = "0123456789abcdef";
    for (size_t i = 0; i < kOctets; ++i) {
      text_[i * 3] = kDigits[octets[i] >> 4];
      text_[i * 3 + 1] = kDigits[octets[i] & 0xf];
      if (i + 1 < kOctets) text_[i * 3 + 2] = ':';
    }
    length_ = kTextLength;
  }
  // Text in any form normalise_mac takes. Text that is not a MAC leaves it
  // empty: code reading input calls normalise_mac and reports the error.
  // (Defined in field_normalisation.cpp, beside the parser.)
  MacAddress& operator=(std::string_view text);

  bool empty() const { return length_ == 0; }
  size_t size() const { return length_; }
  std::string_view view() const { return {text_.data(), length_}; }
  operator std::string_view() const { return view(); }  // NOLINT: used where text is
  std::string str() const { return std::string(view()); }
  void clear() { length_ = 0; }

  friend bool operator==(const MacAddress& a, const MacAddress& b) { return a.view() == b.view(); }
  friend bool operator==(const MacAddress& a, std::string_view b) { return a.view() == b; }

 private:
  std::array<char, kTextLength> text_{};
  uint8_t length_ = 0;
};

}  // namespace tsunagu::alloc
