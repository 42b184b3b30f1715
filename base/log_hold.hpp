// Holding log lines for a loop turn (base/log.cpp). Apart from log.hpp so the
// many files that log do not depend on it.
#pragma once

namespace tsunagu::log {

// Lines written by this thread between hold() and release() go out together,
// with one write(2), at release() (or when 64 KiB have gathered): a loop turn
// that logs a line per request pays one system call. Each line keeps its own
// time stamp; a warning or error is written at once, with the lines before it.
void hold();
void release();
// Writes the lines held so far (one write(2)) and goes on holding: before a
// turn's answers leave, so no line comes after the answer it describes.
void write_held();

}  // namespace tsunagu::log
