// Helpers for the lan-agent unit tests: a temporary directory and a fresh
// allocation table in it.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "allocation/allocation_table.hpp"
#include "allocation/field_normalisation.hpp"

namespace tsunagu::lanagent::testing {

// What `tsunagu-rendezvous agent enroll` writes.
inline constexpr char kEnrolled[] = R"(
[node]
address = "node.example:7401"
server_name = "node.example"
ca_certificate = "ca.crt"
certificate = "agent.crt"
private_key = "agent.key"

[agent]
name = "acme"
domains = ["acme"]
number_prefixes = ["+81-6-1234-"]
)";

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tsunagu-agent-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const {
    std::string file = path_ + "/" + name;
    std::ofstream out(file, std::ios::binary);
    out << content;
    REQUIRE(out.good());
    return file;
  }

 private:
  std::string path_;
};

struct TempTable {
  TempDir dir;
  std::unique_ptr<storage::Environment> env;
  std::optional<alloc::AllocationTable> table;

  TempTable() {
    auto e = storage::Environment::open(dir.path());
    REQUIRE(e.has_value());
    env = std::move(*e);
    alloc::TableOptions options;
    auto t = alloc::AllocationTable::open(*env, options);
    REQUIRE(t.has_value());
    table.emplace(std::move(*t));
  }
};

inline alloc::LeaseEvent grant(const std::string& mac, const std::string& ip, int64_t expires, int64_t at) {
  alloc::LeaseEvent e;
  e.action = alloc::LeaseAction::grant;
  e.source = alloc::ServerKind::dnsmasq;
  e.address = *alloc::parse_ip_address(ip);
  e.mac = mac;
  e.server = "lan0";
  e.expires = expires;
  e.reported_at = at;
  return e;
}

}  // namespace tsunagu::lanagent::testing
