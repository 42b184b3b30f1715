// base/files: key files written safely in a directory another local user can
// reach (issue 11 §3). Real files in a mkdtemp() directory; modes read back
// with stat().
#include "base/files.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

using namespace tsunagu;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tsunagu-files-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void put(const std::string& path, const std::string& content, unsigned mode) {
  {
    std::ofstream out(path, std::ios::binary);
    out << content;
    REQUIRE(out.good());
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::string contents(const std::string& path) {
  auto text = read_text_file(path);
  REQUIRE(text.has_value());
  return *text;
}

struct stat lstat_of(const std::string& path) {
  struct stat status {};
  REQUIRE(::lstat(path.c_str(), &status) == 0);
  return status;
}

unsigned mode_of(const std::string& path) { return lstat_of(path).st_mode & 07777; }

size_t entries_in(const std::string& dir) {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++count;
  return count;
}

}  // namespace

TEST_CASE("write_file_atomically: a key is written 0600, owned by us, with nothing left beside it") {
  TempDir dir;
  REQUIRE(write_file_atomically(dir / "agent.key", "secret", 0600).has_value());
  CHECK(contents(dir / "agent.key") == "secret");
  CHECK(mode_of(dir / "agent.key") == 0600);
  CHECK(lstat_of(dir / "agent.key").st_uid == ::geteuid());
  CHECK(entries_in(dir.path()) == 1);
}

TEST_CASE("write_file_atomically: a world-writable file planted at PATH.tmp does not make the key readable") {
  TempDir dir;
  put(dir / "agent.key.tmp", "planted", 0666);
  REQUIRE(write_file_atomically(dir / "agent.key", "secret", 0600).has_value());
  CHECK(contents(dir / "agent.key") == "secret");
  CHECK(mode_of(dir / "agent.key") == 0600);
  CHECK(contents(dir / "agent.key.tmp") == "planted");  // never opened
}

TEST_CASE("write_file_atomically: a symlink at PATH.tmp is not followed") {
  TempDir dir;
  put(dir / "victim", "precious", 0644);
  fs::create_symlink(dir / "victim", dir / "agent.key.tmp");
  REQUIRE(write_file_atomically(dir / "agent.key", "secret", 0600).has_value());
  CHECK(contents(dir / "victim") == "precious");
  CHECK(mode_of(dir / "victim") == 0644);
  CHECK(S_ISLNK(lstat_of(dir / "agent.key.tmp").st_mode));
  CHECK(contents(dir / "agent.key") == "secret");
}

TEST_CASE("write_file_atomically: a symlink at the target is refused and what it points at is untouched") {
  TempDir dir;
  put(dir / "victim", "precious", 0644);
  fs::create_symlink(dir / "victim", dir / "agent.key");
  auto written = write_file_atomically(dir / "agent.key", "secret", 0600);
  REQUIRE_FALSE(written.has_value());
  CHECK(written.error().find("symbolic link") != std::string::npos);
  CHECK(contents(dir / "victim") == "precious");
  CHECK(S_ISLNK(lstat_of(dir / "agent.key").st_mode));
  CHECK(entries_in(dir.path()) == 2);  // no temporary file left behind
}

TEST_CASE("write_file_atomically: a stale PATH.tmp left by an earlier crash does not wedge the next write") {
  TempDir dir;
  put(dir / "node.key.tmp", "half a key", 0600);
  REQUIRE(write_file_atomically(dir / "node.key", "old", 0600).has_value());
  REQUIRE(write_file_atomically(dir / "node.key", "new", 0600).has_value());
  CHECK(contents(dir / "node.key") == "new");
}

TEST_CASE("write_file_atomically: the mode asked for is the mode given, whatever the umask") {
  TempDir dir;
  mode_t previous = ::umask(077);
  auto written = write_file_atomically(dir / "ca.crt", "certificate", 0644);
  ::umask(previous);
  REQUIRE(written.has_value());
  CHECK(mode_of(dir / "ca.crt") == 0644);
}

TEST_CASE("write_file_atomically: a bare file name is written whole, its mode kept, its directory (.) synced") {
  // The directory is synced after the rename; a PATH without a directory part
  // means the current one. Checked by hand with strace -e trace=rename,fsync;
  // integration/atomic_write_syncs_directory checks the order for init's files.
  TempDir dir;
  auto previous = fs::current_path();
  fs::current_path(dir.path());
  auto written = write_file_atomically("bare.key", std::string(100000, 'k'), 0640);
  fs::current_path(previous);
  REQUIRE(written.has_value());
  CHECK(contents(dir / "bare.key") == std::string(100000, 'k'));
  CHECK(mode_of(dir / "bare.key") == 0640);
  CHECK(entries_in(dir.path()) == 1);
}

TEST_CASE("make_private_directory: a new directory is created with the mode asked for, parents included") {
  TempDir dir;
  mode_t previous = ::umask(0);
  auto made = make_private_directory(dir / "a/b/bundle", 0700);
  ::umask(previous);
  REQUIRE(made.has_value());
  CHECK(S_ISDIR(lstat_of(dir / "a/b/bundle").st_mode));
  CHECK(mode_of(dir / "a/b/bundle") == 0700);
}

TEST_CASE("make_private_directory: an existing directory of ours that only we can write to is kept as it is") {
  TempDir dir;
  REQUIRE(::mkdir((dir / "out").c_str(), 0755) == 0);
  REQUIRE(::chmod((dir / "out").c_str(), 0755) == 0);
  REQUIRE(make_private_directory(dir / "out", 0700).has_value());
  CHECK(mode_of(dir / "out") == 0755);
}

TEST_CASE("make_private_directory: a directory writable by others or by its group is refused") {
  TempDir dir;
  for (unsigned mode : {0777u, 0770u, 01777u, 0702u}) {
    CAPTURE(mode);
    std::string path = dir / ("shared-" + std::to_string(mode));
    REQUIRE(::mkdir(path.c_str(), 0700) == 0);
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    auto made = make_private_directory(path, 0700);
    REQUIRE_FALSE(made.has_value());
    CHECK(made.error().find("is writable by") != std::string::npos);
    CHECK(mode_of(path) == mode);  // left alone, not "fixed" behind the owner's back
  }
}

TEST_CASE("make_private_directory: a directory owned by another user is refused") {
  TempDir dir;
  std::string path = dir / "theirs";
  REQUIRE(::mkdir(path.c_str(), 0755) == 0);
  if (::geteuid() == 0) {
    REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);  // nobody
  } else {
    path = "/";  // root's, and we are not root
  }
  auto made = make_private_directory(path, 0700);
  REQUIRE_FALSE(made.has_value());
  CHECK(made.error().find("belongs to another user") != std::string::npos);
}

TEST_CASE("make_private_directory: a file at the path is refused") {
  TempDir dir;
  put(dir / "file", "x", 0600);
  auto made = make_private_directory(dir / "file", 0700);
  REQUIRE_FALSE(made.has_value());
  CHECK(made.error().find("not a directory") != std::string::npos);
}
