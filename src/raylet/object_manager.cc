#include "src/raylet/object_manager.h"

#include <atomic>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "src/common/rpc.h"

namespace loom::raylet {
namespace {

bool Present(ObjectStoreClient* store, const ObjectId& id) {
  auto views = store->Get({id}, 0);
  if (!views.ok() || !(*views)[0]) return false;
  store->Release(id).IgnoreError();
  return true;
}

}  // namespace

struct ObjectManager::Gcs {
  std::unique_ptr<rpc::Gcs::Stub> stub;
};

ObjectManager::ObjectManager(Options options) : options_(std::move(options)) {
  if (!options_.gcs_address.empty()) {
    gcs_ = std::make_unique<Gcs>(
        Gcs{rpc::Gcs::NewStub(rpc::MakeChannel(options_.gcs_address))});
  }
}

ObjectManager::~ObjectManager() = default;

void ObjectManager::Pull(const ObjectId& id, const NodeId& source,
                         std::function<void(absl::Status)> done) {
  if (Present(options_.store, id)) return done(absl::OkStatus());
  auto address = options_.address_of(source);
  if (!address) {
    return done(absl::UnavailableError(
        absl::StrCat("object ", id.Hex(), " lives on node ", source.Hex(),
                     ", which is not alive in the cluster view")));
  }
  {
    absl::MutexLock lock(&mu_);
    auto& waiters = pulls_[id];
    waiters.push_back(std::move(done));
    if (waiters.size() > 1) return;  // joins the transfer already running
  }
  std::thread([this, id, address = *address] {
    absl::Status s = Transfer(id, address);
    std::vector<std::function<void(absl::Status)>> waiters;
    {
      absl::MutexLock lock(&mu_);
      waiters = std::move(pulls_[id]);
      pulls_.erase(id);
    }
    for (auto& w : waiters) w(s);
  }).detach();
}

absl::Status ObjectManager::Transfer(const ObjectId& id,
                                     const std::string& address) {
  auto stub = rpc::Raylet::NewStub(rpc::MakeChannel(address));
  auto read = [&](uint64_t offset, uint64_t length,
                  rpc::ReadObjectChunkReply* reply) {
    grpc::ClientContext ctx;
    rpc::SetTimeout(&ctx, 60000);
    rpc::ReadObjectChunkRequest req;
    req.set_object_id(id.Binary());
    req.set_offset(offset);
    req.set_length(length);
    return rpc::ToAbsl(stub->ReadObjectChunk(&ctx, req, reply));
  };
  auto failed = [&](const absl::Status& s) {
    return absl::Status(
        s.code(), absl::StrCat("pulling object ", id.Hex(), " from ", address,
                               " failed: ", s.message()));
  };
  rpc::ReadObjectChunkReply first;
  absl::Status s = read(0, options_.chunk_bytes, &first);
  if (!s.ok()) return failed(s);
  uint64_t total = first.data_size() + first.metadata_size();
  auto dst =
      options_.store->Create(id, first.data_size(), first.metadata_size(),
                             /*primary=*/false);
  if (!dst.ok()) {
    if (dst.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::OkStatus();  // another pull of this object got here first
    }
    return failed(dst.status());
  }
  std::memcpy(*dst, first.chunk().data(), first.chunk().size());
  // The rest, several chunks in flight, each written into place.
  std::atomic<uint64_t> next{first.chunk().size()};
  absl::Mutex err_mu;
  absl::Status error;
  std::vector<std::thread> workers;
  for (int i = 0; i < options_.chunks_in_flight; ++i) {
    workers.emplace_back([&] {
      while (true) {
        uint64_t offset = next.fetch_add(options_.chunk_bytes);
        if (offset >= total) return;
        uint64_t length =
            std::min<uint64_t>(options_.chunk_bytes, total - offset);
        rpc::ReadObjectChunkReply reply;
        absl::Status cs = read(offset, length, &reply);
        if (cs.ok() && reply.chunk().size() != length) {
          cs = absl::DataLossError("short chunk");
        }
        if (!cs.ok()) {
          absl::MutexLock lock(&err_mu);
          error = cs;
          next = total;  // stop the others
          return;
        }
        std::memcpy(*dst + offset, reply.chunk().data(), length);
      }
    });
  }
  for (auto& w : workers) w.join();
  if (!error.ok()) {
    options_.store->Abort(id).IgnoreError();
    return failed(error);
  }
  absl::Status sealed = options_.store->Seal(id);
  if (sealed.ok()) ReportCopy(id, total, /*added=*/true);
  return sealed;
}

void ObjectManager::ReportCopy(const ObjectId& id, uint64_t size, bool added) {
  if (!gcs_) return;
  grpc::ClientContext ctx;
  rpc::SetTimeout(&ctx, 2000);
  rpc::UpdateObjectLocationsRequest req;
  auto* u = req.add_updates();
  u->set_object_id(id.Binary());
  u->set_node_id(options_.self.Binary());
  u->set_added(added);
  u->set_size(static_cast<int64_t>(size));
  rpc::UpdateObjectLocationsReply reply;
  gcs_->stub->UpdateObjectLocations(&ctx, req,
                                    &reply);  // soft state: best effort
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
  std::thread([this, ids, named] {
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
      grpc::ClientContext ctx;
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
      auto address = options_.address_of(node);
      if (!address) continue;
      auto stub = rpc::Raylet::NewStub(rpc::MakeChannel(*address));
      grpc::ClientContext ctx;
      rpc::SetTimeout(&ctx, 5000);
      rpc::FreeObjectsReply reply;
      stub->FreeObjects(&ctx, r, &reply);  // a node that is gone has nothing
    }
  }).detach();
  return absl::OkStatus();
}

absl::Status ObjectManager::ReadChunk(const rpc::ReadObjectChunkRequest& req,
                                      rpc::ReadObjectChunkReply* reply) {
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
  absl::Status s = absl::OkStatus();
  if (req.offset() > total) {
    s = absl::OutOfRangeError("offset past the object's end");
  } else {
    uint64_t n = std::min<uint64_t>(req.length(), total - req.offset());
    reply->set_data_size(v.data_size);
    reply->set_metadata_size(v.metadata_size);
    // data and metadata are contiguous in the arena
    reply->set_chunk(reinterpret_cast<const char*>(v.data) + req.offset(), n);
  }
  options_.store->Release(*id).IgnoreError();
  return s;
}

}  // namespace loom::raylet
