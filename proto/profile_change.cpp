#include "proto/profile_change.hpp"

#include <unictype.h>
#include <unistr.h>

#include <algorithm>
#include <cstdio>

#include "proto/directory_records.hpp"
#include "proto/signalling.hpp"

namespace tsunagu::proto {
namespace {

std::optional<bool> yes_no(std::string_view v) {
  if (v == "yes" || v == "on" || v == "true" || v == "1") return true;
  if (v == "no" || v == "off" || v == "false" || v == "0") return false;
  return std::nullopt;
}

}  // namespace

bool shows_as_text(uint32_t c) {
  // Controls (C0, DEL, C1) can drive a terminal; the bidirectional embeddings,
  // overrides, isolates and marks reorder what follows them on screen (a name
  // that reads "alice" but is not); a line or paragraph separator breaks a line.
  return !uc_is_general_category(c, UC_CATEGORY_Cc) && !uc_is_property_bidi_control(c) &&
         !uc_is_general_category(c, UC_CATEGORY_Zl) && !uc_is_general_category(c, UC_CATEGORY_Zp);
}

namespace {

constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

// Calls each(c, bytes) for every character of `text` and its UTF-8; a
// malformed byte comes as U+FFFD.
template <class Each>
void each_character(std::string_view text, Each&& each) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  for (size_t at = 0; at < text.size();) {
    ucs4_t c = 0;
    int length = u8_mbtouc(&c, bytes + at, text.size() - at);
    // U+FFFD is also what u8_mbtouc() answers for a malformed byte: pass on its
    // UTF-8, never the byte.
    each(static_cast<uint32_t>(c), c == 0xFFFD ? replacement_character : text.substr(at, static_cast<size_t>(length)));
    at += static_cast<size_t>(length);
  }
}

}  // namespace

std::string printable_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  each_character(text, [&](uint32_t c, std::string_view bytes) {
    out += shows_as_text(c) ? bytes : replacement_character;
  });
  return out;
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  each_character(text, [&](uint32_t c, std::string_view bytes) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (shows_as_text(c)) {
      out += bytes;
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));  // all such are in the BMP
      out += escaped;
    }
  });
  return out + "\"";
}

bool valid_phone(std::string_view phone) {
  if (phone.empty() || phone.size() > max_phone_size) return false;
  bool digit = false;
  for (size_t i = 0; i < phone.size(); ++i) {
    char c = phone[i];
    if (c >= '0' && c <= '9') digit = true;
    else if (c == '+' && i == 0) continue;
    else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') return false;
  }
  return digit;
}

std::string phone_digits(std::string_view phone) {
  std::string out;
  for (size_t i = 0; i < phone.size(); ++i) {
    char c = phone[i];
    if ((c >= '0' && c <= '9') || (c == '+' && out.empty())) out += c;
  }
  return out;
}

std::string fold_category(std::string_view category) {
  std::string out;
  bool space = false;
  for (char c : category) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

bool valid_profile_text(std::string_view text, size_t max) {
  if (text.size() > max) return false;
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  if (u8_check(bytes, text.size()) != nullptr) return false;
  for (size_t at = 0; at < text.size();) {
    ucs4_t c = 0;
    at += static_cast<size_t>(u8_mbtouc_unsafe(&c, bytes + at, text.size() - at));
    if (!shows_as_text(c)) return false;
  }
  return true;
}

bool valid_category(std::string_view folded) {
  return !folded.empty() && valid_profile_text(folded, max_category_size);
}

Expected<ProfileChange, std::string> parse_profile_assignments(const std::vector<std::string>& words) {
  ProfileChange change;
  for (const auto& word : words) {
    auto eq = word.find('=');
    if (eq == std::string::npos || eq == 0)
      return Unexpected("\"" + word + "\" is not key=value (keys: name, phone, category, publish, voicemail, presence, contacts, addresses)");
    std::string key = word.substr(0, eq), value = word.substr(eq + 1);
    if (key == "name") {
      change.display_name = value;
    } else if (key == "phone") {
      change.phone = value;
    } else if (key == "category" || key == "business") {
      change.category = fold_category(value);
    } else if (key == "publish" || key == "voicemail" || key == "addresses") {
      auto flag = yes_no(value);
      if (!flag) return Unexpected(key + "=" + value + ": say yes or no");
      (key == "publish" ? change.publish : key == "voicemail" ? change.voicemail : change.addresses_shown) = *flag;
    } else if (key == "presence") {
      if (value == "anyone") change.presence_visibility = presence_visibility::anyone;
      else if (value == "contacts") change.presence_visibility = presence_visibility::contacts;
      else if (value == "nobody") change.presence_visibility = presence_visibility::nobody;
      else return Unexpected("presence=" + value + ": say anyone, contacts or nobody");
    } else if (key == "contacts") {
      change.contacts = split_contacts(value);
    } else {
      return Unexpected("unknown key \"" + key + "\" (keys: name, phone, category, publish, voicemail, presence, contacts, addresses)");
    }
  }
  if (change.empty()) return Unexpected(std::string("nothing to change: give key=value words"));
  if (auto error = profile_change_error(change)) return Unexpected(*error);
  return change;
}

std::optional<std::string> profile_change_error(const ProfileChange& c) {
  if (c.display_name && !valid_profile_text(*c.display_name, max_display_name_size))
    return "name: at most 128 bytes of text, no control characters";
  if (c.phone && !c.phone->empty() && !valid_phone(*c.phone))
    return "phone \"" + *c.phone + "\": an optional + then digits, spaces, - . ( ); at most 32 bytes";
  if (c.category && !c.category->empty() && (!valid_category(*c.category) || fold_category(*c.category) != *c.category))
    return "category: at most 64 bytes of text (stored in lower case)";
  if (c.contacts) {
    if (c.contacts->size() > max_contacts) return "contacts: at most " + std::to_string(max_contacts) + " IDs";
    for (const auto& id : *c.contacts)
      if (!valid_user_id(id)) return "contacts: \"" + id + "\" is not a user ID";
  }
  return std::nullopt;
}

void add_profile_change(MessageBuilder& b, const ProfileChange& c) {
  if (c.display_name) b.add_string(attr::display_name, *c.display_name);
  if (c.phone) b.add_string(attr::phone, *c.phone);
  if (c.category) b.add_string(attr::category, *c.category);
  if (c.publish) b.add_u32(attr::publish, *c.publish ? 1 : 0);
  if (c.voicemail) b.add_u32(attr::services, *c.voicemail ? service_flag::voicemail : 0);
  if (c.presence_visibility) b.add_u32(attr::presence_visibility, *c.presence_visibility);
  if (c.addresses_shown) b.add_u32(attr::addresses_shown, *c.addresses_shown ? 1 : 0);
  if (c.contacts) b.add_string(attr::contacts, join_contacts(*c.contacts));
}

std::vector<std::string> split_contacts(std::string_view list) {
  std::vector<std::string> ids;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string_view id = list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!id.empty() && id.front() == ' ') id.remove_prefix(1);
    while (!id.empty() && id.back() == ' ') id.remove_suffix(1);
    if (!id.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.emplace_back(id);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return ids;
}

std::string join_contacts(const std::vector<std::string>& ids) {
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  return list;
}

Expected<ProfileChange, std::string> read_profile_change(const Message& m) {
  ProfileChange c;
  if (const auto* a = m.find(attr::display_name)) c.display_name = std::string(read_string(*a));
  if (const auto* a = m.find(attr::phone)) c.phone = std::string(read_string(*a));
  if (const auto* a = m.find(attr::category)) c.category = fold_category(read_string(*a));
  if (const auto* a = m.find(attr::publish)) {
    auto v = read_u32(*a);
    if (!v || *v > 1) return Unexpected(std::string("PUBLISH must be 0 or 1"));
    c.publish = *v == 1;
  }
  if (const auto* a = m.find(attr::services)) {
    auto v = read_u32(*a);
    if (!v) return Unexpected(std::string("SERVICES must be a u32"));
    c.voicemail = (*v & service_flag::voicemail) != 0;
  }
  if (const auto* a = m.find(attr::presence_visibility)) {
    auto v = read_u32(*a);
    if (!v || *v > presence_visibility::nobody)
      return Unexpected(std::string("PRESENCE-VISIBILITY must be 0 (anyone), 1 (contacts) or 2 (nobody)"));
    c.presence_visibility = *v;
  }
  if (const auto* a = m.find(attr::contacts)) {
    if (a->value.size() > max_contacts * (max_user_id_size + 1))
      return Unexpected(std::string("CONTACTS: too long"));
    c.contacts = split_contacts(read_string(*a));
  }
  if (const auto* a = m.find(attr::addresses_shown)) {
    auto v = read_u32(*a);
    if (!v || *v > 1) return Unexpected(std::string("ADDRESSES-SHOWN must be 0 or 1"));
    c.addresses_shown = *v == 1;
  }
  return c;
}

}  // namespace tsunagu::proto
