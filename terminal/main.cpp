// tsunagu: the terminal command line. The exit codes are in cli_common.hpp
// (and the --help footer below).
#include <signal.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>

#include "audio/audio_device.hpp"
#include "base/log.hpp"
#include "base/password_input.hpp"
#include "security/scram.hpp"
#include "terminal/call_runner.hpp"
#include "terminal/card_commands.hpp"
#include "terminal/cli_common.hpp"
#include "terminal/lan_ring_server.hpp"
#include "terminal/directory_commands.hpp"
#include "terminal/node_client.hpp"

using namespace tsunagu;
using namespace tsunagu::terminal;

namespace {

std::string ago(uint64_t unix_seconds) {
  auto now = static_cast<uint64_t>(std::time(nullptr));
  if (unix_seconds == 0) return "never";
  uint64_t d = now > unix_seconds ? now - unix_seconds : 0;
  if (d < 2) return "just now";
  if (d < 120) return std::to_string(d) + " s ago";
  if (d < 7200) return std::to_string(d / 60) + " min ago";
  if (d < 172800) return std::to_string(d / 3600) + " h ago";
  return std::to_string(d / 86400) + " days ago";
}

// Runs one session to completion and returns the exit code.
int run_session(NodeClientOptions options, const std::function<void(NodeClient&, int&)>& on_logged_in,
                bool long_running) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  int exit_code = 0;
  NodeClientEvents events;
  NodeClient* client_ptr = nullptr;
  events.on_logged_in = [&](const LoginInfo& info) {
    if (long_running) {
      std::cout << "logged in as " << options.user_id << "; the node sees you at " << info.observed.to_string()
                << " (reported " << info.local.to_string() << "); keepalive every " << info.keepalive_interval_s
                << " s" << (info.resumed ? "; resumed by session token" : "") << std::endl;
    }
    on_logged_in(*client_ptr, exit_code);
  };
  events.on_link_lost = [&](std::string_view reason, uint64_t retry_ms) {
    std::cerr << "tsunagu: link to the node lost (" << reason << "); reconnecting in " << retry_ms << " ms"
              << std::endl;
  };
  events.on_connected = [&] { on_logged_in(*client_ptr, exit_code); };
  events.on_stopped = [&](ClientFailure failure, std::string_view detail) {
    if (failure != ClientFailure::none) {
      if (failure == ClientFailure::displaced || failure == ClientFailure::logged_out)
        std::cout << "session ended: " << detail << std::endl;
      else
        std::cerr << "tsunagu: " << detail << std::endl;
      if (exit_code == 0) exit_code = exit_for_failure(failure);
    }
  };
  NodeClient client(&loop, options, events);
  client_ptr = &client;

  uv_signal_t sigint{}, sigterm{};
  for (auto [handle, signum] : {std::pair{&sigint, SIGINT}, std::pair{&sigterm, SIGTERM}}) {
    uv_signal_init(&loop, handle);
    handle->data = &client;
    uv_signal_start(handle, [](uv_signal_t* h, int) { static_cast<NodeClient*>(h->data)->stop(); }, signum);
    uv_unref(reinterpret_cast<uv_handle_t*>(handle));
  }
  if (auto started = client.start(); !started) events.on_stopped(started.error().failure, started.error().detail);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return exit_code;
}

uint16_t error_number(const proto::Message& response, std::string& reason) {
  const auto* code = response.find(proto::attr::error_code);
  auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
  reason = parsed ? std::string(parsed->reason) : "malformed error";
  return parsed ? parsed->code : 0;
}

// A registration carrying SCRAM credentials derived here with `iterations`.
void send_registration(NodeClient& client, const NodeClientOptions& options, const std::string& display_name,
                       uint32_t iterations, int& exit_code) {
  // Blocks the loop once (0.2-0.5 s at 600,000 iterations), as a login's derivation does.
  std::string credentials = security::scram::stored_credentials(options.password, iterations);
  client.request(
      proto::method::register_user,
      [&](proto::MessageBuilder& b) {
        b.add_string(proto::attr::user_id, options.user_id);
        b.add_string(proto::attr::scram_credentials, credentials);
        if (!display_name.empty()) b.add_string(proto::attr::display_name, display_name);
      },
      [&client, &exit_code, user = options.user_id](const proto::Message* response, std::string_view error) {
        std::string reason;
        if (response == nullptr) {
          std::cerr << "tsunagu: register failed: " << error << std::endl;
          exit_code = exit_network;
        } else if (response->message_class == proto::MessageClass::error) {
          uint16_t number = error_number(*response, reason);
          std::cerr << "tsunagu: register refused: " << number << " " << reason << std::endl;
          exit_code = number == proto::error::invalid_user_id ? exit_usage : exit_refused;
        } else {
          std::cout << "registered " << user << std::endl;
        }
        client.stop();
      });
}

void print_lookup(const std::string& target, const proto::Message& response, bool json, int& exit_code) {
  std::string reason;
  if (response.message_class == proto::MessageClass::error) {
    uint16_t code = error_number(response, reason);
    uint64_t last_seen = 0;
    if (const auto* seen = response.find(proto::attr::last_seen)) last_seen = proto::read_u64(*seen).value_or(0);
    if (json) {
      // last_seen only when the node told one (an offline user it has seen), never a made-up 0.
      std::cout << "{\"user\": " << json_string(target) << ", \"error\": " << code << ", \"reason\": "
                << json_string(reason);
      if (last_seen != 0) std::cout << ", \"last_seen\": " << last_seen;
      std::cout << "}" << std::endl;
    } else if (code == proto::error::offline) {
      std::cout << target << " is offline (last seen " << ago(last_seen) << ")" << std::endl;
    } else {
      std::cerr << "tsunagu: " << target << ": " << reason << std::endl;
    }
    bool unreachable = code == proto::error::offline || code == proto::error::no_live_lease ||
                       code == proto::error::agent_offline;
    exit_code = unreachable                          ? exit_offline
                : code == proto::error::agent_timeout ? exit_network
                : code == proto::error::unknown_user ? exit_unknown_user
                : code == proto::error::invalid_user_id ? exit_usage
                                                        : exit_refused;
    return;
  }
  uint32_t flags = 0;
  if (const auto* presence = response.find(proto::attr::presence)) flags = proto::read_u32(*presence).value_or(0);
  std::string name;
  if (const auto* n = response.find(proto::attr::display_name)) name = proto::read_string(*n);
  std::vector<std::string> reported;
  for (const auto* r : response.find_all(proto::attr::reported_address))
    if (auto a = proto::read_xor_address(*r, response)) reported.push_back(a->to_string());
  std::vector<std::string> leases;
  for (const auto* r : response.find_all(proto::attr::lease_address))
    if (auto a = proto::read_xor_address(*r, response)) leases.push_back(a->ip_string());
  uint64_t lease_expires = 0;
  if (const auto* e = response.find(proto::attr::lease_expires)) lease_expires = proto::read_u64(*e).value_or(0);
  std::string agent;
  if (const auto* a = response.find(proto::attr::agent_name)) agent = proto::read_string(*a);
  std::string observed, fixed;
  if (const auto* o = response.find(proto::attr::observed_address))
    if (auto a = proto::read_xor_address(*o, response)) observed = a->to_string();
  if (const auto* s = response.find(proto::attr::static_address))
    if (auto a = proto::read_xor_address(*s, response)) fixed = a->to_string();
  bool online = (flags & proto::presence_flag::online) != 0;
  bool in_call = (flags & proto::presence_flag::in_call) != 0;
  bool hidden = (flags & proto::presence_flag::addresses_hidden) != 0;
  if (json) {
    std::cout << "{\"user\": " << json_string(target) << ", \"name\": " << json_string(name)
              << ", \"online\": " << (online ? "true" : "false") << ", \"in_call\": " << (in_call ? "true" : "false")
              << ", \"addresses_hidden\": " << (hidden ? "true" : "false") << ", \"reported\": [";
    for (size_t i = 0; i < reported.size(); ++i) std::cout << (i ? ", " : "") << json_string(reported[i]);
    std::cout << "], \"observed\": " << json_string(observed) << ", \"static\": " << json_string(fixed)
              << ", \"lease\": [";
    for (size_t i = 0; i < leases.size(); ++i) std::cout << (i ? ", " : "") << json_string(leases[i]);
    std::cout << "], \"lease_expires\": " << lease_expires << ", \"agent\": " << json_string(agent) << "}"
              << std::endl;
    return;
  }
  if (!agent.empty()) {
    std::cout << target << " is on the LAN of agent " << agent << "\n";
    for (const auto& l : leases) std::cout << "  private address: " << l << "   (from its DHCP lease)\n";
    if (lease_expires == 0) {
      std::cout << "  lease: does not expire\n";
    } else {
      auto now = static_cast<uint64_t>(std::time(nullptr));
      uint64_t left = lease_expires > now ? lease_expires - now : 0;
      std::cout << "  lease expires in " << left / 60 << " min " << left % 60 << " s\n";
    }
    std::cout << std::flush;
    return;
  }
  std::cout << target << (name.empty() ? "" : " (" + proto::printable_text(name) + ")")
            << (online ? (in_call ? " is online, in a call" : " is online") : " has a permanent address") << "\n";
  for (const auto& r : reported) std::cout << "  reported address: " << r << "   (what the terminal says it has)\n";
  if (hidden) std::cout << "  reported addresses: hidden by the user (a call still finds them)\n";
  if (!observed.empty()) std::cout << "  observed address: " << observed << "   (what the node sees: its NAT mapping)\n";
  if (!fixed.empty()) std::cout << "  static address:   " << fixed << "\n";
  std::cout << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
  log::set_program("tsunagu");
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"tsunagu: reach people and devices by their user ID through a Tsunagu rendezvous node"};
  // Subcommands inherit this: a group's option (`user -d DIR`) is also taken after the
  // subcommand (`user add alice -d DIR`), the order admins type it in.
  app.fallthrough();
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 success, 1 network or TLS failure, 2 bad usage, 3 unknown user, 4 user offline\n"
      "(or an extension with no live lease, or whose LAN agent is offline),\n"
      "5 authentication failed, 6 rate limited, 7 refused by the node for another reason,\n"
      "8 callee busy, 9 call declined, 10 no answer, 11 the call failed (no media path, link lost, file corrupted),\n"
      "130 interrupted (^C; a call is hung up first).\n"
      "Passwords are never taken from the command line: --password-file, $TSUNAGU_PASSWORD or a prompt.");

  NodeArgs login_common, whereis_common, logout_common, register_common;
  auto* login = app.add_subcommand("login", "Log in and stay online (keepalives, reconnects) until stopped");
  login_common.add_to(login);
  std::string login_mailbox = env_or("TSUNAGU_MAILBOX", "");
  login->add_option("--mailbox", login_mailbox,
                    "On every login, save waiting voicemail into this folder and delete it on the node "
                    "($TSUNAGU_MAILBOX)");
  auto* whereis = app.add_subcommand("whereis", "Look up where a user is");
  whereis_common.add_to(whereis);
  std::string target;
  whereis->add_option("ID", target, "The user ID to look up")->required();
  whereis->add_flag("--json", whereis_common.json, "Print one JSON object instead of text");
  auto* logout = app.add_subcommand("logout", "End your presence (a running `tsunagu login` exits)");
  logout_common.add_to(logout);
  auto* register_user = app.add_subcommand("register", "Create an account (only on nodes with open registration)");
  register_common.add_to(register_user);
  std::string display_name;
  register_user->add_option("--name", display_name, "Your display name");

  NodeArgs call_common, listen_common;
  CallOptions call_options, listen_options;
  std::vector<std::string> call_ice, listen_ice;
  auto* call = app.add_subcommand("call", "Call a user: ICE through libnice, every packet sealed with the call's keys");
  call_common.add_to(call);
  call->add_option("ID", call_options.callee, "The user ID to call")->required();
  auto card_call = add_card_call_options(call);
  bool call_pipe = false, listen_pipe_mode = false;
  auto* pipe_flag = call->add_flag("--pipe", call_pipe, "Reliable byte stream: stdin to the callee, the callee's bytes to stdout");
  auto* send_option = call->add_option("--send", call_options.send_file, "Send FILE; the callee checks its SHA-256");
  auto* echo_option = call->add_option("--echo-test", call_options.echo_count,
                                       "Datagrams: send N echo requests, print RTT, jitter and loss (default mode, N=20)");
  pipe_flag->excludes(send_option)->excludes(echo_option);
  send_option->excludes(echo_option);
  std::string call_backend = "auto", listen_backend = "auto";
  auto add_audio_options = [](CLI::App* command, CallOptions& options, std::string& backend, bool caller) {
    auto* devices = command->add_flag("--audio", options.audio.devices,
                                      caller ? "A phone call through the default microphone and speaker"
                                             : "Answer datagram calls as phone calls through the default microphone and speaker");
    auto* in = command->add_option("--audio-in", options.audio.input_file,
                                   caller ? "A phone call speaking FILE (WAV, FLAC, Ogg, ... at any rate), paced in real "
                                            "time; the call ends 0.4 s after FILE and --dtmf are sent"
                                          : "Answer with FILE as the greeting (played once, then silence)");
    auto* out = command->add_option("--audio-out", options.audio.output_file,
                                    "Record what the peer says into FILE (.wav, .flac, .ogg/.opus; 48 kHz mono), "
                                    "written whole when the call ends");
    command->add_option("--opus-complexity", options.opus_complexity,
                        "The Opus encoder's complexity, 0-10 (default 6; libopus' own default is 9): more costs "
                        "more CPU per frame")
        ->check(CLI::Range(0, 10));
    command->add_option("--audio-backend", backend, "With --audio: auto (PulseAudio, else ALSA), pulse or alsa")
        ->check(CLI::IsMember({"auto", "pulse", "alsa"}))->needs(devices);
    command->add_option("--audio-input-device", options.audio.input_device.name,
                        "With --audio: the microphone (a PulseAudio source or ALSA device name)")->needs(devices);
    command->add_option("--audio-output-device", options.audio.output_device.name,
                        "With --audio: the speaker (a PulseAudio sink or ALSA device name)")->needs(devices);
    command->add_flag("!--no-echo-cancel", options.audio.echo_cancellation,
                      "With --audio: do not cancel the speaker's echo from the microphone")->needs(devices);
    auto* hold_at = command->add_option("--hold-at", options.hold_at_s,
                                        "In a phone call: hold it SECONDS after connecting, as the h key does (nothing "
                                        "is sent either way; the peer hears the hold tone)")
                        ->check(CLI::PositiveNumber);
    command->add_option("--resume-at", options.resume_at_s, "With --hold-at: resume the call SECONDS after connecting")
        ->check(CLI::PositiveNumber)->needs(hold_at);
    return std::vector<CLI::Option*>{devices, in, out};
  };
  auto call_audio = add_audio_options(call, call_options, call_backend, true);
  auto* dtmf_option = call->add_option("--dtmf", call_options.dtmf,
                                       "In a phone call: send DIGITS (0-9 * # A-D) as telephone-events once the "
                                       "audio input has ended (at once without --audio-in or --audio; 1 s after connecting with --audio)");
  auto* duration_option = call->add_option("--duration", call_options.duration_s,
                                           "In a phone call: hang up SECONDS after connecting");
  for (CLI::Option* audio_option : call_audio) audio_option->excludes(pipe_flag)->excludes(send_option)->excludes(echo_option);
  dtmf_option->excludes(pipe_flag)->excludes(send_option)->excludes(echo_option);
  duration_option->excludes(pipe_flag)->excludes(send_option)->excludes(echo_option);
  call->add_flag("--relay-only", call_options.relay_only, "Use only TURN relay candidates (forced relay)");
  call->add_option("--ice-address", call_ice, "Local address for ICE candidates (repeatable; needed for loopback)");
  call->add_option("--report", call_options.report_file, "Write a JSON report (setup times, path, bytes) to this file");
  call->add_option("--ice-timeout", call_options.ice_timeout_s, "Seconds to wait for a media path (default 20)");
  std::string call_voicemail;
  call->add_option("--voicemail", call_voicemail,
                   "When the call cannot complete (offline, busy, declined, no answer), leave FILE as voicemail")
      ->check(CLI::ExistingFile);

  auto* listen = app.add_subcommand("listen", "Stay online and answer calls (interactively, or by policy)");
  listen_common.add_to(listen);
  listen->add_option("--auto-accept-from", listen_options.auto_accept_from,
                     "Accept calls from this user ID without asking (repeatable; * = anyone)");
  listen->add_option("--recv", listen_options.receive_directory,
                     "Store files sent with `call --send` in DIR (0600; never over an existing name; a file that "
                     "does not arrive whole, or runs past its announced size, is removed)");
  listen->add_flag("--pipe", listen_pipe_mode, "Data calls: stdin to the caller (the caller's bytes always go to stdout)");
  listen->add_flag("--once", listen_options.once,
                   "Exit once the first ring is over: answered and ended, declined, or given up by its caller");
  add_audio_options(listen, listen_options, listen_backend, false);
  listen->add_option(
      "--answer-waiting-after", listen_options.answer_waiting_after_s,
      "Call waiting: answer a second phone call SECONDS after it rings while one is up, holding the first (as the w "
      "key does; with --audio, --audio-in or --audio-out); the first resumes when the second ends")
      ->check(CLI::NonNegativeNumber);
  listen->add_flag("--relay-only", listen_options.relay_only, "Use only TURN relay candidates (forced relay)");
  listen->add_option("--ice-address", listen_ice, "Local address for ICE candidates (repeatable; needed for loopback)");
  listen->add_option("--report", listen_options.report_file, "Write a JSON report of each call to this file");
  std::string lan_listen_text = "0.0.0.0:" + std::to_string(default_lan_port);
  auto* lan_option = listen->add_option(
      "--lan", listen_options.lan_bundle,
      "LAN terminal mode: no login; answer rings passed on by the LAN agent, using the certificate bundle in DIR "
      "(`tsunagu-lan-agent terminal issue EXT --out DIR`)");
  listen->add_option("--lan-listen", lan_listen_text, "With --lan: address and TLS port to listen on (default 0.0.0.0:7480)")
      ->needs(lan_option);
  std::vector<std::string> lan_agent_texts;
  listen->add_option("--agent-address", lan_agent_texts,
                     "With --lan: take ring connections only from this IP address, the LAN agent's (repeatable; "
                     "default: any address, still at most 4 unauthenticated connections per address)")
      ->needs(lan_option);
  listen->add_option("--mailbox", listen_options.lan_mailbox,
                     "With --lan: save voicemail the LAN agent passes on in DIR (left for EXT@DOMAIN while away)")
      ->needs(lan_option);

  auto directory_commands = add_directory_commands(app);
  auto card_commands = add_card_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; every usage mistake exits 2 as documented.
    int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }

  if (auto handled = run_directory_commands(*directory_commands)) return *handled;
  if (auto handled = run_card_commands(*card_commands)) return *handled;
  for (const CallOptions* given : {&call_options, &listen_options}) {
    if (given->resume_at_s > 0 && given->resume_at_s <= given->hold_at_s) {
      std::cerr << "tsunagu: --resume-at must come after --hold-at\n";
      return 2;
    }
  }
  int code = 0;
  auto parse_addresses = [](const std::vector<std::string>& texts, std::vector<proto::SocketAddress>& out,
                            std::string_view option = "--ice-address") {
    for (const auto& text : texts) {
      auto address = proto::SocketAddress::parse(text, 0);
      if (!address) {
        std::cerr << "tsunagu: " << option << ": \"" << text << "\" is not an IP address\n";
        return false;
      }
      out.push_back(*address);
    }
    return true;
  };
  if (call->parsed()) {
    if (card_call_requested(*card_call) && !prepare_card_call(*card_call, call_common, call_options.callee, code))
      return code;
    // A card call may go through a connection agent, which needs no login.
    auto options = call_common.prepare(code, card_call_requested(*card_call));
    if (!options) return code;
    if (!parse_addresses(call_ice, call_options.ice_addresses)) return exit_usage;
    call_options.node = *options;
    bool voice = call_options.audio.any() || dtmf_option->count() || duration_option->count();
    call_options.mode = call_pipe ? CallOptions::Mode::pipe
                        : send_option->count() ? CallOptions::Mode::send_file
                        : voice                ? CallOptions::Mode::voice
                                               : CallOptions::Mode::echo_test;
    bool backend_ok = true;
    call_options.audio.input_device.backend = call_options.audio.output_device.backend =
        audio::parse_backend(call_backend, &backend_ok);
    int call_result = card_call_requested(*card_call) ? run_card_call(call_options, *card_call)
                                                       : run_call(call_options);
    if (!call_missed(call_result) || options->user_id.empty()) return call_result;  // voicemail needs a login
    if (call_voicemail.empty()) return offer_voicemail(*options, call_options.callee).value_or(call_result);
    std::cout << "the call did not complete; leaving voicemail for " << call_options.callee << std::endl;
    return leave_voicemail(*options, call_options.callee, call_voicemail);
  }
  if (listen->parsed() && !listen_options.lan_bundle.empty()) {
    auto address = proto::SocketAddress::parse(lan_listen_text, default_lan_port);
    if (!address) {
      std::cerr << "tsunagu: --lan-listen: \"" << lan_listen_text << "\" is not ADDRESS:PORT\n";
      return exit_usage;
    }
    if (!parse_addresses(listen_ice, listen_options.ice_addresses)) return exit_usage;
    if (!parse_addresses(lan_agent_texts, listen_options.lan_agent_addresses, "--agent-address")) return exit_usage;
    listen_options.lan_listen = *address;
    listen_options.mode = listen_pipe_mode ? CallOptions::Mode::pipe : CallOptions::Mode::listen;
    bool backend_ok = true;
    listen_options.audio.input_device.backend = listen_options.audio.output_device.backend =
        audio::parse_backend(listen_backend, &backend_ok);
    return run_listen(listen_options);
  }
  if (listen->parsed()) {
    auto options = listen_common.prepare(code);
    if (!options) return code;
    if (!parse_addresses(listen_ice, listen_options.ice_addresses)) return exit_usage;
    listen_options.node = *options;
    listen_options.mode = listen_pipe_mode ? CallOptions::Mode::pipe : CallOptions::Mode::listen;
    bool backend_ok = true;
    listen_options.audio.input_device.backend = listen_options.audio.output_device.backend =
        audio::parse_backend(listen_backend, &backend_ok);
    return run_listen(listen_options);
  }

  if (login->parsed()) {
    auto options = login_common.prepare(code);
    if (!options) return code;
    options->reconnect = true;
    if (!login_mailbox.empty())
      if (auto error = prepare_mailbox(login_mailbox)) return std::cerr << "tsunagu: " << *error << "\n", exit_usage;
    return run_session(
        *options,
        [&](NodeClient& client, int&) {
          if (!login_mailbox.empty()) deliver_on_login(client, login_mailbox);
        },
        true);
  }
  if (whereis->parsed()) {
    auto options = whereis_common.prepare(code);
    if (!options) return code;
    options->role = proto::link_role::query;
    bool json = whereis_common.json;
    return run_session(
        *options,
        [&](NodeClient& client, int& exit_code) {
          client.request(
              proto::method::lookup, [&](proto::MessageBuilder& b) { b.add_string(proto::attr::user_id, target); },
              [&](const proto::Message* response, std::string_view error) {
                if (response == nullptr) {
                  std::cerr << "tsunagu: lookup failed: " << error << std::endl;
                  exit_code = exit_network;
                } else {
                  print_lookup(target, *response, json, exit_code);
                }
                client.stop();
              });
        },
        false);
  }
  if (logout->parsed()) {
    auto options = logout_common.prepare(code);
    if (!options) return code;
    options->role = proto::link_role::query;
    std::string user = options->user_id;
    return run_session(
        *options,
        [&](NodeClient& client, int& exit_code) {
          client.request(proto::method::logout, [](proto::MessageBuilder&) {},
                         [&](const proto::Message* response, std::string_view error) {
                           if (response == nullptr || response->message_class != proto::MessageClass::success) {
                             std::cerr << "tsunagu: logout failed: " << (response ? "refused" : error) << std::endl;
                             exit_code = exit_refused;
                           } else {
                             std::cout << "logged out " << user << std::endl;
                           }
                           client.stop();
                         });
        },
        false);
  }
  if (register_user->parsed()) {
    auto options = register_common.prepare(code);
    if (!options) return code;
    options->authenticate = false;
    return run_session(
        *options,
        [&](NodeClient& client, int& exit_code) {
          // The password never leaves the terminal: it sends SCRAM credentials
          // made with the node's iteration count, which login_begin for the
          // new ID tells (an unknown ID is answered with the node's count).
          std::string nonce = security::scram::make_nonce();
          client.request(
              proto::method::login_begin,
              [&](proto::MessageBuilder& b) {
                b.add_string(proto::attr::scram_client_first,
                             security::scram::build_client_first(options->user_id, nonce));
              },
              [&](const proto::Message* begun, std::string_view) {
                uint32_t iterations = security::scram::default_iterations;
                const auto* first = begun ? begun->find(proto::attr::scram_server_first) : nullptr;
                if (first != nullptr) {
                  auto parsed = security::scram::parse_server_first(proto::read_string(*first));
                  if (parsed && parsed->iterations >= security::scram::min_iterations &&
                      parsed->iterations <= security::scram::max_iterations)
                    iterations = parsed->iterations;
                }
                send_registration(client, *options, display_name, iterations, exit_code);
              });
        },
        false);
  }
  return code;
}

