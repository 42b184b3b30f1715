#include <doctest/doctest.h>

#include <vector>

#include "allocation/field_normalisation.hpp"
#include "allocation/lease_event_codec.hpp"
#include "allocation/spool_reader.hpp"
#include "captured_input.hpp"

using namespace tsunagu::alloc;

namespace {
LeaseEvent event_number(int i) {
  LeaseEvent e;
  e.source = ServerKind::isc_dhcpd;
  e.address = *parse_ip_address("10.99.0." + std::to_string(100 + i));
  e.mac = "02:0a:0b:0c:0d:0e";
  e.hostname = "ext-" + std::to_string(4100 + i);
  e.reported_at = 1795334000 + i;
  return e;
}

tsunagu::Bytes spool_of(int n, std::vector<size_t>* offsets = nullptr) {
  tsunagu::Bytes spool;
  for (int i = 0; i < n; ++i) {
    if (offsets != nullptr) offsets->push_back(spool.size());
    REQUIRE(encode_lease_event(event_number(i), spool));
  }
  return spool;
}

std::vector<LeaseEvent> replay(tsunagu::ByteView spool, SpoolReplayResult& result) {
  std::vector<LeaseEvent> events;
  result = replay_spool(spool, [&](const LeaseEvent& e) {
    events.push_back(e);
    return true;
  });
  return events;
}
}  // namespace

TEST_CASE("spool replay hands back every record in order") {
  tsunagu::Bytes spool = spool_of(5);
  SpoolReplayResult result;
  auto events = replay(spool, result);
  REQUIRE(events.size() == 5);
  for (int i = 0; i < 5; ++i) CHECK(events[static_cast<size_t>(i)] == event_number(i));
  CHECK(result.skipped_records == 0);
  CHECK(result.torn_tail_bytes == 0);
  CHECK(result.consumed == spool.size());
}

TEST_CASE("spool replay stops cleanly at a torn last record at every cut point") {
  std::vector<size_t> offsets;
  tsunagu::Bytes spool = spool_of(3, &offsets);
  for (size_t cut = offsets[2] + 1; cut < spool.size(); ++cut) {
    SpoolReplayResult result;
    auto events = replay(tsunagu::ByteView(spool).first(cut), result);
    CHECK(events.size() == 2);
    CHECK(result.skipped_records == 0);
    CHECK(result.torn_tail_bytes == cut - offsets[2]);
    CHECK(result.consumed == offsets[2]);
  }
}

TEST_CASE("spool replay skips a corrupted middle record and counts it") {
  std::vector<size_t> offsets;
  tsunagu::Bytes spool = spool_of(4, &offsets);
  spool[offsets[1] + 12] ^= std::byte{0xff};  // inside record 1's body: CRC fails
  SpoolReplayResult result;
  auto events = replay(spool, result);
  REQUIRE(events.size() == 3);
  CHECK(events[1] == event_number(2));
  CHECK(result.skipped_records == 1);
  CHECK(result.skipped_bytes == offsets[2] - offsets[1]);
  CHECK(result.torn_tail_bytes == 0);
}

TEST_CASE("spool replay resynchronises after a corrupted length field and garbage") {
  std::vector<size_t> offsets;
  tsunagu::Bytes spool = spool_of(3, &offsets);
  spool[offsets[1] + 5] = std::byte{0x03};  // length 0x03xx: over the limit
  tsunagu::Bytes garbage = {std::byte{1}, std::byte{2}, std::byte{3}};
  spool.insert(spool.begin(), garbage.begin(), garbage.end());
  SpoolReplayResult result;
  auto events = replay(spool, result);
  CHECK(events.size() == 2);
  CHECK(result.skipped_records == 2);
}

TEST_CASE("spool replay stops when the callback says so") {
  tsunagu::Bytes spool = spool_of(3);
  int seen = 0;
  auto result = replay_spool(spool, [&](const LeaseEvent&) { return ++seen < 2; });
  CHECK(seen == 2);
  CHECK(result.records == 2);
  CHECK(result.consumed < spool.size());
}

TEST_CASE("the fuzz seed spool (written by an independent encoder) replays five whole events and stops at the torn sixth") {
  std::string text = tsunagu::alloc::test::read_text("../../fuzz/allocation/lease_event_codec_corpus/spool-torn");
  SpoolReplayResult result;
  auto events = replay(tsunagu::as_bytes(text), result);
  CHECK(events.size() == 5);
  CHECK(result.torn_tail_bytes > 0);
  CHECK(result.skipped_records == 0);
  REQUIRE(events.size() >= 3);
  CHECK(events[2].client_id == "00:01:00:01:32:95:5c:3a:02:0a:0b:0c:0d:0e");
}
