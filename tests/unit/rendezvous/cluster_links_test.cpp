// The cluster relay's bookkeeping (node/cluster_relay.hpp, ClusterLinks)
// and its settings: [cluster] in node.toml, the Redis endpoints and node names.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "node/cluster_relay.hpp"
#include "node/node_config.hpp"

using namespace tsunagu::rendezvous;

TEST_CASE("a remote link per (node, link): the same one again, another for another node or link") {
  ClusterLinks links;
  auto first = links.remote_link("node-a", 7, "alice");
  CHECK(first.opened);
  CHECK(ClusterLinks::is_remote(first.link));
  CHECK_FALSE(ClusterLinks::is_remote(7));
  auto again = links.remote_link("node-a", 7, "alice");
  CHECK_FALSE(again.opened);
  CHECK(again.link == first.link);
  auto other_node = links.remote_link("node-b", 7, "bob");
  auto other_link = links.remote_link("node-a", 8, "carol");
  CHECK(other_node.link != first.link);
  CHECK(other_link.link != first.link);
  REQUIRE(links.remote(first.link) != nullptr);
  CHECK(links.remote(first.link)->node == "node-a");
  CHECK(links.remote(first.link)->link == 7);
  CHECK(links.remote(first.link)->user == "alice");
  auto of_a = links.remote_links_of_node("node-a");
  std::sort(of_a.begin(), of_a.end());
  CHECK(of_a == std::vector<LinkId>{first.link, other_link.link});
  links.forget_remote(first.link);
  CHECK(links.remote(first.link) == nullptr);
  CHECK_FALSE(links.remote_link_of("node-a", 7).has_value());
  CHECK(links.remote_count() == 2);
  // A new remote link never reuses a forgotten one's ID.
  CHECK(links.remote_link("node-a", 7, "alice").link != first.link);
}

TEST_CASE("calls follow their node; a link's close and a node's death forget them") {
  ClusterLinks links;
  links.call_seen(1, "c1", "node-c");
  links.call_seen(1, "c2", "node-b");
  links.call_seen(2, "c3", "node-c");
  links.asked(3, "node-b");
  REQUIRE(links.call_node(1, "c1") != nullptr);
  CHECK(*links.call_node(1, "c1") == "node-c");
  CHECK(links.call_node(2, "c1") == nullptr);  // a call ID is only followed for the link it came back to
  CHECK(links.nodes_in_use() == std::set<std::string>{"node-b", "node-c"});

  links.call_ended(1, "c2");
  CHECK(links.call_node(1, "c2") == nullptr);

  auto ended = links.node_gone("node-c");
  std::sort(ended.begin(), ended.end());
  CHECK(ended == std::vector<std::pair<LinkId, std::string>>{{1, "c1"}, {2, "c3"}});
  CHECK(links.call_node(2, "c3") == nullptr);
  CHECK(links.nodes_in_use().empty());

  links.call_seen(4, "c4", "node-b");
  links.call_seen(5, "c5", "node-b");
  CHECK(links.local_closed(4) == std::set<std::string>{"node-b"});
  CHECK(links.call_node(4, "c4") == nullptr);
  CHECK(links.call_node(5, "c5") != nullptr);  // another link's call stays
  CHECK(links.local_closed(3) == std::set<std::string>{"node-b"});
  CHECK(links.local_closed(3).empty());
}

TEST_CASE("the Redis row asked for a lookup: the user's, the domain's agent, or the longest enrolled number prefix's") {
  using tsunagu::cluster::HolderKind;
  std::vector<HolderQuery> held;  // what "this node" holds
  auto here = [&](const HolderQuery& query) { return std::find(held.begin(), held.end(), query) != held.end(); };
  auto ask = [&](const std::string& target, std::optional<std::string> prefix = std::nullopt) {
    return holder_to_ask(target, prefix, here);
  };
  CHECK(ask("bob") == HolderQuery{HolderKind::user, "bob"});
  CHECK(ask("4106@acme") == HolderQuery{HolderKind::agent, "acme"});
  // A number inside an enrolled prefix: that prefix's row, whatever the rest of it.
  CHECK(ask("+81-6-1234-4106", "+81-6-1234-") == HolderQuery{HolderKind::prefix, "+81-6-1234-"});
  // In no enrolled prefix: asked for as an account's ID would be.
  CHECK(ask("+81-6-1234-4106") == HolderQuery{HolderKind::user, "+81-6-1234-4106"});
  // The route read names the prefix the number starts with; anything else is not trusted as one.
  CHECK(ask("+81-6-1234-4106", "+82") == HolderQuery{HolderKind::user, "+81-6-1234-4106"});
  CHECK(ask("+81-6-1234-4106", "") == HolderQuery{HolderKind::user, "+81-6-1234-4106"});
  // A domain's enrolled route is the domain, never a prefix row.
  CHECK(ask("4106@acme", "+81") == HolderQuery{HolderKind::agent, "acme"});

  // Held here: this node answers. A shorter prefix held here does not answer
  // for the longest enrolled one (its agent may be linked to another node).
  held = {{HolderKind::prefix, "+81-"}};
  CHECK(ask("+81-6-1234-4106", "+81-6-1234-") == HolderQuery{HolderKind::prefix, "+81-6-1234-"});
  CHECK(ask("+81-7-0000", "+81-") == std::nullopt);
  held = {{HolderKind::prefix, "+81-6-1234-"}, {HolderKind::agent, "acme"}, {HolderKind::user, "bob"}};
  CHECK(ask("+81-6-1234-4106", "+81-6-1234-") == std::nullopt);
  CHECK(ask("4106@acme") == std::nullopt);
  CHECK(ask("bob") == std::nullopt);
  // Rows of another kind with the same text are other rows.
  held = {{HolderKind::agent, "+81-"}, {HolderKind::user, "+81-"}};
  CHECK(ask("+81-7-0000", "+81-") == HolderQuery{HolderKind::prefix, "+81-"});
  // Only a +NUMBER is routed by prefix (as on one node).
  CHECK(ask("0120-555", "0120") == HolderQuery{HolderKind::user, "0120-555"});
}

TEST_CASE("Redis endpoints are IP literals with a port; node names are short and plain") {
  auto v4 = parse_redis_endpoint("127.0.0.1:6379");
  REQUIRE(v4.has_value());
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 6379);
  auto v6 = parse_redis_endpoint("[::1]:7000");
  REQUIRE(v6.has_value());
  CHECK(v6->host == "::1");
  CHECK_FALSE(parse_redis_endpoint("redis.example:6379").has_value());
  CHECK_FALSE(parse_redis_endpoint("127.0.0.1").has_value());
  CHECK_FALSE(parse_redis_endpoint("127.0.0.1:0").has_value());
  CHECK(valid_node_name("node-a.eu_1"));
  CHECK_FALSE(valid_node_name(""));
  CHECK_FALSE(valid_node_name("Node-A"));
  CHECK_FALSE(valid_node_name("node}{x"));
  CHECK_FALSE(valid_node_name(std::string(65, 'n')));
}

namespace {
std::string load_error(const std::string& text, NodeConfig* loaded = nullptr) {
  std::string pattern = (std::filesystem::temp_directory_path() / "tsunagu-cluster-XXXXXX").string();
  std::filesystem::path dir = mkdtemp(pattern.data());
  std::ofstream(dir / "node.toml") << text;
  std::string error;
  try {
    NodeConfig config = load_node_config(dir.string());
    if (loaded) *loaded = config;
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::filesystem::remove_all(dir);
  return error;
}
}  // namespace

TEST_CASE("[cluster] in node.toml: redis and node_name read, checked, and none by default") {
  NodeConfig config;
  CHECK(load_error("", &config).empty());
  CHECK(config.cluster_redis.empty());
  CHECK(load_error("[cluster]\nredis = [\"10.0.0.5:6379\", \"10.0.0.6:6379\"]\nnode_name = \"node-a\"\n", &config)
            .empty());
  CHECK(config.cluster_redis == std::vector<std::string>{"10.0.0.5:6379", "10.0.0.6:6379"});
  CHECK(config.cluster_node_name == "node-a");
  CHECK(load_error("[cluster]\nredis = [\"10.0.0.5:6379\"]\n").find("cluster.node_name") != std::string::npos);
  CHECK(load_error("[cluster]\nredis = [\"redis:6379\"]\nnode_name = \"a\"\n").find("cluster.redis") !=
        std::string::npos);
  CHECK(load_error("[cluster]\nnode_name = \"A B\"\n").find("cluster.node_name") != std::string::npos);
}
