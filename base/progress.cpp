#include "base/progress.hpp"

#include <unistd.h>

namespace tsunagu {

ProgressStyle progress_style_for(std::FILE* stream, bool force_bar, bool off) {
  if (off) return ProgressStyle::off;
  if (force_bar || ::isatty(::fileno(stream))) return ProgressStyle::bar;
  return ProgressStyle::lines;
}

void ProgressReport::show(std::string_view what, size_t done_count, size_t total) {
  if (style_ == ProgressStyle::off || total == 0) return;
  if (done_count > total) done_count = total;
  int percent = static_cast<int>(done_count * 100 / total);
  // The bar redraws at every percent; lines are written at every tenth.
  int step = style_ == ProgressStyle::bar ? percent : percent / 10 * 10;
  if (step == last_step_ && what == last_what_) return;
  if (what != last_what_) done();
  last_step_ = step;
  last_what_ = what;
  if (style_ == ProgressStyle::lines) {
    // The step only decides when a line is due; the line says where the work is
    // (1 of 4 is 25%, not the tenth it fell in).
    std::fprintf(stream_, "%.*s: %d%% (%zu of %zu)\n", static_cast<int>(what.size()), what.data(), percent,
                 done_count, total);
  } else {
    int filled = percent * 30 / 100;
    std::fprintf(stream_, "\r%-9.*s [%.*s%*s] %3d%%", static_cast<int>(what.size()), what.data(), filled,
                 "##############################", 30 - filled, "", percent);
    bar_open_ = true;
  }
  std::fflush(stream_);
}

void ProgressReport::done() {
  if (bar_open_) std::fputc('\n', stream_);
  bar_open_ = false;
}

}  // namespace tsunagu
