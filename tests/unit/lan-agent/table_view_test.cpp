// lan-agent/table_view.cpp: what `list`, `show` and the agent's log print of
// the table.
#include "lan-agent/table_view.hpp"

#include <doctest/doctest.h>

#include "allocation/field_normalisation.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;

namespace {

constexpr int64_t T = 1795334000;

alloc::LeaseRecord hostile_record() {
  alloc::LeaseRecord lease;
  lease.source = alloc::ServerKind::dnsmasq;
  lease.address = *alloc::parse_ip_address("10.99.0.99");
  lease.mac = "02:00:00:00:e5:c0";
  lease.hostname = "ext\x1b[2J4106\xe2\x80\xae";  // ESC (clears a terminal), then a bidi override
  lease.server = "lan0\x1b]0;owned\x07";           // an OSC sequence that retitles a terminal
  lease.expires = T + 120;
  lease.live_until = T + 120;
  return lease;
}

bool printable(const std::string& text) {
  return text.find('\x1b') == std::string::npos && text.find('\x07') == std::string::npos &&
         text.find("\xe2\x80\xae") == std::string::npos;
}

}  // namespace

// Found walking docs/lan-agent.md as a local user on the hook socket: a record
// with ESC in its hostname, accepted before the records were checked, stays in
// the table, and `show` and the log printed it to the admin's terminal as it was.
TEST_CASE("table views print a hostname or server tag with control or bidi characters as U+FFFD") {
  alloc::LeaseRecord lease = hostile_record();
  std::string shown = format_extension("4106", nullptr, {lease}, {}, T);
  CAPTURE(shown);
  CHECK(printable(shown));
  CHECK(shown.find("hostname ext\xEF\xBF\xBD[2J4106\xEF\xBF\xBD") != std::string::npos);
  CHECK(shown.find("dnsmasq lan0\xEF\xBF\xBD]0;owned\xEF\xBF\xBD") != std::string::npos);
  std::string listed = format_table({}, {lease}, T);
  CHECK(printable(listed));

  alloc::TableChange change;
  change.kind = alloc::ChangeKind::lease_granted;
  change.lease = lease;
  std::string logged = describe_change(change);
  CAPTURE(logged);
  CHECK(printable(logged));
  CHECK(logged.find("02:00:00:00:e5:c0 ext\xEF\xBF\xBD[2J4106") != std::string::npos);

  alloc::BindingConflict conflict;
  conflict.extension = "4106";
  conflict.claimant = *alloc::ClientRef::parse("02:00:00:00:e5:c0");
  conflict.address = lease.address;
  conflict.hostname = lease.hostname;
  conflict.first_seen = conflict.last_seen = T;
  conflict.attempts = 1;
  CHECK(printable(format_conflicts({conflict}, T)));
}

TEST_CASE("table views print plain hostnames unchanged") {
  alloc::LeaseRecord lease = hostile_record();
  lease.hostname = "ext-4106";
  lease.server = "lan0";
  std::string shown = format_extension("4106", nullptr, {lease}, {}, T);
  CHECK(shown.find("10.99.0.99  live, expires in 2m00s  dnsmasq lan0  hostname ext-4106\n") != std::string::npos);
}
