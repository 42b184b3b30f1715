// Voicemail as sound: a message recorded from a file or the microphone is
// stored as Ogg Opus (48 kHz mono), and a message played goes to a file or
// the speaker. The node keeps any bytes; these only turn sound into a file and
// back (audio/ does the coding).
#pragma once

#include <string>

#include "audio/audio_device.hpp"
#include "base/expected.hpp"

namespace tsunagu::terminal {

inline constexpr double max_recording_seconds = 300;

// From FROM (any format libsndfile reads) or, when FROM is empty, the
// microphone until Enter, ^D or MAX_SECONDS; into OGG_PATH as Ogg Opus. The
// seconds recorded, or why not.
Expected<double, std::string> record_message(const std::string& from, const audio::DeviceSpec& microphone,
                                             double max_seconds, const std::string& ogg_path);

// MESSAGE (a recording) into TO (format by extension) or, when TO is empty,
// the speaker in real time. The seconds played, or why not (a message that is
// not sound says so).
Expected<double, std::string> play_message(const std::string& message, const std::string& to,
                                           const audio::DeviceSpec& speaker);

}  // namespace tsunagu::terminal
