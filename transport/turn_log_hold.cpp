#include "transport/turn_log_hold.hpp"

#include "base/log_hold.hpp"

namespace tsunagu::transport {

TurnLogHold::TurnLogHold(uv_loop_t* loop) : prepare_(new uv_prepare_t) {
  uv_prepare_init(loop, prepare_);
  prepare_->data = this;
  // The daemon's own handles keep the loop alive, not this one.
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
}

TurnLogHold::~TurnLogHold() {
  log::release();
  uv_close(reinterpret_cast<uv_handle_t*>(prepare_), [](uv_handle_t* handle) { delete reinterpret_cast<uv_prepare_t*>(handle); });
}

void TurnLogHold::hold() {
  log::hold();
  uv_prepare_start(prepare_, before_poll);
}

void TurnLogHold::before_poll(uv_prepare_t* prepare) {
  log::release();
  uv_prepare_stop(prepare);
}

}  // namespace tsunagu::transport
