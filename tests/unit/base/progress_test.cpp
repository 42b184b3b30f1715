// base/progress: the bar a terminal gets and the plain lines a log gets, and
// which of the two a stream is given (a real pseudo-terminal from openpty()).
#include "base/progress.hpp"

#include <doctest/doctest.h>
#include <pty.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "stream_text.hpp"

using namespace tsunagu;
using test::occurrences;

namespace {

std::string shown_by(ProgressStyle style, size_t total) {
  std::FILE* sink = std::tmpfile();
  REQUIRE(sink != nullptr);
  {
    ProgressReport report(style, sink);
    for (size_t done = 0; done <= total; ++done) report.show("copying", done, total);
  }  // the destructor ends an open bar's line
  std::string text = test::stream_text(sink);
  std::fclose(sink);
  return text;
}

}  // namespace

TEST_CASE("progress: plain lines at each tenth, each saying where the work really is") {
  std::string lines = shown_by(ProgressStyle::lines, 4);
  CHECK(lines == "copying: 0% (0 of 4)\ncopying: 25% (1 of 4)\ncopying: 50% (2 of 4)\ncopying: 75% (3 of 4)\n"
                 "copying: 100% (4 of 4)\n");
  std::string many = shown_by(ProgressStyle::lines, 1000);
  CHECK(occurrences(many, "\n") == 11);  // 0%, 10%, ... 100%: not one line per item
  CHECK(occurrences(many, "\r") == 0);
  CHECK(many.find("copying: 100% (1000 of 1000)\n") != std::string::npos);
}

TEST_CASE("progress: a bar redrawn in place, once per percent, its line ended once") {
  std::string bar = shown_by(ProgressStyle::bar, 1000);
  CHECK(occurrences(bar, "\r") == 101);
  CHECK(occurrences(bar, "\n") == 1);
  CHECK(bar.find("\rcopying   [##############################] 100%\n") != std::string::npos);
  CHECK(bar.find(" of ") == std::string::npos);
}

TEST_CASE("progress: off shows nothing; a new phase ends the previous bar") {
  CHECK(shown_by(ProgressStyle::off, 10).empty());
  std::FILE* sink = std::tmpfile();
  {
    ProgressReport report(ProgressStyle::bar, sink);
    report.show("issuing", 1, 1);
    report.show("writing", 1, 1);
  }
  std::string text = test::stream_text(sink);
  std::fclose(sink);
  CHECK(text == "\rissuing   [##############################] 100%\n\rwriting   [##############################] 100%\n");
}

TEST_CASE("progress: a terminal gets the bar, a file lines; --progress and --no-progress win") {
  int controller = -1, terminal = -1;
  REQUIRE(::openpty(&controller, &terminal, nullptr, nullptr, nullptr) == 0);
  std::FILE* tty = ::fdopen(terminal, "w");
  REQUIRE(tty != nullptr);
  std::FILE* file = std::tmpfile();
  CHECK(progress_style_for(tty, false, false) == ProgressStyle::bar);
  CHECK(progress_style_for(file, false, false) == ProgressStyle::lines);
  CHECK(progress_style_for(file, true, false) == ProgressStyle::bar);
  CHECK(progress_style_for(tty, false, true) == ProgressStyle::off);
  std::fclose(file);
  std::fclose(tty);
  ::close(controller);
}
