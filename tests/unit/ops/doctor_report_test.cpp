// ops/doctor_report.cpp: each shared check's verdict on real files, sockets
// and LMDB environments, with the clock injected (so "expired" needs no
// back-dated certificate).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "ops/doctor_report.hpp"
#include "security/certificates.hpp"
#include "storage/lmdb_store.hpp"

using namespace tsunagu;
using ops::DoctorReport;
using ops::Verdict;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tsunagu-doctor-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

void write(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
}

const ops::Finding& only(const DoctorReport& report) {
  REQUIRE(report.findings().size() == 1);
  return report.findings().front();
}

const int64_t now = static_cast<int64_t>(std::time(nullptr));

}  // namespace

TEST_CASE("doctor: a key readable by others fails with the chmod that fixes it; 0600 is ok; none fails") {
  TempDir dir;
  std::string key = dir.path + "/node.key";
  write(key, "-----BEGIN PRIVATE KEY-----\n", 0644);
  DoctorReport open_key, group_key, closed_key, missing;
  ops::check_private_key(open_key, key, "node key");
  CHECK(only(open_key).verdict == Verdict::fail);
  CHECK(only(open_key).detail.find("everyone") != std::string::npos);
  CHECK(only(open_key).detail.find("chmod 600 " + key) != std::string::npos);
  chmod(key.c_str(), 0640);
  ops::check_private_key(group_key, key, "node key");
  CHECK(only(group_key).verdict == Verdict::fail);
  CHECK(only(group_key).detail.find("its group") != std::string::npos);
  chmod(key.c_str(), 0600);
  ops::check_private_key(closed_key, key, "node key");
  CHECK(only(closed_key).verdict == Verdict::ok);
  ops::check_private_key(missing, dir.path + "/none.key", "node key");
  CHECK(only(missing).verdict == Verdict::fail);
}

TEST_CASE("doctor: a data directory writable by others fails, by its group warns") {
  TempDir dir;
  for (auto [mode, verdict] : {std::pair{0777, Verdict::fail}, std::pair{0770, Verdict::warn}, std::pair{0750, Verdict::ok}}) {
    chmod(dir.path.c_str(), static_cast<mode_t>(mode));
    DoctorReport report;
    ops::check_data_directory(report, dir.path, "data directory");
    CHECK(only(report).verdict == verdict);
  }
}

TEST_CASE("doctor: a certificate is ok, warns within 30 days of its end, and fails once expired") {
  TempDir dir;
  auto ca = security::create_certificate_authority("doctor test", 60);
  REQUIRE(ca);
  std::string path = dir.path + "/ca.crt";
  write(path, ca->certificate_pem, 0644);
  DoctorReport fresh, ending, expired, broken;
  ops::check_certificate(fresh, path, "CA certificate", {now});
  CHECK(only(fresh).verdict == Verdict::ok);
  ops::check_certificate(ending, path, "CA certificate", {now + 40 * 86400});
  CHECK(only(ending).verdict == Verdict::warn);
  CHECK(only(ending).detail.find("expires in") != std::string::npos);
  ops::check_certificate(expired, path, "CA certificate", {now + 61 * 86400});
  CHECK(only(expired).verdict == Verdict::fail);
  CHECK(only(expired).detail.find("expired on") != std::string::npos);
  write(path, "not a certificate", 0644);
  ops::check_certificate(broken, path, "CA certificate", {now});
  CHECK(only(broken).verdict == Verdict::fail);
}

TEST_CASE("doctor: a port held by another process fails; a free one and port 0 are ok") {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(listen(fd, 1) == 0);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  std::string held = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  DoctorReport in_use, ours;
  ops::check_listen_port(in_use, held, false, "node.listen", "tsunagu-rendezvous");
  CHECK(only(in_use).verdict == Verdict::fail);
  CHECK(only(in_use).detail.find("(pid " + std::to_string(getpid()) + ")") != std::string::npos);
  // Held by a process of the name given as our own: the daemon itself.
  std::ifstream comm("/proc/self/comm");
  std::string own;
  std::getline(comm, own);
  ops::check_listen_port(ours, held, false, "node.listen", own);
  CHECK(only(ours).verdict == Verdict::ok);
  close(fd);
  DoctorReport freed, any;
  ops::check_listen_port(freed, held, false, "node.listen", "tsunagu-rendezvous");
  CHECK(only(freed).verdict == Verdict::ok);
  ops::check_listen_port(any, "127.0.0.1:0", true, "node.stun_listen", "tsunagu-rendezvous");
  CHECK(only(any).verdict == Verdict::ok);
}

TEST_CASE("doctor: an LMDB map more than 80% used warns; a missing one fails") {
  TempDir dir;
  uint64_t map = uint64_t{1} << 20;
  {
    auto env = storage::Environment::open(dir.path, storage::Environment::Options{map, 16, 126});
    REQUIRE(env);
    auto db = (*env)->open_database("d");
    std::string value(2000, 'z');
    // Fill in small commits until more than 82% of the map is used.
    for (int i = 0; (*env)->usage()->used_bytes * 100 < map * 82; ++i) {
      auto txn = (*env)->begin_write();
      REQUIRE(txn->put(*db, as_bytes("k" + std::to_string(i)), as_bytes(value)));
      REQUIRE(txn->commit());
    }
  }
  DoctorReport full, missing;
  ops::check_map_usage(full, dir.path, map, "LMDB map");
  CHECK(only(full).verdict != Verdict::ok);
  CHECK(only(full).detail.find("% of the map used") != std::string::npos);
  TempDir empty;
  ops::check_map_usage(missing, empty.path, map, "LMDB map");
  CHECK(only(missing).verdict == Verdict::fail);
}

TEST_CASE("doctor: a clock before 2024 fails; the report counts and exits by its FAIL lines") {
  DoctorReport report;
  ops::check_clock(report, {1000});
  CHECK(only(report).verdict == Verdict::fail);
  report.ok("x", "fine");
  report.warn("y", "hmm");
  CHECK(report.failed());
  std::string text = report.text();
  CHECK(text.find("FAIL  clock: ") == 0);
  CHECK(text.find("\nok    x: fine\nwarn  y: hmm\n1 ok, 1 warning(s), 1 failure(s)\n") != std::string::npos);
}
