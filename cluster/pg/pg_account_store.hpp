// Accounts, the account epoch, removed IDs and last logins in PostgreSQL: the
// operations of rendezvous::AccountStore, queued on a PgTurn so they share the
// turn's transaction; each answer arrives after the turn's COMMIT (or as an
// error when it did not commit). Each operation is one statement, so a turn
// retried without a refused statement repeats nothing half-done.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/pg/pg_turn.hpp"
#include "rendezvous/account.hpp"

namespace tsunagu::cluster {

class PgAccountStore {
 public:
  using Account = rendezvous::Account;
  using LoginRecord = rendezvous::LoginRecord;

  // false when the user ID is taken. The stored generation is the current epoch.
  void create(PgTurn& turn, const Account& account, PgDone<bool> done);
  // What add_checked() did, and for agent_route the domain or number prefix.
  struct AddOutcome {
    enum class Kind { added, exists, agent_route, quarantined } kind = Kind::added;
    std::string route;
  };
  // create() with the operator's checks in the same locked statement (schema
  // 4's account_add()): refused when the ID is inside an agent's enrolled
  // route, was removed after `quarantined_after` (unix seconds; nullopt: no
  // quarantine) or is taken; an enrolment cannot slip in between.
  void add_checked(PgTurn& turn, const Account& account, std::optional<int64_t> quarantined_after,
                   PgDone<AddOutcome> done);
  void find(PgTurn& turn, std::string_view user_id, PgDone<std::optional<Account>> done);
  // Writes every field (creating the row if it is missing, as the LMDB store's put).
  void update(PgTurn& turn, const Account& account, PgDone<void> done);
  // false when there was no such user; else records the removal time, drops
  // the last login and the user's voicemail, and moves the epoch on.
  void remove(PgTurn& turn, std::string_view user_id, uint64_t removed_at, PgDone<bool> done);
  void removed_at(PgTurn& turn, std::string_view user_id, PgDone<std::optional<uint64_t>> done);
  void epoch(PgTurn& turn, PgDone<uint64_t> done);
  void bump_epoch(PgTurn& turn, PgDone<uint64_t> done);
  // Up to `limit` accounts with IDs >= from, in byte order of the ID.
  void list(PgTurn& turn, std::string_view from, size_t limit, PgDone<std::vector<Account>> done);
  void count(PgTurn& turn, PgDone<uint64_t> done);
  // Up to `limit` published accounts with IDs > after, in byte order of the
  // ID (the directory's scan; index accounts_published, schema version 4).
  void list_published(PgTurn& turn, std::string_view after, size_t limit, PgDone<std::vector<Account>> done);
  // The fields a user changes with profile_set, and only on a row that is
  // there: true when it was (a removed account is not brought back, and a
  // password changed meanwhile is not overwritten).
  void update_profile(PgTurn& turn, const Account& account, PgDone<bool> done);
  void record_login(PgTurn& turn, std::string_view user_id, const LoginRecord& record, PgDone<void> done);
  void last_login(PgTurn& turn, std::string_view user_id, PgDone<std::optional<LoginRecord>> done);
};

// A row of `SELECT * FROM accounts` as an Account; nullopt when a column is
// missing or unreadable.
std::optional<rendezvous::Account> account_from_row(const PgRows& rows, size_t row);

}  // namespace tsunagu::cluster
