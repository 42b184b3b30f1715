// Progress of long admin work (lease-file syncs, backups, restores): a bar
// redrawn in place on a terminal, plain lines at every tenth otherwise (a
// journal or a log file gets a readable record, not carriage returns).
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace tsunagu {

enum class ProgressStyle { off, bar, lines };

// `--progress` forces the bar, `--no-progress` turns it off; otherwise a bar
// when `stream` is a terminal and lines when it is not.
ProgressStyle progress_style_for(std::FILE* stream, bool force_bar, bool off);

class ProgressReport {
 public:
  ProgressReport(ProgressStyle style, std::FILE* stream = stderr) : style_(style), stream_(stream) {}
  ~ProgressReport() { done(); }
  ProgressReport(const ProgressReport&) = delete;
  ProgressReport& operator=(const ProgressReport&) = delete;

  // `what` names the phase ("reading", "copying"); a new phase starts a new bar.
  void show(std::string_view what, size_t done_count, size_t total);
  // Ends the bar's line; nothing for lines (each is whole already).
  void done();

 private:
  ProgressStyle style_;
  std::FILE* stream_;
  bool bar_open_ = false;
  int last_step_ = -1;
  std::string last_what_;
};

}  // namespace tsunagu
