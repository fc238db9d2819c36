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
  published_ |= Bit(e.kind());
  log_.push_back(std::move(e));
  while (log_.size() > capacity_) log_.pop_front();
  if (gather_ <= absl::ZeroDuration()) return Wake();
  if (wake_posted_) return;
  wake_posted_ = true;
  loop_->PostAfter(gather_, [this] {
    wake_posted_ = false;
    Wake();
  });
}

void Publisher::Wake() {
  KindMask published = published_;
  published_ = 0;
  std::vector<std::pair<PollCallback, std::vector<rpc::Event>>> answers;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if ((it->kinds & published) == 0) {
      ++it;  // nothing it asked for
      continue;
    }
    std::vector<rpc::Event> events = After(it->after_seq, it->kinds);
    if (events.empty()) {
      ++it;
      continue;
    }
    answers.emplace_back(std::move(it->done), std::move(events));
    it = waiters_.erase(it);
  }
  // After the list is settled: an answer may poll again at once.
  for (auto& [done, events] : answers) done(std::move(events), last_seq_);
}

std::vector<rpc::Event> Publisher::After(int64_t seq, KindMask kinds) const {
  // The log is in seq order: find the first newer one rather than scan it.
  auto first = std::upper_bound(
      log_.begin(), log_.end(), seq,
      [](int64_t s, const rpc::Event& e) { return s < e.seq(); });
  std::vector<rpc::Event> out;
  for (auto it = first; it != log_.end(); ++it) {
    if (kinds & Bit(it->kind())) out.push_back(*it);
  }
  return out;
}

void Publisher::Poll(int64_t after_seq, KindMask kinds, absl::Duration timeout,
                     PollCallback done) {
  // A subscriber ahead of the log followed an earlier head: it learns at
  // once that this one numbers anew.
  if (timeout <= absl::ZeroDuration() || after_seq > last_seq_) {
    return done(After(after_seq, kinds), last_seq_);
  }
  if (after_seq < last_seq_) {
    std::vector<rpc::Event> events = After(after_seq, kinds);
    // Missed ones (or those of a log that no longer reaches back) go out
    // at once; others' kinds are passed over and the poll waits on.
    if (!events.empty() ||
        (!log_.empty() && log_.front().seq() > after_seq + 1)) {
      return done(std::move(events), last_seq_);
    }
  }
  uint64_t id = next_waiter_++;
  waiters_.push_back(Waiter{id, after_seq, kinds, std::move(done)});
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
