// object_store/store_server.h
//
// ObjectStoreServer: serves one node's LocalStore on a unix socket (mode
// 0600; peers must run as the same user). Each client receives the arena's
// memfd once on connect, then speaks the length-prefixed protocol of
// proto/object_store.proto. One thread owns the store and every connection
// (epoll). A malformed message gets an error reply and the store keeps
// serving; a client that disconnects or dies releases its pins. Spill and
// restore file IO runs on two threads of its own, its results brought back
// to the store's thread (an eventfd wakes it).
//
//   auto server = ObjectStoreServer::Start({.socket_path = dir +
//   "/sockets/store",
//                                           .capacity = 1 << 30});
//   ... (*server)->stats() ...
#ifndef LOOM_OBJECT_STORE_STORE_SERVER_H_
#define LOOM_OBJECT_STORE_STORE_SERVER_H_

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "object_store/arena.h"
#include "object_store/local_store.h"
#include "src/common/work_queue.h"

namespace loom {

namespace rpc {
class StoreRequest;
class StoreReply;
}  // namespace rpc

// The node's available memory: MemAvailable, capped by the cgroup's limit
// (1 GiB when neither can be read).
uint64_t AvailableMemoryBytes();
// 30% of available memory, capped by MemAvailable and the cgroup's limit.
uint64_t DefaultObjectStoreBytes();

class ObjectStoreServer {
 public:
  struct Options {
    std::string socket_path;
    uint64_t capacity = 0;
    std::string spill_dir;  // empty: primary copies never spill
    std::function<void(const ObjectId&)> on_evict;  // see LocalStore
  };
  static absl::StatusOr<std::unique_ptr<ObjectStoreServer>> Start(
      Options options);
  ~ObjectStoreServer();

  // Thread-safe: a copy of the store's counters as of the last request.
  LocalStore::Stats stats() const;
  uint64_t capacity() const { return arena_->size(); }
  // Thread-safe: per-job quotas (LocalStore::SetJobLimits), taken before
  // the next create; and each job's bytes as of the last request.
  void SetJobLimits(absl::flat_hash_map<JobId, uint64_t> limits);
  absl::flat_hash_map<JobId, uint64_t> job_bytes() const;

 private:
  struct Conn {
    int fd = -1;
    ClientId id = 0;
    std::string in;
    std::string out;
  };

  ObjectStoreServer(Options options, std::unique_ptr<Arena> arena);
  void Run();
  void Accept();
  void OnReadable(Conn& conn);
  void Handle(Conn& conn, const rpc::StoreRequest& req);
  void Reply(ClientId client, const rpc::StoreReply& reply);
  void Flush(Conn& conn);
  void Close(ClientId client);
  void PublishStats();
  // LocalStore's file IO: runs `job` on io_, and its result on the store's
  // thread (RunCompleted).
  void RunIo(std::function<std::function<void()>()> job);
  void RunCompleted();

  Options options_;
  std::unique_ptr<Arena> arena_;
  LocalStore store_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int io_fd_ = -1;  // eventfd: file IO completed
  ClientId next_client_ = 1;
  absl::flat_hash_map<ClientId, std::unique_ptr<Conn>> conns_;
  std::thread thread_;
  std::unique_ptr<WorkQueue> io_;
  absl::Mutex io_mu_;
  std::deque<std::function<void()>> completed_ ABSL_GUARDED_BY(io_mu_);

  mutable absl::Mutex stats_mu_;
  LocalStore::Stats stats_ ABSL_GUARDED_BY(stats_mu_);
  absl::flat_hash_map<JobId, uint64_t> job_bytes_ ABSL_GUARDED_BY(stats_mu_);
  uint64_t job_bytes_version_ ABSL_GUARDED_BY(stats_mu_) = 0;
  absl::Mutex limits_mu_;
  std::optional<absl::flat_hash_map<JobId, uint64_t>> new_limits_
      ABSL_GUARDED_BY(limits_mu_);
  absl::flat_hash_map<JobId, uint64_t> limits_ ABSL_GUARDED_BY(limits_mu_);
};

}  // namespace loom

#endif  // LOOM_OBJECT_STORE_STORE_SERVER_H_
