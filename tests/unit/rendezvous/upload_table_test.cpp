#include <doctest/doctest.h>

#include "rendezvous/upload_table.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;

namespace {
constexpr uint64_t idle_ms = 30'000;
constexpr uint64_t max_ms = 300'000;

VoicemailUpload upload(const std::string& caller, const std::string& callee, uint64_t size, uint64_t now_ms) {
  return VoicemailUpload{caller, callee, size, {}, now_ms, now_ms};
}
}  // namespace

TEST_CASE("upload table: IDs per table, never 0; sums by link, sender, mailbox, domain and node") {
  LocalUploadTable table(idle_ms, max_ms);
  CHECK(table.empty());
  uint32_t a = table.begin(1, upload("alice", "bob", 100, 0));
  uint32_t b = table.begin(1, upload("alice", "4106@acme", 200, 0));
  uint32_t c = table.begin(2, upload("carol", "4107@acme", 400, 0));
  uint32_t d = table.begin(3, upload("carol", "bob", 800, 0));
  CHECK(a != 0);
  CHECK(a != b);
  CHECK(b != c);
  CHECK(table.size() == 4);
  CHECK(table.on_link(1) == 2);
  CHECK(table.on_link(2) == 1);
  CHECK(table.on_link(9) == 0);
  CHECK(table.from_sender("alice") == PendingUploads{2, 300});
  CHECK(table.from_sender("carol") == PendingUploads{2, 1200});
  CHECK(table.to_mailbox("bob") == PendingUploads{2, 900});
  CHECK(table.to_mailbox("4106@acme") == PendingUploads{1, 200});
  CHECK(table.bytes_to_domain("acme") == 600);
  CHECK(table.bytes_to_domain("cme") == 0);  // a whole domain, not a suffix of one
  CHECK(table.bytes_to_domain("") == 0);
  CHECK(table.pending_bytes() == 1500);
  CHECK(table.find(1, c) == nullptr);  // an upload is found only on its own link
  REQUIRE(table.find(2, c) != nullptr);
  CHECK(table.find(3, d)->callee == "bob");
}

TEST_CASE("upload table: take and drop_link give the bytes back") {
  LocalUploadTable table(idle_ms, max_ms);
  uint32_t a = table.begin(1, upload("alice", "bob", 100, 0));
  table.begin(1, upload("alice", "bob", 200, 0));
  uint32_t c = table.begin(2, upload("carol", "bob", 400, 0));
  table.find(2, c)->data = Bytes(3, std::byte{7});
  auto taken = table.take(2, c);
  REQUIRE(taken.has_value());
  CHECK(taken->data.size() == 3);
  CHECK_FALSE(table.take(2, c).has_value());
  CHECK(table.pending_bytes() == 300);
  table.drop_link(1);
  CHECK(table.find(1, a) == nullptr);
  CHECK(table.empty());
  CHECK(table.pending_bytes() == 0);
}

TEST_CASE("upload table: idle past idle_ms or running past max_ms is expired and swept") {
  LocalUploadTable table(idle_ms, max_ms);
  uint32_t idle = table.begin(1, upload("alice", "bob", 100, 0));
  uint32_t busy = table.begin(2, upload("carol", "bob", 200, 0));
  CHECK_FALSE(table.expired(*table.find(1, idle), idle_ms));  // exactly idle_ms: not yet
  CHECK(table.expired(*table.find(1, idle), idle_ms + 1));
  CHECK(table.drop_expired(idle_ms) == 0);
  // The busy one sends a chunk every 20 s: kept until it runs too long.
  for (uint64_t t = 20'000; t <= max_ms; t += 20'000) {
    table.find(2, busy)->started_ms = t;
    table.drop_expired(t);
  }
  CHECK(table.find(1, idle) == nullptr);
  REQUIRE(table.find(2, busy) != nullptr);
  CHECK(table.pending_bytes() == 200);
  CHECK(table.drop_expired(max_ms + 1) == 1);
  CHECK(table.empty());
  CHECK(table.pending_bytes() == 0);
}
