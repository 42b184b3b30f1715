// Every parser on what the real servers produced (captured/, see capture.sh).
#include <doctest/doctest.h>

#include <malloc.h>

#include <cstdio>

#include "allocation/dnsmasq_hook_parser.hpp"
#include "allocation/dnsmasq_lease_file_parser.hpp"
#include "allocation/field_normalisation.hpp"
#include "allocation/isc_hook_parser.hpp"
#include "allocation/isc_lease_file_parser.hpp"
#include "allocation/kea_hook_parser.hpp"
#include "allocation/kea_lease_file_parser.hpp"
#include "captured_input.hpp"

using namespace tsunagu::alloc;
using tsunagu::alloc::test::CapturedCall;
using tsunagu::alloc::test::captured_calls;
using tsunagu::alloc::test::read_text;

// mallinfo2 does not see AddressSanitizer's heap (GCC says so by
// __SANITIZE_ADDRESS__, clang by __has_feature).
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_IS_ASAN 1
#endif
#endif
#ifndef HEAP_IS_ASAN
#define HEAP_IS_ASAN 0
#endif

namespace {
constexpr int64_t kNow = 1795334100;
std::string ip(const LeaseEvent& e) { return ip_to_string(e.address); }
}  // namespace

TEST_CASE("dnsmasq add from the capture is a grant with MAC, client-id, hostname and absolute expiry") {
  CapturedCall c("captured/dnsmasq/calls/001-add");
  auto events = parse_dnsmasq_hook(c.call(kNow));
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  const LeaseEvent& e = events->front();
  CHECK(e.action == LeaseAction::grant);
  CHECK(e.source == ServerKind::dnsmasq);
  CHECK(e.mac == "02:0a:0b:0c:0d:0e");
  CHECK(e.client_id == "01:02:0a:0b:0c:0d:0e");
  CHECK(ip(e) == "10.99.0.68");
  CHECK(e.hostname == "ext-4106");
  CHECK(e.expires == 1795334187);
  CHECK(e.reported_at == kNow);
  CHECK(e.server == "lan0");
}

TEST_CASE("dnsmasq old with DATA_MISSING from the capture is a renewal with the later expiry") {
  CapturedCall c("captured/dnsmasq/calls/002-old");
  auto events = parse_dnsmasq_hook(c.call(kNow));
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->front().action == LeaseAction::renew);
  CHECK(events->front().expires == 1795334190);
}

TEST_CASE("dnsmasq del from the capture ends the lease and carries its expiry") {
  CapturedCall c("captured/dnsmasq/calls/007-del");
  auto events = parse_dnsmasq_hook(c.call(kNow));
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->front().action == LeaseAction::remove);
  CHECK(events->front().expires == 1795334192);
  CHECK(events->front().mac == "02:0a:0b:0c:0d:0e");
}

TEST_CASE("dnsmasq DHCPv6 add from the capture keys on the DUID and keeps the MAC") {
  CapturedCall c("captured/dnsmasq/calls/004-add");
  auto events = parse_dnsmasq_hook(c.call(kNow));
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  const LeaseEvent& e = events->front();
  CHECK(e.is_v6());
  CHECK(ip(e) == "fd99::15b");
  CHECK(e.client_id == "00:01:00:01:32:95:5c:3a:02:0a:0b:0c:0d:0e");
  CHECK(e.mac == "02:0a:0b:0c:0d:0e");
  CHECK(e.hostname == "ext-4107");
}

TEST_CASE("every captured dnsmasq call parses into exactly one event") {
  auto bases = captured_calls("dnsmasq");
  CHECK(bases.size() >= 8);
  for (const auto& base : bases) {
    CAPTURE(base);
    auto events = parse_dnsmasq_hook(CapturedCall(base).call(kNow));
    REQUIRE(events);
    CHECK(events->size() == 1);
  }
}

TEST_CASE("dnsmasq init, tftp and unknown actions give no event") {
  for (std::string_view action : {"init", "tftp", "arp-add", "relay-snoop", "future"}) {
    std::string_view args[] = {action, "1", "/srv/tftp/file"};
    auto events = parse_dnsmasq_hook(HookCall{args, {}, kNow});
    REQUIRE(events);
    CHECK(events->empty());
  }
}

TEST_CASE("dnsmasq calls with a bad MAC, address or expiry give a clear error") {
  std::string_view bad_mac[] = {"add", "02:0a:0b", "10.99.0.5"};
  CHECK(parse_dnsmasq_hook(HookCall{bad_mac, {}, kNow}).error().code == ParseErrc::bad_mac);
  std::string_view bad_ip[] = {"add", "02:0a:0b:0c:0d:0e", "10.99.0.500"};
  CHECK(parse_dnsmasq_hook(HookCall{bad_ip, {}, kNow}).error().code == ParseErrc::bad_address);
  std::string_view ok[] = {"add", "02:0a:0b:0c:0d:0e", "10.99.0.5"};
  std::string_view env[] = {"DNSMASQ_LEASE_EXPIRES=12x"};
  CHECK(parse_dnsmasq_hook(HookCall{ok, env, kNow}).error().code == ParseErrc::bad_number);
  std::string_view few[] = {"add", "02:0a:0b:0c:0d:0e"};
  CHECK(parse_dnsmasq_hook(HookCall{few, {}, kNow}).error().code == ParseErrc::missing_field);
}

// Found walking docs/lan-agent.md as a LAN host: dnsmasq leased to a client
// sending a 199-byte client-id (DHCPv4 allows 255), the hook refused the call
// ("bad client-id") and the lease file's line for it was unreadable, so every
// `sync` said "no lease was ended because of absence". ISC dhcpd records
// 255-character hostnames the same way.
TEST_CASE("a client-id the table cannot keep, or an over-long hostname, leaves them out, not the lease") {
  std::string long_name(300, 'a');
  std::string long_id = "01";
  for (int i = 0; i < 199; ++i) long_id += ":ab";
  std::string long_id_env = "DNSMASQ_CLIENT_ID=" + long_id;
  std::string_view args[] = {"add", "02:0a:0b:0c:0d:0e", "10.99.0.5", long_name};
  std::string_view env[] = {long_id_env};
  auto events = parse_dnsmasq_hook(HookCall{args, env, kNow});
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->front().mac == "02:0a:0b:0c:0d:0e");
  CHECK(events->front().client_id.empty());
  CHECK(events->front().hostname.empty());

  std::string file = "1796552839 02:00:00:00:00:08 10.99.0.70 cid200 " + long_id +
                     "\n1796552839 02:00:00:00:00:09 10.99.0.71 x 01:02:00:00:00:00:09\n";
  auto snapshot = parse_dnsmasq_lease_file(file, kNow);
  REQUIRE(snapshot);
  CHECK(snapshot->bad_records == 0);
  REQUIRE(snapshot->leases.size() == 2);
  CHECK(snapshot->leases[0].client_id.empty());
  CHECK(snapshot->leases[0].hostname == "cid200");

  std::string kea_cid = "LEASE4_CLIENT_ID=" + long_id;
  std::string_view kea_args[] = {"lease4_renew"};
  std::string_view kea_env[] = {"LEASE4_ADDRESS=10.99.0.70", "LEASE4_HWADDR=02:00:00:00:00:08", kea_cid,
                                "LEASE4_CLTT=1795334000", "LEASE4_VALID_LIFETIME=120"};
  auto kea = parse_kea_hook(HookCall{kea_args, kea_env, kNow});
  REQUIRE(kea);
  REQUIRE(kea->size() == 1);
  CHECK(kea->front().client_id.empty());
  // Without a MAC the client-id is the lease's key: still refused.
  std::string_view no_mac_env[] = {"LEASE4_ADDRESS=10.99.0.70", kea_cid, "LEASE4_CLTT=1795334000",
                                   "LEASE4_VALID_LIFETIME=120"};
  CHECK(!parse_kea_hook(HookCall{kea_args, no_mac_env, kNow}));

  std::string isc = "lease 10.99.0.70 {\n  starts 0 2026/12/06 10:00:00;\n  ends 0 2026/12/06 12:00:00;\n"
                    "  binding state active;\n  hardware ethernet 02:00:00:00:00:08;\n  uid \"" +
                    std::string(200, 'u') + "\";\n  client-hostname \"" + std::string(255, 'h') + "\";\n}\n";
  auto isc_snapshot = parse_isc_lease_file(isc, kNow);
  REQUIRE(isc_snapshot);
  CHECK(isc_snapshot->bad_records == 0);
  REQUIRE(isc_snapshot->leases.size() == 1);
  CHECK(isc_snapshot->leases[0].client_id.empty());
  CHECK(isc_snapshot->leases[0].hostname.empty());
}

TEST_CASE("an interface name that is not printable ASCII is not kept as the server tag") {
  std::string_view args[] = {"add", "02:0a:0b:0c:0d:0e", "10.99.0.5", "ext-4106"};
  std::string_view plain[] = {"DNSMASQ_INTERFACE=lan0"};
  CHECK(parse_dnsmasq_hook(HookCall{args, plain, kNow})->front().server == "lan0");
  std::string_view escape[] = {"DNSMASQ_INTERFACE=lan\x1b[2J"};  // ESC: clears the admin's screen
  auto events = parse_dnsmasq_hook(HookCall{args, escape, kNow});
  REQUIRE(events);
  CHECK(events->front().server.empty());
  CHECK(events->front().hostname == "ext-4106");
}

TEST_CASE("dnsmasq lease file from the capture holds the v4 and the v6 lease") {
  auto snapshot = parse_dnsmasq_lease_file(read_text("captured/dnsmasq/dnsmasq.leases"), kNow);
  REQUIRE(snapshot);
  CHECK(snapshot->bad_records == 0);
  REQUIRE(snapshot->leases.size() == 2);
  const LeaseEvent& v4 = snapshot->leases[0];
  CHECK(v4.mac == "02:0a:0b:0c:0d:0e");
  CHECK(ip(v4) == "10.99.0.68");
  CHECK(v4.expires == 1795334192);
  CHECK(v4.client_id == "01:02:0a:0b:0c:0d:0e");
  const LeaseEvent& v6 = snapshot->leases[1];
  CHECK(v6.is_v6());
  CHECK(v6.client_id == "00:01:00:01:32:95:5c:3a:02:0a:0b:0c:0d:0e");
  CHECK(v6.server == "00:01:00:01:32:95:5c:32:26:e0:e3:d4:c3:3e");
  auto after = parse_dnsmasq_lease_file(read_text("captured/dnsmasq/dnsmasq.leases.after-release"), kNow);
  REQUIRE(after);
  CHECK(after->leases.empty());
  CHECK(after->bad_records == 0);
}

TEST_CASE("dnsmasq lease file: bad and over-long lines are counted with their line number") {
  std::string text = "0 02:0a:0b:0c:0d:0e 10.99.0.7 * *\nnot a lease\n" + std::string(5000, 'x') + "\n";
  auto snapshot = parse_dnsmasq_lease_file(text, kNow);
  REQUIRE(snapshot);
  REQUIRE(snapshot->leases.size() == 1);
  CHECK(snapshot->leases[0].expires == LeaseEvent::kInfinite);
  CHECK(snapshot->bad_records == 2);
  REQUIRE(snapshot->first_error);
  CHECK(snapshot->first_error->line == 2);
}

TEST_CASE("dnsmasq lease file: an upper-case MAC is normalised; a 20-octet hardware address is a bad line") {
  // dnsmasq prints a non-Ethernet hardware address as TYPE-ADDRESS: an
  // InfiniBand client's line is counted bad, the leases around it kept.
  std::string text =
      "1795334192 02:0A:0B:0C:0D:0E 10.99.0.7 Laptop 01:02:0A:0B:0C:0D:0E\n"
      "1795334192 20-80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:01:02:03 10.99.0.8 ib0 *\n"
      "1795334192 02:0a:0b:0c:0d:0f 10.99.0.9 * *\n";
  auto snapshot = parse_dnsmasq_lease_file(text, kNow);
  REQUIRE(snapshot);
  REQUIRE(snapshot->leases.size() == 2);
  CHECK(snapshot->leases[0].mac == "02:0a:0b:0c:0d:0e");
  CHECK(snapshot->leases[0].client_id == "01:02:0a:0b:0c:0d:0e");
  CHECK(snapshot->leases[0].hostname == "laptop");
  CHECK(snapshot->leases[1].mac == "02:0a:0b:0c:0d:0f");
  CHECK(snapshot->bad_records == 1);
  REQUIRE(snapshot->first_error);
  CHECK(snapshot->first_error->code == ParseErrc::bad_mac);
  CHECK(snapshot->first_error->line == 2);
}

TEST_CASE("dnsmasq lease file: a lease with a short hostname and no client-id takes no heap beyond the lease list") {
#if defined(__SANITIZE_ADDRESS__) || HEAP_IS_ASAN
  MESSAGE("skipped: under AddressSanitizer mallinfo2 does not count the sanitizer's heap");
#else
  // The bulk sync's parse: 10,000 leases should cost the snapshot's one
  // reserved vector and nothing per lease (a heap string per MAC was 32 bytes
  // each, 320,000 bytes here).
  constexpr int kLeases = 10'000;
  std::string text;
  for (int i = 0; i < kLeases; ++i) {
    char line[96];
    std::snprintf(line, sizeof line, "1795334192 02:00:00:00:%02x:%02x 10.%d.%d.%d ext-%d *\n", (i >> 8) & 0xff, i & 0xff,
                  (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff, i);
    text += line;
  }
  auto in_use = [] {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
  };
  const size_t before = in_use();
  auto snapshot = parse_dnsmasq_lease_file(text, kNow);
  const size_t after = in_use();
  REQUIRE(snapshot);
  REQUIRE(snapshot->leases.size() == kLeases);
  CHECK(snapshot->bad_records == 0);
  CHECK(snapshot->leases[kLeases - 1].mac == "02:00:00:00:27:0f");
  const size_t list = snapshot->leases.capacity() * sizeof(LeaseEvent);
  CHECK(after - before <= list + 16 * 1024);  // the list, rounded to pages
#endif
}

TEST_CASE("isc commit from the capture normalises the unpadded MAC and uses the lease time") {
  CapturedCall c("captured/isc-dhcpd/calls/001-commit");
  CHECK(c.args[2] == "2:a:b:c:d:e");
  auto events = parse_isc_hook(c.call(kNow));
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  const LeaseEvent& e = events->front();
  CHECK(e.action == LeaseAction::grant);
  CHECK(e.mac == "02:0a:0b:0c:0d:0e");
  CHECK(ip(e) == "10.99.0.100");
  CHECK(e.hostname == "ext-4108");
  CHECK(e.expires == kNow + 120);
}

TEST_CASE("isc release from the capture has an empty hostname and an unknown expiry") {
  CapturedCall c("captured/isc-dhcpd/calls/004-release");
  auto events = parse_isc_hook(c.call(kNow));
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->front().action == LeaseAction::release);
  CHECK(events->front().hostname.empty());
  CHECK(events->front().expires == LeaseEvent::kUnknownExpiry);
  for (const auto& base : captured_calls("isc-dhcpd")) {
    CAPTURE(base);
    CHECK(parse_isc_hook(CapturedCall(base).call(kNow)));
  }
}

TEST_CASE("isc dhcpd.leases from the capture: the last block for the address wins") {
  auto snapshot = parse_isc_lease_file(read_text("captured/isc-dhcpd/dhcpd.leases"), kNow);
  REQUIRE(snapshot);
  CHECK(snapshot->bad_records == 0);
  CHECK(snapshot->records == 2);
  REQUIRE(snapshot->leases.size() == 1);
  const LeaseEvent& e = snapshot->leases[0];
  CHECK(e.action == LeaseAction::release);
  CHECK(e.mac == "02:0a:0b:0c:0d:0e");
  CHECK(e.client_id == "01:02:0a:0b:0c:0d:0e");
  CHECK(e.expires == *parse_isc_time("2026/11/22", "07:54:56"));
}

TEST_CASE("isc dhcpd.leases: an active lease with hostname, never-ending and epoch times") {
  const char* text =
      "lease 10.99.0.120 {\n  starts epoch 1795334000; # local\n  ends never;\n  binding state active;\n"
      "  hardware ethernet 0:1:2:3:4:5;\n  uid 01:00:01:02:03:04:05;\n  client-hostname \"EXT-4200\";\n}\n";
  auto snapshot = parse_isc_lease_file(text, kNow);
  REQUIRE(snapshot);
  REQUIRE(snapshot->leases.size() == 1);
  CHECK(snapshot->leases[0].action == LeaseAction::grant);
  CHECK(snapshot->leases[0].expires == LeaseEvent::kInfinite);
  CHECK(snapshot->leases[0].mac == "00:01:02:03:04:05");
  CHECK(snapshot->leases[0].hostname == "ext-4200");
  CHECK(snapshot->leases[0].reported_at == 1795334000);
}

TEST_CASE("isc dhcpd.leases: an unterminated block is reported, not a crash") {
  auto snapshot = parse_isc_lease_file("lease 10.99.0.1 {\n starts 0 2026/11/22 07:54:50;\n", kNow);
  REQUIRE(snapshot);
  CHECK(snapshot->bad_records == 1);
  CHECK(parse_isc_time("2026/13/01", "00:00:00").error().code == ParseErrc::bad_time);
  CHECK(*parse_isc_time("1970/01/02", "00:00:01") == 86401);
}

TEST_CASE("kea leases4_committed from the capture is a grant ordered by CLTT") {
  CapturedCall c("captured/kea4/calls/001-leases4_committed");
  auto events = parse_kea_hook(c.call(kNow));
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  const LeaseEvent& e = events->front();
  CHECK(e.action == LeaseAction::grant);
  CHECK(e.source == ServerKind::kea);
  CHECK(ip(e) == "10.99.0.150");
  CHECK(e.mac == "02:0a:0b:0c:0d:0e");
  CHECK(e.client_id == "01:02:0a:0b:0c:0d:0e");
  CHECK(e.reported_at == 1795334102);
  CHECK(e.expires == 1795334122);
  CHECK(e.hostname == "ext-4109");
  CHECK(e.server == "lan0");
}

TEST_CASE("kea lease4_renew, lease4_release and lease4_expire from the capture") {
  auto renew = parse_kea_hook(CapturedCall("captured/kea4/calls/002-lease4_renew").call(kNow));
  REQUIRE(renew);
  REQUIRE(renew->size() == 1);
  CHECK(renew->front().action == LeaseAction::renew);
  CHECK(renew->front().expires == 1795334125);
  auto release = parse_kea_hook(CapturedCall("captured/kea4/calls/006-lease4_release").call(kNow));
  REQUIRE(release);
  REQUIRE(release->size() == 1);
  CHECK(release->front().action == LeaseAction::release);
  CHECK(release->front().reported_at == 1795334107);
  auto expire = parse_kea_hook(CapturedCall("captured/kea4/calls/009-lease4_expire").call(kNow));
  REQUIRE(expire);
  REQUIRE(expire->size() == 1);
  CHECK(expire->front().action == LeaseAction::expire);
  CHECK(ip(expire->front()) == "10.99.0.151");
  CHECK(expire->front().server.empty());
  for (const auto& base : captured_calls("kea4")) {
    CAPTURE(base);
    auto events = parse_kea_hook(CapturedCall(base).call(kNow));
    REQUIRE(events);
    CHECK(events->size() == 1);
  }
}

TEST_CASE("kea v6 committed call (documented variables) strips the trailing dot and skips prefixes") {
  std::string_view args[] = {"leases6_committed"};
  std::string_view env[] = {
      "LEASES6_SIZE=2", "LEASES6_AT0_ADDRESS=fd99::201", "LEASES6_AT0_DUID=00:01:00:01:32:95:5c:3a:02:0a:0b:0c:0d:0e",
      "LEASES6_AT0_HOSTNAME=Ext-4111.", "LEASES6_AT0_CLTT=1795334200", "LEASES6_AT0_VALID_LIFETIME=120",
      "LEASES6_AT0_TYPE=IA_NA", "LEASES6_AT1_ADDRESS=fd99:1::", "LEASES6_AT1_TYPE=IA_PD", "DELETED_LEASES6_SIZE=0"};
  auto events = parse_kea_hook(HookCall{args, env, kNow});
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->front().is_v6());
  CHECK(events->front().hostname == "ext-4111");
  CHECK(events->front().expires == 1795334320);
}

TEST_CASE("kea calls with missing variables or a huge LEASES4_SIZE give a clear error") {
  std::string_view args[] = {"leases4_committed"};
  std::string_view missing[] = {"LEASES4_SIZE=1"};
  CHECK(parse_kea_hook(HookCall{args, missing, kNow}).error().code == ParseErrc::missing_field);
  std::string_view huge[] = {"LEASES4_SIZE=100000"};
  CHECK(parse_kea_hook(HookCall{args, huge, kNow}).error().code == ParseErrc::too_large);
  std::string_view other[] = {"pkt4_receive"};
  CHECK(parse_kea_hook(HookCall{other, {}, kNow})->empty());
}

TEST_CASE("kea memfile CSV from the capture: last row per address wins, deletions and reclaims end leases") {
  auto snapshot = parse_kea_lease_file(read_text("captured/kea4/kea-leases4.csv"), kNow);
  REQUIRE(snapshot);
  CHECK(snapshot->bad_records == 0);
  CHECK(snapshot->records == 6);
  REQUIRE(snapshot->leases.size() == 2);
  CHECK(ip(snapshot->leases[0]) == "10.99.0.150");
  CHECK(snapshot->leases[0].action == LeaseAction::release);
  CHECK(snapshot->leases[0].reported_at == 1795334107);
  CHECK(ip(snapshot->leases[1]) == "10.99.0.151");
  CHECK(snapshot->leases[1].action == LeaseAction::expire);
}

TEST_CASE("kea memfile CSV: interleaved rows keep each address's last; an InfiniBand hwaddr is dropped, the lease kept") {
  std::string text =
      "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n"
      "10.99.0.9,02:0A:0B:0C:0D:09,,20,1795334122,1,0,0,Ext-9,0,\n"
      "10.99.0.10,02:0a:0b:0c:0d:10,,20,1795334123,1,0,0,ext-10,0,\n"
      "10.99.0.9,02:0a:0b:0c:0d:09,,20,1795334128,1,0,0,ext-9,0,\n"
      "10.99.0.11,80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:01:02:03,ff:00:00:00:01,20,1795334124,1,0,0,ib0,"
      "0,\n"
      "10.99.0.10,02:0a:0b:0c:0d:10,,20,1795334129,1,0,0,ext-10,2,\n"
      "10.99.0.12,80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:01:02:03,,20,1795334124,1,0,0,ib1,0,\n";
  auto snapshot = parse_kea_lease_file(text, kNow);
  REQUIRE(snapshot);
  CHECK(snapshot->records == 6);
  CHECK(snapshot->bad_records == 1);  // 10.99.0.12: neither a MAC nor a client-id
  REQUIRE(snapshot->leases.size() == 3);
  // In the address text's byte order, as before: 10.99.0.10 < 10.99.0.11 < 10.99.0.9.
  CHECK(ip(snapshot->leases[0]) == "10.99.0.10");
  CHECK(snapshot->leases[0].action == LeaseAction::expire);
  CHECK(snapshot->leases[0].expires == 1795334129);
  CHECK(ip(snapshot->leases[1]) == "10.99.0.11");
  CHECK(snapshot->leases[1].mac.empty());
  CHECK(snapshot->leases[1].client_id == "ff:00:00:00:01");
  CHECK(ip(snapshot->leases[2]) == "10.99.0.9");
  CHECK(snapshot->leases[2].mac == "02:0a:0b:0c:0d:09");
  CHECK(snapshot->leases[2].expires == 1795334128);
  CHECK(snapshot->leases[2].hostname == "ext-9");
}

TEST_CASE("kea v6 memfile CSV header and an escaped comma in the hostname") {
  const char* text =
      "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,fqdn_rev,"
      "hostname,hwaddr,state,user_context,hwtype,hwaddr_source\n"
      "fd99::201,00:01:00:01:32:95:5c:3a:02:0a:0b:0c:0d:0e,120,1795334320,1,90,0,185339150,128,0,0,ext-4111.,,0,,,\n"
      "fd99:1::,00:01:00:01:32:95:5c:3a:02:0a:0b:0c:0d:0e,120,1795334320,1,90,2,1,64,0,0,,,0,,,\n"
      "fd99::202,00:01:aa,120,1795334320,1,90,0,1,128,0,0,a&#x2cb,,0,,,\n";
  auto snapshot = parse_kea_lease_file(text, kNow);
  REQUIRE(snapshot);
  REQUIRE(snapshot->leases.size() == 2);
  CHECK(snapshot->leases[0].hostname == "ext-4111");
  CHECK(snapshot->leases[0].reported_at == 1795334200);
  CHECK(snapshot->leases[1].hostname.empty());  // "a,b" is not a DNS name: dropped
  CHECK(parse_kea_lease_file("10.0.0.1,x\n", kNow).error().code == ParseErrc::missing_field);
}

TEST_CASE("kea leases6_committed, lease6_release and a deletion from the capture") {
  auto committed = parse_kea_hook(CapturedCall("captured/kea6/calls/001-leases6_committed").call(kNow));
  REQUIRE(committed);
  REQUIRE(committed->size() == 1);
  const LeaseEvent& e = committed->front();
  CHECK(e.is_v6());
  CHECK(ip(e) == "fd99::200");
  CHECK(e.client_id == "00:01:00:01:32:95:5f:bd:02:0a:0b:0c:0d:0e");
  CHECK(e.mac == "02:0a:0b:0c:0d:0e");
  CHECK(e.hostname == "ext-4111");  // Kea's trailing dot removed
  CHECK(e.expires == 1795334974 + 120);
  auto release = parse_kea_hook(CapturedCall("captured/kea6/calls/002-lease6_release").call(kNow));
  REQUIRE(release);
  REQUIRE(release->size() == 1);
  CHECK(release->front().action == LeaseAction::release);
  auto deleted = parse_kea_hook(CapturedCall("captured/kea6/calls/003-leases6_committed").call(kNow));
  REQUIRE(deleted);
  REQUIRE(deleted->size() == 1);
  CHECK(deleted->front().action == LeaseAction::release);
}

TEST_CASE("kea v6 memfile CSV from the capture ends with the deletion row") {
  auto snapshot = parse_kea_lease_file(read_text("captured/kea6/kea-leases6.csv"), kNow);
  REQUIRE(snapshot);
  CHECK(snapshot->bad_records == 0);
  CHECK(snapshot->records == 2);
  REQUIRE(snapshot->leases.size() == 1);
  CHECK(snapshot->leases[0].action == LeaseAction::release);
  CHECK(snapshot->leases[0].hostname == "ext-4111");
  CHECK(snapshot->leases[0].mac == "02:0a:0b:0c:0d:0e");
}

namespace {
// One lease block as ISC dhcpd 4.4 writes it to dhcpd.leases.
std::string isc_block(const std::string& address, const std::string& state, const std::string& mac,
                      const std::string& ends, const std::string& hostname = "") {
  std::string b = "lease " + address + " {\n  starts 5 2026/12/04 10:00:00;\n  ends 5 2026/12/04 " + ends +
                  ";\n  cltt 5 2026/12/04 10:00:00;\n  binding state " + state +
                  ";\n  next binding state free;\n  rewind binding state free;\n";
  if (!mac.empty()) b += "  hardware ethernet " + mac + ";\n";
  b += "  set vendor-class-identifier = \"udhcp 1.35.0\";\n";
  if (!hostname.empty()) b += "  client-hostname \"" + hostname + "\";\n";
  b += "  on expiry {\n    execute (\"/usr/lib/tsunagu/tsunagu-dhcp-hook\", \"expiry\", \"x\");\n  }\n}\n";
  return b;
}
}  // namespace

// Issue 10, item 1: every block used to land under an empty address, so a file of
// many leases yielded one and the agent's sync ended all the others.
TEST_CASE("isc dhcpd.leases with many blocks keeps one lease per address, the last block of each") {
  std::string text = "# The format of this file is documented in the dhcpd.leases(5) manual page.\n"
                     "authoring-byte-order little-endian;\n\n";
  for (int i = 0; i < 50; ++i) {
    const std::string mac = "02:00:00:00:01:" + std::string(i < 16 ? "0" : "") + [&] {
      char hex[3];
      std::snprintf(hex, sizeof hex, "%x", i);
      return std::string(hex);
    }();
    text += isc_block("10.99.1." + std::to_string(10 + i), "active", mac, "11:00:00", "ext-" + std::to_string(4100 + i));
  }
  // Repeated addresses: dhcpd appends a block per change; the last one is the truth.
  text += isc_block("10.99.1.10", "free", "02:00:00:00:01:00", "10:30:00");
  text += isc_block("10.99.1.11", "active", "02:00:00:00:01:01", "12:00:00", "ext-4101");
  // Abandoned (declined, no hardware line as dhcpd writes it) and failover backup blocks.
  text += isc_block("10.99.1.200", "abandoned", "02:00:00:00:02:00", "10:05:00");
  text += isc_block("10.99.1.201", "backup", "", "10:05:00");
  auto snapshot = parse_isc_lease_file(text, kNow);
  REQUIRE(snapshot);
  CHECK(snapshot->bad_records == 0);
  CHECK(snapshot->records == 54);
  // 50 addresses plus the abandoned one; the backup block has no client and is skipped.
  REQUIRE(snapshot->leases.size() == 51);
  size_t active = 0;
  for (const LeaseEvent& e : snapshot->leases) {
    CAPTURE(e.address.to_string());
    if (e.action == LeaseAction::grant) ++active;
    if (e.address.to_string() == "10.99.1.10:0") CHECK(e.action == LeaseAction::release);
    if (e.address.to_string() == "10.99.1.11:0") {
      CHECK(e.action == LeaseAction::grant);
      CHECK(e.expires == *parse_isc_time("2026/12/04", "12:00:00"));
      CHECK(e.hostname == "ext-4101");
    }
    if (e.address.to_string() == "10.99.1.200:0") CHECK(e.action == LeaseAction::decline);
  }
  CHECK(active == 49);
}
