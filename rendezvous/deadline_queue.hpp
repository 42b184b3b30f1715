// Every deadline NodeCore keeps, in one ordered set: a link's login deadline,
// a call's ring deadline, a forwarded lookup's answer deadline, a link's idle
// check, the upload sweep, the voicemail retention sweep and the account
// check. Presence expiry stays in PresenceTable (it moves with every
// keepalive and is that table's own business). Pure: times are milliseconds
// on the caller's monotonic clock.
//
// Each (kind, key) has at most one deadline: scheduling it again moves it,
// so a table never has to remember when it scheduled something to cancel it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tsunagu::rendezvous {

// In the order NodeCore::tick handles deadlines that fall due together.
enum class DeadlineKind : uint8_t {
  ring,             // key: the call ID
  upload_sweep,     // no key: drops idle and too slow uploads
  retention_sweep,  // no key: deletes voicemail past retention
  account_check,    // no key: links whose account was removed or changed
  idle_check,       // key: link_key(link)
  forward,          // no key: the oldest entry of NodeCore's forward expiry queue
  card_debit,       // key: the call ID of a card call in progress (node_cards.cpp)
  relay_names,      // key: the job ID of a card call waiting for its relays' names (node_cards.cpp)
  login,            // key: link_key(link)
};

struct Deadline {
  uint64_t when_ms = 0;
  DeadlineKind kind = DeadlineKind::login;
  std::string key;
  friend auto operator<=>(const Deadline&, const Deadline&) = default;
};

class DeadlineQueue {
 public:
  // Sets the deadline of (kind, key), moving it if it had one.
  void schedule(uint64_t when_ms, DeadlineKind kind, std::string key = {});
  // false when (kind, key) had no deadline.
  bool cancel(DeadlineKind kind, const std::string& key = {});
  std::optional<uint64_t> when(DeadlineKind kind, const std::string& key = {}) const;
  // The earliest deadline, or the earliest of the kinds `wakes` accepts:
  // some deadlines only matter when a tick comes anyway (see NodeCore::next_deadline).
  std::optional<uint64_t> next() const;
  std::optional<uint64_t> next(const std::function<bool(DeadlineKind)>& wakes) const;
  // Removes every deadline at or before `now_ms` and returns them, earliest first.
  std::vector<Deadline> take_due(uint64_t now_ms);
  size_t size() const { return ordered_.size(); }
  bool empty() const { return ordered_.empty(); }

 private:
  std::set<Deadline> ordered_;
  std::map<std::pair<DeadlineKind, std::string>, uint64_t, std::less<>> index_;
};

// A link ID as a key that sorts like the number (big-endian bytes).
std::string link_key(uint64_t link);
uint64_t link_of_key(std::string_view key);

}  // namespace tsunagu::rendezvous
