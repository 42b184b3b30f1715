// base/log: the line format an operator (and the integration tests) read:
// TIME.mmmZ PROGRAM[PID] LEVEL: MESSAGE, one write per line, below-level lines dropped.
#include <doctest/doctest.h>
#include <unistd.h>

#include <regex>
#include <string>

#include "base/log.hpp"
#include "stream_text.hpp"

using namespace tsunagu;

TEST_CASE("log: a line is the UTC time to the millisecond, the program and pid, the level and the message") {
  log::Level saved = log::level();
  log::set_level(log::Level::info);
  log::set_program("log-test");
  std::string written = test::capture_stderr([] {
    log::write(log::Level::info, "first");
    log::debug() << "dropped below the level";
    log::warn() << "second " << 2;
  });
  log::set_level(saved);
  std::string pid = std::to_string(getpid());
  std::regex line("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z log-test\\[" + pid + "\\] " +
                  "(info: first|warn: second 2)\n");
  std::smatch first, second;
  std::string rest = written;
  REQUIRE(std::regex_search(rest, first, line));
  CHECK(first.position(0) == 0);
  CHECK(first[1] == "info: first");
  rest = first.suffix();
  REQUIRE(std::regex_search(rest, second, line));
  CHECK(second.position(0) == 0);
  CHECK(second[1] == "warn: second 2");
  CHECK(second.suffix() == "");
}

TEST_CASE("log: the milliseconds are zero-padded and the second stays right across lines") {
  // Many lines within a few milliseconds: each time stamp parses and none goes backwards.
  std::string written = test::capture_stderr([] {
    for (int i = 0; i < 300; ++i) log::write(log::Level::warn, "tick");
  });
  std::regex stamp("([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\\.([0-9]{3})Z [^\n]* warn: tick\n");
  std::string previous;
  int lines = 0;
  for (std::sregex_iterator it(written.begin(), written.end(), stamp), end; it != end; ++it) {
    std::string at = (*it)[1].str() + "." + (*it)[2].str();
    CHECK(at >= previous);
    previous = at;
    ++lines;
  }
  CHECK(lines == 300);
}
