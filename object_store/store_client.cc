#include "object_store/store_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "object_store/framing.h"
#include "proto/object_store.pb.h"

namespace loom {
namespace {

// Reads one whole frame (blocking); a descriptor that arrives with it is
// stored in *fd.
absl::StatusOr<std::string> ReadFrame(int sock, int* fd) {
  std::string data;
  char buf[65536];
  uint32_t need = 0;
  while (true) {
    if (data.size() >= 4) {
      need = FrameLength(data.data());
      if (need > kMaxFrameBytes) return absl::DataLossError("oversized reply");
      if (data.size() >= 4 + need) break;
    }
    size_t want = data.size() < 4 ? 4 - data.size() : 4 + need - data.size();
    ssize_t n = RecvWithFd(sock, buf, std::min(want, sizeof(buf)), fd);
    if (n <= 0) {
      return absl::UnavailableError(
          n == 0 ? "object store closed the connection"
                 : absl::StrCat("object store read: ", std::strerror(errno)));
    }
    data.append(buf, n);
  }
  return data.substr(4, need);
}

absl::Status StatusOf(const rpc::StoreReply& reply) {
  if (reply.code() == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(reply.code()),
                      reply.message());
}

}  // namespace

absl::StatusOr<std::unique_ptr<ObjectStoreClient>> ObjectStoreClient::Connect(
    const std::string& socket_path) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("object store socket path too long");
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the object store at ", socket_path,
                     ": ", std::strerror(err)));
  }
  int arena_fd = -1;
  auto frame = ReadFrame(fd, &arena_fd);
  rpc::StoreReply hello;
  if (!frame.ok() || !hello.ParseFromString(*frame) || arena_fd < 0) {
    if (arena_fd >= 0) close(arena_fd);
    close(fd);
    return absl::UnavailableError("object store sent no arena on connect");
  }
  auto arena = Arena::Map(arena_fd, hello.arena_size());
  if (!arena.ok()) {
    close(fd);
    return arena.status();
  }
  return std::unique_ptr<ObjectStoreClient>(
      new ObjectStoreClient(fd, std::move(*arena)));
}

ObjectStoreClient::~ObjectStoreClient() { close(fd_); }

absl::StatusOr<std::unique_ptr<rpc::StoreReply>> ObjectStoreClient::Call(
    rpc::StoreRequest& req) {
  absl::MutexLock lock(&mu_);
  req.set_seq(++seq_);
  if (!SendWithFd(fd_, Frame(req), -1)) {
    return absl::UnavailableError("object store connection lost");
  }
  int stray = -1;
  auto frame = ReadFrame(fd_, &stray);
  if (stray >= 0) close(stray);
  if (!frame.ok()) return frame.status();
  auto reply = std::make_unique<rpc::StoreReply>();
  if (!reply->ParseFromString(*frame) || reply->seq() != req.seq()) {
    return absl::DataLossError("object store reply does not match the request");
  }
  return reply;
}

absl::StatusOr<uint8_t*> ObjectStoreClient::Create(const ObjectId& id,
                                                   uint64_t data_size,
                                                   uint64_t metadata_size,
                                                   bool primary,
                                                   const std::string& owner) {
  rpc::StoreRequest req;
  auto* c = req.mutable_create();
  c->set_object_id(id.Binary());
  c->set_data_size(data_size);
  c->set_metadata_size(metadata_size);
  c->set_primary(primary);
  c->set_owner(owner.empty() ? owner_ : owner);
  auto reply = Call(req);
  if (!reply.ok()) return reply.status();
  if (auto s = StatusOf(**reply); !s.ok()) return s;
  return arena_->base() + (*reply)->created().offset();
}

absl::StatusOr<std::vector<std::optional<ObjectView>>> ObjectStoreClient::Get(
    const std::vector<ObjectId>& ids, int64_t timeout_ms) {
  rpc::StoreRequest req;
  for (const auto& id : ids) req.mutable_get()->add_object_ids(id.Binary());
  req.mutable_get()->set_timeout_ms(timeout_ms);
  auto reply = Call(req);
  if (!reply.ok()) return reply.status();
  if (auto s = StatusOf(**reply); !s.ok()) return s;
  std::vector<std::optional<ObjectView>> out;
  for (const auto& o : (*reply)->objects()) {
    if (!o.found()) {
      out.push_back(std::nullopt);
      continue;
    }
    const uint8_t* base = arena_->base() + o.offset();
    if (!arena_->Contains(base, o.data_size() + o.metadata_size())) {
      return absl::DataLossError(
          "object store returned an offset outside the arena");
    }
    out.push_back(ObjectView{base, o.data_size(), base + o.data_size(),
                             o.metadata_size()});
  }
  return out;
}

#define LOOM_STORE_SIMPLE_CALL(Method, field)                  \
  absl::Status ObjectStoreClient::Method(const ObjectId& id) { \
    rpc::StoreRequest req;                                     \
    req.mutable_##field()->set_object_id(id.Binary());         \
    auto reply = Call(req);                                    \
    if (!reply.ok()) return reply.status();                    \
    return StatusOf(**reply);                                  \
  }
LOOM_STORE_SIMPLE_CALL(Seal, seal)
LOOM_STORE_SIMPLE_CALL(Abort, abort)
LOOM_STORE_SIMPLE_CALL(Release, release)
LOOM_STORE_SIMPLE_CALL(Delete, delete_)
#undef LOOM_STORE_SIMPLE_CALL

absl::StatusOr<std::vector<ObjectId>> ObjectStoreClient::DeleteOwnedBy(
    const std::string& owner, const JobId& job) {
  rpc::StoreRequest req;
  req.mutable_delete_owned()->set_owner(owner);
  req.mutable_delete_owned()->set_job_id(job.Binary());
  auto reply = Call(req);
  if (!reply.ok()) return reply.status();
  if (auto s = StatusOf(**reply); !s.ok()) return s;
  std::vector<ObjectId> deleted;
  for (const auto& b : (*reply)->deleted()) {
    auto id = ObjectId::FromBinary(b);
    if (!id.ok()) return id.status();
    deleted.push_back(*id);
  }
  return deleted;
}

absl::StatusOr<StoreUsage> ObjectStoreClient::Usage() {
  rpc::StoreRequest req;
  req.mutable_stats();
  auto reply = Call(req);
  if (!reply.ok()) return reply.status();
  StoreUsage usage;
  usage.capacity = (*reply)->capacity();
  usage.used = (*reply)->used();
  usage.objects = (*reply)->num_objects();
  usage.pinned = (*reply)->num_pinned();
  usage.spilled_bytes = (*reply)->spilled_bytes();
  usage.spilled_objects = (*reply)->spilled_objects();
  for (const auto& l : (*reply)->largest()) {
    auto id = ObjectId::FromBinary(l.object_id());
    if (!id.ok()) continue;
    usage.largest.push_back(
        StoreObjectInfo{*id, l.size(), l.owner(), l.primary(), l.pinned()});
  }
  return usage;
}

}  // namespace loom
