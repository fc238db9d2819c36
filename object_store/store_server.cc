#include "object_store/store_server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "object_store/framing.h"
#include "proto/object_store.pb.h"

namespace loom {
namespace {

constexpr uint64_t kWakeTag = ~uint64_t{0};
constexpr uint64_t kListenTag = 0;
constexpr uint64_t kIoTag = ~uint64_t{0} - 1;

void SetError(rpc::StoreReply* reply, const absl::Status& s) {
  reply->set_code(static_cast<int>(s.code()));
  reply->set_message(std::string(s.message()));
}

absl::StatusOr<ObjectId> ParseObjectId(const std::string& b) {
  auto id = ObjectId::FromBinary(b);
  if (!id.ok()) return id.status();
  return ObjectId(*id);
}

uint64_t ReadUint(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (key.empty() || line.rfind(key, 0) == 0) {
      try {
        return std::stoull(line.substr(key.size()));
      } catch (const std::exception&) {
        return 0;  // "max", or unreadable: no limit from this source
      }
    }
  }
  return 0;
}

}  // namespace

uint64_t AvailableMemoryBytes() {
  uint64_t available = ReadUint("/proc/meminfo", "MemAvailable:") * 1024;
  uint64_t cgroup = ReadUint("/sys/fs/cgroup/memory.max", "");
  if (cgroup > 0 && cgroup < available) available = cgroup;
  if (available == 0) available = uint64_t{1} << 30;
  return available;
}

uint64_t DefaultObjectStoreBytes() {
  return AlignUp(AvailableMemoryBytes() * 3 / 10);
}

absl::StatusOr<std::unique_ptr<ObjectStoreServer>> ObjectStoreServer::Start(
    Options options) {
  sockaddr_un addr{};
  if (options.socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket path '", options.socket_path, "' is longer than ",
        sizeof(addr.sun_path) - 1, " bytes: use a shorter session root"));
  }
  auto arena = Arena::Create(options.capacity);
  if (!arena.ok()) return arena.status();
  std::unique_ptr<ObjectStoreServer> server(
      new ObjectStoreServer(options, std::move(*arena)));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, options.socket_path.c_str(),
               sizeof(addr.sun_path) - 1);
  unlink(options.socket_path.c_str());
  mode_t old = umask(0077);  // the socket is created 0600
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old);
  if (rc == 0) chmod(options.socket_path.c_str(), 0600);
  if (rc != 0 || listen(fd, 128) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat(
        "object store socket ", options.socket_path, ": ", std::strerror(err)));
  }
  server->listen_fd_ = fd;
  server->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  server->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{EPOLLIN, {.u64 = kListenTag}};
  epoll_ctl(server->epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  epoll_event wake{EPOLLIN, {.u64 = kWakeTag}};
  epoll_ctl(server->epoll_fd_, EPOLL_CTL_ADD, server->wake_fd_, &wake);
  server->io_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event io{EPOLLIN, {.u64 = kIoTag}};
  epoll_ctl(server->epoll_fd_, EPOLL_CTL_ADD, server->io_fd_, &io);
  server->PublishStats();
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  return server;
}

ObjectStoreServer::ObjectStoreServer(Options options,
                                     std::unique_ptr<Arena> arena)
    : options_(std::move(options)),
      arena_(std::move(arena)),
      store_({.capacity = arena_->size(),
              .base = arena_->base(),
              .spill_dir = options_.spill_dir,
              .on_evict = options_.on_evict,
              .run_io = [this](auto job) { RunIo(std::move(job)); }}),
      io_(std::make_unique<WorkQueue>("store-io", 2)) {}

ObjectStoreServer::~ObjectStoreServer() {
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  io_.reset();  // IO in flight finishes (the arena outlives it)
  for (auto& [id, c] : conns_) close(c->fd);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (io_fd_ >= 0) close(io_fd_);
  unlink(options_.socket_path.c_str());
}

LocalStore::Stats ObjectStoreServer::stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

void ObjectStoreServer::PublishStats() {
  absl::MutexLock lock(&stats_mu_);
  stats_ = store_.stats();
  // Read by the heartbeat twice a second; copied only when it changed.
  if (store_.job_bytes_version() != job_bytes_version_) {
    job_bytes_ = store_.job_bytes();
    job_bytes_version_ = store_.job_bytes_version();
  }
}

void ObjectStoreServer::SetJobLimits(
    absl::flat_hash_map<JobId, uint64_t> limits) {
  absl::MutexLock lock(&limits_mu_);
  if (limits == limits_) return;  // most heartbeats change nothing
  limits_ = limits;
  new_limits_ = std::move(limits);
}

absl::flat_hash_map<JobId, uint64_t> ObjectStoreServer::job_bytes() const {
  absl::MutexLock lock(&stats_mu_);
  return job_bytes_;
}

void ObjectStoreServer::RunIo(std::function<std::function<void()>()> job) {
  io_->Post([this, job = std::move(job)] {
    std::function<void()> done = job();
    {
      absl::MutexLock lock(&io_mu_);
      completed_.push_back(std::move(done));
    }
    uint64_t one = 1;
    (void)write(io_fd_, &one, sizeof(one));
  });
}

void ObjectStoreServer::RunCompleted() {
  uint64_t count;
  (void)read(io_fd_, &count, sizeof(count));
  std::deque<std::function<void()>> done;
  {
    absl::MutexLock lock(&io_mu_);
    done.swap(completed_);
  }
  for (const auto& fn : done) store_.Complete(fn);
}

void ObjectStoreServer::Run() {
  epoll_event events[64];
  while (true) {
    int timeout_ms = -1;
    if (auto next = store_.NextDeadline()) {
      timeout_ms = static_cast<int>(std::max<int64_t>(
          0, absl::ToInt64Milliseconds(*next - absl::Now()) + 1));
    }
    int n = epoll_wait(epoll_fd_, events, 64, timeout_ms);
    if (n < 0 && errno != EINTR) return;
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) return;
      if (tag == kIoTag) {
        RunCompleted();
        continue;
      }
      if (tag == kListenTag) {
        Accept();
        continue;
      }
      auto it = conns_.find(tag);
      if (it == conns_.end()) continue;
      if (events[i].events & EPOLLOUT) Flush(*it->second);
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        OnReadable(*it->second);
    }
    store_.ExpireWaiters(absl::Now());
    PublishStats();
  }
}

void ObjectStoreServer::Accept() {
  while (true) {
    int fd =
        accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != getuid() && cred.uid != 0)) {
      close(fd);  // another user's process: refused
      continue;
    }
    auto conn = std::make_unique<Conn>();
    conn->fd = fd;
    conn->id = next_client_++;
    epoll_event ev{EPOLLIN, {.u64 = conn->id}};
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    rpc::StoreReply hello;
    hello.set_arena_size(arena_->size());
    // The hello is small: it goes out whole or the client is broken.
    if (!SendWithFd(fd, Frame(hello), arena_->fd())) {
      close(fd);
      continue;
    }
    conns_[conn->id] = std::move(conn);
  }
}

void ObjectStoreServer::OnReadable(Conn& conn) {
  ClientId id = conn.id;
  char buf[65536];
  while (true) {
    ssize_t n = read(conn.fd, buf, sizeof(buf));
    if (n > 0) {
      conn.in.append(buf, n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    return Close(id);  // EOF or error: the client is gone
  }
  size_t pos = 0;
  while (conn.in.size() - pos >= 4) {
    uint32_t len = FrameLength(conn.in.data() + pos);
    if (len > kMaxFrameBytes) {
      rpc::StoreReply reply;
      SetError(&reply, absl::InvalidArgumentError(absl::StrCat(
                           "frame of ", len, " bytes exceeds ", kMaxFrameBytes,
                           "; closing the connection")));
      SendWithFd(conn.fd, Frame(reply), -1);
      return Close(id);  // cannot find the next frame boundary
    }
    if (conn.in.size() - pos - 4 < len) break;
    rpc::StoreRequest req;
    if (!req.ParseFromArray(conn.in.data() + pos + 4, static_cast<int>(len))) {
      rpc::StoreReply reply;
      SetError(&reply, absl::InvalidArgumentError("malformed store request"));
      Reply(id, reply);
    } else {
      Handle(conn, req);
    }
    pos += 4 + len;
    if (!conns_.contains(id)) return;
  }
  conn.in.erase(0, pos);
}

void ObjectStoreServer::Handle(Conn& conn, const rpc::StoreRequest& req) {
  ClientId client = conn.id;
  rpc::StoreReply reply;
  reply.set_seq(req.seq());
  auto fill = [](rpc::StoreObject* o, const ObjectInfo& info) {
    o->set_found(true);
    o->set_offset(info.offset);
    o->set_data_size(info.data_size);
    o->set_metadata_size(info.metadata_size);
  };
  auto with_id = [&](const std::string& b,
                     const std::function<absl::Status(const ObjectId&)>& fn) {
    auto id = ParseObjectId(b);
    SetError(&reply, id.ok() ? fn(*id) : id.status());
  };
  switch (req.op_case()) {
    case rpc::StoreRequest::kCreate: {
      const auto& c = req.create();
      auto id = ParseObjectId(c.object_id());
      if (!id.ok()) {
        SetError(&reply, id.status());
        break;
      }
      {
        absl::MutexLock lock(&limits_mu_);
        if (new_limits_) {
          store_.SetJobLimits(*std::move(new_limits_));
          new_limits_.reset();
        }
      }
      // Answered now, or once spills have made room.
      store_.Create(*id, c.data_size(), c.metadata_size(), client, c.primary(),
                    c.owner(),
                    [this, client, seq = req.seq(),
                     fill](absl::StatusOr<ObjectInfo> info) {
                      rpc::StoreReply created;
                      created.set_seq(seq);
                      if (info.ok()) fill(created.mutable_created(), *info);
                      SetError(&created, info.status());
                      Reply(client, created);
                    });
      return;
    }
    case rpc::StoreRequest::kSeal:
      with_id(req.seal().object_id(),
              [&](const ObjectId& id) { return store_.Seal(id, client); });
      break;
    case rpc::StoreRequest::kAbort:
      with_id(req.abort().object_id(),
              [&](const ObjectId& id) { return store_.Abort(id, client); });
      break;
    case rpc::StoreRequest::kRelease:
      with_id(req.release().object_id(),
              [&](const ObjectId& id) { return store_.Release(id, client); });
      break;
    case rpc::StoreRequest::kDelete:
      with_id(req.delete_().object_id(),
              [&](const ObjectId& id) { return store_.Delete(id); });
      break;
    case rpc::StoreRequest::kDeleteOwned: {
      const auto& d = req.delete_owned();
      auto job = JobId::FromBinary(d.job_id());
      if (!job.ok()) {
        SetError(&reply, job.status());
        break;
      }
      for (const auto& id : store_.DeleteOwnedBy(d.owner(), JobId(*job)))
        reply.add_deleted(id.Binary());
      break;
    }
    case rpc::StoreRequest::kStats: {
      auto s = store_.stats();
      reply.set_capacity(s.capacity);
      reply.set_used(s.used);
      reply.set_num_objects(s.objects);
      reply.set_num_pinned(s.pinned);
      reply.set_spilled_bytes(s.spilled_bytes);
      reply.set_spilled_objects(s.spilled_objects);
      for (const auto& o : store_.Largest(10)) {
        auto* l = reply.add_largest();
        l->set_object_id(o.id.Binary());
        l->set_size(o.size);
        l->set_owner(o.owner);
        l->set_primary(o.primary);
        l->set_pinned(o.pinned);
      }
      break;
    }
    case rpc::StoreRequest::kGet: {
      std::vector<ObjectId> ids;
      for (const auto& b : req.get().object_ids()) {
        auto id = ParseObjectId(b);
        if (!id.ok()) {
          SetError(&reply, id.status());
          return Reply(client, reply);
        }
        ids.push_back(*id);
      }
      int64_t t = req.get().timeout_ms();
      absl::Time deadline =
          t < 0 ? absl::InfiniteFuture() : absl::Now() + absl::Milliseconds(t);
      uint64_t seq = req.seq();
      store_.Get(
          ids, client, deadline,
          [this, client, seq, fill](std::vector<std::optional<ObjectInfo>> r) {
            rpc::StoreReply get_reply;
            get_reply.set_seq(seq);
            for (const auto& info : r) {
              auto* o = get_reply.add_objects();
              if (info) fill(o, *info);
            }
            Reply(client, get_reply);
          });
      return;
    }
    default:
      SetError(&reply, absl::InvalidArgumentError(
                           "store request without an operation"));
  }
  Reply(client, reply);
}

void ObjectStoreServer::Reply(ClientId client, const rpc::StoreReply& reply) {
  auto it = conns_.find(client);
  if (it == conns_.end()) return;
  it->second->out += Frame(reply);
  Flush(*it->second);
}

void ObjectStoreServer::Flush(Conn& conn) {
  while (!conn.out.empty()) {
    ssize_t n = send(conn.fd, conn.out.data(), conn.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      conn.out.erase(0, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return;  // broken: the read side will see it and close
  }
  epoll_event ev{
      static_cast<uint32_t>(EPOLLIN | (conn.out.empty() ? 0 : EPOLLOUT)),
      {.u64 = conn.id}};
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &ev);
}

void ObjectStoreServer::Close(ClientId client) {
  auto it = conns_.find(client);
  if (it == conns_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second->fd, nullptr);
  close(it->second->fd);
  conns_.erase(it);
  store_.Disconnect(client);
}

}  // namespace loom
