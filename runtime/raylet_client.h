// runtime/raylet_client.h
//
// RayletClient: the core worker's blocking calls to its raylet and the head
// (registration, blocked/unblocked, task counters, jobs). Short deadlines:
// none of these may hang a caller.
//
//   RayletClient raylet("127.0.0.1:7001", "127.0.0.1:6379");
//   auto job = raylet.AddJob(getpid(), "10.0.0.5:40123");
//   raylet.NotifyBlocked(worker_id, true);
#ifndef LOOM_RUNTIME_RAYLET_CLIENT_H_
#define LOOM_RUNTIME_RAYLET_CLIENT_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/ids.h"

namespace loom {

// Thread-safe (gRPC stubs are).
class RayletClient {
 public:
  RayletClient(const std::string& raylet_address,
               const std::string& gcs_address);
  // Waits (briefly) for asynchronous calls still in flight: their callbacks
  // must not outlive the channel.
  ~RayletClient();

  // `address`: the driver's core worker (host:port); its objects are freed
  // everywhere when the job ends.
  // `runtime`: the driver's (a Python one has fork servers started).
  // A driver a job submission started names it ($LOOM_JOB_SUBMISSION_ID):
  // the job gets its quota, which `quota` receives.
  absl::StatusOr<JobId> AddJob(int64_t pid, const std::string& address,
                               const rpc::WorkerRuntime& runtime = {},
                               rpc::JobQuota* quota = nullptr);
  // Tells the head the node of the job that AddJob(pid, address) made: the
  // driver learns it only from RegisterDriver, which needs the job. The
  // head ends a job whose driver's node dies.
  absl::Status SetJobNode(const JobId& job, int64_t pid,
                          const std::string& address, const NodeId& node);
  absl::Status MarkJobFinished(const JobId& job);
  absl::StatusOr<NodeId> RegisterDriver(const JobId& job, int64_t pid,
                                        const WorkerId& worker,
                                        const rpc::WorkerRuntime& runtime);
  // The head's key-value store (the Python function table).
  absl::Status KvPut(const std::string& ns, const std::string& key,
                     const std::string& value);
  // The keys of a namespace that start with `prefix`.
  absl::StatusOr<std::vector<std::string>> KvKeys(const std::string& ns,
                                                  const std::string& prefix);
  // Puts only when the key is absent; whether it did.
  absl::StatusOr<bool> KvPutIfAbsent(const std::string& ns,
                                     const std::string& key,
                                     const std::string& value);
  absl::StatusOr<std::optional<std::string>> KvGet(const std::string& ns,
                                                   const std::string& key);
  // Whether the key was there.
  absl::StatusOr<bool> KvDel(const std::string& ns, const std::string& key);
  absl::StatusOr<rpc::GetClusterStatusReply> GetClusterStatus();
  // Placement groups at the head. GetPlacementGroup with wait_ready waits
  // up to timeout_ms for the group to leave PENDING.
  absl::StatusOr<std::string> CreatePlacementGroup(
      const rpc::PlacementGroupInfo& group);
  absl::StatusOr<rpc::PlacementGroupInfo> GetPlacementGroup(
      const std::string& pg_id, bool wait_ready, int64_t timeout_ms);
  absl::Status RemovePlacementGroup(const std::string& pg_id);
  absl::StatusOr<rpc::ListPlacementGroupsReply> ListPlacementGroups();
  // `control_key`: see RegisterWorkerRequest.
  absl::StatusOr<NodeId> RegisterWorker(const WorkerId& worker, int64_t pid,
                                        int port,
                                        const std::string& control_key);
  absl::Status NotifyBlocked(const WorkerId& worker, bool blocked);
  absl::Status ReportTaskStats(const rpc::ReportTaskStatsRequest& stats);
  // Has this node's raylet copy an object from `source`'s store into ours.
  absl::Status PullObject(const ObjectId& id, const NodeId& source);
  // Asks this node's raylet to delete the object everywhere (asynchronous,
  // best effort: a copy that survives is evicted in time).
  void FreeObject(const ObjectId& id, const NodeId& holder);
  // Pulls each object from its node into this node's store, `window` at a
  // time, and returns when all have ended; their outcome is not kept (a
  // later PullObject of one that failed says why).
  void PullObjects(const std::vector<std::pair<ObjectId, NodeId>>& objects,
                   int window = 16);
  // The head's actor directory.
  absl::StatusOr<rpc::ActorInfo> RegisterActor(
      const rpc::RegisterActorRequest& req);
  absl::StatusOr<rpc::ActorInfo> GetActor(const rpc::GetActorRequest& req);
  absl::Status KillActor(const rpc::KillActorRequest& req);

 private:
  // KvPut with overwrite or not; whether the value was written.
  absl::StatusOr<bool> KvPutWith(const std::string& ns, const std::string& key,
                                 const std::string& value, bool overwrite);
  std::unique_ptr<rpc::Raylet::Stub> raylet_;
  std::unique_ptr<rpc::Gcs::Stub> gcs_;
  absl::Mutex mu_;
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_RAYLET_CLIENT_H_
