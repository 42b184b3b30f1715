// tsunagu-lan-agent: the LAN agent daemon and its admin commands.
// Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration,
// 3 no such extension.
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "allocation/client_ref.hpp"
#include "base/log.hpp"
#include "base/progress.hpp"
#include "lan-agent/doctor.hpp"
#include "ops/metrics_status.hpp"
#include "lan-agent/agent_config.hpp"
#include "lan-agent/agent_daemon.hpp"
#include "lan-agent/lan_pki.hpp"
#include "lan-agent/lease_file_reader.hpp"
#include "lan-agent/table_view.hpp"
#include "proto/signalling.hpp"
#include "security/tls_session.hpp"
#include "transport/systemd_watchdog.hpp"
#include "web/http_server.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;

namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
constexpr int exit_no_extension = 3;

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string default_config() {
  const char* env = std::getenv("TSUNAGU_AGENT_CONFIG");
  return env != nullptr && *env != '\0' ? env : kDefaultConfigPath;
}

int fail(std::string_view message, int code = exit_failure) {
  std::cerr << "tsunagu-lan-agent: " << message << "\n";
  return code;
}

std::optional<AgentConfig> load(const std::string& file, int& code) {
  try {
    return load_agent_config(file);
  } catch (const ConfigError& error) {
    std::cerr << "tsunagu-lan-agent: " << error.what() << "\n";
    code = exit_usage;
    return std::nullopt;
  }
}

// SIGHUP: `systemctl reload` (ExecReload=kill -HUP $MAINPID).
void reload_agent(AgentDaemon& agent, const std::string& log_level_override) {
  sd_notify(0, "RELOADING=1");
  agent.reload(log_level_override);
  sd_notify(0, "READY=1");
}

int run_agent(const AgentConfig& loaded, const std::string& log_level) {
  AgentConfig config = loaded;
  try {
    require_runnable(config);
  } catch (const ConfigError& error) {
    return fail(error.what(), exit_usage);
  }
  log::set_level(*log::parse_level(log_level.empty() ? config.log_level : log_level));
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto daemon = AgentDaemon::start(&loop, config);
  if (!daemon) {
    log::error() << daemon.error();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return exit_failure;
  }
  // The status page's HTTPS server ([web] in agent.toml), with a certificate
  // from the LAN CA for the address it listens on.
  std::unique_ptr<web::HttpServer> web_server;
  auto web_started = (*daemon)->start_web(
      [&](const std::string& listen, AgentDaemon::WebHandler handler) -> Expected<void, std::string> {
        auto address = proto::SocketAddress::parse(listen);
        if (!address) return Unexpected(std::string("not an address:port"));
        std::string ip = listen.substr(0, listen.rfind(':'));
        if (ip.size() >= 2 && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
        auto files = ensure_web_certificate(config.data_directory, config.name, ip);
        if (!files) return Unexpected(files.error());
        auto tls = security::TlsContext::server({files->certificate, files->key, std::nullopt});
        if (!tls) return Unexpected("TLS: " + tls.error().detail);
        web::HttpServerLimits limits;
        limits.max_connections = 64;  // a few admins and one Prometheus
        limits.parser.max_body_bytes = 4096;  // the log-in form is the only body
        web::HttpHandlers handlers;
        handlers.on_request = [handler = std::move(handler)](web::HttpRequest request, web::Responder respond) {
          respond(handler(request));
        };
        auto server = web::HttpServer::listen(&loop, *address, *tls, limits, std::move(handlers));
        if (!server) return Unexpected(server.error());
        web_server = std::move(*server);
        return {};
      });
  if (!web_started) {
    log::error() << web_started.error();
    (*daemon)->shutdown([] {});
    uv_run(&loop, UV_RUN_DEFAULT);
    daemon->reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return exit_failure;
  }
  log::info() << "agent " << (config.name.empty() ? "(unnamed)" : config.name) << " serving hooks on "
              << config.hook.socket << ", table in " << config.data_directory;
  sd_notify(0, "READY=1");
  auto watchdog = transport::SystemdWatchdog::start(&loop);

  struct Signals {
    uv_signal_t term{}, interrupt{}, hangup{};
    AgentDaemon* agent = nullptr;
    web::HttpServer* web = nullptr;
    std::string log_level;  // --log-level, which a reload keeps
  } signals;
  signals.log_level = log_level;
  signals.agent = daemon->get();
  signals.web = web_server.get();
  auto close_signals = [](Signals* s) {
    for (auto* h : {&s->term, &s->interrupt, &s->hangup})
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(h))) uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
  };
  for (auto [handle, signum] : {std::pair{&signals.term, SIGTERM}, std::pair{&signals.interrupt, SIGINT},
                                std::pair{&signals.hangup, SIGHUP}}) {
    uv_signal_init(&loop, handle);
    handle->data = &signals;
    uv_signal_start(handle, [](uv_signal_t* h, int received) {
      auto* s = static_cast<Signals*>(h->data);
      if (received == SIGHUP) return reload_agent(*s->agent, s->log_level);
      log::info() << "signal " << received << ": committing pending events and stopping";
      sd_notify(0, "STOPPING=1");
      if (s->web != nullptr) s->web->close();  // before the daemon it asks
      s->agent->shutdown([] {});
      for (auto* hh : {&s->term, &s->interrupt, &s->hangup})
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(hh))) uv_close(reinterpret_cast<uv_handle_t*>(hh), nullptr);
    }, signum);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  close_signals(&signals);
  web_server.reset();
  daemon->reset();
  watchdog.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  log::info() << "stopped";
  return 0;
}

}  // namespace

// `status`: /metrics of the running agent, read as an admin reads it (the
// token of web.token_file, the LAN CA that issued the page's certificate).
int print_status(const AgentConfig& config) {
  if (config.web.listen.empty())
    return std::cerr << "tsunagu-lan-agent: status reads /metrics from web.listen, which is not set\n", 2;
  auto address = proto::SocketAddress::parse(config.web.listen);
  if (!address) return std::cerr << "tsunagu-lan-agent: web.listen is not ADDRESS:PORT\n", 2;
  auto token = read_web_token(config.web.token_file);
  if (!token) return std::cerr << "tsunagu-lan-agent: " << token.error() << "\n", 1;
  auto metrics = ops::fetch_metrics(address->ip_string(), address->port,
                                    lan_pki_files(config.data_directory).ca_certificate, *token, 5000);
  if (!metrics) return std::cerr << "tsunagu-lan-agent: " << metrics.error() << "\n", 1;
  std::cout << ops::summarise_metrics(*metrics);
  return 0;
}

int main(int argc, char** argv) {
  log::set_program("tsunagu-lan-agent");
  CLI::App app{"tsunagu-lan-agent: the Tsunagu LAN agent (allocation table fed by DHCP, link to the rendezvous node)"};
  // Subcommands inherit this: a group's option (`user -d DIR`) is also taken after the
  // subcommand (`user add alice -d DIR`), the order admins type it in.
  app.fallthrough();
  app.require_subcommand(1);
  app.footer("Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration, 3 no such extension.\n"
             "The configuration defaults to $TSUNAGU_AGENT_CONFIG or /etc/tsunagu/agent.toml.");
  std::string config_file = default_config();
  auto add_config = [&](CLI::App* sub) { sub->add_option("-c,--config", config_file, "agent.toml to use"); };

  auto* run = app.add_subcommand("run", "Run the agent in the foreground (SIGTERM stops it, SIGHUP reloads agent.toml and re-syncs)");
  add_config(run);
  std::string log_level;
  run->add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  auto* sync = app.add_subcommand("sync", "Reconcile the table with a DHCP server's lease file");
  add_config(sync);
  std::vector<std::string> sources;
  bool progress_flag = false, no_progress = false;
  sync->add_option("--from", sources, "dnsmasq:PATH, isc:PATH or kea:PATH (repeatable; default: sync.lease_files)");
  sync->add_flag("--progress", progress_flag, "Show a progress bar even when stderr is not a terminal");
  sync->add_flag("--no-progress", no_progress, "Show no progress (otherwise a bar on a terminal, a line at every tenth when stderr is not one)");

  auto* bind = app.add_subcommand("bind", "Bind an extension to a terminal's MAC (or DHCP client-id)");
  add_config(bind);
  std::string extension, client_text;
  bind->add_option("EXT", extension, "Extension, e.g. 4106")->required();
  bind->add_option("MAC", client_text, "MAC address (aa:bb:cc:dd:ee:ff) or client-id / DUID in hex")->required();
  auto* unbind = app.add_subcommand("unbind", "Remove an extension's binding");
  add_config(unbind);
  unbind->add_option("EXT", extension, "Extension")->required();
  auto* list = app.add_subcommand("list", "Show the table: extension, MAC, address, expires in, source");
  add_config(list);
  bool include_ended = false;
  list->add_flag("-a,--all", include_ended, "Include ended leases");
  auto* show = app.add_subcommand("show", "Show one extension: binding, leases, history");
  add_config(show);
  show->add_option("EXT", extension, "Extension")->required();
  auto* terminal = app.add_subcommand("terminal", "LAN terminals: certificates from the agent's LAN CA");
  terminal->require_subcommand(1);
  auto* issue = terminal->add_subcommand(
      "issue", "Issue a certificate for a LAN terminal (`tsunagu listen --lan DIR` uses it); the agent checks it "
               "before passing on a ring, so a host that took the terminal's address cannot answer its calls");
  add_config(issue);
  std::string out_directory;
  int valid_days = kTerminalCertificateDays;
  issue->add_option("EXT", extension, "Extension the terminal answers for, e.g. 4106")->required();
  issue->add_option("--out", out_directory,
                    "Directory to write terminal.crt, terminal.key and ca.crt into (created 0700, or one of yours "
                    "that group and others cannot write)")
      ->required();
  issue->add_option("--days", valid_days, "Days the certificate is valid (1-825; default 90): renew before then");
  auto* renew = terminal->add_subcommand(
      "renew", "Issue a new certificate (new key) for EXT into DIR, which must hold EXT's bundle; the old one stays "
               "valid until it expires unless revoked");
  add_config(renew);
  renew->add_option("EXT", extension, "Extension")->required();
  renew->add_option("--out", out_directory, "The terminal's bundle directory (its terminal.crt names EXT)")
      ->required();
  renew->add_option("--days", valid_days, "Days the new certificate is valid (1-825; default 90)");
  auto* revoke = terminal->add_subcommand(
      "revoke", "Revoke EXT's certificates (a lost or stolen terminal): the running agent refuses them from its "
                "next ring or voicemail delivery, no restart needed");
  add_config(revoke);
  std::string serial;
  revoke->add_option("EXT", extension, "Extension")->required();
  revoke->add_option("--serial", serial, "Revoke only this serial (hex, from `terminal list`); default: all of EXT's");
  auto* terminal_list = terminal->add_subcommand("list", "List issued terminal certificates: serial, expiry, revoked");
  add_config(terminal_list);

  auto* doctor = app.add_subcommand(
      "doctor", "Check the configuration, certificates, key and directory permissions, ports, the table's LMDB map, "
                "the clock and the DHCP servers' hook wiring; say what to fix; exit 1 on any FAIL");
  add_config(doctor);
  DhcpServerFiles dhcp_files;
  doctor->add_option("--dnsmasq-conf", dhcp_files.dnsmasq, "dnsmasq configuration file to check (repeatable; default: "
                                                           "/etc/dnsmasq.conf and /etc/dnsmasq.d/*)");
  doctor->add_option("--kea-conf", dhcp_files.kea, "Kea configuration file (default: /etc/kea/kea-dhcp4.conf, -dhcp6)");
  doctor->add_option("--isc-conf", dhcp_files.isc, "ISC dhcpd configuration file (default: /etc/dhcp/dhcpd.conf)");

  auto* status = app.add_subcommand(
      "status", "Print the running agent's live figures (its /metrics over HTTPS on web.listen, with the admin token)");
  add_config(status);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help exits 0; every usage mistake exits 2 as the footer says (CLI11's own codes are 100+).
    int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }

  if (doctor->parsed()) {
    if (dhcp_files.dnsmasq.empty() && dhcp_files.kea.empty() && dhcp_files.isc.empty())
      dhcp_files = default_dhcp_server_files();
    auto report = run_agent_doctor(config_file, dhcp_files, ops::DoctorClock{unix_now()});
    std::cout << report.text();
    return report.failed() ? 1 : 0;
  }

  int code = 0;
  auto config = load(config_file, code);
  if (!config) return code;
  if (status->parsed()) return print_status(*config);
  if (run->parsed()) return run_agent(*config, log_level);

  if ((bind->parsed() || unbind->parsed() || show->parsed() || issue->parsed() || renew->parsed() ||
       revoke->parsed()) &&
      !valid_extension(extension))
    return fail("invalid extension \"" + extension + "\": 1-64 of a-z 0-9 . _ - +", exit_usage);
  if (issue->parsed() || renew->parsed()) {
    TerminalIssue how{valid_days, renew->parsed(), unix_now()};
    auto issued = issue_terminal_bundle(config->data_directory, config->name, extension, out_directory, how);
    if (!issued) return fail(issued.error());
    std::cout << *issued << "\n";
    return 0;
  }
  if (revoke->parsed()) {
    for (char& c : serial) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto revoked = revoke_terminal_certificates(config->data_directory, extension, serial, unix_now());
    if (!revoked) return fail(revoked.error(), exit_no_extension);
    for (const auto& entry : *revoked)
      std::cout << "revoked " << entry.serial << " (extension " << entry.extension << ", was valid until "
                << format_time(entry.not_after) << ")\n";
    return 0;
  }
  if (terminal_list->parsed()) {
    auto files = terminal_certificate_files(config->data_directory);
    auto issued = read_ledger(files.issued);
    if (!issued) return fail(issued.error());
    auto revoked = read_ledger(files.revoked);
    if (!revoked) return fail(revoked.error());
    std::cout << format_certificate_list(issued->entries, revoked->entries, unix_now());
    return 0;
  }

  auto opened = open_table(*config, bind->parsed() || sync->parsed());
  if (!opened) return fail(opened.error());
  alloc::AllocationTable& table = *opened->table;
  int64_t now = unix_now();

  if (sync->parsed()) {
    std::vector<SyncSource> todo;
    for (const auto& text : sources) {
      std::string error;
      auto source = parse_sync_source(text, ".", error);
      if (!source) return fail("--from: " + error, exit_usage);
      todo.push_back(*source);
    }
    if (sources.empty()) todo = config->sync_sources;
    if (todo.empty()) return fail("nothing to sync: give --from KIND:PATH or set sync.lease_files", exit_usage);
    auto progress_style = progress_style_for(stderr, progress_flag, no_progress);
    int result_code = 0;
    for (const auto& source : todo) {
      ProgressReport bar(progress_style);
      auto snapshot = read_lease_file(source, [&](size_t done_bytes, size_t total) {
        if (total > (4u << 20)) bar.show("reading", done_bytes, total);
      });
      if (!snapshot) {
        bar.done();
        std::cerr << "tsunagu-lan-agent: " << snapshot.error() << "\n";
        result_code = exit_failure;
        continue;
      }
      std::function<void(size_t, size_t)> on_progress;
      if (progress_style != ProgressStyle::off)
        on_progress = [&](size_t d, size_t t) { bar.show("applying", d, t); };
      auto result = sync_snapshot(table, *snapshot, unix_now(), on_progress, /*list_changes=*/false);
      bar.done();
      if (!result) return fail(source.path + ": " + result.error().detail);
      // A table this command created commits to the page cache: on the disk before the result is reported.
      if (&source == &todo.back()) {
        if (auto finished = finish_command_table(*opened); !finished) return fail(finished.error());
      } else if (opened->flush_pending) {
        if (auto flushed = opened->env->flush(); !flushed)
          return fail(opened->paths.table_directory + ": flush: " + flushed.error().detail);
      }
      std::cout << "synced " << sync_kind_name(source.kind) << ":" << source.path << ": " << snapshot->leases.size()
                << " lease(s): " << result->applied << " new or changed, " << result->duplicates << " unchanged, "
                << result->stale << " older than the table, " << result->ended_absent
                << " ended (absent from the file)\n";
      if (snapshot->bad_records != 0) {
        std::cout << "  " << snapshot->bad_records << " unreadable record(s)";
        if (snapshot->first_error)
          std::cout << ", first at line " << snapshot->first_error->line << ": " << snapshot->first_error->detail;
        std::cout << "; no lease was ended because of absence\n";
      }
    }
    if (auto finished = finish_command_table(*opened); !finished) return fail(finished.error());
    return result_code;
  }
  if (bind->parsed()) {
    auto client = alloc::ClientRef::parse(client_text);
    if (!client) return fail("\"" + client_text + "\": " + client.error().detail, exit_usage);
    auto changes = table.bind(extension, *client, now);
    if (!changes) return fail(changes.error().detail);
    if (auto kept = record_admin_binding(*opened, extension, &*client); !kept)
      return fail(config->data_directory + ": admin bindings: " + kept.error());
    if (auto finished = finish_command_table(*opened); !finished) return fail(finished.error());
    std::cout << "bound " << extension << " to " << client->value << "\n";
    return 0;
  }
  if (unbind->parsed()) {
    auto changes = table.unbind(extension, now);
    if (!changes) {
      if (changes.error().code == alloc::TableErrc::not_found)
        return fail("no such extension: " + extension, exit_no_extension);
      return fail(changes.error().detail);
    }
    if (auto kept = record_admin_binding(*opened, extension, nullptr); !kept)
      return fail(config->data_directory + ": admin bindings: " + kept.error());
    std::cout << "unbound " << extension << "\n";
    return 0;
  }
  auto bindings = table.bindings();
  if (!bindings) return fail(bindings.error().detail);
  if (list->parsed()) {
    auto leases = table.list(now, include_ended);
    if (!leases) return fail(leases.error().detail);
    auto conflicts = table.conflicts();
    if (!conflicts) return fail(conflicts.error().detail);
    std::cout << format_table(*bindings, *leases, now) << format_conflicts(*conflicts, now);
    return 0;
  }
  // show
  auto binding = table.binding(extension);
  if (!binding) return fail(binding.error().detail);
  auto leases = table.find_by_extension(extension, now, true);
  if (!leases) return fail(leases.error().detail);
  auto history = table.history(extension);
  if (!history) return fail(history.error().detail);
  if (!binding->has_value() && leases->empty() && history->empty())
    return fail("no such extension: " + extension, exit_no_extension);
  std::cout << format_extension(extension, binding->has_value() ? &**binding : nullptr, *leases, *history, now);
  return 0;
}
