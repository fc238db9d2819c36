// runtime/job_quota.cc
//
// A driver's side of its job's quota (docs/security.md): the head gives a
// submitted job's quota to its driver, which keeps at most
// max_pending_tasks of its tasks pending; a submission past it waits.
#include "runtime/core_worker.h"
#include "runtime/task_submitter.h"
#include "spdlog/spdlog.h"

namespace loom {

void CoreWorker::WaitForTaskRoom() {
  if (max_pending_tasks_ <= 0 || submitter_ == nullptr) return;
  if (submitter_->WaitForRoom(max_pending_tasks_)) return;
  static std::once_flag once;
  std::call_once(once, [this] {
    spdlog::info(
        "job {} had {} tasks pending, its quota (max-pending-tasks): a "
        "submission waited for one to finish",
        job_.Hex(), max_pending_tasks_);
  });
}

}  // namespace loom
