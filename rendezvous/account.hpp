// An account on the node and its durable encoding (a versioned tag-length-value
// record, so fields can be added without a migration).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/socket_address.hpp"

namespace tsunagu::rendezvous {

struct Account {
  std::string user_id;
  std::string password_hash;  // security::hash_password's encoding; never the password
  std::string display_name;
  std::string phone;
  std::string category;  // business category; empty for a person
  bool publish = false;  // listed in the directory
  uint32_t services = 0;  // proto::service_flag bits
  std::optional<proto::SocketAddress> static_address;  // an always-on terminal's fixed address
  uint64_t created_at = 0;  // Unix seconds
  // The account epoch when it was created or its password last changed
  // (AccountStore): a login holds only while this is unchanged.
  uint64_t generation = 0;
  // Who may look the user up (proto::presence_visibility) and whether
  // lookups carry the reported (private) addresses (docs/security.md).
  uint32_t presence_visibility = 0;
  bool addresses_shown = false;
  std::vector<std::string> contacts;  // who sees the user with presence=contacts (at most proto::max_contacts)
  bool verified = false;  // an operator checked the directory row; only `user verify` sets it
  // May use the web API's admin endpoints (docs/web.md); only `user add --admin`,
  // `user set-admin` and an admin's POST /api/admin/users set it.
  bool admin = false;

  friend bool operator==(const Account&, const Account&) = default;
};

// What the node remembers of a user's last login, durably.
struct LoginRecord {
  uint64_t time = 0;  // Unix seconds
  std::vector<proto::SocketAddress> reported;
  std::optional<proto::SocketAddress> observed;

  friend bool operator==(const LoginRecord&, const LoginRecord&) = default;
};

inline constexpr size_t max_record_size = 8192;  // an account with a full contact list fits

// Whether `asker` (a logged-in user) may see the account in lookups, calls
// and voicemail answers; to one who may not, it answers like an unknown ID.
bool visible_to(const Account& account, std::string_view asker);

Bytes encode_account(const Account& account);
// nullopt when the bytes are not a valid record (a corrupted or foreign file).
std::optional<Account> decode_account(ByteView bytes);
// The record's generation alone, with no string copied (a login's and a
// request's check need nothing else); nullopt as decode_account.
std::optional<uint64_t> decode_account_generation(ByteView bytes);
Bytes encode_login_record(const LoginRecord& record);
std::optional<LoginRecord> decode_login_record(ByteView bytes);

}  // namespace tsunagu::rendezvous
