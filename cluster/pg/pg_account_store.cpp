#include "cluster/pg/pg_account_store.hpp"

#include <string>

namespace tsunagu::cluster {

namespace {

using rendezvous::Account;
using rendezvous::LoginRecord;

constexpr const char* account_columns =
    "user_id, password_hash, display_name, phone, category, publish, services, static_address, created_at, "
    "presence_visibility, addresses_shown, contacts, verified, admin, generation";
// The values of account_columns as bound parameters $1..$15, typed (an
// INSERT ... SELECT does not take its types from the target columns).
constexpr const char* account_values =
    "$1::text, $2::text, $3::text, $4::text, $5::text, $6::boolean, $7::bigint, $8::text, $9::bigint, "
    "$10::bigint, $11::boolean, $12::text[], $13::boolean, $14::boolean";

std::string boolean_text(bool value) { return value ? "true" : "false"; }

// Parameters $1..$14 (account_values), the generation left out.
std::vector<PgParam> account_params(const Account& account) {
  return {account.user_id,
          account.password_hash,
          account.display_name,
          account.phone,
          account.category,
          boolean_text(account.publish),
          std::to_string(account.services),
          account.static_address ? PgParam(account.static_address->to_string()) : PgParam(),
          std::to_string(account.created_at),
          std::to_string(account.presence_visibility),
          boolean_text(account.addresses_shown),
          encode_text_array(account.contacts),
          boolean_text(account.verified),
          boolean_text(account.admin)};
}

PgError bad_row(std::string_view what) { return PgError{PgErrc::bad_result, "", "unreadable row: " + std::string(what)}; }

Expected<uint64_t, PgError> single_number(const PgRows& rows, std::string_view column) {
  auto value = rows.integer(0, column);
  if (!value || *value < 0) return Unexpected(bad_row(column));
  return static_cast<uint64_t>(*value);
}

}  // namespace

std::optional<Account> account_from_row(const PgRows& rows, size_t row) {
  Account account;
  auto user_id = rows.text(row, "user_id");
  auto password_hash = rows.text(row, "password_hash");
  auto display_name = rows.text(row, "display_name");
  auto phone = rows.text(row, "phone");
  auto category = rows.text(row, "category");
  auto publish = rows.boolean(row, "publish");
  auto services = rows.integer(row, "services");
  auto created_at = rows.integer(row, "created_at");
  auto generation = rows.integer(row, "generation");
  auto visibility = rows.integer(row, "presence_visibility");
  auto addresses_shown = rows.boolean(row, "addresses_shown");
  auto contacts_text = rows.text(row, "contacts");
  auto verified = rows.boolean(row, "verified");
  auto admin = rows.boolean(row, "admin");
  if (!user_id || !password_hash || !display_name || !phone || !category || !publish || !services || !created_at ||
      !generation || !visibility || !addresses_shown || !contacts_text || !verified || !admin)
    return std::nullopt;
  if (*services < 0 || *services > UINT32_MAX || *visibility < 0 || *visibility > UINT32_MAX || *created_at < 0 ||
      *generation < 0)
    return std::nullopt;
  auto contacts = decode_text_array(*contacts_text);
  if (!contacts) return std::nullopt;
  if (auto address = rows.text(row, "static_address")) {
    auto parsed = proto::SocketAddress::parse(*address);
    if (!parsed) return std::nullopt;
    account.static_address = *parsed;
  }
  account.user_id = std::move(*user_id);
  account.password_hash = std::move(*password_hash);
  account.display_name = std::move(*display_name);
  account.phone = std::move(*phone);
  account.category = std::move(*category);
  account.publish = *publish;
  account.services = static_cast<uint32_t>(*services);
  account.created_at = static_cast<uint64_t>(*created_at);
  account.generation = static_cast<uint64_t>(*generation);
  account.presence_visibility = static_cast<uint32_t>(*visibility);
  account.addresses_shown = *addresses_shown;
  account.contacts = std::move(*contacts);
  account.verified = *verified;
  account.admin = *admin;
  return account;
}

void PgAccountStore::create(PgTurn& turn, const Account& account, PgDone<bool> done) {
  queue_statement<bool>(turn,
              std::string("INSERT INTO accounts (") + account_columns + ") SELECT " + account_values +
                  ", epoch FROM account_epoch ON CONFLICT (user_id) DO NOTHING",
              account_params(account), std::move(done),
              [](const PgRows& rows) -> Expected<bool, PgError> { return rows.affected == 1; });
}

void PgAccountStore::add_checked(PgTurn& turn, const Account& account, std::optional<int64_t> quarantined_after,
                                 PgDone<AddOutcome> done) {
  auto params = account_params(account);
  params.push_back(quarantined_after ? PgParam(std::to_string(*quarantined_after)) : PgParam());
  queue_statement<AddOutcome>(
      turn, std::string("SELECT outcome, route FROM account_add(") + account_values + ", $15::bigint)",
      std::move(params), std::move(done), [](const PgRows& rows) -> Expected<AddOutcome, PgError> {
        auto outcome = rows.text(0, "outcome");
        if (!outcome) return Unexpected(bad_row("account_add"));
        AddOutcome result;
        if (*outcome == "added") {
          result.kind = AddOutcome::Kind::added;
        } else if (*outcome == "exists") {
          result.kind = AddOutcome::Kind::exists;
        } else if (*outcome == "quarantined") {
          result.kind = AddOutcome::Kind::quarantined;
        } else if (*outcome == "agent_route") {
          auto route = rows.text(0, "route");
          if (!route) return Unexpected(bad_row("account_add.route"));
          result.kind = AddOutcome::Kind::agent_route;
          result.route = std::move(*route);
        } else {
          return Unexpected(bad_row("account_add.outcome"));
        }
        return result;
      });
}

void PgAccountStore::find(PgTurn& turn, std::string_view user_id, PgDone<std::optional<Account>> done) {
  queue_statement<std::optional<Account>>(
      turn, std::string("SELECT ") + account_columns + " FROM accounts WHERE user_id = $1", {std::string(user_id)},
      std::move(done), [](const PgRows& rows) -> Expected<std::optional<Account>, PgError> {
        if (rows.rows.empty()) return std::optional<Account>{};
        auto account = account_from_row(rows, 0);
        if (!account) return Unexpected(bad_row("accounts"));
        return std::optional<Account>{std::move(*account)};
      });
}

void PgAccountStore::update(PgTurn& turn, const Account& account, PgDone<void> done) {
  auto params = account_params(account);
  params.push_back(std::to_string(account.generation));
  std::string assignments;
  for (std::string_view column : {"password_hash", "display_name", "phone", "category", "publish", "services",
                                  "static_address", "created_at", "presence_visibility", "addresses_shown",
                                  "contacts", "verified", "admin", "generation"}) {
    if (!assignments.empty()) assignments += ", ";
    assignments += std::string(column) + " = EXCLUDED." + std::string(column);
  }
  queue_statement<void>(turn,
              std::string("INSERT INTO accounts (") + account_columns + ") VALUES (" + account_values +
                  ", $15::bigint) ON CONFLICT (user_id) DO UPDATE SET " + assignments,
              std::move(params), std::move(done), [](const PgRows&) -> Expected<void, PgError> { return {}; });
}

void PgAccountStore::remove(PgTurn& turn, std::string_view user_id, uint64_t removed_at, PgDone<bool> done) {
  // One statement: data-modifying WITH clauses all run, on the one snapshot.
  queue_statement<bool>(turn,
              "WITH gone AS (DELETE FROM accounts WHERE user_id = $1 RETURNING user_id), "
              "login_gone AS (DELETE FROM logins WHERE user_id IN (SELECT user_id FROM gone)), "
              "mailbox_gone AS (DELETE FROM voicemail WHERE recipient IN (SELECT user_id FROM gone)), "
              "noted AS (INSERT INTO removed_ids (user_id, removed_at) SELECT user_id, $2::bigint FROM gone "
              "ON CONFLICT (user_id) DO UPDATE SET removed_at = EXCLUDED.removed_at), "
              "bumped AS (UPDATE account_epoch SET epoch = epoch + 1 WHERE EXISTS (SELECT 1 FROM gone)) "
              "SELECT count(*) AS removed FROM gone",
              {std::string(user_id), std::to_string(removed_at)}, std::move(done),
              [](const PgRows& rows) -> Expected<bool, PgError> {
                auto removed = single_number(rows, "removed");
                if (!removed) return Unexpected(removed.error());
                return *removed == 1;
              });
}

void PgAccountStore::removed_at(PgTurn& turn, std::string_view user_id, PgDone<std::optional<uint64_t>> done) {
  queue_statement<std::optional<uint64_t>>(
      turn, "SELECT removed_at FROM removed_ids WHERE user_id = $1", {std::string(user_id)}, std::move(done),
      [](const PgRows& rows) -> Expected<std::optional<uint64_t>, PgError> {
        if (rows.rows.empty()) return std::optional<uint64_t>{};
        auto when = single_number(rows, "removed_at");
        if (!when) return Unexpected(when.error());
        return std::optional<uint64_t>(*when);
      });
}

void PgAccountStore::epoch(PgTurn& turn, PgDone<uint64_t> done) {
  queue_statement<uint64_t>(turn, "SELECT epoch FROM account_epoch", {}, std::move(done),
                  [](const PgRows& rows) { return single_number(rows, "epoch"); });
}

void PgAccountStore::bump_epoch(PgTurn& turn, PgDone<uint64_t> done) {
  queue_statement<uint64_t>(turn, "UPDATE account_epoch SET epoch = epoch + 1 RETURNING epoch", {}, std::move(done),
                  [](const PgRows& rows) { return single_number(rows, "epoch"); });
}

static Expected<std::vector<Account>, PgError> accounts_from_rows(const PgRows& rows) {
  std::vector<Account> accounts;
  for (size_t row = 0; row < rows.rows.size(); ++row) {
    auto account = account_from_row(rows, row);
    if (!account) return Unexpected(bad_row("accounts"));
    accounts.push_back(std::move(*account));
  }
  return accounts;
}

void PgAccountStore::list(PgTurn& turn, std::string_view from, size_t limit, PgDone<std::vector<Account>> done) {
  queue_statement<std::vector<Account>>(
      turn,
      std::string("SELECT ") + account_columns + " FROM accounts WHERE user_id >= $1 ORDER BY user_id LIMIT $2",
      {std::string(from), std::to_string(limit)}, std::move(done), accounts_from_rows);
}

void PgAccountStore::list_published(PgTurn& turn, std::string_view after, size_t limit,
                                    PgDone<std::vector<Account>> done) {
  queue_statement<std::vector<Account>>(
      turn,
      std::string("SELECT ") + account_columns +
          " FROM accounts WHERE publish AND user_id > $1 ORDER BY user_id LIMIT $2",
      {std::string(after), std::to_string(limit)}, std::move(done), accounts_from_rows);
}

void PgAccountStore::update_profile(PgTurn& turn, const Account& account, PgDone<bool> done) {
  queue_statement<bool>(turn,
              "UPDATE accounts SET display_name = $2, phone = $3, category = $4, publish = $5::boolean, "
              "services = $6::bigint, presence_visibility = $7::bigint, addresses_shown = $8::boolean, "
              "contacts = $9::text[], verified = $10::boolean WHERE user_id = $1",
              {account.user_id, account.display_name, account.phone, account.category,
               boolean_text(account.publish), std::to_string(account.services),
               std::to_string(account.presence_visibility), boolean_text(account.addresses_shown),
               encode_text_array(account.contacts), boolean_text(account.verified)},
              std::move(done), [](const PgRows& rows) -> Expected<bool, PgError> { return rows.affected == 1; });
}

void PgAccountStore::count(PgTurn& turn, PgDone<uint64_t> done) {
  queue_statement<uint64_t>(turn, "SELECT count(*) AS accounts FROM accounts", {}, std::move(done),
                  [](const PgRows& rows) { return single_number(rows, "accounts"); });
}

void PgAccountStore::record_login(PgTurn& turn, std::string_view user_id, const LoginRecord& record,
                                  PgDone<void> done) {
  std::vector<std::string> reported;
  for (const auto& address : record.reported) reported.push_back(address.to_string());
  queue_statement<void>(turn,
              "INSERT INTO logins (user_id, time, reported, observed) VALUES ($1, $2::bigint, $3::text[], $4) "
              "ON CONFLICT (user_id) DO UPDATE SET time = EXCLUDED.time, reported = EXCLUDED.reported, "
              "observed = EXCLUDED.observed",
              {std::string(user_id), std::to_string(record.time), encode_text_array(reported),
               record.observed ? PgParam(record.observed->to_string()) : PgParam()},
              std::move(done), [](const PgRows&) -> Expected<void, PgError> { return {}; });
}

void PgAccountStore::last_login(PgTurn& turn, std::string_view user_id, PgDone<std::optional<LoginRecord>> done) {
  queue_statement<std::optional<LoginRecord>>(
      turn, "SELECT time, reported, observed FROM logins WHERE user_id = $1", {std::string(user_id)},
      std::move(done), [](const PgRows& rows) -> Expected<std::optional<LoginRecord>, PgError> {
        if (rows.rows.empty()) return std::optional<LoginRecord>{};
        LoginRecord record;
        auto time = single_number(rows, "time");
        auto reported = decode_text_array(rows.text(0, "reported").value_or(""));
        if (!time || !reported) return Unexpected(bad_row("logins"));
        record.time = *time;
        for (const auto& text : *reported) {
          auto address = proto::SocketAddress::parse(text);
          if (!address) return Unexpected(bad_row("logins.reported"));
          record.reported.push_back(*address);
        }
        if (auto observed = rows.text(0, "observed")) {
          auto address = proto::SocketAddress::parse(*observed);
          if (!address) return Unexpected(bad_row("logins.observed"));
          record.observed = *address;
        }
        return std::optional<LoginRecord>{std::move(record)};
      });
}

}  // namespace tsunagu::cluster
