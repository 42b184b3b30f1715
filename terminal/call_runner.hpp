// `tsunagu call` and `tsunagu listen`: signalling through the node, ICE
// through libnice, every packet sealed with the call's keys, and what the
// user asked to do over it (pipe, file, echo test).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "terminal/call_audio.hpp"
#include "terminal/cli_common.hpp"
#include "terminal/node_client.hpp"

namespace tsunagu::terminal {

// `call --card`: the call is paid from this card (docs/cards.md).
struct CardCallOptions {
  Bytes card;            // the .card bytes; empty: not a card call
  std::string password;  // the card password as typed
  std::string route;     // the access point's name on the card (the node's tariff for it)
  uint64_t update_version = 0;  // the issuer update held (CARD-UPDATE-VERSION); the node sends a newer one
  std::function<void(ByteView)> on_update;  // a CARD-UPDATE the node sent (card_commands.cpp keeps it)
  // The CARD-KEY-ROLLOVERs that came with it, given first (card_commands.cpp
  // keeps the keys they lead to from the kept ones).
  std::function<void(const std::vector<Bytes>&)> on_key_rollovers;
};

struct CallOptions {
  NodeClientOptions node;
  enum class Mode { echo_test, pipe, send_file, voice, listen } mode = Mode::listen;
  std::string callee;             // call
  unsigned echo_count = 20;       // --echo-test N
  std::string send_file;          // --send FILE
  std::string receive_directory;  // listen --recv DIR
  bool relay_only = false;
  std::vector<proto::SocketAddress> ice_addresses;  // --ice-address (libnice ignores loopback otherwise)
  // listen: who is accepted without asking; "*" = anyone.
  std::vector<std::string> auto_accept_from;
  bool once = false;          // listen: exit after the first call
  std::string report_file;    // write a JSON report of the call here
  unsigned ice_timeout_s = 20;
  // listen --lan DIR: answer rings from the LAN agent instead of logging in.
  std::string lan_bundle;
  proto::SocketAddress lan_listen;  // --lan-listen ADDR:PORT
  std::vector<proto::SocketAddress> lan_agent_addresses;  // --agent-address (repeatable); empty: any
  std::string lan_mailbox;          // --mailbox DIR: voicemail passed on by the agent is saved here
  // Voice: call (mode voice) and listen with audio talk Opus over the datagrams.
  AudioOptions audio;
  std::string dtmf;         // --dtmf DIGITS: sent after the audio input ends
  int opus_complexity = -1;  // --opus-complexity N (0-10); -1: media::VoiceConfig's default
  unsigned duration_s = 0;  // call --duration S: hang up S seconds after connecting
  double hold_at_s = 0, resume_at_s = 0;  // --hold-at/--resume-at S: hold and resume S seconds after connecting (0: never)
  double answer_waiting_after_s = -1;  // listen --answer-waiting-after S: answer a waiting call S s after it rings (<0: only the w key)
  CardCallOptions card;
};

int run_call(const CallOptions& options);
int run_listen(const CallOptions& options);

}  // namespace tsunagu::terminal
