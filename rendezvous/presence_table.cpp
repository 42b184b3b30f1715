#include "rendezvous/presence_table.hpp"

namespace tsunagu::rendezvous {

std::optional<LinkId> PresenceTable::login(const std::string& user_id, LinkId link,
                                           std::vector<proto::SocketAddress> reported,
                                           const proto::SocketAddress& observed, uint64_t now_ms) {
  // The same user again on the link that holds its presence (a terminal
  // re-logging in, a registrar's REGISTER refresh): the row is refreshed where
  // it is, as a fresh one would be, without a hash node or a deadline entry
  // freed and made again. Its deadline entry stays where it was and is moved
  // when it comes due, as after a keepalive.
  if (auto row = rows_.find(user_id); row != rows_.end() && row->second.link == link) {
    PresenceRow& held = row->second;
    held.reported = std::move(reported);
    held.observed = observed;
    held.in_call = false;
    held.logged_in_ms = now_ms;
    held.last_seen_ms = now_ms;
    held.expires_ms = now_ms + timeout_ms_;
    return std::nullopt;
  }
  std::optional<LinkId> displaced;
  // A link holds at most one user's presence.
  if (auto held = by_link_.find(link); held != by_link_.end() && held->second != user_id) {
    auto row = rows_.find(held->second);
    if (row != rows_.end()) erase_row(row);
  }
  if (auto row = rows_.find(user_id); row != rows_.end()) {
    if (row->second.link != link) displaced = row->second.link;
    erase_row(row);
  }
  PresenceRow row;
  row.user_id = user_id;
  row.link = link;
  row.reported = std::move(reported);
  row.observed = observed;
  row.logged_in_ms = now_ms;
  row.last_seen_ms = now_ms;
  row.expires_ms = now_ms + timeout_ms_;
  row.scheduled_ms = row.expires_ms;
  deadlines_.emplace(row.scheduled_ms, user_id);
  by_link_[link] = user_id;
  rows_.emplace(user_id, std::move(row));
  return displaced;
}

bool PresenceTable::keepalive(LinkId link, uint64_t now_ms) {
  auto held = by_link_.find(link);
  if (held == by_link_.end()) return false;
  auto row = rows_.find(held->second);
  if (row == rows_.end()) return false;
  row->second.last_seen_ms = now_ms;
  row->second.expires_ms = now_ms + timeout_ms_;
  return true;
}

std::optional<std::string> PresenceTable::remove_link(LinkId link) {
  auto held = by_link_.find(link);
  if (held == by_link_.end()) return std::nullopt;
  std::string user = held->second;
  auto row = rows_.find(user);
  if (row != rows_.end()) erase_row(row);
  else by_link_.erase(held);
  return user;
}

std::optional<LinkId> PresenceTable::logout(std::string_view user_id) {
  auto row = rows_.find(std::string(user_id));
  if (row == rows_.end()) return std::nullopt;
  LinkId link = row->second.link;
  erase_row(row);
  return link;
}

bool PresenceTable::set_in_call(std::string_view user_id, bool in_call) {
  auto row = rows_.find(std::string(user_id));
  if (row == rows_.end()) return false;
  row->second.in_call = in_call;
  return true;
}

const PresenceRow* PresenceTable::find(std::string_view user_id) const {
  auto row = rows_.find(std::string(user_id));
  return row == rows_.end() ? nullptr : &row->second;
}

std::optional<std::string> PresenceTable::user_of(LinkId link) const {
  auto held = by_link_.find(link);
  if (held == by_link_.end()) return std::nullopt;
  return held->second;
}

std::vector<PresenceRow> PresenceTable::expire(uint64_t now_ms) {
  std::vector<PresenceRow> expired;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms) {
    auto row = rows_.find(deadlines_.begin()->second);
    if (row == rows_.end()) {
      deadlines_.erase(deadlines_.begin());
      continue;
    }
    if (row->second.expires_ms > now_ms) {  // kept alive since: its entry moves
      deadlines_.erase(deadlines_.begin());
      row->second.scheduled_ms = row->second.expires_ms;
      deadlines_.emplace(row->second.scheduled_ms, row->first);
      continue;
    }
    expired.push_back(row->second);
    erase_row(row);
  }
  return expired;
}

std::optional<uint64_t> PresenceTable::next_deadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

void PresenceTable::erase_row(std::unordered_map<std::string, PresenceRow>::iterator row) {
  deadlines_.erase({row->second.scheduled_ms, row->first});
  if (auto held = by_link_.find(row->second.link); held != by_link_.end() && held->second == row->first)
    by_link_.erase(held);
  rows_.erase(row);
}

}  // namespace tsunagu::rendezvous
