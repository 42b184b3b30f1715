// NodeCore's voicemail and profile handlers, driven the way node_daemon.cpp
// drives them: a stored message and a profile change are acknowledged only
// after commit_turn() (the group commit), never before.
#include <doctest/doctest.h>
#include <lmdb.h>
#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <functional>
#include <memory>

#include "proto/signalling.hpp"
#include "rendezvous/node_core.hpp"
#include "security/passwords.hpp"
#include "security/random.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
namespace sig = tsunagu::proto;

namespace {

const security::ScryptParameters fast_hashing{10, 8, 1};

struct Fixture {
  std::string dir;
  std::unique_ptr<AccountStore> store;
  std::unique_ptr<NodeCore> core;
  Now now{1000, 1'800'000'000};

  explicit Fixture(NodeSettings settings = {}) {
    char tmpl[] = "/tmp/tsunagu-node-vm-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    auto opened = AccountStore::open(dir, uint64_t{32} << 20);
    REQUIRE(opened.has_value());
    store = std::move(*opened);
    settings.password_hashing = fast_hashing;
    settings.scram_iterations = security::scram::min_iterations;
    core = std::make_unique<NodeCore>(*store, std::move(settings));
  }
  ~Fixture() {
    core.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }

  void add(const std::string& user, uint32_t services) {
    Account a;
    a.user_id = user;
    a.password_hash = security::hash_password("password-123", fast_hashing);
    a.services = services;
    auto txn = store->begin_write();
    REQUIRE(*store->create(*txn, a));
    REQUIRE(txn->commit().has_value());
  }

  // Delivers a request; returns the replies released before and after the commit.
  struct Exchange {
    std::vector<proto::Message> before, after;  // replies released before and after the commit
  };
  Exchange exchange(
      LinkId link, uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill) {
    deliver(link, method, fill);
    auto before = messages(core->take_actions());
    core->commit_turn();
    auto after = messages(core->take_actions());
    return Exchange{before, after};
  }

  // Delivers a request without ending the loop turn.
  void deliver(LinkId link, uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill) {
    proto::TransactionId id;
    security::random_bytes(id.bytes);
    proto::MessageBuilder b(proto::MessageClass::request, method, id);
    b.add_u32(sig::attr::protocol_version, sig::protocol_version);
    fill(b);
    Bytes bytes = b.finish();
    core->message(link, bytes, now);
  }

  void login(LinkId link, const std::string& user) {
    core->link_opened(link, proto::SocketAddress::v4({127, 0, 0, 1}, static_cast<uint16_t>(40000 + link)), now);
    exchange(link, sig::method::login, [&](proto::MessageBuilder& b) {
      b.add_string(sig::attr::user_id, user);
      b.add_string(sig::attr::password, "password-123");
      b.add_u32(sig::attr::link_role, sig::link_role::query);
    });
    for (const auto& job : core->take_password_jobs()) {
      core->password_job_done(run_password_job(job), now);
    }
    core->commit_turn();
    auto replies = messages(core->take_actions());
    REQUIRE(replies.size() == 1);
    REQUIRE(replies[0].message_class == proto::MessageClass::success);
  }

  std::vector<proto::Message> messages(std::vector<NodeAction> actions) {
    std::vector<proto::Message> out;
    for (auto& a : actions) {
      if (a.kind != NodeAction::Kind::send) continue;
      kept.push_back(std::make_shared<Bytes>(std::move(a.message)));
      auto decoded = proto::decode(*kept.back());
      REQUIRE(decoded.has_value());
      out.push_back(decoded->message);
    }
    return out;
  }
  std::vector<std::shared_ptr<Bytes>> kept;  // decoded messages point into these
};

uint16_t code_of(const proto::Message& m) {
  const auto* a = m.find(proto::attr::error_code);
  return a ? proto::read_error_code(*a)->code : 0;
}

}  // namespace

TEST_CASE("voicemail: the upload is acknowledged only after the commit, then listed and fetched") {
  Fixture f;
  f.add("alice", 0);
  f.add("bob", sig::service_flag::voicemail);
  f.login(1, "alice");
  Bytes message(10'000);
  for (size_t i = 0; i < message.size(); ++i) message[i] = std::byte(i % 251);
  auto x_b0 = f.exchange(1, sig::method::voicemail_begin, [&](proto::MessageBuilder& b) {
    b.add_string(sig::attr::user_id, "bob");
    b.add_u64(sig::attr::voicemail_size, message.size());
  });
  REQUIRE(x_b0.before.size() == 1);
  REQUIRE(x_b0.before[0].message_class == proto::MessageClass::success);
  uint32_t upload = *proto::read_u32(*x_b0.before[0].find(sig::attr::voicemail_upload));
  for (size_t at = 0; at < message.size(); at += 8192) {
    auto x_c0 = f.exchange(1, sig::method::voicemail_chunk, [&](proto::MessageBuilder& b) {
      b.add_u32(sig::attr::voicemail_upload, upload);
      b.add_u64(sig::attr::voicemail_offset, at);
      b.add(sig::attr::voicemail_data, ByteView(message).subspan(at, std::min<size_t>(8192, message.size() - at)));
    });
    REQUIRE(x_c0.before.size() == 1);
    CHECK(x_c0.before[0].message_class == proto::MessageClass::success);
  }
  auto x_done = f.exchange(1, sig::method::voicemail_finish,
                                    [&](proto::MessageBuilder& b) { b.add_u32(sig::attr::voicemail_upload, upload); });
  CHECK(x_done.before.empty());  // nothing before the commit
  REQUIRE(x_done.after.size() == 1);
  CHECK(x_done.after[0].message_class == proto::MessageClass::success);
  CHECK(proto::read_u64(*x_done.after[0].find(sig::attr::voicemail_id)) == 1u);

  f.login(2, "bob");
  auto x_list = f.exchange(2, sig::method::voicemail_list, [](proto::MessageBuilder&) {});
  REQUIRE(x_list.before.size() == 1);
  auto entries = x_list.before[0].find_all(sig::attr::voicemail_entry);
  REQUIRE(entries.size() == 1);
  CHECK(proto::decode_voicemail_entry(entries[0]->value)->caller == "alice");
  auto x_fetch = f.exchange(2, sig::method::voicemail_fetch, [](proto::MessageBuilder& b) {
    b.add_u64(sig::attr::voicemail_id, 1);
    b.add_u64(sig::attr::voicemail_offset, 8192);
  });
  REQUIRE(x_fetch.before.size() == 1);
  auto data = x_fetch.before[0].find(sig::attr::voicemail_data)->value;
  CHECK(std::equal(data.begin(), data.end(), message.begin() + 8192, message.end()));
  auto x_d0 = f.exchange(2, sig::method::voicemail_delete,
                                  [](proto::MessageBuilder& b) { b.add_u64(sig::attr::voicemail_id, 1); });
  CHECK(x_d0.before.empty());
  REQUIRE(x_d0.after.size() == 1);
  CHECK(x_d0.after[0].message_class == proto::MessageClass::success);
  auto x_again = f.exchange(2, sig::method::voicemail_delete,
                                [](proto::MessageBuilder& b) { b.add_u64(sig::attr::voicemail_id, 1); });
  REQUIRE(x_again.before.size() == 1);
  CHECK(code_of(x_again.before[0]) == sig::error::not_found);
}

TEST_CASE("voicemail: size, quota and service are checked before any byte is sent") {
  NodeSettings settings;
  settings.voicemail_max_message_bytes = 1000;
  settings.voicemail_quota_bytes = 1500;
  Fixture f(settings);
  f.add("alice", 0);
  f.add("bob", sig::service_flag::voicemail);
  f.login(1, "alice");
  auto begin = [&](const std::string& to, uint64_t size) {
    auto x_r = f.exchange(1, sig::method::voicemail_begin, [&](proto::MessageBuilder& b) {
      b.add_string(sig::attr::user_id, to);
      b.add_u64(sig::attr::voicemail_size, size);
    });
    REQUIRE(x_r.before.size() == 1);
    return code_of(x_r.before[0]);
  };
  CHECK(begin("bob", 1001) == sig::error::too_large);
  CHECK(begin("alice", 10) == sig::error::forbidden);  // no voicemail service
  CHECK(begin("nobody", 10) == sig::error::unknown_user);
  CHECK(begin("4106@acme", 10) == sig::error::unknown_user);  // no agent serves acme here
  CHECK(begin("bob", 0) == sig::error::bad_request);
  CHECK(begin("bob", 1000) == 0);
  CHECK(begin("bob", 600) == sig::error::over_quota);  // 1000 in progress + 600 > 1500
}

// --- issue 11 §2: limits that add up across mailboxes, links and time ------

namespace {

// voicemail_begin; the error code (0: success) and the upload ID.
std::pair<uint16_t, uint32_t> begin_upload(Fixture& f, LinkId link, const std::string& to, uint64_t size) {
  auto x = f.exchange(link, sig::method::voicemail_begin, [&](proto::MessageBuilder& b) {
    b.add_string(sig::attr::user_id, to);
    b.add_u64(sig::attr::voicemail_size, size);
  });
  REQUIRE(x.before.size() == 1);
  const auto* id = x.before[0].find(sig::attr::voicemail_upload);
  return {code_of(x.before[0]), id ? *proto::read_u32(*id) : 0};
}

uint16_t chunk(Fixture& f, LinkId link, uint32_t upload, uint64_t at, size_t size) {
  Bytes data(size, std::byte{7});
  auto x = f.exchange(link, sig::method::voicemail_chunk, [&](proto::MessageBuilder& b) {
    b.add_u32(sig::attr::voicemail_upload, upload);
    b.add_u64(sig::attr::voicemail_offset, at);
    b.add(sig::attr::voicemail_data, data);
  });
  REQUIRE(x.before.size() == 1);
  return code_of(x.before[0]);
}

// A whole message of `size` (<= 8192) bytes; the code of the step that failed, or 0.
uint16_t leave_message(Fixture& f, LinkId link, const std::string& to, uint64_t size) {
  auto [code, upload] = begin_upload(f, link, to, size);
  if (code != 0) return code;
  if (uint16_t c = chunk(f, link, upload, 0, size); c != 0) return c;
  auto x = f.exchange(link, sig::method::voicemail_finish,
                      [&](proto::MessageBuilder& b) { b.add_u32(sig::attr::voicemail_upload, upload); });
  const auto& replies = x.after.empty() ? x.before : x.after;
  REQUIRE(replies.size() == 1);
  return code_of(replies[0]);
}

}  // namespace

TEST_CASE("voicemail: one sender's messages per day are capped across all mailboxes (429 until the next day)") {
  NodeSettings settings;
  settings.voicemail_sender_messages_per_day = 3;
  Fixture f(settings);
  f.add("alice", 0);
  for (const char* user : {"bob", "carol", "dave", "erin"}) f.add(user, sig::service_flag::voicemail);
  f.login(1, "alice");
  CHECK(leave_message(f, 1, "bob", 100) == 0);
  CHECK(leave_message(f, 1, "carol", 100) == 0);
  CHECK(leave_message(f, 1, "dave", 100) == 0);
  auto x = f.exchange(1, sig::method::voicemail_begin, [&](proto::MessageBuilder& b) {
    b.add_string(sig::attr::user_id, "erin");
    b.add_u64(sig::attr::voicemail_size, 100);
  });
  REQUIRE(x.before.size() == 1);
  CHECK(code_of(x.before[0]) == sig::error::too_many_attempts);
  auto wait = proto::read_u32(*x.before[0].find(sig::attr::retry_after));
  CHECK(*wait > 0);
  CHECK(*wait <= 86400);
  CHECK(f.core->counters().voicemails_refused_sender == 1);
  f.login(2, "bob");  // another sender is not affected
  CHECK(leave_message(f, 2, "erin", 100) == 0);
  f.now.unix_s += *wait;
  f.now.mono_ms += 1000;
  CHECK(leave_message(f, 1, "erin", 100) == 0);
}

TEST_CASE("voicemail: the store quota refuses with 507 before the map fills, and profile writes still work") {
  NodeSettings settings;
  settings.voicemail_store_quota_bytes = 2500;
  Fixture f(settings);
  f.add("alice", 0);
  for (const char* user : {"bob", "carol", "dave"}) f.add(user, sig::service_flag::voicemail);
  f.login(1, "alice");
  CHECK(leave_message(f, 1, "bob", 1000) == 0);
  CHECK(leave_message(f, 1, "carol", 1000) == 0);
  CHECK(leave_message(f, 1, "dave", 1000) == sig::error::over_quota);  // each mailbox has room; the store has not
  CHECK(f.core->counters().voicemails_refused_store == 1);
  auto x = f.exchange(1, sig::method::profile_set,
                      [](proto::MessageBuilder& b) { b.add_string(sig::attr::display_name, "Alice"); });
  REQUIRE(x.after.size() == 1);
  CHECK(x.after[0].message_class == proto::MessageClass::success);
}

TEST_CASE("voicemail: one sender may have only so many uploads in progress, across links") {
  NodeSettings settings;
  settings.voicemail_uploads_per_sender = 2;
  Fixture f(settings);
  f.add("alice", 0);
  f.add("bob", sig::service_flag::voicemail);
  f.login(1, "alice");
  f.login(2, "alice");
  f.login(3, "alice");
  CHECK(begin_upload(f, 1, "bob", 100).first == 0);
  CHECK(begin_upload(f, 2, "bob", 100).first == 0);
  CHECK(begin_upload(f, 3, "bob", 100).first == sig::error::too_many_attempts);
  CHECK(f.core->counters().uploads_refused_per_sender == 1);
}

TEST_CASE("voicemail: an upload kept alive by one-byte chunks is dropped at upload_max_seconds, freeing the budget") {
  NodeSettings settings;
  settings.voicemail_max_message_bytes = 1000;
  settings.voicemail_pending_bytes = 1000;  // room for one upload in progress, node-wide
  settings.voicemail_upload_idle_s = 30;
  settings.voicemail_upload_max_s = 60;
  Fixture f(settings);
  f.add("alice", 0);
  f.add("mallory", 0);
  f.add("bob", sig::service_flag::voicemail);
  f.login(1, "mallory");
  f.login(2, "alice");
  auto [code, upload] = begin_upload(f, 1, "bob", 1000);
  REQUIRE(code == 0);
  for (uint64_t at = 0; at < 3; ++at) {  // a byte every 20 s: never idle for 30 s
    f.now.mono_ms += 20'000;
    f.core->tick(f.now);
    CAPTURE(at);
    REQUIRE(chunk(f, 1, upload, at, 1) == 0);
  }
  CHECK(begin_upload(f, 2, "bob", 1000).first == sig::error::unavailable);  // the budget is held
  f.now.mono_ms += 1'000;  // 61 s after the begin
  f.core->tick(f.now);
  CHECK(f.core->counters().uploads_dropped == 1);
  CHECK(chunk(f, 1, upload, 3, 1) == sig::error::not_found);
  CHECK(begin_upload(f, 2, "bob", 1000).first == 0);
}

TEST_CASE("voicemail: an upload with no chunk for upload_idle_timeout is dropped") {
  NodeSettings settings;
  settings.voicemail_upload_idle_s = 30;
  Fixture f(settings);
  f.add("alice", 0);
  f.add("bob", sig::service_flag::voicemail);
  f.login(1, "alice");
  auto [code, upload] = begin_upload(f, 1, "bob", 100);
  REQUIRE(code == 0);
  f.now.mono_ms += 31'000;
  CHECK(chunk(f, 1, upload, 0, 1) == sig::error::not_found);  // even before the sweep ran
  CHECK(f.core->counters().uploads_dropped == 1);
}

TEST_CASE("voicemail: while uploads are in progress the node asks for a tick every second to drop stale ones") {
  NodeSettings settings;
  settings.voicemail_upload_idle_s = 5;
  Fixture f(settings);
  f.add("alice", 0);
  f.add("bob", sig::service_flag::voicemail);
  f.login(1, "alice");
  REQUIRE(begin_upload(f, 1, "bob", 100).first == 0);
  for (int second = 0; second < 6; ++second) {  // the daemon's timer: tick at each deadline
    auto deadline = f.core->next_deadline();
    REQUIRE(deadline.has_value());
    REQUIRE(*deadline <= f.now.mono_ms + 1000);
    f.now.mono_ms = *deadline;
    f.core->tick(f.now);
  }
  CHECK(f.core->counters().uploads_dropped == 1);
  CHECK(begin_upload(f, 1, "bob", 100).first == 0);
}

TEST_CASE("profile_set: answered after the commit; the search sees the change") {
  Fixture f;
  f.add("alice", 0);
  f.login(1, "alice");
  auto x_done = f.exchange(1, sig::method::profile_set, [](proto::MessageBuilder& b) {
    b.add_string(sig::attr::display_name, "Alice Smith");
    b.add_u32(sig::attr::publish, 1);
  });
  CHECK(x_done.before.empty());
  REQUIRE(x_done.after.size() == 1);
  CHECK(x_done.after[0].message_class == proto::MessageClass::success);
  auto x_found = f.exchange(1, sig::method::directory_search,
                                    [](proto::MessageBuilder& b) { b.add_string(sig::attr::directory_query, "SMITH"); });
  REQUIRE(x_found.before.size() == 1);
  auto entries = x_found.before[0].find_all(sig::attr::directory_entry);
  REQUIRE(entries.size() == 1);
  CHECK(proto::decode_directory_entry(entries[0]->value)->user_id == "alice");
  auto x_bad = f.exchange(1, sig::method::profile_set,
                                   [](proto::MessageBuilder& b) { b.add_string(sig::attr::phone, "call me"); });
  REQUIRE(x_bad.before.size() == 1);
  CHECK(code_of(x_bad.before[0]) == sig::error::bad_request);
}

TEST_CASE("directory_search: a page of the largest entries stays under the message limit and skips nothing") {
  Fixture f;
  f.add("asker", 0);
  std::vector<std::string> ids;
  {
    auto txn = f.store->begin_write();
    for (int i = 0; i < 60; ++i) {
      Account a;
      std::string n = std::to_string(100 + i);
      a.user_id = std::string(61, 'u') + n + "@" + std::string(63, 'd');  // 128 bytes
      a.display_name = "Big " + std::string(124, 'N');
      a.category = std::string(64, 'c');
      a.phone = std::string(32, '1');
      a.publish = true;
      ids.push_back(a.user_id);
      REQUIRE(*f.store->create(*txn, a));
    }
    REQUIRE(txn->commit().has_value());
  }
  f.login(1, "asker");
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    auto x = f.exchange(1, sig::method::directory_search, [&](proto::MessageBuilder& b) {
      b.add_string(sig::attr::directory_query, "big");
      b.add_u32(sig::attr::directory_limit, 50);
      if (!cursor.empty()) b.add_string(sig::attr::directory_cursor, cursor);
    });
    REQUIRE(x.before.size() == 1);
    CHECK(f.kept.back()->size() <= proto::default_max_message_size);
    for (const auto* a : x.before[0].find_all(sig::attr::directory_entry))
      seen.push_back(proto::decode_directory_entry(a->value)->user_id);
    const auto* next = x.before[0].find(sig::attr::directory_cursor);
    if (next == nullptr) break;
    cursor = std::string(proto::read_string(*next));
  }
  CHECK(seen == ids);
}

// --- storage failures (issue 12): the fault seam in storage::Environment ----
// makes a chosen commit or write fail as LMDB would; what a client sees and
// what stays in the store are checked through the group commit.

namespace {

size_t listed_messages(Fixture& f, const std::string& mailbox) {
  auto txn = f.store->begin_read();
  REQUIRE(txn.has_value());
  VoicemailStore store = *VoicemailStore::open(f.store->environment());
  auto usage = store.usage(*txn, mailbox);
  REQUIRE(usage.has_value());
  return usage->messages;
}

std::string display_name_of(Fixture& f, const std::string& user) {
  auto txn = f.store->begin_read();
  auto found = f.store->find(*txn, user);
  REQUIRE(found.has_value());
  REQUIRE(found->has_value());
  return (*found)->display_name;
}

std::string reason_of(const proto::Message& m) {
  const auto* a = m.find(proto::attr::error_code);
  return a ? std::string(proto::read_error_code(*a)->reason) : std::string();
}

storage::FaultPlan& faults(Fixture& f) { return f.store->environment().faults(); }

}  // namespace

TEST_CASE("a voicemail whose group commit fails gets 503 after the commit, nothing of it is stored, and a retry succeeds") {
  Fixture f;
  f.add("alice", 0);
  f.add("bob", sig::service_flag::voicemail);
  f.login(1, "alice");
  auto [code, upload] = begin_upload(f, 1, "bob", 3000);
  REQUIRE(code == 0);
  REQUIRE(chunk(f, 1, upload, 0, 3000) == 0);
  faults(f).fail_commit(1, EIO);
  auto x = f.exchange(1, sig::method::voicemail_finish,
                      [&](proto::MessageBuilder& b) { b.add_u32(sig::attr::voicemail_upload, upload); });
  CHECK(x.before.empty());  // never acknowledged before the commit
  REQUIRE(x.after.size() == 1);
  CHECK(x.after[0].message_class == proto::MessageClass::error);
  CHECK(code_of(x.after[0]) == sig::error::unavailable);
  CHECK(reason_of(x.after[0]) == "Unavailable: storage error; the message was not stored");
  CHECK(listed_messages(f, "bob") == 0);
  const NodeCounters& counters = f.core->counters();
  CHECK(counters.commit_failures == 1);
  CHECK(counters.commit_failures_by_kind[static_cast<size_t>(storage::StoreErrc::io_error)] == 1);
  auto logged = f.core->take_storage_faults();
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].commit);
  CHECK(logged[0].replies_failed == 1);
  CHECK(logged[0].error.detail == "mdb_txn_commit: Input/output error");

  // The fault was one commit: the client's retry of the same message lands.
  CHECK(leave_message(f, 1, "bob", 3000) == 0);
  CHECK(listed_messages(f, "bob") == 1);
  CHECK(f.core->counters().commit_failures == 1);
}

TEST_CASE("a profile change whose commit finds the map full gets 507 and the old profile stays until space returns") {
  Fixture f;
  f.add("alice", 0);
  f.login(1, "alice");
  auto set_name = [&](const char* name) {
    return f.exchange(1, sig::method::profile_set,
                      [&](proto::MessageBuilder& b) { b.add_string(sig::attr::display_name, name); });
  };
  faults(f).fail_commit(1, MDB_MAP_FULL);
  auto refused = set_name("Alice");
  CHECK(refused.before.empty());
  REQUIRE(refused.after.size() == 1);
  CHECK(code_of(refused.after[0]) == sig::error::over_quota);
  CHECK(reason_of(refused.after[0]) == "Insufficient Storage: the node's storage is full; the profile was not changed");
  CHECK(display_name_of(f, "alice").empty());
  CHECK(f.core->counters().commit_failures_by_kind[static_cast<size_t>(storage::StoreErrc::map_full)] == 1);

  auto accepted = set_name("Alice");
  REQUIRE(accepted.after.size() == 1);
  CHECK(accepted.after[0].message_class == proto::MessageClass::success);
  CHECK(display_name_of(f, "alice") == "Alice");
}

TEST_CASE("a full disk in mid-turn fails every write of that group commit with 507, and both succeed once space returns") {
  Fixture f;
  f.add("alice", 0);
  f.add("bob", sig::service_flag::voicemail);
  f.add("carol", 0);
  f.login(1, "alice");
  f.login(2, "carol");
  auto [code, upload] = begin_upload(f, 1, "bob", 2000);
  REQUIRE(code == 0);
  REQUIRE(chunk(f, 1, upload, 0, 2000) == 0);

  // One loop turn: carol's profile change is written, then the disk fills
  // and alice's message cannot be; the commit of the turn fails for both.
  f.deliver(2, sig::method::profile_set, [](proto::MessageBuilder& b) { b.add_string(sig::attr::display_name, "Carol"); });
  faults(f).fail_writes(ENOSPC);
  f.deliver(1, sig::method::voicemail_finish, [&](proto::MessageBuilder& b) { b.add_u32(sig::attr::voicemail_upload, upload); });
  auto before = f.messages(f.core->take_actions());
  REQUIRE(before.size() == 1);  // alice's, at once: her write failed
  CHECK(code_of(before[0]) == sig::error::over_quota);
  f.core->commit_turn();
  auto after = f.messages(f.core->take_actions());
  REQUIRE(after.size() == 1);  // carol's, after the commit failed
  CHECK(code_of(after[0]) == sig::error::over_quota);
  CHECK(reason_of(after[0]).ends_with("the profile was not changed"));
  CHECK(display_name_of(f, "carol").empty());

  const NodeCounters& counters = f.core->counters();
  CHECK(counters.storage_errors[static_cast<size_t>(storage::StoreErrc::disk_full)] == 1);
  // The commit failed as `poisoned`; the cause counted and logged is the full disk.
  CHECK(counters.commit_failures_by_kind[static_cast<size_t>(storage::StoreErrc::disk_full)] == 1);
  CHECK(counters.commit_failures_by_kind[static_cast<size_t>(storage::StoreErrc::poisoned)] == 0);
  auto logged = f.core->take_storage_faults();
  REQUIRE(logged.size() == 2);
  CHECK(logged[0].method == sig::method::voicemail_finish);
  CHECK(logged[0].error.detail == "mdb_put: No space left on device");
  CHECK(logged[1].commit);
  CHECK(logged[1].error.code == storage::StoreErrc::disk_full);

  // Reads go on while the disk is full.
  auto listed = f.exchange(1, sig::method::voicemail_list, [](proto::MessageBuilder&) {});
  REQUIRE(listed.before.size() == 1);
  CHECK(listed.before[0].message_class == proto::MessageClass::success);

  faults(f).clear();
  CHECK(listed_messages(f, "bob") == 0);  // (opening the store to count commits, so only now)
  auto renamed = f.exchange(2, sig::method::profile_set,
                            [](proto::MessageBuilder& b) { b.add_string(sig::attr::display_name, "Carol"); });
  REQUIRE(renamed.after.size() == 1);
  CHECK(renamed.after[0].message_class == proto::MessageClass::success);
  CHECK(leave_message(f, 1, "bob", 2000) == 0);
  CHECK(display_name_of(f, "carol") == "Carol");
  CHECK(listed_messages(f, "bob") == 1);
}

TEST_CASE("NodeCore::open fails with the cause when its databases cannot be created, and succeeds after") {
  char tmpl[] = "/tmp/tsunagu-node-open-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  {
    auto store = AccountStore::open(dir, uint64_t{32} << 20);
    REQUIRE(store.has_value());
    (*store)->environment().faults().fail_writes(MDB_MAP_FULL);
    NodeSettings settings;
    settings.password_hashing = fast_hashing;
    settings.scram_iterations = security::scram::min_iterations;
    auto core = NodeCore::open(**store, settings);
    REQUIRE_FALSE(core.has_value());
    CHECK(core.error().code == storage::StoreErrc::map_full);
    CHECK(core.error().detail.find("MDB_MAP_FULL") != std::string::npos);
    (*store)->environment().faults().clear();
    auto again = NodeCore::open(**store, settings);
    REQUIRE(again.has_value());
    CHECK_FALSE((*again)->open_error().has_value());
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a failed voicemail retention sweep is counted and queued for the log, not silent") {
  NodeSettings settings;
  settings.voicemail_retention_days = 1;
  Fixture f(settings);
  f.add("alice", 0);
  f.add("bob", sig::service_flag::voicemail);
  f.login(1, "alice");
  REQUIRE(leave_message(f, 1, "bob", 100) == 0);
  f.core->take_storage_faults();
  f.now.unix_s += 3 * 86400;  // the message is past retention
  f.now.mono_ms += 3 * 86400 * 1000ull;
  faults(f).fail_writes(EIO);
  f.core->tick(f.now);
  f.core->commit_turn();
  auto logged = f.core->take_storage_faults();
  REQUIRE_FALSE(logged.empty());
  CHECK(logged[0].method == 0);
  CHECK_FALSE(logged[0].commit);
  CHECK(logged[0].error.code == storage::StoreErrc::io_error);
  CHECK(f.core->counters().storage_errors[static_cast<size_t>(storage::StoreErrc::io_error)] == 1);
  faults(f).clear();
  CHECK(listed_messages(f, "bob") == 1);  // still there: the sweep wrote nothing
}

TEST_CASE("voicemail: audit events for a message stored (after the commit), delivered once, and deleted") {
  Fixture f;
  audit::RecordingAuditSink sink;
  f.core->set_audit_sink(sink);
  f.add("alice", 0);
  f.add("bob", sig::service_flag::voicemail);
  f.login(1, "alice");
  CHECK(leave_message(f, 1, "bob", 100) == 0);
  f.login(2, "bob");
  std::vector<audit::AuditEvent> voicemail;
  for (const auto& e : sink.events)
    if (e.event == "voicemail") voicemail.push_back(e);
  REQUIRE(voicemail.size() == 1);
  CHECK(audit::format_audit_line(voicemail[0]) ==
        "event=voicemail action=stored result=ok owner=bob id=" + std::string(voicemail[0].field("id")) +
            " from=alice bytes=100");
  std::string id_text(voicemail[0].field("id"));
  uint64_t id = std::stoull(id_text);
  for (uint64_t offset : {uint64_t{0}, uint64_t{50}})
    f.exchange(2, sig::method::voicemail_fetch, [&](proto::MessageBuilder& b) {
      b.add_u64(sig::attr::voicemail_id, id);
      b.add_u64(sig::attr::voicemail_offset, offset);
    });
  f.exchange(2, sig::method::voicemail_delete, [&](proto::MessageBuilder& b) { b.add_u64(sig::attr::voicemail_id, id); });
  voicemail.clear();
  for (const auto& e : sink.events)
    if (e.event == "voicemail") voicemail.push_back(e);
  REQUIRE(voicemail.size() == 3);
  CHECK(audit::format_audit_line(voicemail[1]) ==
        "event=voicemail action=delivered owner=bob id=" + id_text + " from=alice to=user");
  CHECK(audit::format_audit_line(voicemail[2]) == "event=voicemail action=deleted result=ok owner=bob id=" + id_text);
}
