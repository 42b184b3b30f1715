#include "rendezvous/call_table.hpp"

#include "proto/signalling.hpp"

namespace tsunagu::rendezvous {
namespace sig = tsunagu::proto;

void LocalCallTable::count(const Call& call, int delta) {
  auto adjust = [delta](size_t& value) { value = delta > 0 ? value + 1 : value - 1; };
  CallCounts& caller = counts_[call.caller];
  CallCounts& callee = counts_[call.callee];
  if (call.state == sig::call_state::ringing || call.state == sig::call_state::preparing) {
    // A prepared call counts against the caller's ringing limits; its callee is not rung yet.
    adjust(caller.ringing_out);
    if (call.state == sig::call_state::ringing) adjust(callee.ringing_in);
    size_t& by_source = ringing_by_source_[call.caller_source];
    adjust(by_source);
    if (by_source == 0) ringing_by_source_.erase(call.caller_source);
  } else if (call.state == sig::call_state::accepted) {
    adjust(caller.accepted);
    adjust(callee.accepted);
  }
  for (const std::string* user : {&call.caller, &call.callee}) {
    auto it = counts_.find(*user);
    if (it != counts_.end() && it->second == CallCounts{}) counts_.erase(it);
  }
}

Call& LocalCallTable::insert(Call call) {
  count(call, +1);
  by_link_.emplace(call.caller_link, call.id);
  if (call.callee_link != 0) {
    by_link_.emplace(call.callee_link, call.id);
    if (call.state == sig::call_state::ringing) rings_[call.ring_transaction.bytes] = call.id;
  }
  std::string id = call.id;
  return calls_.insert_or_assign(std::move(id), std::move(call)).first->second;
}

Call* LocalCallTable::find(const std::string& id) {
  auto it = calls_.find(id);
  return it == calls_.end() ? nullptr : &it->second;
}

void LocalCallTable::ring(Call& call, LinkId callee_link, bool via_agent, const proto::TransactionId& ring_transaction) {
  count(call, -1);
  call.callee_link = callee_link;
  call.via_agent = via_agent;
  call.state = sig::call_state::ringing;
  call.ring_transaction = ring_transaction;
  count(call, +1);
  rings_[ring_transaction.bytes] = call.id;
  by_link_.emplace(callee_link, call.id);
}

Call* LocalCallTable::find_ring(const proto::TransactionId& ring_transaction) {
  auto ring = rings_.find(ring_transaction.bytes);
  return ring == rings_.end() ? nullptr : find(ring->second);
}

void LocalCallTable::forget_ring(const proto::TransactionId& ring_transaction) { rings_.erase(ring_transaction.bytes); }

void LocalCallTable::accept(Call& call) {
  count(call, -1);
  call.state = sig::call_state::accepted;
  count(call, +1);
}

void LocalCallTable::unlink(LinkId link, const std::string& id) {
  auto [first, last] = by_link_.equal_range(link);
  for (auto entry = first; entry != last; ++entry)
    if (entry->second == id) {
      by_link_.erase(entry);
      return;
    }
}

std::optional<Call> LocalCallTable::erase(const std::string& id) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return std::nullopt;
  Call call = std::move(it->second);
  calls_.erase(it);
  count(call, -1);
  for (LinkId party : {call.caller_link, call.callee_link})
    if (party != 0) unlink(party, call.id);
  rings_.erase(call.ring_transaction.bytes);
  return call;
}

std::vector<std::string> LocalCallTable::calls_on(LinkId link) const {
  std::vector<std::string> ids;
  auto [first, last] = by_link_.equal_range(link);
  for (auto entry = first; entry != last; ++entry) ids.push_back(entry->second);
  return ids;
}

CallCounts LocalCallTable::counts(const std::string& user) const {
  auto it = counts_.find(user);
  return it == counts_.end() ? CallCounts{} : it->second;
}

size_t LocalCallTable::ringing_from(const std::string& source) const {
  auto it = ringing_by_source_.find(source);
  return it == ringing_by_source_.end() ? 0 : it->second;
}

std::vector<const Call*> LocalCallTable::all() const {
  std::vector<const Call*> calls;
  calls.reserve(calls_.size());
  for (const auto& [id, call] : calls_) calls.push_back(&call);
  return calls;
}

}  // namespace tsunagu::rendezvous
