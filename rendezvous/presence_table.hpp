// Who is online where: memory only on a single node (the brief). Pure: time is
// passed in as milliseconds on a monotonic clock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/socket_address.hpp"

namespace tsunagu::rendezvous {

using LinkId = uint64_t;

struct PresenceRow {
  std::string user_id;
  LinkId link = 0;
  std::vector<proto::SocketAddress> reported;
  proto::SocketAddress observed;
  bool in_call = false;
  uint64_t logged_in_ms = 0;
  uint64_t last_seen_ms = 0;
  uint64_t expires_ms = 0;
  // The row's entry in the deadline set. A keepalive moves expires_ms only;
  // the entry is moved when it comes due and the row turns out to live on,
  // so a keepalive costs no tree operation (one per timeout at most).
  uint64_t scheduled_ms = 0;
};

class PresenceTable {
 public:
  explicit PresenceTable(uint64_t timeout_ms) : timeout_ms_(timeout_ms) {}

  // Makes `link` the user's presence. Returns the link it displaced, if another.
  std::optional<LinkId> login(const std::string& user_id, LinkId link, std::vector<proto::SocketAddress> reported,
                              const proto::SocketAddress& observed, uint64_t now_ms);
  // Refreshes the presence held by `link`; false when it holds none.
  bool keepalive(LinkId link, uint64_t now_ms);
  // The link went away: returns the user whose presence it held.
  std::optional<std::string> remove_link(LinkId link);
  // Returns the link that held the user's presence.
  std::optional<LinkId> logout(std::string_view user_id);
  bool set_in_call(std::string_view user_id, bool in_call);

  const PresenceRow* find(std::string_view user_id) const;
  std::optional<std::string> user_of(LinkId link) const;
  // Removes and returns the rows whose keepalive deadline has passed.
  std::vector<PresenceRow> expire(uint64_t now_ms);
  // When expire() may next have work: a row kept alive since is only moved then.
  std::optional<uint64_t> next_deadline() const;
  size_t size() const { return rows_.size(); }
  uint64_t timeout_ms() const { return timeout_ms_; }

 private:
  void erase_row(std::unordered_map<std::string, PresenceRow>::iterator row);
  uint64_t timeout_ms_;
  std::unordered_map<std::string, PresenceRow> rows_;
  std::unordered_map<LinkId, std::string> by_link_;
  std::set<std::pair<uint64_t, std::string>> deadlines_;
};

}  // namespace tsunagu::rendezvous
