#include "transport/peer_list.hpp"

#include <utility>

namespace tsunagu::transport {

PeerList::PeerList(std::vector<LinkPeer> peers) : peers_(std::move(peers)) {
  if (peers_.empty()) peers_.emplace_back();  // a caller's bug; an empty address then fails to parse
}

const LinkPeer& PeerList::advance() {
  index_ = (index_ + 1) % peers_.size();
  return peers_[index_];
}

}  // namespace tsunagu::transport
