#include "terminal/call_core.hpp"

#include <algorithm>
#include <utility>

#include "proto/signalling.hpp"
#include "terminal/cli_common.hpp"
#include "webrtc/packet_demux.hpp"

namespace tsunagu::terminal {
namespace {

namespace sig = tsunagu::proto;

// Our offer to a browser numbers Opus and telephone-event as Chromium does.
constexpr uint8_t offered_opus_payload_type = 111, offered_event_payload_type = 110;
constexpr size_t max_early_dtls = 16;  // DTLS that beats the browser's answer to us

std::string attribute_text(const proto::Message& m, uint16_t type) {
  const auto* a = m.find(type);
  return a ? std::string(proto::read_string(*a)) : std::string();
}

uint32_t attribute_u32(const proto::Message& m, uint16_t type, uint32_t fallback) {
  const auto* a = m.find(type);
  return a ? proto::read_u32(*a).value_or(fallback) : fallback;
}

// STUN/TURN settings from a call's preparation, a turn_credentials answer or a ring.
void apply_servers(const proto::Message& m, IceConfig& config) {
  if (const auto* stun = m.find(sig::attr::stun_server)) config.stun_server = proto::read_xor_address(*stun, m);
  const auto* turn = m.find(sig::attr::turn_server);
  std::string user = attribute_text(m, sig::attr::turn_username), password = attribute_text(m, sig::attr::turn_password);
  if (turn != nullptr && !user.empty()) {
    if (auto server = proto::read_xor_address(*turn, m))
      config.turn = IceConfig::Turn{*server, std::move(user), std::move(password)};
  }
}

std::string describe(const SelectedPair& pair) {
  return pair.local_type + " " + pair.local.to_string() + " <-> " + pair.remote_type + " " + pair.remote.to_string();
}

TransferConfig transfer_config(const CallCoreConfig& config, uint64_t now_ns) {
  TransferConfig transfer = config.transfer;
  transfer.caller = config.caller;
  transfer.reliable = config.reliable;
  transfer.call_started_ns = now_ns;
  if (!config.caller) transfer.mode = TransferMode::answer;
  return transfer;
}

}  // namespace

std::string_view to_string(CallState state) {
  switch (state) {
    case CallState::idle: return "idle";
    case CallState::preparing: return "preparing";
    case CallState::ringing: return "ringing";
    case CallState::accepted: return "accepted";
    case CallState::connected: return "connected";
    case CallState::transfer: return "transfer";
    case CallState::ended: return "ended";
  }
  return "?";
}

int exit_for_refusal(uint16_t code) {
  switch (code) {
    case sig::error::offline:
    case sig::error::agent_offline: return exit_offline;
    case sig::error::unknown_user: return exit_unknown_user;
    case sig::error::busy: return exit_call_busy;
    case sig::error::too_many_attempts: return exit_rate_limited;
    case sig::error::unauthenticated: return exit_auth;
    default: return exit_refused;
  }
}

int exit_for_end_code(uint32_t code) {
  switch (code) {
    case sig::error::hung_up: return 0;
    case sig::error::busy: return exit_call_busy;
    case sig::error::declined:
    case sig::error::cancelled: return exit_call_declined;
    case sig::error::no_answer: return exit_call_no_answer;
    // Refusals a LAN agent answers for its terminal.
    case sig::error::unknown_user: return exit_unknown_user;
    case sig::error::offline:
    case sig::error::no_live_lease:
    case sig::error::agent_offline:
    case sig::error::agent_timeout: return exit_offline;
    case sig::error::agent_policy_refused: return exit_refused;
    default: return exit_call_failed;
  }
}

CallCore::CallCore(CallCoreConfig config, TransferOutput& output, uint64_t now_ns)
    : config_(std::move(config)), transfer_(transfer_config(config_, now_ns), output), started_ns_(now_ns) {}

// ------------------------------------------------------------------- caller

void CallCore::logged_in(uint64_t /*now_ns*/) {
  if (!config_.caller || state_ != CallState::idle) return;
  state_ = CallState::preparing;
  actions_.push_back(call::SendPrepare{config_.callee, config_.reliable});
}

void CallCore::prepare_answered(const proto::Message* answer, std::string_view error, uint64_t now_ns) {
  if (state_ != CallState::preparing || ice_started_) return;
  if (answer == nullptr) return fail(exit_call_failed, "call: " + std::string(error));
  if (answer->message_class == proto::MessageClass::error) return refused(*answer);
  call_id_ = attribute_text(*answer, sig::attr::call_id);
  if (!speak_webrtc(*answer)) return;
  IceConfig config;
  apply_servers(*answer, config);
  if (config_.relay_only && !config.turn)
    return fail(exit_call_failed, "--relay-only, but the node hands out no TURN server");
  start_ice(std::move(config), now_ns);
}

void CallCore::place_answered(const proto::Message* answer, std::string_view error, uint64_t /*now_ns*/) {
  if (state_ != CallState::preparing) return;
  if (answer == nullptr) return fail(exit_network, "call: " + std::string(error));
  if (answer->message_class == proto::MessageClass::error) return refused(*answer);
  state_ = CallState::ringing;
  // A LAN extension is rung by its agent: it may still turn out unknown or unreachable.
  const bool via_agent =
      attribute_u32(*answer, sig::attr::call_state, sig::call_state::ringing) == sig::call_state::routed_to_agent;
  print(std::string(via_agent ? "calling " : "ringing ") + config_.callee + (via_agent ? " through its LAN agent" : "") +
        " (call " + call_id_ + ")");
}

// The node's refusal of the call, as it reads and with its exit code.
void CallCore::refused(const proto::Message& answer) {
  const auto* code = answer.find(proto::attr::error_code);
  auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
  fail(exit_for_refusal(parsed ? parsed->code : 0),
       config_.callee + ": " + (parsed ? std::string(parsed->reason) : "refused"));
}

void CallCore::hangup_answered() {
  if (config_.caller && hangup_sent_) actions_.push_back(call::StopLink{});
}

void CallCore::interrupted(uint64_t /*now_ns*/) {
  if (state_ == CallState::ended) return;
  finish(exit_interrupted);
}

void CallCore::link_stopped(ClientFailure failure, std::string_view detail, uint64_t /*now_ns*/) {
  if (state_ == CallState::ended) return;
  // Before a call exists the link's own failure is the answer; during one,
  // the call failed with it.
  if (call_id_.empty() && failure != ClientFailure::none) {
    print("tsunagu: " + std::string(detail));
    exit_code_ = exit_for_failure(failure);
    state_ = CallState::ended;
    transfer_.stop();
    return;
  }
  if (call_id_.empty()) {
    exit_code_ = 0;
    state_ = CallState::ended;
    return;
  }
  if (failure != ClientFailure::none) print("tsunagu: " + std::string(detail));
  fail(exit_call_failed, "link to the node lost");
}

// ------------------------------------------------------------------- callee

void CallCore::ring(const proto::Message& ring, uint64_t now_ns) {
  if (config_.caller || state_ != CallState::idle) return;
  state_ = CallState::ringing;
  ring_id_ = ring.transaction_id;
  peer_ = attribute_text(ring, sig::attr::caller_id);
  call_id_ = attribute_text(ring, sig::attr::call_id);
  offer_ = attribute_text(ring, sig::attr::ice_description);
  apply_servers(ring, ring_servers_);
  if (!speak_webrtc(ring) || (webrtc_ && !webrtc_remote(offer_, true))) return;
  for (const auto& allowed : config_.auto_accept_from)
    if (allowed == "*" || allowed == peer_) return accept_decision(true, now_ns);
  if (!config_.can_prompt) return accept_decision(false, now_ns);
  actions_.push_back(call::PromptAccept{peer_});
}

void CallCore::accept_decision(bool accept, uint64_t now_ns) {
  if (config_.caller || state_ != CallState::ringing || ice_started_) return;
  if (!accept) {
    print("declined a call from " + peer_);
    refuse_ring(sig::error::declined, "Declined");
    return finish(0);
  }
  print("accepting a call from " + peer_ + (config_.reliable ? " (data stream)" : " (datagrams)"));
  state_ = CallState::accepted;
  // The callee's times count from its yes, not from the time a person took to say it.
  started_ns_ = now_ns;
  transfer_.restart_clock(now_ns);
  if (config_.fetch_turn) return actions_.push_back(call::FetchTurn{call_id_});
  start_ice(ring_servers_, now_ns);
}

void CallCore::turn_answered(const proto::Message* answer, uint64_t now_ns) {
  if (config_.caller || state_ != CallState::accepted || ice_started_) return;
  IceConfig servers = ring_servers_;
  if (answer != nullptr && answer->message_class == proto::MessageClass::success)
    apply_servers(*answer, servers);
  else
    print("tsunagu: the node handed out no TURN credentials for this call; answering without a relay");
  start_ice(std::move(servers), now_ns);
}

void CallCore::refuse_ring(uint16_t code, std::string_view reason) {
  proto::MessageBuilder refusal(proto::MessageClass::error, sig::method::ring, ring_id_);
  refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
  refusal.add_error(code, reason);
  actions_.push_back(call::ReplyRing{refusal.finish()});
}

// --------------------------------------------------------------------- both

void CallCore::start_ice(IceConfig config, uint64_t now_ns) {
  config.controlling = config_.caller;
  config.reliable = config_.reliable;
  config.relay_only = config_.relay_only;
  ice_started_ = true;
  ice_deadline_ns_ = now_ns + config_.ice_timeout_ns;
  actions_.push_back(call::StartIce{std::move(config)});
  if (config_.caller || webrtc_) return;  // a browser's candidates are set once we answer (ice_gathered)
  auto remote = decode_ice_description(offer_);
  if (!remote) return fail(exit_call_failed, "the peer's ICE description is malformed: " + std::string(remote.error()));
  actions_.push_back(call::SetRemote{std::move(*remote)});
}

void CallCore::ice_setup_failed(const std::string& error, uint64_t /*now_ns*/) { fail(exit_call_failed, "ICE: " + error); }

void CallCore::ice_gathered(const IceDescription& local, uint64_t /*now_ns*/) {
  if (state_ == CallState::ended) return;
  if (webrtc_) {
    auto sdp = config_.caller ? webrtc_->offer(local, offered_opus_payload_type, offered_event_payload_type)
                              : webrtc_->answer(std::move(*webrtc_offer_), local);
    if (!sdp) return fail(exit_call_failed, "cannot write our SDP: " + sdp.error().detail);
    if (config_.caller) {
      if (state_ == CallState::preparing) actions_.push_back(call::SendPlace{call_id_, config_.callee, *sdp, true});
      return;
    }
    if (auto prepared = webrtc_->prepare(); !prepared) return fail(exit_call_failed, "DTLS: " + prepared.error());
    webrtc_prepared_ = true;
    webrtc_set_remote();
    proto::MessageBuilder accept(proto::MessageClass::success, sig::method::ring, ring_id_);
    accept.add_u32(sig::attr::protocol_version, sig::protocol_version);
    accept.add_string(sig::attr::ice_description, *sdp);
    actions_.push_back(call::ReplyRing{accept.finish()});
    return;
  }
  auto encoded = encode_ice_description(local);
  if (!encoded) return fail(exit_call_failed, "cannot encode the ICE description: " + std::string(encoded.error()));
  if (config_.caller) {
    if (state_ == CallState::preparing) actions_.push_back(call::SendPlace{call_id_, config_.callee, *encoded});
    return;
  }
  // The answer to this ring's transaction, after gathering.
  proto::MessageBuilder accept(proto::MessageClass::success, sig::method::ring, ring_id_);
  accept.add_u32(sig::attr::protocol_version, sig::protocol_version);
  accept.add_string(sig::attr::ice_description, *encoded);
  actions_.push_back(call::ReplyRing{accept.finish()});
}

void CallCore::call_event(const proto::Message& m, uint64_t now_ns) {
  if (state_ == CallState::ended) return;
  if (m.method != sig::method::call_event && m.method != sig::method::call_candidate) return;
  if (call_id_.empty() || attribute_text(m, sig::attr::call_id) != call_id_) return;
  if (m.method == sig::method::call_candidate) return webrtc_trickled(m);
  uint32_t event = attribute_u32(m, sig::attr::call_state, sig::call_state::ended);
  if (event == sig::call_state::accepted) {
    if (accepted_ns_ != 0) return;
    if (config_.caller) print("accepted after " + std::to_string(ms_since_start(now_ns)) + " ms");
    keys(m, now_ns);
    if (state_ == CallState::ended || !config_.caller) return;
    if (webrtc_) {
      if (!webrtc_remote(attribute_text(m, sig::attr::ice_description), false)) return;
      webrtc_prepared_ = true;
      webrtc_set_remote();
      webrtc_replay_early(now_ns);
      return;
    }
    auto remote = decode_ice_description(attribute_text(m, sig::attr::ice_description));
    if (!remote) return fail(exit_call_failed, "the peer's ICE description is malformed: " + std::string(remote.error()));
    actions_.push_back(call::SetRemote{std::move(*remote)});
  } else if (event == sig::call_state::ended) {
    uint32_t code = attribute_u32(m, sig::attr::end_code, sig::error::link_lost);
    std::string reason = attribute_text(m, sig::attr::notice_reason);
    if (config_.caller) return ended(code, reason, now_ns);
    print("call ended: " + reason);
    // The callee's exit code: a call the caller gave up on before it was up
    // is not the callee's failure.
    ended(code == sig::error::cancelled || code == sig::error::no_answer ? sig::error::hung_up : code, {}, now_ns);
  }
}

void CallCore::keys(const proto::Message& event, uint64_t now_ns) {
  const auto* key = event.find(sig::attr::key_material);
  accepted_ns_ = now_ns;
  // A browser's media is keyed by DTLS, not by the node.
  if (!webrtc_ && !transfer_.keys(key ? key->value : ByteView{}, call_id_, now_ns))
    return fail(exit_call_failed, "the node sent no usable key material");
  if (state_ == CallState::ringing || state_ == CallState::preparing) state_ = CallState::accepted;
  if (transfer_.started() && state_ != CallState::ended) state_ = CallState::transfer;
  collect_transfer();
}

void CallCore::ended(uint32_t code, std::string_view reason, uint64_t now_ns) {
  if (auto refused = transfer_.refusal_exit_code()) return finish(*refused);  // why was said at the refusal
  if (code == sig::error::hung_up && transfer_.hangup_loses_data())
    return fail(exit_call_failed, "the call was hung up before the stream ended: data may be missing");
  if (code == sig::error::hung_up) {
    transfer_.peer_hung_up(now_ns);
    return finish(0);
  }
  fail(exit_for_end_code(code), std::string(reason.empty() ? "call ended" : reason));
}

void CallCore::ice_connected(const SelectedPair& pair, uint64_t now_ns) {
  if (state_ == CallState::ended || connected_) return;
  connected_ = true;
  pair_ = pair;
  ice_deadline_ns_.reset();
  print("connected after " + std::to_string(ms_since_start(now_ns)) + " ms: " + describe(pair));
  state_ = CallState::connected;
  if (webrtc_) {
    // The path is reported once DTLS keyed SRTP (webrtc_data): a call whose handshake fails had no media
    // path, and the node's end line says why (reason=media_refused) rather than a path.
    // The media starts once DTLS has keyed SRTP (webrtc_data).
    if (auto started = webrtc_->connected(); !started) return fail(exit_call_failed, "DTLS: " + started.error());
    webrtc_flush(now_ns);
    return webrtc_replay_early(now_ns);
  }
  report_path();
  transfer_.connected(now_ns);
  if (transfer_.started()) state_ = CallState::transfer;
  collect_transfer();
}

void CallCore::report_path() {
  if (!call_id_.empty()) actions_.push_back(call::ReportPath{call_id_, pair_.local_type + "/" + pair_.remote_type});
}

void CallCore::ice_pair_changed(const SelectedPair& pair) {
  if (state_ == CallState::ended) return;
  pair_ = pair;
  print("path changed: " + describe(pair));
}

void CallCore::ice_data(ByteView bytes, uint64_t now_ns, std::optional<proto::SocketAddress> from) {
  if (webrtc_) return webrtc_data(bytes, now_ns, from);
  if (state_ != CallState::ended) transfer_.data(bytes, now_ns);
  collect_transfer();
}

void CallCore::ice_failed(std::string_view reason, uint64_t /*now_ns*/) {
  fail(exit_call_failed, "ICE failed: " + std::string(reason));
}

void CallCore::ice_gave_up(const std::string& explanation, uint64_t /*now_ns*/) {
  if (!connected_) fail(exit_call_failed, "no media path: " + explanation);
}

// The transfer's actions are taken at once, so its end is the call's before
// the next input (and exit_code() says so).
void CallCore::file_opened(const std::string& path, uint64_t size, uint64_t now_ns) {
  transfer_.file_opened(path, size, now_ns);
  collect_transfer();
}
void CallCore::input(ByteView chunk, uint64_t now_ns) {
  transfer_.input(chunk, now_ns);
  collect_transfer();
}
void CallCore::input_end(uint64_t now_ns) {
  transfer_.input_end(now_ns);
  collect_transfer();
}
void CallCore::input_failed(int exit_code, const std::string& why, uint64_t /*now_ns*/) {
  transfer_.input_failed(exit_code, why);
  collect_transfer();
}
void CallCore::output_drained(uint64_t now_ns) {
  transfer_.output_drained(now_ns);
  collect_transfer();
}

void CallCore::voice_frame(const int16_t* captured, media::FrameOut playout, uint64_t now_ns) {
  if (state_ == CallState::ended) return std::fill(playout.begin(), playout.end(), int16_t{0});
  transfer_.voice_frame(captured, playout, now_ns);
  collect_transfer();
}
void CallCore::voice_key(char key) {
  if (state_ == CallState::ended) return;
  transfer_.voice_key(key);
  collect_transfer();
}
void CallCore::voice_hold(bool held) {
  if (state_ == CallState::ended) return;
  transfer_.set_hold(held);
  collect_transfer();
}

void CallCore::waiting_tone(bool on) {
  transfer_.set_waiting_tone(on);
}

void CallCore::voice_input_end(uint64_t now_ns) {
  transfer_.voice_input_end(now_ns);
  collect_transfer();
}

void CallCore::tick(uint64_t now_ns) {
  if (state_ == CallState::ended) return;
  if (ice_deadline_ns_ && now_ns >= *ice_deadline_ns_) {
    ice_deadline_ns_.reset();
    if (!connected_) actions_.push_back(call::ExplainIceFailure{});
  }
  if (dtls_deadline_ns_ && now_ns >= *dtls_deadline_ns_ && webrtc_) {
    dtls_deadline_ns_.reset();
    if (auto handled = webrtc_->handle_timeout(); !handled) return fail(exit_call_failed, "DTLS: " + handled.error());
    webrtc_flush(now_ns);
  }
  transfer_.tick(now_ns);
  collect_transfer();
}

std::optional<uint64_t> CallCore::next_deadline() const {
  if (state_ == CallState::ended) return std::nullopt;
  std::optional<uint64_t> next;
  for (auto deadline : {ice_deadline_ns_, dtls_deadline_ns_, transfer_.next_deadline()})
    if (deadline && (!next || *deadline < *next)) next = deadline;
  return next;
}

// Moves the transfer's actions into ours, in order; its end is the call's.
void CallCore::collect_transfer() {
  for (auto& action : transfer_.take_actions()) {
    if (auto* end = std::get_if<transfer::Finish>(&action)) {
      if (!end->why.empty()) print("tsunagu: " + end->why);
      finish(end->exit_code);
      continue;
    }
    if (std::holds_alternative<transfer::StartInput>(action) || std::holds_alternative<transfer::StartAudio>(action))
      state_ = CallState::transfer;
    // WebRTC: the voice packets leave as SRTP.
    if (auto* datagram = std::get_if<transfer::SendDatagram>(&action); datagram && webrtc_)
      if (!webrtc_->protect(datagram->bytes)) continue;
    std::visit(
        [&](auto& a) {
          using A = std::decay_t<decltype(a)>;
          if constexpr (!std::is_same_v<A, transfer::Finish>) actions_.push_back(std::move(a));
        },
        action);
  }
}

// ------------------------------------------------------------------- WebRTC

bool CallCore::speak_webrtc(const proto::Message& m) {
  if (attribute_u32(m, sig::attr::media_profile, sig::media_profile::native) != sig::media_profile::webrtc) return true;
  const std::string browser_only =
      "the other party is a browser, which takes only phone calls (call --audio-in/--voice, listen --audio-in/--audio-out)";
  if (!config_.transfer.voice) {
    if (config_.caller) {
      fail(exit_refused, browser_only);
    } else {
      print("declined a call from " + peer_ + ": " + browser_only);
      refuse_ring(sig::error::declined, "Declined: " + browser_only);
      finish(0);
    }
    return false;
  }
  webrtc_ = std::make_unique<WebRtcTransport>(config_.transfer.voice->media.ssrc, "tsunagu");
  if (webrtc_->fingerprint().empty()) {
    fail(exit_call_failed, "no DTLS certificate could be made for a browser call");
    return false;
  }
  // Chromium's numbering for our offer; an answer takes the offer's (webrtc_remote).
  transfer_.use_plain_media(offered_opus_payload_type, offered_event_payload_type);
  return true;
}

bool CallCore::webrtc_remote(std::string_view sdp, bool offer) {
  auto parsed = webrtc::parse_session_description(sdp);
  std::string problem = parsed ? std::string() : parsed.error().detail;
  if (parsed && offer) {
    const webrtc::MediaSection& audio = parsed->audio();
    transfer_.use_plain_media(*audio.opus_payload_type, audio.telephone_event_payload_type.value_or(101));
    webrtc_offer_ = std::move(*parsed);
    return true;
  }
  if (parsed) {
    if (parsed->audio().opus_payload_type != offered_opus_payload_type)
      problem = "the answer changed Opus' payload type";
    else if (auto taken = webrtc_->take_answer(std::move(*parsed)); !taken)
      problem = taken.error();
    else if (auto prepared = webrtc_->prepare(); !prepared)
      problem = "DTLS: " + prepared.error();
  }
  if (problem.empty()) return true;
  problem = "the browser's SDP " + std::string(offer ? "offer" : "answer") + ": " + problem;
  if (offer) {
    refuse_ring(sig::error::bad_request, "Bad Request: " + problem);
    finish(exit_call_failed);
  } else {
    fail(exit_call_failed, problem);
  }
  return false;
}

void CallCore::webrtc_set_remote() {
  IceDescription remote = webrtc_->remote_ice();
  for (auto& line : std::exchange(webrtc_trickled_, {}))
    if (remote.candidates.size() < max_ice_candidates) remote.candidates.push_back(std::move(line));
  webrtc_remote_set_ = true;
  actions_.push_back(call::SetRemote{std::move(remote)});
}

void CallCore::webrtc_trickled(const proto::Message& m) {
  if (!webrtc_) return;  // a terminal's candidates are all in its description
  std::string text = attribute_text(m, sig::attr::ice_candidate);
  // A page sends its candidates again once answered (a LAN agent drops what comes before its terminal link is up).
  if (std::find(webrtc_trickled_seen_.begin(), webrtc_trickled_seen_.end(), text) != webrtc_trickled_seen_.end()) return;
  if (webrtc_trickled_seen_.size() < 4 * max_ice_candidates) webrtc_trickled_seen_.push_back(text);
  auto line = webrtc_->trickled_candidate(text);
  if (!line) return;
  if (webrtc_remote_set_) actions_.push_back(call::AddRemoteCandidate{std::move(*line)});
  else if (webrtc_trickled_.size() < max_ice_candidates) webrtc_trickled_.push_back(std::move(*line));
}

void CallCore::webrtc_replay_early(uint64_t now_ns) {
  for (auto& early : std::exchange(webrtc_early_, {})) webrtc_data(early.bytes, now_ns, early.from);
}

void CallCore::webrtc_data(ByteView datagram, uint64_t now_ns, std::optional<proto::SocketAddress> from) {
  if (state_ == CallState::ended) return;
  // DTLS is the call's keys: only from the peer ICE selected (checked when the source is known).
  bool dtls = from && webrtc::classify_packet(datagram) == webrtc::PacketKind::dtls;
  if (!webrtc_prepared_ || (dtls && !connected_)) {
    if (webrtc_early_.size() < max_early_dtls) webrtc_early_.push_back({Bytes(datagram.begin(), datagram.end()), from});
    return;
  }
  if (dtls && *from != pair_.remote) return webrtc_->dropped_from_elsewhere();
  bool was_ready = webrtc_->media_ready();
  auto received = webrtc_->datagram(datagram);
  if (!received) {
    // No alert: the page learns why from the node (the hang-up's ERROR-CODE), not as a failed transport.
    media_refusal_ = "DTLS with the browser: " + received.error();
    return fail(exit_call_failed, media_refusal_);
  }
  webrtc_flush(now_ns);  // our next flight
  if (!was_ready && webrtc_->media_ready()) {
    print("DTLS done after " + std::to_string(ms_since_start(now_ns)) + " ms (SRTP " + webrtc_->srtp_profile() + ")");
    report_path();  // the pair DTLS ran on, after any change since ICE connected
    transfer_.connected(now_ns);
    if (transfer_.started()) state_ = CallState::transfer;
  }
  if (*received) transfer_.media_packet(**received, now_ns);
  collect_transfer();
}

void CallCore::webrtc_flush(uint64_t now_ns) {
  for (auto& datagram : webrtc_->take_datagrams()) actions_.push_back(transfer::SendDatagram{std::move(datagram)});
  auto wait = webrtc_->retransmit_in();
  dtls_deadline_ns_.reset();
  if (wait && state_ != CallState::ended) dtls_deadline_ns_ = now_ns + static_cast<uint64_t>(wait->count()) * 1'000'000u;
}

void CallCore::fail(int exit_code, const std::string& why) {
  if (state_ == CallState::ended) return;
  collect_transfer();  // what the transfer said comes first
  if (state_ == CallState::ended) return;
  print("tsunagu: " + why);
  finish(exit_code);
}

void CallCore::finish(int exit_code) {
  if (state_ == CallState::ended) return;
  collect_transfer();
  if (state_ == CallState::ended) return;
  state_ = CallState::ended;
  exit_code_ = exit_code;
  transfer_.stop();
  ice_deadline_ns_.reset();
  dtls_deadline_ns_.reset();
  if (ice_started_) actions_.push_back(call::ReleaseMedia{});
  if (!config_.caller) {
    if (!media_refusal_.empty()) actions_.push_back(call::SendHangup{call_id_, sig::error::media_refused, media_refusal_});
    return actions_.push_back(call::CallOver{exit_code, ice_started_});
  }
  if (!call_id_.empty()) {
    hangup_sent_ = true;
    actions_.push_back(media_refusal_.empty() ? call::SendHangup{call_id_}
                                              : call::SendHangup{call_id_, sig::error::media_refused, media_refusal_});
  } else {
    actions_.push_back(call::StopLink{});
  }
}

}  // namespace tsunagu::terminal
