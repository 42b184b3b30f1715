#include "cluster/pg/pg_account_directory.hpp"

#include <uv.h>

#include "cluster/pg/pg_migrations.hpp"
#include "security/random.hpp"

namespace tsunagu::cluster {

namespace {

constexpr size_t dummy_salt_key_size = 32;

Expected<Bytes, PgError> shared_dummy_salt_key(PgConnection& connection) {
  Bytes fresh(dummy_salt_key_size);
  security::random_bytes(fresh);
  std::string hex = encode_bytea_hex(fresh);
  // The first node's key stays: every node then derives the same dummy salts.
  auto stored = connection.exec(
      "INSERT INTO cluster_secrets (name, value) VALUES ('scram_dummy_salt_key', $1::bytea) "
      "ON CONFLICT (name) DO NOTHING",
      {hex});
  if (!stored) return Unexpected(stored.error());
  auto read = connection.exec("SELECT value FROM cluster_secrets WHERE name = 'scram_dummy_salt_key'");
  if (!read) return Unexpected(read.error());
  auto text = read->text(0, "value");
  auto bytes = text ? decode_bytea_hex(*text) : std::nullopt;
  if (!bytes || bytes->size() != dummy_salt_key_size)
    return Unexpected(PgError{PgErrc::bad_result, "", "cluster_secrets.scram_dummy_salt_key is not 32 bytes"});
  Bytes key(bytes->size());
  for (size_t i = 0; i < bytes->size(); ++i) key[i] = static_cast<std::byte>((*bytes)[i]);
  return key;
}

}  // namespace

Expected<std::unique_ptr<PgAccountDirectory>, PgError> PgAccountDirectory::open(uv_loop_s* loop,
                                                                              const std::string& conninfo,
                                                                              Options options) {
  std::string info = with_connect_timeout(conninfo, default_connect_timeout_s);
  auto reader = PgReader::connect(loop, info);
  if (!reader) return Unexpected(reader.error());
  if (auto current = require_current_schema((*reader)->connection()); !current) return Unexpected(current.error());
  auto key = shared_dummy_salt_key((*reader)->connection());
  if (!key) return Unexpected(key.error());
  auto committer = PgGroupCommitter::start(loop, info);
  if (!committer) return Unexpected(committer.error());
  std::unique_ptr<PgAccountDirectory> directory(new PgAccountDirectory(options));
  directory->reader_ = std::move(*reader);
  directory->committer_ = std::move(*committer);
  directory->dummy_salt_key_ = std::move(*key);
  return directory;
}

PgAccountDirectory::~PgAccountDirectory() { close(); }

void PgAccountDirectory::close() {
  if (committer_) committer_->close();
}

Expected<std::optional<rendezvous::Account>, storage::StoreError> PgAccountDirectory::find(std::string_view user_id) {
  if (auto unanswered = unanswered_profiles_.find(user_id); unanswered != unanswered_profiles_.end())
    return std::optional<Account>(unanswered->second.account);
  uint64_t now = reader_->now_ms();
  if (auto kept = cache_.find(user_id, now)) return std::optional<Account>(std::move(*kept));
  auto found = reader_->read<std::optional<Account>>(
      [&](PgTurn& turn, PgDone<std::optional<Account>> done) { accounts_.find(turn, user_id, std::move(done)); });
  if (found && found->has_value()) cache_.store(**found, now);
  return found;
}

Expected<std::optional<uint64_t>, storage::StoreError> PgAccountDirectory::removed_at(std::string_view user_id) {
  return reader_->read<std::optional<uint64_t>>(
      [&](PgTurn& turn, PgDone<std::optional<uint64_t>> done) { accounts_.removed_at(turn, user_id, std::move(done)); });
}

Expected<uint64_t, storage::StoreError> PgAccountDirectory::epoch() {
  auto epoch =
      reader_->read<uint64_t>([&](PgTurn& turn, PgDone<uint64_t> done) { accounts_.epoch(turn, std::move(done)); });
  if (epoch) cache_.observe_epoch(*epoch);
  return epoch;
}

Expected<std::optional<rendezvous::LoginRecord>, storage::StoreError> PgAccountDirectory::last_login(
    std::string_view user_id) {
  return reader_->read<std::optional<LoginRecord>>([&](PgTurn& turn, PgDone<std::optional<LoginRecord>> done) {
    accounts_.last_login(turn, user_id, std::move(done));
  });
}

void PgAccountDirectory::last_login_then(std::string_view user_id, LastLoginDone done) {
  if (!committer_) return done(last_login(user_id));
  accounts_.last_login(committer_->turn(), user_id,
                       [done = std::move(done)](Expected<std::optional<LoginRecord>, PgError> record) {
                         if (!record) return done(Unexpected(store_error(record.error())));
                         done(std::move(*record));
                       });
}

Expected<bool, storage::StoreError> PgAccountDirectory::create(const Account& account) {
  // Removed after this (unix seconds) is still in its quarantine.
  int64_t quarantined_after =
      static_cast<int64_t>(account.created_at) - static_cast<int64_t>(uint64_t{quarantine_days_} * 86400);
  auto outcome = reader_->read<PgAccountStore::AddOutcome>([&](PgTurn& turn, PgDone<PgAccountStore::AddOutcome> done) {
    accounts_.add_checked(turn, account, quarantined_after, std::move(done));
  });
  if (!outcome) return Unexpected(outcome.error());
  return outcome->kind == PgAccountStore::AddOutcome::Kind::added;
}

void PgAccountDirectory::finish(TurnWrites& writes) {
  if (writes.outstanding != 0 || !writes.done) return;
  auto done = std::move(writes.done);
  writes.done = nullptr;
  done(writes.error ? std::optional<storage::StoreError>(store_error(*writes.error)) : std::nullopt);
}

Expected<void, storage::StoreError> PgAccountDirectory::update(const Account& account) {
  cache_.forget(account.user_id);
  accounts_.update(committer_->turn(), account, write_done<void>());
  return {};
}

Expected<void, storage::StoreError> PgAccountDirectory::record_login(std::string_view user_id,
                                                                    const LoginRecord& record) {
  accounts_.record_login(committer_->turn(), user_id, record, write_done<void>());
  return {};
}

Expected<std::vector<rendezvous::Account>, storage::StoreError> PgAccountDirectory::list_published(
    std::string_view after, size_t limit) {
  return reader_->read<std::vector<Account>>([&](PgTurn& turn, PgDone<std::vector<Account>> done) {
    accounts_.list_published(turn, after, limit, std::move(done));
  });
}

Expected<void, storage::StoreError> PgAccountDirectory::update_profile(const Account& account) {
  cache_.forget(account.user_id);
  uint64_t sequence = ++profile_writes_;
  unanswered_profiles_[account.user_id] = UnansweredProfile{account, sequence};
  // An account removed meanwhile (no row updated) keeps its removal: the
  // change goes with it, and the session ends at the next epoch check.
  accounts_.update_profile(committer_->turn(), account,
                           [this, user_id = account.user_id, sequence, counted = write_done<bool>()](
                               Expected<bool, PgError> result) {
                             auto unanswered = unanswered_profiles_.find(user_id);
                             if (unanswered != unanswered_profiles_.end() && unanswered->second.sequence == sequence)
                               unanswered_profiles_.erase(unanswered);
                             counted(std::move(result));
                           });
  return {};
}

void PgAccountDirectory::commit_turn(std::function<void(std::optional<storage::StoreError>)> done) {
  auto writes = std::move(current_);
  current_.reset();
  if (!writes) return done(std::nullopt);
  writes->done = std::move(done);
  finish(*writes);
}

}  // namespace tsunagu::cluster
