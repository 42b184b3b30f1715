// A UDP socket on the libuv loop that hands each datagram to a callback and
// lets it answer at once. Receives in batches (recvmmsg) when the kernel can.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/socket_address.hpp"

namespace tsunagu::transport {

class UdpSocket {
 public:
  using OnDatagram = std::function<void(ByteView datagram, const sockaddr* from)>;

  // Binds to `address` (port 0 picks one). Errors carry libuv's message.
  static Expected<std::unique_ptr<UdpSocket>, std::string> bind(uv_loop_t* loop, const proto::SocketAddress& address,
                                                                 OnDatagram on_datagram);
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  // Closes the handle; the memory is released by the loop's close callback.
  ~UdpSocket();

  // Queues a datagram; queued datagrams leave in one sendmmsg at the end of
  // the receive batch (or when the queue is full, or at the end of the loop
  // turn). Best effort: what the kernel will not take is dropped and counted
  // (STUN clients retransmit).
  void send(ByteView datagram, const sockaddr* to);
  void flush();
  proto::SocketAddress local_address() const;
  uint64_t dropped_sends() const { return dropped_sends_; }

 private:
  UdpSocket() = default;
  static void alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void recv_cb(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned flags);
  static constexpr size_t batch_slots = 64;
  static constexpr size_t slot_size = 1500;
  uv_udp_t* handle_ = nullptr;  // heap: outlives this object until its close callback
  uv_check_t* flush_check_ = nullptr;
  OnDatagram on_datagram_;
  uint64_t dropped_sends_ = 0;
  // Outgoing batch for sendmmsg.
  std::unique_ptr<std::byte[]> slots_;
  std::unique_ptr<sockaddr_storage[]> targets_;
  size_t lengths_[batch_slots] = {};
  size_t queued_ = 0;
};

}  // namespace tsunagu::transport
