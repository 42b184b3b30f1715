#include "rendezvous/account_admin.hpp"

#include <algorithm>

#include "proto/signalling.hpp"
#include "rendezvous/agent_registry.hpp"
#include "rendezvous/voicemail_store.hpp"

namespace tsunagu::rendezvous {
namespace {

Unexpected<AccountAdminError> storage_failure(const storage::StoreError& error) {
  return Unexpected(AccountAdminError{AccountAdminErrc::storage, "storage: " + error.detail});
}

Unexpected<AccountAdminError> refuse(AccountAdminErrc code, std::string detail) {
  return Unexpected(AccountAdminError{code, std::move(detail)});
}

AdminResult<void> check_id(std::string_view user_id) {
  if (!proto::valid_user_id(user_id))
    return refuse(AccountAdminErrc::invalid_id, "invalid user ID \"" + std::string(user_id) +
                                                     "\": 1-64 of a-z 0-9 . _ - + then optionally @domain");
  return {};
}

// Reads, changes and writes one account in one transaction.
template <class Change>
AdminResult<void> change_account(AccountStore& store, std::string_view user_id, Change&& change) {
  if (auto ok = check_id(user_id); !ok) return ok;
  auto txn = store.begin_write();
  if (!txn) return storage_failure(txn.error());
  auto found = store.find(*txn, user_id);
  if (!found) return storage_failure(found.error());
  if (!found->has_value()) return refuse(AccountAdminErrc::no_such_user, "no such user: " + std::string(user_id));
  Account account = **found;
  if (auto changed = change(*txn, account); !changed) return changed;
  if (auto updated = store.update(*txn, account); !updated) return storage_failure(updated.error());
  if (auto committed = txn->commit(); !committed) return storage_failure(committed.error());
  return {};
}

}  // namespace

AdminResult<void> add_account(AccountStore& store, const NewAccount& request, uint32_t quarantine_days,
                              uint64_t now_unix) {
  if (auto ok = check_id(request.user_id); !ok) return ok;
  if (proto::card_holder_id(request.user_id))
    return refuse(AccountAdminErrc::invalid_id,
                  "user ID \"" + request.user_id + "\" refused: " + std::string(proto::card_holder_id_reason));
  auto registry = AgentRegistry::open(store.environment());  // before the write transaction: it opens tables
  if (!registry) return storage_failure(registry.error());
  auto txn = store.begin_write();
  if (!txn) return storage_failure(txn.error());
  auto route = registry->route_of(*txn, request.user_id);
  if (!route) return storage_failure(route.error());
  if (route->has_value())
    return refuse(AccountAdminErrc::agent_route, request.user_id + " is inside " + **route +
                                                     ", which is routed to a LAN agent: IDs there are its "
                                                     "extensions, never accounts");
  auto removed_at = store.removed_at(*txn, request.user_id);
  if (!removed_at) return storage_failure(removed_at.error());
  uint64_t held_until = removed_at->value_or(0) + uint64_t{quarantine_days} * 86400;
  if (removed_at->has_value() && now_unix < held_until && !request.reuse_removed_id)
    return refuse(AccountAdminErrc::quarantined,
                  request.user_id + " was removed less than accounts.removed_id_quarantine_days (" +
                      std::to_string(quarantine_days) + ") ago; give it back to its old owner only, with --reuse-removed-id");
  Account account;
  account.user_id = request.user_id;
  account.display_name = request.display_name;
  account.phone = request.phone;
  account.created_at = now_unix;
  account.password_hash = request.password_hash;
  account.admin = request.admin;
  auto created = store.create(*txn, account);
  if (!created) return storage_failure(created.error());
  if (!*created) return refuse(AccountAdminErrc::exists, "user " + request.user_id + " already exists");
  if (auto committed = txn->commit(); !committed) return storage_failure(committed.error());
  return {};
}

AdminResult<size_t> remove_account(AccountStore& store, std::string_view user_id, uint64_t now_unix) {
  if (auto ok = check_id(user_id); !ok) return Unexpected(ok.error());
  auto voicemail = VoicemailStore::open(store.environment());  // before the write transaction: it opens tables
  if (!voicemail) return storage_failure(voicemail.error());
  auto txn = store.begin_write();
  if (!txn) return storage_failure(txn.error());
  auto removed = store.remove(*txn, user_id, now_unix);
  if (!removed) return storage_failure(removed.error());
  if (!*removed) return refuse(AccountAdminErrc::no_such_user, "no such user: " + std::string(user_id));
  auto deleted = voicemail->remove_mailbox(*txn, user_id);
  if (!deleted) return storage_failure(deleted.error());
  if (auto committed = txn->commit(); !committed) return storage_failure(committed.error());
  return *deleted;
}

AdminResult<void> reset_password(AccountStore& store, std::string_view user_id, const std::string& password_hash) {
  return change_account(store, user_id, [&](storage::Transaction& txn, Account& account) -> AdminResult<void> {
    account.password_hash = password_hash;
    auto epoch = store.bump_epoch(txn);  // the account's logged-in links end
    if (!epoch) return storage_failure(epoch.error());
    account.generation = *epoch;
    return {};
  });
}

AdminResult<void> set_verified(AccountStore& store, std::string_view user_id, bool verified) {
  return change_account(store, user_id, [&](storage::Transaction&, Account& account) -> AdminResult<void> {
    account.verified = verified;
    return {};
  });
}

AdminResult<void> set_admin(AccountStore& store, std::string_view user_id, bool admin) {
  return change_account(store, user_id, [&](storage::Transaction&, Account& account) -> AdminResult<void> {
    account.admin = admin;
    return {};
  });
}

AdminResult<Account> read_account(AccountStore& store, std::string_view user_id) {
  if (auto ok = check_id(user_id); !ok) return Unexpected(ok.error());
  auto txn = store.begin_read();
  if (!txn) return storage_failure(txn.error());
  auto found = store.find(*txn, user_id);
  if (!found) return storage_failure(found.error());
  if (!found->has_value()) return refuse(AccountAdminErrc::no_such_user, "no such user: " + std::string(user_id));
  return **found;
}

AdminResult<AccountPage> list_accounts(AccountStore& store, std::string_view text, std::string_view cursor,
                                       size_t limit, size_t max_scanned) {
  auto txn = store.begin_read();
  if (!txn) return storage_failure(txn.error());
  return filter_accounts(
      [&](const std::string& after, size_t n) -> AdminResult<std::vector<Account>> {
        auto accounts = store.list(*txn, after.empty() ? std::string() : after + '\0', n);
        if (!accounts) return storage_failure(accounts.error());
        return std::move(*accounts);
      },
      text, cursor, limit, max_scanned);
}

}  // namespace tsunagu::rendezvous
