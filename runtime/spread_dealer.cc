#include "runtime/spread_dealer.h"

#include <algorithm>

namespace loom {

std::optional<int64_t> SpreadDealer::Floor(absl::Time now) const {
  std::optional<int64_t> floor;
  for (const auto& [name, n] : nodes_) {
    if (Counts(name, n, now))
      floor = std::min(floor.value_or(n.dealt), n.dealt);
  }
  return floor;
}

SpreadDealer::Node& SpreadDealer::Join(const std::string& node,
                                       absl::Time now) {
  auto it = nodes_.find(node);
  if (it != nodes_.end() && Counts(node, it->second, now)) return it->second;
  // New, or back after a while: level with the node dealt the fewest.
  std::optional<int64_t> floor = Floor(now);
  Node& n = nodes_[node];
  if (floor) n.dealt = *floor;
  return n;
}

void SpreadDealer::ForgetIfGone(const std::string& node) {
  auto it = nodes_.find(node);
  if (it != nodes_.end() && it->second.leases == 0 && it->second.asked == 0) {
    nodes_.erase(it);
  }
}

void SpreadDealer::Asked(const std::string& node, absl::Time now) {
  Node& n = Join(node, now);
  // Held from the first request there that is still unanswered: asking
  // again does not hold the others longer.
  if (n.asked++ == 0) n.asked_at = now;
}

void SpreadDealer::Answered(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.asked == 0) return;
  it->second.asked--;
  ForgetIfGone(node);
}

void SpreadDealer::Leased(const std::string& node, absl::Time now) {
  Join(node, now).leases++;
}

void SpreadDealer::Dropped(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.leases == 0) return;
  it->second.leases--;
  ForgetIfGone(node);
}

bool SpreadDealer::MayTake(const std::string& node, absl::Time now) const {
  auto it = nodes_.find(node);
  std::optional<int64_t> floor = Floor(now);
  if (it == nodes_.end() || !floor) return true;
  return it->second.dealt < *floor + options_.slack;
}

std::optional<absl::Time> SpreadDealer::HoldEnds(absl::Time now) const {
  std::optional<absl::Time> first;
  for (const auto& [name, n] : nodes_) {
    if (n.leases > 0 || !Counts(name, n, now)) continue;
    absl::Time end = n.asked_at + Hold(name);
    first = std::min(first.value_or(end), end);
  }
  return first;
}

}  // namespace loom
