// Rate limit of failed logins: token buckets that failures drain and time
// refills, per (user ID, source), per source, and per user ID. The per-user
// bucket is far larger and holds back only sources that have failed for that
// user, so a wrong-password flood from elsewhere never locks the owner out.
// Registrations are limited per source the same way. Pure; time is injected.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "proto/socket_address.hpp"

namespace tsunagu::rendezvous {

// The key per-source limits count under: the IPv4 address, or the IPv6 /64
// ("2001:db8:1:2::/64"), since one IPv6 host or LAN holds a whole /64 and
// could otherwise take a fresh address for every attempt. IPv4-mapped IPv6
// addresses count as their IPv4 address.
std::string source_key(const proto::SocketAddress& address);

class LoginLimiter {
 public:
  struct Policy {
    unsigned per_pair_burst = 5;            // failures allowed back to back per (user ID, source)
    uint64_t per_pair_refill_ms = 60'000;   // one more attempt per minute after that
    unsigned per_source_burst = 20;         // failures per source, across all IDs
    uint64_t per_source_refill_ms = 6'000;
    unsigned per_user_burst = 100;          // failures per user ID from all sources together;
    uint64_t per_user_refill_ms = 36'000;   // binds only sources that failed for that ID
    unsigned register_burst = 5;            // registrations per source back to back
    uint64_t register_refill_ms = 60'000;
    size_t max_tracked = 100'000;  // bounded memory under a spray of IDs/sources
  };

  explicit LoginLimiter(Policy policy) : policy_(policy) {}
  // A reload (SIGHUP): the buckets keep what they hold; new limits apply from now.
  void set_policy(Policy policy) { policy_ = policy; }

  // 0 when an attempt may proceed now; otherwise seconds until one may.
  uint32_t retry_after(std::string_view user_id, std::string_view source, uint64_t now_ms);
  void record_failure(std::string_view user_id, std::string_view source, uint64_t now_ms);
  // Clears the (user, source) failures and gives the user and the source back
  // the attempt that record_failure charged when the attempt began.
  void record_success(std::string_view user_id, std::string_view source);
  // Registrations: 0 when `source` may register now, else seconds to wait.
  uint32_t register_retry_after(std::string_view source, uint64_t now_ms);
  void record_registration(std::string_view source, uint64_t now_ms);
  size_t tracked() const { return users_.size() + sources_.size() + pairs_.size() + registrations_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    uint64_t updated_ms = 0;
  };
  static void refill(Bucket& bucket, unsigned burst, uint64_t refill_ms, uint64_t now_ms);
  static uint32_t wait_seconds(const Bucket& bucket, uint64_t refill_ms);
  static std::string pair_key(std::string_view user_id, std::string_view source);
  // Seconds until `key` has an attempt left (0: now); `drained` says whether
  // it has any failure on record at all.
  uint32_t wait_for(std::unordered_map<std::string, Bucket>& map, const std::string& key, unsigned burst,
                    uint64_t refill_ms, uint64_t now_ms, bool* drained = nullptr);
  void refund(std::unordered_map<std::string, Bucket>& map, std::string_view key, unsigned burst);
  void drain(std::unordered_map<std::string, Bucket>& map, std::string_view key, unsigned burst,
             uint64_t refill_ms, uint64_t now_ms);
  void prune(std::unordered_map<std::string, Bucket>& map, unsigned burst, uint64_t refill_ms, uint64_t now_ms);

  Policy policy_;
  std::unordered_map<std::string, Bucket> users_;
  std::unordered_map<std::string, Bucket> sources_;
  std::unordered_map<std::string, Bucket> pairs_;  // key: user ID, NUL, source
  std::unordered_map<std::string, Bucket> registrations_;
};

}  // namespace tsunagu::rendezvous
