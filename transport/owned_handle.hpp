// A libuv handle owned like a unique_ptr: destroying (or resetting) the owner
// closes the handle, and the memory is freed in the close callback, when libuv
// is done with it. Nothing of the owner is touched after that, so the owner
// may go away before the loop runs again.
#pragma once

#include <uv.h>

#include <memory>
#include <utility>

#include "base/expected.hpp"

namespace tsunagu::transport {

template <class Handle>
class OwnedHandle {
 public:
  OwnedHandle() = default;
  OwnedHandle(OwnedHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  OwnedHandle& operator=(OwnedHandle&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  OwnedHandle(const OwnedHandle&) = delete;
  OwnedHandle& operator=(const OwnedHandle&) = delete;
  ~OwnedHandle() { reset(); }

  // Allocates a handle and runs `init(loop, handle, args...)` (uv_timer_init,
  // uv_signal_init, ...); the libuv error comes back when that fails.
  template <class Init, class... Args>
  static Expected<OwnedHandle, int> create(uv_loop_t* loop, Init init, Args&&... args) {
    auto handle = std::make_unique<Handle>();
    int rc = init(loop, handle.get(), std::forward<Args>(args)...);
    if (rc != 0) return Unexpected(rc);  // an init that failed leaves nothing to close
    OwnedHandle owned;
    owned.handle_ = handle.release();
    return owned;
  }

  // Closes the handle (if any); its memory is freed in the close callback.
  void reset() {
    if (handle_ == nullptr) return;
    auto* raw = reinterpret_cast<uv_handle_t*>(handle_);
    raw->data = nullptr;
    uv_close(raw, [](uv_handle_t* closed) { delete reinterpret_cast<Handle*>(closed); });
    handle_ = nullptr;
  }

  Handle* get() const { return handle_; }
  Handle* operator->() const { return handle_; }
  explicit operator bool() const { return handle_ != nullptr; }

 private:
  Handle* handle_ = nullptr;
};

using OwnedTimer = OwnedHandle<uv_timer_t>;

inline Expected<OwnedTimer, int> make_timer(uv_loop_t* loop) { return OwnedTimer::create(loop, uv_timer_init); }

}  // namespace tsunagu::transport
