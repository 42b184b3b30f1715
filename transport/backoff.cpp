#include "transport/backoff.hpp"

#include <algorithm>
#include <random>

namespace tsunagu::transport {
namespace {

double system_unit_random() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

}  // namespace

Backoff::Backoff(BackoffSettings settings, UnitRandom unit_random)
    : settings_(settings), unit_random_(unit_random ? std::move(unit_random) : UnitRandom(system_unit_random)) {
  // A zero start would never grow, and a cap below the start would be ignored.
  settings_.initial_ms = std::max<uint64_t>(settings_.initial_ms, 1);
  settings_.max_ms = std::max(settings_.max_ms, settings_.initial_ms);
}

uint64_t Backoff::ceiling_ms() const {
  // 2^20 doublings exceed any sensible cap; the shift stays far from overflow.
  uint32_t doublings = std::min<uint32_t>(attempts_, 20);
  uint64_t grown = settings_.initial_ms << doublings;
  return std::min(settings_.max_ms, grown);
}

uint64_t Backoff::next_delay_ms() {
  uint64_t ceiling = ceiling_ms();
  if (attempts_ < UINT32_MAX) ++attempts_;
  double draw = std::clamp(unit_random_(), 0.0, 1.0);
  uint64_t half = ceiling / 2;
  return half + static_cast<uint64_t>(draw * static_cast<double>(ceiling - half));
}

}  // namespace tsunagu::transport
