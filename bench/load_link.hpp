// LoadLink: one client TLS link of a benchmark load generator. A non-blocking
// TCP socket to a loopback server, our TlsSession (memory BIOs) on top and a
// FrameReader splitting the plaintext into STUN messages. The generator owns
// the epoll loop; a link only turns "readable"/"writable" into messages and
// ciphertext. Header-only: shared by bench/lookup_load and bench/idle_links.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.hpp"
#include "proto/frame_reader.hpp"
#include "proto/socket_address.hpp"
#include "proto/stun_message.hpp"
#include "security/tls_session.hpp"

namespace tsunagu::bench {

inline uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

inline bool is_loopback(const proto::SocketAddress& a) {
  if (a.family == proto::SocketAddress::Family::ipv4) return a.ip[0] == 127;
  for (size_t i = 0; i < 15; ++i)
    if (a.ip[i] != 0) return false;
  return a.ip[15] == 1;
}

inline socklen_t to_sockaddr(const proto::SocketAddress& a, sockaddr_storage* out) {
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

inline proto::TransactionId random_transaction(uint64_t counter, uint32_t nonce) {
  proto::TransactionId id;
  store_be32(id.bytes.data(), nonce);
  store_be64(id.bytes.data() + 4, counter);
  return id;
}

class LoadLink {
 public:
  enum class State { connecting, handshaking, open, closed };

  // Starts a non-blocking connect from `source` (port 0) to `target`.
  // Returns an errno-style message on failure.
  std::optional<std::string> connect(const proto::SocketAddress& target, const proto::SocketAddress* source,
                                     std::shared_ptr<security::TlsContext> context, std::string_view verify_name) {
    sockaddr_storage to{};
    socklen_t to_len = to_sockaddr(target, &to);
    fd_ = ::socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return std::string("socket: ") + std::strerror(errno);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (source != nullptr) {
      sockaddr_storage from{};
      socklen_t from_len = to_sockaddr(*source, &from);
      if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), from_len) != 0)
        return std::string("bind: ") + std::strerror(errno);
    }
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&to), to_len) != 0 && errno != EINPROGRESS)
      return std::string("connect: ") + std::strerror(errno);
    tls_ = security::TlsSession::create(std::move(context), security::TlsSession::Role::client, verify_name);
    if (!tls_) return std::string("TlsSession::create failed");
    state_ = State::connecting;
    connect_started_ns_ = now_ns();
    return std::nullopt;
  }

  int fd() const { return fd_; }
  State state() const { return state_; }
  uint64_t connect_started_ns() const { return connect_started_ns_; }
  bool wants_write() const { return state_ == State::connecting || out_offset_ < out_.size(); }

  // Queues one plaintext message (before the handshake completes it is held
  // by the TlsSession and sent when it does).
  bool send(ByteView message) {
    if (!tls_ || state_ == State::closed) return false;
    if (!tls_->send(message)) return fail("TLS send failed");
    collect_output();
    return true;
  }

  // Socket writable: finishes the connect, then writes what is queued.
  // Returns false when the link failed (error() says why).
  bool on_writable() {
    if (state_ == State::connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return fail(std::string("connect: ") + std::strerror(err));
      state_ = State::handshaking;
      if (!tls_->start()) return fail("TLS start failed");
      collect_output();
    }
    return flush();
  }

  // Socket readable: reads, decrypts, and calls on_message(ByteView) for each
  // whole STUN message. Returns false when the link failed or was closed.
  template <typename OnMessage>
  bool on_readable(OnMessage&& on_message) {
    std::byte buffer[16384];
    for (int rounds = 0; rounds < 16; ++rounds) {
      ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return fail(std::string("read: ") + std::strerror(errno));
      }
      if (n == 0) return fail("the server closed the connection");
      plaintext_.clear();
      if (!tls_->receive(ByteView(buffer, static_cast<size_t>(n)), plaintext_)) return fail("TLS receive failed");
      collect_output();
      if (state_ == State::handshaking && tls_->handshake_complete()) {
        state_ = State::open;
        open_ns_ = now_ns();
      }
      if (!plaintext_.empty()) {
        reader_.append(plaintext_);
        for (;;) {
          auto next = reader_.next();
          if (!next) return fail("framing error from the server");
          if (!next->has_value()) break;
          on_message(**next);
          if (state_ == State::closed) return false;
        }
      }
      if (static_cast<size_t>(n) < sizeof buffer) break;
    }
    return flush();
  }

  bool flush() {
    while (out_offset_ < out_.size()) {
      ssize_t n = ::write(fd_, out_.data() + out_offset_, out_.size() - out_offset_);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        if (errno == EINTR) continue;
        return fail(std::string("write: ") + std::strerror(errno));
      }
      out_offset_ += static_cast<size_t>(n);
    }
    out_.clear();
    out_offset_ = 0;
    return true;
  }

  // Closes the socket with a reset (SO_LINGER 0): no TIME_WAIT is left behind,
  // so repeated runs of many thousands of links do not exhaust the port range.
  void abort() {
    if (fd_ >= 0) {
      linger l{1, 0};
      ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(fd_);
      fd_ = -1;
    }
    state_ = State::closed;
  }

  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    abort();
    return false;
  }
  const std::string& error() const { return error_; }
  uint64_t open_ns() const { return open_ns_; }

  ~LoadLink() { abort(); }

  // Generator bookkeeping.
  void* user = nullptr;

 private:
  void collect_output() {
    if (!tls_->has_output()) return;
    Bytes more = tls_->take_output();
    if (out_offset_ == out_.size()) {
      out_ = std::move(more);
      out_offset_ = 0;
    } else {
      out_.insert(out_.end(), more.begin(), more.end());
    }
  }

  int fd_ = -1;
  State state_ = State::closed;
  std::unique_ptr<security::TlsSession> tls_;
  proto::FrameReader reader_;
  Bytes out_;
  size_t out_offset_ = 0;
  Bytes plaintext_;
  std::string error_;
  uint64_t connect_started_ns_ = 0, open_ns_ = 0;
};

}  // namespace tsunagu::bench
