// What a dialing page sends on its /api/events WebSocket to place, answer and
// end calls (docs/web.md, "Calls from the page"): one JSON object per text
// message. Pure: text in, a checked value out. The SDP is checked here too
// (webrtc/session_description.hpp): the node passes on only descriptions it
// could read, so the fingerprint the other party checks is one the node read
// from this session's authenticated socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/expected.hpp"

namespace tsunagu::rendezvous {

// A text message larger than this is refused before it is parsed.
inline constexpr size_t max_browser_message = 16 * 1024;
// An offer or answer must fit the protocol's ICE-DESCRIPTION (node_calls.cpp);
// a page's audio-only description is ~2 KB with its candidates.
inline constexpr size_t max_browser_sdp = 4096;
inline constexpr size_t max_browser_candidate = 512;

// What the node counted of the pages' calls (WebApi, web_calls.cpp); /metrics
// shows them (node_metrics.cpp, docs/operator.md).
struct BrowserCallCounters {
  uint64_t messages_refused = 0;   // not JSON, unknown type, a bad field (each answered with call_error)
  uint64_t message_sdp_refused = 0;  // of those: the sdp field
  uint64_t sdp_refused = 0;        // an offer or answer (from the page, or rung in) that does not parse
  uint64_t candidates_refused = 0;
  uint64_t rings_delivered = 0;    // rings the node sent to a page
  uint64_t rings_refused = 0;      // rings answered for the page: no socket, or not the WebRTC profile
  uint64_t calls_placed = 0;       // a page's offer rang its callee
  uint64_t calls_answered = 0;     // a page answered a ring
  uint64_t paths_reported = 0;     // call_path messages passed on (the pair a page's call selected)
};

struct BrowserMessage {
  enum class Kind {
    available,    // this page takes calls: the session becomes the user's presence
    unavailable,  // it no longer does
    call,         // prepare a call to `to`
    offer,        // ring the prepared call `call_id` with `sdp`
    ice_servers,  // STUN/TURN for `call_id` (the callee's, while rung)
    answer,       // accept the ring `call_id` with `sdp`
    decline,      // refuse the ring `call_id` (`busy`: 486 instead of 603)
    hangup,       // end `call_id`, whatever its state
    candidate,    // a trickled "candidate:..." for `call_id`
    call_path,    // once connected: the selected pair of `call_id` as candidate types (`path`)
  };
  Kind kind = Kind::available;
  std::string to;       // call
  std::string call_id;  // 32 hex digits, for all but available/unavailable/call
  std::string sdp;      // offer, answer
  std::string candidate;
  std::string path;  // call_path: "LOCAL/REMOTE", each host, srflx, prflx or relay
  bool busy = false;
};

struct BrowserMessageError {
  std::string reason;  // for the page: names the field
};

Expected<BrowserMessage, BrowserMessageError> parse_browser_message(std::string_view text);

// The SDP an offer or answer carries, read as the other party will read it:
// nullopt when usable, else why not ("line 3: ...").
std::optional<std::string> sdp_refusal(std::string_view sdp);

}  // namespace tsunagu::rendezvous
