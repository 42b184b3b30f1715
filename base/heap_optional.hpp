// An optional whose value lives on the heap: one pointer while empty. For
// fields most objects of a kind never fill, or fill only briefly (a link's
// login exchange, an agent link's name), which as std::optional would take
// their whole size in every one of 18,000 idle links. The interface is
// std::optional's, so code reading such a field does not change.
#pragma once

#include <concepts>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace tsunagu {

template <typename T>
class HeapOptional {
 public:
  HeapOptional() = default;
  HeapOptional(std::nullopt_t) {}  // NOLINT: as std::optional
  HeapOptional(const HeapOptional& other) : value_(other.value_ ? std::make_unique<T>(*other.value_) : nullptr) {}
  HeapOptional(HeapOptional&&) noexcept = default;
  HeapOptional& operator=(const HeapOptional& other) {
    if (this != &other) value_ = other.value_ ? std::make_unique<T>(*other.value_) : nullptr;
    return *this;
  }
  HeapOptional& operator=(HeapOptional&&) noexcept = default;
  HeapOptional& operator=(std::nullopt_t) {
    value_.reset();
    return *this;
  }
  template <typename U = T>
    requires(!std::same_as<std::remove_cvref_t<U>, HeapOptional> &&
             !std::same_as<std::remove_cvref_t<U>, std::nullopt_t> && std::constructible_from<T, U &&> &&
             std::assignable_from<T&, U &&>)
  HeapOptional& operator=(U&& value) {
    if (value_) *value_ = std::forward<U>(value);
    else value_ = std::make_unique<T>(std::forward<U>(value));
    return *this;
  }

  template <typename... Args>
  T& emplace(Args&&... args) {
    value_.reset();  // as std::optional: the old value is gone before the new one is made
    value_ = std::make_unique<T>(std::forward<Args>(args)...);
    return *value_;
  }
  void reset() noexcept { value_.reset(); }

  bool has_value() const noexcept { return value_ != nullptr; }
  explicit operator bool() const noexcept { return has_value(); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return value_.get(); }
  const T* operator->() const { return value_.get(); }
  T& value() & {
    if (!value_) throw std::bad_optional_access();
    return *value_;
  }
  const T& value() const& {
    if (!value_) throw std::bad_optional_access();
    return *value_;
  }
  template <typename U>
  T value_or(U&& fallback) const {
    return value_ ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::unique_ptr<T> value_;
};

}  // namespace tsunagu
