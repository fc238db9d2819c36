// src/raylet/object_manager.h
//
// ObjectManager: moves objects between nodes' stores. Pull copies an object
// from the raylet whose store holds it into this node's store (on a pool of
// `pull_threads`; an object that fits one chunk takes one call), in chunks
// (default 8 MiB, several in flight over connections of their own), written
// straight into the arena, whose pages are mapped ahead of each chunk; pulls
// of one object that overlap share one transfer. ReadChunk serves the other
// side: each chunk goes out as a grpc::ByteBuffer whose payload slice points
// into the arena (no copy; the object stays pinned until gRPC has sent it).
// A source that fails mid-transfer leaves nothing behind, and the pull tries
// the other copies the head's directory lists before it fails with an error
// naming each location tried. With `metrics`, the bytes it pulls and serves
// are counted (loom_object_manager_bytes_received_total / _sent_total).
//
//   ObjectManager om({.store = &store_client, .address_of = ...});
//   om.Pull(id, source_node, [](absl::Status s) { ... });  // any thread
#ifndef LOOM_SRC_RAYLET_OBJECT_MANAGER_H_
#define LOOM_SRC_RAYLET_OBJECT_MANAGER_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "object_store/store_client.h"
#include "proto/gcs.pb.h"
#include "proto/raylet.pb.h"

namespace grpc {
class ByteBuffer;
}
#include "src/common/client_pool.h"
#include "src/common/ids.h"
#include "src/common/metrics.h"
#include "src/common/work_queue.h"

namespace loom::raylet {

// Sets this process's malloc for receiving transfers; call once at start,
// before other threads. gRPC allocates the buffers of each chunk it
// receives afresh, and by default malloc maps blocks over 128 KiB and
// returns freed memory to the kernel soon: each pulled GiB faulted in
// 100 000 to 200 000 new pages besides the object's own (0.2-0.3 s of CPU
// on the 2-core VM). With this, blocks up to 32 MiB come from malloc's
// heaps, each of which keeps up to 32 MiB free for reuse. The cost: a
// raylet that has pulled large objects keeps more memory (about 200 MiB of
// anonymous RSS after 1 GiB pulls, against about 50 before).
void TuneMallocForTransfers();

// Thread-safe.
class ObjectManager {
 public:
  struct Options {
    ObjectStoreClient* store = nullptr;
    // HOST:PORT of a node's raylet, from the cluster view.
    std::function<std::optional<std::string>(const NodeId&)> address_of;
    uint64_t chunk_bytes = 8 << 20;
    int chunks_in_flight = 4;
    NodeId self;
    std::string gcs_address;  // copies are reported to its object directory
    ClientPool* clients = nullptr;  // channels to other raylets; required
    Metrics* metrics = nullptr;     // optional: byte counters
    int connections = 2;  // to each source, for the chunks (at least 1)
    // Pulls run on this many threads (more wait their turn in order); the
    // frees of other nodes' copies on one.
    int pull_threads = 8;
  };
  explicit ObjectManager(Options options);
  ~ObjectManager();

  // Makes `id` present in this node's store; `done` runs on a transfer
  // thread (or here, when it is present already).
  void Pull(const ObjectId& id, const NodeId& source,
            std::function<void(absl::Status)> done);
  // Fills `reply` with a serialized ReadObjectChunkReply.
  absl::Status ReadChunk(const rpc::ReadObjectChunkRequest& req,
                         grpc::ByteBuffer* reply);
  absl::StatusOr<StoreUsage> Usage() { return options_.store->Usage(); }
  // Deletes the objects here; unless local_only, also on the nodes named
  // and those the head's directory lists (on a background thread).
  absl::Status Free(const rpc::FreeObjectsRequest& req);
  // Deletes what `owner` (a core worker's host:port) owned of `job` here.
  void FreeOwnedBy(const std::string& owner, const JobId& job);
  // The store evicted a copy (any thread).
  void Evicted(const ObjectId& id) { ReportCopy(id, 0, /*added=*/false); }
  // The head restarted and forgot: report every copy held here again.
  void ReReportCopies();
  // The pulls since the last call (at most kMaxTransfers kept between
  // calls; the rest counted), for the head's timeline.
  void TakeTransfers(rpc::ReportTaskEventsRequest* into);
  // Sends what TakeTransfers gives to the head (from the report thread).
  void SendTransfers();
  static constexpr size_t kMaxTransfers = 10000;

 private:
  // Tries `source`, then every other location the directory lists.
  absl::Status PullFromAnywhere(const ObjectId& id, const NodeId& source);
  // *bytes: the object's size once it is here (0 when it was not moved).
  absl::Status Transfer(const ObjectId& id, const std::string& address,
                        uint64_t* bytes);
  void RecordTransfer(const ObjectId& id, const NodeId& from, uint64_t bytes,
                      absl::Time start, bool failed);
  std::vector<NodeId> Locations(const ObjectId& id);
  // A node's raylet address: from this raylet's view, else (it just
  // joined, the view lags) from the head.
  std::optional<std::string> AddressOf(const NodeId& node);
  // Queues a directory update; the reporter thread sends them in batches.
  void ReportCopy(const ObjectId& id, uint64_t size, bool added);
  void ReportLoop();

  Options options_;
  prometheus::Counter* bytes_received_ = nullptr;
  prometheus::Counter* bytes_sent_ = nullptr;
  prometheus::Counter* objects_received_ = nullptr;
  struct Gcs;
  std::unique_ptr<Gcs> gcs_;  // the head's object directory; null without one
  absl::Mutex mu_;
  absl::flat_hash_map<ObjectId, std::vector<std::function<void(absl::Status)>>>
      pulls_ ABSL_GUARDED_BY(mu_);

  absl::Mutex transfers_mu_;
  std::vector<rpc::ObjectTransfer> transfers_ ABSL_GUARDED_BY(transfers_mu_);
  int64_t dropped_transfers_ ABSL_GUARDED_BY(transfers_mu_) = 0;

  absl::Mutex report_mu_;
  absl::flat_hash_map<ObjectId, uint64_t> copies_ ABSL_GUARDED_BY(report_mu_);
  std::vector<rpc::ObjectLocationUpdate> updates_ ABSL_GUARDED_BY(report_mu_);
  bool stop_ ABSL_GUARDED_BY(report_mu_) = false;
  std::thread reporter_;

  // Stopping: queued pulls answer Cancelled instead of starting.
  std::atomic<bool> stopping_{false};
  std::unique_ptr<WorkQueue> pull_queue_;
  std::unique_ptr<WorkQueue> free_queue_;
};

}  // namespace loom::raylet

#endif  // LOOM_SRC_RAYLET_OBJECT_MANAGER_H_
