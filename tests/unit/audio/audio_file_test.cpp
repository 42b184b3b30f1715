#include "audio/audio_file.hpp"

#include <doctest/doctest.h>
#include <sndfile.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <random>

#include "audio_test_support.hpp"

using namespace tsunagu::audio;
using namespace tsunagu::audio::test;

namespace {

std::vector<int16_t> read_all(AudioFileReader& reader, size_t max_frames = 100000) {
  std::vector<int16_t> all;
  std::array<int16_t, frame_samples> frame{};
  for (size_t i = 0; i < max_frames; ++i) {
    size_t got = reader.read_frame(frame);
    if (got == 0) break;
    all.insert(all.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(got));
  }
  return all;
}

// Speech-band test content: two tones and a sweep, so a lossy codec has work to do.
std::vector<int16_t> test_signal(size_t samples) {
  std::vector<int16_t> out(samples);
  for (size_t i = 0; i < samples; ++i) {
    double t = static_cast<double>(i) / rate;
    double v = 6000 * std::sin(2 * std::numbers::pi * 440 * t) + 3000 * std::sin(2 * std::numbers::pi * 1250 * t) +
               2000 * std::sin(2 * std::numbers::pi * (300 + 400 * t) * t);
    out[i] = static_cast<int16_t>(std::lround(v));
  }
  return out;
}

void write_file(const std::string& path, const std::vector<int16_t>& samples) {
  auto writer = AudioFileWriter::create(path);
  REQUIRE_MESSAGE(writer, (writer ? "" : writer.error()));
  REQUIRE((*writer)->write(samples));
  CHECK((*writer)->samples_written() == samples.size());
  auto finished = (*writer)->finish();
  REQUIRE_MESSAGE(finished, (finished ? "" : finished.error()));
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

double correlation_at_best_lag(const std::vector<int16_t>& a, const std::vector<int16_t>& b, int max_lag) {
  double best = -1;
  for (int lag = -max_lag; lag <= max_lag; ++lag) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 4800; i + 4800 < a.size(); ++i) {
      size_t j = static_cast<size_t>(static_cast<std::ptrdiff_t>(i) + lag);
      if (j >= b.size()) continue;
      ab += static_cast<double>(a[i]) * b[j];
      aa += static_cast<double>(a[i]) * a[i];
      bb += static_cast<double>(b[j]) * b[j];
    }
    best = std::max(best, ab / std::sqrt(aa * bb + 1e-9));
  }
  return best;
}

}  // namespace

TEST_CASE("audio file: WAV and FLAC round trips are exact") {
  TemporaryDirectory dir;
  auto samples = test_signal(48000 + 123);  // not a whole number of frames
  for (const char* name : {"voice.wav", "voice.flac"}) {
    CAPTURE(name);
    write_file(dir / name, samples);
    auto reader = AudioFileReader::open(dir / name);
    REQUIRE_MESSAGE(reader, (reader ? "" : reader.error()));
    CHECK((*reader)->source_rate() == 48000);
    CHECK((*reader)->source_channels() == 1);
    CHECK((*reader)->seconds() == doctest::Approx(1.0 + 123.0 / 48000));
    auto back = read_all(**reader);
    CHECK((*reader)->error().empty());
    CHECK(back == samples);
  }
}

TEST_CASE("audio file: .ogg and .opus are Ogg Opus and read back close to what was written") {
  TemporaryDirectory dir;
  auto samples = test_signal(48000 * 3);
  for (const char* name : {"voice.ogg", "voice.opus"}) {
    CAPTURE(name);
    write_file(dir / name, samples);
    std::string bytes = bytes_of(dir / name);
    CHECK(bytes.rfind("OggS", 0) == 0);
    CHECK(bytes.find("OpusHead") != std::string::npos);  // Opus, not Vorbis
    CHECK(bytes.find("vorbis") == std::string::npos);
    MESSAGE(std::string(name) << ": " << bytes.size() / 3 << " bytes per second of 48 kHz mono");
    auto reader = AudioFileReader::open(dir / name);
    REQUIRE_MESSAGE(reader, (reader ? "" : reader.error()));
    auto back = read_all(**reader);
    CHECK((*reader)->error().empty());
    CHECK(back.size() == doctest::Approx(samples.size()).epsilon(0.01));
    CHECK(correlation_at_best_lag(samples, back, 2) > 0.95);
  }
}

TEST_CASE("audio file: an 8 kHz stereo file is read as 48 kHz mono with its tone's frequency kept") {
  TemporaryDirectory dir;
  SF_INFO info{};
  info.samplerate = 8000;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* file = sf_open((dir / "phone.wav").c_str(), SFM_WRITE, &info);
  REQUIRE(file != nullptr);
  auto left = sine(1000, 8000, 16000, 8000);
  std::vector<int16_t> interleaved;
  for (int16_t s : left) {
    interleaved.push_back(s);
    interleaved.push_back(s);
  }
  REQUIRE(sf_writef_short(file, interleaved.data(), 16000) == 16000);
  sf_close(file);

  auto reader = AudioFileReader::open(dir / "phone.wav");
  REQUIRE_MESSAGE(reader, (reader ? "" : reader.error()));
  CHECK((*reader)->source_rate() == 8000);
  CHECK((*reader)->source_channels() == 2);
  CHECK((*reader)->seconds() == doctest::Approx(2.0));
  auto back = read_all(**reader);
  CHECK((*reader)->error().empty());
  CHECK(back.size() == 96000);
  std::span<const int16_t> middle(back.data() + 9600, 76800);
  CHECK(strongest(middle, 48000, 900, 1100, 1) == doctest::Approx(1000).epsilon(0.002));
  CHECK(rms(middle) == doctest::Approx(8000 / std::sqrt(2.0)).epsilon(0.05));
  // No energy where the 8 kHz source had none: above its 4 kHz Nyquist limit.
  CHECK(goertzel(middle, 7000, 48000) < goertzel(middle, 1000, 48000) * 1e-4);
}

TEST_CASE("audio file: a WAV cut short is reported, not read as garbage") {
  TemporaryDirectory dir;
  write_file(dir / "whole.wav", test_signal(48000));
  std::string bytes = bytes_of(dir / "whole.wav");
  {
    std::ofstream out(dir / "cut.wav", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2 + 1));  // an odd cut: half a sample
  }
  auto reader = AudioFileReader::open(dir / "cut.wav");
  if (!reader) {
    MESSAGE("refused at open: " << reader.error());
    CHECK(reader.error().find("truncated") != std::string::npos);
  } else {
    auto back = read_all(**reader);
    MESSAGE("stopped while reading: " << (*reader)->error());
    CHECK_FALSE((*reader)->error().empty());
    CHECK(back.size() < 48000);
  }
  // The header cut off too: not audio at all.
  {
    std::ofstream out(dir / "stub.wav", std::ios::binary);
    out.write(bytes.data(), 20);
  }
  auto stub = AudioFileReader::open(dir / "stub.wav");
  REQUIRE_FALSE(stub);
  CHECK(stub.error().find("stub.wav") != std::string::npos);
}

TEST_CASE("audio file: FLAC and Ogg Opus cut in half end early with a message") {
  TemporaryDirectory dir;
  for (const char* name : {"voice.flac", "voice.ogg"}) {
    CAPTURE(name);
    write_file(dir / name, test_signal(48000 * 2));
    std::string bytes = bytes_of(dir / name);
    std::string cut = dir / (std::string("cut-") + name);
    {
      std::ofstream out(cut, std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    }
    auto reader = AudioFileReader::open(cut);
    if (!reader) {
      MESSAGE(std::string(name) << " cut in half, refused at open: " << reader.error());
      CHECK(reader.error().find(cut) != std::string::npos);
      CHECK(reader.error().find("malformed") != std::string::npos);
      continue;
    }
    auto back = read_all(**reader);
    MESSAGE(std::string(name) << " cut in half: " << back.size() << " samples, error: " << (*reader)->error());
    CHECK(back.size() < 48000 * 2);
    CHECK_FALSE((*reader)->error().empty());
  }
}

TEST_CASE("audio file: a FLAC with its middle overwritten ends early with a message, never garbage") {
  TemporaryDirectory dir;
  write_file(dir / "whole.flac", test_signal(48000 * 2));
  std::string bytes = bytes_of(dir / "whole.flac");
  std::mt19937 random(7);
  for (size_t i = bytes.size() / 3; i < bytes.size() / 3 + 2000; ++i) bytes[i] = static_cast<char>(random());
  {
    std::ofstream out(dir / "broken.flac", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  auto reader = AudioFileReader::open(dir / "broken.flac");
  REQUIRE_MESSAGE(reader, (reader ? "" : reader.error()));
  auto back = read_all(**reader);
  MESSAGE("corrupt FLAC: " << back.size() << " samples, error: " << (*reader)->error());
  // libsndfile's FLAC decoder resynchronises past a bad frame; either it
  // says so or the damage stays local (the undamaged start is exact).
  auto original = test_signal(48000 * 2);
  REQUIRE(back.size() >= 4800);
  CHECK(std::equal(back.begin(), back.begin() + 4800, original.begin()));
  CHECK(back.size() <= original.size());
  if (back.size() < original.size()) CHECK_FALSE((*reader)->error().empty());
}

TEST_CASE("audio file: garbage, a missing file and a directory are refused with the reason") {
  TemporaryDirectory dir;
  {
    std::ofstream out(dir / "noise.wav", std::ios::binary);
    std::mt19937 random(1);
    for (int i = 0; i < 10000; ++i) out.put(static_cast<char>(random()));
  }
  auto garbage = AudioFileReader::open(dir / "noise.wav");
  REQUIRE_FALSE(garbage);
  CHECK(garbage.error().find("not an audio file") != std::string::npos);

  auto missing = AudioFileReader::open(dir / "absent.wav");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().find("No such file") != std::string::npos);

  auto folder = AudioFileReader::open(dir.path().string());
  REQUIRE_FALSE(folder);
  CHECK(folder.error().find("directory") != std::string::npos);

  std::vector<uint8_t> empty;
  auto nothing = AudioFileReader::open_memory(empty);
  CHECK_FALSE(nothing);
}

// A canonical 44-byte PCM WAV header.
std::vector<uint8_t> wav_header(uint16_t channels, uint32_t sample_rate, uint32_t data_bytes) {
  std::vector<uint8_t> header;
  header.reserve(44);
  auto put32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) header.push_back(static_cast<uint8_t>(v >> (8 * i))); };
  auto put16 = [&](uint16_t v) { for (int i = 0; i < 2; ++i) header.push_back(static_cast<uint8_t>(v >> (8 * i))); };
  auto tag = [&](const char* t) { for (int i = 0; i < 4; ++i) header.push_back(static_cast<uint8_t>(t[i])); };
  tag("RIFF"); put32(36 + data_bytes); tag("WAVE");
  tag("fmt "); put32(16); put16(1); put16(channels); put32(sample_rate);
  put32(sample_rate * channels * 2); put16(static_cast<uint16_t>(channels * 2)); put16(16);
  tag("data"); put32(data_bytes);
  return header;
}

TEST_CASE("audio file: absurd headers are refused: too long, too many channels, silly rate") {
  TemporaryDirectory dir;
  // Two hours at 8 kHz, the data a sparse hole so the test costs no disk.
  uint32_t two_hours = 8000u * 2u * 7200u;
  auto header = wav_header(1, 8000, two_hours);
  {
    std::ofstream out(dir / "long.wav", std::ios::binary);
    out.write(reinterpret_cast<const char*>(header.data()), static_cast<std::streamsize>(header.size()));
  }
  std::filesystem::resize_file(dir / "long.wav", header.size() + two_hours);
  auto long_file = AudioFileReader::open(dir / "long.wav");
  REQUIRE_FALSE(long_file);
  MESSAGE("two hours: " << long_file.error());
  CHECK(long_file.error().find("limit") != std::string::npos);

  auto wide_header = wav_header(1000, 8000, 4000);
  wide_header.resize(wide_header.size() + 4000, 0);
  auto wide = AudioFileReader::open_memory(wide_header);
  REQUIRE_FALSE(wide);
  MESSAGE("1000 channels: " << wide.error());

  auto slow_header = wav_header(1, 10, 4000);
  slow_header.resize(slow_header.size() + 4000, 0);
  auto slow = AudioFileReader::open_memory(slow_header);
  REQUIRE_FALSE(slow);
  MESSAGE("10 Hz: " << slow.error());

  // The same header at a sane layout reads: the refusals above are about the values.
  auto fine_header = wav_header(2, 8000, 4000);
  fine_header.resize(fine_header.size() + 4000, 0);
  CHECK(AudioFileReader::open_memory(fine_header));
}

TEST_CASE("audio file writer: unknown extension and missing folder refused; no finish leaves nothing behind") {
  TemporaryDirectory dir;
  auto mp3 = AudioFileWriter::create(dir / "voice.mp3");
  REQUIRE_FALSE(mp3);
  CHECK(mp3.error().find("extension") != std::string::npos);
  auto nowhere = AudioFileWriter::create(dir / "no/such/folder/voice.wav");
  REQUIRE_FALSE(nowhere);
  CHECK(nowhere.error().find("cannot create") != std::string::npos);

  {
    auto writer = AudioFileWriter::create(dir / "abandoned.wav");
    REQUIRE(writer);
    REQUIRE((*writer)->write(test_signal(4800)));
    size_t files = 0;
    for (auto& entry : std::filesystem::directory_iterator(dir.path())) {
      (void)entry;
      ++files;
    }
    CHECK(files == 1);  // the temporary, under another name
    CHECK_FALSE(std::filesystem::exists(dir / "abandoned.wav"));
  }
  CHECK(std::filesystem::is_empty(dir.path()));

  write_file(dir / "kept.flac", test_signal(4800));
  size_t files = 0;
  for (auto& entry : std::filesystem::directory_iterator(dir.path())) {
    CHECK(entry.path().filename() == "kept.flac");
    ++files;
  }
  CHECK(files == 1);
}
