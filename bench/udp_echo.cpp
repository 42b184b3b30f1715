// udp_echo: the benchmarks' ceiling. A single-threaded UDP server that sends
// every datagram back unchanged to its source, receiving and sending in
// batches (recvmmsg/sendmmsg). Whatever the load generator reaches against it
// is the most any UDP server can reach on this machine with this generator.
//
//   udp_echo --listen 127.0.0.1:PORT
// prints "ready ADDRESS:PORT" once bound (port 0 picks one); SIGTERM or
// SIGINT stops it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "proto/socket_address.hpp"

namespace {

constexpr unsigned batch_size = 64;
constexpr size_t slot_size = 2048;

volatile sig_atomic_t stopping = 0;

void on_signal(int) { stopping = 1; }

}  // namespace

int main(int argc, char** argv) {
  using tsunagu::proto::SocketAddress;
  if (argc != 3 || std::string(argv[1]) != "--listen") {
    std::fprintf(stderr, "usage: udp_echo --listen 127.0.0.1:PORT\n");
    return 2;
  }
  auto address = SocketAddress::parse(argv[2]);
  bool loopback = address && (address->family == SocketAddress::Family::ipv4
                                  ? address->ip[0] == 127
                                  : address->to_string().rfind("[::1]:", 0) == 0);
  if (!loopback) {
    std::fprintf(stderr, "udp_echo: --listen wants a loopback ADDRESS:PORT\n");
    return 2;
  }

  sockaddr_storage storage{};
  socklen_t length = 0;
  if (address->family == SocketAddress::Family::ipv4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(address->port);
    std::memcpy(&sin->sin_addr, address->ip.data(), 4);
    length = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(address->port);
    std::memcpy(&sin6->sin6_addr, address->ip.data(), 16);
    length = sizeof(sockaddr_in6);
  }
  int fd = socket(storage.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    std::fprintf(stderr, "udp_echo: bind %s: %s\n", argv[2], std::strerror(errno));
    return 1;
  }
  int buffer = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length);
  uint16_t port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                   : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  address->port = port;

  // No SA_RESTART: a signal interrupts the blocking recvmmsg.
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::printf("ready %s\n", address->to_string().c_str());
  std::fflush(stdout);

  std::vector<char> buffers(batch_size * slot_size);
  mmsghdr messages[batch_size];
  iovec vectors[batch_size];
  sockaddr_storage names[batch_size];
  unsigned long long echoed = 0;
  while (!stopping) {
    for (unsigned i = 0; i < batch_size; ++i) {
      vectors[i] = iovec{buffers.data() + i * slot_size, slot_size};
      messages[i].msg_hdr = msghdr{};
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
      messages[i].msg_hdr.msg_name = &names[i];
      messages[i].msg_hdr.msg_namelen = sizeof names[i];
    }
    // Blocks for the first datagram, then takes what else is queued.
    int received = recvmmsg(fd, messages, batch_size, MSG_WAITFORONE, nullptr);
    if (received <= 0) continue;  // EINTR (a signal), or a transient error
    // Send back exactly the bytes received, to the address they came from.
    for (int i = 0; i < received; ++i) vectors[i].iov_len = messages[i].msg_len;
    int done = 0;
    while (done < received) {
      int sent = sendmmsg(fd, messages + done, static_cast<unsigned>(received - done), 0);
      if (sent < 0) {
        if (errno == EINTR) continue;
        ++done;  // this one cannot be sent (e.g. its sender is gone): drop it
        continue;
      }
      done += sent;
    }
    echoed += static_cast<unsigned long long>(received);
  }
  std::fprintf(stderr, "udp_echo: echoed %llu datagrams\n", echoed);
  close(fd);
  return 0;
}
