// One ICE transport for a call: a libnice agent with one stream and one
// component, on a GLib main context of its own that the libuv loop runs (no
// GLib thread: uv_poll handles for the context's fds, a uv_timer for its
// timeouts). The session is created and driven from the loop's thread; events
// are queued by libnice's signals and handed to IceEvents after libnice's
// dispatch returns, never from inside libnice.
//
// This is the only place in the tree that sees libnice or GLib: the header
// keeps their types out (the agent lives behind an opaque pointer).
#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/socket_address.hpp"
#include "terminal/ice_description.hpp"

namespace tsunagu::terminal {

struct IceConfig {
  bool controlling = false;
  bool reliable = false;  // true: PseudoTCP byte stream; false: datagrams
  std::optional<proto::SocketAddress> stun_server;
  struct Turn {
    proto::SocketAddress server;  // TURN over UDP
    std::string username, password;
  };
  std::optional<Turn> turn;
  // Forced relay: libnice's force-relay, and only relay candidates are given
  // to the peer. Needs `turn`.
  bool relay_only = false;
  // Added with nice_agent_add_local_address (libnice ignores loopback
  // otherwise); empty = libnice's own interface discovery. Port is ignored.
  std::vector<proto::SocketAddress> local_addresses;
  bool regular_nomination = false;  // default: aggressive
};

// What the failure of connectivity checks says to a person: which candidate
// types each side had, and whether a relay was configured, gathered or (with
// one gathered) lost. coturn closes an allocation when it cannot send to a
// peer, and answers 403 for a denied one: both look like "no pair worked".
struct IceFailureContext {
  std::optional<std::string> turn_server;  // "address:port" when TURN was configured
  std::vector<std::string> local_types;    // of the candidates sent to the peer
  std::vector<std::string> remote_types;   // of the peer's candidates
};
std::string explain_ice_failure(const IceFailureContext& context);
// The candidate type ("host", "srflx", "relay", ...) of an "a=candidate:" line, or "".
std::string candidate_type_of(std::string_view line);

struct SelectedPair {
  std::string local_type, remote_type;  // "host", "srflx", "prflx", "relay"
  proto::SocketAddress local, remote;   // for a relay candidate: the relayed address
};

struct IceEvents {
  std::function<void(const IceDescription&)> on_gathered;          // send it to the peer
  std::function<void(const SelectedPair&)> on_connected;           // first CONNECTED: start sending
  std::function<void(const SelectedPair&)> on_selected_pair_changed;  // after on_connected
  std::function<void(ByteView)> on_data;  // a datagram, or the next piece of the byte stream
  std::function<void()> on_writable;      // reliable mode: send() will take bytes again
  std::function<void(std::string_view reason)> on_failed;  // gathering or checks failed
};

class IceSession {
 public:
  // Builds the agent and its stream (nothing is sent until start()); errors
  // are configuration mistakes libnice refuses (a bad TURN server, ...).
  static Expected<std::unique_ptr<IceSession>, std::string> create(uv_loop_t* loop, IceConfig config,
                                                                    IceEvents events);
  IceSession(const IceSession&) = delete;
  IceSession& operator=(const IceSession&) = delete;
  // close() if not yet closed. Safe from inside any of the event callbacks.
  ~IceSession();

  void start();                                  // gather; on_gathered follows
  void set_remote(const IceDescription& remote);  // after the peer's on_gathered
  // One more remote candidate ("a=candidate:" line) after set_remote: one the
  // peer trickled. A TCP one or one of another component is ignored.
  void add_remote_candidate(const std::string& line);
  // Bytes accepted: the whole datagram or 0 (datagram mode); in reliable mode
  // possibly part of it, and 0 until writable: wait for on_writable. Also 0
  // before the pair is connected and after close(). Straight into libnice.
  size_t send(ByteView data);
  // Releases the TURN allocation (nice_agent_close_async), running the
  // agent's context alone until that completes, and closes the loop's
  // handles. No callback fires after close() returns.
  // Blocks the loop thread meanwhile: under a millisecond without TURN, one
  // Refresh round trip with it (~20 ms on loopback), ~0.7 s when the TURN
  // server does not answer (the Refresh's STUN timer is shortened at close);
  // close_timeout_ms is the hard cap, after which the agent is abandoned
  // (leaked) rather than block longer.
  void close();
  // explain_ice_failure() of what this session gathered and was sent so far:
  // for a caller that gives up before libnice reports the checks failed.
  std::string explain_failure();

  // A voice call reads its datagrams once per 20 ms frame anyway, so handing
  // each one to on_data as it arrives buys nothing (libnice still reads the
  // socket on arrival, so the arrival times stay exact). With wake-ups off, datagrams wait in the
  // queue until deliver_pending() (the audio clock's tick) or any other event
  // delivers them, in order; on_data then sees each one's arrival time in
  // data_arrival_ns(). Turning wake-ups back on delivers what waits.
  void set_data_wakeups(bool wake);
  void deliver_pending();
  // CLOCK_MONOTONIC ns at which the datagram being delivered to on_data was
  // read from the socket; 0 outside on_data.
  uint64_t data_arrival_ns() const { return delivering_arrival_ns_; }
  // The address the datagram being delivered to on_data came from (for a
  // relayed one: the peer's, as TURN reports it); nullopt outside on_data and
  // in reliable mode (a byte stream has no per-piece source).
  const std::optional<proto::SocketAddress>& data_source() const { return delivering_source_; }

  static constexpr unsigned close_timeout_ms = 2000;

  struct Core;  // libnice's side; defined in the .cpp

 private:
  explicit IceSession(uv_loop_t* loop);
  void dispatch();
  // Delivers the queue when an event in it wants delivering now; false when
  // this session was closed or destroyed by a callback.
  bool deliver_due();

  uv_loop_t* loop_;
  std::unique_ptr<Core> core_;
  IceEvents events_;
  bool closed_ = false;
  uint64_t delivering_arrival_ns_ = 0;
  std::optional<proto::SocketAddress> delivering_source_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed
};

}  // namespace tsunagu::terminal
