// The operator's account changes, shared by `tsunagu-rendezvous user ...`
// (main.cpp) and the web API's admin endpoints (web_api.cpp), so both apply
// the same checks: an ID inside a LAN agent's route is never an account, a
// removed ID is held for the quarantine, a password change or a removal moves
// the account epoch on (the account's logged-in links end).
//
// Each call runs in its own write transaction and commits it. Passwords come
// in already hashed (security::hash_password): the CLI hashes in place, the
// node must not run scrypt on its loop thread for long.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.hpp"
#include "rendezvous/account_store.hpp"

namespace tsunagu::rendezvous {

enum class AccountAdminErrc {
  invalid_id,   // not a valid user ID
  no_such_user,
  exists,       // the ID is taken
  agent_route,  // inside a domain or prefix routed to a LAN agent
  quarantined,  // removed less than the quarantine ago
  storage,
};

struct AccountAdminError {
  AccountAdminErrc code = AccountAdminErrc::storage;
  std::string detail;  // for people
};

template <class T>
using AdminResult = Expected<T, AccountAdminError>;

struct NewAccount {
  std::string user_id;
  std::string password_hash;
  std::string display_name;
  std::string phone;
  bool admin = false;
  bool reuse_removed_id = false;  // allow an ID still in its quarantine (its old owner's)
};

AdminResult<void> add_account(AccountStore& store, const NewAccount& account, uint32_t quarantine_days,
                              uint64_t now_unix);
// The number of voicemail messages deleted with the account.
AdminResult<size_t> remove_account(AccountStore& store, std::string_view user_id, uint64_t now_unix);
AdminResult<void> reset_password(AccountStore& store, std::string_view user_id, const std::string& password_hash);
AdminResult<void> set_verified(AccountStore& store, std::string_view user_id, bool verified);
AdminResult<void> set_admin(AccountStore& store, std::string_view user_id, bool admin);
AdminResult<Account> read_account(AccountStore& store, std::string_view user_id);

struct AccountPage {
  std::vector<Account> accounts;
  std::optional<std::string> next_cursor;  // list again after this ID for more
};
// Accounts after `cursor` (empty: from the start) in ID order whose ID or
// display name contains `text` (case-insensitive; empty: all), at most `limit`.
// At most `max_scanned` accounts are read per call: a page may come back
// short, with a cursor to continue.
AdminResult<AccountPage> list_accounts(AccountStore& store, std::string_view text, std::string_view cursor,
                                       size_t limit, size_t max_scanned = 10'000);

}  // namespace tsunagu::rendezvous
