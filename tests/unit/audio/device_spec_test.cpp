// The part of the device interface that needs no sound server: the backend
// names the CLI passes on.
#include <doctest/doctest.h>

#include "audio/audio_device.hpp"

using namespace tsunagu::audio;

TEST_CASE("device: backend names: auto, pulse, alsa; anything else is flagged") {
  bool ok = false;
  CHECK(parse_backend("auto", &ok) == Backend::automatic);
  CHECK(ok);
  CHECK(parse_backend("", &ok) == Backend::automatic);
  CHECK(ok);
  CHECK(parse_backend("pulse", &ok) == Backend::pulse);
  CHECK(ok);
  CHECK(parse_backend("alsa", &ok) == Backend::alsa);
  CHECK(ok);
  parse_backend("oss", &ok);
  CHECK_FALSE(ok);
  parse_backend("Pulse", &ok);
  CHECK_FALSE(ok);
}

TEST_CASE("device: asking for neither capture nor playback is an error, not a device") {
  auto none = AudioDevice::open({}, {}, false, false);
  REQUIRE_FALSE(none);
  CHECK(none.error().find("neither") != std::string::npos);
}
