#include "src/gcs/log_channel.h"

#include <prometheus/counter.h>

namespace loom::gcs {

void LogChannel::Open(const JobId& job) { jobs_.try_emplace(job); }

void LogChannel::End(const JobId& job) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  Job& j = it->second;
  j.ended = true;
  auto waiters = std::move(j.waiters);
  j.waiters.clear();
  for (auto& w : waiters) w.done(After(j, w.after_seq), j.last_seq, j.dropped);
}

void LogChannel::Forget(const JobId& job) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return;
  auto waiters = std::move(it->second.waiters);
  int64_t last = it->second.last_seq, dropped = it->second.dropped;
  jobs_.erase(it);
  for (auto& w : waiters) w.done({}, last, dropped);
}

absl::Status LogChannel::Publish(const JobId& job, rpc::LogBatch batch) {
  auto it = jobs_.find(job);
  if (it == jobs_.end() || it->second.ended) {
    return absl::NotFoundError("unknown or ended job");
  }
  Job& j = it->second;
  batch.set_seq(++j.last_seq);
  j.bytes += batch.ByteSizeLong();
  j.batches.push_back(std::move(batch));
  while (j.bytes > options_.max_bytes_per_job && j.batches.size() > 1) {
    const rpc::LogBatch& old = j.batches.front();
    j.bytes -= old.ByteSizeLong();
    j.dropped += old.lines_size();
    if (options_.dropped_lines)
      options_.dropped_lines->Increment(old.lines_size());
    j.batches.pop_front();
  }
  auto waiters = std::move(j.waiters);
  j.waiters.clear();
  for (auto& w : waiters) w.done(After(j, w.after_seq), j.last_seq, j.dropped);
  return absl::OkStatus();
}

std::vector<rpc::LogBatch> LogChannel::After(const Job& job, int64_t seq) {
  std::vector<rpc::LogBatch> out;
  // Batches are numbered in order: skip to the first one after `seq`.
  size_t first = job.batches.empty() ? 0 : job.batches.front().seq();
  size_t skip = seq >= static_cast<int64_t>(first) ? seq - first + 1 : 0;
  for (size_t i = skip; i < job.batches.size(); ++i) {
    out.push_back(job.batches[i]);
  }
  return out;
}

absl::Status LogChannel::Poll(const JobId& job, int64_t after_seq,
                              absl::Duration timeout, PollCallback done) {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return absl::NotFoundError("unknown or ended job");
  Job& j = it->second;
  if (after_seq != j.last_seq || timeout <= absl::ZeroDuration() || j.ended) {
    done(after_seq > j.last_seq ? After(j, 0) : After(j, after_seq), j.last_seq,
         j.dropped);
    return absl::OkStatus();
  }
  uint64_t id = next_waiter_++;
  j.waiters.push_back(Waiter{id, after_seq, std::move(done)});
  options_.loop->PostAfter(timeout, [this, job, id] {
    auto it = jobs_.find(job);
    if (it == jobs_.end()) return;  // forgotten: answered then
    auto& waiters = it->second.waiters;
    for (auto w = waiters.begin(); w != waiters.end(); ++w) {
      if (w->id == id) {
        auto done = std::move(w->done);
        waiters.erase(w);
        done({}, it->second.last_seq, it->second.dropped);
        return;
      }
    }
  });
  return absl::OkStatus();
}

int64_t LogChannel::last_seq(const JobId& job) const {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? 0 : it->second.last_seq;
}

size_t LogChannel::bytes() const {
  size_t total = 0;
  for (const auto& [id, j] : jobs_) total += j.bytes;
  return total;
}

}  // namespace loom::gcs
