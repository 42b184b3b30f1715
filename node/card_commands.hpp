// `tsunagu-rendezvous card ...`: issue access cards (files, QR images, ledger
// entries), show one (a file, verified, or a serial, with its ledger history),
// revoke one, top one up. Kept apart from main.cpp, which only registers and
// dispatches them. docs/cards.md has the commands.
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace tsunagu::rendezvous {

class CardCommands {
 public:
  virtual ~CardCommands() = default;
  virtual bool parsed() const = 0;
  // Runs the parsed subcommand against the deployment in `directory`;
  // returns the exit code (main.cpp's: 0, 1 runtime failure, 2 usage, 3 no
  // such card).
  virtual int run(const std::string& directory) = 0;
  // What the audit line of a changing command (issue, revoke, topup, rekey)
  // names as its target: the serial, or "group G count N" for issue; empty
  // for reads (show, keys), which leave no line.
  virtual std::string audit_target() const = 0;
};

// Adds `card` and its subcommands to `app`. `directory` is main's deployment
// directory variable; `card -d DIR` sets it.
std::unique_ptr<CardCommands> add_card_commands(CLI::App& app, std::string& directory);

}  // namespace tsunagu::rendezvous
