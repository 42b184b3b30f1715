// tsunagu-rendezvous: the public rendezvous node and its admin commands.
// Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration,
// 3 no such user (or card), 4 already exists (a user, a deployment, another
// agent's bundle in --out; or the ID belongs to a LAN agent).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "base/audit_log.hpp"
#include "base/log.hpp"
#include "base/password_input.hpp"
#include "base/progress.hpp"
#include "proto/profile_change.hpp"
#include "proto/signalling.hpp"
#include "rendezvous/account_admin.hpp"
#include "rendezvous/account_store.hpp"
#include "rendezvous/agent_registry.hpp"
#include "node/card_commands.hpp"
#include "cluster/pg/pg_account_admin.hpp"
#include "cluster/pg/pg_agent_admin.hpp"
#include "cluster/pg/pg_commands.hpp"
#include "node/cluster_relay.hpp"
#include "node/deployment.hpp"
#include "ops/metrics_status.hpp"
#include "node/doctor.hpp"
#include "rendezvous/directory_search.hpp"
#include "node/node_config.hpp"
#include "node/node_daemon.hpp"
#include "rendezvous/voicemail_store.hpp"
#include "storage/environment_copy.hpp"
#include "base/files.hpp"
#include "security/passwords.hpp"
#include "security/scram.hpp"
#include "transport/systemd_watchdog.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;

namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
constexpr int exit_no_user = 3;
constexpr int exit_user_exists = 4;

std::string default_directory() {
  const char* env = std::getenv("TSUNAGU_DIR");
  return env != nullptr ? env : "/var/lib/tsunagu";
}

struct RunOptions {
  std::string listen, stun_listen, agent_listen, web_listen, log_level, ready_file, postgres;
  std::string redis, node_name;  // [cluster] overrides
};

// SIGHUP: `systemctl reload` (ExecReload=kill -HUP $MAINPID). The handle is
// unreferenced so it does not keep the loop alive once the node stops.
struct ReloadSignal {
  uv_signal_t handle{};
  NodeDaemon* node = nullptr;
  std::string directory;
};

struct ReloadSignalCloser {
  void operator()(ReloadSignal* signal) const {
    uv_close(reinterpret_cast<uv_handle_t*>(&signal->handle),
             [](uv_handle_t* h) { delete static_cast<ReloadSignal*>(h->data); });
  }
};

std::unique_ptr<ReloadSignal, ReloadSignalCloser> start_reload_signal(uv_loop_t* loop, NodeDaemon* node,
                                                                      const std::string& directory) {
  std::unique_ptr<ReloadSignal, ReloadSignalCloser> signal(new ReloadSignal{{}, node, directory});
  uv_signal_init(loop, &signal->handle);
  signal->handle.data = signal.get();
  uv_signal_start(&signal->handle, [](uv_signal_t* handle, int) {
    auto* self = static_cast<ReloadSignal*>(handle->data);
    sd_notify(0, "RELOADING=1");
    self->node->reload(self->directory);
    sd_notify(0, "READY=1");
  }, SIGHUP);
  uv_unref(reinterpret_cast<uv_handle_t*>(&signal->handle));
  return signal;
}

// One node per database: a second `run` on the same deployment would share
// the LMDB but not the in-memory state (presence, calls, quotas, card calls),
// so lookups would find users online at one node and not the other. A POSIX
// record lock on DB/node.lock, held for the process's life and dropped by the
// kernel however it ends (kill -9 included), refuses the second one naming the
// first's PID. Returns the descriptor, kept open until exit.
Expected<int, std::string> hold_node_lock(const std::string& database_directory) {
  std::string path = database_directory + "/node.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Unexpected("cannot open " + path + ": " + std::strerror(errno));
  struct flock whole {};
  whole.l_type = F_WRLCK;
  whole.l_whence = SEEK_SET;
  if (::fcntl(fd, F_SETLK, &whole) == 0) return fd;
  int error = errno;
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  std::string holder;
  if (::fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK)
    holder = " (process " + std::to_string(probe.l_pid) + ")";
  ::close(fd);
  if (error == EAGAIN || error == EACCES)
    return Unexpected("another node already runs on the database in " + database_directory + holder +
                      ": stop it first, or give this node a deployment of its own");
  return Unexpected("cannot lock " + path + ": " + std::strerror(error));
}

int run_node(const std::string& directory, const RunOptions& options) {
  NodeConfig config;
  try {
    config = load_node_config(directory);
  } catch (const std::exception& error) {
    std::cerr << "tsunagu-rendezvous: " << error.what() << "\n";
    return exit_usage;
  }
  if (!options.listen.empty()) {
    auto a = proto::SocketAddress::parse(options.listen);
    if (!a) return std::cerr << "tsunagu-rendezvous: --listen: not an address:port\n", exit_usage;
    config.listen = *a;
  }
  if (!options.stun_listen.empty()) {
    auto a = proto::SocketAddress::parse(options.stun_listen);
    if (!a) return std::cerr << "tsunagu-rendezvous: --stun-listen: not an address:port\n", exit_usage;
    config.stun_listen = *a;
  }
  if (!options.agent_listen.empty()) {
    auto a = proto::SocketAddress::parse(options.agent_listen);
    if (!a) return std::cerr << "tsunagu-rendezvous: --agent-listen: not an address:port\n", exit_usage;
    config.agent_listen = *a;
  }
  if (options.web_listen == "off") {
    config.web_listen.reset();
  } else if (!options.web_listen.empty()) {
    auto a = proto::SocketAddress::parse(options.web_listen);
    if (!a) return std::cerr << "tsunagu-rendezvous: --web-listen: not an address:port (or off)\n", exit_usage;
    config.web_listen = *a;
  }
  if (!options.postgres.empty()) config.postgres = options.postgres;
  if (!options.redis.empty()) {
    config.cluster_redis.clear();
    for (size_t start = 0; start <= options.redis.size();) {
      size_t comma = std::min(options.redis.find(',', start), options.redis.size());
      std::string server = options.redis.substr(start, comma - start);
      if (!parse_redis_endpoint(server))
        return std::cerr << "tsunagu-rendezvous: --redis: \"" << server << "\" is not IP:PORT\n", exit_usage;
      config.cluster_redis.push_back(server);
      start = comma + 1;
    }
  }
  if (!options.node_name.empty()) {
    if (!valid_node_name(options.node_name))
      return std::cerr << "tsunagu-rendezvous: --node-name: 1 to 64 of a-z 0-9 - . _\n", exit_usage;
    config.cluster_node_name = options.node_name;
  }
  if (!config.cluster_redis.empty() && config.cluster_node_name.empty())
    return std::cerr << "tsunagu-rendezvous: --redis needs --node-name (or cluster.node_name)\n", exit_usage;
  std::string level = options.log_level.empty() ? config.log_level : options.log_level;
  log::set_level(*log::parse_level(level));
  signal(SIGPIPE, SIG_IGN);
  auto node_lock = hold_node_lock(config.database_directory);
  if (!node_lock) {
    log::error() << node_lock.error();
    return exit_failure;
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  auto daemon = NodeDaemon::start(&loop, config);
  if (!daemon) {
    log::error() << daemon.error();
    uv_run(&loop, UV_RUN_DEFAULT);  // let closed handles finish
    uv_loop_close(&loop);
    return exit_failure;
  }
  // Signals are handled before the ready file or READY=1 says the node is up:
  // a SIGTERM sent at once must stop it cleanly, not kill it.
  struct Signals {
    uv_signal_t term{}, interrupt{};
    NodeDaemon* node = nullptr;
  } signals;
  signals.node = daemon->get();
  auto reload_signal = start_reload_signal(&loop, daemon->get(), directory);
  auto on_signal = [](uv_signal_t* handle, int signum) {
    auto* s = static_cast<Signals*>(handle->data);
    log::info() << "signal " << signum << ": finishing in-flight writes and stopping";
    sd_notify(0, "STOPPING=1");
    s->node->shutdown();
    // Both signal handles must go, or they keep the loop alive.
    for (auto* h : {&s->term, &s->interrupt})
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(h))) uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
  };
  for (auto [handle, signum] : {std::pair{&signals.term, SIGTERM}, std::pair{&signals.interrupt, SIGINT}}) {
    uv_signal_init(&loop, handle);
    handle->data = &signals;
    uv_signal_start(handle, on_signal, signum);
  }
  auto tls = (*daemon)->tls_address().to_string();
  auto stun = (*daemon)->stun_address().to_string();
  auto agent_port = (*daemon)->agent_address().to_string();
  auto web = (*daemon)->web_address();
  log::info() << "serving TLS on " << tls << ", agents on " << agent_port << ", STUN on udp " << stun
              << (web ? ", HTTPS on " + web->to_string() : std::string(", no web listener")) << ", data in "
              << config.database_directory;
  if (!options.ready_file.empty()) {
    std::string text = "{\"tls\": \"" + tls + "\", \"stun\": \"" + stun + "\", \"agent\": \"" + agent_port +
                       "\"" + (web ? ", \"web\": \"" + web->to_string() + "\"" : std::string()) +
                       ", \"pid\": " + std::to_string(getpid()) + "}\n";
    if (auto written = write_file_atomically(options.ready_file, text, 0644); !written) log::warn() << written.error();
  }
  sd_notify(0, "READY=1");
  auto watchdog = transport::SystemdWatchdog::start(&loop);

  uv_run(&loop, UV_RUN_DEFAULT);
  reload_signal.reset();
  // One signal closed its handle; close the other.
  for (auto* handle : {&signals.term, &signals.interrupt})
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(handle))) uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr);
  daemon->reset();
  watchdog.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  log::info() << "stopped";
  return 0;
}

// Admin commands open the same LMDB files as the running node (LMDB allows
// several processes), so they work whether or not the node runs.
struct Admin {
  NodeConfig config;
  std::unique_ptr<AccountStore> store;

  static std::optional<Admin> open(const std::string& directory, int& exit_code) {
    Admin admin;
    try {
      admin.config = load_node_config(directory);
    } catch (const std::exception& error) {
      std::cerr << "tsunagu-rendezvous: " << error.what() << "\n";
      exit_code = exit_usage;
      return std::nullopt;
    }
    auto store = AccountStore::open(admin.config.database_directory, admin.config.map_size);
    if (!store) {
      std::cerr << "tsunagu-rendezvous: storage: " << store.error().detail << "\n";
      exit_code = exit_failure;
      return std::nullopt;
    }
    admin.store = std::move(*store);
    return admin;
  }
};

int fail(std::string_view message, int code = exit_failure) {
  std::cerr << "tsunagu-rendezvous: " << message << "\n";
  return code;
}

// init's --name and --ip values: 0 when they are all valid, else exit_usage
// after saying which one is not.
int check_names(const std::vector<std::string>& names, const std::vector<std::string>& ips) {
  for (const auto& n : names)
    if (!valid_host_name(n)) return fail("invalid --name \"" + n + "\": a DNS name (a-z 0-9 . -)", exit_usage);
  for (const auto& a : ips)
    if (!proto::SocketAddress::parse(a, 0)) return fail("invalid --ip \"" + a + "\": an IP address", exit_usage);
  return 0;
}

int renew_certificate_command(const std::string& directory, const std::vector<std::string>& names,
                              const std::vector<std::string>& ips) {
  if (int bad = check_names(names, ips)) return bad;
  NodeConfig config;
  try {
    config = load_node_config(directory);
  } catch (const std::exception& error) {
    return fail(error.what(), exit_usage);
  }
  auto renewed = renew_node_certificate(CertificateRenewal{config.certificate_file, config.private_key_file,
                                                           config.ca_certificate_file, config.ca_private_key_file,
                                                           names, ips});
  if (!renewed) return fail(renewed.error());
  std::cout << *renewed;
  return 0;
}

// An account_admin refusal, with the exit code the footer documents.
int fail_admin(const AccountAdminError& error) {
  switch (error.code) {
    case AccountAdminErrc::invalid_id: return fail(error.detail, exit_usage);
    case AccountAdminErrc::no_such_user: return fail(error.detail, exit_no_user);
    case AccountAdminErrc::exists:
    case AccountAdminErrc::agent_route:
    case AccountAdminErrc::quarantined: return fail(error.detail, exit_user_exists);
    case AccountAdminErrc::storage: break;
  }
  return fail(error.detail);
}

std::optional<std::string> new_password(const std::optional<std::string>& file, std::string& error) {
  PasswordSource source;
  source.file = file;
  source.prompt = "New password: ";
  auto password = read_password(source, error);
  if (password && (password->size() < proto::min_password_size || password->size() > proto::max_password_size)) {
    error = "passwords are 8 to 256 bytes";
    return std::nullopt;
  }
  return password;
}

std::string describe(const Account& a);

// `user add`'s account, its password made into SCRAM credentials.
NewAccount new_account_of(const std::string& user_id, const std::string& display_name, const std::string& phone,
                          bool admin, bool reuse_removed, const std::string& password, uint32_t scram_iterations) {
  return NewAccount{user_id, security::scram::stored_credentials(password, scram_iterations), display_name, phone,
                    admin, reuse_removed};
}

// `user add|remove|list --pg`: the same commands on a cluster's PostgreSQL
// (cluster/pg/pg_account_admin.hpp). Hashing and checks as on LMDB; the
// deployment's node.toml, when there is one, gives the SCRAM iterations and
// the quarantine.
int pg_user_command(const std::string& conninfo, const std::string& directory, bool add, bool remove, bool list,
                    const std::string& user_id, const std::string& display_name, const std::string& phone,
                    const std::optional<std::string>& password_file, bool admin_role, bool reuse_removed) {
  if (!add && !remove && !list)
    return fail("--pg: only user add, remove and list work on PostgreSQL yet (docs/cluster.md)", exit_usage);
  if ((add || remove) && !proto::valid_user_id(user_id))
    return fail("invalid user ID \"" + user_id + "\": 1-64 of a-z 0-9 . _ - + then optionally @domain", exit_usage);
  if (add && proto::card_holder_id(user_id))  // before connecting; pg_add_account refuses it too
    return fail("user ID \"" + user_id + "\" refused: " + std::string(proto::card_holder_id_reason), exit_usage);
  NodeSettings settings;
  if (std::filesystem::exists(std::filesystem::path(directory) / "node.toml")) {
    try {
      settings = load_node_config(directory).settings;
    } catch (const std::exception& error) {
      return fail(error.what(), exit_usage);
    }
  }
  std::optional<std::string> password;
  if (add) {
    std::string error;
    password = new_password(password_file, error);
    if (!password) return fail(error, exit_usage);
  }
  auto connection = cluster::PgConnection::connect(conninfo);
  if (!connection) return fail("PostgreSQL: " + connection.error().detail);
  auto now = static_cast<uint64_t>(std::time(nullptr));
  if (add) {
    auto account = new_account_of(user_id, display_name, phone, admin_role, reuse_removed, *password,
                                  settings.scram_iterations);
    auto added = cluster::pg_add_account(**connection, account, settings.removed_id_quarantine_days, now);
    if (!added) return fail_admin(added.error());
    std::cout << "added " << user_id << (admin_role ? " (admin)" : "") << " to PostgreSQL\n";
    return 0;
  }
  if (remove) {
    auto removed = cluster::pg_remove_account(**connection, user_id, now);
    if (!removed) return fail_admin(removed.error());
    std::cout << "removed " << user_id << " from PostgreSQL; its links end within "
              << settings.account_check_interval_ms << " ms; the ID is held for "
              << settings.removed_id_quarantine_days << " days\n";
    return 0;
  }
  auto listed = cluster::pg_list_accounts(**connection, [](const Account& account) { std::cout << describe(account) << "\n"; });
  if (!listed) return fail_admin(listed.error());
  return 0;
}

void print_agent(const AgentEnrollment& a) {
  std::cout << a.name;
  for (const auto& d : a.domains) std::cout << "  domain " << d;
  for (const auto& p : a.number_prefixes) std::cout << "  prefix " << p;
  std::cout << "\n";
}

// The route checks `agent enroll` makes with and without --pg; 0 when they pass.
int check_agent_routes(const std::string& agent_name, const std::vector<std::string>& agent_domains,
                       const std::vector<std::string>& agent_prefixes) {
  if (!valid_agent_name(agent_name)) return fail("invalid agent name \"" + agent_name + "\": 1-63 of a-z 0-9 . -", exit_usage);
  if (agent_domains.empty() && agent_prefixes.empty()) return fail("give at least one --domain or --prefix", exit_usage);
  for (const auto& d : agent_domains)
    if (!valid_domain(d)) return fail("invalid domain \"" + d + "\": 1-63 of a-z 0-9 . -", exit_usage);
  for (const auto& p : agent_prefixes)
    if (!valid_number_prefix(p)) return fail("invalid prefix \"" + p + "\": + then digits and -", exit_usage);
  return 0;
}

std::string accounts_inside_message(const std::string& route, const std::string& agent_name,
                                    const std::vector<std::string>& inside) {
  std::string listed;
  for (size_t i = 0; i < inside.size() && i < 20; ++i) listed += "\n  " + inside[i];
  if (inside.size() > 20) listed += "\n  ...";
  return "accounts already use " + route + ", whose IDs would belong to agent " + agent_name + ":" + listed +
         "\nremove them (tsunagu-rendezvous user remove ID) and enroll again";
}

// `agent enroll|list|remove --pg`: the enrolments on a cluster's PostgreSQL
// (cluster/pg/pg_agent_admin.hpp), so an agent enrolled once links to any
// node run with --pg. The bundle is written as without --pg, from the
// deployment in --dir (its CA, its dial target).
int pg_agent_command(const std::string& conninfo, const std::string& directory, bool list, bool remove,
                     const std::string& agent_name, const std::vector<std::string>& agent_domains,
                     const std::vector<std::string>& agent_prefixes, const std::string& bundle_dir,
                     const std::string& agent_node, const std::string& agent_server_name) {
  if (!list && !remove) {
    if (int bad = check_agent_routes(agent_name, agent_domains, agent_prefixes)) return bad;
    if (std::string other = other_agent_bundle_in(bundle_dir, agent_name); !other.empty())
      return fail(other, exit_user_exists);
  } else if (remove && !valid_agent_name(agent_name)) {
    return fail("invalid agent name \"" + agent_name + "\": 1-63 of a-z 0-9 . -", exit_usage);
  }
  NodeConfig config;
  if (!list && !remove) {
    try {
      config = load_node_config(directory);
    } catch (const std::exception& error) {
      return fail(error.what(), exit_usage);
    }
  }
  auto connection = cluster::PgConnection::connect(conninfo);
  if (!connection) return fail("PostgreSQL: " + connection.error().detail);
  if (list) {
    auto agents = cluster::pg_list_agents(**connection);
    if (!agents) return fail("PostgreSQL: " + agents.error().detail);
    for (const auto& a : *agents) print_agent(a);
    return 0;
  }
  if (remove) {
    auto removed = cluster::pg_remove_agent(**connection, agent_name);
    if (!removed) return fail("PostgreSQL: " + removed.error().detail);
    if (!*removed) return fail("no such agent: " + agent_name, exit_no_user);
    std::cout << "removed agent " << agent_name << " and " << **removed
              << " undelivered voicemail message(s) of its extensions from PostgreSQL\n";
    return 0;
  }
  auto target = agent_dial_target(agent_node, agent_server_name, config.public_name, config.public_address,
                                   config.agent_listen.port);
  if (!target) return fail(target.error(), exit_usage);
  AgentBundleRequest bundle;
  bundle.ca_certificate_file = config.ca_certificate_file;
  bundle.ca_private_key_file = config.ca_private_key_file;
  bundle.name = agent_name;
  bundle.domains = agent_domains;
  bundle.number_prefixes = agent_prefixes;
  bundle.output_directory = bundle_dir;
  bundle.node_address = target->node_address;
  bundle.server_name = target->server_name;
  std::string written;
  AgentEnrollment enrollment{agent_name, agent_domains, agent_prefixes, static_cast<uint64_t>(std::time(nullptr))};
  auto enrolled = cluster::pg_enroll_agent(**connection, enrollment, [&]() -> Expected<void, std::string> {
    auto bundle_written = write_agent_bundle(bundle);
    if (!bundle_written) return Unexpected(bundle_written.error());
    written = *bundle_written;
    return {};
  });
  if (!enrolled) return fail(enrolled.error());
  using Outcome = cluster::PgEnrolment::Outcome;
  if (enrolled->outcome == Outcome::route_taken)
    return fail(enrolled->route + " is routed to agent " + enrolled->owner, exit_user_exists);
  if (enrolled->outcome == Outcome::accounts_inside)
    return fail(accounts_inside_message(enrolled->route, agent_name, enrolled->ids), exit_user_exists);
  std::cout << written;
  return 0;
}

std::string describe(const Account& a) {
  std::string out = a.user_id;
  if (!a.display_name.empty()) out += "  \"" + proto::printable_text(a.display_name) + "\"";  // from anyone who registered
  if (a.static_address) out += "  static " + a.static_address->to_string();
  if (!a.phone.empty()) out += "  phone " + a.phone;
  if (a.admin) out += "  admin";
  return out;
}

storage::CopyProgress copy_progress(ProgressReport& report, const char* what) {
  return [&report, what](uint64_t done_bytes, uint64_t total_bytes) {
    report.show(what, static_cast<size_t>(done_bytes), static_cast<size_t>(total_bytes));
  };
}

int backup_database(const std::string& directory, const std::string& out, ProgressStyle progress_style) {
  NodeConfig config;
  try {
    config = load_node_config(directory);
  } catch (const std::exception& error) {
    return fail(error.what(), exit_usage);
  }
  if (auto made = make_private_directory(out, 0700); !made) return fail(made.error());
  ProgressReport report(progress_style);
  auto copied = storage::copy_environment(config.database_directory, out, config.map_size,
                                          copy_progress(report, "copying"));
  report.done();
  if (!copied) return fail(copied.error().detail);
  std::error_code ec;
  auto size = std::filesystem::file_size(out + "/data.mdb", ec);
  std::cout << "copied " << config.database_directory << " to " << out << "/data.mdb (" << (ec ? 0 : size)
            << " bytes)\n";
  return 0;
}

// `restore FILE`: the node must be stopped (LMDB's lock says whether it is);
// the database it replaces is kept beside it.
int restore_database(const std::string& directory, const std::string& backup_file, ProgressStyle progress_style) {
  NodeConfig config;
  try {
    config = load_node_config(directory);
  } catch (const std::exception& error) {
    return fail(error.what(), exit_usage);
  }
  ProgressReport report(progress_style);
  auto restored = storage::restore_environment(backup_file, config.database_directory, "accounts",
                                               copy_progress(report, "restoring"));
  report.done();
  int status = restored ? 0 : restored.error().code == storage::StoreErrc::corrupted ? exit_usage : exit_failure;
  audit::AuditEvent event{"admin", {{"via", "cli"}, {"by", audit::invoking_user()}, {"action", "restore"},
                                    {"target", config.database_directory}}};
  event.add("result", restored ? "ok" : "failed").add("exit", std::to_string(status));
  audit::write_audit_line(event);
  if (!restored) return fail(restored.error().detail, status);
  std::string kept = config.database_directory + "/data.mdb.before-restore";
  std::cout << "restored " << backup_file << " into " << config.database_directory << "/data.mdb; "
            << (std::filesystem::exists(kept) ? "the database it replaced is " + kept
                                              : std::string("there was no database there before"))
            << "\n";
  return 0;
}

int print_status(const std::string& directory, const std::string& web) {
  NodeConfig config;
  try {
    config = load_node_config(directory);
  } catch (const std::exception& error) {
    return fail(error.what(), exit_usage);
  }
  std::optional<proto::SocketAddress> address = config.web_listen;
  if (!web.empty()) address = proto::SocketAddress::parse(web);
  if (!address || address->port == 0)
    return fail("no web listener address: set web.listen in node.toml or give --web ADDRESS:PORT", exit_usage);
  std::string host = address->ip_string();
  // A wildcard listener is reached over loopback.
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  // /metrics answers loopback clients without the token; with one, send it.
  std::string token;
  if (!config.web_metrics_token_file.empty()) {
    auto read = read_text_file(config.web_metrics_token_file, 4096);
    if (!read) return fail("web.metrics_token_file: " + read.error());
    token = *read;
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
  }
  auto metrics = ops::fetch_metrics(host, address->port, config.ca_certificate_file, token, 5000);
  if (!metrics) return fail(metrics.error());
  std::cout << ops::summarise_metrics(*metrics);
  return 0;
}

// One audit line per change an admin command made or tried (reads leave
// none): on stderr, and in the journal when the command was not started by
// systemd itself (docs/operator.md, "Audit log").
void audit_admin_command(const CLI::App& app, int status, const std::string& user_id, const std::string& agent_name,
                         const std::vector<std::string>& domains, const std::vector<std::string>& prefixes) {
  const CLI::App* group = nullptr;
  for (const auto* sub : app.get_subcommands()) group = sub;
  if (group == nullptr) return;
  const CLI::App* command = nullptr;
  for (const auto* sub : group->get_subcommands()) command = sub;
  if (command == nullptr) return;
  std::string name = command->get_name();
  if (name == "list" || name == "show") return;
  std::string result = status == 0 ? "ok" : "failed";
  audit::AuditEvent event;
  if (group->get_name() == "agent" && name == "enroll") {
    auto join = [](const std::vector<std::string>& items) {
      std::string out;
      for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
      return out;
    };
    event = audit::AuditEvent{"enrolment", {{"via", "cli"}, {"by", audit::invoking_user()}, {"agent", agent_name},
                                            {"domains", join(domains)}, {"prefixes", join(prefixes)}}};
  } else {
    std::string action = group->get_name() + "_" + name;
    std::replace(action.begin(), action.end(), '-', '_');
    event = audit::AuditEvent{"admin", {{"via", "cli"}, {"by", audit::invoking_user()}, {"action", action},
                                        {"target", group->get_name() == "agent" ? agent_name : user_id}}};
  }
  event.add("result", result).add("exit", std::to_string(status));
  audit::write_audit_line(event);
  if (!log::journal_mode())
    sd_journal_send("MESSAGE=%s", audit::format_audit_line(event).c_str(), "PRIORITY=6",
                    "SYSLOG_IDENTIFIER=tsunagu-rendezvous", nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  log::set_program("tsunagu-rendezvous");
  CLI::App app{"tsunagu-rendezvous: the Tsunagu public rendezvous node (accounts, presence, lookups, STUN)"};
  // Subcommands inherit this: a group's option (`user -d DIR`) is also taken after the
  // subcommand (`user add alice -d DIR`), the order admins type it in.
  app.fallthrough();
  app.require_subcommand(1);
  app.footer("Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration, 3 no such user (or card), "
             "4 already exists (a user, a deployment, another agent's bundle in --out; or the ID belongs to a LAN "
             "agent).\nThe deployment directory defaults to $TSUNAGU_DIR or /var/lib/tsunagu.");
  std::string directory = default_directory();

  auto* init = app.add_subcommand("init", "Create a deployment directory: private CA, node certificate, node.toml");
  std::string init_dir;
  std::vector<std::string> names, ips;
  bool force = false;
  init->add_option("DIR", init_dir,
                   "Directory to create (0750), or an existing one of yours that group and others cannot write")
      ->required();
  init->add_option("--name", names, "DNS name the node is reached by (repeatable; default localhost)");
  init->add_option("--ip", ips, "IP address the node is reached by (repeatable; default 127.0.0.1 and ::1)");
  init->add_flag("--force", force,
                 "Replace an existing deployment: a new CA, node key and certificate, and node.toml written afresh "
                 "(the database stays)");
  bool renew_certificate = false;
  init->add_flag("--renew-certificate", renew_certificate,
                 "Only issue a new node certificate and key from the CA (for --name/--ip, else the current "
                 "certificate's names), renamed into place; a reload (SIGHUP) serves it");

  auto* run = app.add_subcommand("run", "Run the node in the foreground (SIGTERM stops it cleanly)");
  RunOptions run_options;
  run->add_option("-d,--dir", directory, "Deployment directory");
  run->add_option("--listen", run_options.listen, "TLS address:port, overrides node.listen (port 0 picks one)");
  run->add_option("--stun-listen", run_options.stun_listen, "UDP STUN address:port, overrides node.stun_listen");
  run->add_option("--agent-listen", run_options.agent_listen, "LAN agent TLS address:port, overrides node.agent_listen");
  run->add_option("--web-listen", run_options.web_listen,
                  "HTTPS address:port for the web pages, API and /metrics, overrides web.listen (off: none)");
  run->add_option("--redis", run_options.redis,
                  "Cluster mode: Redis IP:PORT[,IP:PORT...] for presence and the bus, overrides cluster.redis");
  run->add_option("--node-name", run_options.node_name, "Cluster mode: this node's name, overrides cluster.node_name");
  run->add_option("--log-level", run_options.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  run->add_option("--ready-file", run_options.ready_file,
                  "Write the bound addresses and PID as JSON to this file once serving");
  run->add_option("--pg", run_options.postgres,
                  "Cluster mode: accounts, logins, profiles, voicemail and the card ledger in this PostgreSQL (libpq conninfo), "
                  "overrides cluster.postgres");

  auto* doctor = app.add_subcommand(
      "doctor", "Check a deployment (configuration, certificates, key and directory permissions, ports, LMDB map, "
                "clock) and say what to fix; exits 1 on any FAIL");
  doctor->add_option("-d,--dir", directory, "Deployment directory");
  auto* status = app.add_subcommand(
      "status", "Print the running node's live figures (its /metrics, read over loopback HTTPS from web.listen)");
  status->add_option("-d,--dir", directory, "Deployment directory");
  std::string status_web;
  status->add_option("--web", status_web, "The web listener's address:port (default: web.listen; needed when it is port 0)");
  auto* backup = app.add_subcommand(
      "backup", "Copy the database (accounts, agents, voicemail) into OUT/data.mdb while the node runs, compacted "
                "(like mdb_copy -c); `restore` puts it back");
  backup->add_option("-d,--dir", directory, "Deployment directory");
  std::string backup_out;
  backup->add_option("OUT", backup_out, "Directory to write data.mdb into (created 0700; must not hold one)")
      ->required();
  bool no_progress = false;
  backup->add_flag("--no-progress", no_progress,
                   "Show no progress (otherwise a bar on a terminal, a line at every tenth when stderr is not one)");
  auto* restore = app.add_subcommand(
      "restore", "Put a backup's data.mdb in place of DIR/db/data.mdb (the node must be stopped; the replaced file is "
                 "kept as data.mdb.before-restore)");
  restore->add_option("-d,--dir", directory, "Deployment directory");
  std::string restore_file;
  restore->add_option("FILE", restore_file, "The backup's data.mdb")->required()->check(CLI::ExistingFile);
  restore->add_flag("--no-progress", no_progress, "Show no progress");

  auto* user = app.add_subcommand("user", "Manage accounts");
  user->require_subcommand(1);
  user->add_option("-d,--dir", directory, "Deployment directory");
  std::string user_pg;
  user->add_option("--pg", user_pg,
                   "Cluster mode: the accounts in this PostgreSQL (libpq conninfo; add, remove and list only)");
  std::string user_id, display_name, phone, address_text;
  std::optional<std::string> password_file;
  auto* add = user->add_subcommand("add", "Create an account (password from --password-file, $TSUNAGU_PASSWORD or a prompt)");
  add->add_option("ID", user_id, "User ID")->required();
  add->add_option("--name", display_name, "Display name")
      ->check(CLI::Validator(
          [](std::string& name) {
            return proto::valid_profile_text(name, proto::max_display_name_size)
                       ? std::string()
                       : std::string("at most 128 bytes of UTF-8 text, without control or bidirectional "
                                     "formatting characters");
          },
          ""));
  add->add_option("--phone", phone, "Phone number");
  add->add_option("--password-file", password_file, "Read the password from this file's first line ('-' = stdin)");
  bool reuse_removed = false, admin_role = false;
  add->add_flag("--admin", admin_role, "Give the account the admin role (the web API's admin endpoints)");
  add->add_flag("--reuse-removed-id", reuse_removed,
                "Allow an ID removed less than accounts.removed_id_quarantine_days ago (give it to its old owner only)");
  auto* remove = user->add_subcommand(
      "remove", "Delete an account and its voicemail; its logged-in links end; the ID is held for the quarantine");
  remove->add_option("ID", user_id, "User ID")->required();
  auto* list = user->add_subcommand("list", "List accounts");
  auto* show = user->add_subcommand("show", "Show one account");
  show->add_option("ID", user_id, "User ID")->required();
  auto* passwd = user->add_subcommand("passwd", "Reset a user's password (its logged-in links end)");
  passwd->add_option("ID", user_id, "User ID")->required();
  passwd->add_option("--password-file", password_file, "Read the password from this file's first line ('-' = stdin)");
  std::string admin_word;
  auto* set_admin_command = user->add_subcommand(
      "set-admin", "Give (on) or take (off) the admin role: the web API's admin endpoints (docs/web.md)");
  set_admin_command->add_option("ID", user_id, "User ID")->required();
  set_admin_command->add_option("ON|OFF", admin_word, "on or off")->required()->check(CLI::IsMember({"on", "off"}));
  auto* set_static = user->add_subcommand("set-static", "Enter a permanent address for an always-on terminal");
  set_static->add_option("ID", user_id, "User ID")->required();
  set_static->add_option("ADDRESS", address_text, "address:port")->required();
  auto* clear_static = user->add_subcommand("clear-static", "Remove a user's permanent address");
  clear_static->add_option("ID", user_id, "User ID")->required();
  std::vector<std::string> services;
  auto* set_services = user->add_subcommand("set-services",
                                            "Set a user's services: voicemail, call-waiting, forwarding (none = clear)");
  set_services->add_option("ID", user_id, "User ID")->required();
  set_services->add_option("SERVICE", services, "Services to enable (the others are disabled)")
      ->check(CLI::IsMember({"voicemail", "call-waiting", "forwarding", "none"}));
  std::string verified_word;
  auto* verify = user->add_subcommand(
      "verify", "Mark a user's directory row as checked by the operator (yes) or not (no); shown by `directory`");
  verify->add_option("ID", user_id, "User ID")->required();
  verify->add_option("YES|NO", verified_word, "yes or no")->required()->check(CLI::IsMember({"yes", "no"}));
  std::vector<std::string> profile_words;
  auto* set_profile = user->add_subcommand(
      "profile", "Change a user's directory row: name=TEXT phone=NUMBER category=TEXT publish=yes|no voicemail=yes|no "
                 "presence=anyone|contacts|nobody contacts=ID,ID,... addresses=yes|no");
  set_profile->add_option("ID", user_id, "User ID")->required();
  set_profile->add_option("KEY=VALUE", profile_words, "Fields to change (category= empty: not a business)")->required();

  auto* agent = app.add_subcommand("agent", "Manage LAN agents and the domains / number prefixes routed to them");
  agent->require_subcommand(1);
  agent->add_option("-d,--dir", directory, "Deployment directory");
  std::string agent_name, bundle_dir, agent_node, agent_server_name;
  std::vector<std::string> agent_domains, agent_prefixes;
  auto* enroll = agent->add_subcommand("enroll", "Issue an agent's client certificate and route its domains to it");
  enroll->add_option("NAME", agent_name, "Agent name (certificate common name), e.g. acme")->required();
  enroll->add_option("--domain", agent_domains, "Enterprise domain routed to this agent (repeatable)");
  enroll->add_option("--prefix", agent_prefixes, "Phone-number prefix routed to this agent, e.g. +81-6-1234- (repeatable)");
  enroll->add_option("--out", bundle_dir,
                     "Directory to write the agent's bundle into (created 0700, or one of yours that group and "
                     "others cannot write; not one holding another agent's bundle: exit 4)")
      ->required();
  enroll->add_option("--node", agent_node,
                     "host:port the agent dials (default: node.public_address, else node.public_name, with "
                     "node.agent_listen's port; refused when node.toml has neither)");
  enroll->add_option("--server-name", agent_server_name,
                     "Name on the node's certificate the agent checks (default: node.public_name, else "
                     "node.public_address)");
  std::string agent_pg;
  agent->add_option("--pg", agent_pg,
                    "Cluster mode: the enrolments in this PostgreSQL (libpq conninfo); the bundle's CA and dial "
                    "target still come from --dir");
  auto* agent_list = agent->add_subcommand("list", "List enrolled agents and their routes");
  auto* agent_remove = agent->add_subcommand("remove", "Remove an agent's enrolment and routes, and its extensions' undelivered voicemail");
  agent_remove->add_option("NAME", agent_name, "Agent name")->required();
  auto card_commands = add_card_commands(app, directory);
  auto cluster_commands = cluster::add_cluster_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; every usage mistake exits 2 as documented.
    int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }

  if (init->parsed() && renew_certificate) return renew_certificate_command(init_dir, names, ips);
  if (init->parsed()) {
    DeploymentRequest request;
    request.directory = init_dir;
    if (!names.empty() || !ips.empty()) {
      if (int bad = check_names(names, ips)) return bad;
      request.dns_names = names;
      request.ip_addresses = ips;
      // What agents will dial and check by default (`agent enroll`).
      request.public_name = names.empty() ? "" : names.front();
      request.public_address = ips.empty() ? "" : ips.front();
    }
    request.overwrite = force;
    if (std::string existing = existing_deployment_in(init_dir); !force && !existing.empty())
      return fail(existing, exit_user_exists);
    auto created = create_deployment(request);
    if (!created) return fail(created.error());
    std::cout << *created;
    return 0;
  }
  if (run->parsed()) return run_node(directory, run_options);
  if (cluster_commands->parsed()) return cluster_commands->run();
  if (card_commands->parsed()) {
    int card_status = card_commands->run(directory);
    if (std::string target = card_commands->audit_target(); !target.empty())
      audit_admin_command(app, card_status, target, {}, {}, {});
    return card_status;
  }
  auto progress_style = progress_style_for(stderr, false, no_progress);
  if (backup->parsed()) return backup_database(directory, backup_out, progress_style);
  if (restore->parsed()) return restore_database(directory, restore_file, progress_style);
  if (status->parsed()) return print_status(directory, status_web);
  if (doctor->parsed()) {
    auto report = run_node_doctor(directory, ops::DoctorClock{static_cast<int64_t>(std::time(nullptr))});
    std::cout << report.text();
    return report.failed() ? exit_failure : 0;
  }

  if (agent->parsed() && !agent_pg.empty())
    return pg_agent_command(agent_pg, directory, agent_list->parsed(), agent_remove->parsed(), agent_name, agent_domains,
                            agent_prefixes, bundle_dir, agent_node, agent_server_name);
  if (user->parsed() && !user_pg.empty()) return pg_user_command(user_pg, directory, add->parsed(), remove->parsed(),
                                                                 list->parsed(), user_id, display_name, phone,
                                                                 password_file, admin_role, reuse_removed);

  // The admin commands, in a lambda so that every exit path of a change is
  // audited below with its exit status (not re-indented, to keep the diff small).
  auto admin_command = [&]() -> int {
  int code = 0;
  auto admin = Admin::open(directory, code);
  if (!admin) return code;
  auto& store = *admin->store;
  if (agent->parsed()) {
    auto registry = AgentRegistry::open(store.environment());
    if (!registry) return fail(registry.error().detail);
    auto voicemail = VoicemailStore::open(store.environment());  // before the write transaction: it opens tables
    if (!voicemail) return fail(voicemail.error().detail);
    if (agent_list->parsed()) {
      auto txn = store.begin_read();
      if (!txn) return fail(txn.error().detail);
      auto agents = registry->list(*txn);
      if (!agents) return fail(agents.error().detail);
      for (const auto& a : *agents) print_agent(a);
      return 0;
    }
    if (!valid_agent_name(agent_name)) return fail("invalid agent name \"" + agent_name + "\": 1-63 of a-z 0-9 . -", exit_usage);
    auto txn = store.begin_write();
    if (!txn) return fail(txn.error().detail);
    if (agent_remove->parsed()) {
      auto enrolled = registry->find(*txn, agent_name);
      if (!enrolled) return fail(enrolled.error().detail);
      if (!enrolled->has_value()) return fail("no such agent: " + agent_name, exit_no_user);
      auto removed = registry->remove(*txn, agent_name);
      if (!removed) return fail(removed.error().detail);
      // Its IDs become registrable: their undelivered voicemail goes with the agent.
      size_t deleted = 0;
      std::vector<std::string> routes = (*enrolled)->domains;
      routes.insert(routes.end(), (*enrolled)->number_prefixes.begin(), (*enrolled)->number_prefixes.end());
      for (const auto& route : routes) {
        auto gone = voicemail->remove_mailboxes_inside(*txn, route);
        if (!gone) return fail(gone.error().detail);
        deleted += *gone;
      }
      if (auto committed = txn->commit(); !committed) return fail(committed.error().detail);
      std::cout << "removed agent " << agent_name << " and " << deleted
                << " undelivered voicemail message(s) of its extensions\n";
      return 0;
    }
    if (int bad = check_agent_routes(agent_name, agent_domains, agent_prefixes)) return bad;
    if (std::string other = other_agent_bundle_in(bundle_dir, agent_name); !other.empty())
      return fail(other, exit_user_exists);
    // IDs inside a route belong to its agent: accounts already there must go
    // first (docs/operator.md, "Enrolling a domain that accounts already use").
    std::vector<std::string> routes = agent_domains;
    routes.insert(routes.end(), agent_prefixes.begin(), agent_prefixes.end());
    for (const auto& route : routes) {
      auto inside = store.ids_inside(*txn, route, 21);
      if (!inside) return fail(inside.error().detail);
      if (inside->empty()) continue;
      return fail(accounts_inside_message(route, agent_name, *inside), exit_user_exists);
    }
    AgentEnrollment enrollment{agent_name, agent_domains, agent_prefixes, static_cast<uint64_t>(std::time(nullptr))};
    auto conflict = registry->enroll(*txn, enrollment);
    if (!conflict) return fail(conflict.error().detail);
    if (conflict->has_value()) return fail(**conflict, exit_user_exists);
    AgentBundleRequest bundle;
    bundle.ca_certificate_file = admin->config.ca_certificate_file;
    bundle.ca_private_key_file = admin->config.ca_private_key_file;
    bundle.name = agent_name;
    bundle.domains = agent_domains;
    bundle.number_prefixes = agent_prefixes;
    bundle.output_directory = bundle_dir;
    auto target = agent_dial_target(agent_node, agent_server_name, admin->config.public_name,
                                    admin->config.public_address, admin->config.agent_listen.port);
    if (!target) return fail(target.error(), exit_usage);
    bundle.node_address = target->node_address;
    bundle.server_name = target->server_name;
    auto written = write_agent_bundle(bundle);
    if (!written) return fail(written.error());
    if (auto committed = txn->commit(); !committed) return fail(committed.error().detail);
    std::cout << *written;
    return 0;
  }
  if (add->parsed() || passwd->parsed() || set_static->parsed() || clear_static->parsed() || remove->parsed() ||
      set_services->parsed() || set_profile->parsed() || verify->parsed() || set_admin_command->parsed()) {
    if (!proto::valid_user_id(user_id))
      return fail("invalid user ID \"" + user_id + "\": 1-64 of a-z 0-9 . _ - + then optionally @domain", exit_usage);
  }
  if (add->parsed()) {
    std::string error;
    auto password = new_password(password_file, error);
    if (!password) return fail(error, exit_usage);
    auto account = new_account_of(user_id, display_name, phone, admin_role, reuse_removed, *password,
                                  admin->config.settings.scram_iterations);
    auto added = add_account(store, account, admin->config.settings.removed_id_quarantine_days,
                             static_cast<uint64_t>(std::time(nullptr)));
    if (!added) return fail_admin(added.error());
    std::cout << "added " << user_id << (admin_role ? " (admin)" : "") << "\n";
    return 0;
  }
  if (remove->parsed()) {
    auto removed = remove_account(store, user_id, static_cast<uint64_t>(std::time(nullptr)));
    if (!removed) return fail_admin(removed.error());
    std::cout << "removed " << user_id << " and " << *removed << " voicemail message(s); its links end within "
              << admin->config.settings.account_check_interval_ms << " ms; the ID is held for "
              << admin->config.settings.removed_id_quarantine_days << " days\n";
    return 0;
  }
  if (passwd->parsed()) {
    std::string error;
    auto password = new_password(password_file, error);
    if (!password) return fail(error, exit_usage);
    auto changed =
        reset_password(store, user_id, security::scram::stored_credentials(*password, admin->config.settings.scram_iterations));
    if (!changed) return fail_admin(changed.error());
    std::cout << "updated " << user_id << "\n";
    return 0;
  }
  if (verify->parsed() || set_admin_command->parsed()) {
    auto changed = verify->parsed() ? set_verified(store, user_id, verified_word == "yes")
                                    : set_admin(store, user_id, admin_word == "on");
    if (!changed) return fail_admin(changed.error());
    std::cout << "updated " << user_id << "\n";
    return 0;
  }
  if (list->parsed()) {
    auto txn = store.begin_read();
    if (!txn) return fail(txn.error().detail);
    std::string from;
    while (true) {
      auto page = store.list(*txn, from, 1000);
      if (!page) return fail(page.error().detail);
      for (const auto& account : *page) std::cout << describe(account) << "\n";
      if (page->size() < 1000) break;
      from = page->back().user_id + '\0';
    }
    return 0;
  }
  // The rest read-modify-write one account.
  auto txn = store.begin_write();
  if (!txn) return fail(txn.error().detail);
  auto found = store.find(*txn, user_id);
  if (!found) return fail(found.error().detail);
  if (!found->has_value()) return fail("no such user: " + user_id, exit_no_user);
  Account account = **found;
  if (show->parsed()) {
    std::string service_list;
    if (account.services & proto::service_flag::voicemail) service_list += " voicemail";
    if (account.services & proto::service_flag::call_waiting) service_list += " call-waiting";
    if (account.services & proto::service_flag::forwarding) service_list += " forwarding";
    std::cout << "user:      " << account.user_id << "\nname:      " << account.display_name
              << "\nphone:     " << account.phone << "\nstatic:    "
              << (account.static_address ? account.static_address->to_string() : "-")
              << "\nservices: " << (service_list.empty() ? " -" : service_list)
              << "\ncategory:  " << (account.category.empty() ? "-" : account.category)
              << "\npublished: " << (account.publish ? "yes" : "no")
              << "\nverified:  " << (account.verified ? "yes" : "no")
              << "\npresence:  "
              << (account.presence_visibility == proto::presence_visibility::nobody     ? "nobody"
                  : account.presence_visibility == proto::presence_visibility::contacts ? "contacts"
                                                                                          : "anyone logged in")
              << "\ncontacts:  " << (account.contacts.empty() ? "-" : proto::join_contacts(account.contacts))
              << "\naddresses: " << (account.addresses_shown ? "shown" : "hidden")
              << "\nadmin:     " << (account.admin ? "yes" : "no") << "\n";
    return 0;
  }
  if (set_static->parsed()) {
    auto address = proto::SocketAddress::parse(address_text);
    if (!address) return fail("\"" + address_text + "\" is not an address:port", exit_usage);
    account.static_address = *address;
  } else if (clear_static->parsed()) {
    account.static_address.reset();
  } else if (set_profile->parsed()) {
    auto change = proto::parse_profile_assignments(profile_words);
    if (!change) return fail(change.error(), exit_usage);
    apply_profile_change(account, *change);
  } else if (set_services->parsed()) {
    account.services = 0;
    for (const auto& service : services) {
      if (service == "voicemail") account.services |= proto::service_flag::voicemail;
      if (service == "call-waiting") account.services |= proto::service_flag::call_waiting;
      if (service == "forwarding") account.services |= proto::service_flag::forwarding;
    }
  }
  if (auto updated = store.update(*txn, account); !updated) return fail(updated.error().detail);
  if (auto committed = txn->commit(); !committed) return fail(committed.error().detail);
  std::cout << "updated " << user_id << "\n";
  return 0;
  };
  int exit_status = admin_command();
  audit_admin_command(app, exit_status, user_id, agent_name, agent_domains, agent_prefixes);
  return exit_status;
}
