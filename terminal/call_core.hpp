// One call of `tsunagu call` or `tsunagu listen`, without the loop, libnice or
// the node link: the signalling states, the ICE deadline and the exit code.
// Like rendezvous/NodeCore: inputs (the node's answers and events, ICE events,
// the user's accept decision or ^C, `now_ns`) in; actions and a deadline out.
// call_runner.cpp does what the actions say and feeds back what happened.
//
// The caller: logged in -> prepare (call with USER-ID only: CALL-ID and this
// call's STUN/TURN settings) -> gather -> place (CALL-ID and the offer) ->
// ringing -> accepted (keys, the callee's answer) -> connected -> transfer ->
// ended. The callee: ring -> accept decision -> (from the node) turn_credentials
// with the CALL-ID -> gather -> answer the ring -> accepted (keys) -> connected
// -> transfer -> ended. docs/calls.md tells the same story with the messages.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "proto/stun_message.hpp"
#include "terminal/ice_session.hpp"
#include "terminal/node_client.hpp"
#include "terminal/transfer_core.hpp"
#include "terminal/webrtc_transport.hpp"

namespace tsunagu::terminal {

enum class CallState : uint8_t { idle, preparing, ringing, accepted, connected, transfer, ended };
std::string_view to_string(CallState state);

struct CallCoreConfig {
  bool caller = true;
  bool reliable = true;
  std::string callee;  // caller: whom to call
  bool relay_only = false;
  uint64_t ice_timeout_ns = 20'000'000'000;
  TransferConfig transfer;  // caller, reliable and call_started_ns are set by the core
  // callee
  std::vector<std::string> auto_accept_from;  // "*" = anyone
  bool can_prompt = false;  // a terminal on stdin to ask (and not --pipe, which reads stdin)
  bool fetch_turn = false;  // a ring from the node: TURN credentials are asked with the CALL-ID
};

namespace call {
struct SendPrepare { std::string callee; bool reliable; };              // call: USER-ID (+ CALL-MEDIA)
struct SendPlace { std::string call_id, callee, offer; bool webrtc = false; };  // call: CALL-ID, USER-ID, ICE-DESCRIPTION (+ MEDIA-PROFILE)
// then hangup_answered(). With a refusal (ERROR-CODE 488): this end refused
// the other's media (a page's DTLS certificate), and the node says so to it.
struct SendHangup { std::string call_id; uint16_t refusal_code = 0; std::string refusal_reason; };
struct FetchTurn { std::string call_id; };                              // then turn_answered()
struct ReplyRing { Bytes message; };                                    // the answer to the ring's transaction
struct PromptAccept { std::string caller; };                            // then accept_decision()
struct StartIce { IceConfig config; };                                  // then ice_gathered() ...
struct SetRemote { IceDescription remote; };
// After SetRemote: one more remote candidate, one a browser trickled (call_candidate).
struct AddRemoteCandidate { std::string line; };
struct ExplainIceFailure {};  // the ICE deadline passed: answer with ice_gave_up(explanation)
struct ReleaseMedia {};       // write the report, close ICE (releasing TURN), stop reading input
struct StopLink {};           // caller: stop the node link; the run ends
// Once connected: tell the node the path ICE selected (call_path indication,
// ICE-PATH "LOCAL/REMOTE" candidate types) for its audit line; no answer.
struct ReportPath { std::string call_id, path; };
// callee: this call is over. `answered`: it was accepted, so its exit code is
// listen's and --once stops; a ring declined or given up while asking is not.
struct CallOver { int exit_code; bool answered; };
}  // namespace call
using CallAction = std::variant<call::SendPrepare, call::SendPlace, call::SendHangup, call::FetchTurn,
                                call::ReplyRing, call::PromptAccept, call::StartIce, call::SetRemote,
                                call::ExplainIceFailure, call::ReleaseMedia, call::StopLink, call::CallOver,
                                call::ReportPath, call::AddRemoteCandidate,
                                transfer::SendStream, transfer::SendDatagram, transfer::StartInput, transfer::StartAudio,
                                transfer::Print>;

// A node's refusal of a call (error code) as an exit code.
int exit_for_refusal(uint16_t code);
// A call_event's END-CODE as the caller's exit code.
int exit_for_end_code(uint32_t code);

class CallCore {
 public:
  CallCore(CallCoreConfig config, TransferOutput& output, uint64_t now_ns);

  // ---- caller
  void logged_in(uint64_t now_ns);
  void prepare_answered(const proto::Message* answer, std::string_view error, uint64_t now_ns);
  void place_answered(const proto::Message* answer, std::string_view error, uint64_t now_ns);
  void hangup_answered();
  void interrupted(uint64_t now_ns);  // ^C
  void link_stopped(ClientFailure failure, std::string_view detail, uint64_t now_ns);
  // ---- callee
  void ring(const proto::Message& ring, uint64_t now_ns);
  void accept_decision(bool accept, uint64_t now_ns);
  void turn_answered(const proto::Message* answer, uint64_t now_ns);
  // ---- both
  // call_event indications, and in WebRTC's profile call_candidate (a page's
  // trickled candidates: kept until the remote description is set, then
  // AddRemoteCandidate); others ignored.
  void call_event(const proto::Message& event, uint64_t now_ns);
  void ice_gathered(const IceDescription& local, uint64_t now_ns);
  void ice_connected(const SelectedPair& pair, uint64_t now_ns);
  void ice_pair_changed(const SelectedPair& pair);
  // `from`: the datagram's source, when the ICE layer says it. In WebRTC's
  // profile DTLS is then taken only from the selected pair's remote: records
  // before selection wait for it, others are dropped (dtls_wrong_address).
  void ice_data(ByteView bytes, uint64_t now_ns, std::optional<proto::SocketAddress> from = std::nullopt);
  void ice_failed(std::string_view reason, uint64_t now_ns);
  void ice_gave_up(const std::string& explanation, uint64_t now_ns);
  void ice_setup_failed(const std::string& error, uint64_t now_ns);  // IceSession::create refused
  // Local input and the stream output (see TransferCore).
  void file_opened(const std::string& path, uint64_t size, uint64_t now_ns);
  void input(ByteView chunk, uint64_t now_ns);
  void input_end(uint64_t now_ns);
  void input_failed(int exit_code, const std::string& why, uint64_t now_ns);
  void output_drained(uint64_t now_ns);
  void tick(uint64_t now_ns);
  // Voice (see TransferCore::voice_frame).
  void voice_frame(const int16_t* captured, media::FrameOut playout, uint64_t now_ns);
  void voice_input_end(uint64_t now_ns);
  void voice_key(char key);
  void voice_hold(bool held);  // see TransferCore::set_hold
  void waiting_tone(bool on);

  std::vector<CallAction> take_actions() {
    collect_transfer();
    return std::move(actions_);
  }
  std::optional<uint64_t> next_deadline() const;
  CallState state() const { return state_; }
  bool done() const { return state_ == CallState::ended; }
  std::optional<int> exit_code() const { return exit_code_; }
  const std::string& call_id() const { return call_id_; }
  const std::string& peer() const { return peer_; }
  const SelectedPair& pair() const { return pair_; }
  const TransferCore& transfer() const { return transfer_; }
  // The WebRTC profile's transport when the other party is a browser (MEDIA-PROFILE), else null.
  const WebRtcTransport* webrtc() const { return webrtc_.get(); }
  uint64_t started_ns() const { return started_ns_; }
  uint64_t accepted_ns() const { return accepted_ns_; }
  uint64_t ms_since_start(uint64_t now_ns) const { return now_ns > started_ns_ ? (now_ns - started_ns_) / 1'000'000 : 0; }

 private:
  void start_ice(IceConfig config, uint64_t now_ns);
  void refuse_ring(uint16_t code, std::string_view reason);
  void refused(const proto::Message& answer);
  void keys(const proto::Message& event, uint64_t now_ns);
  void ended(uint32_t code, std::string_view reason, uint64_t now_ns);
  void collect_transfer();
  // WebRTC's profile (docs/webrtc.md): SDP instead of the native ICE
  // description, DTLS on the selected pair, then SRTP around the voice packets.
  bool speak_webrtc(const proto::Message& m);  // when MEDIA-PROFILE says the other party is a browser
  bool webrtc_remote(std::string_view sdp, bool offer);
  void webrtc_data(ByteView datagram, uint64_t now_ns, std::optional<proto::SocketAddress> from);
  void webrtc_replay_early(uint64_t now_ns);
  void webrtc_flush(uint64_t now_ns);
  void webrtc_set_remote();                        // SetRemote: the browser's description and what it trickled so far
  void webrtc_trickled(const proto::Message& m);  // a call_candidate
  // call::ReportPath for the selected pair: at ICE connected, or in WebRTC's profile once DTLS keyed SRTP.
  void report_path();
  void print(std::string line) { actions_.push_back(transfer::Print{std::move(line), false}); }
  void fail(int exit_code, const std::string& why);
  void finish(int exit_code);

  CallCoreConfig config_;
  TransferCore transfer_;
  std::vector<CallAction> actions_;
  CallState state_ = CallState::idle;
  std::optional<int> exit_code_;
  std::string call_id_, peer_;
  uint64_t started_ns_, accepted_ns_ = 0;
  std::optional<uint64_t> ice_deadline_ns_;
  bool ice_started_ = false, connected_ = false, hangup_sent_ = false;
  // callee: the ring being answered
  proto::TransactionId ring_id_{};
  IceConfig ring_servers_;
  std::string offer_;
  SelectedPair pair_;
  std::unique_ptr<WebRtcTransport> webrtc_;
  std::optional<webrtc::SessionDescription> webrtc_offer_;  // callee: the browser's, answered once gathered
  std::optional<uint64_t> dtls_deadline_ns_;  // the DTLS retransmission timer
  bool webrtc_prepared_ = false;   // DTLS knows the browser's fingerprint and our role
  struct EarlyDatagram {
    Bytes bytes;
    std::optional<proto::SocketAddress> from;
  };
  std::vector<EarlyDatagram> webrtc_early_;  // before DTLS was prepared, or DTLS from a known source before ICE selected
  bool webrtc_remote_set_ = false;            // SetRemote sent: trickled candidates go straight to ICE
  std::vector<std::string> webrtc_trickled_;  // trickled before that: added to the SetRemote (capped)
  std::vector<std::string> webrtc_trickled_seen_;  // each trickled text is taken once
  std::string media_refusal_;  // why this end refused the page's media: told to the node with the hang-up
};

}  // namespace tsunagu::terminal
