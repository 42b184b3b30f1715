// base/heap_optional: std::optional's behaviour, with the value on the heap
// and only a pointer in the object that holds it.
#include "base/heap_optional.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <utility>

using tsunagu::HeapOptional;

namespace {

struct Large {
  std::string name;
  char payload[200] = {};
};

}  // namespace

TEST_CASE("an empty heap optional is one pointer, whatever it could hold") {
  CHECK(sizeof(HeapOptional<Large>) == sizeof(void*));
  CHECK(sizeof(std::optional<Large>) > 200);
  HeapOptional<Large> empty;
  CHECK_FALSE(empty.has_value());
  CHECK_FALSE(static_cast<bool>(empty));
  CHECK_THROWS_AS(empty.value(), std::bad_optional_access);
}

TEST_CASE("assign, emplace, read, reset: as std::optional") {
  HeapOptional<std::string> name;
  name = std::string("alice");
  REQUIRE(name);
  CHECK(*name == "alice");
  CHECK(name->size() == 5);
  name = "bob";  // assigned into the value already there
  CHECK(*name == "bob");
  CHECK(name.value_or("nobody") == "bob");
  name.reset();
  CHECK_FALSE(name);
  CHECK(name.value_or("nobody") == "nobody");
  name.emplace(3, 'x');
  CHECK(*name == "xxx");
  name = std::nullopt;
  CHECK_FALSE(name.has_value());

  HeapOptional<std::pair<std::string, int>> pair;
  pair.emplace("carol", 7);
  CHECK(pair->first == "carol");
  CHECK(pair->second == 7);
}

TEST_CASE("copies are deep, moves take the value") {
  HeapOptional<std::string> original;
  original = std::string("kept");
  HeapOptional<std::string> copy = original;
  *copy = "changed";
  CHECK(*original == "kept");
  CHECK(*copy == "changed");
  copy = original;
  CHECK(*copy == "kept");
  HeapOptional<std::string> moved = std::move(original);
  CHECK(*moved == "kept");
  std::string out = std::move(*moved);
  CHECK(out == "kept");
  HeapOptional<std::string> none;
  copy = none;
  CHECK_FALSE(copy);
}
