// Fuzz target: what arrives on a WebRTC call's port after ICE. The input is a
// sequence of datagrams (each a 2-byte big-endian length and that many
// bytes); each is classified (RFC 7983) and fed to a DTLS server session
// (security::DtlsSession, OpenSSL's record and handshake parsing behind it) or
// to an SrtpSession's unprotect (libsrtp's), as the call flow will. Nothing may
// crash or leak; what unprotects must be no longer than what came in; after an
// error the DTLS session is dropped, as a call would.
//
// Seeds (media_datagrams_corpus/): a real ClientHello, and SRTP/SRTCP packets
// protected with the fixed keys below, written by WEBRTC_WRITE_SEEDS=DIR
// running this target's replay binary (see the end of this file).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>

#include "webrtc/packet_demux.hpp"
#include "webrtc/srtp_session.hpp"

using namespace tsunagu;
using namespace tsunagu::webrtc;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

security::SrtpKeyingMaterial fixed_keys() {
  security::SrtpKeyingMaterial keys;
  keys.profile = security::SrtpProfile::aes128_cm_sha1_80;
  keys.client_key.assign(16, std::byte{0x11});
  keys.client_salt.assign(14, std::byte{0x22});
  keys.server_key.assign(16, std::byte{0x33});
  keys.server_salt.assign(14, std::byte{0x44});
  return keys;
}

const std::shared_ptr<const security::DtlsIdentity>& identity() {
  static const auto shared = security::DtlsIdentity::generate();
  return shared;
}

const std::string kAnyFingerprint =
    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(reinterpret_cast<const std::byte*>(data), size);
  security::DtlsSession::Options options;
  options.role = security::DtlsSession::Role::server;
  options.peer_fingerprint = kAnyFingerprint;
  auto created = security::DtlsSession::create(identity(), options);
  require(created.has_value());
  std::unique_ptr<security::DtlsSession> dtls = std::move(*created);
  auto srtp = SrtpSession::create(fixed_keys(), security::DtlsSession::Role::server);
  require(srtp.has_value());

  size_t offset = 0, datagrams = 0;
  while (size - offset >= 2 && datagrams < 64) {
    size_t length = std::min<size_t>(load_be16(input.data() + offset), size - offset - 2);
    offset += 2;
    ByteView datagram = input.subspan(offset, length);
    offset += length;
    ++datagrams;
    switch (classify_packet(datagram)) {
      case PacketKind::dtls:
        if (dtls) {
          if (!dtls->receive(datagram)) dtls.reset();
          else (void)dtls->take_datagrams();
        }
        break;
      case PacketKind::rtp: {
        Bytes packet(datagram.begin(), datagram.end());
        bool rtcp = datagram.size() >= 2 && (static_cast<uint8_t>(datagram[1]) >= 192 &&
                                             static_cast<uint8_t>(datagram[1]) <= 223);
        auto result = rtcp ? (*srtp)->unprotect_rtcp(packet) : (*srtp)->unprotect_rtp(packet);
        if (result) require(packet.size() <= datagram.size());
        else require(packet.size() == datagram.size());
        break;
      }
      default:
        break;
    }
  }
  return 0;
}

// Writes the seed corpus when the replay binary runs with WEBRTC_WRITE_SEEDS=DIR
// (the replay main calls LLVMFuzzerTestOneInput only; this runs at start-up).
namespace {

void write_seed(const std::string& path, const std::vector<Bytes>& datagrams) {
  std::ofstream out(path, std::ios::binary);
  for (const Bytes& datagram : datagrams) {
    uint8_t length[2] = {static_cast<uint8_t>(datagram.size() >> 8), static_cast<uint8_t>(datagram.size())};
    out.write(reinterpret_cast<const char*>(length), 2);
    out.write(reinterpret_cast<const char*>(datagram.data()), static_cast<std::streamsize>(datagram.size()));
  }
}

[[maybe_unused]] const bool seeds_written = [] {
  const char* directory = std::getenv("WEBRTC_WRITE_SEEDS");
  if (directory == nullptr) return false;
  security::DtlsSession::Options options;
  options.peer_fingerprint = kAnyFingerprint;
  auto client = security::DtlsSession::create(security::DtlsIdentity::generate(), options);
  require(client.has_value() && (*client)->start().has_value());
  write_seed(std::string(directory) + "/client_hello", (*client)->take_datagrams());

  auto sender = SrtpSession::create(fixed_keys(), security::DtlsSession::Role::client);
  require(sender.has_value());
  std::vector<Bytes> packets;
  for (uint8_t sequence = 1; sequence <= 3; ++sequence) {
    Bytes rtp = {std::byte{0x80}, std::byte{111}, std::byte{0}, std::byte{sequence}, std::byte{0}, std::byte{0},
                 std::byte{0x03}, std::byte{0xc0}, std::byte{0x11}, std::byte{0x22}, std::byte{0x33}, std::byte{0x44},
                 std::byte{0xf8}, std::byte{0xff}, std::byte{0xfe}};  // an Opus silence frame
    require((*sender)->protect_rtp(rtp).has_value());
    packets.push_back(rtp);
  }
  packets.push_back(packets.front());  // a replay
  Bytes receiver_report = {std::byte{0x80}, std::byte{201}, std::byte{0}, std::byte{1},
                           std::byte{0x55}, std::byte{0x66}, std::byte{0x77}, std::byte{0x88}};
  require((*sender)->protect_rtcp(receiver_report).has_value());
  packets.push_back(receiver_report);
  write_seed(std::string(directory) + "/srtp_packets", packets);
  return true;
}();

}  // namespace
