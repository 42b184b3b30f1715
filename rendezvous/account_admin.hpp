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

#include <cctype>
#include <cstdint>
#include <functional>
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
// list_accounts' filter and paging over any store: `batch(after, n)` gives up
// to n accounts with IDs greater than `after` ("": from the first), in ID order.
using AccountBatch = std::function<AdminResult<std::vector<Account>>(const std::string& after, size_t n)>;
// Inline: cluster/pg uses it and links rendezvous/'s headers only.
inline AdminResult<AccountPage> filter_accounts(const AccountBatch& batch, std::string_view text,
                                                std::string_view cursor, size_t limit, size_t max_scanned = 10'000) {
  auto lower = [](std::string_view from) {
    std::string out(from);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  const std::string needle = lower(text);
  AccountPage page;
  std::string after(cursor);
  size_t scanned = 0;
  constexpr size_t batch_size = 256;
  while (true) {
    auto accounts = batch(after, batch_size);
    if (!accounts) return Unexpected(accounts.error());
    for (const auto& account : *accounts) {
      ++scanned;
      bool match = needle.empty() || lower(account.user_id).find(needle) != std::string::npos ||
                   lower(account.display_name).find(needle) != std::string::npos;
      if (match) page.accounts.push_back(account);
      if (page.accounts.size() == limit || scanned == max_scanned) {
        page.next_cursor = account.user_id;
        return page;
      }
    }
    if (accounts->size() < batch_size) return page;
    after = accounts->back().user_id;
  }
}

// The operator's account changes where the node does not keep its accounts in
// its own LMDB (cluster mode: cluster/pg/pg_account_admin.hpp), for the web
// API's admin endpoints. The changes it has no form for answer 501 there.
class SharedAccountAdmin {
 public:
  virtual ~SharedAccountAdmin() = default;
  virtual AdminResult<Account> read(std::string_view user_id) = 0;
  virtual AdminResult<AccountPage> list(std::string_view text, std::string_view cursor, size_t limit) = 0;
  virtual AdminResult<void> add(const NewAccount& account, uint32_t quarantine_days, uint64_t now_unix) = 0;
  virtual AdminResult<void> remove(std::string_view user_id, uint64_t now_unix) = 0;
};

}  // namespace tsunagu::rendezvous
