#include "cluster/pg/pg_account_admin.hpp"

#include <functional>
#include <string>

#include "cluster/pg/pg_account_store.hpp"
#include "cluster/pg/pg_migrations.hpp"
#include "cluster/pg/pg_turn.hpp"
#include "proto/signalling.hpp"

namespace tsunagu::cluster {

namespace {

using rendezvous::AccountAdminErrc;
using rendezvous::AccountAdminError;

AccountAdminError storage_failure(const PgError& error) {
  return AccountAdminError{AccountAdminErrc::storage, "PostgreSQL: " + std::string(to_string(error.code)) + ": " + error.detail};
}

// Runs what `queue` puts on one turn, in one transaction; the first error, if any.
std::optional<PgError> run_one_turn(PgConnection& connection, const std::function<void(PgTurn&)>& queue) {
  if (auto current = require_current_schema(connection); !current) return current.error();
  PgTurn turn;
  queue(turn);
  std::optional<PgError> first;
  auto statements = turn.take();
  auto outcome = execute_turn(connection, statements);
  for (auto& result : outcome.results)
    if (!result && !first) first = result.error();
  deliver(statements, outcome);
  return first;
}

}  // namespace

namespace {

Expected<rendezvous::Account, AccountAdminError> new_account_row(const rendezvous::NewAccount& account, uint64_t now_unix) {
  if (proto::card_holder_id(account.user_id))
    return Unexpected(AccountAdminError{AccountAdminErrc::invalid_id,
                                        "user ID \"" + account.user_id + "\" refused: " +
                                            std::string(proto::card_holder_id_reason)});
  rendezvous::Account row;
  row.user_id = account.user_id;
  row.password_hash = account.password_hash;
  row.display_name = account.display_name;
  row.phone = account.phone;
  row.admin = account.admin;
  row.created_at = now_unix;
  return row;
}

// Refused while removed_at + quarantine > now, that is removed_at > now - quarantine.
std::optional<int64_t> quarantined_after(const rendezvous::NewAccount& account, uint32_t quarantine_days,
                                         uint64_t now_unix) {
  if (account.reuse_removed_id) return std::nullopt;
  return static_cast<int64_t>(now_unix) - static_cast<int64_t>(uint64_t{quarantine_days} * 86400);
}

rendezvous::AdminResult<void> add_result(const PgAccountStore::AddOutcome& outcome, const rendezvous::NewAccount& account,
                                         uint32_t quarantine_days) {
  using Kind = PgAccountStore::AddOutcome::Kind;
  switch (outcome.kind) {
    case Kind::added:
      return {};
    case Kind::agent_route:
      return Unexpected(AccountAdminError{AccountAdminErrc::agent_route,
                                          account.user_id + " is inside " + outcome.route +
                                              ", which is routed to a LAN agent: IDs there are its extensions, never accounts"});
    case Kind::quarantined:
      return Unexpected(AccountAdminError{AccountAdminErrc::quarantined,
                                          account.user_id + " was removed less than " + std::to_string(quarantine_days) +
                                              " days ago; --reuse-removed-id gives it back to its old owner"});
    case Kind::exists:
      break;
  }
  return Unexpected(AccountAdminError{AccountAdminErrc::exists, "user " + account.user_id + " already exists"});
}

AccountAdminError read_failure(const storage::StoreError& error) {
  return AccountAdminError{AccountAdminErrc::storage, error.detail};
}

}  // namespace

rendezvous::AdminResult<void> pg_add_account(PgConnection& connection, const rendezvous::NewAccount& account,
                                             uint32_t quarantine_days, uint64_t now_unix) {
  auto row = new_account_row(account, now_unix);
  if (!row) return Unexpected(row.error());
  PgAccountStore store;
  PgAccountStore::AddOutcome outcome;
  if (auto error = run_one_turn(connection, [&](PgTurn& turn) {
        store.add_checked(turn, *row, quarantined_after(account, quarantine_days, now_unix),
                          [&](Expected<PgAccountStore::AddOutcome, PgError> result) {
                            if (result) outcome = std::move(*result);
                          });
      }))
    return Unexpected(storage_failure(*error));
  return add_result(outcome, account, quarantine_days);
}

rendezvous::AdminResult<void> pg_remove_account(PgConnection& connection, std::string_view user_id, uint64_t now_unix) {
  PgAccountStore store;
  bool removed = false;
  if (auto error = run_one_turn(connection, [&](PgTurn& turn) {
        store.remove(turn, user_id, now_unix, [&](Expected<bool, PgError> result) { removed = result && *result; });
      }))
    return Unexpected(storage_failure(*error));
  if (!removed) return Unexpected(AccountAdminError{AccountAdminErrc::no_such_user, "no such user: " + std::string(user_id)});
  return {};
}

rendezvous::AdminResult<void> pg_list_accounts(PgConnection& connection,
                                               const std::function<void(const rendezvous::Account&)>& each) {
  constexpr size_t page_size = 1000;
  PgAccountStore store;
  std::string from;
  while (true) {
    std::vector<rendezvous::Account> page;
    if (auto error = run_one_turn(connection, [&](PgTurn& turn) {
          store.list(turn, from, page_size, [&](Expected<std::vector<rendezvous::Account>, PgError> result) {
            if (result) page = std::move(*result);
          });
        }))
      return Unexpected(storage_failure(*error));
    for (const auto& account : page) each(account);
    if (page.size() < page_size) return {};
    // IDs are ASCII from '+' up, so nothing sorts between an ID and ID + \x01 (text holds no NUL).
    from = page.back().user_id + '\x01';
  }
}

rendezvous::AdminResult<rendezvous::Account> PgSharedAccountAdmin::read(std::string_view user_id) {
  if (!proto::valid_user_id(user_id))
    return Unexpected(AccountAdminError{AccountAdminErrc::invalid_id, "invalid user ID"});
  PgAccountStore store;
  auto found = reader_->read<std::optional<rendezvous::Account>>(
      [&](PgTurn& turn, PgDone<std::optional<rendezvous::Account>> done) { store.find(turn, user_id, std::move(done)); });
  if (!found) return Unexpected(read_failure(found.error()));
  if (!found->has_value())
    return Unexpected(AccountAdminError{AccountAdminErrc::no_such_user, "no such user: " + std::string(user_id)});
  return std::move(**found);
}

rendezvous::AdminResult<rendezvous::AccountPage> PgSharedAccountAdmin::list(std::string_view text,
                                                                          std::string_view cursor, size_t limit) {
  PgAccountStore store;
  return rendezvous::filter_accounts(
      [&](const std::string& after, size_t n) -> rendezvous::AdminResult<std::vector<rendezvous::Account>> {
        // IDs are ASCII from '+' up, so nothing sorts between an ID and ID + \x01 (text holds no NUL).
        std::string from = after.empty() ? std::string() : after + '\x01';
        auto page = reader_->read<std::vector<rendezvous::Account>>(
            [&](PgTurn& turn, PgDone<std::vector<rendezvous::Account>> done) { store.list(turn, from, n, std::move(done)); });
        if (!page) return Unexpected(read_failure(page.error()));
        return std::move(*page);
      },
      text, cursor, limit);
}

rendezvous::AdminResult<void> PgSharedAccountAdmin::add(const rendezvous::NewAccount& account, uint32_t quarantine_days,
                                                        uint64_t now_unix) {
  if (!proto::valid_user_id(account.user_id))
    return Unexpected(AccountAdminError{AccountAdminErrc::invalid_id, "invalid user ID \"" + account.user_id + "\""});
  auto row = new_account_row(account, now_unix);
  if (!row) return Unexpected(row.error());
  PgAccountStore store;
  auto outcome = reader_->read<PgAccountStore::AddOutcome>([&](PgTurn& turn, PgDone<PgAccountStore::AddOutcome> done) {
    store.add_checked(turn, *row, quarantined_after(account, quarantine_days, now_unix), std::move(done));
  });
  if (!outcome) return Unexpected(read_failure(outcome.error()));
  return add_result(*outcome, account, quarantine_days);
}

rendezvous::AdminResult<void> PgSharedAccountAdmin::remove(std::string_view user_id, uint64_t now_unix) {
  PgAccountStore store;
  auto removed = reader_->read<bool>(
      [&](PgTurn& turn, PgDone<bool> done) { store.remove(turn, user_id, now_unix, std::move(done)); });
  if (!removed) return Unexpected(read_failure(removed.error()));
  if (!*removed) return Unexpected(AccountAdminError{AccountAdminErrc::no_such_user, "no such user: " + std::string(user_id)});
  return {};
}

}  // namespace tsunagu::cluster
