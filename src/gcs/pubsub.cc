#include "src/gcs/pubsub.h"

#include <algorithm>

namespace loom::gcs {

void Publisher::Publish(rpc::Event::Kind kind, const std::string& id,
                        const std::string& detail, const std::string& address) {
  rpc::Event e;
  e.set_kind(kind);
  e.set_id(id);
  e.set_detail(detail);
  e.set_address(address);
  Publish(std::move(e));
}

void Publisher::Publish(rpc::Event e) {
  e.set_seq(++last_seq_);
  log_.push_back(std::move(e));
  while (log_.size() > capacity_) log_.pop_front();
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w.done(After(w.after_seq), last_seq_);
}

std::vector<rpc::Event> Publisher::After(int64_t seq) const {
  // The log is in seq order: find the first newer one rather than scan it
  // (each publish answers every waiting subscriber: each raylet, and each
  // process that has sent work out).
  auto first = std::upper_bound(
      log_.begin(), log_.end(), seq,
      [](int64_t s, const rpc::Event& e) { return s < e.seq(); });
  return std::vector<rpc::Event>(first, log_.end());
}

void Publisher::Poll(int64_t after_seq, absl::Duration timeout,
                     PollCallback done) {
  if (after_seq < last_seq_ || timeout <= absl::ZeroDuration()) {
    return done(After(after_seq), last_seq_);
  }
  uint64_t id = next_waiter_++;
  waiters_.push_back(Waiter{id, after_seq, std::move(done)});
  loop_->PostAfter(timeout, [this, id] {
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->id == id) {
        auto done = std::move(it->done);
        waiters_.erase(it);
        done({}, last_seq_);
        return;
      }
    }
  });
}

}  // namespace loom::gcs
