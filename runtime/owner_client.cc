#include "runtime/owner_client.h"

#include <spdlog/spdlog.h>

#include "src/common/async_call.h"
#include "src/common/rpc.h"

namespace loom {

std::shared_ptr<rpc::CoreWorker::Stub> OwnerClient::Stub(
    const std::string& owner) {
  return clients_->Stub<rpc::CoreWorker>(owner);
}

bool OwnerClient::Start(std::shared_ptr<Call> call) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return false;
  Call* raw = call.get();
  calls_.emplace(raw, std::move(call));
  return true;
}

void OwnerClient::Finish(Call* call) {
  std::shared_ptr<Call> last;  // freed outside the lock
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call);
  if (it == calls_.end()) return;
  last = std::move(it->second);
  calls_.erase(it);
}

void OwnerClient::Fetch(const std::string& owner, const ObjectId& id,
                        FetchDone done) {
  auto shared = std::make_shared<Call>();
  Call* call = shared.get();
  call->get_req.set_object_id(id.Binary());
  if (!Start(std::move(shared))) {
    rpc::GetObjectReply none;
    done(absl::CancelledError("shutting down"), none);
    return;
  }
  // No deadline: the owner replies when the value is ready, however long
  // the task that makes it runs; a dead owner breaks the call at once.
  rpc::AsyncCall(*Stub(owner), &rpc::CoreWorker::Stub::PrepareAsyncGetObject,
                 &call->ctx, call->get_req, &call->get_reply,
                 [this, call, done = std::move(done)](grpc::Status s) {
                   done(rpc::ToAbsl(s), call->get_reply);
                   Finish(call);
                 });
}

absl::StatusOr<std::vector<ObjectId>> OwnerClient::AddBorrows(
    const std::string& owner, const std::vector<ObjectId>& ids,
    const std::string& borrower) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 10000);
  rpc::UpdateBorrowsRequest req;
  req.set_borrower(borrower);
  for (const ObjectId& id : ids) req.add_add(id.Binary());
  rpc::UpdateBorrowsReply reply;
  absl::Status s = rpc::ToAbsl(Stub(owner)->UpdateBorrows(&ctx, req, &reply));
  if (!s.ok()) return s;
  std::vector<ObjectId> unknown;
  for (const auto& b : reply.unknown()) {
    if (auto id = ObjectId::FromBinary(b); id.ok()) unknown.push_back(*id);
  }
  return unknown;
}

absl::StatusOr<bool> OwnerClient::CancelAtOwner(const std::string& owner,
                                                const TaskId& task, bool force,
                                                bool keep_children) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 10000);
  rpc::CancelTaskRequest req;
  req.set_task_id(task.Binary());
  req.set_force(force);
  req.set_keep_children(keep_children);
  req.set_as_owner(true);
  rpc::CancelTaskReply reply;
  absl::Status s = rpc::ToAbsl(Stub(owner)->CancelTask(&ctx, req, &reply));
  if (!s.ok()) return s;
  return reply.found();
}

void OwnerClient::RemoveBorrows(const std::string& owner, const ObjectId& id,
                                int64_t units, const std::string& self) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    self_ = self;
    auto& ids = removes_[owner];
    for (int64_t i = 0; i < units; ++i) ids.push_back(id.Binary());
    if (flush_posted_) return;
    flush_posted_ = true;
  }
  loop_->Post([this] { FlushRemoves(); });
}

void OwnerClient::FlushRemoves() {
  absl::flat_hash_map<std::string, std::vector<std::string>> batch;
  std::string self;
  {
    absl::MutexLock lock(&mu_);
    flush_posted_ = false;
    batch.swap(removes_);
    self = self_;
  }
  for (auto& [owner, ids] : batch) {
    auto shared = std::make_shared<Call>();
    Call* call = shared.get();
    call->update_req.set_borrower(self);
    for (auto& id : ids) call->update_req.add_remove(std::move(id));
    rpc::SetTimeout(&call->ctx, 10000);
    if (!Start(std::move(shared))) continue;
    rpc::AsyncCall(*Stub(owner),
                   &rpc::CoreWorker::Stub::PrepareAsyncUpdateBorrows,
                   &call->ctx, call->update_req, &call->update_reply,
                   [this, call, owner = owner](grpc::Status s) {
                     // A dead owner freed everything it owned: nothing to
                     // return.
                     if (!s.ok()) {
                       spdlog::debug("returning borrows to {}: {}", owner,
                                     s.error_message());
                     }
                     Finish(call);
                   });
  }
}

void OwnerClient::ReportStreamItem(
    const std::string& owner, rpc::ReportStreamItemRequest req,
    std::function<void(absl::Status, bool)> done) {
  auto shared = std::make_shared<Call>();
  Call* call = shared.get();
  call->item_req = std::move(req);
  if (!Start(std::move(shared))) {
    return done(absl::CancelledError("shutting down"), true);
  }
  // No deadline: the owner answers when its consumer catches up
  // (backpressure); a dead owner breaks the call at once.
  rpc::AsyncCall(*Stub(owner),
                 &rpc::CoreWorker::Stub::PrepareAsyncReportStreamItem,
                 &call->ctx, call->item_req, &call->item_reply,
                 [this, call, done = std::move(done)](grpc::Status s) {
                   done(rpc::ToAbsl(s), call->item_reply.stop());
                   Finish(call);
                 });
}

void OwnerClient::WatchBorrower(const std::string& borrower,
                                std::function<void()> done) {
  auto shared = std::make_shared<Call>();
  Call* call = shared.get();
  if (!Start(std::move(shared))) return done();
  rpc::AsyncCall(*Stub(borrower),
                 &rpc::CoreWorker::Stub::PrepareAsyncWatchBorrower, &call->ctx,
                 call->watch_req, &call->watch_reply,
                 [this, call, borrower, done = std::move(done)](grpc::Status) {
                   clients_->Drop(borrower);  // it exited or died
                   done();
                   Finish(call);
                 });
}

void OwnerClient::Shutdown() {
  FlushRemoves();
  std::vector<std::shared_ptr<Call>> fetches;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    // Fetches wait for values that may never come; removes may finish.
    for (const auto& [raw, call] : calls_) {
      if (call->update_req.remove_size() == 0) fetches.push_back(call);
    }
  }
  for (const auto& call : fetches) call->ctx.TryCancel();  // outside mu_
  fetches.clear();
  absl::MutexLock lock(&mu_);
  auto done = [this]()
                  ABSL_SHARED_LOCKS_REQUIRED(mu_) { return calls_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(5));
}

}  // namespace loom
