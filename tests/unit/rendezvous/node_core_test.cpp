// NodeCore driven the way node_daemon.cpp drives it: inputs (link opened,
// message, password job done, tick), then one turn = commit_turn(), take the
// password jobs, take the actions. Password jobs are run here, synchronously,
// with the same security functions the daemon's thread pool uses.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "proto/signalling.hpp"
#include "proto/stun_message.hpp"
#include "rendezvous/account_admin.hpp"
#include "rendezvous/node_core.hpp"
#include "rendezvous/node_metrics.hpp"
#include "security/digest.hpp"
#include "security/encoding.hpp"
#include "security/passwords.hpp"
#include "security/random.hpp"
#include "security/resume_token.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
namespace proto = tsunagu::proto;
namespace sig = tsunagu::proto;
using proto::SocketAddress;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tsunagu-node-XXXXXX";
    char* made = mkdtemp(tmpl);
    REQUIRE(made != nullptr);
    path = made;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

const security::ScryptParameters fast_hashing{10, 8, 1};

// A repeatable source for NodeCore's IDs and keys: the same seed gives the
// same bytes, so a failing run repeats exactly.
std::function<void(std::span<std::byte>)> seeded_random(uint64_t seed) {
  auto engine = std::make_shared<std::mt19937_64>(seed);
  return [engine](std::span<std::byte> out) {
    for (auto& b : out) b = static_cast<std::byte>((*engine)() & 0xFF);
  };
}

NodeSettings test_settings() {
  NodeSettings settings;
  settings.password_hashing = fast_hashing;
  settings.scram_iterations = security::scram::min_iterations;  // tests only; production keeps 600,000
  settings.random = seeded_random(20261204);
  // No periodic account check, so the deadlines these tests expect are the
  // ones they are about; the identity tests turn it on (issue 11).
  settings.account_check_interval_ms = 0;
  return settings;
}

const SocketAddress alice_nat = SocketAddress::v4({198, 51, 100, 9}, 40000);
const SocketAddress alice_home = SocketAddress::v4({192, 168, 1, 20}, 5060);
const SocketAddress alice_v6 =
    SocketAddress::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20}, 5062);
const SocketAddress alice_laptop_nat = SocketAddress::v4({198, 51, 100, 33}, 41000);
const SocketAddress bob_nat = SocketAddress::v6({0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99}, 50000);
const SocketAddress carol_nat = SocketAddress::v4({203, 0, 113, 50}, 45000);

// A decoded message that owns its bytes (attribute values point into them).
struct Reply {
  std::shared_ptr<const Bytes> bytes;
  proto::Message m;

  bool is_success() const { return m.message_class == proto::MessageClass::success; }
  bool is_error() const { return m.message_class == proto::MessageClass::error; }
  uint16_t code() const {
    const proto::Attribute* a = m.find(proto::attr::error_code);
    if (a == nullptr) return 0;
    auto e = proto::read_error_code(*a);
    return e ? e->code : 0;
  }
  std::string reason() const {
    const proto::Attribute* a = m.find(proto::attr::error_code);
    auto e = a ? proto::read_error_code(*a) : std::nullopt;
    return e ? std::string(e->reason) : std::string();
  }
  bool has(uint16_t type) const { return m.find(type) != nullptr; }
  std::optional<uint32_t> u32(uint16_t type) const {
    const proto::Attribute* a = m.find(type);
    return a ? proto::read_u32(*a) : std::nullopt;
  }
  std::optional<uint64_t> u64(uint16_t type) const {
    const proto::Attribute* a = m.find(type);
    return a ? proto::read_u64(*a) : std::nullopt;
  }
  std::optional<std::string> text(uint16_t type) const {
    const proto::Attribute* a = m.find(type);
    return a ? std::optional<std::string>(proto::read_string(*a)) : std::nullopt;
  }
  std::optional<SocketAddress> address(uint16_t type) const {
    const proto::Attribute* a = m.find(type);
    return a ? proto::read_xor_address(*a, m) : std::nullopt;
  }
  std::vector<SocketAddress> addresses(uint16_t type) const {
    std::vector<SocketAddress> out;
    for (const auto* a : m.find_all(type))
      if (auto address = proto::read_xor_address(*a, m)) out.push_back(*address);
    return out;
  }
};

Reply parse(Bytes bytes) {
  Reply r;
  r.bytes = std::make_shared<const Bytes>(std::move(bytes));
  auto decoded = proto::decode(*r.bytes);
  REQUIRE_MESSAGE(decoded.has_value(), "the node sent bytes that do not decode");
  REQUIRE(decoded->consumed == r.bytes->size());
  REQUIRE(decoded->message.has_fingerprint);
  r.m = std::move(decoded->message);
  return r;
}

proto::TransactionId fresh_id() {
  proto::TransactionId id;
  security::random_bytes(id.bytes);
  return id;
}

// A Tsunagu request: PROTOCOL-VERSION (unless told otherwise) and what `fill` adds.
Bytes request(uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill = {},
              std::optional<uint32_t> version = sig::protocol_version) {
  proto::MessageBuilder b(proto::MessageClass::request, method, fresh_id());
  if (version) b.add_u32(sig::attr::protocol_version, *version);
  if (fill) fill(b);
  return b.finish();
}

Bytes login_request(const std::string& user, const std::string& password, std::vector<SocketAddress> reported = {},
                    std::optional<uint32_t> role = std::nullopt) {
  return request(sig::method::login, [&](proto::MessageBuilder& b) {
    b.add_string(sig::attr::user_id, user);
    b.add_string(sig::attr::password, password);
    for (const auto& a : reported) b.add_xor_address(sig::attr::reported_address, a);
    if (role) b.add_u32(sig::attr::link_role, *role);
  });
}

Bytes lookup_request(const std::string& user) {
  return request(sig::method::lookup, [&](proto::MessageBuilder& b) { b.add_string(sig::attr::user_id, user); });
}

Bytes register_request(const std::string& user, const std::string& password, const std::string& name = {}) {
  return request(sig::method::register_user, [&](proto::MessageBuilder& b) {
    b.add_string(sig::attr::user_id, user);
    b.add_string(sig::attr::password, password);
    if (!name.empty()) b.add_string(sig::attr::display_name, name);
  });
}

PasswordJobResult run_job(const PasswordJob& job) { return run_password_job(job); }

// The node with a real LMDB store, a clock the test moves, and the daemon's turn.
class Node {
 public:
  explicit Node(NodeSettings settings = test_settings()) {
    auto store = AccountStore::open(dir_.path, uint64_t{32} << 20);
    REQUIRE(store.has_value());
    store_ = std::move(*store);
    core_ = std::make_unique<NodeCore>(*store_, std::move(settings));
  }

  NodeCore& core() { return *core_; }
  AccountStore& store() { return *store_; }
  Now now() const { return now_; }
  void advance_ms(uint64_t ms) {
    now_.mono_ms += ms;
    now_.unix_s += ms / 1000;
  }

  // An account entered by an administrator.
  void add_account(const std::string& user, const std::string& password, std::string display_name = {},
                   std::optional<SocketAddress> static_address = std::nullopt) {
    Account a;
    a.user_id = user;
    a.password_hash = security::hash_password(password, fast_hashing);
    a.display_name = std::move(display_name);
    a.static_address = static_address;
    a.created_at = now_.unix_s;
    auto txn = store_->begin_write();
    REQUIRE(txn.has_value());
    auto created = store_->create(*txn, a);
    REQUIRE(created.has_value());
    REQUIRE(*created);
    REQUIRE(txn->commit().has_value());
  }

  void open(LinkId link, const SocketAddress& observed) {
    core_->link_opened(link, observed, now_);
    turn();
  }
  void close(LinkId link) {
    core_->link_closed(link, now_);
    turn();
  }
  // Delivers one message without ending the turn.
  void deliver(LinkId link, ByteView bytes) { core_->message(link, bytes, now_); }
  // Delivers one message and lets every password job finish, one turn each.
  void send(LinkId link, ByteView bytes) {
    deliver(link, bytes);
    settle();
  }
  void tick() {
    core_->tick(now_);
    turn();
  }

  // One loop turn of the daemon: commit, hand out password jobs, release actions.
  void turn() {
    core_->commit_turn();
    for (auto& job : core_->take_password_jobs()) jobs_.push_back(std::move(job));
    collect();
  }
  // Finishes the password jobs handed out so far (as the thread pool would).
  void finish_jobs() {
    auto jobs = std::move(jobs_);
    jobs_.clear();
    for (const auto& job : jobs) core_->password_job_done(run_job(job), now_);
  }
  void settle() {
    turn();
    while (!jobs_.empty()) {
      finish_jobs();
      turn();
    }
  }
  // Collects actions released so far without committing.
  void collect() {
    for (auto& action : core_->take_actions()) actions_.push_back(std::move(action));
  }
  std::vector<PasswordJob>& pending_jobs() { return jobs_; }

  // Removes and returns the messages sent to `link` so far.
  std::vector<Reply> received(LinkId link) {
    std::vector<Reply> out;
    std::vector<NodeAction> rest;
    for (auto& action : actions_) {
      if (action.link == link && action.kind == NodeAction::Kind::send)
        out.push_back(parse(std::move(action.message)));
      else
        rest.push_back(std::move(action));
    }
    actions_ = std::move(rest);
    return out;
  }
  // The one message sent to `link`.
  Reply reply(LinkId link) {
    auto all = received(link);
    REQUIRE(all.size() == 1);
    return all.front();
  }
  // Removes and returns the reasons of close actions for `link`.
  std::vector<std::string> closes(LinkId link) {
    std::vector<std::string> out;
    std::vector<NodeAction> rest;
    for (auto& action : actions_) {
      if (action.link == link && action.kind == NodeAction::Kind::close)
        out.push_back(action.reason);
      else
        rest.push_back(std::move(action));
    }
    actions_ = std::move(rest);
    return out;
  }
  bool quiet() const { return actions_.empty(); }
  // Removes and returns every message sent so far, to any link, as sent.
  std::vector<std::pair<LinkId, Bytes>> sent() {
    std::vector<std::pair<LinkId, Bytes>> out;
    std::vector<NodeAction> rest;
    for (auto& action : actions_) {
      if (action.kind == NodeAction::Kind::send) out.emplace_back(action.link, std::move(action.message));
      else rest.push_back(std::move(action));
    }
    actions_ = std::move(rest);
    return out;
  }

  // Opens `link` from `observed`, logs in, and returns the login reply.
  Reply login(LinkId link, const SocketAddress& observed, const std::string& user, const std::string& password,
              std::vector<SocketAddress> reported = {}, std::optional<uint32_t> role = std::nullopt) {
    open(link, observed);
    send(link, login_request(user, password, std::move(reported), role));
    return reply(link);
  }

 private:
  TempDir dir_;
  std::unique_ptr<AccountStore> store_;
  std::unique_ptr<NodeCore> core_;
  Now now_{5'000'000, 1'700'000'000};
  std::vector<PasswordJob> jobs_;
  std::vector<NodeAction> actions_;
};

bool is_notice(const Reply& r) {
  return r.m.message_class == proto::MessageClass::indication && r.m.method == sig::method::notice;
}

// Clients act on NOTICE-CODE, never on the text: every notice carries one.
uint32_t notice_code(const Reply& r) { return r.u32(sig::attr::notice_code).value_or(0); }

}  // namespace

// --- register ---------------------------------------------------------------

TEST_CASE("register is refused with 403 when registration is closed (the default)") {
  Node node;
  node.open(1, alice_nat);
  node.send(1, register_request("alice", "correct horse"));
  Reply r = node.reply(1);
  CHECK(r.is_error());
  CHECK(r.m.method == sig::method::register_user);
  CHECK(r.code() == 403);
  CHECK(r.u32(sig::attr::protocol_version) == sig::protocol_version);
  CHECK(node.core().counters().registrations == 0);
}

TEST_CASE("register on an open node creates the account, and a second register of the ID gets 409") {
  NodeSettings settings = test_settings();
  settings.open_registration = true;
  Node node(settings);
  node.open(1, alice_nat);
  Bytes first = register_request("alice", "correct horse", "Alice");
  node.send(1, first);
  Reply ok = node.reply(1);
  CHECK(ok.is_success());
  CHECK(ok.m.method == sig::method::register_user);
  CHECK(node.core().counters().registrations == 1);

  node.send(1, register_request("alice", "other password"));
  Reply taken = node.reply(1);
  CHECK(taken.is_error());
  CHECK(taken.code() == 409);

  // The account is durable and has the password hashed, never plain.
  auto txn = node.store().begin_read();
  auto account = node.store().find(*txn, "alice");
  REQUIRE(account.has_value());
  REQUIRE(account->has_value());
  CHECK((*account)->display_name == "Alice");
  CHECK((*account)->password_hash.find("correct horse") == std::string::npos);
  auto credentials = security::scram::decode_credentials((*account)->password_hash);
  REQUIRE(credentials.has_value());
  CHECK(credentials->iterations == security::scram::min_iterations);
  CHECK(security::scram::password_matches("correct horse", *credentials));
  txn->abort();

  // And the new password works for login.
  Reply login = node.login(2, alice_nat, "alice", "correct horse");
  CHECK(login.is_success());
}

TEST_CASE("two registers of one ID in the same turn create one account") {
  NodeSettings settings = test_settings();
  settings.open_registration = true;
  Node node(settings);
  node.open(1, alice_nat);
  node.open(2, bob_nat);
  node.deliver(1, register_request("alice", "correct horse"));
  node.deliver(2, register_request("alice", "battery staple"));
  node.settle();
  Reply first = node.reply(1);
  Reply second = node.reply(2);
  CHECK(first.is_success());
  CHECK(second.code() == 409);
  CHECK(node.core().counters().registrations == 1);
}

TEST_CASE("register refuses an invalid user ID with 422 and a bad password or name with 400") {
  NodeSettings settings = test_settings();
  settings.open_registration = true;
  Node node(settings);
  node.open(1, alice_nat);
  for (const char* id : {"Alice", "ali ce", ".alice", "a@b@c", "alice@", ""}) {
    CAPTURE(id);
    node.send(1, register_request(id, "correct horse"));
    CHECK(node.reply(1).code() == 422);
  }
  node.send(1, register_request("alice", "short"));
  CHECK(node.reply(1).code() == 400);
  node.send(1, register_request("alice", std::string(257, 'p')));
  CHECK(node.reply(1).code() == 400);
  node.send(1, register_request("alice", "correct horse", std::string(129, 'n')));
  CHECK(node.reply(1).code() == 400);
  node.send(1, register_request("alice", "correct horse", "tab\there"));
  CHECK(node.reply(1).code() == 400);
  node.send(1, request(sig::method::register_user,
                       [](proto::MessageBuilder& b) { b.add_string(sig::attr::user_id, "alice"); }));
  CHECK(node.reply(1).code() == 400);
  CHECK(node.core().counters().registrations == 0);
}

TEST_CASE("register and user add refuse an ID starting with card-: a connection agent's caller ID for a card holder") {
  NodeSettings settings = test_settings();
  settings.open_registration = true;
  Node node(settings);
  node.open(1, alice_nat);
  node.send(1, register_request("card-20261205-0007-000042", "correct horse"));
  Reply refused = node.reply(1);
  CHECK(refused.code() == 422);
  CHECK(refused.reason().find("reserved for the calls connection agents place on access cards") != std::string::npos);
  node.send(1, register_request("card-x", "correct horse"));
  CHECK(node.reply(1).code() == 422);
  node.send(1, register_request("cardholder", "correct horse"));  // only the prefix with its dash
  CHECK(node.reply(1).is_success());
  CHECK(node.core().counters().registrations == 1);
  NewAccount account;
  account.user_id = "card-20261205-0007-000042";
  account.password_hash = security::hash_password("correct horse", fast_hashing);
  auto added = rendezvous::add_account(node.store(), account, 30, node.now().unix_s);
  REQUIRE_FALSE(added.has_value());
  CHECK(added.error().code == AccountAdminErrc::invalid_id);
  CHECK(added.error().detail.find("reserved") != std::string::npos);
}

// --- login ------------------------------------------------------------------

TEST_CASE("login succeeds with XOR-MAPPED-ADDRESS = the observed address and KEEPALIVE-INTERVAL") {
  Node node;
  node.add_account("alice", "correct horse");
  Reply r = node.login(1, alice_nat, "alice", "correct horse", {alice_home, alice_v6});
  CHECK(r.is_success());
  CHECK(r.m.method == sig::method::login);
  CHECK(r.address(proto::attr::xor_mapped_address) == alice_nat);
  CHECK(r.u32(sig::attr::keepalive_interval) == 15);
  CHECK(r.u32(sig::attr::protocol_version) == sig::protocol_version);

  const PresenceRow* row = node.core().presence().find("alice");
  REQUIRE(row != nullptr);
  CHECK(row->link == 1);
  CHECK(row->observed == alice_nat);
  CHECK(row->reported == std::vector<SocketAddress>{alice_home, alice_v6});
  CHECK(node.core().counters().logins == 1);

  // The login is remembered durably.
  auto txn = node.store().begin_read();
  auto record = node.store().last_login(*txn, "alice");
  REQUIRE(record.has_value());
  REQUIRE(record->has_value());
  CHECK((*record)->time == node.now().unix_s);
  CHECK((*record)->observed == alice_nat);
  CHECK((*record)->reported == std::vector<SocketAddress>{alice_home, alice_v6});
}

TEST_CASE("a presence login is acknowledged only after the turn's commit") {
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  node.open(1, alice_nat);
  node.open(2, bob_nat);
  Bytes alice_login = login_request("alice", "correct horse");
  Bytes bob_login = login_request("bob", "battery staple");
  node.deliver(1, alice_login);
  node.deliver(2, bob_login);
  node.turn();
  REQUIRE(node.pending_jobs().size() == 2);
  CHECK(node.received(1).empty());
  uint64_t commits_before = node.core().counters().commits;

  // The password checks finish: both logins write their records into one
  // transaction, and nothing goes out until that transaction commits.
  node.finish_jobs();
  node.collect();
  CHECK(node.received(1).empty());
  CHECK(node.received(2).empty());
  CHECK(node.core().has_work());

  node.core().commit_turn();
  node.collect();
  CHECK(node.core().counters().commits == commits_before + 1);  // one commit for both
  CHECK(node.reply(1).is_success());
  CHECK(node.reply(2).is_success());
}

TEST_CASE("a query-role login needs no durable write and is answered at once") {
  Node node;
  node.add_account("alice", "correct horse");
  node.open(1, alice_nat);
  node.deliver(1, login_request("alice", "correct horse", {}, sig::link_role::query));
  node.turn();
  node.finish_jobs();
  node.collect();
  Reply r = node.reply(1);
  CHECK(r.is_success());
  CHECK(r.address(proto::attr::xor_mapped_address) == alice_nat);
  CHECK(node.core().presence().find("alice") == nullptr);
}

TEST_CASE("a wrong password and an unknown user both get 401 with the same text") {
  Node node;
  node.add_account("alice", "correct horse");
  Reply wrong = node.login(1, alice_nat, "alice", "wrong horse");
  Reply unknown = node.login(2, bob_nat, "nobody", "correct horse");
  CHECK(wrong.is_error());
  CHECK(wrong.code() == 401);
  CHECK(unknown.code() == 401);
  CHECK(wrong.reason() == unknown.reason());
  CHECK(wrong.bytes->size() == unknown.bytes->size());
  CHECK(node.core().presence().size() == 0);
  CHECK(node.core().counters().failed_logins == 2);
}

TEST_CASE("an unknown user is checked against a dummy hash so the password job is the same") {
  Node node;
  node.add_account("alice", "correct horse");
  node.open(1, alice_nat);
  node.deliver(1, login_request("nobody", "correct horse"));
  node.turn();
  REQUIRE(node.pending_jobs().size() == 1);
  const PasswordJob& job = node.pending_jobs().front();
  CHECK(job.kind == PasswordJob::Kind::verify);
  // Shaped like a migrated account's credentials: the same PBKDF2 cost.
  CHECK(job.stored_hash.rfind("$scram-sha256$i=4096$", 0) == 0);
  // Even a password that matches the dummy hash would not log in (nor create) an unknown user.
  PasswordJobResult forged{job.id, true, security::scram::stored_credentials("correct horse", 4096)};
  node.core().password_job_done(forged, node.now());
  node.pending_jobs().clear();
  node.turn();
  CHECK(node.reply(1).code() == 401);
  auto txn = node.store().begin_read();
  CHECK_FALSE(node.store().find(*txn, "nobody")->has_value());
}

TEST_CASE("login refuses an invalid user ID with 422 and a missing password with 400") {
  Node node;
  node.open(1, alice_nat);
  node.send(1, login_request("Alice", "correct horse"));
  CHECK(node.reply(1).code() == 422);
  node.send(1, request(sig::method::login, [](proto::MessageBuilder& b) { b.add_string(sig::attr::user_id, "alice"); }));
  CHECK(node.reply(1).code() == 400);
  node.send(1, login_request("alice", std::string(257, 'p')));
  CHECK(node.reply(1).code() == 400);
  node.send(1, login_request("alice", "correct horse", {}, 7));  // unknown LINK-ROLE
  CHECK(node.reply(1).code() == 400);
  node.send(1, login_request("alice", "correct horse",
                             std::vector<SocketAddress>(9, alice_home)));  // too many REPORTED-ADDRESS
  CHECK(node.reply(1).code() == 400);
}

TEST_CASE("a second login on a link while the first is being checked gets 400") {
  Node node;
  node.add_account("alice", "correct horse");
  node.open(1, alice_nat);
  node.deliver(1, login_request("alice", "correct horse"));
  node.deliver(1, login_request("alice", "correct horse"));
  node.settle();
  auto replies = node.received(1);
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].code() == 400);
  CHECK(replies[1].is_success());
}

TEST_CASE("repeated failed logins get 429 with RETRY-AFTER and no password check") {
  Node node;
  node.add_account("alice", "correct horse");
  node.open(1, alice_nat);
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    node.send(1, login_request("alice", "wrong horse"));
    CHECK(node.reply(1).code() == 401);
  }
  node.deliver(1, login_request("alice", "correct horse"));
  node.turn();
  CHECK(node.pending_jobs().empty());  // refused before any password work
  Reply limited = node.reply(1);
  CHECK(limited.is_error());
  CHECK(limited.code() == 429);
  CHECK(limited.u32(sig::attr::retry_after) == 60);
  CHECK(node.core().counters().rate_limited == 1);
  CHECK(node.core().counters().logins_limited == 1);
  CHECK(node.core().counters().failed_logins == 5);

  // After RETRY-AFTER has passed the right password works again.
  node.advance_ms(60'000);
  node.send(1, login_request("alice", "correct horse"));
  CHECK(node.reply(1).is_success());
}

TEST_CASE("failed logins from one source across many IDs get 429") {
  Node node;
  node.open(1, alice_nat);
  for (int i = 0; i < 20; ++i) {
    node.send(1, login_request("guess" + std::to_string(i), "password1"));
    CHECK(node.reply(1).code() == 401);
  }
  node.send(1, login_request("guess-next", "password1"));
  Reply limited = node.reply(1);
  CHECK(limited.code() == 429);
  CHECK(limited.u32(sig::attr::retry_after) == 6);
}

TEST_CASE("parallel login attempts on many links of one source stay within the per-source burst") {
  // Each attempt is charged when it begins, so attempts whose password check
  // is still running count too.
  Node node;
  const int links = 40;
  for (int i = 0; i < links; ++i) node.open(100 + i, alice_nat);
  for (int i = 0; i < links; ++i)
    node.deliver(100 + i, login_request("victim" + std::to_string(i % 2), "guess" + std::to_string(i)));
  node.turn();
  CHECK(node.pending_jobs().size() <= 20);
}

TEST_CASE("a successful login resets the ID's failure count") {
  Node node;
  node.add_account("alice", "correct horse");
  node.open(1, alice_nat);
  for (int i = 0; i < 4; ++i) {
    node.send(1, login_request("alice", "wrong horse"));
    CHECK(node.reply(1).code() == 401);
  }
  node.send(1, login_request("alice", "correct horse"));
  CHECK(node.reply(1).is_success());
  for (int i = 0; i < 5; ++i) {
    node.send(1, login_request("alice", "wrong horse"));
    CHECK(node.reply(1).code() == 401);
  }
}

// Issue 11 §5: five wrong passwords from anywhere used to lock the owner out.
TEST_CASE("a wrong-password flood from other sources does not lock out the owner") {
  Node node;
  node.add_account("alice", "correct horse");
  for (LinkId link = 1; link <= 3; ++link) {
    node.open(link, SocketAddress::v4({203, 0, 113, static_cast<uint8_t>(link)}, 4000));
    for (int i = 0; i < 6; ++i) node.send(link, login_request("alice", "wrong horse"));
    auto replies = node.received(link);
    REQUIRE(replies.size() == 6);
    CHECK(replies.back().code() == 429);  // each flooding source is held back
  }
  node.open(9, alice_nat);
  node.send(9, login_request("alice", "correct horse"));
  CHECK(node.reply(9).is_success());
}

TEST_CASE("register is limited per source with 429 and RETRY-AFTER") {
  NodeSettings settings = test_settings();
  settings.open_registration = true;
  settings.login_limits.register_burst = 2;
  Node node(settings);
  node.open(1, alice_nat);
  for (int i = 0; i < 2; ++i) {
    node.send(1, register_request("user" + std::to_string(i), "password-123"));
    CHECK(node.reply(1).is_success());
  }
  node.deliver(1, register_request("user9", "password-123"));
  node.turn();
  CHECK(node.pending_jobs().empty());  // refused before any hashing
  Reply limited = node.reply(1);
  CHECK(limited.code() == 429);
  CHECK(limited.u32(sig::attr::retry_after) == 60);
  CHECK(node.core().counters().registrations_rate_limited == 1);
  node.open(2, carol_nat);  // another source is not affected
  node.send(2, register_request("user9", "password-123"));
  CHECK(node.reply(2).is_success());
}

TEST_CASE("password work in flight is capped node-wide: 503 beyond the cap, room again once done") {
  NodeSettings settings = test_settings();
  settings.open_registration = true;
  settings.max_password_jobs = 3;
  settings.login_limits.register_burst = 100;
  Node node(settings);
  node.add_account("alice", "correct horse");
  for (LinkId link = 1; link <= 5; ++link) {
    node.open(link, SocketAddress::v4({203, 0, 113, static_cast<uint8_t>(link)}, 4000));
    node.deliver(link, register_request("new" + std::to_string(link), "password-123"));
  }
  node.turn();
  CHECK(node.pending_jobs().size() == 3);
  CHECK(node.reply(4).code() == 503);
  CHECK(node.reply(5).code() == 503);
  node.open(9, alice_nat);
  node.deliver(9, login_request("alice", "correct horse"));  // logins share the cap
  node.turn();
  CHECK(node.reply(9).code() == 503);
  CHECK(node.core().counters().password_jobs_refused == 3);
  node.settle();
  node.send(9, login_request("alice", "correct horse"));
  CHECK(node.reply(9).is_success());
}

TEST_CASE("a second presence login displaces the first link with a notice and a close") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse", {alice_home}).is_success());
  Reply second = node.login(2, alice_laptop_nat, "alice", "correct horse");
  CHECK(second.is_success());

  auto to_first = node.received(1);
  REQUIRE(to_first.size() == 1);
  CHECK(is_notice(to_first[0]));
  CHECK(to_first[0].text(sig::attr::notice_reason) == "logged in elsewhere");
  CHECK(notice_code(to_first[0]) == sig::notice_code::displaced);
  CHECK(node.closes(1).size() == 1);

  const PresenceRow* row = node.core().presence().find("alice");
  REQUIRE(row != nullptr);
  CHECK(row->link == 2);
  CHECK(row->observed == alice_laptop_nat);
  CHECK(row->reported.empty());

  // The displaced link is no longer logged in.
  node.send(1, request(sig::method::keepalive));
  CHECK(node.reply(1).code() == 401);
  // Its going away does not end the new presence.
  node.close(1);
  CHECK(node.core().presence().find("alice") != nullptr);
}

TEST_CASE("logging in again on a link as another user ends the first user's presence") {
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  node.send(1, login_request("bob", "battery staple"));
  CHECK(node.reply(1).is_success());
  CHECK(node.core().presence().find("alice") == nullptr);
  REQUIRE(node.core().presence().find("bob") != nullptr);
  CHECK(node.core().presence().find("bob")->link == 1);
}

TEST_CASE("logging in again on a presence link as a query link ends that presence at once") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  REQUIRE(node.core().presence().find("alice") != nullptr);
  node.send(1, login_request("alice", "correct horse", {}, sig::link_role::query));
  CHECK(node.reply(1).is_success());
  // Not left behind, unrefreshed, until it expired.
  CHECK(node.core().presence().find("alice") == nullptr);
  // The link still works as a query link.
  node.send(1, request(sig::method::keepalive));
  CHECK(node.reply(1).is_success());
}

// --- keepalive and expiry ---------------------------------------------------

TEST_CASE("keepalive before login gets 401") {
  Node node;
  node.open(1, alice_nat);
  node.send(1, request(sig::method::keepalive));
  CHECK(node.reply(1).code() == 401);
}

TEST_CASE("keepalives refresh presence and missed keepalives expire it at tick") {
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple", {}, sig::link_role::query).is_success());
  const uint64_t grace_ms = 15 * 3 * 1000;
  CHECK(node.core().next_deadline() <= node.now().mono_ms + grace_ms);

  node.advance_ms(30'000);
  node.send(1, request(sig::method::keepalive));
  Reply ok = node.reply(1);
  CHECK(ok.is_success());
  CHECK(ok.m.method == sig::method::keepalive);
  // The keepalive moves no deadline entry: the node wakes at the login's
  // deadline (15 s from now), finds the presence kept alive and moves it then.
  CHECK(node.core().next_deadline() <= node.now().mono_ms + grace_ms);

  // 30 s after the last keepalive (60 s after login, past the login's
  // deadline): still online.
  node.advance_ms(30'000);
  node.tick();
  CHECK(node.quiet());
  CHECK(node.core().presence().find("alice") != nullptr);

  // 45 s after the last keepalive: presence ends, the link gets a notice and is closed.
  node.advance_ms(15'000);
  const uint64_t expired_at = node.now().unix_s;
  node.tick();
  auto to_alice = node.received(1);
  REQUIRE(to_alice.size() == 1);
  CHECK(is_notice(to_alice[0]));
  CHECK(notice_code(to_alice[0]) == sig::notice_code::presence_expired);
  CHECK(node.closes(1).size() == 1);
  CHECK(node.core().presence().find("alice") == nullptr);

  // Alice is offline now, last seen when her presence expired.
  node.advance_ms(5'000);
  node.send(2, lookup_request("alice"));
  Reply offline = node.reply(2);
  CHECK(offline.code() == 480);
  CHECK(offline.u64(sig::attr::last_seen) == expired_at);

  // The expired link is told to log in again if it keeps talking.
  node.send(1, request(sig::method::keepalive));
  CHECK(node.reply(1).code() == 401);
}

TEST_CASE("a link that never logs in is closed at its login deadline") {
  Node node;
  node.open(1, alice_nat);
  CHECK(node.core().next_deadline() == node.now().mono_ms + 20'000);
  node.advance_ms(19'999);
  node.tick();
  CHECK(node.closes(1).empty());
  node.advance_ms(1);
  node.tick();
  auto reasons = node.closes(1);
  REQUIRE(reasons.size() == 1);
  CHECK(reasons[0] == "no login in time");
  CHECK(node.quiet());
  node.close(1);
  CHECK(node.core().link_count() == 0);
  CHECK_FALSE(node.core().next_deadline().has_value());
}

TEST_CASE("a link that logs in in time is not closed at the login deadline") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse", {}, sig::link_role::query).is_success());
  CHECK(node.core().next_deadline() == node.now().mono_ms + 120'000);  // the idle check, not the login deadline
  node.advance_ms(60'000);
  node.tick();
  CHECK(node.quiet());
}

TEST_CASE("a link closed before its deadline leaves no deadline behind") {
  Node node;
  node.open(1, alice_nat);
  node.close(1);
  CHECK_FALSE(node.core().next_deadline().has_value());
  node.advance_ms(60'000);
  node.tick();
  CHECK(node.quiet());
}

// Issue 11 §5: query links never expired; links were limited by nothing but descriptors.
TEST_CASE("a query link with no request for the idle timeout is closed with a notice") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse", {}, sig::link_role::query).is_success());
  node.advance_ms(100'000);
  node.send(1, lookup_request("alice"));  // a request restarts the idle time
  node.received(1);
  node.advance_ms(100'000);
  node.tick();
  CHECK(node.closes(1).empty());
  node.advance_ms(20'000);
  node.tick();
  auto told = node.received(1);
  REQUIRE(told.size() == 1);
  CHECK(is_notice(told[0]));
  CHECK(notice_code(told[0]) == sig::notice_code::idle);
  CHECK(node.closes(1) == std::vector<std::string>{"idle timeout"});
  CHECK(node.core().counters().idle_links_closed == 1);
}

TEST_CASE("a presence link kept by keepalives is not closed by the idle timeout") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  for (int i = 0; i < 20; ++i) {
    node.advance_ms(15'000);
    node.send(1, request(sig::method::keepalive));
    REQUIRE(node.reply(1).is_success());
    node.tick();
  }
  CHECK(node.closes(1).empty());
  CHECK(node.core().counters().idle_links_closed == 0);
}

// The reason of the one notice a refused link got before its one close, and
// that notice's code.
std::string refusal(Node& node, LinkId link, uint32_t code) {
  auto told = node.received(link);
  REQUIRE(told.size() == 1);
  REQUIRE(is_notice(told[0]));
  CHECK(notice_code(told[0]) == code);
  CHECK(node.closes(link).size() == 1);
  return told[0].text(sig::attr::notice_reason).value_or("");
}

TEST_CASE("links from one source that have not logged in are capped; logging in frees a place") {
  NodeSettings settings = test_settings();
  settings.max_prelogin_links_per_source = 3;
  Node node(settings);
  node.add_account("alice", "correct horse");
  for (LinkId link = 1; link <= 3; ++link) node.open(link, alice_nat);
  CHECK(node.quiet());
  node.open(4, alice_nat);
  CHECK(refusal(node, 4, sig::notice_code::too_many_from_source) == "too many links from your address that have not logged in");
  node.send(4, login_request("alice", "correct horse"));  // a refused link is not served
  CHECK(node.received(4).empty());
  CHECK(node.core().counters().links_refused_per_source == 1);
  node.open(5, carol_nat);  // another source is not affected
  CHECK(node.quiet());
  node.send(1, login_request("alice", "correct horse"));
  REQUIRE(node.reply(1).is_success());
  node.open(6, alice_nat);
  CHECK(node.quiet());
}

TEST_CASE("the node-wide link cap refuses a link with a clear notice") {
  NodeSettings settings = test_settings();
  settings.max_links = 2;
  Node node(settings);
  node.open(1, alice_nat);
  node.open(2, carol_nat);
  node.open(3, bob_nat);
  CHECK(refusal(node, 3, sig::notice_code::node_full) == "node full: too many links, try again later");
  CHECK(node.core().counters().links_refused_node_full == 1);
  node.close(3);
  node.close(1);
  node.open(4, bob_nat);
  CHECK(node.quiet());
}

TEST_CASE("one account may hold at most max_links_per_account links") {
  NodeSettings settings = test_settings();
  settings.max_links_per_account = 2;
  Node node(settings);
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  REQUIRE(node.login(2, alice_nat, "alice", "correct horse", {}, sig::link_role::query).is_success());
  Reply refused = node.login(3, alice_nat, "alice", "correct horse", {}, sig::link_role::query);
  CHECK(refused.code() == 503);
  CHECK(refused.reason().find("already has 2 links open") != std::string::npos);
  CHECK(node.core().counters().logins_refused_per_account == 1);
  node.send(3, lookup_request("alice"));
  CHECK(node.reply(3).code() == 401);  // not logged in
  node.close(2);
  node.send(3, login_request("alice", "correct horse", {}, sig::link_role::query));
  CHECK(node.reply(3).is_success());
}

TEST_CASE("the per-account link count follows logins again, another user on a link, a displacement, logout and close") {
  NodeSettings settings = test_settings();
  settings.max_links_per_account = 2;
  Node node(settings);
  node.add_account("alice", "correct horse");
  node.add_account("bob", "correct horse");
  auto query = [&](LinkId link, const std::string& user) {
    node.send(link, login_request(user, "correct horse", {}, sig::link_role::query));
    return node.reply(link);
  };
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse", {}, sig::link_role::query).is_success());
  // Logging in again on the same link is still one link.
  for (int i = 0; i < 3; ++i) REQUIRE(query(1, "alice").is_success());
  REQUIRE(node.login(2, alice_nat, "alice", "correct horse", {}, sig::link_role::query).is_success());
  node.open(3, alice_nat);
  CHECK(query(3, "alice").code() == 503);
  // Link 2 becomes bob's: alice holds one link, so link 3 may be hers.
  REQUIRE(query(2, "bob").is_success());
  REQUIRE(query(3, "alice").is_success());
  node.open(4, alice_nat);
  CHECK(query(4, "alice").code() == 503);
  // A logout ends what link 1 was logged in as.
  node.send(1, request(sig::method::logout));
  REQUIRE(node.reply(1).is_success());
  REQUIRE(query(4, "alice").is_success());
  // A presence login displaced by another: the displaced link no longer counts.
  node.close(3);
  node.close(4);
  REQUIRE(node.login(5, alice_nat, "alice", "correct horse").is_success());
  REQUIRE(node.login(6, alice_laptop_nat, "alice", "correct horse").is_success());  // displaces link 5
  REQUIRE(node.login(7, alice_nat, "alice", "correct horse", {}, sig::link_role::query).is_success());
  node.open(8, alice_nat);
  CHECK(query(8, "alice").code() == 503);
  // Closed links free their place.
  node.close(7);
  CHECK(query(8, "alice").is_success());
  CHECK(node.core().counters().logins_refused_per_account == 3);
}

// --- logout -----------------------------------------------------------------

TEST_CASE("logout on the presence link ends the presence and leaves the link open") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  node.send(1, request(sig::method::logout));
  Reply r = node.reply(1);
  CHECK(r.is_success());
  CHECK(r.m.method == sig::method::logout);
  CHECK(node.closes(1).empty());
  CHECK(node.core().presence().find("alice") == nullptr);
  node.send(1, lookup_request("alice"));
  CHECK(node.reply(1).code() == 401);  // no longer logged in
}

TEST_CASE("logout from a query link closes the presence link with a notice") {
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  REQUIRE(node.login(2, alice_laptop_nat, "alice", "correct horse", {}, sig::link_role::query).is_success());
  CHECK(node.received(1).empty());  // a query login does not displace
  node.send(2, request(sig::method::logout));
  CHECK(node.reply(2).is_success());

  auto to_presence = node.received(1);
  REQUIRE(to_presence.size() == 1);
  CHECK(is_notice(to_presence[0]));
  CHECK(to_presence[0].text(sig::attr::notice_reason) == "logged out");
  CHECK(notice_code(to_presence[0]) == sig::notice_code::logged_out);
  CHECK(node.closes(1).size() == 1);
  CHECK(node.core().presence().find("alice") == nullptr);

  REQUIRE(node.login(3, bob_nat, "bob", "battery staple").is_success());
  node.send(3, lookup_request("alice"));
  CHECK(node.reply(3).code() == 480);
}

TEST_CASE("a node shutting down sends each terminal link a notice with the shutting_down code") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  node.open(2, carol_nat);
  node.core().announce_shutdown();
  node.turn();
  for (LinkId link : {LinkId{1}, LinkId{2}}) {
    auto told = node.received(link);
    REQUIRE(told.size() == 1);
    CHECK(is_notice(told[0]));
    CHECK(notice_code(told[0]) == sig::notice_code::shutting_down);
  }
}

TEST_CASE("logout on a link that is not logged in succeeds and does nothing") {
  // docs/protocol.md section 5, logout: "Logout is idempotent: on a link that
  // is not logged in it succeeds and does nothing." The core answers 401.
  Node node;
  node.open(1, alice_nat);
  node.send(1, request(sig::method::logout));
  Reply r = node.reply(1);
  CHECK(r.is_success());
}

// --- lookup -----------------------------------------------------------------

TEST_CASE("lookup before login gets 401") {
  Node node;
  node.add_account("alice", "correct horse");
  node.open(1, bob_nat);
  node.send(1, lookup_request("alice"));
  Reply r = node.reply(1);
  CHECK(r.code() == 401);
  CHECK(r.m.method == sig::method::lookup);
}

// What `profile set presence=... addresses=...` stores.
void set_privacy(Node& node, const std::string& user, uint32_t visibility, bool addresses_shown) {
  auto txn = node.store().begin_write();
  REQUIRE(txn.has_value());
  Account account = node.store().find(*txn, user)->value();
  account.presence_visibility = visibility;
  account.addresses_shown = addresses_shown;
  REQUIRE(node.store().update(*txn, account).has_value());
  REQUIRE(txn->commit().has_value());
}

// Before issue 11 every lookup carried the reported addresses; now only of a
// user who chose addresses=yes.
TEST_CASE("lookup of an online user who shows addresses gives presence flags and reported and observed addresses") {
  Node node;
  node.add_account("alice", "correct horse", "Alice");
  node.add_account("bob", "battery staple");
  set_privacy(node, "alice", sig::presence_visibility::anyone, true);
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse", {alice_home, alice_v6}).is_success());
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple").is_success());
  node.send(2, lookup_request("alice"));
  Reply r = node.reply(2);
  CHECK(r.is_success());
  CHECK(r.m.method == sig::method::lookup);
  CHECK(r.text(sig::attr::user_id) == "alice");
  CHECK(r.text(sig::attr::display_name) == "Alice");
  CHECK(r.u32(sig::attr::presence) == sig::presence_flag::online);
  CHECK(r.addresses(sig::attr::reported_address) == std::vector<SocketAddress>{alice_home, alice_v6});
  CHECK(r.address(sig::attr::observed_address) == alice_nat);
  CHECK(r.u64(sig::attr::last_seen) == node.now().unix_s);
  CHECK(node.core().counters().lookups == 1);
}

TEST_CASE("lookup of an offline user gets 480 with LAST-SEEN after they were online") {
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple").is_success());
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  node.advance_ms(10'000);
  const uint64_t left_at = node.now().unix_s;
  node.close(1);  // alice's link drops
  node.advance_ms(10'000);
  node.send(2, lookup_request("alice"));
  Reply r = node.reply(2);
  CHECK(r.is_error());
  CHECK(r.code() == 480);
  CHECK(r.u64(sig::attr::last_seen) == left_at);
  CHECK_FALSE(r.has(sig::attr::observed_address));
}

TEST_CASE("lookup of an offline user falls back to the durable last login after a restart") {
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  const uint64_t logged_in_at = node.now().unix_s;
  node.advance_ms(5'000);
  // A second core on the same store: what the node knows after a restart.
  NodeCore restarted(node.store(), test_settings());
  Now later{node.now().mono_ms, node.now().unix_s};
  restarted.link_opened(9, bob_nat, later);
  Bytes login = login_request("bob", "battery staple");
  restarted.message(9, login, later);
  restarted.commit_turn();
  for (const auto& job : restarted.take_password_jobs()) restarted.password_job_done(run_job(job), later);
  restarted.commit_turn();
  REQUIRE(restarted.take_actions().size() == 1);
  Bytes lookup = lookup_request("alice");
  restarted.message(9, lookup, later);
  restarted.commit_turn();
  auto actions = restarted.take_actions();
  REQUIRE(actions.size() == 1);
  Reply r = parse(actions[0].message);
  CHECK(r.code() == 480);
  CHECK(r.u64(sig::attr::last_seen) == logged_in_at);
}

TEST_CASE("lookup of a user who was never online gets 480") {
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple").is_success());
  node.send(2, lookup_request("alice"));
  Reply r = node.reply(2);
  CHECK(r.code() == 480);
}

TEST_CASE("a 480 for a user never seen carries LAST-SEEN 0") {
  // docs/protocol.md: 480 "with LAST-SEEN"; LAST-SEEN "0 when never seen".
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple").is_success());
  node.send(2, lookup_request("alice"));
  CHECK(node.reply(2).u64(sig::attr::last_seen) == uint64_t{0});
}

TEST_CASE("lookup success carries DISPLAY-NAME even when the user set none") {
  // docs/protocol.md, lookup: "DISPLAY-NAME: empty value when the user set none."
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple").is_success());
  node.send(2, lookup_request("alice"));
  CHECK(node.reply(2).text(sig::attr::display_name) == std::string());
}

TEST_CASE("lookup of an unknown user gets 404 and of a malformed ID 422") {
  Node node;
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple").is_success());
  node.send(2, lookup_request("nobody"));
  CHECK(node.reply(2).code() == 404);
  CHECK(node.core().counters().direct_lookups[static_cast<size_t>(LookupResult::not_found)] == 1);
  node.send(2, lookup_request("No Body"));
  CHECK(node.reply(2).code() == 422);
  node.send(2, request(sig::method::lookup));
  CHECK(node.reply(2).code() == 400);
}

TEST_CASE("lookup of an offline user with a static address gets it with the static flag") {
  Node node;
  const SocketAddress fixed = SocketAddress::v4({203, 0, 113, 80}, 5060);
  node.add_account("doorphone", "correct horse", "Front door", fixed);
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple").is_success());
  node.send(2, lookup_request("doorphone"));
  Reply r = node.reply(2);
  CHECK(r.is_success());
  CHECK(r.u32(sig::attr::presence) == sig::presence_flag::static_address);
  CHECK(r.address(sig::attr::static_address) == fixed);
  CHECK_FALSE(r.has(sig::attr::observed_address));
  CHECK(r.text(sig::attr::display_name) == "Front door");
}

TEST_CASE("lookup of an online user with a static address also carries STATIC-ADDRESS") {
  // docs/protocol.md, lookup: "STATIC-ADDRESS: present when an administrator
  // entered a permanent address for the user."
  Node node;
  const SocketAddress fixed = SocketAddress::v4({203, 0, 113, 80}, 5060);
  node.add_account("doorphone", "correct horse", "Front door", fixed);
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(1, alice_nat, "doorphone", "correct horse").is_success());
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple").is_success());
  node.send(2, lookup_request("doorphone"));
  Reply r = node.reply(2);
  CHECK(r.is_success());
  CHECK(r.address(sig::attr::static_address) == fixed);
}

// --- versioning and malformed input ------------------------------------------

TEST_CASE("a request with protocol version 2 gets 426 carrying the node's version") {
  Node node;
  node.open(1, alice_nat);
  node.send(1, request(sig::method::lookup, [](proto::MessageBuilder& b) { b.add_string(sig::attr::user_id, "a"); },
                       2));
  Reply r = node.reply(1);
  CHECK(r.is_error());
  CHECK(r.m.method == sig::method::lookup);
  CHECK(r.code() == 426);
  CHECK(r.u32(sig::attr::protocol_version) == 1);
}

TEST_CASE("a request without PROTOCOL-VERSION gets an error and no work is done") {
  Node node;
  node.add_account("alice", "correct horse");
  node.open(1, alice_nat);
  node.deliver(1, request(sig::method::login, [](proto::MessageBuilder& b) {
    b.add_string(sig::attr::user_id, "alice");
    b.add_string(sig::attr::password, "correct horse");
  }, std::nullopt));
  node.turn();
  CHECK(node.pending_jobs().empty());
  Reply r = node.reply(1);
  CHECK(r.is_error());
  CHECK((r.code() == 400 || r.code() == 426));
  CHECK(r.u32(sig::attr::protocol_version) == 1);
}

TEST_CASE("a request without PROTOCOL-VERSION gets 400 as docs/protocol.md says") {
  // docs/protocol.md section 4: "A request without PROTOCOL-VERSION is answered
  // 400 Bad Request"; the core answers 426 for a missing version as well.
  Node node;
  node.open(1, alice_nat);
  node.send(1, request(sig::method::keepalive, {}, std::nullopt));
  CHECK(node.reply(1).code() == 400);
}

TEST_CASE("an unknown method gets 400") {
  Node node;
  node.open(1, alice_nat);
  node.send(1, request(0x8FF));
  Reply r = node.reply(1);
  CHECK(r.code() == 400);
  CHECK(r.m.method == 0x8FF);
}

TEST_CASE("a malformed request gets 400 and the link is closed after max_bad_messages") {
  Node node;
  node.open(1, alice_nat);
  // A login request whose only attribute claims 16 bytes but has 4.
  Bytes bad = request(sig::method::login, {}, std::nullopt);
  const size_t header = proto::header_size;
  bad.resize(header);
  store_be16(bad.data() + 2, 8);
  for (uint8_t b : {0xC0, 0x02, 0x00, 0x10, 0x61, 0x62, 0x63, 0x64}) bad.push_back(std::byte(b));
  REQUIRE_FALSE(proto::decode(bad).has_value());

  for (uint32_t i = 1; i < 8; ++i) {
    CAPTURE(i);
    node.send(1, bad);
    Reply r = node.reply(1);
    CHECK(r.code() == 400);
    CHECK(r.m.method == sig::method::login);
    CHECK(std::equal(r.m.transaction_id.bytes.begin(), r.m.transaction_id.bytes.end(), bad.begin() + 8));
    CHECK(node.closes(1).empty());
  }
  node.send(1, bad);
  CHECK(node.reply(1).code() == 400);
  auto reasons = node.closes(1);
  REQUIRE(reasons.size() == 1);
  CHECK(reasons[0] == "too many malformed messages");
  CHECK(node.core().counters().bad_messages == 8);
}

TEST_CASE("a malformed indication or response is dropped without an answer but still counted") {
  Node node;
  node.open(1, alice_nat);
  proto::MessageBuilder b(proto::MessageClass::indication, sig::method::notice, fresh_id());
  Bytes bad = b.finish(true);
  bad.back() ^= std::byte{0xFF};  // a wrong FINGERPRINT
  node.send(1, bad);
  CHECK(node.quiet());
  CHECK(node.core().counters().bad_messages == 1);
  // Well-formed responses from a terminal are ignored.
  node.send(1, proto::MessageBuilder(proto::MessageClass::success, sig::method::lookup, fresh_id()).finish());
  CHECK(node.quiet());
}

// --- links going away ----------------------------------------------------------

TEST_CASE("a link that closes while its login password job runs gets nothing and nothing breaks") {
  Node node;
  node.add_account("alice", "correct horse");
  node.open(1, alice_nat);
  node.deliver(1, login_request("alice", "correct horse"));
  node.turn();
  REQUIRE(node.pending_jobs().size() == 1);
  node.close(1);
  node.finish_jobs();
  node.turn();
  CHECK(node.quiet());
  CHECK(node.core().presence().size() == 0);
  CHECK(node.core().link_count() == 0);
  CHECK(node.core().counters().logins == 0);
  CHECK_FALSE(node.core().has_work());
}

TEST_CASE("a link that closes while its register password job runs creates no account") {
  NodeSettings settings = test_settings();
  settings.open_registration = true;
  Node node(settings);
  node.open(1, alice_nat);
  node.deliver(1, register_request("alice", "correct horse"));
  node.turn();
  REQUIRE(node.pending_jobs().size() == 1);
  node.close(1);
  node.finish_jobs();
  node.turn();
  CHECK(node.quiet());
  auto txn = node.store().begin_read();
  CHECK_FALSE(node.store().find(*txn, "alice")->has_value());
}

TEST_CASE("a link that closes after its login is checked but before the commit gets nothing") {
  Node node;
  node.add_account("alice", "correct horse");
  node.open(1, alice_nat);
  node.deliver(1, login_request("alice", "correct horse"));
  node.turn();
  node.finish_jobs();
  node.core().link_closed(1, node.now());
  node.turn();
  CHECK(node.quiet());
  CHECK(node.core().presence().size() == 0);
  CHECK_FALSE(node.core().has_work());
}

TEST_CASE("a closed presence link ends the presence and messages for unknown links are ignored") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  node.close(1);
  CHECK(node.core().presence().size() == 0);
  node.send(1, request(sig::method::keepalive));
  node.send(77, request(sig::method::keepalive));
  CHECK(node.quiet());
  node.close(77);  // closing an unknown link is harmless
  CHECK(node.core().link_count() == 0);
}

// ---- LAN agent links: hello, forwarded lookups, timeouts, agent loss ----

namespace {

void enroll(Node& node, const std::string& name, std::vector<std::string> domains,
            std::vector<std::string> prefixes = {}) {
  auto registry = AgentRegistry::open(node.store().environment());
  REQUIRE(registry.has_value());
  auto txn = node.store().begin_write();
  REQUIRE(txn.has_value());
  auto conflict = registry->enroll(*txn, AgentEnrollment{name, std::move(domains), std::move(prefixes), 1});
  REQUIRE(conflict.has_value());
  REQUIRE_FALSE(conflict->has_value());
  REQUIRE(txn->commit().has_value());
}

Bytes hello_request(std::vector<std::string> domains, std::vector<std::string> prefixes = {}) {
  return request(sig::method::agent_hello, [&](proto::MessageBuilder& b) {
    for (const auto& d : domains) b.add_string(sig::attr::domain, d);
    for (const auto& p : prefixes) b.add_string(sig::attr::number_prefix, p);
  });
}

const SocketAddress agent_addr = SocketAddress::v4({203, 0, 113, 1}, 55000);
const SocketAddress lease_v4 = SocketAddress::v4({10, 99, 0, 57}, 0);

// An agent link that has said hello for `domains`.
void connect_agent(Node& node, LinkId link, const std::string& name, std::vector<std::string> domains,
                   std::vector<std::string> prefixes = {}) {
  node.open(link, agent_addr);
  node.core().agent_link_ready(link, name, node.now());
  node.send(link, hello_request(std::move(domains), std::move(prefixes)));
  Reply hello = node.reply(link);
  REQUIRE(hello.is_success());
  CHECK(hello.text(sig::attr::agent_name) == name);
}

// alice logged in on link 1 (query role is enough for lookups).
void alice_online(Node& node) {
  node.add_account("alice", "correct horse");
  node.open(1, alice_nat);
  node.send(1, login_request("alice", "correct horse", {}, sig::link_role::query));
  REQUIRE(node.reply(1).is_success());
}

}  // namespace

TEST_CASE("an agent may claim only the domains enrolled for its certificate name") {
  Node node;
  enroll(node, "acme", {"acme"});
  node.open(10, agent_addr);
  node.core().agent_link_ready(10, "acme", node.now());
  node.send(10, hello_request({"acme", "globex"}));
  Reply refused = node.reply(10);
  CHECK(refused.code() == 403);
  CHECK(refused.reason().find("globex") != std::string::npos);
  node.send(10, hello_request({"acme"}));
  CHECK(node.reply(10).is_success());
}

TEST_CASE("a second agent link claiming a held domain gets 409") {
  Node node;
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  node.open(11, agent_addr);
  node.core().agent_link_ready(11, "acme", node.now());
  node.send(11, hello_request({"acme"}));
  CHECK(node.reply(11).code() == 409);
}

TEST_CASE("a lookup of ID@domain is forwarded to the agent and its answer reaches the caller") {
  Node node;
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  alice_online(node);
  node.send(1, lookup_request("4106@acme"));
  CHECK(node.received(1).empty());
  Reply forwarded = node.reply(10);
  REQUIRE(forwarded.m.method == sig::method::forwarded_lookup);
  CHECK(forwarded.text(sig::attr::user_id) == "4106@acme");
  CHECK(forwarded.text(sig::attr::caller_id) == "alice");

  proto::MessageBuilder answer(proto::MessageClass::success, sig::method::forwarded_lookup,
                               forwarded.m.transaction_id);
  answer.add_u32(sig::attr::protocol_version, 1);
  answer.add_string(sig::attr::user_id, "4106@acme");
  answer.add_xor_address(sig::attr::lease_address, lease_v4);
  answer.add_u64(sig::attr::lease_expires, 1'900'000'000);
  answer.add_string(sig::attr::agent_name, "acme");
  node.send(10, answer.finish());
  Reply found = node.reply(1);
  REQUIRE(found.is_success());
  CHECK(found.addresses(sig::attr::lease_address) == std::vector<SocketAddress>{lease_v4});
  CHECK(found.u64(sig::attr::lease_expires) == 1'900'000'000u);
  CHECK(found.text(sig::attr::agent_name) == "acme");
  CHECK((*found.u32(sig::attr::presence) & sig::presence_flag::online) != 0);
  CHECK(node.core().counters().forwarded_lookup_results[static_cast<size_t>(LookupResult::found)] == 1);
  CHECK(node.core().counters().direct_lookups == std::array<uint64_t, lookup_result_count>{});
}

TEST_CASE("the agent's refusals reach the caller with their own code") {
  Node node;
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  alice_online(node);
  for (uint16_t code : {uint16_t{404}, uint16_t{481}, uint16_t{403}}) {
    node.send(1, lookup_request("4106@acme"));
    Reply forwarded = node.reply(10);
    proto::MessageBuilder answer(proto::MessageClass::error, sig::method::forwarded_lookup,
                                 forwarded.m.transaction_id);
    answer.add_u32(sig::attr::protocol_version, 1);
    answer.add_error(code, "from the agent");
    node.send(10, answer.finish());
    Reply refused = node.reply(1);
    CHECK(refused.code() == code);
    CHECK_FALSE(refused.has(sig::attr::lease_address));
  }
  const auto& results = node.core().counters().forwarded_lookup_results;
  CHECK(results[static_cast<size_t>(LookupResult::not_found)] == 1);
  CHECK(results[static_cast<size_t>(LookupResult::offline)] == 1);  // 481: no live lease
  CHECK(results[static_cast<size_t>(LookupResult::refused)] == 1);
}

TEST_CASE("an agent that does not answer in time gives the caller 504") {
  Node node;
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  alice_online(node);
  node.send(1, lookup_request("4106@acme"));
  Reply forwarded = node.reply(10);
  node.advance_ms(2999);
  node.tick();
  CHECK(node.received(1).empty());
  node.advance_ms(2);
  node.tick();
  CHECK(node.reply(1).code() == 504);
  CHECK(node.core().counters().forwarded_lookup_results[static_cast<size_t>(LookupResult::timeout)] == 1);
  // A late answer is dropped, not delivered twice.
  proto::MessageBuilder late(proto::MessageClass::success, sig::method::forwarded_lookup, forwarded.m.transaction_id);
  late.add_u32(sig::attr::protocol_version, 1);
  node.send(10, late.finish());
  CHECK(node.received(1).empty());
}

TEST_CASE("losing the agent link answers waiting lookups with 502 and later ones too") {
  Node node;
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  alice_online(node);
  node.send(1, lookup_request("4106@acme"));
  REQUIRE(node.received(10).size() == 1);
  node.close(10);
  CHECK(node.reply(1).code() == 502);
  node.send(1, lookup_request("4107@acme"));
  CHECK(node.reply(1).code() == 502);
  // An unrouted domain is an ordinary account lookup.
  node.send(1, lookup_request("4106@nowhere"));
  CHECK(node.reply(1).code() == 404);
}

TEST_CASE("numbers go to the agent with the longest matching prefix") {
  Node node;
  enroll(node, "osaka", {}, {"+81-6-"});
  enroll(node, "acme", {}, {"+81-6-1234-"});
  connect_agent(node, 10, "osaka", {}, {"+81-6-"});
  connect_agent(node, 11, "acme", {}, {"+81-6-1234-"});
  alice_online(node);
  node.send(1, lookup_request("+81-6-1234-0000"));
  CHECK(node.received(10).empty());
  CHECK(node.reply(11).text(sig::attr::user_id) == "+81-6-1234-0000");
  node.send(1, lookup_request("+81-6-9999-0000"));
  CHECK(node.reply(10).text(sig::attr::user_id) == "+81-6-9999-0000");
}

// ---- One namespace, two kinds of ID (issue 11 section 1) ----

TEST_CASE("register refuses an ID inside an enrolled domain or number prefix with 403 (issue 11)") {
  NodeSettings settings = test_settings();
  settings.open_registration = true;
  Node node(settings);
  enroll(node, "acme", {"acme"}, {"+81-6-1234-"});
  node.open(1, alice_nat);
  for (std::string id : {"4106@acme", "mallory@acme", "+81-6-1234-0001"}) {
    node.send(1, register_request(id, "correct horse"));
    Reply refused = node.reply(1);
    CHECK(refused.code() == 403);
    CHECK(refused.reason().find("LAN agent") != std::string::npos);
  }
  CHECK(node.core().counters().registrations == 0);
  // Outside every enrolled route an ID with a domain is still an account.
  node.send(1, register_request("4106@globex", "correct horse"));
  CHECK(node.reply(1).is_success());
  node.send(1, register_request("+81-6-9999-0001", "correct horse"));
  CHECK(node.reply(1).is_success());
}

TEST_CASE("an account made before its domain was enrolled cannot log in, and no password is checked (issue 11)") {
  Node node;
  node.add_account("mallory@acme", "correct horse");
  enroll(node, "acme", {"acme"});
  node.open(1, alice_nat);
  node.deliver(1, login_request("mallory@acme", "correct horse"));
  node.turn();
  CHECK(node.pending_jobs().empty());
  Reply refused = node.reply(1);
  CHECK(refused.code() == 403);
  CHECK(refused.reason().find("acme") != std::string::npos);
  CHECK(node.core().presence().size() == 0);
}

TEST_CASE("a link logged in before its domain was enrolled loses its login at its next request (issue 11)") {
  Node node;
  node.add_account("mallory@acme", "correct horse");
  REQUIRE(node.login(1, alice_nat, "mallory@acme", "correct horse").is_success());
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  // The extension's mailbox and the agent's edge policy are out of reach.
  node.send(1, request(sig::method::voicemail_list));
  auto answers = node.received(1);
  REQUIRE(answers.size() == 2);  // the 403 and a notice
  CHECK(answers[0].code() == 403);
  CHECK(is_notice(answers[1]));
  CHECK(notice_code(answers[1]) == sig::notice_code::id_taken_by_agent);
  CHECK(node.closes(1).size() == 1);
  CHECK(node.core().presence().size() == 0);
  node.send(1, lookup_request("4106@acme"));
  CHECK(node.reply(1).code() == 401);
  CHECK(node.received(10).empty());
}

// ---- Accounts end cleanly (issue 11 section 7) ----

namespace {
// What `tsunagu-rendezvous user passwd` does, from outside the node.
void change_password(Node& node, const std::string& user, const std::string& password) {
  auto txn = node.store().begin_write();
  REQUIRE(txn.has_value());
  auto found = node.store().find(*txn, user);
  REQUIRE(found.has_value());
  REQUIRE(found->has_value());
  Account account = **found;
  account.password_hash = security::hash_password(password, fast_hashing);
  account.generation = *node.store().bump_epoch(*txn);
  REQUIRE(node.store().update(*txn, account).has_value());
  REQUIRE(txn->commit().has_value());
}
// What `tsunagu-rendezvous user remove` does, from outside the node.
void remove_account(Node& node, const std::string& user) {
  auto txn = node.store().begin_write();
  REQUIRE(txn.has_value());
  REQUIRE(*node.store().remove(*txn, user, node.now().unix_s));
  REQUIRE(txn->commit().has_value());
}
}  // namespace

TEST_CASE("a password change ends the account's logged-in links at their next request (issue 11)") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  change_password(node, "alice", "battery staple");
  node.send(1, request(sig::method::keepalive));
  auto answers = node.received(1);
  REQUIRE(answers.size() == 2);
  CHECK(answers[0].code() == 401);
  CHECK(answers[0].reason().find("password changed") != std::string::npos);
  CHECK(is_notice(answers[1]));
  CHECK(notice_code(answers[1]) == sig::notice_code::account_ended);
  CHECK(node.closes(1).size() == 1);
  CHECK(node.core().presence().size() == 0);
  // The new password logs in, and that login holds.
  REQUIRE(node.login(2, alice_nat, "alice", "battery staple").is_success());
  node.send(2, request(sig::method::keepalive));
  CHECK(node.reply(2).is_success());
}

TEST_CASE("a removed account's idle links end at the next account check, and others stay (issue 11)") {
  NodeSettings settings = test_settings();
  settings.account_check_interval_ms = 1000;
  Node node(settings);
  for (const char* user : {"alice", "bob"}) node.add_account(user, "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  REQUIRE(node.login(2, bob_nat, "bob", "correct horse", {}, sig::link_role::query).is_success());
  REQUIRE(node.login(3, carol_nat, "alice", "correct horse", {}, sig::link_role::query).is_success());
  node.tick();
  CHECK(node.core().next_deadline() <= node.now().mono_ms + 1000);
  remove_account(node, "alice");
  node.advance_ms(1000);
  node.tick();
  for (LinkId link : {LinkId{1}, LinkId{3}}) {
    auto notices = node.received(link);
    REQUIRE(notices.size() == 1);
    CHECK(is_notice(notices[0]));
    CHECK(node.closes(link).size() == 1);
  }
  CHECK(node.quiet());  // bob's link is untouched
  CHECK(node.core().presence().size() == 0);
  node.send(2, lookup_request("alice"));
  CHECK(node.reply(2).code() == 404);
}

TEST_CASE("an ID created again after its removal does not revive its first owner's login (issue 11)") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse", {}, sig::link_role::query).is_success());
  remove_account(node, "alice");
  node.add_account("alice", "correct horse");  // the operator gives the ID back, with the same password even
  node.send(1, lookup_request("alice"));
  auto answers = node.received(1);
  REQUIRE_FALSE(answers.empty());
  CHECK(answers[0].code() == 401);
  CHECK(node.closes(1).size() == 1);
}

TEST_CASE("a removed ID cannot be registered by someone else during the quarantine (issue 11)") {
  NodeSettings settings = test_settings();
  settings.open_registration = true;
  Node node(settings);
  node.add_account("alice", "correct horse");
  remove_account(node, "alice");
  node.open(1, carol_nat);
  node.send(1, register_request("alice", "mallory's password"));
  Reply held = node.reply(1);
  CHECK(held.code() == 409);
  CHECK(held.reason().find("30 more day") != std::string::npos);
  CHECK(node.core().counters().registrations == 0);
  node.advance_ms(uint64_t{30} * 86'400'000);
  node.send(1, register_request("alice", "mallory's password"));
  CHECK(node.reply(1).is_success());
}

// ---- Lookups reveal only what the owner allows (issue 11 section 6) ----

TEST_CASE("lookup leaves out a user's reported addresses by default and says so; the user sees their own (issue 11)") {
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse", {alice_home, alice_v6}).is_success());
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple").is_success());
  node.send(2, lookup_request("alice"));
  Reply r = node.reply(2);
  REQUIRE(r.is_success());
  CHECK(r.addresses(sig::attr::reported_address).empty());
  CHECK(r.u32(sig::attr::presence) == (sig::presence_flag::online | sig::presence_flag::addresses_hidden));
  node.send(1, lookup_request("alice"));
  Reply own = node.reply(1);
  CHECK(own.addresses(sig::attr::reported_address) == std::vector<SocketAddress>{alice_home, alice_v6});
}

TEST_CASE("to a caller not allowed to see an ID, an existing and an unknown ID answer alike (issue 11)") {
  Node node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  set_privacy(node, "alice", sig::presence_visibility::nobody, false);
  REQUIRE(node.login(2, bob_nat, "bob", "battery staple", {}, sig::link_role::query).is_success());
  // The same answer, attribute for attribute, for hidden-and-offline,
  // hidden-and-online and unknown; in lookups, calls and voicemail.
  auto answers = [&](const std::string& target) {
    std::vector<std::pair<uint16_t, std::string>> out;
    std::vector<Bytes> requests = {
        lookup_request(target),
        request(sig::method::call,
                [&](proto::MessageBuilder& b) {
                  b.add_string(sig::attr::user_id, target);
                  b.add_string(sig::attr::ice_description, "ufrag pwd");
                }),
        request(sig::method::voicemail_begin, [&](proto::MessageBuilder& b) {
          b.add_string(sig::attr::user_id, target);
          b.add_u64(sig::attr::voicemail_size, 100);
        })};
    for (const auto& bytes : requests) {
      node.send(2, bytes);
      Reply r = node.reply(2);
      out.emplace_back(r.code(), r.reason());
      CHECK(r.m.attributes.size() == 3);  // PROTOCOL-VERSION, ERROR-CODE, FINGERPRINT: nothing more
    }
    return out;
  };
  auto unknown = answers("nosuchuser");
  CHECK(unknown[0].first == 404);
  CHECK(answers("alice") == unknown);  // offline
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  node.send(2, lookup_request("alice"));
  Reply online = node.reply(2);
  CHECK(online.code() == 404);
  CHECK(online.reason() == unknown[0].second);
  // alice herself still looks herself up.
  node.send(1, lookup_request("alice"));
  CHECK(node.reply(1).is_success());
}

TEST_CASE("profile_set stores presence=nobody and addresses=yes, and profile_get reports them (issue 11)") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  node.send(1, request(sig::method::profile_set, [](proto::MessageBuilder& b) {
    b.add_u32(sig::attr::presence_visibility, sig::presence_visibility::nobody);
    b.add_u32(sig::attr::addresses_shown, 1);
  }));
  Reply set = node.reply(1);
  REQUIRE(set.is_success());
  CHECK(set.u32(sig::attr::presence_visibility) == sig::presence_visibility::nobody);
  CHECK(set.u32(sig::attr::addresses_shown) == 1u);
  node.send(1, request(sig::method::profile_set,
                       [](proto::MessageBuilder& b) { b.add_u32(sig::attr::presence_visibility, 3); }));
  CHECK(node.reply(1).code() == 400);  // no such choice
  auto txn = node.store().begin_read();
  Account stored = node.store().find(*txn, "alice")->value();
  CHECK(stored.presence_visibility == sig::presence_visibility::nobody);
  CHECK(stored.addresses_shown);
}

TEST_CASE("directory searches beyond the account's burst get 429 with RETRY-AFTER, then refill (issue 11)") {
  NodeSettings settings = test_settings();
  settings.directory_scan_burst = 2;
  settings.directory_scan_interval_ms = 5000;
  Node node(settings);
  node.add_account("mallory", "correct horse");
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, carol_nat, "mallory", "correct horse", {}, sig::link_role::query).is_success());
  REQUIRE(node.login(2, alice_nat, "alice", "correct horse", {}, sig::link_role::query).is_success());
  auto search = [] {
    return request(sig::method::directory_search, [](proto::MessageBuilder& b) { b.add_string(sig::attr::directory_query, "a"); });
  };
  node.send(1, search());
  CHECK(node.reply(1).is_success());
  node.send(1, request(sig::method::directory_categories));
  CHECK(node.reply(1).is_success());
  node.send(1, search());
  Reply limited = node.reply(1);
  CHECK(limited.code() == 429);
  CHECK(limited.u32(sig::attr::retry_after) == 5u);
  node.send(2, search());  // another account searches on
  CHECK(node.reply(2).is_success());
  node.advance_ms(5000);
  node.send(1, search());
  CHECK(node.reply(1).is_success());
}

TEST_CASE("agent methods are refused on terminal links and terminal methods on agent links") {
  Node node;
  enroll(node, "acme", {"acme"});
  alice_online(node);
  node.send(1, hello_request({"acme"}));
  CHECK(node.reply(1).code() == 403);
  connect_agent(node, 10, "acme", {"acme"});
  node.send(10, lookup_request("alice"));
  CHECK(node.reply(10).code() == 403);
}

// ---- Calls: ring and consent, busy, call waiting, timeouts, hang-up ----

namespace {

Bytes call_request(const std::string& callee, const std::string& offer = "offer-sdp") {
  return request(sig::method::call, [&](proto::MessageBuilder& b) {
    b.add_string(sig::attr::user_id, callee);
    b.add_string(sig::attr::ice_description, offer);
  });
}

Bytes hangup_request(const std::string& call_id) {
  return request(sig::method::hangup, [&](proto::MessageBuilder& b) { b.add_string(sig::attr::call_id, call_id); });
}

Bytes ring_answer(const Reply& ring, bool accept, uint16_t code = 603) {
  proto::MessageBuilder b(accept ? proto::MessageClass::success : proto::MessageClass::error, sig::method::ring,
                          ring.m.transaction_id);
  b.add_u32(sig::attr::protocol_version, 1);
  if (accept) b.add_string(sig::attr::ice_description, "answer-sdp");
  else b.add_error(code, "no");
  return b.finish();
}

// alice on link 1 and bob on link 2, both with presence. Returns nothing; bob
// may be given call waiting.
void two_online(Node& node, bool bob_call_waiting = false) {
  node.add_account("alice", "correct horse");
  node.add_account("bob", "battery staple");
  if (bob_call_waiting) {
    auto txn = node.store().begin_write();
    auto bob = node.store().find(*txn, "bob");
    Account a = **bob;
    a.services = sig::service_flag::call_waiting;
    REQUIRE(node.store().update(*txn, a).has_value());
    REQUIRE(txn->commit().has_value());
  }
  node.open(1, alice_nat);
  node.send(1, login_request("alice", "correct horse", {alice_home}));
  REQUIRE(node.reply(1).is_success());
  node.open(2, bob_nat);
  node.send(2, login_request("bob", "battery staple"));
  REQUIRE(node.reply(2).is_success());
}

// alice calls bob; returns the call ID and the ring bob got.
std::pair<std::string, Reply> ring_bob(Node& node, LinkId caller = 1) {
  node.send(caller, call_request("bob"));
  Reply ringing = node.reply(caller);
  REQUIRE(ringing.is_success());
  Reply ring = node.reply(2);
  REQUIRE(ring.m.method == sig::method::ring);
  CHECK(ring.text(sig::attr::call_id) == ringing.text(sig::attr::call_id));
  CHECK(ring.text(sig::attr::ice_description) == "offer-sdp");
  return {*ringing.text(sig::attr::call_id), ring};
}

bool in_call(Node& node, const std::string& user) {
  const PresenceRow* row = node.core().presence().find(user);
  return row != nullptr && row->in_call;
}

}  // namespace

TEST_CASE("an accepted call gives both sides the same key and the caller the callee's answer") {
  Node node;
  two_online(node);
  auto [id, ring] = ring_bob(node);
  REQUIRE(node.core().calls_view().size() == 1);
  CHECK(node.core().calls_view()[0].state == "ringing");
  node.send(2, ring_answer(ring, true));
  Reply to_alice = node.reply(1), to_bob = node.reply(2);
  CHECK(to_alice.u32(sig::attr::call_state) == sig::call_state::accepted);
  // The operator's view: who calls whom, in which state; nothing secret.
  auto calls = node.core().calls_view();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].caller == "alice");
  CHECK(calls[0].callee == "bob");
  CHECK(calls[0].state == "accepted");
  CHECK_FALSE(calls[0].via_agent);
  CHECK(to_alice.text(sig::attr::ice_description) == "answer-sdp");
  CHECK(to_alice.address(sig::attr::observed_address) == bob_nat);
  CHECK(to_bob.addresses(sig::attr::reported_address) == std::vector<SocketAddress>{alice_home});
  const auto* key_a = to_alice.m.find(sig::attr::key_material);
  const auto* key_b = to_bob.m.find(sig::attr::key_material);
  REQUIRE(key_a != nullptr);
  REQUIRE(key_b != nullptr);
  CHECK(key_a->value.size() == 32);
  CHECK(std::equal(key_a->value.begin(), key_a->value.end(), key_b->value.begin(), key_b->value.end()));
  CHECK(in_call(node, "alice"));
  CHECK(in_call(node, "bob"));
  // Hang-up from the callee ends it on both sides and clears the flags.
  node.send(2, hangup_request(id));
  CHECK(node.reply(2).is_success());
  Reply ended = node.reply(1);
  CHECK(ended.u32(sig::attr::call_state) == sig::call_state::ended);
  CHECK(ended.u32(sig::attr::end_code) == sig::error::hung_up);
  CHECK_FALSE(in_call(node, "alice"));
  CHECK_FALSE(in_call(node, "bob"));
  CHECK(node.core().calls_view().empty());
}

TEST_CASE("two nodes given the same seed and the same inputs send byte-identical messages, call IDs and keys included") {
  // A login's resume token is MACed with a key from its store's own secret
  // (random per store, like the dummy salts): left out here.
  auto without_tokens = [] {
    NodeSettings settings = test_settings();  // each its own seeded generator
    settings.resume_token_ttl_s = 0;
    return settings;
  };
  Node first(without_tokens()), second(without_tokens());
  const Bytes login_alice = login_request("alice", "correct horse", {alice_home});
  const Bytes login_bob = login_request("bob", "battery staple");
  const Bytes call = call_request("bob");
  std::vector<std::pair<LinkId, Bytes>> sent[2];
  std::optional<Bytes> answer;  // built from the first node's ring, given to both
  int i = 0;
  for (Node* node : {&first, &second}) {
    node->add_account("alice", "correct horse");
    node->add_account("bob", "battery staple");
    node->open(1, alice_nat);
    node->send(1, login_alice);
    node->open(2, bob_nat);
    node->send(2, login_bob);
    node->send(1, call);
    auto before_answer = node->sent();
    if (!answer) {
      auto ring = std::find_if(before_answer.begin(), before_answer.end(), [](const auto& s) {
        return s.first == 2 && parse(Bytes(s.second)).m.method == sig::method::ring;
      });
      REQUIRE(ring != before_answer.end());
      answer = ring_answer(parse(Bytes(ring->second)), true);
    }
    node->send(2, *answer);
    sent[i] = std::move(before_answer);
    for (auto& message : node->sent()) sent[i].push_back(std::move(message));
    ++i;
  }
  // Both accepted (the ring answer matched the second node's ring transaction too).
  CHECK(std::count_if(sent[1].begin(), sent[1].end(), [](const auto& s) {
          return parse(Bytes(s.second)).m.find(sig::attr::key_material) != nullptr;
        }) == 2);
  CHECK(sent[0] == sent[1]);
}

TEST_CASE("a call's ID and key are bytes the injected source gave") {
  auto given = std::make_shared<std::vector<Bytes>>();
  NodeSettings settings = test_settings();
  settings.random = [given, source = seeded_random(7)](std::span<std::byte> out) {
    source(out);
    given->emplace_back(out.begin(), out.end());
  };
  Node node(settings);
  two_online(node);
  auto [id, ring] = ring_bob(node);
  node.send(2, ring_answer(ring, true));
  Reply to_alice = node.reply(1);
  node.reply(2);
  const auto* key = to_alice.m.find(sig::attr::key_material);
  REQUIRE(key != nullptr);
  Bytes key_bytes(key->value.begin(), key->value.end());
  CHECK(std::count(given->begin(), given->end(), key_bytes) == 1);
  const std::string call_id = id;  // clang 14 cannot capture a structured binding in a lambda
  CHECK(std::count_if(given->begin(), given->end(), [&](const Bytes& b) { return to_hex(b) == call_id; }) == 1);
  std::array<std::byte, 12> ring_id = ring.m.transaction_id.bytes;
  CHECK(std::count(given->begin(), given->end(), Bytes(ring_id.begin(), ring_id.end())) == 1);
}

TEST_CASE("a declined call tells the caller 603 and sets no flags") {
  Node node;
  two_online(node);
  auto [id, ring] = ring_bob(node);
  node.send(2, ring_answer(ring, false));
  Reply ended = node.reply(1);
  CHECK(ended.u32(sig::attr::end_code) == sig::error::declined);
  CHECK_FALSE(in_call(node, "alice"));
  CHECK_FALSE(in_call(node, "bob"));
  CHECK(node.core().counters().calls_ended[static_cast<size_t>(CallEndReason::declined)] == 1);
}

TEST_CASE("an unanswered call ends with 408 at the consent timeout, for both sides") {
  Node node;
  two_online(node);
  auto [id, ring] = ring_bob(node);
  node.advance_ms(29'999);
  node.tick();
  CHECK(node.received(1).empty());
  node.advance_ms(2);
  node.tick();
  CHECK(node.reply(1).u32(sig::attr::end_code) == sig::error::no_answer);
  CHECK(node.reply(2).u32(sig::attr::end_code) == sig::error::no_answer);
  CHECK(node.core().counters().calls_ended[static_cast<size_t>(CallEndReason::no_answer)] == 1);
  // A late accept changes nothing.
  node.send(2, ring_answer(ring, true));
  CHECK(node.received(1).empty());
  CHECK_FALSE(in_call(node, "bob"));
}

TEST_CASE("a callee in a call is busy, unless it has call waiting") {
  Node node;
  two_online(node);
  node.add_account("carol", "carol password");
  node.open(3, carol_nat);
  node.send(3, login_request("carol", "carol password"));
  REQUIRE(node.reply(3).is_success());
  auto [id, ring] = ring_bob(node);
  node.send(2, ring_answer(ring, true));
  node.received(1);
  node.received(2);
  node.send(3, call_request("bob"));
  CHECK(node.reply(3).code() == sig::error::busy);
  CHECK(node.received(2).empty());
}

TEST_CASE("call waiting rings a callee who is already in a call") {
  Node node;
  two_online(node, /*bob_call_waiting=*/true);
  node.add_account("carol", "carol password");
  node.open(3, carol_nat);
  node.send(3, login_request("carol", "carol password"));
  REQUIRE(node.reply(3).is_success());
  auto [id, ring] = ring_bob(node);
  node.send(2, ring_answer(ring, true));
  node.received(1);
  node.received(2);
  node.send(3, call_request("bob"));
  CHECK(node.reply(3).is_success());
  Reply waiting = node.reply(2);
  CHECK(waiting.m.method == sig::method::ring);
  CHECK((*waiting.u32(sig::attr::presence) & sig::presence_flag::in_call) != 0);
  // Bob refuses the waiting call; his first call goes on.
  node.send(2, ring_answer(waiting, false, sig::error::busy));
  CHECK(node.reply(3).u32(sig::attr::end_code) == sig::error::busy);
  CHECK(in_call(node, "bob"));
}

TEST_CASE("the caller cancelling while it rings stops the ring with 487") {
  Node node;
  two_online(node);
  auto [id, ring] = ring_bob(node);
  node.send(1, hangup_request(id));
  CHECK(node.reply(1).is_success());
  CHECK(node.reply(2).u32(sig::attr::end_code) == sig::error::cancelled);
}

TEST_CASE("the callee's link dying while it rings ends the call for the caller") {
  Node node;
  two_online(node);
  auto [id, ring] = ring_bob(node);
  node.close(2);
  CHECK(node.reply(1).u32(sig::attr::end_code) == sig::error::link_lost);
}

TEST_CASE("the caller's link dying during a call ends it for the callee and clears flags") {
  Node node;
  two_online(node);
  auto [id, ring] = ring_bob(node);
  node.send(2, ring_answer(ring, true));
  node.received(1);
  node.received(2);
  node.close(1);
  CHECK(node.reply(2).u32(sig::attr::end_code) == sig::error::link_lost);
  CHECK_FALSE(in_call(node, "bob"));
}

TEST_CASE("calls to offline, unknown or too many users are refused clearly") {
  Node node;
  two_online(node);
  node.add_account("dave", "dave password");
  node.send(1, call_request("dave"));
  CHECK(node.reply(1).code() == sig::error::offline);
  node.send(1, call_request("nobody"));
  CHECK(node.reply(1).code() == sig::error::unknown_user);
  for (int i = 0; i < 4; ++i) {
    node.send(1, call_request("bob"));
    if (i == 0) CHECK(node.reply(1).is_success());
    else CHECK(node.reply(1).code() == sig::error::busy);  // bob is already being rung
  }
}

TEST_CASE("TURN credentials follow coturn's REST-API scheme") {
  // Known answer computed with: printf '1700000000:alice' | openssl dgst -sha1 -hmac secret -binary | base64
  auto credentials = mint_turn_credentials("secret", "alice", 1'700'000'000);
  CHECK(credentials.username == "1700000000:alice");
  CHECK(credentials.password == "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
  NodeSettings settings = test_settings();
  settings.turn_secret = "secret";
  settings.turn_servers = {SocketAddress::v4({127, 0, 0, 1}, 34780)};
  Node node(settings);
  two_online(node);
  node.send(1, request(sig::method::call, [](proto::MessageBuilder& b) { b.add_string(sig::attr::user_id, "bob"); }));
  Reply creds = node.reply(1);
  REQUIRE(creds.is_success());
  CHECK(creds.u32(sig::attr::call_state) == sig::call_state::preparing);
  auto username = *creds.text(sig::attr::turn_username);
  CHECK(username.ends_with(":alice"));
  CHECK(creds.text(sig::attr::turn_password) ==
        security::base64_encode(security::hmac_sha1(as_bytes("secret"), as_bytes(username))));
  CHECK(creds.address(sig::attr::turn_server) == settings.turn_servers[0]);
}

namespace {
Bytes prepare_request(const std::string& callee) {
  return request(sig::method::call, [&](proto::MessageBuilder& b) { b.add_string(sig::attr::user_id, callee); });
}
Bytes turn_request(const std::string& call_id) {
  return request(sig::method::turn_credentials, [&](proto::MessageBuilder& b) {
    if (!call_id.empty()) b.add_string(sig::attr::call_id, call_id);
  });
}
Bytes place_prepared(const std::string& call_id, const std::string& offer = "offer-sdp") {
  return request(sig::method::call, [&](proto::MessageBuilder& b) {
    b.add_string(sig::attr::call_id, call_id);
    b.add_string(sig::attr::ice_description, offer);
  });
}
NodeSettings turn_settings() {
  NodeSettings settings = test_settings();
  settings.turn_secret = "secret";
  settings.turn_servers = {SocketAddress::v4({127, 0, 0, 1}, 34780)};
  settings.stun_server = SocketAddress::v4({127, 0, 0, 1}, 3478);
  return settings;
}
}  // namespace

TEST_CASE("TURN credentials are handed out only inside a call: to the caller once prepared, to the callee while rung (issue 11)") {
  Node node(turn_settings());
  two_online(node);
  node.add_account("carol", "carol's password");
  node.open(3, SocketAddress::v4({198, 51, 100, 77}, 4000));
  node.send(3, login_request("carol", "carol's password"));
  REQUIRE(node.reply(3).is_success());

  node.send(1, turn_request(""));  // outside any call
  CHECK(node.reply(1).code() == sig::error::bad_request);
  node.send(1, turn_request(std::string(32, 'a')));
  CHECK(node.reply(1).code() == sig::error::no_such_call);

  node.send(1, prepare_request("bob"));
  Reply prepared = node.reply(1);
  REQUIRE(prepared.is_success());
  std::string id = *prepared.text(sig::attr::call_id);
  CHECK(prepared.text(sig::attr::turn_username).has_value());
  CHECK(node.received(2).empty());  // nothing rings yet

  node.send(3, turn_request(id));  // not a party
  CHECK(node.reply(3).code() == sig::error::no_such_call);
  node.send(2, turn_request(id));  // bob is not rung yet
  CHECK(node.reply(2).code() == sig::error::no_such_call);
  node.send(1, turn_request(id));  // the caller may ask once more (a lost answer), not again
  CHECK(node.reply(1).is_success());
  node.send(1, turn_request(id));
  CHECK(node.reply(1).code() == sig::error::too_many_attempts);

  node.send(1, place_prepared(id));
  Reply ringing = node.reply(1);
  REQUIRE(ringing.is_success());
  CHECK(ringing.text(sig::attr::call_id) == id);
  Reply ring = node.reply(2);
  REQUIRE(ring.m.method == sig::method::ring);
  CHECK(ring.text(sig::attr::ice_description) == "offer-sdp");
  CHECK(ring.address(sig::attr::stun_server).has_value());
  CHECK_FALSE(ring.text(sig::attr::turn_username).has_value());  // a user's ring carries no credentials

  node.send(2, turn_request(id));  // accepting
  Reply for_bob = node.reply(2);
  REQUIRE(for_bob.is_success());
  CHECK(for_bob.text(sig::attr::turn_username)->ends_with(":bob"));
  node.send(2, ring_answer(ring, true));
  node.reply(1);
  node.reply(2);
  node.send(1, hangup_request(id));
  node.reply(1);
  node.reply(2);
  node.send(2, turn_request(id));  // the call is over
  CHECK(node.reply(2).code() == sig::error::no_such_call);
}

TEST_CASE("a prepared call counts as ringing, rings nobody, and ends unused at the consent timeout") {
  NodeSettings settings = turn_settings();
  settings.max_ringing_per_user = 1;
  Node node(settings);
  two_online(node);
  node.send(1, prepare_request("bob"));
  Reply prepared = node.reply(1);
  REQUIRE(prepared.is_success());
  std::string id = *prepared.text(sig::attr::call_id);
  node.send(1, prepare_request("bob"));  // the one ringing place is taken
  CHECK(node.reply(1).code() == sig::error::too_many_attempts);
  CHECK_FALSE(in_call(node, "bob"));
  node.send(1, request(sig::method::call, [&](proto::MessageBuilder& b) {
    b.add_string(sig::attr::call_id, id);
    b.add_string(sig::attr::user_id, "carol");  // not the prepared callee
    b.add_string(sig::attr::ice_description, "offer-sdp");
  }));
  CHECK(node.reply(1).code() == sig::error::no_such_call);
  node.advance_ms(uint64_t{settings.consent_timeout_s} * 1000 + 1);
  node.tick();
  Reply ended = node.reply(1);
  CHECK(ended.u32(sig::attr::call_state) == sig::call_state::ended);
  CHECK(ended.u32(sig::attr::end_code) == sig::error::no_answer);
  CHECK(node.received(2).empty());
  node.send(1, place_prepared(id));
  CHECK(node.reply(1).code() == sig::error::no_such_call);
  node.send(1, prepare_request("bob"));  // its place is free again
  CHECK(node.reply(1).is_success());
}

TEST_CASE("a prepared call to a callee who went offline meanwhile is refused and ends") {
  Node node(turn_settings());
  two_online(node);
  node.send(1, prepare_request("bob"));
  std::string id = *node.reply(1).text(sig::attr::call_id);
  node.close(2);
  node.send(1, place_prepared(id));
  CHECK(node.reply(1).code() == sig::error::offline);
  node.send(1, place_prepared(id));
  CHECK(node.reply(1).code() == sig::error::no_such_call);
  CHECK(node.received(1).empty());
}

// ---- Calls to LAN extensions: rung through the domain's agent ----

namespace {

// alice online (query link 1) calls 4106@acme; the agent on link 10 gets the ring.
std::pair<std::string, Reply> ring_extension(Node& node) {
  node.send(1, call_request("4106@acme"));
  Reply ringing = node.reply(1);
  REQUIRE(ringing.is_success());
  Reply ring = node.reply(10);
  REQUIRE(ring.m.method == sig::method::ring);
  CHECK(ring.text(sig::attr::user_id) == "4106@acme");
  CHECK(ring.text(sig::attr::caller_id) == "alice");
  CHECK(ring.text(sig::attr::call_id) == ringing.text(sig::attr::call_id));
  return {*ringing.text(sig::attr::call_id), ring};
}

Bytes candidate_indication(const std::string& call_id, const std::string& line) {
  proto::TransactionId id{};
  id.bytes[0] = std::byte{7};
  proto::MessageBuilder b(proto::MessageClass::indication, sig::method::call_candidate, id);
  b.add_u32(sig::attr::protocol_version, 1);
  b.add_string(sig::attr::call_id, call_id);
  b.add_string(sig::attr::ice_candidate, line);
  return b.finish();
}

}  // namespace

TEST_CASE("a call to EXT@domain rings the agent, and its answer, candidates and hang-up reach the caller") {
  Node node;
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  alice_online(node);
  auto [id, ring] = ring_extension(node);
  node.send(10, ring_answer(ring, true));
  Reply to_alice = node.reply(1), to_agent = node.reply(10);
  CHECK(to_alice.u32(sig::attr::call_state) == sig::call_state::accepted);
  CHECK(to_alice.text(sig::attr::ice_description) == "answer-sdp");
  CHECK(to_agent.u32(sig::attr::call_state) == sig::call_state::accepted);
  CHECK(to_agent.m.find(sig::attr::key_material) != nullptr);
  // Trickled candidates are relayed both ways through the agent link.
  node.send(10, candidate_indication(id, "candidate:1 1 UDP 1 10.99.0.57 5000 typ host"));
  CHECK(node.reply(1).text(sig::attr::ice_candidate) == "candidate:1 1 UDP 1 10.99.0.57 5000 typ host");
  // The LAN terminal hangs up (relayed by its agent as a hangup request).
  node.send(10, hangup_request(id));
  CHECK(node.reply(10).is_success());
  Reply ended = node.reply(1);
  CHECK(ended.u32(sig::attr::call_state) == sig::call_state::ended);
  CHECK(ended.u32(sig::attr::end_code) == sig::error::hung_up);
  CHECK_FALSE(in_call(node, "alice"));
}

// Issue 11 §5: candidates relayed before the callee accepted were unlimited.
TEST_CASE("candidates relayed before the callee accepts are limited in count and bytes; after it, not") {
  NodeSettings settings = test_settings();
  settings.max_early_candidates = 4;
  settings.max_early_candidate_bytes = 2000;
  Node node(settings);
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  alice_online(node);
  auto [id, ring] = ring_extension(node);
  const std::string line = "candidate:1 1 UDP 1 198.51.100.9 5000 typ srflx";
  const std::string padded(510, 'x');
  for (int i = 0; i < 3; ++i) node.send(1, candidate_indication(id, padded));  // 1530 bytes
  node.send(1, candidate_indication(id, padded));  // 2040 > 2000 bytes: dropped
  node.send(1, candidate_indication(id, line));    // the 4th relayed
  node.send(1, candidate_indication(id, line));    // a 5th: over the count, dropped
  CHECK(node.received(10).size() == 4);
  CHECK(node.core().counters().early_candidates_dropped == 2);
  node.send(10, ring_answer(ring, true));
  node.received(1);
  node.received(10);
  for (int i = 0; i < 5; ++i) node.send(1, candidate_indication(id, line));
  CHECK(node.received(10).size() == 5);  // the call is accepted: relayed as before
  CHECK(node.core().counters().early_candidates_dropped == 2);
}

TEST_CASE("the agent's refusal of a ring reaches the caller with its code and reason") {
  Node node;
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  alice_online(node);
  for (uint16_t code : {uint16_t{481}, uint16_t{403}, uint16_t{404}, uint16_t{480}}) {
    auto [id, ring] = ring_extension(node);
    proto::MessageBuilder b(proto::MessageClass::error, sig::method::ring, ring.m.transaction_id);
    b.add_u32(sig::attr::protocol_version, 1);
    b.add_error(code, "the agent's reason");
    node.send(10, b.finish());
    Reply ended = node.reply(1);
    CHECK(ended.u32(sig::attr::end_code) == code);
    CHECK(ended.text(sig::attr::notice_reason) == "the agent's reason");
    CHECK(node.received(10).empty());  // the agent is not told what it said
  }
}

TEST_CASE("a call to EXT@domain whose agent is offline gets 502; losing the agent ends its calls with 410") {
  Node node;
  enroll(node, "acme", {"acme"});
  alice_online(node);
  node.send(1, call_request("4106@acme"));
  CHECK(node.reply(1).code() == sig::error::agent_offline);
  connect_agent(node, 10, "acme", {"acme"});
  auto [id, ring] = ring_extension(node);
  node.send(10, ring_answer(ring, true));
  node.received(1);
  node.close(10);
  Reply ended = node.reply(1);
  CHECK(ended.u32(sig::attr::call_state) == sig::call_state::ended);
  CHECK(ended.u32(sig::attr::end_code) == sig::error::link_lost);
}

TEST_CASE("a second ring for an extension in a call goes to its agent, flagged in-call (call waiting is the "
          "agent's to allow); its busy ends that call only; a hang-up from a link that is not a party changes nothing") {
  Node node;
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  alice_online(node);
  auto [id, ring] = ring_extension(node);
  CHECK(ring.u32(sig::attr::presence) == 0u);
  node.send(1, call_request("4106@acme"));
  Reply second = node.reply(1);
  REQUIRE(second.is_success());
  Reply waiting = node.reply(10);
  REQUIRE(waiting.m.method == sig::method::ring);
  CHECK(waiting.u32(sig::attr::presence) == sig::presence_flag::in_call);
  node.send(10, ring_answer(waiting, false, sig::error::busy));  // an agent without call waiting for 4106
  Reply ended = node.reply(1);
  CHECK(ended.text(sig::attr::call_id) == second.text(sig::attr::call_id));
  CHECK(ended.u32(sig::attr::end_code) == sig::error::busy);
  enroll(node, "globex", {"globex"});
  connect_agent(node, 11, "globex", {"globex"});
  node.send(11, hangup_request(id));
  CHECK(node.reply(11).is_success());  // idempotent, but not a party: nothing ends
  CHECK(node.received(1).empty());
  CHECK(node.received(10).empty());
}

TEST_CASE("calls ringing per caller are limited (429), and ended calls give their place back") {
  NodeSettings settings = test_settings();
  settings.max_ringing_per_user = 2;
  Node node(settings);
  node.add_account("alice", "correct horse");
  for (const char* callee : {"bob", "carol", "dave"}) node.add_account(callee, "battery staple");
  node.open(1, alice_nat);
  node.send(1, login_request("alice", "correct horse"));
  REQUIRE(node.reply(1).is_success());
  LinkId link = 2;
  for (const char* callee : {"bob", "carol", "dave"}) {
    node.open(link, carol_nat);
    node.send(link, login_request(callee, "battery staple"));
    REQUIRE(node.reply(link).is_success());
    ++link;
  }
  node.send(1, call_request("bob"));
  Reply first = node.reply(1);
  REQUIRE(first.is_success());
  node.send(1, call_request("carol"));
  REQUIRE(node.reply(1).is_success());
  node.send(1, call_request("dave"));
  CHECK(node.reply(1).code() == sig::error::too_many_attempts);
  // Cancelling one ringing call frees its place; the counts follow every end.
  for (int round = 0; round < 5; ++round) {
    node.send(1, hangup_request(*first.text(sig::attr::call_id)));
    CHECK(node.reply(1).is_success());
    node.received(2);
    node.send(1, call_request("bob"));
    first = node.reply(1);
    REQUIRE(first.is_success());
    node.received(2);
  }
  node.send(1, call_request("dave"));
  CHECK(node.reply(1).code() == sig::error::too_many_attempts);
}

TEST_CASE("calls ringing per source address are limited across users") {
  NodeSettings settings = test_settings();
  settings.max_ringing_per_source = 2;
  Node node(settings);
  node.add_account("bob", "battery staple");
  node.open(9, bob_nat);
  node.send(9, login_request("bob", "battery staple"));
  REQUIRE(node.reply(9).is_success());
  // Three users behind one NAT address call bob.
  for (LinkId link : {LinkId{1}, LinkId{2}, LinkId{3}}) {
    std::string user = "user" + std::to_string(link);
    node.add_account(user, "correct horse");
    node.open(link, alice_nat);
    node.send(link, login_request(user, "correct horse", {}, sig::link_role::query));
    REQUIRE(node.reply(link).is_success());
  }
  node.send(1, call_request("bob"));
  CHECK(node.reply(1).is_success());
  node.send(2, call_request("bob"));
  CHECK(node.reply(2).code() == sig::error::busy);  // bob is being rung: busy, but not counted
  node.add_account("carol", "correct horse");
  node.open(8, carol_nat);
  node.send(8, login_request("carol", "correct horse"));
  REQUIRE(node.reply(8).is_success());
  node.send(2, call_request("carol"));
  CHECK(node.reply(2).is_success());
  node.send(3, call_request("carol"));
  CHECK(node.reply(3).code() == sig::error::too_many_attempts);
}

TEST_CASE("an agent link reads only the mailboxes of extensions routed to it") {
  Node node;
  enroll(node, "acme", {"acme"});
  enroll(node, "globex", {"globex"});
  connect_agent(node, 10, "acme", {"acme"});
  connect_agent(node, 11, "globex", {"globex"});
  auto list = [](const std::string& owner) {
    return request(sig::method::voicemail_list,
                   [&](proto::MessageBuilder& b) { b.add_string(sig::attr::user_id, owner); });
  };
  node.send(10, list("4106@acme"));
  CHECK(node.reply(10).is_success());
  node.send(10, list("4106@globex"));
  CHECK(node.reply(10).code() == sig::error::forbidden);
  node.send(10, list("alice"));
  CHECK(node.reply(10).code() == sig::error::forbidden);
  node.send(11, list("4106@globex"));
  CHECK(node.reply(11).is_success());
}

TEST_CASE("voicemail for EXT@domain is taken only when the agent's edge policy lets the caller reach it (issue 11)") {
  Node node;
  enroll(node, "acme", {"acme"});
  alice_online(node);
  auto begin = [](const std::string& callee) {
    return request(sig::method::voicemail_begin, [&](proto::MessageBuilder& b) {
      b.add_string(sig::attr::user_id, callee);
      b.add_u64(sig::attr::voicemail_size, 100);
    });
  };
  node.send(1, begin("4106@acme"));  // no agent to ask
  CHECK(node.reply(1).code() == sig::error::agent_offline);

  connect_agent(node, 10, "acme", {"acme"});
  auto answer_with = [&](uint16_t code, const std::string& extension = "4106@acme") {
    Reply asked = node.reply(10);
    REQUIRE(asked.m.method == sig::method::forwarded_lookup);
    CHECK(asked.text(sig::attr::caller_id) == "alice");
    CHECK(asked.text(sig::attr::user_id) == extension);
    CHECK(node.received(1).empty());  // the caller waits for the agent
    proto::MessageBuilder answer(code == 0 ? proto::MessageClass::success : proto::MessageClass::error,
                                 sig::method::forwarded_lookup, asked.m.transaction_id);
    answer.add_u32(sig::attr::protocol_version, 1);
    if (code != 0) answer.add_error(code, code == 403 ? "Forbidden: the edge policy refuses this caller" : "no");
    node.send(10, answer.finish());
    return node.reply(1);
  };
  node.send(1, begin("4106@acme"));
  Reply refused = answer_with(sig::error::agent_policy_refused);
  CHECK(refused.code() == sig::error::agent_policy_refused);
  CHECK(refused.m.method == sig::method::voicemail_begin);
  node.send(1, begin("4999@acme"));
  CHECK(answer_with(sig::error::unknown_user, "4999@acme").code() == sig::error::unknown_user);
  node.send(1, begin("4106@acme"));  // the agent does not answer
  REQUIRE(node.reply(10).m.method == sig::method::forwarded_lookup);
  node.advance_ms(10'000);
  node.tick();
  CHECK(node.reply(1).code() == sig::error::agent_timeout);
  node.send(1, begin("4106@acme"));  // allowed, the terminal away: the usual case for voicemail
  Reply taken = answer_with(sig::error::no_live_lease);
  CHECK(taken.is_success());
  CHECK(taken.u32(sig::attr::voicemail_upload).has_value());
  node.send(1, begin("4107@acme"));  // allowed and online
  CHECK(answer_with(0, "4107@acme").is_success());
}

TEST_CASE("lookups and edge-policy questions share one agent's forward limit; answers and timeouts free it") {
  NodeSettings settings = test_settings();
  settings.max_forwards_per_agent = 2;
  Node node(settings);
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  alice_online(node);
  auto begin = request(sig::method::voicemail_begin, [](proto::MessageBuilder& b) {
    b.add_string(sig::attr::user_id, "4106@acme");
    b.add_u64(sig::attr::voicemail_size, 100);
  });
  node.send(1, lookup_request("4106@acme"));
  Reply first = node.reply(10);
  node.send(1, begin);
  Reply second = node.reply(10);
  CHECK(second.m.method == sig::method::forwarded_lookup);
  CHECK(node.received(1).empty());
  // Both kinds are refused once two wait, with the same answer.
  node.send(1, lookup_request("4107@acme"));
  Reply full_lookup = node.reply(1);
  node.send(1, begin);
  Reply full_begin = node.reply(1);
  CHECK(full_lookup.code() == sig::error::unavailable);
  CHECK(full_begin.code() == sig::error::unavailable);
  CHECK(full_begin.m.method == sig::method::voicemail_begin);
  CHECK(full_lookup.reason() == full_begin.reason());
  CHECK(node.received(10).empty());
  CHECK(node.core().counters().forwarded_lookups == 2);

  // The agent answers the lookup: one slot is free again.
  proto::MessageBuilder answer(proto::MessageClass::error, sig::method::forwarded_lookup, first.m.transaction_id);
  answer.add_u32(sig::attr::protocol_version, 1);
  answer.add_error(404, "no such extension");
  node.send(10, answer.finish());
  CHECK(node.reply(1).code() == 404);
  node.send(1, lookup_request("4107@acme"));
  CHECK(node.reply(10).m.method == sig::method::forwarded_lookup);
  node.send(1, lookup_request("4108@acme"));
  CHECK(node.reply(1).code() == sig::error::unavailable);
  // Both time out: the limit is free.
  node.advance_ms(settings.forward_timeout_ms + 1);
  node.tick();
  auto timed_out = node.received(1);
  REQUIRE(timed_out.size() == 2);
  for (const auto& reply : timed_out) CHECK(reply.code() == sig::error::agent_timeout);
  CHECK(node.core().counters().forward_timeouts == 2);
  node.send(1, lookup_request("4108@acme"));
  CHECK(node.reply(10).m.method == sig::method::forwarded_lookup);
  CHECK(node.core().counters().forwarded_lookups == 4);
}

TEST_CASE("forwarded lookups: each times out forward_timeout after it was sent, in order; answered ones never; IDs unique") {
  NodeSettings settings = test_settings();
  Node node(settings);
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  alice_online(node);
  std::set<std::string> ids;
  auto ask = [&](const std::string& extension) {
    node.send(1, lookup_request(extension));
    Reply asked = node.reply(10);
    REQUIRE(asked.m.method == sig::method::forwarded_lookup);
    ids.insert(security::base64_encode(asked.m.transaction_id.bytes));
    return asked;
  };
  const uint64_t timeout = settings.forward_timeout_ms;
  ask("4101@acme");  // t = 0
  node.advance_ms(1000);
  ask("4102@acme");  // t = 1000
  Reply c = ask("4103@acme");  // t = 1000, answered below
  auto answer = [&] {
    proto::MessageBuilder b(proto::MessageClass::error, sig::method::forwarded_lookup, c.m.transaction_id);
    b.add_u32(sig::attr::protocol_version, 1);
    b.add_error(404, "no such extension");
    return b.finish();
  };
  // Another agent's link cannot answer it; the agent asked can.
  enroll(node, "other", {"other"});
  connect_agent(node, 11, "other", {"other"});
  node.send(11, answer());
  CHECK(node.received(1).empty());
  node.send(10, answer());
  CHECK(node.reply(1).code() == 404);
  REQUIRE(node.core().next_deadline().has_value());
  CHECK(*node.core().next_deadline() <= node.now().mono_ms - 1000 + timeout);
  node.advance_ms(timeout - 1000);  // t = timeout: a is due, b not yet
  node.tick();
  auto first = node.received(1);
  REQUIRE(first.size() == 1);
  CHECK(first[0].code() == sig::error::agent_timeout);
  node.advance_ms(999);
  node.tick();
  CHECK(node.received(1).empty());
  node.advance_ms(1);  // t = 1000 + timeout: b
  node.tick();
  CHECK(node.received(1).size() == 1);
  CHECK(node.core().counters().forward_timeouts == 2);
  // Many more: every ID distinct, and once all are answered nothing times out.
  std::vector<Reply> more;
  for (int i = 0; i < 50; ++i) more.push_back(ask("4200@acme"));
  CHECK(ids.size() == 53);
  for (const auto& asked : more) {
    proto::MessageBuilder none(proto::MessageClass::error, sig::method::forwarded_lookup, asked.m.transaction_id);
    none.add_u32(sig::attr::protocol_version, 1);
    none.add_error(404, "no such extension");
    node.send(10, none.finish());
    CHECK(node.reply(1).code() == 404);
  }
  node.advance_ms(2 * timeout);
  node.tick();
  CHECK(node.received(1).empty());
  CHECK(node.core().counters().forward_timeouts == 2);
}

TEST_CASE("presence=contacts: the user's contacts look the user up and call, anyone else gets unknown, online or not (issue 11)") {
  Node node;
  two_online(node);  // alice on 1, bob on 2
  node.add_account("carol", "carol's password");
  REQUIRE(node.login(3, carol_nat, "carol", "carol's password").is_success());
  node.send(2, request(sig::method::profile_set, [](proto::MessageBuilder& b) {
    b.add_u32(sig::attr::presence_visibility, sig::presence_visibility::contacts);
    b.add_string(sig::attr::contacts, "alice");
  }));
  Reply set = node.reply(2);
  REQUIRE(set.is_success());
  CHECK(set.text(sig::attr::contacts) == "alice");

  node.send(1, lookup_request("bob"));
  CHECK(node.reply(1).is_success());
  node.send(3, lookup_request("bob"));
  Reply hidden = node.reply(3);
  node.send(3, lookup_request("nosuchuser"));
  Reply unknown = node.reply(3);
  CHECK(hidden.code() == 404);
  CHECK(hidden.reason() == unknown.reason());

  // A call would tell carol that bob is online: she gets what an unknown ID gets.
  node.send(3, call_request("bob"));
  CHECK(node.reply(3).code() == sig::error::unknown_user);
  CHECK(node.received(2).empty());
  node.send(1, call_request("bob"));
  CHECK(node.reply(1).is_success());
  CHECK(node.reply(2).m.method == sig::method::ring);

  auto txn = node.store().begin_read();
  Account stored = node.store().find(*txn, "bob")->value();
  CHECK(stored.contacts == std::vector<std::string>{"alice"});
}

TEST_CASE("the node's metrics text counts logins and lookups by result and names no user or address (issue 14)") {
  Node node;
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "correct horse").is_success());
  node.send(1, lookup_request("nobody"));
  CHECK(node.reply(1).code() == 404);
  node.send(1, lookup_request("alice"));
  CHECK(node.reply(1).is_success());

  NodeMetricsInput input;
  input.counters = node.core().counters();
  input.terminal_links = node.core().link_count();
  auto usage = node.core().voicemail_usage();
  REQUIRE(usage.has_value());
  input.voicemail = *usage;
  std::string text = node_metrics_text(input);
  CHECK(text.find("tsunagu_node_logins_total{result=\"ok\"} 1\n") != std::string::npos);
  CHECK(text.find("tsunagu_node_lookups_total{route=\"direct\",result=\"not_found\"} 1\n") != std::string::npos);
  CHECK(text.find("tsunagu_node_lookups_total{route=\"direct\",result=\"found\"} 1\n") != std::string::npos);
  CHECK(text.find("tsunagu_node_links{kind=\"terminal\"} 1\n") != std::string::npos);
  CHECK(text.find("tsunagu_node_voicemail_bytes 0\n") != std::string::npos);
  CHECK(text.find("alice") == std::string::npos);
  CHECK(text.find("nobody") == std::string::npos);
  CHECK(text.find(alice_nat.ip_string()) == std::string::npos);
}

// ---- audit events (docs/operator.md, "Audit log") ----

namespace {

// The events of one name, in order.
std::vector<audit::AuditEvent> events_named(const audit::RecordingAuditSink& sink, const std::string& name) {
  std::vector<audit::AuditEvent> out;
  for (const auto& e : sink.events)
    if (e.event == name) out.push_back(e);
  return out;
}

bool mentions(const audit::RecordingAuditSink& sink, std::string_view text) {
  for (const auto& e : sink.events)
    for (const auto& [key, value] : e.fields)
      if (value.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("audit: a login is one event with its result, user and source, never the password") {
  Node node;
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  node.add_account("alice", "correct horse");
  REQUIRE(node.login(1, alice_nat, "alice", "wrong horse").code() == 401);
  REQUIRE(node.login(2, alice_nat, "alice", "correct horse").is_success());
  auto logins = events_named(sink, "login");
  REQUIRE(logins.size() == 2);
  CHECK(audit::format_audit_line(logins[0]) == "event=login result=failed user=alice source=198.51.100.9:40000");
  CHECK(audit::format_audit_line(logins[1]) ==
        "event=login result=ok user=alice source=198.51.100.9:40000 role=presence");
  CHECK_FALSE(mentions(sink, "horse"));
}

TEST_CASE("audit: a presence login's event comes after the commit, a query login's at once") {
  Node node;
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  node.add_account("alice", "correct horse");
  node.open(1, alice_nat);
  node.deliver(1, login_request("alice", "correct horse"));
  node.turn();
  node.finish_jobs();
  CHECK(events_named(sink, "login").empty());  // checked, not yet durable
  node.turn();
  CHECK(events_named(sink, "login").size() == 1);
  node.open(2, carol_nat);
  node.send(2, login_request("alice", "correct horse", {}, sig::link_role::query));
  auto logins = events_named(sink, "login");
  REQUIRE(logins.size() == 2);
  CHECK(logins[1].field("role") == "query");
  CHECK(logins[1].field("source") == "203.0.113.50:45000");
}

TEST_CASE("audit: logins refused by the limiter are 'limited' and unknown IDs are logged as typed, escaped") {
  Node node;
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  for (LinkId link = 1; link <= 8; ++link) node.login(link, alice_nat, "mallory", "guess " + std::to_string(link));
  auto logins = events_named(sink, "login");
  REQUIRE(logins.size() == 8);
  CHECK(logins.front().field("result") == "failed");
  CHECK(logins.back().field("result") == "limited");
  CHECK(std::count_if(logins.begin(), logins.end(), [](const auto& e) { return e.field("result") == "limited"; }) ==
        8 - LoginLimiter::Policy{}.per_pair_burst);
}

TEST_CASE("audit: a call is placed, rung, accepted and ended with its reason and durations") {
  Node node;
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  two_online(node);
  auto [id, ring] = ring_bob(node);
  node.advance_ms(2'500);
  node.send(2, ring_answer(ring, true));
  node.received(1);
  node.received(2);
  node.advance_ms(61'250);
  node.send(1, hangup_request(id));
  auto calls = events_named(sink, "call");
  REQUIRE(calls.size() == 4);
  CHECK(calls[0].field("state") == "placed");
  CHECK(calls[0].field("caller") == "alice");
  CHECK(calls[0].field("callee") == "bob");
  CHECK(calls[0].field("source") == "198.51.100.9:40000");
  CHECK(calls[0].field("call") == id);
  CHECK(calls[1].field("state") == "rung");
  CHECK(calls[1].field("via") == "direct");
  CHECK(calls[2].field("state") == "accepted");
  CHECK(audit::format_audit_line(calls[3]) == "event=call state=ended call=" + id +
                                                  " caller=alice callee=bob reason=hung_up code=" +
                                                  std::to_string(sig::error::hung_up) +
                                                  " duration_s=63.750 talk_s=61.250");
}

TEST_CASE("audit: an unanswered call ends no_answer with no talk time") {
  Node node;
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  two_online(node);
  ring_bob(node);
  node.advance_ms(uint64_t{test_settings().consent_timeout_s} * 1000 + 10);
  node.tick();
  auto calls = events_named(sink, "call");
  REQUIRE(calls.size() == 3);
  CHECK(calls[2].field("reason") == "no_answer");
  CHECK(calls[2].field("duration_s") == "30.010");
  CHECK_FALSE(calls[2].has("talk_s"));
}

TEST_CASE("audit: an agent link going up and down is an event each") {
  Node node;
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  enroll(node, "acme", {"acme"});
  connect_agent(node, 10, "acme", {"acme"});
  node.send(10, hello_request({"acme"}));  // a second hello is not a second link
  node.close(10);
  node.open(11, agent_addr);  // a link that never said hello was never up
  node.core().agent_link_ready(11, "acme", node.now());
  node.close(11);
  auto links = events_named(sink, "agent_link");
  REQUIRE(links.size() == 2);
  CHECK(audit::format_audit_line(links[0]) == "event=agent_link state=up agent=acme source=203.0.113.1:55000");
  CHECK(links[1].field("state") == "down");
}

TEST_CASE("audit: a core nobody listens to records nothing and runs as before") {
  Node node;
  node.add_account("alice", "correct horse");
  CHECK(node.login(1, alice_nat, "alice", "correct horse").is_success());
}

// ---- SCRAM logins (docs/protocol.md, login_begin; node_login.cpp) ----

namespace {

// A terminal's side of one SCRAM login, step by step.
struct ScramTerminal {
  std::string user, password, nonce = "terminal-nonce-0123456789";
  std::string server_first;
  std::optional<security::scram::ServerFirst> parsed;
  std::string auth;
  Bytes salted;

  Bytes begin() const {
    return request(sig::method::login_begin, [&](proto::MessageBuilder& b) {
      b.add_string(sig::attr::scram_client_first, security::scram::build_client_first(user, nonce));
    });
  }
  void take_server_first(const Reply& r) {
    REQUIRE(r.is_success());
    server_first = r.text(sig::attr::scram_server_first).value_or("");
    auto first = security::scram::parse_server_first(server_first);
    REQUIRE(first.has_value());
    parsed = *first;
  }
  Bytes finish(bool tamper = false, std::optional<std::string> other_nonce = std::nullopt) {
    salted = security::scram::salted_password(password, parsed->salt, parsed->iterations);
    std::string final_nonce = other_nonce.value_or(parsed->nonce);
    auth = security::scram::auth_message(security::scram::build_client_first_bare(user, nonce), server_first,
                                         security::scram::build_client_final_without_proof(final_nonce));
    Bytes proof = security::scram::client_proof(salted, auth);
    if (tamper) proof[5] ^= std::byte{0x20};
    return request(sig::method::login, [&](proto::MessageBuilder& b) {
      b.add_string(sig::attr::scram_client_final, security::scram::build_client_final(final_nonce, proof));
    });
  }
  bool node_proved_itself(const Reply& r) const {
    auto final_message = security::scram::parse_server_final(r.text(sig::attr::scram_server_final).value_or(""));
    return final_message && security::scram::verify_server_signature(salted, auth, final_message->verifier);
  }
};

// An account as `user add` makes it now: SCRAM credentials.
void add_scram_account(Node& node, const std::string& user, const std::string& password) {
  Account a;
  a.user_id = user;
  a.password_hash = security::scram::stored_credentials(password, security::scram::min_iterations);
  auto txn = node.store().begin_write();
  REQUIRE(txn.has_value());
  REQUIRE(*node.store().create(*txn, a));
  REQUIRE(txn->commit().has_value());
}

std::string stored_hash(Node& node, const std::string& user) {
  auto txn = node.store().begin_read();
  auto account = node.store().find(*txn, user);
  REQUIRE(account.has_value());
  REQUIRE(account->has_value());
  return (*account)->password_hash;
}

Reply scram_login(Node& node, LinkId link, ScramTerminal& terminal, bool tamper = false) {
  node.send(link, terminal.begin());
  terminal.take_server_first(node.reply(link));
  node.deliver(link, terminal.finish(tamper));
  node.turn();
  CHECK(node.pending_jobs().empty());  // no password work on the node: a few HMACs on the loop
  return node.reply(link);
}

}  // namespace

TEST_CASE("scram login: the proof logs the link in, with no password job, and the node proves itself") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  node.open(1, alice_nat);
  ScramTerminal alice{"alice", "correct horse"};
  Reply ok = scram_login(node, 1, alice);
  REQUIRE(ok.is_success());
  CHECK(ok.address(proto::attr::xor_mapped_address) == alice_nat);
  CHECK(alice.node_proved_itself(ok));
  CHECK(alice.parsed->iterations == security::scram::min_iterations);
  CHECK(node.core().counters().logins == 1);
  CHECK(node.core().presence().find("alice") != nullptr);
  auto logins = events_named(sink, "login");
  REQUIRE(logins.size() == 1);
  CHECK(audit::format_audit_line(logins[0]) ==
        "event=login result=ok user=alice source=198.51.100.9:40000 role=presence");
  node.send(1, lookup_request("alice"));
  CHECK(node.reply(1).is_success());
}

TEST_CASE("scram login: a tampered proof, a wrong password, a foreign nonce or a login without login_begin fail") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  node.open(1, alice_nat);
  ScramTerminal tampered{"alice", "correct horse"};
  CHECK(scram_login(node, 1, tampered, true).code() == 401);
  ScramTerminal wrong{"alice", "correct horsE"};
  Reply refused = scram_login(node, 1, wrong);
  CHECK(refused.code() == 401);
  CHECK(refused.reason() == "Unauthenticated: wrong user ID or password");
  CHECK_FALSE(refused.has(sig::attr::scram_server_final));

  ScramTerminal other{"alice", "correct horse"};
  node.send(1, other.begin());
  other.take_server_first(node.reply(1));
  node.send(1, other.finish(false, other.parsed->nonce + "x"));
  CHECK(node.reply(1).code() == 400);
  // The exchange was used up by that attempt: a proof needs a fresh login_begin.
  node.send(1, other.finish());
  CHECK(node.reply(1).code() == 400);
  CHECK(node.core().counters().failed_logins == 2);
  CHECK(node.core().counters().logins == 0);
}

TEST_CASE("scram login: an unknown ID gets a salt stable across asks and restarts, shaped like an account's, then 401") {
  TempDir shared;
  std::string first_salt;
  for (int run = 0; run < 2; ++run) {
    auto store = AccountStore::open(shared.path, uint64_t{32} << 20);
    REQUIRE(store.has_value());
    NodeCore core(**store, test_settings());
    core.link_opened(1, alice_nat, Now{1000, 1'700'000'000});
    ScramTerminal ghost{"nobody", "correct horse"};
    for (int ask = 0; ask < 2; ++ask) {
      core.message(1, ghost.begin(), Now{1000, 1'700'000'000});
      core.commit_turn();
      auto actions = core.take_actions();
      REQUIRE(actions.size() == 1);
      auto decoded = proto::decode(actions[0].message);
      REQUIRE(decoded.has_value());
      Reply r{std::make_shared<const Bytes>(actions[0].message), decoded->message};
      ghost.take_server_first(r);
      std::string salt = security::base64_encode(ghost.parsed->salt);
      CHECK(ghost.parsed->salt.size() == security::scram::salt_size);
      CHECK(ghost.parsed->iterations == security::scram::min_iterations);
      if (first_salt.empty()) first_salt = salt;
      CHECK(salt == first_salt);
    }
  }
  Node node;
  node.open(1, alice_nat);
  ScramTerminal ghost{"nobody", "correct horse"};
  Reply refused = scram_login(node, 1, ghost);
  CHECK(refused.code() == 401);
  CHECK(refused.reason() == "Unauthenticated: wrong user ID or password");
  // Another ID, another salt.
  ScramTerminal other{"nobody2", "x"};
  node.send(1, other.begin());
  other.take_server_first(node.reply(1));
  CHECK(other.parsed->salt != ghost.parsed->salt);
}

TEST_CASE("scram login: failed proofs count against the login limiter like wrong passwords") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  node.open(1, alice_nat);
  for (int i = 0; i < 5; ++i) {
    ScramTerminal wrong{"alice", "wrong horse"};
    CHECK(scram_login(node, 1, wrong).code() == 401);
  }
  ScramTerminal right{"alice", "correct horse"};
  node.send(1, right.begin());
  Reply limited = node.reply(1);
  CHECK(limited.code() == 429);
  CHECK(limited.u32(sig::attr::retry_after) == 60);
  CHECK(node.core().counters().logins_limited == 1);
}

TEST_CASE("scram login: a scrypt account migrates on its next password login, keeping its generation; then SCRAM works") {
  Node node;
  node.add_account("alice", "correct horse");  // scrypt, as accounts were made before SCRAM
  REQUIRE(stored_hash(node, "alice").starts_with("$scrypt$"));
  node.open(1, alice_nat);
  // SCRAM first, as a terminal tries: the node cannot check it, and answers like an unknown ID.
  ScramTerminal early{"alice", "correct horse"};
  CHECK(scram_login(node, 1, early).code() == 401);
  // The one password login.
  node.send(1, login_request("alice", "correct horse"));
  Reply ok = node.reply(1);
  REQUIRE(ok.is_success());
  std::string migrated = stored_hash(node, "alice");
  auto credentials = security::scram::decode_credentials(migrated);
  REQUIRE(credentials.has_value());
  CHECK(credentials->iterations == security::scram::min_iterations);
  // The link's login still holds (a migration is not a password change).
  node.send(1, lookup_request("alice"));
  CHECK(node.reply(1).is_success());
  // And from now on SCRAM.
  node.open(2, alice_nat);
  ScramTerminal later{"alice", "correct horse"};
  Reply scram_ok = scram_login(node, 2, later);
  CHECK(scram_ok.is_success());
  CHECK(later.node_proved_itself(scram_ok));
  CHECK(later.parsed->salt == credentials->salt);
}

TEST_CASE("scram login: a password login of a migrated account is checked against its SCRAM credentials") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  std::string before = stored_hash(node, "alice");
  CHECK(node.login(1, alice_nat, "alice", "correct horse").is_success());
  CHECK(node.login(2, alice_nat, "alice", "wrong horse").code() == 401);
  CHECK(stored_hash(node, "alice") == before);
}

TEST_CASE("scram login: login_begin refuses a malformed client-first, an invalid ID and an agent's ID") {
  Node node;
  node.open(1, alice_nat);
  node.send(1, request(sig::method::login_begin, [](proto::MessageBuilder& b) {
    b.add_string(sig::attr::scram_client_first, "y,,n=alice,r=0123456789abcdef");
  }));
  CHECK(node.reply(1).code() == 400);
  node.send(1, request(sig::method::login_begin));
  CHECK(node.reply(1).code() == 400);
  ScramTerminal bad{"Not An ID!", "x"};
  node.send(1, bad.begin());
  CHECK(node.reply(1).code() == 422);
}

// ---- Session-resumption tokens (docs/security.md; login_resume in node_login.cpp) ----

namespace {

Bytes token_of(const Reply& r) {
  const proto::Attribute* a = r.m.find(sig::attr::resume_token);
  return a ? Bytes(a->value.begin(), a->value.end()) : Bytes{};
}

Bytes resume_request(const std::string& user, ByteView token, std::optional<uint32_t> role = std::nullopt) {
  return request(sig::method::login_resume, [&](proto::MessageBuilder& b) {
    b.add_string(sig::attr::user_id, user);
    b.add(sig::attr::resume_token, token);
    if (role) b.add_u32(sig::attr::link_role, *role);
  });
}

// A SCRAM login of `user` on a fresh `link`; its token.
Bytes scram_token(Node& node, LinkId link, const std::string& user, const std::string& password,
                  const SocketAddress& from = alice_nat) {
  node.open(link, from);
  ScramTerminal terminal{user, password};
  Reply ok = scram_login(node, link, terminal);
  REQUIRE(ok.is_success());
  return token_of(ok);
}

Reply resume(Node& node, LinkId link, const std::string& user, ByteView token, const SocketAddress& from = alice_nat) {
  node.open(link, from);
  node.send(link, resume_request(user, token));
  return node.reply(link);
}

}  // namespace

TEST_CASE("resume token: a login's token logs another link in with one request, no password work; audit method=token") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  node.open(1, alice_nat);
  ScramTerminal alice{"alice", "correct horse"};
  Reply first = scram_login(node, 1, alice);
  REQUIRE(first.is_success());
  Bytes token = token_of(first);
  CHECK(token.size() == security::resume_token::token_size);
  CHECK(first.u32(sig::attr::resume_token_lifetime) == 86'400);

  // The network changed: a new link from another address.
  Reply resumed = resume(node, 2, "alice", token, alice_laptop_nat);
  REQUIRE(resumed.is_success());
  CHECK(resumed.m.method == sig::method::login_resume);
  CHECK(node.pending_jobs().empty());
  CHECK(resumed.address(proto::attr::xor_mapped_address) == alice_laptop_nat);
  Bytes next = token_of(resumed);
  CHECK(next.size() == security::resume_token::token_size);
  CHECK(next != token);
  CHECK(node.core().counters().logins == 2);
  CHECK(node.core().counters().token_logins == 1);
  // Link 2 holds alice's presence now (link 1 was displaced).
  CHECK(node.core().presence().find("alice") != nullptr);
  node.send(2, lookup_request("alice"));
  Reply found = node.reply(2);
  CHECK(found.is_success());
  CHECK(found.address(sig::attr::observed_address) == alice_laptop_nat);
  auto logins = events_named(sink, "login");
  REQUIRE(logins.size() == 2);
  CHECK(audit::format_audit_line(logins[1]) ==
        "event=login result=ok user=alice source=198.51.100.33:41000 role=presence method=token");
  // A query link resumes too, and says so.
  node.open(3, alice_nat);
  node.send(3, resume_request("alice", next, sig::link_role::query));
  REQUIRE(node.reply(3).is_success());
  logins = events_named(sink, "login");
  CHECK(audit::format_audit_line(logins.back()) ==
        "event=login result=ok user=alice source=198.51.100.9:40000 role=query method=token");
}

TEST_CASE("resume token: a password change and a removal revoke the account's tokens; SCRAM with the new password works") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  Bytes before_change = scram_token(node, 1, "alice", "correct horse");
  Bytes second = token_of(resume(node, 2, "alice", before_change));
  REQUIRE_FALSE(second.empty());

  change_password(node, "alice", "battery staple");  // moves the account's generation on
  LinkId next_link = 20;
  for (const Bytes& token : {before_change, second}) {
    Reply refused = resume(node, next_link++, "alice", token);
    CHECK(refused.code() == 401);
    CHECK(refused.reason() == "Unauthenticated: resume token refused; log in again");
    CHECK_FALSE(refused.has(sig::attr::resume_token));
  }
  CHECK(node.core().counters().token_logins_refused == 2);
  auto logins = events_named(sink, "login");
  CHECK(audit::format_audit_line(logins.back()) ==
        "event=login result=failed user=alice source=198.51.100.9:40000 method=token reason=revoked");
  // The terminal's fallback on the same link: SCRAM (the new password is scrypt-hashed by
  // change_password here, so a password login), and its token works.
  node.send(next_link - 1, login_request("alice", "battery staple"));
  Reply relogged = node.reply(next_link - 1);
  REQUIRE(relogged.is_success());
  Bytes after_change = token_of(relogged);
  CHECK(resume(node, 4, "alice", after_change).is_success());

  // Removed, then the ID made again: the old account's tokens stay refused.
  remove_account(node, "alice");
  CHECK(resume(node, 5, "alice", after_change).code() == 401);
  add_scram_account(node, "alice", "correct horse");
  CHECK(resume(node, 6, "alice", after_change).code() == 401);
  logins = events_named(sink, "login");
  CHECK(audit::format_audit_line(logins.back()).ends_with("method=token reason=revoked"));
  CHECK(token_of(resume(node, 7, "alice", scram_token(node, 8, "alice", "correct horse"))).size() ==
        security::resume_token::token_size);
}

TEST_CASE("resume token: expired after passwords.resume_token_ttl; 0 issues none and takes none") {
  NodeSettings settings = test_settings();
  settings.resume_token_ttl_s = 60;
  Node node(settings);
  add_scram_account(node, "alice", "correct horse");
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  Bytes token = scram_token(node, 1, "alice", "correct horse");
  node.advance_ms(59'000);
  Bytes renewed = token_of(resume(node, 2, "alice", token));
  REQUIRE_FALSE(renewed.empty());
  node.advance_ms(1'000);
  CHECK(resume(node, 3, "alice", token).code() == 401);
  CHECK(audit::format_audit_line(events_named(sink, "login").back()).ends_with("method=token reason=expired"));
  // The token of the later login runs from that login.
  CHECK(resume(node, 4, "alice", renewed).is_success());

  settings.resume_token_ttl_s = 0;
  Node off(settings);
  add_scram_account(off, "alice", "correct horse");
  off.open(1, alice_nat);
  ScramTerminal alice{"alice", "correct horse"};
  Reply ok = scram_login(off, 1, alice);
  REQUIRE(ok.is_success());
  CHECK_FALSE(ok.has(sig::attr::resume_token));
  CHECK_FALSE(ok.has(sig::attr::resume_token_lifetime));
  Node other(test_settings());  // a token of a node that issues them: refused here all the same
  add_scram_account(other, "alice", "correct horse");
  CHECK(resume(off, 2, "alice", scram_token(other, 1, "alice", "correct horse")).code() == 401);
}

TEST_CASE("resume token: replayed for another account, tampered, or from another store: refused, never charged") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  add_scram_account(node, "bob", "battery staple");
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  Bytes alice_token = scram_token(node, 1, "alice", "correct horse");
  CHECK(resume(node, 2, "bob", alice_token, bob_nat).code() == 401);
  CHECK(audit::format_audit_line(events_named(sink, "login").back()) ==
        "event=login result=failed user=bob source=[2001:db8:1::99]:50000 method=token reason=forged");
  Bytes tampered = alice_token;
  tampered[3] ^= std::byte{1};
  CHECK(resume(node, 3, "alice", tampered).code() == 401);
  CHECK(resume(node, 4, "alice", ByteView(alice_token.data(), 20)).code() == 401);
  CHECK(audit::format_audit_line(events_named(sink, "login").back()).ends_with("reason=malformed"));
  Node elsewhere;  // another deployment: another store secret
  add_scram_account(elsewhere, "alice", "correct horse");
  CHECK(resume(node, 5, "alice", scram_token(elsewhere, 1, "alice", "correct horse")).code() == 401);
  // Many refusals, no limiter charge: bob's password login still goes through.
  for (LinkId link = 10; link < 20; ++link) CHECK(resume(node, link, "bob", alice_token, bob_nat).code() == 401);
  CHECK(node.core().counters().logins_limited == 0);
  node.open(30, bob_nat);
  ScramTerminal bob{"bob", "battery staple"};
  CHECK(scram_login(node, 30, bob).is_success());
  // And the request is checked: no token, no user ID, an invalid ID.
  node.open(31, bob_nat);
  node.send(31, request(sig::method::login_resume, [](proto::MessageBuilder& b) { b.add_string(sig::attr::user_id, "bob"); }));
  CHECK(node.reply(31).code() == 400);
  node.send(31, resume_request("Not An ID!", alice_token));
  CHECK(node.reply(31).code() == 422);
}

TEST_CASE("resume token: /metrics counts token logins and each refusal by its reason") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  add_scram_account(node, "bob", "battery staple");
  Bytes alice_token = scram_token(node, 1, "alice", "correct horse");
  Bytes renewed = token_of(resume(node, 2, "alice", alice_token));
  REQUIRE_FALSE(renewed.empty());
  CHECK(resume(node, 3, "bob", renewed, bob_nat).code() == 401);                    // forged: alice's, for bob
  CHECK(resume(node, 4, "alice", ByteView(renewed.data(), 20)).code() == 401);      // malformed
  CHECK(resume(node, 5, "alice", ByteView(renewed.data(), 20)).code() == 401);
  Bytes bob_token = scram_token(node, 6, "bob", "battery staple", bob_nat);
  node.advance_ms(86'400'000);
  CHECK(resume(node, 7, "bob", bob_token, bob_nat).code() == 401);                  // expired
  Bytes fresh = scram_token(node, 8, "alice", "correct horse");
  change_password(node, "alice", "new horse");
  CHECK(resume(node, 9, "alice", fresh).code() == 401);                             // revoked

  const NodeCounters& counters = node.core().counters();
  CHECK(counters.token_logins == 1);
  CHECK(counters.token_logins_refused == 5);
  NodeMetricsInput input;
  input.counters = counters;
  std::string text = node_metrics_text(input);
  CHECK(text.find("tsunagu_node_token_logins_total 1\n") != std::string::npos);
  CHECK(text.find("tsunagu_node_token_logins_refused_total{reason=\"forged\"} 1\n") != std::string::npos);
  CHECK(text.find("tsunagu_node_token_logins_refused_total{reason=\"malformed\"} 2\n") != std::string::npos);
  CHECK(text.find("tsunagu_node_token_logins_refused_total{reason=\"expired\"} 1\n") != std::string::npos);
  CHECK(text.find("tsunagu_node_token_logins_refused_total{reason=\"revoked\"} 1\n") != std::string::npos);
  CHECK(text.find("tsunagu_node_token_logins_refused_total{reason=\"disabled\"} 0\n") != std::string::npos);
  // Refusals are failed logins as well; the token login is an ok one.
  CHECK(text.find("tsunagu_node_logins_total{result=\"ok\"} 4\n") != std::string::npos);
  CHECK(text.find("tsunagu_node_logins_total{result=\"failed\"} 5\n") != std::string::npos);

  NodeSettings settings = test_settings();
  settings.resume_token_ttl_s = 0;
  Node off(settings);
  add_scram_account(off, "alice", "correct horse");
  CHECK(resume(off, 1, "alice", renewed).code() == 401);
  input.counters = off.core().counters();
  CHECK(node_metrics_text(input).find("tsunagu_node_token_logins_refused_total{reason=\"disabled\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("resume token: a token login pays back no failed guess to the login limiter") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  Bytes token = scram_token(node, 1, "alice", "correct horse");  // charged when it began, refunded on success
  node.open(2, alice_nat);
  for (int i = 0; i < 19; ++i) {
    node.send(2, login_request("guess" + std::to_string(i), "password1"));
    CHECK(node.reply(2).code() == 401);
  }
  // A holder of a valid token, from the same source, logs in again and again...
  for (LinkId link = 10; link < 13; ++link) CHECK(resume(node, link, "alice", token).is_success());
  // ...and still has one guess left of the source's 20, not four.
  node.send(2, login_request("guess-19", "password1"));
  CHECK(node.reply(2).code() == 401);
  node.send(2, login_request("guess-20", "password1"));
  CHECK(node.reply(2).code() == 429);
}

namespace {
// A sink that says it would write nothing (a daemon at --log-level warn) and counts what it is given anyway.
class DisabledAuditSink final : public audit::AuditSink {
 public:
  void record(const audit::AuditEvent&) override { ++recorded; }
  bool enabled() const override { return false; }
  int recorded = 0;
};
}  // namespace

TEST_CASE("audit: logins build no event for a sink that would drop it, and still log in and count") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  DisabledAuditSink sink;
  node.core().set_audit_sink(sink);
  Bytes token = scram_token(node, 1, "alice", "correct horse");                          // presence, after commit
  CHECK(resume(node, 2, "alice", token).is_success());                                  // token, presence
  node.open(3, alice_nat);
  node.send(3, resume_request("alice", token_of(resume(node, 4, "alice", token)), sig::link_role::query));
  CHECK(node.reply(3).is_success());                                                     // token, query
  CHECK(resume(node, 5, "alice", ByteView(token.data(), 20)).code() == 401);            // refused
  CHECK(node.core().counters().logins == 4);
  CHECK(node.core().counters().token_logins == 3);
  CHECK(sink.recorded == 0);
}

// Reload (SIGHUP; rendezvous/node_reload.cpp, issue 17).

TEST_CASE("reload: registration opened by reload_settings holds from the next message, on the same link") {
  Node node;
  node.open(1, alice_nat);
  node.send(1, register_request("alice", "correct horse"));
  CHECK(node.reply(1).code() == 403);

  NodeSettings next = test_settings();
  next.open_registration = true;
  CHECK(node.core().reload_settings(next).empty());
  node.send(1, register_request("alice", "correct horse"));
  CHECK(node.reply(1).is_success());
  CHECK(node.core().counters().registrations == 1);
}

TEST_CASE("reload: settings built into objects at start keep their values and are reported") {
  Node node;
  NodeSettings next = test_settings();
  next.keepalive_interval_s = 30;
  next.password_hashing.log2_n = 12;
  next.max_ringing_per_user = 1;
  auto need_restart = node.core().reload_settings(next);
  CHECK(need_restart == std::vector<std::string>{"presence.keepalive_interval", "passwords.scrypt_log2_n"});
  CHECK(node.core().settings().keepalive_interval_s == 15);
  CHECK(node.core().settings().password_hashing.log2_n == fast_hashing.log2_n);
  CHECK(node.core().settings().max_ringing_per_user == 1);
}

TEST_CASE("scram login: a terminal's password fallback after a failed proof is the same attempt, charged once") {
  Node node;
  add_scram_account(node, "alice", "correct horse");
  node.open(1, alice_nat);
  // Three mistyped passwords, each tried as SCRAM and then, as terminals do
  // for accounts not migrated yet, as a password login on the same link.
  for (int attempt = 0; attempt < 3; ++attempt) {
    ScramTerminal typo{"alice", "correct hose"};
    CHECK(scram_login(node, 1, typo).code() == 401);
    node.send(1, login_request("alice", "correct hose"));
    CHECK(node.reply(1).code() == 401);
  }
  // Charged three times, not six: the right password still logs in.
  ScramTerminal right{"alice", "correct horse"};
  CHECK(scram_login(node, 1, right).is_success());

  // A different password in the "fallback" is a second guess and is charged:
  // five charges after three rounds on another account.
  add_scram_account(node, "bob", "battery staple");
  node.open(2, alice_nat);
  for (int attempt = 0; attempt < 2; ++attempt) {
    ScramTerminal guess{"bob", "guess " + std::to_string(attempt)};
    CHECK(scram_login(node, 2, guess).code() == 401);
    node.send(2, login_request("bob", "other guess " + std::to_string(attempt)));
    CHECK(node.reply(2).code() == 401);
  }
  ScramTerminal fifth{"bob", "guess 5"};
  CHECK(scram_login(node, 2, fifth).code() == 401);
  ScramTerminal right_bob{"bob", "battery staple"};
  node.send(2, right_bob.begin());
  CHECK(node.reply(2).code() == 429);
}
