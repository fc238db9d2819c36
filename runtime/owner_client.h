// runtime/owner_client.h
//
// OwnerClient: a borrower's calls to the core workers that own the objects
// it borrows. It asks an owner for a value (the reply comes when the value
// is ready), registers borrow units (blocking: the registration must land
// before the value that carried the ref can go), and returns them in
// batches, one call per owner.
//
//   OwnerClient owners(&loop);
//   owners.Fetch("10.0.0.2:4100", id, [](absl::Status s, auto& reply) {...});
//   auto unknown = owners.AddBorrows("10.0.0.2:4100", {id});
//   owners.RemoveBorrows("10.0.0.2:4100", id, 1);
//   owners.Shutdown();  // cancels fetches, flushes, waits for calls
#ifndef LOOM_RUNTIME_OWNER_CLIENT_H_
#define LOOM_RUNTIME_OWNER_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/worker.grpc.pb.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"

namespace loom {

// Thread-safe.
class OwnerClient {
 public:
  using FetchDone = std::function<void(absl::Status, rpc::GetObjectReply&)>;
  // Calls owners and borrowers through `clients`.
  OwnerClient(EventLoop* loop, ClientPool* clients)
      : loop_(loop), clients_(clients) {}
  ~OwnerClient() { Shutdown(); }

  // `done` runs once, on a gRPC thread: with the owner's reply, or with an
  // error when the owner is unreachable or the client shuts down.
  void Fetch(const std::string& owner, const ObjectId& id, FetchDone done);
  // One borrow unit per id for `borrower` (host:port); returns the ids the
  // owner no longer holds.
  absl::StatusOr<std::vector<ObjectId>> AddBorrows(
      const std::string& owner, const std::vector<ObjectId>& ids,
      const std::string& borrower);
  // Returns `units` of this process's borrow units (`self` is its address),
  // batched with others on the loop.
  void RemoveBorrows(const std::string& owner, const ObjectId& id,
                     int64_t units, const std::string& self);
  // loom.cancel of a borrowed ref: the owner of task `task`'s return
  // cancels it; true when it found the task unfinished.
  absl::StatusOr<bool> CancelAtOwner(const std::string& owner,
                                     const TaskId& task, bool force,
                                     bool keep_children);
  // Executor side: a streaming generator's item (streams.h); `done(status,
  // stop)` runs once, on a gRPC thread.
  void ReportStreamItem(const std::string& owner,
                        rpc::ReportStreamItemRequest req,
                        std::function<void(absl::Status, bool)> done);
  // Owner side: `done` runs once `borrower` has exited or died (or on
  // shutdown).
  void WatchBorrower(const std::string& borrower, std::function<void()> done);
  void Shutdown();

 private:
  struct Call {
    rpc::Context ctx;
    rpc::GetObjectRequest get_req;
    rpc::GetObjectReply get_reply;
    rpc::UpdateBorrowsRequest update_req;
    rpc::UpdateBorrowsReply update_reply;
    rpc::WatchBorrowerRequest watch_req;
    rpc::WatchBorrowerReply watch_reply;
    rpc::ReportStreamItemRequest item_req;
    rpc::ReportStreamItemReply item_reply;
  };
  std::shared_ptr<rpc::CoreWorker::Stub> Stub(const std::string& owner);
  void FlushRemoves();
  bool Start(std::shared_ptr<Call> call);  // false when shut down
  void Finish(Call* call);

  EventLoop* loop_;
  ClientPool* clients_;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<Call*, std::shared_ptr<Call>> calls_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<std::string>> removes_
      ABSL_GUARDED_BY(mu_);
  bool flush_posted_ ABSL_GUARDED_BY(mu_) = false;
  std::string self_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loom

#endif  // LOOM_RUNTIME_OWNER_CLIENT_H_
