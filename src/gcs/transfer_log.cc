#include "src/gcs/transfer_log.h"

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "src/common/ids.h"

namespace loom::gcs {

void TransferLog::Report(const rpc::ReportTaskEventsRequest& req) {
  absl::MutexLock lock(&mu_);
  dropped_ += std::max<int64_t>(req.dropped_transfers(), 0);
  for (const rpc::ObjectTransfer& t : req.transfers()) {
    auto id = ObjectId::FromBinary(t.object_id());
    if (!id.ok() || t.end_us() < t.start_us()) {
      ++dropped_;
      continue;
    }
    auto& log = jobs_[ObjectId(*id).Task().Job().ToInt()];
    log.push_back(t);
    if (static_cast<int64_t>(log.size()) > options_.max_per_job) {
      log.pop_front();
      ++dropped_;
    }
  }
}

void TransferLog::List(const rpc::ListTasksRequest& req,
                       rpc::ListTasksReply* reply) const {
  std::vector<std::string> prefixes;
  for (const auto& f : req.filters()) {
    if (f.key() == "job_id" && f.op() == "=") prefixes.push_back(f.value());
  }
  absl::MutexLock lock(&mu_);
  std::vector<const rpc::ObjectTransfer*> out;
  for (const auto& [job, log] : jobs_) {
    std::string hex = JobId::FromInt(job).Hex();
    bool wanted = prefixes.empty();
    for (const auto& p : prefixes) {
      wanted = wanted || absl::StartsWithIgnoreCase(hex, p);
    }
    if (!wanted) continue;
    for (const auto& t : log) out.push_back(&t);
  }
  std::sort(out.begin(), out.end(), [](const auto* a, const auto* b) {
    return a->start_us() < b->start_us();
  });
  for (const auto* t : out) *reply->add_transfers() = *t;
  reply->set_dropped_transfers(dropped_);
}

}  // namespace loom::gcs
