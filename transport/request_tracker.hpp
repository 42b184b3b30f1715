// Requests in flight on one link: matched to their responses by transaction
// ID, each with its own deadline. Pure: the caller passes `now` (milliseconds
// on any monotonic clock) and invokes the handlers this returns, so a handler
// that sends another request cannot disturb an iteration here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/stun_message.hpp"

namespace tsunagu::transport {

// Why a request ended without a response.
enum class RequestFailure {
  none,           // a response arrived
  timed_out,      // no response before the request's deadline
  link_lost,      // the link closed with the request outstanding
  stopped,        // the owner stopped the link
};

std::string_view describe(RequestFailure failure);

class RequestTracker {
 public:
  // `response` is set exactly when `failure` is none; it is valid during the call.
  using Handler = std::function<void(const proto::Message* response, RequestFailure failure)>;

  // Starts tracking. False (and nothing tracked) when `id` is already in flight.
  bool add(const proto::TransactionId& id, uint64_t deadline_ms, Handler handler);

  // The handler for a response with this ID, no longer tracked; empty for an
  // ID not in flight (late, duplicate or never sent).
  Handler take(const proto::TransactionId& id);

  // Handlers whose deadline is at or before `now_ms`, earliest first.
  std::vector<Handler> take_expired(uint64_t now_ms);

  // Every handler (the link is gone); the tracker is empty afterwards, so each
  // request fails once.
  std::vector<Handler> take_all();

  // The earliest deadline in flight.
  std::optional<uint64_t> next_deadline() const;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

 private:
  using Key = std::array<std::byte, 12>;
  struct Entry {
    uint64_t deadline_ms = 0;
    Handler handler;
  };
  std::map<Key, Entry> entries_;
  std::set<std::pair<uint64_t, Key>> by_deadline_;
};

}  // namespace tsunagu::transport
