// A change to a user's directory row ("profile"): what `tsunagu profile set`
// and `tsunagu-rendezvous user profile` accept as key=value words, and how it
// travels in a profile_set request. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.hpp"
#include "proto/stun_message.hpp"

namespace tsunagu::proto {

struct ProfileChange {
  std::optional<std::string> display_name;
  std::optional<std::string> phone;     // empty: remove
  std::optional<std::string> category;  // empty: not a business
  std::optional<bool> publish;
  std::optional<bool> voicemail;  // the voicemail service: accept messages
  std::optional<uint32_t> presence_visibility;  // presence_visibility::anyone or ::nobody
  std::optional<bool> addresses_shown;          // lookups carry the reported (private) addresses
  std::optional<std::vector<std::string>> contacts;  // the whole new list (may be empty)
  bool empty() const {
    return !display_name && !phone && !category && !publish && !voicemail && !presence_visibility && !addresses_shown &&
           !contacts;
  }
  friend bool operator==(const ProfileChange&, const ProfileChange&) = default;
};

// The keys profile_set understands, for help texts.
inline constexpr std::string_view profile_keys_help =
    "name=TEXT phone=NUMBER category=TEXT (business category; empty = a person) publish=yes|no voicemail=yes|no "
    "presence=anyone|contacts|nobody (who may look you up and call you) contacts=ID,ID,... (your contact list; "
    "empty = none) addresses=yes|no (lookups show your private addresses)";

// "+81-6-1234-0000", "(06) 1234 0000": an optional leading '+', then digits
// with spaces, '-', '.', '(' and ')' between them; 1..32 bytes, at least one digit.
bool valid_phone(std::string_view phone);
// The digits (and a leading '+'): what phone lookups compare.
std::string phone_digits(std::string_view phone);
// Categories are stored folded: ASCII lower case, spaces trimmed and runs of
// spaces made one. Valid when 1..64 bytes of printable text after folding.
std::string fold_category(std::string_view category);
bool valid_category(std::string_view folded);
// Text other people are shown (display names, categories, directory queries):
// at most `max` bytes of well-formed UTF-8 (RFC 3629) in which every character
// shows_as_text().
bool valid_profile_text(std::string_view text, size_t max);
// False for a control character (C0, DEL, C1), a bidirectional formatting
// character (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069) and a line
// or paragraph separator (U+2028, U+2029).
bool shows_as_text(uint32_t c);
// `text` fit for a terminal: each malformed byte and each character that does
// not show_as_text() becomes U+FFFD. For text that came from elsewhere (the
// node's answers, records older than these checks) before it is printed.
std::string printable_text(std::string_view text);
// `text` as a JSON string literal (quoted): '"', '\\' and every character
// that does not show_as_text() escaped as \uXXXX, malformed bytes as \ufffd.
std::string json_string(std::string_view text);

// Parses "name=Alice Smith" "publish=yes" ...; the error names the bad word.
Expected<ProfileChange, std::string> parse_profile_assignments(const std::vector<std::string>& words);
// Checks every field against its rules; nullopt when the change is good.
std::optional<std::string> profile_change_error(const ProfileChange& change);

void add_profile_change(MessageBuilder& builder, const ProfileChange& change);
// "bob, carol,bob" -> {bob, carol}: trimmed, empty items and repeats dropped (not checked).
std::vector<std::string> split_contacts(std::string_view list);
std::string join_contacts(const std::vector<std::string>& ids);
// The fields present in a profile_set request (not yet checked).
Expected<ProfileChange, std::string> read_profile_change(const Message& message);

}  // namespace tsunagu::proto
