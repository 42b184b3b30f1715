// The peers a reconnecting link may use (a terminal given several rendezvous
// nodes of one cluster): which one the next attempt goes to. Pure.
//
// The first peer is tried first; every loss (a connect that failed, a login
// refused, a link that dropped) moves the next attempt to the following peer,
// wrapping around, so a node that died costs one attempt and one backoff
// delay, not a wait for it to come back. The delay itself is the link's
// backoff, unchanged: it grows per failed attempt whichever peer it went to,
// so a whole cluster out of reach is not hammered either. A link that is up
// stays on its peer (no failing back to the first).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tsunagu::transport {

struct LinkPeer {
  std::string address;      // HOST:PORT or [v6]:PORT
  std::string verify_name;  // name or IP its certificate must carry
  bool operator==(const LinkPeer&) const = default;
};

class PeerList {
 public:
  // `peers` must not be empty.
  explicit PeerList(std::vector<LinkPeer> peers);

  const LinkPeer& current() const { return peers_[index_]; }
  size_t current_index() const { return index_; }
  size_t size() const { return peers_.size(); }
  const std::vector<LinkPeer>& peers() const { return peers_; }

  // After a loss: the peer of the next attempt (the same one when it is the only one).
  const LinkPeer& advance();

 private:
  std::vector<LinkPeer> peers_;
  size_t index_ = 0;
};

}  // namespace tsunagu::transport
