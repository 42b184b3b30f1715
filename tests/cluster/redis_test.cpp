// Presence and the node bus against real redis-server processes: one server
// (suite "single") and a 3-primary Redis Cluster (suite "cluster").
#include <doctest/doctest.h>

#include <set>

#include "cluster/redis/key_slot.hpp"
#include "cluster/redis/node_bus.hpp"
#include "cluster/redis/presence_directory.hpp"
#include "tests/cluster/redis_server_process.hpp"

using namespace tsunagu;
using namespace tsunagu::cluster;
using namespace tsunagu::cluster::testing;

namespace {

// Owns the loop; closes it after the objects declared after it are gone.
struct Loop {
  uv_loop_t loop{};
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    for (int turn = 0; turn < 100 && uv_loop_close(&loop) == UV_EBUSY; ++turn) uv_run(&loop, UV_RUN_NOWAIT);
  }
  // Runs the loop until done() or max_ms of loop time: a bound, not an assertion on speed.
  template <class Done>
  bool run_until(Done done, uint64_t max_ms = 5000) {
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, [](uv_timer_t*) {}, 10, 10);
    uv_update_time(&loop);
    uint64_t deadline = uv_now(&loop) + max_ms;
    while (!done() && uv_now(&loop) < deadline) uv_run(&loop, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);
    return done();
  }
};

Bytes bytes_of(std::string_view text) {
  ByteView view = as_bytes(text);
  return Bytes(view.begin(), view.end());
}

struct Lookup {
  bool done = false;
  PresenceOutcome outcome = PresenceOutcome::failed;
  std::optional<std::string> node;
};

Lookup lookup(Loop& loop, PresenceDirectory& directory, const std::string& user) {
  Lookup result;
  directory.lookup(HolderKind::user, user, [&](PresenceOutcome outcome, std::optional<std::string> node) {
    result = {true, outcome, std::move(node)};
  });
  loop.run_until([&] { return result.done; });
  return result;
}

PresenceOutcome claim(Loop& loop, PresenceDirectory& directory, const std::string& user,
                      std::optional<std::string>* previous = nullptr) {
  std::optional<PresenceOutcome> result;
  directory.claim(HolderKind::user, user, [&](PresenceOutcome outcome, std::optional<std::string> before) {
    result = outcome;
    if (previous) *previous = std::move(before);
  });
  loop.run_until([&] { return result.has_value(); });
  return result.value_or(PresenceOutcome::failed);
}

PresenceOutcome refresh(Loop& loop, PresenceDirectory& directory, const std::string& user) {
  std::optional<PresenceOutcome> result;
  directory.refresh(HolderKind::user, user, [&](PresenceOutcome outcome) { result = outcome; });
  loop.run_until([&] { return result.has_value(); });
  return result.value_or(PresenceOutcome::failed);
}

PresenceOutcome release(Loop& loop, PresenceDirectory& directory, const std::string& user) {
  std::optional<PresenceOutcome> result;
  directory.release(HolderKind::user, user, [&](PresenceOutcome outcome) { result = outcome; });
  loop.run_until([&] { return result.has_value(); });
  return result.value_or(PresenceOutcome::failed);
}

// The primary holding `key`: the others answer MOVED.
int owner_port(const std::vector<int>& ports, const std::string& key) {
  for (int port : ports) {
    Inspector inspector(port);
    ReplyPtr reply = inspector.run({"EXISTS", key});
    if (reply && reply->type != REDIS_REPLY_ERROR) return port;
  }
  return 0;
}

// One server and one cluster for the whole run (a cluster takes seconds to
// form); tests that stop a server start their own.
RedisServerProcess& shared_server() {
  static RedisServerProcess server;
  return server;
}
RedisClusterProcesses& shared_cluster() {
  static RedisClusterProcesses cluster;
  return cluster;
}
std::vector<int> cluster_ports() {
  std::vector<int> ports;
  for (auto& server : shared_cluster().servers) ports.push_back(server->port());
  return ports;
}

std::vector<RedisEndpoint> endpoints_of(const std::vector<int>& ports) {
  std::vector<RedisEndpoint> endpoints;
  for (int port : ports) endpoints.push_back({"127.0.0.1", port});
  return endpoints;
}

// The presence checks shared by the single server and the cluster.
void check_presence(const std::vector<int>& ports) {
  Loop loop;
  RedisClient redis(&loop.loop, endpoints_of(ports));
  redis.start();
  PresenceDirectory node_a(&loop.loop, redis, "node-a", 400);
  PresenceDirectory node_b(&loop.loop, redis, "node-b", 60000);
  REQUIRE(loop.run_until([&] { return redis.topology_known(); }));

  SUBCASE("a claimed row is found, a second claim reports the node it displaced, and the row expires") {
    std::optional<std::string> previous;
    CHECK(claim(loop, node_a, "alice@acme", &previous) == PresenceOutcome::done);
    CHECK_FALSE(previous.has_value());
    Lookup found = lookup(loop, node_b, "alice@acme");
    CHECK(found.outcome == PresenceOutcome::done);
    CHECK(found.node == "node-a");
    CHECK(claim(loop, node_b, "alice@acme", &previous) == PresenceOutcome::done);
    CHECK(previous == "node-a");
    CHECK(lookup(loop, node_a, "alice@acme").node == "node-b");

    CHECK(claim(loop, node_a, "carol@acme") == PresenceOutcome::done);
    // 400 ms TTL and no refresh: gone within the bound (the bound is generous, not asserted speed).
    CHECK(loop.run_until(
        [&] {
          Lookup carol = lookup(loop, node_b, "carol@acme");
          return carol.outcome == PresenceOutcome::done && !carol.node.has_value();
        },
        5000));
    CHECK(lookup(loop, node_b, "nobody@acme").node == std::nullopt);
  }

  SUBCASE("refresh renews the TTL, recreates a missing row, never takes another node's") {
    PresenceDirectory slow(&loop.loop, redis, "node-a", 60000);
    CHECK(claim(loop, slow, "dave@acme") == PresenceOutcome::done);
    std::string key = presence_key(HolderKind::user, "dave@acme");
    Inspector inspector(redis.endpoint_for_slot(redis_key_slot(key)).port);
    // As if most of the TTL had passed:
    CHECK(inspector.integer({"PEXPIRE", key, "1000"}) == 1);
    CHECK(inspector.integer({"PTTL", key}) <= 1000);
    CHECK(refresh(loop, slow, "dave@acme") == PresenceOutcome::done);
    CHECK(inspector.integer({"PTTL", key}) > 1000);

    CHECK(inspector.integer({"DEL", key}) == 1);  // as after a Redis restart
    CHECK(refresh(loop, slow, "dave@acme") == PresenceOutcome::done);
    CHECK(inspector.text({"GET", key}) == "node-a");

    CHECK(claim(loop, node_b, "dave@acme") == PresenceOutcome::done);
    CHECK(refresh(loop, slow, "dave@acme") == PresenceOutcome::held_elsewhere);
    CHECK(inspector.text({"GET", key}) == "node-b");
  }

  SUBCASE("the refreshes of one loop turn leave in one pipeline") {
    PresenceDirectory directory(&loop.loop, redis, "node-a", 60000);
    constexpr int users = 60;
    int done = 0;
    uint64_t pipelines_before = directory.pipelines_sent();
    for (int i = 0; i < users; ++i) {
      directory.refresh(HolderKind::user, "user" + std::to_string(i) + "@acme", [&](PresenceOutcome outcome) {
        if (outcome == PresenceOutcome::done) ++done;
      });
    }
    CHECK(loop.run_until([&] { return done == users; }));
    CHECK(directory.pipelines_sent() == pipelines_before + 1);
    std::set<uint16_t> owners;
    for (int i = 0; i < users; ++i) {
      CHECK(lookup(loop, node_b, "user" + std::to_string(i) + "@acme").node == "node-a");
      owners.insert(static_cast<uint16_t>(
          redis.endpoint_for_slot(redis_key_slot(presence_key(HolderKind::user, "user" + std::to_string(i) + "@acme")))
              .port));
    }
    CHECK(owners.size() == ports.size());  // on a cluster, the rows are spread over every primary
  }

  SUBCASE("with a minimum refresh interval, keepalives between writes cost no command") {
    PresenceDirectory directory(&loop.loop, redis, "node-a", 60000, 30000);
    CHECK(claim(loop, directory, "heidi@acme") == PresenceOutcome::done);
    uint64_t pipelines = directory.pipelines_sent();
    CHECK(refresh(loop, directory, "heidi@acme") == PresenceOutcome::done);
    CHECK(refresh(loop, directory, "heidi@acme") == PresenceOutcome::done);
    CHECK(directory.pipelines_sent() == pipelines);
    CHECK(directory.refreshes_skipped() == 2);
    // A row this node never wrote is refreshed at once.
    CHECK(refresh(loop, directory, "ivan@acme") == PresenceOutcome::done);
    CHECK(directory.pipelines_sent() == pipelines + 1);
    CHECK(lookup(loop, node_b, "ivan@acme").node == "node-a");
    // After a release the next keepalive writes again.
    CHECK(release(loop, directory, "heidi@acme") == PresenceOutcome::done);
    CHECK(refresh(loop, directory, "heidi@acme") == PresenceOutcome::done);
    CHECK(directory.pipelines_sent() == pipelines + 2);
  }

  SUBCASE("release deletes a row only when this node holds it") {
    CHECK(claim(loop, node_b, "erin@acme") == PresenceOutcome::done);
    CHECK(release(loop, node_a, "erin@acme") == PresenceOutcome::not_ours);
    CHECK(lookup(loop, node_a, "erin@acme").node == "node-b");
    CHECK(release(loop, node_b, "erin@acme") == PresenceOutcome::done);
    CHECK(lookup(loop, node_a, "erin@acme").node == std::nullopt);
    CHECK(release(loop, node_b, "erin@acme") == PresenceOutcome::not_ours);
  }

  SUBCASE("agents have rows of their own") {
    std::optional<PresenceOutcome> claimed;
    node_b.claim(HolderKind::agent, "acme", [&](PresenceOutcome outcome, auto) { claimed = outcome; });
    REQUIRE(loop.run_until([&] { return claimed.has_value(); }));
    std::optional<std::string> holder;
    bool looked = false;
    node_a.lookup(HolderKind::agent, "acme", [&](PresenceOutcome, std::optional<std::string> node) {
      holder = node;
      looked = true;
    });
    REQUIRE(loop.run_until([&] { return looked; }));
    CHECK(holder == "node-b");
    CHECK(lookup(loop, node_a, "acme").node == std::nullopt);  // the user "acme" is another row

    // A number prefix's row: its own key, in the slot of the prefix.
    claimed.reset();
    node_b.claim(HolderKind::prefix, "+81-6-1234-", [&](PresenceOutcome outcome, auto) { claimed = outcome; });
    REQUIRE(loop.run_until([&] { return claimed.has_value(); }));
    CHECK(*claimed == PresenceOutcome::done);
    std::string key = presence_key(HolderKind::prefix, "+81-6-1234-");
    CHECK(key == "prefix:{+81-6-1234-}");
    Inspector inspector(redis.endpoint_for_slot(redis_key_slot(key)).port);
    CHECK(inspector.integer({"EXISTS", key}) == 1);
    looked = false;
    node_a.lookup(HolderKind::prefix, "+81-6-1234-", [&](PresenceOutcome, std::optional<std::string> node) {
      holder = node;
      looked = true;
    });
    REQUIRE(loop.run_until([&] { return looked; }));
    CHECK(holder == "node-b");
    std::optional<PresenceOutcome> released;
    node_b.release(HolderKind::prefix, "+81-6-1234-", [&](PresenceOutcome outcome) { released = outcome; });
    REQUIRE(loop.run_until([&] { return released.has_value(); }));
    CHECK(*released == PresenceOutcome::done);
    CHECK(inspector.integer({"EXISTS", key}) == 0);
  }
}

struct Received {
  std::vector<BusEnvelope> messages;
};

void check_bus(const std::vector<int>& ports, const std::string& first_id, const std::string& second_id) {
  Loop loop;
  RedisClient redis_a(&loop.loop, endpoints_of(ports));
  RedisClient redis_b(&loop.loop, endpoints_of(ports));
  Received at_a, at_b;
  NodeBus bus_a(&loop.loop, redis_a, first_id, [&](const BusEnvelope& e) { at_a.messages.push_back(e); });
  NodeBus bus_b(&loop.loop, redis_b, second_id, [&](const BusEnvelope& e) { at_b.messages.push_back(e); });
  redis_a.start();
  redis_b.start();
  REQUIRE(loop.run_until([&] { return redis_a.topology_known() && redis_b.topology_known(); }));
  bus_a.start();
  bus_b.start();
  REQUIRE(loop.run_until([&] { return bus_a.subscribed() && bus_b.subscribed(); }));

  std::optional<BusSendOutcome> sent;
  bus_a.send(second_id, BusKind::ring, bytes_of("ring bob@acme from alice@acme"), [&](BusSendOutcome o) { sent = o; });
  REQUIRE(loop.run_until([&] { return !at_b.messages.empty(); }));
  CHECK(sent == BusSendOutcome::delivered);
  CHECK(at_b.messages[0].kind == BusKind::ring);
  CHECK(at_b.messages[0].from_node == first_id);
  CHECK(at_b.messages[0].body == bytes_of("ring bob@acme from alice@acme"));
  CHECK(at_a.messages.empty());

  bus_b.send(first_id, BusKind::call_event, bytes_of("accept"));
  REQUIRE(loop.run_until([&] { return !at_a.messages.empty(); }));
  CHECK(at_a.messages[0].kind == BusKind::call_event);
  CHECK(at_a.messages[0].from_node == second_id);

  std::optional<BusSendOutcome> to_nobody;
  bus_a.send("node-gone", BusKind::link_notice, {}, [&](BusSendOutcome o) { to_nobody = o; });
  REQUIRE(loop.run_until([&] { return to_nobody.has_value(); }));
  CHECK(to_nobody == BusSendOutcome::no_subscriber);

  // Bytes that are not an envelope are counted and dropped, and the bus goes on.
  std::string channel = node_channel(second_id);
  Inspector inspector(redis_b.endpoint_for_slot(redis_key_slot(channel)).port);
  CHECK(inspector.integer({"SPUBLISH", channel, "not an envelope"}) == 1);
  bus_a.send(second_id, BusKind::forwarded_lookup, bytes_of("4106@acme"));
  REQUIRE(loop.run_until([&] { return at_b.messages.size() == 2; }));
  CHECK(bus_b.malformed_dropped() == 1);
  CHECK(at_b.messages[1].kind == BusKind::forwarded_lookup);

  std::optional<BusSendOutcome> oversized;
  bus_a.send(second_id, BusKind::ring, Bytes(bus_max_envelope_size, std::byte{1}), [&](BusSendOutcome o) { oversized = o; });
  CHECK(oversized == BusSendOutcome::too_large);
}

}  // namespace

TEST_SUITE("single") {
  TEST_CASE("presence on one Redis") { check_presence({shared_server().port()}); }

  TEST_CASE("AUTH: the right password (requirepass or an ACL user) is let in; a wrong or missing one is refused, and says so") {
    RedisServerProcess server(false, {"--requirepass", "bus secret"});
    {
      Inspector admin(server.port());
      REQUIRE(admin.text({"AUTH", "bus secret"}) == "OK");
      REQUIRE(admin.text({"ACL", "SETUSER", "node-a", "on", ">node a secret", "~*", "&*", "+@all"}) == "OK");
    }
    auto set_then_get = [&](RedisAuth auth, RedisValue* set_reply) {
      Loop loop;
      RedisClient redis(&loop.loop, {{"127.0.0.1", server.port()}}, RedisBackoff{50, 400}, std::move(auth));
      redis.start();
      std::optional<RedisValue> set, got;
      redis.command("auth-test", {"SET", "auth-test", "written"}, [&](const RedisValue& v) { set = v; });
      loop.run_until([&] { return set.has_value(); });
      if (set_reply && set) *set_reply = *set;
      redis.command("auth-test", {"GET", "auth-test"}, [&](const RedisValue& v) { got = v; });
      loop.run_until([&] { return got.has_value(); });
      return got ? got->text : std::string("(no answer)");
    };
    Inspector check(server.port());
    REQUIRE(check.text({"AUTH", "bus secret"}) == "OK");

    CHECK(set_then_get({"", "bus secret"}, nullptr) == "written");
    CHECK(check.integer({"DEL", "auth-test"}) == 1);
    CHECK(set_then_get({"node-a", "node a secret"}, nullptr) == "written");
    CHECK(check.integer({"DEL", "auth-test"}) == 1);

    RedisValue refused;
    set_then_get({"", "wrong"}, &refused);
    CHECK_FALSE(refused.ok());
    CHECK(check.integer({"EXISTS", "auth-test"}) == 0);  // nothing written without the password
    RedisValue missing;
    set_then_get({}, &missing);
    CHECK_FALSE(missing.ok());
    CHECK(missing.text.find("NOAUTH") != std::string::npos);
    CHECK(check.integer({"EXISTS", "auth-test"}) == 0);
  }

  TEST_CASE("AUTH refused: later commands are told why while the connection backs off") {
    RedisServerProcess server(false, {"--requirepass", "bus secret"});
    Loop loop;
    RedisConnection connection(&loop.loop, {"127.0.0.1", server.port()}, RedisBackoff{50, 400}, {"", "wrong"});
    connection.start();
    REQUIRE(loop.run_until([&] { return !connection.auth_error().empty(); }));
    CHECK(connection.auth_error().find("AUTH refused") != std::string::npos);
    // Once the refused connection closed, a command fails at once with the reason.
    REQUIRE(loop.run_until([&] { return !connection.connected(); }));
    std::optional<RedisValue> reply;
    connection.send({"PING"}, [&](const RedisValue& v) { reply = v; });
    REQUIRE(reply.has_value());
    CHECK(reply->type == RedisValue::Type::unavailable);
    CHECK(reply->text.find("AUTH refused") != std::string::npos);
  }

  TEST_CASE("two node buses exchange messages through one Redis") {
    check_bus({shared_server().port()}, "node-a", "node-b");
  }

  TEST_CASE("Redis killed with our command unread: the reset is noticed, the command hears so, and the client reconnects") {
    RedisServerProcess server;
    Loop loop;
    RedisClient redis(&loop.loop, {{"127.0.0.1", server.port()}}, RedisBackoff{50, 400});
    redis.start();
    PresenceDirectory directory(&loop.loop, redis, "node-a", 60000);
    REQUIRE(loop.run_until([&] { return redis.topology_known(); }));
    REQUIRE(claim(loop, directory, "alice@acme") == PresenceOutcome::done);

    // A stopped server reads nothing: the lookup stays in its socket, and its
    // death then answers with a reset (EPOLLERR), not an orderly close. hiredis
    // 0.14's own libuv adapter ignored that error: the lookup waited for ever.
    REQUIRE(kill(server.pid(), SIGSTOP) == 0);
    std::optional<PresenceOutcome> outcome;
    directory.lookup(HolderKind::user, "alice@acme", [&](PresenceOutcome o, auto) { outcome = o; });
    loop.run_until([] { return false; }, 200);  // written, and unread
    REQUIRE_FALSE(outcome.has_value());
    server.stop();
    CHECK(loop.run_until([&] { return outcome.has_value(); }, 5000));
    CHECK(outcome == PresenceOutcome::unavailable);

    server.start();  // same port, empty
    CHECK(loop.run_until([&] { return lookup(loop, directory, "alice@acme").outcome == PresenceOutcome::done; }, 10000));
    CHECK(claim(loop, directory, "alice@acme") == PresenceOutcome::done);
    CHECK(lookup(loop, directory, "alice@acme").node == "node-a");
  }

  TEST_CASE("Redis restarted: commands fail fast while it is down, then presence rebuilds from the next refresh round") {
    RedisServerProcess server;
    Loop loop;
    RedisClient redis(&loop.loop, {{"127.0.0.1", server.port()}}, RedisBackoff{50, 400});
    redis.start();
    // Rows are written at most once a minute, yet rebuilt at the first keepalive after the restart.
    PresenceDirectory directory(&loop.loop, redis, "node-a", 60000, 60000);
    Received received;
    NodeBus bus(&loop.loop, redis, "node-a", [&](const BusEnvelope& e) { received.messages.push_back(e); });
    REQUIRE(loop.run_until([&] { return redis.topology_known(); }));
    bus.start();
    REQUIRE(loop.run_until([&] { return bus.subscribed(); }));
    const std::vector<std::string> users = {"alice@acme", "bob@acme", "carol@acme"};
    for (const std::string& user : users) REQUIRE(claim(loop, directory, user) == PresenceOutcome::done);

    server.stop();
    // The client notices on its own (the socket closes); a command is then refused at once.
    CHECK(loop.run_until([&] { return lookup(loop, directory, "alice@acme").outcome == PresenceOutcome::unavailable; }));
    bool answered = false;
    PresenceOutcome outcome = PresenceOutcome::done;
    directory.lookup(HolderKind::user, "alice@acme", [&](PresenceOutcome o, auto) {
      answered = true;
      outcome = o;
    });
    CHECK(answered);  // before the loop ran again: no waiting on a dead server
    CHECK(outcome == PresenceOutcome::unavailable);
    CHECK(refresh(loop, directory, "alice@acme") == PresenceOutcome::unavailable);

    // Down for a while, as a real restart is: the reconnection attempts meanwhile
    // are refused (hiredis 0.14's libuv adapter never reported that: the client
    // hung on its first refused attempt and never reconnected).
    loop.run_until([] { return false; }, 2500);
    server.start();  // same port, empty: no persistence
    uint64_t subscriptions = bus.subscriptions_made();
    REQUIRE(loop.run_until([&] { return lookup(loop, directory, "alice@acme").outcome == PresenceOutcome::done; }, 10000));
    CHECK(redis.topology_known());
    CHECK(lookup(loop, directory, "alice@acme").node == std::nullopt);  // rows gone with the restart

    // One refresh round (each link's next keepalive) rebuilds every row.
    int refreshed = 0;
    for (const std::string& user : users) {
      directory.refresh(HolderKind::user, user, [&](PresenceOutcome o) { refreshed += o == PresenceOutcome::done; });
    }
    uint64_t skipped = directory.refreshes_skipped();
    REQUIRE(loop.run_until([&] { return refreshed == 3; }));
    CHECK(directory.refreshes_skipped() == skipped);
    for (const std::string& user : users) CHECK(lookup(loop, directory, user).node == "node-a");

    // The bus subscribed again by itself.
    REQUIRE(loop.run_until([&] { return bus.subscriptions_made() > subscriptions; }, 10000));
    std::optional<BusSendOutcome> sent;
    bus.send("node-a", BusKind::link_notice, bytes_of("to myself"), [&](BusSendOutcome o) { sent = o; });
    REQUIRE(loop.run_until([&] { return !received.messages.empty(); }));
    CHECK(sent == BusSendOutcome::delivered);
  }
}

TEST_SUITE("cluster") {
  TEST_CASE("a 3-primary Redis Cluster: slots, presence, bus, MOVED and ASK") {
    std::vector<int> ports = cluster_ports();

    SUBCASE("our slots are Redis' slots") {
      Inspector inspector(ports[0]);
      for (std::string key : {"foo", "bar", "presence:{alice@acme}", "prefix:{+81-6-1234-}", "node:{node-a}",
                              "{user1000}.following", "a{}b"}) {
        CHECK(inspector.integer({"CLUSTER", "KEYSLOT", key}) == redis_key_slot(key));
      }
    }

    SUBCASE("presence across slots") { check_presence(ports); }

    SUBCASE("buses whose channels live on different primaries") {
      std::string first = "node-a", second;
      int first_owner = owner_port(ports, node_channel(first));
      for (int i = 0; i < 100 && second.empty(); ++i) {
        std::string candidate = "node-" + std::to_string(i);
        if (owner_port(ports, node_channel(candidate)) != first_owner) second = candidate;
      }
      REQUIRE_FALSE(second.empty());
      check_bus(ports, first, second);
    }

    SUBCASE("MOVED is followed when the client starts from a server that does not hold the slot") {
      std::string key = presence_key(HolderKind::user, "frank@acme");
      uint16_t slot = redis_key_slot(key);
      // Seed the client with a primary that does not hold the key.
      int wrong_port = ports[0] == owner_port(ports, key) ? ports[1] : ports[0];
      Loop loop;
      RedisClient redis(&loop.loop, {{"127.0.0.1", wrong_port}});
      redis.start();
      PresenceDirectory directory(&loop.loop, redis, "node-a", 60000);
      // Issued before the slot map arrived: goes to the seed, which answers MOVED.
      CHECK(claim(loop, directory, "frank@acme") == PresenceOutcome::done);
      CHECK(lookup(loop, directory, "frank@acme").node == "node-a");
      CHECK(redis.moved_followed() >= 1);
      CHECK(redis.cluster_mode());
      CHECK(redis.endpoint_for_slot(slot).port != wrong_port);
    }

    SUBCASE("a first seed that is down does not stop the client") {
      Loop loop;
      RedisClient redis(&loop.loop, {{"127.0.0.1", pick_port()}, {"127.0.0.1", ports[1]}});
      redis.start();
      REQUIRE(loop.run_until([&] { return redis.topology_known(); }));
      CHECK(redis.cluster_mode());
      PresenceDirectory directory(&loop.loop, redis, "node-a", 60000);
      for (std::string user : {"judy@acme", "mallory@acme", "oscar@acme", "peggy@acme"}) {
        CHECK(claim(loop, directory, user) == PresenceOutcome::done);
        CHECK(lookup(loop, directory, user).node == "node-a");
      }
    }

    SUBCASE("ASK is followed while a slot migrates") {
      std::string key = presence_key(HolderKind::user, "grace@acme");
      uint16_t slot = redis_key_slot(key);
      Loop loop;
      RedisClient redis(&loop.loop, endpoints_of(ports));
      redis.start();
      REQUIRE(loop.run_until([&] { return redis.topology_known(); }));
      int source_port = redis.endpoint_for_slot(slot).port;
      int target_port = ports[0] == source_port ? ports[1] : ports[0];
      Inspector source(source_port), target(target_port);
      std::string source_id = source.text({"CLUSTER", "MYID"});
      std::string target_id = target.text({"CLUSTER", "MYID"});
      REQUIRE(target.text({"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", source_id}) == "OK");
      REQUIRE(source.text({"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", target_id}) == "OK");
      // A key the source does not have is asked of the target.
      PresenceDirectory directory(&loop.loop, redis, "node-a", 60000);
      CHECK(claim(loop, directory, "grace@acme") == PresenceOutcome::done);
      CHECK(lookup(loop, directory, "grace@acme").node == "node-a");
      CHECK(redis.ask_followed() == 2);
      CHECK(redis.moved_followed() == 0);
      CHECK(target.text({"ASKING"}) == "OK");
      CHECK(target.text({"GET", key}) == "node-a");
      CHECK(redis.endpoint_for_slot(slot).port == source_port);  // ASK does not change the map
      CHECK(source.text({"CLUSTER", "SETSLOT", std::to_string(slot), "STABLE"}) == "OK");
      CHECK(target.text({"CLUSTER", "SETSLOT", std::to_string(slot), "STABLE"}) == "OK");
    }
  }
}
