#include "cluster/pg/pg_account_cache.hpp"

namespace tsunagu::cluster {

void PgAccountCache::observe_epoch(uint64_t epoch) {
  if (epoch_ && *epoch_ == epoch) return;
  epoch_ = epoch;
  entries_.clear();
  insertion_order_.clear();
}

std::optional<rendezvous::Account> PgAccountCache::find(std::string_view user_id, uint64_t now_ms) {
  auto it = entries_.find(std::string(user_id));
  if (it == entries_.end() || now_ms - it->second.read_ms >= max_age_ms_ || now_ms < it->second.read_ms) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  return it->second.account;
}

void PgAccountCache::store(const rendezvous::Account& account, uint64_t now_ms) {
  // Without an epoch read yet, a removal could not drop what is kept.
  if (capacity_ == 0 || !epoch_) return;
  uint64_t sequence = next_sequence_++;
  entries_.insert_or_assign(account.user_id, Entry{account, now_ms, sequence});
  insertion_order_.emplace_back(account.user_id, sequence);
  while (entries_.size() > capacity_ || insertion_order_.size() > 2 * capacity_) {
    auto [oldest, oldest_sequence] = std::move(insertion_order_.front());
    insertion_order_.pop_front();
    // A slot whose entry was stored again since (or forgotten) is stale.
    if (auto it = entries_.find(oldest); it != entries_.end() && it->second.sequence == oldest_sequence)
      entries_.erase(it);
  }
}

void PgAccountCache::forget(std::string_view user_id) { entries_.erase(std::string(user_id)); }

}  // namespace tsunagu::cluster
