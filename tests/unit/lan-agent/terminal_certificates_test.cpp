// Terminal certificate lifetimes and revocation (issue 11 §4): the ledgers,
// issuing and renewing into a bundle directory, revoking, and the agent's
// revocation list noticing a new revocation without a restart. Real files in a
// temporary directory, real certificates from the LAN CA.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "base/files.hpp"
#include "lan-agent/lan_pki.hpp"
#include "lan-agent/terminal_certificates.hpp"
#include "security/certificates.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char templ[] = "/tmp/lan-certs-test.XXXXXX";
    REQUIRE(mkdtemp(templ) != nullptr);
    path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

constexpr int64_t kNow = 1796000000;

}  // namespace

TEST_CASE("certificate ledger: four fields a line; comments, blank and bad lines are skipped and counted") {
  auto ledger = parse_certificate_ledger(
      "# header\n3F0A 4106 1796000000 1795000000\n\nzz 4106 1 2\n0B 4106@acme 1 2\n0C 4107 12x 2\n"
      "0D 4107 1 2 extra\n0E 4108 1796000001 1795000001");
  REQUIRE(ledger);
  REQUIRE(ledger->entries.size() == 2);
  CHECK(ledger->entries[0] == CertificateLedgerEntry{"3F0A", "4106", 1796000000, 1795000000});
  CHECK(ledger->entries[1].extension == "4108");
  CHECK(ledger->bad_lines == 4);
  CHECK(!parse_certificate_ledger(std::string(kMaxCertificateLedgerBytes + 1, '#')));
}

TEST_CASE("terminal issue defaults to 90 days and records the serial; renew needs that extension's bundle") {
  TempDir data, out;
  const std::string bundle = out.path + "/t4106";
  auto issued = issue_terminal_bundle(data.path, "acme", "4106", bundle, TerminalIssue{90, false, kNow});
  REQUIRE_MESSAGE(issued, issued.error());
  auto pem = read_text_file(bundle + "/terminal.crt");
  REQUIRE(pem);
  auto facts = security::certificate_facts(*pem);
  REQUIRE(facts);
  const int64_t days = (facts->not_after - ::time(nullptr) + 43200) / 86400;
  CHECK(days == 90);
  auto ledger = read_ledger(terminal_certificate_files(data.path).issued);
  REQUIRE(ledger);
  REQUIRE(ledger->entries.size() == 1);
  CHECK(ledger->entries[0].serial == facts->serial_hex);
  CHECK(ledger->entries[0].extension == "4106");
  CHECK(issued->find(facts->serial_hex) != std::string::npos);

  CHECK(!issue_terminal_bundle(data.path, "acme", "4106", bundle, TerminalIssue{826, false, kNow}));
  // Renewing 4107 into 4106's bundle is refused; renewing 4106 gives a new serial.
  auto wrong = issue_terminal_bundle(data.path, "acme", "4107", bundle, TerminalIssue{90, true, kNow});
  REQUIRE(!wrong);
  CHECK(wrong.error().find("is not extension 4107's") != std::string::npos);
  CHECK(!issue_terminal_bundle(data.path, "acme", "4106", out.path + "/empty", TerminalIssue{90, true, kNow}));
  REQUIRE(issue_terminal_bundle(data.path, "acme", "4106", bundle, TerminalIssue{30, true, kNow}));
  auto renewed = security::certificate_facts(*read_text_file(bundle + "/terminal.crt"));
  REQUIRE(renewed);
  CHECK(renewed->serial_hex != facts->serial_hex);
  CHECK(read_ledger(terminal_certificate_files(data.path).issued)->entries.size() == 2);
}

TEST_CASE("a revocation reaches a running agent's list without a restart") {
  TempDir data, out;
  REQUIRE(issue_terminal_bundle(data.path, "acme", "4106", out.path + "/a", TerminalIssue{90, false, kNow}));
  REQUIRE(issue_terminal_bundle(data.path, "acme", "4107", out.path + "/b", TerminalIssue{90, false, kNow}));
  auto serial_of = [&](const std::string& dir) {
    return security::certificate_facts(*read_text_file(dir + "/terminal.crt"))->serial_hex;
  };
  const std::string s4106 = serial_of(out.path + "/a"), s4107 = serial_of(out.path + "/b");
  TerminalRevocations list(terminal_certificate_files(data.path).revoked);
  CHECK(!list.revoked(s4106));  // no file yet
  auto revoked = revoke_terminal_certificates(data.path, "4106", "", kNow);
  REQUIRE_MESSAGE(revoked, revoked.error());
  REQUIRE(revoked->size() == 1);
  CHECK((*revoked)[0].serial == s4106);
  CHECK(list.revoked(s4106));   // the same object, re-read because the file changed
  CHECK(!list.revoked(s4107));
  // Revoking again finds nothing left; another extension's serial is not 4106's to revoke.
  CHECK(!revoke_terminal_certificates(data.path, "4106", "", kNow));
  CHECK(!revoke_terminal_certificates(data.path, "4106", s4107, kNow));
  REQUIRE(revoke_terminal_certificates(data.path, "4107", s4107, kNow));
  CHECK(list.revoked(s4107));
  // Expired certificates need no revocation: a new 4106 certificate, revoked after it ended, is refused.
  REQUIRE(issue_terminal_bundle(data.path, "acme", "4106", out.path + "/c", TerminalIssue{90, false, kNow}));
  auto late = revoke_terminal_certificates(data.path, "4106", "", ::time(nullptr) + 91 * 86400);
  REQUIRE(!late);
  CHECK(late.error().find("no unexpired") != std::string::npos);
}
