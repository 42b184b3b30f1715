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

  // Best effort, no queueing: a datagram the kernel cannot take now is dropped
  // (STUN clients retransmit). Returns false when dropped.
  bool send(ByteView datagram, const sockaddr* to);
  proto::SocketAddress local_address() const;
  uint64_t dropped_sends() const { return dropped_sends_; }

 private:
  UdpSocket() = default;
  static void alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void recv_cb(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned flags);
  uv_udp_t* handle_ = nullptr;  // heap: outlives this object until its close callback
  OnDatagram on_datagram_;
  uint64_t dropped_sends_ = 0;
};

}  // namespace tsunagu::transport
