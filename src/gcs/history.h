// src/gcs/history.h
//
// BoundedHistory: the head keeps what has ended (dead actors, finished
// jobs) for the state API, but not forever: past `limit` the oldest is
// erased, from memory and from the head's storage, by the caller's
// `erase`, and counted so that the state API can say how many are gone.
//
//   BoundedHistory<ActorId> dead({.limit = 10000,
//                                 .erase = [&](const ActorId& id) { ... }});
//   dead.Ended(id);          // may erase the oldest
//   reply->set_erased(dead.erased());
#ifndef LOOM_GCS_HISTORY_H_
#define LOOM_GCS_HISTORY_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

namespace loom::gcs {

// Not thread-safe: the head's loop owns it.
template <typename Id>
class BoundedHistory {
 public:
  struct Options {
    size_t limit = 10000;  // 0: keep nothing that ended
    std::function<void(const Id&)> erase;
  };
  explicit BoundedHistory(Options options) : options_(std::move(options)) {}

  // `id` ended now (or, loading, ended before those added after it).
  void Ended(const Id& id) {
    order_.push_back(id);
    while (order_.size() > options_.limit) {
      Id oldest = order_.front();
      order_.pop_front();
      ++erased_;
      options_.erase(oldest);
    }
  }
  // The load phase: what had ended, with when (any unit that orders
  // them), taken oldest first.
  void Load(std::vector<std::pair<int64_t, Id>> ended) {
    std::sort(ended.begin(), ended.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [when, id] : ended) Ended(id);
  }
  int64_t erased() const { return erased_; }
  size_t kept() const { return order_.size(); }
  size_t limit() const { return options_.limit; }

 private:
  Options options_;
  std::deque<Id> order_;
  int64_t erased_ = 0;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_HISTORY_H_
