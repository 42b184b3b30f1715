#include "media/dtmf.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "signal.hpp"

using namespace tsunagu;
using namespace tsunagu::media;

TEST_CASE("dtmf: digits and events map both ways (RFC 4733 3.2)") {
  std::string_view digits = "0123456789*#ABCD";
  for (uint8_t e = 0; e < 16; ++e) {
    CHECK(dtmf_event_for(digits[e]) == e);
    CHECK(dtmf_digit_for(e) == digits[e]);
  }
  CHECK(dtmf_event_for('a') == 12);
  CHECK(dtmf_event_for('d') == 15);
  CHECK_FALSE(dtmf_event_for('e'));
  CHECK_FALSE(dtmf_event_for(' '));
  CHECK_FALSE(dtmf_digit_for(16));
  CHECK(dtmf_frequencies(1)->low_hz == 697);
  CHECK(dtmf_frequencies(1)->high_hz == 1209);
  CHECK(dtmf_frequencies(0)->low_hz == 941);
  CHECK(dtmf_frequencies(0)->high_hz == 1336);
  CHECK(dtmf_frequencies(11)->high_hz == 1477);  // #
  CHECK(dtmf_frequencies(15)->high_hz == 1633);  // D
  CHECK_FALSE(dtmf_frequencies(16));
}

TEST_CASE("dtmf: the tone holds its two frequencies, is phase-continuous and does not clip") {
  DtmfToneGenerator generator;
  generator.start(*dtmf_event_for('5'));  // 770 + 1336 Hz
  std::vector<int16_t> out;
  for (int k = 0; k < 5; ++k) {
    std::array<int16_t, frame_samples> f{};
    generator.render(f);
    out.insert(out.end(), f.begin(), f.end());
  }
  double on_low = media_test::goertzel(out, 0, out.size(), 770);
  double on_high = media_test::goertzel(out, 0, out.size(), 1336);
  double off = media_test::goertzel(out, 0, out.size(), 697);
  CHECK(on_low > 100 * off);
  CHECK(on_high > 100 * off);
  int peak = 0;
  int max_step = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    peak = std::max(peak, std::abs(int{out[i]}));
    if (i > 0) max_step = std::max(max_step, std::abs(out[i] - out[i - 1]));
  }
  CHECK(peak > 18000);  // both tones near -10 dBFS
  CHECK(peak < 32767);
  // Across frame boundaries (960, 1920, ...) no jump larger than the tone's own slope.
  for (size_t b = 960; b < out.size(); b += 960) CHECK(std::abs(out[b] - out[b - 1]) <= max_step);
}

TEST_CASE("dtmf: the sender's sequence per digit: 5 event frames, 3 end packets, same timestamp, growing duration") {
  DtmfSender sender;
  CHECK_FALSE(sender.queue("12x"));
  CHECK_FALSE(sender.active());
  REQUIRE(sender.queue("4#"));
  CHECK(sender.active());
  std::vector<std::optional<EventPacket>> frames;
  for (int i = 0; i < 20 && sender.active(); ++i) frames.push_back(sender.next_frame());
  REQUIRE(frames.size() == 16);  // 2 digits x 160 ms
  CHECK_FALSE(sender.active());
  for (int d = 0; d < 2; ++d) {
    uint8_t event = d == 0 ? 4 : 11;
    for (uint32_t f = 0; f < 7; ++f) {
      const auto& p = frames[d * 8 + f];
      REQUIRE(p);
      CHECK(p->event.event == event);
      CHECK(p->timestamp_offset == f);  // every packet carries the event's start timestamp
      CHECK(p->marker == (f == 0));
      CHECK(p->event.duration == std::min(f + 1, 5u) * 960);
      CHECK(p->event.end == (f >= 4));
    }
    CHECK_FALSE(frames[d * 8 + 7]);  // the rest of the gap is silent
  }
}
