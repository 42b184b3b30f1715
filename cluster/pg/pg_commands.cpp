#include "cluster/pg/pg_commands.hpp"

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "cluster/pg/pg_migrations.hpp"

namespace tsunagu::cluster {

namespace {

constexpr int exit_failure = 1;

int fail(const PgError& error) {
  std::cerr << "tsunagu-rendezvous: " << error.detail << "\n";
  return exit_failure;
}

class Commands final : public ClusterCommands {
 public:
  explicit Commands(CLI::App& app) {
    group_ = app.add_subcommand("cluster", "Cluster mode's PostgreSQL database: apply the schema, show its version");
    group_->require_subcommand(1);
    group_->add_option("--pg", conninfo_,
                       "libpq connection string or URI of the cluster database (default: libpq's PG* environment)");
    migrate_ = group_->add_subcommand(
        "migrate", "Apply the schema migrations this binary brings, in order, each in one transaction; refuses a "
                   "database whose schema is newer");
    schema_version_ = group_->add_subcommand("schema-version",
                                             "Print the database's schema version and this binary's; exits 1 when "
                                             "they differ");
  }

  bool parsed() const override { return group_->parsed(); }

  int run() override {
    auto connection = PgConnection::connect(conninfo_);
    if (!connection) return fail(connection.error());
    if (migrate_->parsed()) {
      auto report = migrate(**connection);
      if (!report) return fail(report.error());
      if (report->applied.empty()) {
        std::cout << "schema: version " << report->to << ", current; nothing applied\n";
      } else {
        std::cout << "schema: version " << report->from << " -> " << report->to << " (applied";
        for (int version : report->applied) std::cout << " " << version;
        std::cout << ")\n";
      }
      return 0;
    }
    auto version = schema_version(**connection);
    if (!version) return fail(version.error());
    std::cout << "database: " << *version << "\nbinary: " << latest_schema_version() << "\n";
    return *version == latest_schema_version() ? 0 : exit_failure;
  }

 private:
  CLI::App* group_ = nullptr;
  CLI::App* migrate_ = nullptr;
  CLI::App* schema_version_ = nullptr;
  std::string conninfo_;
};

}  // namespace

std::unique_ptr<ClusterCommands> add_cluster_commands(CLI::App& app) { return std::make_unique<Commands>(app); }

}  // namespace tsunagu::cluster
