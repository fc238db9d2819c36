#include "src/raylet/object_manager.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/async_call.h"
#include "src/common/rpc.h"
#include "src/common/wire.h"

namespace loom::raylet {
namespace {

bool Present(ObjectStoreClient* store, const ObjectId& id) {
  auto views = store->Get({id}, 0);
  if (!views.ok() || !(*views)[0]) return false;
  store->Release(id).IgnoreError();
  return true;
}

// Maps [p, p + n) for writing in one call, where a chunk copied there would
// fault each page of the arena it touches first, one by one. Best effort:
// kernels before 5.14 do not know the call, and the copy faults instead.
void Prefault(uint8_t* p, uint64_t n) {
#ifdef MADV_POPULATE_WRITE
  static const uintptr_t page = sysconf(_SC_PAGESIZE);
  uintptr_t start = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
  uintptr_t end = reinterpret_cast<uintptr_t>(p) + n;
  madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_WRITE);
#endif
}

}  // namespace

void TuneMallocForTransfers() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
}

struct ObjectManager::Gcs {
  std::unique_ptr<rpc::Gcs::Stub> stub;
};

ObjectManager::ObjectManager(Options options)
    : options_(std::move(options)),
      pull_queue_(std::make_unique<WorkQueue>(
          "pull", std::max(1, options_.pull_threads))),
      free_queue_(std::make_unique<WorkQueue>("free", 1)) {
  if (Metrics* m = options_.metrics) {
    bytes_received_ = &m->Counter(
        "loom_object_manager_bytes_received_total",
        "Bytes of objects pulled into this node's store from other nodes");
    bytes_sent_ =
        &m->Counter("loom_object_manager_bytes_sent_total",
                    "Bytes of objects this node's store served to other nodes");
    objects_received_ =
        &m->Counter("loom_object_manager_objects_received_total",
                    "Objects pulled into this node's store from other nodes");
  }
  if (!options_.gcs_address.empty()) {
    gcs_ = std::make_unique<Gcs>(
        Gcs{rpc::Gcs::NewStub(rpc::MakeChannel(options_.gcs_address))});
    reporter_ = std::thread([this] { ReportLoop(); });
  }
}

ObjectManager::~ObjectManager() {
  stopping_ = true;
  pull_queue_.reset();  // what is queued answers Cancelled
  free_queue_.reset();
  {
    absl::MutexLock lock(&report_mu_);
    stop_ = true;
  }
  if (reporter_.joinable()) reporter_.join();
}

void ObjectManager::Pull(const ObjectId& id, const NodeId& source,
                         std::function<void(absl::Status)> done) {
  if (Present(options_.store, id)) return done(absl::OkStatus());
  {
    absl::MutexLock lock(&mu_);
    auto& waiters = pulls_[id];
    waiters.push_back(std::move(done));
    if (waiters.size() > 1) return;  // joins the transfer already running
  }
  pull_queue_->Post([this, id, source] {
    absl::Status s = stopping_ ? absl::CancelledError("the raylet is stopping")
                               : PullFromAnywhere(id, source);
    std::vector<std::function<void(absl::Status)>> waiters;
    {
      absl::MutexLock lock(&mu_);
      waiters = std::move(pulls_[id]);
      pulls_.erase(id);
    }
    for (auto& w : waiters) w(s);
  });
}

absl::Status ObjectManager::PullFromAnywhere(const ObjectId& id,
                                             const NodeId& source) {
  std::vector<NodeId> candidates = {source};
  bool asked_directory = false;
  std::string tried;
  // NOT_FOUND when no live node had it; UNAVAILABLE when one may have and
  // could not be read (worth a retry).
  bool nowhere = true;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const NodeId& node = candidates[i];
    auto address = AddressOf(node);
    absl::Time begun = absl::Now();
    uint64_t bytes = 0;
    absl::Status s = address
                         ? Transfer(id, *address, &bytes)
                         : absl::NotFoundError("not alive in the cluster view");
    if (address && (bytes > 0 || !s.ok())) {
      RecordTransfer(id, node, bytes, begun, !s.ok());
    }
    if (s.ok()) return s;
    // A full store here is not the source's fault: no point in another.
    if (s.code() == absl::StatusCode::kResourceExhausted) return s;
    nowhere = nowhere && s.code() == absl::StatusCode::kNotFound;
    absl::StrAppend(&tried, tried.empty() ? "" : "; ", "node ",
                    node.Hex().substr(0, 12), ": ", s.message());
    if (i + 1 == candidates.size() && !asked_directory) {
      asked_directory = true;
      for (const NodeId& n : Locations(id)) {
        if (n != options_.self &&
            std::find(candidates.begin(), candidates.end(), n) ==
                candidates.end()) {
          candidates.push_back(n);
        }
      }
    }
  }
  return absl::Status(
      nowhere ? absl::StatusCode::kNotFound : absl::StatusCode::kUnavailable,
      absl::StrCat("object ", id.Hex(), " could not be pulled from any of ",
                   candidates.size(), " locations (", tried, ")"));
}

std::optional<std::string> ObjectManager::AddressOf(const NodeId& node) {
  if (auto address = options_.address_of(node)) return address;
  if (!gcs_) return std::nullopt;
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 2000);
  rpc::GetClusterStatusReply reply;
  if (!gcs_->stub
           ->GetClusterStatus(&ctx, rpc::GetClusterStatusRequest(), &reply)
           .ok()) {
    return std::nullopt;
  }
  for (const auto& n : reply.nodes()) {
    if (n.alive() && n.node_id() == node.Binary()) {
      return RayletAddress(n);
    }
  }
  return std::nullopt;
}

std::vector<NodeId> ObjectManager::Locations(const ObjectId& id) {
  std::vector<NodeId> out;
  if (!gcs_) return out;
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 2000);
  rpc::GetObjectLocationsRequest req;
  req.set_object_id(id.Binary());
  rpc::GetObjectLocationsReply reply;
  if (!gcs_->stub->GetObjectLocations(&ctx, req, &reply).ok()) return out;
  for (const auto& b : reply.node_ids()) {
    if (auto n = NodeId::FromBinary(b); n.ok()) out.push_back(*n);
  }
  return out;
}

namespace {

// One ReadObjectChunk call, its reply parsed as it arrives: the sizes, then
// the chunk, copied from gRPC's slices straight to where it belongs.
class ChunkReader {
 public:
  ChunkReader(grpc::GenericStub* stub, const ObjectId& id) : stub_(stub) {
    req_.set_object_id(id.Binary());
  }
  // `place(data_size, metadata_size)` says where the chunk goes (null:
  // nowhere, fail).
  absl::Status Read(uint64_t offset, uint64_t length,
                    const std::function<uint8_t*(uint64_t, uint64_t)>& place,
                    uint64_t* chunk_size,
                    const std::function<void()>& meanwhile = nullptr) {
    req_.set_offset(offset);
    req_.set_length(length);
    grpc::ByteBuffer request, reply;
    bool own = false;
    grpc::Status ser = grpc::GenericSerialize<grpc::ProtoBufferWriter,
                                              rpc::ReadObjectChunkRequest>(
        req_, &request, &own);
    if (!ser.ok()) return rpc::ToAbsl(ser);
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, 60000);
    absl::Notification done;
    grpc::Status status;
    rpc::AsyncGenericCall(*stub_, "/loom.rpc.Raylet/ReadObjectChunk", &ctx,
                          request, &reply, [&](grpc::Status s) {
                            status = std::move(s);
                            done.Notify();
                          });
    if (meanwhile) meanwhile();  // while the chunk is on its way
    done.WaitForNotification();
    if (!status.ok()) return rpc::ToAbsl(status);
    return Parse(&reply, place, chunk_size);
  }

 private:
  static absl::Status Parse(
      grpc::ByteBuffer* reply,
      const std::function<uint8_t*(uint64_t, uint64_t)>& place,
      uint64_t* chunk_size) {
    grpc::ProtoBufferReader reader(reply);
    google::protobuf::io::CodedInputStream in(&reader);
    uint64_t data_size = 0, metadata_size = 0;
    while (uint32_t tag = in.ReadTag()) {
      switch (tag) {
        case (1 << 3) | 0:
          if (!in.ReadVarint64(&data_size)) return Malformed();
          break;
        case (2 << 3) | 0:
          if (!in.ReadVarint64(&metadata_size)) return Malformed();
          break;
        case (3 << 3) | 2: {
          uint32_t n = 0;
          if (!in.ReadVarint32(&n)) return Malformed();
          uint8_t* dst = place(data_size, metadata_size);
          if (dst == nullptr) return absl::AbortedError("chunk not wanted");
          if (!in.ReadRaw(dst, static_cast<int>(n))) return Malformed();
          *chunk_size = n;
          break;
        }
        default:
          return Malformed();
      }
    }
    return absl::OkStatus();
  }
  static absl::Status Malformed() {
    return absl::DataLossError("malformed chunk reply");
  }

  grpc::GenericStub* stub_;
  rpc::ReadObjectChunkRequest req_;
};

}  // namespace

void ObjectManager::RecordTransfer(const ObjectId& id, const NodeId& from,
                                   uint64_t bytes, absl::Time start,
                                   bool failed) {
  rpc::ObjectTransfer t;
  t.set_object_id(id.Binary());
  t.set_from_node(from.Binary());
  t.set_to_node(options_.self.Binary());
  t.set_bytes(bytes);
  t.set_start_us(absl::ToUnixMicros(start));
  t.set_end_us(absl::ToUnixMicros(absl::Now()));
  t.set_failed(failed);
  absl::MutexLock lock(&transfers_mu_);
  if (transfers_.size() >= kMaxTransfers) {
    ++dropped_transfers_;
    return;
  }
  transfers_.push_back(std::move(t));
}

void ObjectManager::TakeTransfers(rpc::ReportTaskEventsRequest* into) {
  absl::MutexLock lock(&transfers_mu_);
  for (auto& t : transfers_) *into->add_transfers() = std::move(t);
  transfers_.clear();
  into->set_dropped_transfers(dropped_transfers_);
  dropped_transfers_ = 0;
}

absl::Status ObjectManager::Transfer(const ObjectId& id,
                                     const std::string& address,
                                     uint64_t* bytes) {
  absl::Time start = absl::Now();
  // Chunks travel over connections of their own (not behind other calls to
  // that raylet), `connections` of them: with two, a 1 GiB pull between two
  // hosts ran 10-20% faster than with one (benchmarks/README.md).
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (auto& channel : options_.clients->BulkChannels(
           address, std::max(1, options_.connections))) {
    stubs.push_back(std::make_unique<grpc::GenericStub>(std::move(channel)));
  }
  auto failed = [&](const absl::Status& s) {
    return absl::Status(
        s.code(), absl::StrCat("pulling object ", id.Hex(), " from ", address,
                               " failed: ", s.message()));
  };
  // The first chunk tells the size: the object is created then, and the
  // chunk lands in it.
  uint8_t* dst = nullptr;
  uint64_t total = 0;
  absl::Status created = absl::OkStatus();
  auto create = [&](uint64_t data_size, uint64_t metadata_size) -> uint8_t* {
    total = data_size + metadata_size;
    auto d = options_.store->Create(id, data_size, metadata_size,
                                    /*primary=*/false);
    if (!d.ok()) {
      created = d.status();
      return nullptr;
    }
    dst = *d;
    Prefault(dst, std::min<uint64_t>(total, options_.chunk_bytes));
    return dst;
  };
  uint64_t first = 0;
  absl::Status s = ChunkReader(stubs[0].get(), id)
                       .Read(0, options_.chunk_bytes, create, &first);
  if (!created.ok()) {
    if (created.code() == absl::StatusCode::kAlreadyExists) {
      return absl::OkStatus();  // another pull of this object got here first
    }
    return failed(created);
  }
  if (s.ok() && dst == nullptr) s = absl::DataLossError("empty chunk reply");
  if (!s.ok()) {
    if (dst != nullptr) options_.store->Abort(id).IgnoreError();
    return failed(s);
  }
  // The rest, several chunks in flight, each written into place.
  std::atomic<uint64_t> next{first};
  absl::Mutex err_mu;
  absl::Status error;
  std::vector<std::thread> workers;
  uint64_t chunks_left =
      (total - first + options_.chunk_bytes - 1) / options_.chunk_bytes;
  int readers = static_cast<int>(
      std::min<uint64_t>(options_.chunks_in_flight, chunks_left));
  for (int i = 0; i < readers; ++i) {
    workers.emplace_back([&, i] {
      ChunkReader reader(stubs[i % stubs.size()].get(), id);
      while (true) {
        uint64_t offset = next.fetch_add(options_.chunk_bytes);
        if (offset >= total) return;
        uint64_t length =
            std::min<uint64_t>(options_.chunk_bytes, total - offset);
        uint64_t got = 0;
        absl::Status cs = reader.Read(
            offset, length,
            [&](uint64_t d, uint64_t m) -> uint8_t* {
              return d + m == total ? dst + offset : nullptr;
            },
            &got, [&] { Prefault(dst + offset, length); });
        if (cs.ok() && got != length) cs = absl::DataLossError("short chunk");
        if (!cs.ok()) {
          absl::MutexLock lock(&err_mu);
          error = cs;
          next = total;  // stop the others
          return;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  if (!error.ok()) {
    options_.store->Abort(id).IgnoreError();
    return failed(error);
  }
  absl::Status sealed = options_.store->Seal(id);
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  spdlog::debug("pulled object {} ({} bytes) from {} in {:.3f} s: {:.2f} GB/s",
                id.Hex(), total, address, seconds, total / seconds / 1e9);
  if (sealed.ok()) {
    *bytes = total;
    ReportCopy(id, total, /*added=*/true);
    if (bytes_received_) bytes_received_->Increment(static_cast<double>(total));
    if (objects_received_) objects_received_->Increment();
  }
  return sealed;
}

void ObjectManager::ReportCopy(const ObjectId& id, uint64_t size, bool added) {
  if (!gcs_) return;
  absl::MutexLock lock(&report_mu_);
  if (added) {
    copies_[id] = size;
  } else if (copies_.erase(id) == 0) {
    return;  // never reported (a primary, or gone already)
  }
  rpc::ObjectLocationUpdate u;
  u.set_object_id(id.Binary());
  u.set_node_id(options_.self.Binary());
  u.set_added(added);
  u.set_size(static_cast<int64_t>(size));
  updates_.push_back(std::move(u));
}

void ObjectManager::ReReportCopies() {
  absl::MutexLock lock(&report_mu_);
  for (const auto& [id, size] : copies_) {
    rpc::ObjectLocationUpdate u;
    u.set_object_id(id.Binary());
    u.set_node_id(options_.self.Binary());
    u.set_added(true);
    u.set_size(static_cast<int64_t>(size));
    updates_.push_back(std::move(u));
  }
}

void ObjectManager::ReportLoop() {
  absl::Time transfers_sent = absl::Now();
  while (true) {
    rpc::UpdateObjectLocationsRequest req;
    bool transfers_waiting;
    {
      absl::MutexLock lock(&transfers_mu_);
      transfers_waiting = !transfers_.empty() || dropped_transfers_ > 0;
    }
    {
      absl::MutexLock lock(&report_mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(report_mu_) {
        return stop_ || !updates_.empty();
      };
      // Idle (nothing to send, no transfer records to flush within the
      // second): sleep until an update comes.
      report_mu_.AwaitWithTimeout(
          absl::Condition(&ready),
          transfers_waiting ? absl::Seconds(1) : absl::InfiniteDuration());
      if (stop_) return;
      if (!updates_.empty()) {
        // A short window gathers the updates of a burst into one call.
        report_mu_.AwaitWithTimeout(absl::Condition(&stop_),
                                    absl::Milliseconds(10));
        for (auto& u : updates_) *req.add_updates() = std::move(u);
        updates_.clear();
      }
    }
    if (req.updates_size() > 0) {
      rpc::Context ctx;
      rpc::SetTimeout(&ctx, 2000);
      rpc::UpdateObjectLocationsReply reply;
      // Soft state: a head that missed this learns it again after
      // restarting.
      gcs_->stub->UpdateObjectLocations(&ctx, req, &reply);
    }
    if (absl::Now() - transfers_sent >= absl::Seconds(1)) {
      transfers_sent = absl::Now();
      SendTransfers();
    }
  }
}

void ObjectManager::SendTransfers() {
  rpc::ReportTaskEventsRequest req;
  TakeTransfers(&req);
  if (req.transfers_size() == 0 && req.dropped_transfers() == 0) return;
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 2000);
  rpc::ReportTaskEventsReply reply;
  grpc::Status s = gcs_->stub->ReportTaskEvents(&ctx, req, &reply);
  if (!s.ok()) {
    spdlog::warn("{} records of object transfers not sent to the head: {}",
                 req.transfers_size(), s.error_message());
  }
}

absl::Status ObjectManager::Free(const rpc::FreeObjectsRequest& req) {
  std::vector<ObjectId> ids;
  for (const auto& b : req.object_ids()) {
    auto id = ObjectId::FromBinary(b);
    if (!id.ok()) return id.status();
    ids.push_back(*id);
  }
  std::vector<NodeId> named;
  for (const auto& b : req.node_ids()) {
    auto n = NodeId::FromBinary(b);
    if (!n.ok()) return n.status();
    named.push_back(*n);
  }
  for (const auto& id : ids) {
    if (options_.store->Delete(id).ok()) ReportCopy(id, 0, /*added=*/false);
  }
  if (req.local_only()) return absl::OkStatus();
  free_queue_->Post([this, ids, named] {
    if (stopping_) return;
    absl::flat_hash_map<NodeId, rpc::FreeObjectsRequest> by_node;
    auto add = [&](const NodeId& node, const ObjectId& id) {
      if (node == options_.self) return;
      auto& r = by_node[node];
      r.set_local_only(true);
      r.add_object_ids(id.Binary());
    };
    for (const auto& id : ids) {
      for (const auto& n : named) add(n, id);
      if (!gcs_) continue;
      rpc::Context ctx;
      rpc::SetTimeout(&ctx, 2000);
      rpc::GetObjectLocationsRequest lreq;
      lreq.set_object_id(id.Binary());
      rpc::GetObjectLocationsReply lreply;
      if (!gcs_->stub->GetObjectLocations(&ctx, lreq, &lreply).ok()) continue;
      for (const auto& b : lreply.node_ids()) {
        if (auto n = NodeId::FromBinary(b); n.ok()) add(*n, id);
      }
    }
    for (auto& [node, r] : by_node) {
      auto address = AddressOf(node);
      if (!address) continue;  // gone: nothing of it to free
      auto stub = options_.clients->Stub<rpc::Raylet>(*address);
      rpc::Context ctx;
      rpc::SetTimeout(&ctx, 5000);
      rpc::FreeObjectsReply reply;
      stub->FreeObjects(&ctx, r, &reply);  // a node that is gone has nothing
    }
  });
  return absl::OkStatus();
}

void ObjectManager::FreeOwnedBy(const std::string& owner, const JobId& job) {
  auto deleted = options_.store->DeleteOwnedBy(owner, job);
  if (!deleted.ok()) {
    spdlog::warn("cannot free the objects {} owned: {}", owner,
                 deleted.status().ToString());
    return;
  }
  for (const auto& id : *deleted) ReportCopy(id, 0, /*added=*/false);
  if (!deleted->empty()) {
    spdlog::info("freed {} objects of job {} owned by {}", deleted->size(),
                 job.ToInt(), owner);
  }
}

absl::Status ObjectManager::ReadChunk(const rpc::ReadObjectChunkRequest& req,
                                      grpc::ByteBuffer* reply) {
  auto id = ObjectId::FromBinary(req.object_id());
  if (!id.ok()) return id.status();
  if (req.length() > (uint64_t{256} << 20)) {
    return absl::InvalidArgumentError("chunk longer than 256 MiB");
  }
  auto views = options_.store->Get({*id}, 0);
  if (!views.ok()) return views.status();
  if (!(*views)[0])
    return absl::NotFoundError("object not in this node's store");
  const ObjectView& v = *(*views)[0];
  uint64_t total = v.data_size + v.metadata_size;
  if (req.offset() > total) {
    options_.store->Release(*id).IgnoreError();
    return absl::OutOfRangeError("offset past the object's end");
  }
  uint64_t n = std::min<uint64_t>(req.length(), total - req.offset());
  // A ReadObjectChunkReply by hand: the sizes, then the chunk's tag and
  // length, then the chunk itself as a slice of the arena. Data and
  // metadata are contiguous there. The pin is released with the slice.
  std::string head;
  {
    google::protobuf::io::StringOutputStream raw(&head);
    google::protobuf::io::CodedOutputStream out(&raw);
    out.WriteTag((1 << 3) | 0);
    out.WriteVarint64(v.data_size);
    out.WriteTag((2 << 3) | 0);
    out.WriteVarint64(v.metadata_size);
    out.WriteTag((3 << 3) | 2);
    out.WriteVarint32(static_cast<uint32_t>(n));
  }
  struct Pin {
    ObjectStoreClient* store;
    ObjectId id;
  };
  auto* pin = new Pin{options_.store, *id};
  grpc::Slice slices[2] = {grpc::Slice(head),
                           grpc::Slice(
                               const_cast<uint8_t*>(v.data) + req.offset(), n,
                               [](void* p) {
                                 auto* pin = static_cast<Pin*>(p);
                                 pin->store->Release(pin->id).IgnoreError();
                                 delete pin;
                               },
                               pin)};
  *reply = grpc::ByteBuffer(slices, 2);
  if (bytes_sent_) bytes_sent_->Increment(static_cast<double>(n));
  return absl::OkStatus();
}

}  // namespace loom::raylet
