// Accounts read from PostgreSQL, kept on the node so that the reads a request
// makes (its own link's session check, the account it looks up) cost no
// round trip on the loop (docs/cluster.md, "Reads: the account cache").
//
// Why it may keep an account at all: every change that must end a session
// (a removal, a password change) moves the shared account epoch on, and the
// node reads the epoch every accounts.check_interval_ms; an epoch other than
// the one the entries were read under empties the cache. Other fields (the
// display name...) change without the epoch, so an entry also expires after
// `max_age_ms`. Only accounts found are kept: an account created on another
// node is found at its first lookup here. Pure: no clock, no connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "rendezvous/account.hpp"

namespace tsunagu::cluster {

class PgAccountCache {
 public:
  // capacity 0: nothing is kept (every read goes to the server).
  PgAccountCache(size_t capacity, uint64_t max_age_ms) : capacity_(capacity), max_age_ms_(max_age_ms) {}

  // The epoch just read from the server: a different one than the entries'
  // drops them all.
  void observe_epoch(uint64_t epoch);
  // The account kept for `user_id`, if read less than max_age_ms before `now_ms`.
  std::optional<rendezvous::Account> find(std::string_view user_id, uint64_t now_ms);
  // Keeps an account just read (under the epoch last observed). When full,
  // the oldest entry goes.
  void store(const rendezvous::Account& account, uint64_t now_ms);
  // The node is writing this account: read it again after the write.
  void forget(std::string_view user_id);

  size_t size() const { return entries_.size(); }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  struct Entry {
    rendezvous::Account account;
    uint64_t read_ms = 0;
    uint64_t sequence = 0;  // which insertion this is, to tell stale queue slots
  };
  size_t capacity_;
  uint64_t max_age_ms_;
  std::optional<uint64_t> epoch_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::pair<std::string, uint64_t>> insertion_order_;  // (user ID, sequence)
  uint64_t next_sequence_ = 0;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace tsunagu::cluster
