// Capture and playback threads over PulseAudio's simple API or ALSA. Each
// side is a blocking stream of 48 kHz mono 20 ms frames; its thread moves
// frames between the stream and a bounded queue the loop polls.
//
// Both libraries are loaded with dlopen the first time a device is opened, not
// linked: linked, they pulled ~30 shared libraries (libpulse, X11/xcb, dbus...)
// into every tsunagu start, which cost more CPU than a short file-mode call
// spends in the call itself (docs/performance.md, Voice). The headers still
// give the types and prototypes.
#include "audio/audio_device.hpp"

#include <alsa/asoundlib.h>
#include <dlfcn.h>
#include <pulse/error.h>
#include <pulse/simple.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "audio/audio_file.hpp"
#include "audio/resampler.hpp"

namespace tsunagu::audio {

using Frame = std::array<int16_t, frame_samples>;

namespace {

constexpr size_t queue_frames = 10;  // 200 ms each way: beyond that, latency is worse than a gap

// ---- Loading the libraries ---------------------------------------------------

// Resolves `name` (at `version` when given) in `library` into `slot`; notes
// the first failure in `why`. The library is never unloaded: its threads and
// atexit handlers may outlive any one device.
template <typename Function>
void resolve(void* library, const char* name, const char* version, Function& slot, std::string& why) {
  void* symbol = version == nullptr ? dlsym(library, name) : dlvsym(library, name, version);
  if (symbol == nullptr && why.empty()) why = std::string("no symbol ") + name;
  slot = reinterpret_cast<Function>(symbol);
}

struct PulseApi {
  decltype(&pa_simple_new) simple_new = nullptr;
  decltype(&pa_simple_free) simple_free = nullptr;
  decltype(&pa_simple_read) simple_read = nullptr;
  decltype(&pa_simple_write) simple_write = nullptr;
  decltype(&pa_strerror) strerror = nullptr;  // in libpulse, which libpulse-simple depends on
  std::string load_error;                     // empty when everything above is set
};

const PulseApi& pulse_api() {
  static const PulseApi api = [] {
    PulseApi loaded;
    constexpr const char* soname = "libpulse-simple.so.0";
    void* library = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* detail = dlerror();
      loaded.load_error = std::string("cannot load ") + soname + ": " + (detail != nullptr ? detail : "not found");
      return loaded;
    }
    std::string why;
    resolve(library, "pa_simple_new", nullptr, loaded.simple_new, why);
    resolve(library, "pa_simple_free", nullptr, loaded.simple_free, why);
    resolve(library, "pa_simple_read", nullptr, loaded.simple_read, why);
    resolve(library, "pa_simple_write", nullptr, loaded.simple_write, why);
    resolve(library, "pa_strerror", nullptr, loaded.strerror, why);
    if (!why.empty()) loaded.load_error = std::string(soname) + ": " + why;
    return loaded;
  }();
  return api;
}

// The hw_params setters have two versions in libasound.so.2; ALSA_0.9.0rc4 is
// the one the header declares (the older one returns the value, not an error).
constexpr const char* alsa_setter_version = "ALSA_0.9.0rc4";

struct AlsaApi {
  decltype(&snd_lib_error_set_handler) lib_error_set_handler = nullptr;
  decltype(&snd_strerror) strerror = nullptr;
  decltype(&snd_pcm_open) pcm_open = nullptr;
  decltype(&snd_pcm_close) pcm_close = nullptr;
  decltype(&snd_pcm_drop) pcm_drop = nullptr;
  decltype(&snd_pcm_readi) pcm_readi = nullptr;
  decltype(&snd_pcm_writei) pcm_writei = nullptr;
  decltype(&snd_pcm_recover) pcm_recover = nullptr;
  decltype(&snd_pcm_hw_params_malloc) hw_params_malloc = nullptr;
  decltype(&snd_pcm_hw_params_free) hw_params_free = nullptr;
  decltype(&snd_pcm_hw_params_any) hw_params_any = nullptr;
  decltype(&snd_pcm_hw_params_set_access) hw_params_set_access = nullptr;
  decltype(&snd_pcm_hw_params_set_format) hw_params_set_format = nullptr;
  decltype(&snd_pcm_hw_params_set_channels_near) hw_params_set_channels_near = nullptr;
  decltype(&snd_pcm_hw_params_set_rate_near) hw_params_set_rate_near = nullptr;
  decltype(&snd_pcm_hw_params_set_period_size_near) hw_params_set_period_size_near = nullptr;
  decltype(&snd_pcm_hw_params_set_buffer_size_near) hw_params_set_buffer_size_near = nullptr;
  decltype(&snd_pcm_hw_params) hw_params = nullptr;
  std::string load_error;  // empty when everything above is set
};

// alsa-lib prints its own errors on stderr ("ALSA lib confmisc.c:855 ...
// cannot find card '0'") before returning them; we report them once, with
// what we were opening, so its printing is turned off.
void alsa_quiet(const char*, int, const char*, int, const char*, ...) {}

const AlsaApi& alsa_api() {
  static const AlsaApi api = [] {
    AlsaApi loaded;
    constexpr const char* soname = "libasound.so.2";
    void* library = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* detail = dlerror();
      loaded.load_error = std::string("cannot load ") + soname + ": " + (detail != nullptr ? detail : "not found");
      return loaded;
    }
    std::string why;
    resolve(library, "snd_lib_error_set_handler", nullptr, loaded.lib_error_set_handler, why);
    resolve(library, "snd_strerror", nullptr, loaded.strerror, why);
    resolve(library, "snd_pcm_open", nullptr, loaded.pcm_open, why);
    resolve(library, "snd_pcm_close", nullptr, loaded.pcm_close, why);
    resolve(library, "snd_pcm_drop", nullptr, loaded.pcm_drop, why);
    resolve(library, "snd_pcm_readi", nullptr, loaded.pcm_readi, why);
    resolve(library, "snd_pcm_writei", nullptr, loaded.pcm_writei, why);
    resolve(library, "snd_pcm_recover", nullptr, loaded.pcm_recover, why);
    resolve(library, "snd_pcm_hw_params_malloc", nullptr, loaded.hw_params_malloc, why);
    resolve(library, "snd_pcm_hw_params_free", nullptr, loaded.hw_params_free, why);
    resolve(library, "snd_pcm_hw_params_any", nullptr, loaded.hw_params_any, why);
    resolve(library, "snd_pcm_hw_params_set_access", nullptr, loaded.hw_params_set_access, why);
    resolve(library, "snd_pcm_hw_params_set_format", nullptr, loaded.hw_params_set_format, why);
    resolve(library, "snd_pcm_hw_params_set_channels_near", alsa_setter_version, loaded.hw_params_set_channels_near,
            why);
    resolve(library, "snd_pcm_hw_params_set_rate_near", alsa_setter_version, loaded.hw_params_set_rate_near, why);
    resolve(library, "snd_pcm_hw_params_set_period_size_near", alsa_setter_version,
            loaded.hw_params_set_period_size_near, why);
    resolve(library, "snd_pcm_hw_params_set_buffer_size_near", alsa_setter_version,
            loaded.hw_params_set_buffer_size_near, why);
    resolve(library, "snd_pcm_hw_params", nullptr, loaded.hw_params, why);
    if (!why.empty()) {
      loaded.load_error = std::string(soname) + ": " + why;
      return loaded;
    }
    loaded.lib_error_set_handler(alsa_quiet);
    return loaded;
  }();
  return api;
}

// A blocking source or sink of 48 kHz mono frames; false with why on failure.
class CaptureStream {
 public:
  virtual ~CaptureStream() = default;
  virtual bool read(Frame& frame, std::string& why) = 0;
  virtual std::string describe() const = 0;
};

class PlaybackStream {
 public:
  virtual ~PlaybackStream() = default;
  virtual bool write(const Frame& frame, std::string& why) = 0;
  virtual std::string describe() const = 0;
};

// ---- PulseAudio (and PipeWire's pulse server) ----------------------------

struct PulseOpenError {
  std::string message;
  bool server_unreachable;  // automatic mode then tries ALSA
};

pa_simple* open_pulse(const std::string& device, bool record, PulseOpenError& error) {
  pa_sample_spec spec{PA_SAMPLE_S16LE, static_cast<uint32_t>(rate), 1};
  constexpr uint32_t frame_bytes = frame_samples * sizeof(int16_t);
  pa_buffer_attr attr{};
  attr.maxlength = static_cast<uint32_t>(-1);
  attr.prebuf = static_cast<uint32_t>(-1);
  // Small server buffers: a voice call wants tens of milliseconds, not the
  // two seconds PulseAudio gives a stream that does not ask.
  attr.fragsize = record ? frame_bytes : static_cast<uint32_t>(-1);
  attr.tlength = record ? static_cast<uint32_t>(-1) : 3 * frame_bytes;
  attr.minreq = record ? static_cast<uint32_t>(-1) : frame_bytes;
  std::string what = std::string("pulse: ") + (record ? "capture" : "playback") + " from " +
                     (device.empty() ? std::string("the default device") : "'" + device + "'");
  const PulseApi& pulse = pulse_api();
  if (!pulse.load_error.empty()) {
    error.message = what + ": " + pulse.load_error;
    error.server_unreachable = true;  // as good as no server: automatic mode tries ALSA
    return nullptr;
  }
  int code = 0;
  pa_simple* stream = pulse.simple_new(nullptr, "tsunagu", record ? PA_STREAM_RECORD : PA_STREAM_PLAYBACK,
                                       device.empty() ? nullptr : device.c_str(), record ? "voice in" : "voice out",
                                       &spec, nullptr, &attr, &code);
  if (stream == nullptr) {
    error.message = what + ": " + pulse.strerror(code);
    error.server_unreachable = code != PA_ERR_NOENTITY && code != PA_ERR_BUSY;
  }
  return stream;
}

class PulseCapture final : public CaptureStream {
 public:
  PulseCapture(pa_simple* stream, std::string device) : stream_(stream), device_(std::move(device)) {}
  ~PulseCapture() override { pulse_api().simple_free(stream_); }
  bool read(Frame& frame, std::string& why) override {
    int code = 0;
    if (pulse_api().simple_read(stream_, frame.data(), sizeof(Frame), &code) < 0) {
      why = std::string("pulse: capture stopped: ") + pulse_api().strerror(code);
      return false;
    }
    return true;
  }
  std::string describe() const override { return "pulse: " + (device_.empty() ? "default source" : device_); }

 private:
  pa_simple* stream_;
  std::string device_;
};

class PulsePlayback final : public PlaybackStream {
 public:
  PulsePlayback(pa_simple* stream, std::string device) : stream_(stream), device_(std::move(device)) {}
  ~PulsePlayback() override { pulse_api().simple_free(stream_); }
  bool write(const Frame& frame, std::string& why) override {
    int code = 0;
    if (pulse_api().simple_write(stream_, frame.data(), sizeof(Frame), &code) < 0) {
      why = std::string("pulse: playback stopped: ") + pulse_api().strerror(code);
      return false;
    }
    return true;
  }
  std::string describe() const override { return "pulse: " + (device_.empty() ? "default sink" : device_); }

 private:
  pa_simple* stream_;
  std::string device_;
};

// ---- ALSA -------------------------------------------------------------------

struct AlsaPcm {
  snd_pcm_t* pcm = nullptr;
  unsigned rate = 0, channels = 0;
  snd_pcm_uframes_t period = 0;
};

Expected<AlsaPcm, std::string> open_alsa(const std::string& requested, bool record) {
  std::string device = requested.empty() ? "default" : requested;
  std::string what = std::string("alsa: ") + (record ? "capture" : "playback") + " on '" + device + "'";
  const AlsaApi& alsa = alsa_api();
  if (!alsa.load_error.empty()) return Unexpected(what + ": " + alsa.load_error);
  AlsaPcm result;
  int err = alsa.pcm_open(&result.pcm, device.c_str(), record ? SND_PCM_STREAM_CAPTURE : SND_PCM_STREAM_PLAYBACK, 0);
  if (err < 0) return Unexpected(what + ": " + alsa.strerror(err));
  auto fail = [&](const char* step, int code) -> Expected<AlsaPcm, std::string> {
    alsa.pcm_close(result.pcm);
    return Unexpected(what + ": " + step + ": " + alsa.strerror(code));
  };
  // Its alloca macro would call snd_pcm_hw_params_sizeof directly, so the heap.
  snd_pcm_hw_params_t* raw_params = nullptr;
  if ((err = alsa.hw_params_malloc(&raw_params)) < 0) return fail("no memory for a configuration", err);
  std::unique_ptr<snd_pcm_hw_params_t, decltype(alsa.hw_params_free)> owned_params(raw_params, alsa.hw_params_free);
  snd_pcm_hw_params_t* params = owned_params.get();
  if ((err = alsa.hw_params_any(result.pcm, params)) < 0) return fail("no configuration", err);
  if ((err = alsa.hw_params_set_access(result.pcm, params, SND_PCM_ACCESS_RW_INTERLEAVED)) < 0)
    return fail("interleaved access", err);
  if ((err = alsa.hw_params_set_format(result.pcm, params, SND_PCM_FORMAT_S16_LE)) < 0)
    return fail("16-bit samples", err);
  result.channels = 1;
  if ((err = alsa.hw_params_set_channels_near(result.pcm, params, &result.channels)) < 0)
    return fail("channels", err);
  result.rate = static_cast<unsigned>(rate);
  if ((err = alsa.hw_params_set_rate_near(result.pcm, params, &result.rate, nullptr)) < 0)
    return fail("sample rate", err);
  // 20 ms periods, four of them: the same granularity as the queues above.
  result.period = result.rate / 50;
  if ((err = alsa.hw_params_set_period_size_near(result.pcm, params, &result.period, nullptr)) < 0)
    return fail("period size", err);
  snd_pcm_uframes_t buffer = result.period * 4;
  if ((err = alsa.hw_params_set_buffer_size_near(result.pcm, params, &buffer)) < 0) return fail("buffer size", err);
  if ((err = alsa.hw_params(result.pcm, params)) < 0) return fail("applying the configuration", err);
  if (result.channels < 1 || result.channels > 32 || result.period == 0) return fail("unusable configuration", -EINVAL);
  return result;
}

class AlsaCapture final : public CaptureStream {
 public:
  AlsaCapture(AlsaPcm pcm, std::unique_ptr<Resampler> resampler, std::string device)
      : pcm_(pcm), resampler_(std::move(resampler)), device_(std::move(device)) {}
  ~AlsaCapture() override { alsa_api().pcm_close(pcm_.pcm); }

  bool read(Frame& frame, std::string& why) override {
    for (int round = 0; pending_.size() < frame_samples; ++round) {
      if (round > 100) {
        why = "alsa: capture yields no audio";
        return false;
      }
      interleaved_.resize(pcm_.period * pcm_.channels);
      snd_pcm_sframes_t got = alsa_api().pcm_readi(pcm_.pcm, interleaved_.data(), pcm_.period);
      if (got < 0) {
        // An overrun (-EPIPE) or a suspend: recover and go on; anything else ends it.
        if (alsa_api().pcm_recover(pcm_.pcm, static_cast<int>(got), 1) < 0) {
          why = std::string("alsa: capture stopped: ") + alsa_api().strerror(static_cast<int>(got));
          return false;
        }
        continue;
      }
      mono_.clear();
      downmix(std::span<const int16_t>(interleaved_.data(), static_cast<size_t>(got) * pcm_.channels),
              static_cast<int>(pcm_.channels), mono_);
      resampler_->process(mono_, pending_);
    }
    std::copy_n(pending_.begin(), frame_samples, frame.begin());
    pending_.erase(pending_.begin(), pending_.begin() + frame_samples);
    return true;
  }
  std::string describe() const override {
    return "alsa: " + (device_.empty() ? std::string("default") : device_) + " @ " + std::to_string(pcm_.rate) + " Hz";
  }

 private:
  AlsaPcm pcm_;
  std::unique_ptr<Resampler> resampler_;
  std::string device_;
  std::vector<int16_t> interleaved_, mono_, pending_;
};

class AlsaPlayback final : public PlaybackStream {
 public:
  AlsaPlayback(AlsaPcm pcm, std::unique_ptr<Resampler> resampler, std::string device)
      : pcm_(pcm), resampler_(std::move(resampler)), device_(std::move(device)) {}
  ~AlsaPlayback() override {
    alsa_api().pcm_drop(pcm_.pcm);
    alsa_api().pcm_close(pcm_.pcm);
  }

  bool write(const Frame& frame, std::string& why) override {
    converted_.clear();
    resampler_->process(frame, converted_);
    interleaved_.clear();
    for (int16_t sample : converted_) interleaved_.insert(interleaved_.end(), pcm_.channels, sample);
    size_t offset = 0;  // in device frames
    size_t total = converted_.size();
    for (int round = 0; offset < total; ++round) {
      if (round > 100) {
        why = "alsa: playback accepts no audio";
        return false;
      }
      snd_pcm_sframes_t done =
          alsa_api().pcm_writei(pcm_.pcm, interleaved_.data() + offset * pcm_.channels, total - offset);
      if (done < 0) {
        // An underrun (-EPIPE) means the device ran dry: recover and go on.
        if (alsa_api().pcm_recover(pcm_.pcm, static_cast<int>(done), 1) < 0) {
          why = std::string("alsa: playback stopped: ") + alsa_api().strerror(static_cast<int>(done));
          return false;
        }
        continue;
      }
      offset += static_cast<size_t>(done);
    }
    return true;
  }
  std::string describe() const override {
    return "alsa: " + (device_.empty() ? std::string("default") : device_) + " @ " + std::to_string(pcm_.rate) + " Hz";
  }

 private:
  AlsaPcm pcm_;
  std::unique_ptr<Resampler> resampler_;
  std::string device_;
  std::vector<int16_t> converted_, interleaved_;
};

Expected<std::unique_ptr<CaptureStream>, std::string> open_alsa_capture(const std::string& device) {
  auto pcm = open_alsa(device, true);
  if (!pcm) return Unexpected(pcm.error());
  auto resampler = Resampler::create(static_cast<int>(pcm->rate), rate, 3);
  if (!resampler) {
    alsa_api().pcm_close(pcm->pcm);
    return Unexpected("alsa: " + resampler.error());
  }
  return std::unique_ptr<CaptureStream>(new AlsaCapture(*pcm, std::move(*resampler), device));
}

Expected<std::unique_ptr<PlaybackStream>, std::string> open_alsa_playback(const std::string& device) {
  auto pcm = open_alsa(device, false);
  if (!pcm) return Unexpected(pcm.error());
  auto resampler = Resampler::create(rate, static_cast<int>(pcm->rate), 3);
  if (!resampler) {
    alsa_api().pcm_close(pcm->pcm);
    return Unexpected("alsa: " + resampler.error());
  }
  return std::unique_ptr<PlaybackStream>(new AlsaPlayback(*pcm, std::move(*resampler), device));
}

Expected<std::unique_ptr<CaptureStream>, std::string> open_capture(const DeviceSpec& spec) {
  std::string pulse_error;
  if (spec.backend != Backend::alsa) {
    PulseOpenError error;
    if (pa_simple* stream = open_pulse(spec.name, true, error))
      return std::unique_ptr<CaptureStream>(new PulseCapture(stream, spec.name));
    if (spec.backend == Backend::pulse || !error.server_unreachable) return Unexpected(error.message);
    pulse_error = error.message;
  }
  auto alsa = open_alsa_capture(spec.name);
  if (!alsa && !pulse_error.empty()) return Unexpected(pulse_error + "; " + alsa.error());
  return alsa;
}

Expected<std::unique_ptr<PlaybackStream>, std::string> open_playback(const DeviceSpec& spec) {
  std::string pulse_error;
  if (spec.backend != Backend::alsa) {
    PulseOpenError error;
    if (pa_simple* stream = open_pulse(spec.name, false, error))
      return std::unique_ptr<PlaybackStream>(new PulsePlayback(stream, spec.name));
    if (spec.backend == Backend::pulse || !error.server_unreachable) return Unexpected(error.message);
    pulse_error = error.message;
  }
  auto alsa = open_alsa_playback(spec.name);
  if (!alsa && !pulse_error.empty()) return Unexpected(pulse_error + "; " + alsa.error());
  return alsa;
}

// A queue of whole frames that never grows past its capacity.
class FrameQueue {
 public:
  // False when full: the oldest frame was dropped to make room (the freshest
  // audio is worth more to a conversation than the stalest).
  bool push(const Frame& frame) {
    std::lock_guard lock(mutex_);
    bool room = frames_.size() < queue_frames;
    if (!room) frames_.pop_front();
    frames_.push_back(frame);
    return room;
  }
  bool pop(Frame& frame) {
    std::lock_guard lock(mutex_);
    if (frames_.empty()) return false;
    frame = frames_.front();
    frames_.pop_front();
    return true;
  }

 private:
  std::mutex mutex_;
  std::deque<Frame> frames_;
};

class ThreadedDevice final : public AudioDevice {
 public:
  ThreadedDevice(std::unique_ptr<CaptureStream> capture, std::unique_ptr<PlaybackStream> playback)
      : capture_(std::move(capture)), playback_(std::move(playback)) {
    if (capture_) capture_thread_ = std::thread([this] { capture_loop(); });
    if (playback_) playback_thread_ = std::thread([this] { playback_loop(); });
  }
  ~ThreadedDevice() override {
    stop_ = true;  // each thread sees it after at most one blocking 20 ms call
    if (capture_thread_.joinable()) capture_thread_.join();
    if (playback_thread_.joinable()) playback_thread_.join();
  }

  bool read_frame(std::span<int16_t, 960> out) override {
    Frame frame;
    if (!captured_.pop(frame)) return false;
    std::copy(frame.begin(), frame.end(), out.begin());
    return true;
  }
  void write_frame(std::span<const int16_t, 960> pcm) override {
    if (!playback_) return;
    Frame frame;
    std::copy(pcm.begin(), pcm.end(), frame.begin());
    if (!to_play_.push(frame)) ++playback_drops_;
  }
  std::string failure() const override {
    std::lock_guard lock(failure_mutex_);
    return failure_;
  }
  DeviceStats stats() const override {
    DeviceStats stats;
    stats.frames_captured = frames_captured_;
    stats.frames_played = frames_played_;
    stats.capture_overruns = capture_overruns_;
    stats.playback_underruns = playback_underruns_;
    stats.playback_overruns = playback_drops_;
    return stats;
  }
  std::string describe() const override {
    std::string text;
    if (capture_) text += "in " + capture_->describe();
    if (playback_) text += std::string(text.empty() ? "" : ", ") + "out " + playback_->describe();
    return text;
  }
 private:
  void fail(const std::string& why) {
    std::lock_guard lock(failure_mutex_);
    if (failure_.empty()) failure_ = why;
  }

  void capture_loop() {
    Frame frame;
    std::string why;
    while (!stop_) {
      if (!capture_->read(frame, why)) {
        fail(why);
        return;
      }
      ++frames_captured_;
      if (!captured_.push(frame)) ++capture_overruns_;
    }
  }

  void playback_loop() {
    Frame frame;
    std::string why;
    bool started = false;  // silence before the first frame is no underrun, just nothing to say yet
    while (!stop_) {
      if (to_play_.pop(frame)) {
        started = true;
        ++frames_played_;
      } else {
        frame.fill(0);
        if (started) ++playback_underruns_;
      }
      if (!playback_->write(frame, why)) {
        fail(why);
        return;
      }
    }
  }

  std::unique_ptr<CaptureStream> capture_;
  std::unique_ptr<PlaybackStream> playback_;
  FrameQueue captured_, to_play_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> frames_captured_{0}, frames_played_{0}, capture_overruns_{0}, playback_underruns_{0},
      playback_drops_{0};
  mutable std::mutex failure_mutex_;
  std::string failure_;
  std::thread capture_thread_, playback_thread_;  // last: started once everything above exists
};

}  // namespace

Expected<std::unique_ptr<AudioDevice>, std::string> AudioDevice::open(const DeviceSpec& input,
                                                                      const DeviceSpec& output, bool capture,
                                                                      bool playback) {
  if (!capture && !playback) return Unexpected(std::string("audio device: neither capture nor playback asked for"));
  std::unique_ptr<CaptureStream> capture_stream;
  std::unique_ptr<PlaybackStream> playback_stream;
  if (capture) {
    auto opened = open_capture(input);
    if (!opened) return Unexpected(opened.error());
    capture_stream = std::move(*opened);
  }
  if (playback) {
    auto opened = open_playback(output);
    if (!opened) return Unexpected(opened.error());
    playback_stream = std::move(*opened);
  }
  return std::unique_ptr<AudioDevice>(new ThreadedDevice(std::move(capture_stream), std::move(playback_stream)));
}

Backend parse_backend(const std::string& name, bool* ok) {
  bool known = true;
  Backend backend = Backend::automatic;
  if (name == "pulse") backend = Backend::pulse;
  else if (name == "alsa") backend = Backend::alsa;
  else if (name != "auto" && !name.empty()) known = false;
  if (ok != nullptr) *ok = known;
  return backend;
}

}  // namespace tsunagu::audio
