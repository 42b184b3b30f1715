// PeerList: which peer a reconnecting link's next attempt goes to.
#include "transport/peer_list.hpp"

#include <doctest/doctest.h>

using tsunagu::transport::LinkPeer;
using tsunagu::transport::PeerList;

TEST_CASE("peer list: the first peer is tried first and each loss moves to the next, wrapping around") {
  PeerList peers({{"10.0.0.1:7000", "a"}, {"10.0.0.2:7000", "b"}, {"10.0.0.3:7000", "c"}});
  CHECK(peers.current() == LinkPeer{"10.0.0.1:7000", "a"});
  CHECK(peers.advance().address == "10.0.0.2:7000");
  CHECK(peers.current().verify_name == "b");
  CHECK(peers.advance().address == "10.0.0.3:7000");
  CHECK(peers.advance().address == "10.0.0.1:7000");
  CHECK(peers.current_index() == 0);
}

TEST_CASE("peer list: a single peer stays the peer of every attempt") {
  PeerList peers(std::vector<LinkPeer>{{"node.example:7000", "node.example"}});
  CHECK(peers.advance().address == "node.example:7000");
  CHECK(peers.advance().address == "node.example:7000");
  CHECK(peers.size() == 1);
}

TEST_CASE("peer list: an empty list holds one empty peer, which the link refuses as a bad address") {
  PeerList peers(std::vector<LinkPeer>{});
  CHECK(peers.size() == 1);
  CHECK(peers.current().address.empty());
}
