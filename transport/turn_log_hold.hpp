// Holds a daemon's log lines for the rest of a loop turn, so a turn that logs a
// line per request (the node's audit lines) pays one write(2) for all of them.
#pragma once

#include <uv.h>

namespace tsunagu::transport {

// From hold() until just before the loop next polls (a prepare handle), this
// thread's log lines gather (base/log_hold.hpp) and then leave with one
// write(2). The TLS links write the lines held so far before the turn's
// answers (OutputBatcher), so a line never reaches the log after the answer
// it describes reached the peer. A warning or error is written at once with
// the lines before it.
class TurnLogHold {
 public:
  explicit TurnLogHold(uv_loop_t* loop);
  TurnLogHold(const TurnLogHold&) = delete;
  TurnLogHold& operator=(const TurnLogHold&) = delete;
  // Writes what is held; the handle is freed by the loop's next turn.
  ~TurnLogHold();

  void hold();

 private:
  static void before_poll(uv_prepare_t* prepare);
  uv_prepare_t* prepare_;
};

}  // namespace tsunagu::transport
