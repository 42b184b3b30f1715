// security::random_bytes hands out small draws from a per-thread block of
// OpenSSL's DRBG output (security/random.cpp): each byte once, never shared
// with a fork() child or another thread.
#include "base/bytes.hpp"
#include "security/random.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace tsunagu::security {
namespace {

std::string draw_hex(size_t size) { return to_hex(random_bytes(size)); }

TEST_CASE("random_bytes: small draws across several blocks never repeat") {
  // 16-, 12- and 48-byte draws (token nonces, transaction IDs, a draw that
  // leaves a block's tail unused) over about 20 blocks of 2 KiB.
  std::set<std::string> seen;
  size_t draws = 0;
  for (int i = 0; i < 1000; ++i)
    for (size_t size : {16, 12, 48, 64}) {
      seen.insert(draw_hex(size));
      ++draws;
    }
  CHECK(seen.size() == draws);
}

TEST_CASE("random_bytes: a draw larger than the pooled limit and one of a single byte still fill what they are given") {
  Bytes large = random_bytes(100000);
  CHECK(large.size() == 100000);
  size_t zeros = 0;
  for (std::byte b : large) zeros += b == std::byte{0};
  CHECK(zeros < 1000);  // about 390 expected; a zero-filled tail would give thousands
  std::set<std::string> singles;
  for (int i = 0; i < 20000; ++i) singles.insert(draw_hex(1));
  CHECK(singles.size() == 256);  // every byte value turns up in 20,000 draws (missing one: about 1 in 10^31)
}

TEST_CASE("random_bytes: a fork child and its parent draw different bytes after the fork") {
  std::string before_fork = draw_hex(16);  // the parent's block now holds unhanded bytes
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::string drawn = draw_hex(16);
    ssize_t written = ::write(pipe_fds[1], drawn.data(), drawn.size());
    ::_exit(written == static_cast<ssize_t>(drawn.size()) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::string in_parent = draw_hex(16);
  std::string in_child(32, '\0');
  size_t got = 0;
  while (got < in_child.size()) {
    ssize_t n = ::read(pipe_fds[0], in_child.data() + got, in_child.size() - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  REQUIRE(got == in_child.size());
  CHECK(in_child != in_parent);
  CHECK(in_child != before_fork);
}

TEST_CASE("random_bytes: threads draw from their own blocks, never the same bytes") {
  constexpr int kThreads = 4, kDraws = 500;
  std::vector<std::vector<std::string>> drawn(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&drawn, t] {
      for (int i = 0; i < kDraws; ++i) drawn[t].push_back(draw_hex(16));
    });
  for (auto& thread : threads) thread.join();
  std::set<std::string> all;
  for (const auto& list : drawn) all.insert(list.begin(), list.end());
  CHECK(all.size() == static_cast<size_t>(kThreads * kDraws));
}

}  // namespace
}  // namespace tsunagu::security
