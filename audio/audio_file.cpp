// libsndfile on the way in and out; the reader turns whatever the file holds
// into 48 kHz mono 20 ms frames, the writer takes 48 kHz mono.
#include "audio/audio_file.hpp"

#include <sndfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "audio/resampler.hpp"

namespace tsunagu::audio {

namespace {

// libsndfile's virtual I/O over a buffer we own; it must outlive the SNDFILE.
struct MemorySource {
  std::vector<uint8_t> data;
  sf_count_t position = 0;
};

sf_count_t memory_length(void* user) { return static_cast<sf_count_t>(static_cast<MemorySource*>(user)->data.size()); }

sf_count_t memory_seek(sf_count_t offset, int whence, void* user) {
  auto* source = static_cast<MemorySource*>(user);
  sf_count_t size = static_cast<sf_count_t>(source->data.size());
  sf_count_t target = whence == SEEK_SET ? offset : whence == SEEK_CUR ? source->position + offset : size + offset;
  if (target < 0 || target > size) return -1;
  source->position = target;
  return target;
}

sf_count_t memory_read(void* destination, sf_count_t count, void* user) {
  auto* source = static_cast<MemorySource*>(user);
  sf_count_t left = static_cast<sf_count_t>(source->data.size()) - source->position;
  sf_count_t n = std::clamp<sf_count_t>(count, 0, std::max<sf_count_t>(left, 0));
  if (n > 0) std::memcpy(destination, source->data.data() + source->position, static_cast<size_t>(n));
  source->position += n;
  return n;
}

sf_count_t memory_write(const void*, sf_count_t, void*) { return 0; }
sf_count_t memory_tell(void* user) { return static_cast<MemorySource*>(user)->position; }

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f s", seconds);
  return text;
}

class SndfileReader final : public AudioFileReader {
 public:
  SndfileReader(SNDFILE* file, const SF_INFO& info, std::unique_ptr<Resampler> resampler,
                std::unique_ptr<MemorySource> memory)
      : memory_(std::move(memory)), file_(file), info_(info), resampler_(std::move(resampler)) {
    // About 250 ms of the source per read: libsndfile reads a PCM file
    // straight into our buffer, one read() per call, so 20 ms reads were a
    // system call per frame; this stays small at any rate (96 KB at 192 kHz stereo).
    chunk_frames_ = static_cast<size_t>(info_.samplerate / 4 + 1);
    max_frames_ = static_cast<sf_count_t>(max_seconds * info_.samplerate);
  }
  ~SndfileReader() override { sf_close(file_); }

  size_t read_frame(std::span<int16_t, frame_samples> out) override {
    // Bounded: each round reads 20 ms of source, which yields about 20 ms here.
    for (int round = 0; pending_.size() - pending_position_ < frame_samples && !finished_ && round < 64; ++round)
      fill();
    size_t available = std::min(frame_samples, pending_.size() - pending_position_);
    std::copy_n(pending_.begin() + static_cast<std::ptrdiff_t>(pending_position_), available, out.begin());
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(available), out.end(), int16_t{0});
    pending_position_ += available;
    if (pending_position_ > 8 * frame_samples) {  // keep the buffer short
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(pending_position_));
      pending_position_ = 0;
    }
    return available;
  }

  const std::string& error() const override { return error_; }
  double seconds() const override { return static_cast<double>(info_.frames) / info_.samplerate; }
  int source_rate() const override { return info_.samplerate; }
  int source_channels() const override { return info_.channels; }

 private:
  void fill() {
    size_t channels = static_cast<size_t>(info_.channels);
    interleaved_.resize(chunk_frames_ * channels);
    sf_count_t want = static_cast<sf_count_t>(chunk_frames_);
    sf_count_t got = sf_readf_short(file_, interleaved_.data(), want);
    if (got < 0) got = 0;
    frames_read_ += got;
    mono_.clear();
    downmix(std::span<const int16_t>(interleaved_.data(), static_cast<size_t>(got) * channels), info_.channels, mono_);
    resampler_->process(mono_, pending_);
    if (got < want) finish_source();
    else if (frames_read_ >= max_frames_) {
      error_ = "stopped at the limit of " + seconds_text(max_seconds);
      finish_source();
    }
  }

  void finish_source() {
    finished_ = true;
    resampler_->flush(pending_);
    if (!error_.empty()) return;
    int code = sf_error(file_);
    if (code != SF_ERR_NO_ERROR)
      error_ = std::string("corrupt audio after ") + seconds_text(static_cast<double>(frames_read_) / info_.samplerate) +
               ": " + sf_strerror(file_);
    else if (frames_read_ < info_.frames)
      error_ = "truncated or corrupt: the header says " + seconds_text(seconds()) + ", the audio ends after " +
               seconds_text(static_cast<double>(frames_read_) / info_.samplerate);
  }

  std::unique_ptr<MemorySource> memory_;  // declared first: destroyed after file_ is closed
  SNDFILE* file_;
  SF_INFO info_;
  std::unique_ptr<Resampler> resampler_;
  size_t chunk_frames_ = 0;
  sf_count_t frames_read_ = 0, max_frames_ = 0;
  bool finished_ = false;
  std::vector<int16_t> interleaved_, mono_, pending_;
  size_t pending_position_ = 0;
  std::string error_;
};

// libsndfile accepts a WAV or AIFF whose data chunk runs past the end of the
// file by shortening the length, noting "data : 96000 (should be 47979)" in its
// log; a recording cut off midway must still be reported, so look for that
// note on the data chunk (a wrong RIFF size alone is common and harmless).
bool log_says_truncated(SNDFILE* file) {
  std::vector<char> log(8192, '\0');
  sf_command(file, SFC_GET_LOG_INFO, log.data(), static_cast<int>(log.size()) - 1);
  std::string text(log.data());
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if ((line.rfind("data", 0) == 0 || line.rfind("SSND", 0) == 0) && line.find("(should be") != std::string::npos)
      return true;
    start = end + 1;
  }
  return false;
}

Expected<std::unique_ptr<AudioFileReader>, std::string> finish_open(SNDFILE* file, SF_INFO info,
                                                                    std::unique_ptr<MemorySource> memory,
                                                                    const std::string& what) {
  if (file == nullptr) return Unexpected(what + ": not an audio file libsndfile reads (" + sf_strerror(nullptr) + ")");
  auto refuse = [&](const std::string& why) -> Expected<std::unique_ptr<AudioFileReader>, std::string> {
    sf_close(file);
    return Unexpected(what + ": " + why);
  };
  if (info.channels < 1 || info.channels > AudioFileReader::max_channels)
    return refuse("implausible channel count " + std::to_string(info.channels));
  if (info.samplerate < AudioFileReader::min_rate || info.samplerate > AudioFileReader::max_rate)
    return refuse("implausible sample rate " + std::to_string(info.samplerate) + " Hz");
  if (info.frames <= 0) return refuse("no audio frames");
  double seconds = static_cast<double>(info.frames) / info.samplerate;
  if (seconds > AudioFileReader::max_seconds)
    return refuse("longer than the limit of " + seconds_text(AudioFileReader::max_seconds) + " (" +
                  seconds_text(seconds) + ")");
  if (log_says_truncated(file)) return refuse("truncated: the header promises more audio than the file holds");
  auto resampler = Resampler::create(info.samplerate, rate);
  if (!resampler) return refuse(resampler.error());
  return std::unique_ptr<AudioFileReader>(new SndfileReader(file, info, std::move(*resampler), std::move(memory)));
}

}  // namespace

Expected<std::unique_ptr<AudioFileReader>, std::string> AudioFileReader::open(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) return Unexpected(path + ": " + std::strerror(errno));
  if (S_ISDIR(status.st_mode)) return Unexpected(path + ": is a directory, not an audio file");
  // A FIFO or device would block or never end; recordings are regular files.
  if (!S_ISREG(status.st_mode)) return Unexpected(path + ": not a regular file");
  SF_INFO info{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
  return finish_open(file, info, nullptr, path);
}

Expected<std::unique_ptr<AudioFileReader>, std::string> AudioFileReader::open_memory(std::span<const uint8_t> data) {
  if (data.size() > max_memory_bytes)
    return Unexpected("audio in memory: " + std::to_string(data.size()) + " bytes, over the limit of " +
                      std::to_string(max_memory_bytes));
  auto memory = std::make_unique<MemorySource>();
  memory->data.assign(data.begin(), data.end());
  SF_VIRTUAL_IO io{memory_length, memory_seek, memory_read, memory_write, memory_tell};
  SF_INFO info{};
  SNDFILE* file = sf_open_virtual(&io, SFM_READ, &info, memory.get());
  return finish_open(file, info, std::move(memory), "audio in memory");
}

namespace {

class SndfileWriter final : public AudioFileWriter {
 public:
  SndfileWriter(SNDFILE* file, int fd, std::string temporary, std::string path)
      : file_(file), fd_(fd), temporary_(std::move(temporary)), path_(std::move(path)) {}
  ~SndfileWriter() override {
    if (file_ != nullptr) {
      sf_close(file_);
      ::close(fd_);
      ::unlink(temporary_.c_str());
    }
  }

  // Samples wait here until half a second has gathered: libsndfile writes a
  // PCM file with one write() per call, which was a system call (and an ext4
  // write) per 20 ms frame. Nobody reads the file before finish() renames it.
  bool write(std::span<const int16_t> samples) override {
    if (file_ == nullptr || !error_.empty()) return false;
    pending_.insert(pending_.end(), samples.begin(), samples.end());
    written_ += samples.size();
    return pending_.size() < flush_samples || flush();
  }

  Expected<void, std::string> finish() override {
    if (file_ == nullptr) return Unexpected(path_ + ": already finished");
    flush();
    int closed = sf_close(file_);  // writes the header's final lengths
    file_ = nullptr;
    std::string why = error_;
    if (why.empty() && closed != 0) why = std::string("closing ") + path_ + ": " + sf_error_number(closed);
    if (why.empty() && ::fsync(fd_) != 0) why = "writing " + path_ + ": " + std::strerror(errno);
    ::close(fd_);
    if (why.empty() && ::rename(temporary_.c_str(), path_.c_str()) != 0)
      why = "renaming " + temporary_ + " to " + path_ + ": " + std::strerror(errno);
    if (!why.empty()) {
      ::unlink(temporary_.c_str());
      return Unexpected(why);
    }
    return {};
  }

  uint64_t samples_written() const override { return written_; }

 private:
  static constexpr size_t flush_samples = rate / 2;

  bool flush() {
    if (pending_.empty() || !error_.empty()) return error_.empty();
    sf_count_t done = sf_write_short(file_, pending_.data(), static_cast<sf_count_t>(pending_.size()));
    if (done != static_cast<sf_count_t>(pending_.size())) error_ = std::string("writing ") + path_ + ": " + sf_strerror(file_);
    pending_.clear();
    return error_.empty();
  }

  SNDFILE* file_;
  std::vector<int16_t> pending_;
  int fd_;  // ours: libsndfile does not close it, so that it can be synced after sf_close
  std::string temporary_, path_, error_;
  uint64_t written_ = 0;
};

}  // namespace

Expected<std::unique_ptr<AudioFileWriter>, std::string> AudioFileWriter::create(const std::string& path) {
  std::filesystem::path target(path);
  std::string extension = target.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  if (extension == ".wav") info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  else if (extension == ".flac") info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  else if (extension == ".ogg" || extension == ".opus") info.format = SF_FORMAT_OGG | SF_FORMAT_OPUS;
  else return Unexpected(path + ": unknown audio file extension (.wav, .flac, .ogg or .opus)");
  if (!sf_format_check(&info)) return Unexpected(path + ": this libsndfile cannot write that format");

  std::filesystem::path folder = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::string pattern = (folder / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) return Unexpected(path + ": cannot create a file in " + folder.string() + ": " + std::strerror(errno));
  std::string temporary(name.data());
  ::fchmod(fd, 0644);  // mkstemp makes it 0600; a recording is an ordinary file
  SNDFILE* file = sf_open_fd(fd, SFM_WRITE, &info, SF_FALSE);
  if (file == nullptr) {
    std::string why = sf_strerror(nullptr);
    ::close(fd);
    ::unlink(temporary.c_str());
    return Unexpected(path + ": " + why);
  }
  if ((info.format & SF_FORMAT_SUBMASK) == SF_FORMAT_OPUS) {
    // Voice, not music: libsndfile's default (level 0) is about 260 kb/s;
    // 0.9 gives about 34 kb/s, ample for 48 kHz mono speech.
    double level = 0.9;
    sf_command(file, SFC_SET_COMPRESSION_LEVEL, &level, sizeof level);
  }
  return std::unique_ptr<AudioFileWriter>(new SndfileWriter(file, fd, std::move(temporary), path));
}

}  // namespace tsunagu::audio
