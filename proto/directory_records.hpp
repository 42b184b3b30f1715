// The record values carried in DIRECTORY-ENTRY, DIRECTORY-CATEGORY and
// VOICEMAIL-ENTRY attributes (docs/protocol.md, section 5), on byte buffers
// only. Each record has a size limit; decode refuses anything longer, shorter
// or with a field over its own limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/bytes.hpp"

namespace tsunagu::proto {

inline constexpr size_t max_phone_size = 32;
inline constexpr size_t max_category_size = 64;
inline constexpr size_t max_directory_query_size = 64;
inline constexpr size_t max_directory_record_size = 512;

// One published user in a directory answer.
struct DirectoryEntry {
  std::string user_id;       // <= 128 bytes
  std::string display_name;  // <= 128 bytes
  std::string category;      // <= 64 bytes; empty for a person
  std::string phone;         // <= 32 bytes
  bool online = false;
  bool verified = false;  // an operator checked the row (`tsunagu-rendezvous user verify`)
  friend bool operator==(const DirectoryEntry&, const DirectoryEntry&) = default;
};

// One business category and how many published businesses it holds.
struct CategoryCount {
  std::string name;  // <= 64 bytes
  uint32_t count = 0;
  friend bool operator==(const CategoryCount&, const CategoryCount&) = default;
};

// One message in a voicemail list answer.
struct VoicemailEntry {
  uint64_t id = 0;
  uint64_t time = 0;  // Unix seconds it was left
  uint64_t size = 0;  // bytes
  std::string caller;  // <= 128 bytes
  friend bool operator==(const VoicemailEntry&, const VoicemailEntry&) = default;
};

// Encoders cut nothing: they expect fields within their limits (the node
// checks them when they are stored) and return an empty buffer otherwise.
Bytes encode_directory_entry(const DirectoryEntry& entry);
std::optional<DirectoryEntry> decode_directory_entry(ByteView bytes);
Bytes encode_category_count(const CategoryCount& category);
std::optional<CategoryCount> decode_category_count(ByteView bytes);
Bytes encode_voicemail_entry(const VoicemailEntry& entry);
std::optional<VoicemailEntry> decode_voicemail_entry(ByteView bytes);

}  // namespace tsunagu::proto
