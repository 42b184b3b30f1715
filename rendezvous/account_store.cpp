#include "rendezvous/account_store.hpp"

#include "security/random.hpp"

namespace tsunagu::rendezvous {
namespace {
storage::StoreError corrupt_record(std::string_view user_id) {
  return storage::StoreError{storage::StoreErrc::corrupted, 0, "unreadable record for " + std::string(user_id)};
}
constexpr char epoch_key[] = "epoch";
constexpr char dummy_salt_key_name[] = "scram_dummy_salt_key";
constexpr size_t dummy_salt_key_size = 32;
std::string removed_key(std::string_view user_id) { return "removed:" + std::string(user_id); }
}  // namespace

Expected<std::unique_ptr<AccountStore>, storage::StoreError> AccountStore::open(const std::string& directory,
                                                                                uint64_t map_size) {
  storage::Environment::Options options;
  options.map_size = map_size;
  auto env = storage::Environment::open(directory, options);
  if (!env) return Unexpected(env.error());
  std::unique_ptr<AccountStore> store(new AccountStore);
  store->env_ = std::move(*env);
  auto accounts = store->env_->open_database("accounts");
  if (!accounts) return Unexpected(accounts.error());
  auto logins = store->env_->open_database("logins");
  if (!logins) return Unexpected(logins.error());
  auto meta = store->env_->open_database("account_meta");
  if (!meta) return Unexpected(meta.error());
  store->accounts_ = *accounts;
  store->logins_ = *logins;
  store->meta_ = *meta;
  auto key = store->load_dummy_salt_key();
  if (!key) return Unexpected(key.error());
  store->dummy_salt_key_ = std::move(*key);
  return store;
}

// Made once per store and kept: the salt answered for an unknown ID must be
// the same after a restart, or asking twice around one would tell unknown
// IDs (their salt changed) from accounts (theirs did not).
Expected<Bytes, storage::StoreError> AccountStore::load_dummy_salt_key() {
  auto txn = env_->begin_write();
  if (!txn) return Unexpected(txn.error());
  auto raw = txn->get(meta_, as_bytes(std::string_view(dummy_salt_key_name)));
  if (!raw) return Unexpected(raw.error());
  if (raw->has_value()) {
    if ((*raw)->size() != dummy_salt_key_size) return Unexpected(corrupt_record("the SCRAM dummy salt key"));
    return Bytes((*raw)->begin(), (*raw)->end());
  }
  Bytes key = security::random_bytes(dummy_salt_key_size);
  if (auto put = txn->put(meta_, as_bytes(std::string_view(dummy_salt_key_name)), key); !put)
    return Unexpected(put.error());
  if (auto committed = txn->commit(); !committed) return Unexpected(committed.error());
  return key;
}

Expected<bool, storage::StoreError> AccountStore::create(Transaction& txn, const Account& account) {
  auto current = epoch(txn);
  if (!current) return Unexpected(current.error());
  Account stored = account;
  stored.generation = *current;
  return txn.insert(accounts_, as_bytes(stored.user_id), encode_account(stored));
}

Expected<std::optional<Account>, storage::StoreError> AccountStore::find(Transaction& txn, std::string_view user_id) {
  auto raw = txn.get(accounts_, as_bytes(user_id));
  if (!raw) return Unexpected(raw.error());
  if (!raw->has_value()) return std::optional<Account>{};
  auto account = decode_account(**raw);
  if (!account) return Unexpected(corrupt_record(user_id));
  return std::optional<Account>{std::move(*account)};
}

Expected<std::optional<uint64_t>, storage::StoreError> AccountStore::generation(Transaction& txn,
                                                                               std::string_view user_id) {
  auto raw = txn.get(accounts_, as_bytes(user_id));
  if (!raw) return Unexpected(raw.error());
  if (!raw->has_value()) return std::optional<uint64_t>{};
  auto generation = decode_account_generation(**raw);
  if (!generation) return Unexpected(corrupt_record(user_id));
  return std::optional<uint64_t>(*generation);
}

Expected<void, storage::StoreError> AccountStore::update(Transaction& txn, const Account& account) {
  return txn.put(accounts_, as_bytes(account.user_id), encode_account(account));
}

Expected<bool, storage::StoreError> AccountStore::remove(Transaction& txn, std::string_view user_id,
                                                         uint64_t removed_at) {
  auto removed = txn.erase(accounts_, as_bytes(user_id));
  if (!removed || !*removed) return removed;
  if (auto login = txn.erase(logins_, as_bytes(user_id)); !login) return Unexpected(login.error());
  std::byte when[8];
  store_be64(when, removed_at);
  if (auto put = txn.put(meta_, as_bytes(removed_key(user_id)), when); !put) return Unexpected(put.error());
  if (auto bumped = bump_epoch(txn); !bumped) return Unexpected(bumped.error());
  return removed;
}

Expected<std::optional<uint64_t>, storage::StoreError> AccountStore::removed_at(Transaction& txn,
                                                                               std::string_view user_id) {
  auto raw = txn.get(meta_, as_bytes(removed_key(user_id)));
  if (!raw) return Unexpected(raw.error());
  if (!raw->has_value()) return std::optional<uint64_t>{};
  if ((*raw)->size() != 8) return Unexpected(corrupt_record(user_id));
  return std::optional<uint64_t>(load_be64((*raw)->data()));
}

Expected<uint64_t, storage::StoreError> AccountStore::epoch(Transaction& txn) {
  auto raw = txn.get(meta_, as_bytes(std::string_view(epoch_key)));
  if (!raw) return Unexpected(raw.error());
  if (!raw->has_value()) return uint64_t{0};
  if ((*raw)->size() != 8) return Unexpected(corrupt_record("the account epoch"));
  return load_be64((*raw)->data());
}

Expected<uint64_t, storage::StoreError> AccountStore::bump_epoch(Transaction& txn) {
  auto current = epoch(txn);
  if (!current) return current;
  std::byte next[8];
  store_be64(next, *current + 1);
  if (auto put = txn.put(meta_, as_bytes(std::string_view(epoch_key)), next); !put) return Unexpected(put.error());
  return *current + 1;
}

Expected<std::vector<Account>, storage::StoreError> AccountStore::list(Transaction& txn, std::string_view from,
                                                                       size_t limit) {
  std::vector<Account> out;
  bool corrupt = false;
  auto scanned = txn.scan(accounts_, as_bytes(from), [&](ByteView, ByteView value) {
    auto account = decode_account(value);
    if (!account) {
      corrupt = true;
      return false;
    }
    out.push_back(std::move(*account));
    return out.size() < limit;
  });
  if (!scanned) return Unexpected(scanned.error());
  if (corrupt) return Unexpected(corrupt_record("an account"));
  return out;
}

Expected<uint64_t, storage::StoreError> AccountStore::count(Transaction& txn) { return txn.count(accounts_); }

Expected<std::vector<std::string>, storage::StoreError> AccountStore::ids_inside(Transaction& txn,
                                                                                std::string_view route, size_t limit) {
  std::vector<std::string> out;
  bool prefix = route.starts_with('+');
  std::string suffix = "@" + std::string(route);
  auto scanned = txn.scan(accounts_, prefix ? as_bytes(route) : ByteView{}, [&](ByteView key, ByteView) {
    std::string_view id = as_chars(key);
    if (prefix && !id.starts_with(route)) return false;  // past the prefix's range
    bool inside = prefix ? id.find('@') == std::string_view::npos : id.ends_with(suffix);
    if (inside) out.emplace_back(id);
    return out.size() < limit;
  });
  if (!scanned) return Unexpected(scanned.error());
  return out;
}

Expected<void, storage::StoreError> AccountStore::record_login(Transaction& txn, std::string_view user_id,
                                                               const LoginRecord& record) {
  return txn.put(logins_, as_bytes(user_id), encode_login_record(record));
}

Expected<std::optional<LoginRecord>, storage::StoreError> AccountStore::last_login(Transaction& txn,
                                                                                   std::string_view user_id) {
  auto raw = txn.get(logins_, as_bytes(user_id));
  if (!raw) return Unexpected(raw.error());
  if (!raw->has_value()) return std::optional<LoginRecord>{};
  auto record = decode_login_record(**raw);
  if (!record) return Unexpected(corrupt_record(user_id));
  return std::optional<LoginRecord>{std::move(*record)};
}

}  // namespace tsunagu::rendezvous
