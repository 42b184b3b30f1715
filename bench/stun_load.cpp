// stun_load: the benchmarks' STUN Binding load generator.
//
// Keeps a fixed number of Binding requests in flight against one UDP server on
// loopback for a fixed time (closed loop: every answer, or timeout, sends the
// next request), validates every response with Tsunagu's codec and prints one
// JSON line: responses/s, invalid responses, timeouts, latency percentiles.
//
// A response is valid when it decodes as STUN (FINGERPRINT present and right),
// is a Binding success response, carries the transaction ID of a request still
// in flight on the socket it arrived on, and its XOR-MAPPED-ADDRESS equals that
// socket's own address. In --echo mode (against bench/udp_echo) a response is
// valid when it is byte-identical to the request in flight.
//
// The transaction ID names its request: bytes 0-3 a per-run nonce, 4-5 the
// socket, 6-7 the slot on that socket, 8-11 the slot's sequence number. An
// answer to an older sequence (a request that had timed out) counts as late.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.hpp"
#include "proto/socket_address.hpp"
#include "proto/stun_message.hpp"

namespace {

using tsunagu::Bytes;
using tsunagu::ByteView;
using tsunagu::load_be16;
using tsunagu::load_be32;
using tsunagu::store_be16;
using tsunagu::store_be32;
namespace proto = tsunagu::proto;

constexpr size_t batch_size = 64;
constexpr size_t receive_slot_size = 2048;

struct Options {
  proto::SocketAddress target;
  size_t sockets = 1;
  size_t inflight = 64;
  double duration_s = 5.0;
  uint64_t timeout_ns = 200'000'000;
  bool echo = false;
};

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

bool is_loopback(const proto::SocketAddress& a) {
  if (a.family == proto::SocketAddress::Family::ipv4) return a.ip[0] == 127;
  for (size_t i = 0; i < 15; ++i)
    if (a.ip[i] != 0) return false;
  return a.ip[15] == 1;
}

socklen_t to_sockaddr(const proto::SocketAddress& a, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  if (a.family == proto::SocketAddress::Family::ipv4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a.port);
    std::memcpy(&sin->sin_addr, a.ip.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(a.port);
  std::memcpy(&sin6->sin6_addr, a.ip.data(), 16);
  return sizeof(sockaddr_in6);
}

proto::SocketAddress from_sockaddr(const sockaddr_storage& s) {
  proto::SocketAddress a;
  if (s.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&s);
    a.family = proto::SocketAddress::Family::ipv4;
    std::memcpy(a.ip.data(), &sin->sin_addr, 4);
    a.port = ntohs(sin->sin_port);
  } else {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&s);
    a.family = proto::SocketAddress::Family::ipv6;
    std::memcpy(a.ip.data(), &sin6->sin6_addr, 16);
    a.port = ntohs(sin6->sin6_port);
  }
  return a;
}

struct Slot {
  uint32_t seq = 0;
  bool pending = false;
  uint64_t sent_ns = 0;
  Bytes request;
};

struct Flow {
  int fd = -1;
  uint16_t index = 0;
  proto::SocketAddress local;
  std::vector<Slot> slots;
  std::vector<uint16_t> to_send;  // slot indexes waiting for sendmmsg
};

struct Counters {
  uint64_t sent = 0;
  uint64_t responses = 0;  // valid answers to a request in flight
  uint64_t invalid = 0;
  uint64_t late = 0;        // answers to a request that had already timed out
  uint64_t duplicates = 0;  // a second answer to the same request
  uint64_t timeouts = 0;
  uint64_t send_errors = 0;
  std::map<std::string, uint64_t> invalid_reasons;
  std::vector<uint32_t> latencies_ns;
};

class LoadGenerator {
 public:
  explicit LoadGenerator(const Options& options) : options_(options) {
    std::random_device device;
    nonce_ = device();
  }

  bool open_sockets(std::string& error);
  void run();
  void print_json(double elapsed_s) const;

 private:
  Bytes build_request(uint16_t flow_index, uint16_t slot_index, uint32_t seq) const;
  void prepare(Flow& flow, uint16_t slot_index);
  void flush_sends(Flow& flow);
  void receive(Flow& flow);
  void handle(Flow& flow, ByteView datagram, const sockaddr_storage& from, bool truncated, uint64_t at);
  void check_timeouts(uint64_t at);
  void invalid(const std::string& reason) {
    ++counters_.invalid;
    if (counters_.invalid_reasons[reason]++ == 0) std::fprintf(stderr, "stun_load: invalid response: %s\n", reason.c_str());
  }

  Options options_;
  uint32_t nonce_ = 0;
  std::vector<Flow> flows_;
  Counters counters_;
};

bool LoadGenerator::open_sockets(std::string& error) {
  sockaddr_storage target{};
  socklen_t target_length = to_sockaddr(options_.target, &target);
  proto::SocketAddress bind_address = options_.target;
  bind_address.port = 0;
  sockaddr_storage local{};
  socklen_t local_length = to_sockaddr(bind_address, &local);
  for (size_t i = 0; i < options_.sockets; ++i) {
    Flow flow;
    flow.index = static_cast<uint16_t>(i);
    flow.fd = socket(target.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (flow.fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      return false;
    }
    int buffer = 4 << 20;
    setsockopt(flow.fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    setsockopt(flow.fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    // Connected: the kernel drops datagrams from anyone but the target, and
    // sends skip the per-datagram route lookup (the generator's cost matters).
    if (bind(flow.fd, reinterpret_cast<sockaddr*>(&local), local_length) != 0 ||
        connect(flow.fd, reinterpret_cast<sockaddr*>(&target), target_length) != 0) {
      error = std::string("bind/connect: ") + std::strerror(errno);
      close(flow.fd);
      return false;
    }
    sockaddr_storage name{};
    socklen_t name_length = sizeof name;
    getsockname(flow.fd, reinterpret_cast<sockaddr*>(&name), &name_length);
    flow.local = from_sockaddr(name);
    // Spread the requests in flight over the sockets.
    size_t count = options_.inflight / options_.sockets + (i < options_.inflight % options_.sockets ? 1 : 0);
    flow.slots.resize(count);
    flows_.push_back(std::move(flow));
  }
  return true;
}

// A Binding request with FINGERPRINT whose transaction ID names its slot.
Bytes LoadGenerator::build_request(uint16_t flow_index, uint16_t slot_index, uint32_t seq) const {
  proto::TransactionId id;
  store_be32(id.bytes.data(), nonce_);
  store_be16(id.bytes.data() + 4, flow_index);
  store_be16(id.bytes.data() + 6, slot_index);
  store_be32(id.bytes.data() + 8, seq);
  return proto::MessageBuilder(proto::MessageClass::request, proto::method_binding, id).finish(true);
}

// Gives the slot a new sequence number and a fresh request, and queues it.
void LoadGenerator::prepare(Flow& flow, uint16_t slot_index) {
  Slot& slot = flow.slots[slot_index];
  ++slot.seq;
  slot.request = build_request(flow.index, slot_index, slot.seq);
  slot.pending = false;
  flow.to_send.push_back(slot_index);
}

void LoadGenerator::flush_sends(Flow& flow) {
  while (!flow.to_send.empty()) {
    size_t n = std::min(flow.to_send.size(), batch_size);
    mmsghdr messages[batch_size];
    iovec vectors[batch_size];
    std::memset(messages, 0, sizeof(mmsghdr) * n);
    for (size_t i = 0; i < n; ++i) {
      Slot& slot = flow.slots[flow.to_send[i]];
      vectors[i].iov_base = slot.request.data();
      vectors[i].iov_len = slot.request.size();
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t at = now_ns();
    int sent = sendmmsg(flow.fd, messages, static_cast<unsigned>(n), 0);
    if (sent <= 0) {
      if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ++counters_.send_errors;
      if (sent < 0 && errno == ECONNREFUSED) continue;  // an ICMP error from an earlier send: retry
      return;                                           // full: retry on the next turn
    }
    for (int i = 0; i < sent; ++i) {
      Slot& slot = flow.slots[flow.to_send[static_cast<size_t>(i)]];
      slot.pending = true;
      slot.sent_ns = at;
    }
    counters_.sent += static_cast<uint64_t>(sent);
    flow.to_send.erase(flow.to_send.begin(), flow.to_send.begin() + sent);
  }
}

void LoadGenerator::receive(Flow& flow) {
  static thread_local std::vector<std::byte> buffers(batch_size * receive_slot_size);
  for (;;) {
    mmsghdr messages[batch_size];
    iovec vectors[batch_size];
    sockaddr_storage names[batch_size];
    std::memset(messages, 0, sizeof messages);
    for (size_t i = 0; i < batch_size; ++i) {
      vectors[i].iov_base = buffers.data() + i * receive_slot_size;
      vectors[i].iov_len = receive_slot_size;
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
      messages[i].msg_hdr.msg_name = &names[i];
      messages[i].msg_hdr.msg_namelen = sizeof names[i];
    }
    int received = recvmmsg(flow.fd, messages, batch_size, MSG_DONTWAIT, nullptr);
    if (received <= 0) return;  // EAGAIN, or ECONNREFUSED while the server is not up
    uint64_t at = now_ns();
    for (int i = 0; i < received; ++i) {
      const auto& header = messages[i].msg_hdr;
      ByteView datagram(buffers.data() + static_cast<size_t>(i) * receive_slot_size, messages[i].msg_len);
      handle(flow, datagram, names[i], (header.msg_flags & MSG_TRUNC) != 0, at);
    }
    if (static_cast<size_t>(received) < batch_size) return;
  }
}

void LoadGenerator::handle(Flow& flow, ByteView datagram, const sockaddr_storage& from, bool truncated, uint64_t at) {
  if (from_sockaddr(from) != options_.target) return invalid("from an address other than the target");
  if (truncated) return invalid("larger than 2048 bytes");
  if (datagram.size() < proto::header_size) return invalid("shorter than a STUN header");
  // Find the request this answers from the transaction ID (bytes 8..19).
  const std::byte* id = datagram.data() + 8;
  if (load_be32(id) != nonce_ || load_be16(id + 4) != flow.index) return invalid("unknown transaction ID");
  uint16_t slot_index = load_be16(id + 6);
  if (slot_index >= flow.slots.size()) return invalid("unknown transaction ID");
  Slot& slot = flow.slots[slot_index];
  uint32_t seq = load_be32(id + 8);
  if (seq > slot.seq) return invalid("unknown transaction ID");

  if (options_.echo) {
    // The request this echoes: the one in flight, or an older one rebuilt.
    Bytes older;
    const Bytes* request = &slot.request;
    if (seq < slot.seq) {
      older = build_request(flow.index, slot_index, seq);
      request = &older;
    }
    if (datagram.size() != request->size() || std::memcmp(datagram.data(), request->data(), datagram.size()) != 0)
      return invalid("echo differs from the request");
  } else {
    auto decoded = proto::decode(datagram);
    if (!decoded) return invalid(std::string("does not decode: ") + std::string(proto::to_string(decoded.error().code)));
    if (decoded->consumed != datagram.size()) return invalid("trailing bytes after the message");
    const proto::Message& m = decoded->message;
    if (m.method != proto::method_binding || m.message_class != proto::MessageClass::success)
      return invalid("not a Binding success response");
    if (!m.has_fingerprint) return invalid("no FINGERPRINT");
    const proto::Attribute* xma = m.find(proto::attr::xor_mapped_address);
    if (xma == nullptr) return invalid("no XOR-MAPPED-ADDRESS");
    auto mapped = proto::read_xor_address(*xma, m);
    if (!mapped) return invalid("malformed XOR-MAPPED-ADDRESS");
    if (*mapped != flow.local) return invalid("XOR-MAPPED-ADDRESS is not the generator's address");
  }

  if (seq < slot.seq) {
    ++counters_.late;
    return;
  }
  if (!slot.pending) {
    ++counters_.duplicates;
    return;
  }
  ++counters_.responses;
  uint64_t latency = at - slot.sent_ns;
  counters_.latencies_ns.push_back(static_cast<uint32_t>(std::min<uint64_t>(latency, UINT32_MAX)));
  prepare(flow, slot_index);
}

void LoadGenerator::check_timeouts(uint64_t at) {
  for (auto& flow : flows_) {
    for (size_t i = 0; i < flow.slots.size(); ++i) {
      Slot& slot = flow.slots[i];
      if (slot.pending && at - slot.sent_ns > options_.timeout_ns) {
        ++counters_.timeouts;
        prepare(flow, static_cast<uint16_t>(i));
      }
    }
  }
}

void LoadGenerator::run() {
  counters_.latencies_ns.reserve(1 << 20);
  std::vector<pollfd> fds;
  for (auto& flow : flows_) {
    fds.push_back(pollfd{flow.fd, POLLIN, 0});
    for (size_t i = 0; i < flow.slots.size(); ++i) prepare(flow, static_cast<uint16_t>(i));
  }
  uint64_t start = now_ns();
  uint64_t end = start + static_cast<uint64_t>(options_.duration_s * 1e9);
  uint64_t next_timeout_check = start + options_.timeout_ns / 4;
  for (auto& flow : flows_) flush_sends(flow);
  for (;;) {
    uint64_t now = now_ns();
    if (now >= end) break;
    uint64_t wait = std::min<uint64_t>(end - now, 2'000'000);
    timespec ts{static_cast<time_t>(wait / 1'000'000'000u), static_cast<long>(wait % 1'000'000'000u)};
    int ready = ppoll(fds.data(), fds.size(), &ts, nullptr);
    if (ready < 0 && errno != EINTR) {
      std::perror("ppoll");
      break;
    }
    for (size_t i = 0; i < flows_.size(); ++i) {
      if (fds[i].revents != 0) receive(flows_[i]);
    }
    now = now_ns();
    if (now >= next_timeout_check) {
      check_timeouts(now);
      next_timeout_check = now + options_.timeout_ns / 4;
    }
    for (auto& flow : flows_) flush_sends(flow);
  }
  print_json(static_cast<double>(now_ns() - start) / 1e9);
}

double percentile_us(std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[index] / 1000.0;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

void LoadGenerator::print_json(double elapsed_s) const {
  std::vector<uint32_t> sorted = counters_.latencies_ns;
  std::sort(sorted.begin(), sorted.end());
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  double cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                 static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::string reasons;
  for (const auto& [reason, count] : counters_.invalid_reasons) {
    if (!reasons.empty()) reasons += ", ";
    reasons += "\"" + json_escape(reason) + "\": " + std::to_string(count);
  }
  std::printf(
      "{\"target\": \"%s\", \"mode\": \"%s\", \"sockets\": %zu, \"inflight\": %zu, \"duration_s\": %.3f, "
      "\"sent\": %llu, \"responses\": %llu, \"responses_per_s\": %.1f, \"invalid\": %llu, \"late\": %llu, "
      "\"duplicates\": %llu, \"timeouts\": %llu, \"send_errors\": %llu, \"p50_us\": %.1f, \"p90_us\": %.1f, "
      "\"p99_us\": %.1f, \"max_us\": %.1f, \"generator_cpu_s\": %.3f, \"invalid_reasons\": {%s}}\n",
      options_.target.to_string().c_str(), options_.echo ? "echo" : "stun", options_.sockets, options_.inflight,
      elapsed_s, static_cast<unsigned long long>(counters_.sent), static_cast<unsigned long long>(counters_.responses),
      static_cast<double>(counters_.responses) / elapsed_s, static_cast<unsigned long long>(counters_.invalid),
      static_cast<unsigned long long>(counters_.late), static_cast<unsigned long long>(counters_.duplicates),
      static_cast<unsigned long long>(counters_.timeouts), static_cast<unsigned long long>(counters_.send_errors),
      percentile_us(sorted, 0.50), percentile_us(sorted, 0.90), percentile_us(sorted, 0.99),
      sorted.empty() ? 0.0 : sorted.back() / 1000.0, cpu_s, reasons.c_str());
  std::fflush(stdout);
}

const char* usage_text =
    "usage: stun_load --target 127.0.0.1:PORT [--duration SECONDS] [--inflight N] [--sockets N]\n"
    "                 [--timeout-ms MS] [--echo]\n"
    "Keeps N STUN Binding requests in flight against a loopback UDP server for a fixed time,\n"
    "validates every response and prints one JSON line. --echo: the target is an echo server\n"
    "and a valid response is a byte-identical copy of the request.\n";

template <typename T>
bool parse_number(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool parse_options(int argc, char** argv, Options& options, std::string& error) {
  bool have_target = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) return {};
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    } else if (arg == "--echo") {
      options.echo = true;
    } else if (arg == "--target") {
      auto parsed = proto::SocketAddress::parse(value());
      if (!parsed || parsed->port == 0) return error = "--target wants ADDRESS:PORT", false;
      options.target = *parsed;
      have_target = true;
    } else if (arg == "--duration") {
      std::string text(value());
      char* end = nullptr;
      options.duration_s = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !(options.duration_s > 0 && options.duration_s <= 600))
        return error = "--duration wants seconds in (0, 600]", false;
    } else if (arg == "--inflight") {
      if (!parse_number(value(), options.inflight) || options.inflight == 0 || options.inflight > 65535)
        return error = "--inflight wants 1..65535", false;
    } else if (arg == "--sockets") {
      if (!parse_number(value(), options.sockets) || options.sockets == 0 || options.sockets > 1024)
        return error = "--sockets wants 1..1024", false;
    } else if (arg == "--timeout-ms") {
      uint64_t ms = 0;
      if (!parse_number(value(), ms) || ms == 0 || ms > 10'000) return error = "--timeout-ms wants 1..10000", false;
      options.timeout_ns = ms * 1'000'000;
    } else {
      return error = "unknown argument " + std::string(arg), false;
    }
  }
  if (!have_target) return error = "--target is required", false;
  // Load only ever goes to this machine.
  if (!is_loopback(options.target)) return error = "--target must be a loopback address (127.0.0.0/8 or ::1)", false;
  if (options.sockets > options.inflight) options.sockets = options.inflight;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  std::string error;
  if (!parse_options(argc, argv, options, error)) {
    std::fprintf(stderr, "stun_load: %s\n%s", error.c_str(), usage_text);
    return 2;
  }
  LoadGenerator generator(options);
  if (!generator.open_sockets(error)) {
    std::fprintf(stderr, "stun_load: %s\n", error.c_str());
    return 1;
  }
  generator.run();
  return 0;
}
