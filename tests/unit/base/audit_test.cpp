// base/audit: the key=value line an operator greps, its escaping (a value a
// peer chose must never end the line or forge a key), and AuditLog's flood limit.
#include <doctest/doctest.h>
#include <stdio.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "base/audit.hpp"
#include "base/audit_log.hpp"
#include "stream_text.hpp"

using namespace tsunagu;
using audit::AuditEvent;

namespace {

using test::capture_stderr;
using test::occurrences;

}  // namespace

TEST_CASE("an audit line is event=NAME then the fields in order, plain values bare") {
  AuditEvent event{"login", {{"result", "ok"}, {"user", "alice"}, {"source", "127.0.0.1:5555"}}};
  CHECK(audit::format_audit_line(event) == "event=login result=ok user=alice source=127.0.0.1:5555");
  CHECK(event.field("user") == "alice");
  CHECK(event.field("password").empty());
  CHECK_FALSE(event.has("password"));
}

TEST_CASE("values with spaces, quotes, equals signs or nothing at all are quoted") {
  CHECK(audit::quote_audit_value("two words") == "\"two words\"");
  CHECK(audit::quote_audit_value("") == "\"\"");
  CHECK(audit::quote_audit_value("a=b") == "\"a=b\"");
  CHECK(audit::quote_audit_value("say \"hi\"") == "\"say \\\"hi\\\"\"");
  CHECK(audit::quote_audit_value("back\\slash") == "\"back\\\\slash\"");
  CHECK(audit::quote_audit_value("[::1]:7400") == "[::1]:7400");
}

TEST_CASE("a user-chosen value cannot end the line or forge a second event") {
  std::string forged = "bob\nevent=login result=ok user=root source=10.0.0.1:1";
  std::string line = audit::format_audit_line(AuditEvent{"login", {{"result", "failed"}, {"user", forged}}});
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line == "event=login result=failed user=\"bob\\nevent=login result=ok user=root source=10.0.0.1:1\"");
  // Every control byte, DEL, and the Unicode line breaks are escaped too.
  CHECK(audit::quote_audit_value(std::string("a\rb\tc\x01" "d\x7f", 8)) == "\"a\\rb\\tc\\x01d\\x7f\"");
  CHECK(audit::quote_audit_value(std::string("x\0y", 3)) == "\"x\\x00y\"");
  CHECK(audit::quote_audit_value("nel\xc2\x85" "end") == "\"nel\\xc2\\x85end\"");
  CHECK(audit::quote_audit_value("ls\xe2\x80\xa8" "ps\xe2\x80\xa9") == "\"ls\\xe2\\x80\\xa8ps\\xe2\\x80\\xa9\"");
  // Other UTF-8 stays readable.
  CHECK(audit::quote_audit_value("\xe3\x81\xa4\xe3\x81\xaa\xe3\x81\x90") == "\"\xe3\x81\xa4\xe3\x81\xaa\xe3\x81\x90\"");
}

TEST_CASE("AuditLog writes one info line per event and limits each event and result on its own") {
  auto written = capture_stderr([] {
    audit::AuditLog sink(3, std::chrono::seconds(1));
    for (int i = 0; i < 10; ++i)
      sink.record(AuditEvent{"login", {{"result", "failed"}, {"user", "u" + std::to_string(i)}}});
    // A flood of failures does not hide a success.
    sink.record(AuditEvent{"login", {{"result", "ok"}, {"user", "alice"}}});
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    sink.record(AuditEvent{"login", {{"result", "failed"}, {"user", "later"}}});
  });
  CHECK(occurrences(written, "info: event=login result=failed") == 4);
  CHECK(occurrences(written, "user=u3") == 0);
  CHECK(occurrences(written, "info: event=login result=ok user=alice") == 1);
  CHECK(occurrences(written, "event=audit_suppressed of=login/failed count=7") == 1);
  // The summary comes before the first line let through again.
  CHECK(written.find("audit_suppressed") < written.find("user=later"));
  CHECK(occurrences(written, "\n") == 6);
}
