#include "runtime/serve/idempotency.h"

namespace loom::serve {

HttpResponse Replayed(HttpResponse kept) {
  constexpr char kHeader[] = "Idempotent-Replayed";
  for (const auto& [name, value] : kept.headers) {
    if (name == kHeader) return kept;  // replayed through another ingress
  }
  kept.headers.emplace_back(kHeader, "true");
  return kept;
}

IdempotencyCache::Begun IdempotencyCache::Begin(const std::string& key) {
  absl::MutexLock lock(&mu_);
  while (true) {
    Trim();
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      entries_[key] = Entry{};
      return {};
    }
    if (!it->second.running) return {Replayed(it->second.response)};
    changed_.Wait(&mu_);
  }
}

void IdempotencyCache::Finish(const std::string& key,
                              const HttpResponse& response) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (!Keepable(response)) {
    entries_.erase(it);  // the next attempt runs (a stream is not kept)
  } else {
    it->second.running = false;
    it->second.response = response;
    it->second.expires = options_.clock->Now() + options_.ttl;
    order_.push_back(key);
  }
  changed_.SignalAll();
}

void IdempotencyCache::Trim() {
  absl::Time now = options_.clock->Now();
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    bool stale = it == entries_.end() || it->second.running;
    if (!stale && it->second.expires > now &&
        order_.size() <= options_.max_entries) {
      break;
    }
    if (!stale) entries_.erase(it);
    order_.pop_front();
  }
}

}  // namespace loom::serve
