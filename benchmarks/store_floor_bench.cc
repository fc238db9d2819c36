// Object store floors and cross-process figures:
//   memcpy_gigabytes              memcpy of 100 MiB between warm buffers, the
//                                 bound for single_client_put_gigabytes
//   unix_socket_roundtrip_floor   one byte there and back over a unix socket
//                                 to another process: the bound for a get
//   get_latency_1MiB, _100MiB, _1GiB
//                                 the store's get of an object another process
//                                 wrote and this one has not held yet: a view
//                                 into the mapped arena, pinned (median over
//                                 distinct objects); no byte is read
//   get_latency_1GiB_read_every_page
//                                 the same get, then one byte read from every
//                                 4 KiB page of the view (each checked): what
//                                 a reader that touches the whole object pays
//   transfer_gigabytes            a 1 GiB object pulled by one raylet from
//                                 another over loopback, into a fresh
//                                 raylet's store (pages never touched before),
//                                 every byte checked after each pull
//   transfer_gigabytes_warm_pages the same pulls into one raylet, the copy
//                                 freed between pulls, so its pages are reused
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "benchmarks/bench_cluster.h"
#include "benchmarks/bench_util.h"
#include "object_store/store_client.h"
#include "proto/raylet.grpc.pb.h"
#include "runtime/local_cluster.h"
#include "src/common/process.h"
#include "src/common/rpc.h"

namespace loom::bench {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what);
}

std::vector<Result> RunMemcpy() {
  const size_t size = 100 << 20;
  std::vector<uint8_t> src(size, 1), dst(size, 2);
  double rate = MedianOfRuns([&](double seconds) {
    return RateFor(seconds, [&] {
      std::memcpy(dst.data(), src.data(), size);
      return int64_t{1};
    });
  });
  return {{"memcpy_gigabytes", rate * size / 1e9, "GB/s"}};
}

std::vector<Result> RunSocketFloor() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) Fail("socketpair");
  pid_t child = fork();
  if (child < 0) Fail("fork");
  if (child == 0) {  // echo until the other end closes; nothing else
    close(fds[0]);
    char b;
    while (read(fds[1], &b, 1) == 1) {
      if (write(fds[1], &b, 1) != 1) break;
    }
    _exit(0);
  }
  close(fds[1]);
  double rate = MedianOfRuns([&](double seconds) {
    return RateFor(seconds, [&] {
      for (int i = 0; i < 100; ++i) {
        char b = 'x';
        if (write(fds[0], &b, 1) != 1 || read(fds[0], &b, 1) != 1) {
          Fail("echo");
        }
      }
      return int64_t{100};
    });
  });
  close(fds[0]);
  waitpid(child, nullptr, 0);
  return {{"unix_socket_roundtrip_floor", 1e6 / rate, "us"}};
}

ObjectId NewId() { return ObjectId::ForPut(TaskId::FromRandom(), 1); }

// Writes objects of `size` bytes with the given ids into the store at
// `socket` from another process (loom-bench --store-writer), which exits.
void WriteFromAnotherProcess(const std::string& socket, uint64_t size,
                             const std::vector<ObjectId>& ids) {
  SpawnOptions opts;
  opts.argv = {"/proc/self/exe", "--store-writer", socket,
               std::to_string(size)};
  for (const auto& id : ids) opts.argv.push_back(id.Hex());
  auto pid = Spawn(opts);
  if (!pid.ok()) Fail(std::string(pid.status().message()));
  int status = 0;
  waitpid(*pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) Fail("store writer");
}

// The byte RunStoreWriter fills the index-th object it writes with.
uint8_t WriterByte(size_t index) { return static_cast<uint8_t>(index + 2); }

// Reads one byte of every page of `view` and checks it: each page's first
// touch in this process is paid here.
void ReadEveryPage(const ObjectView& view, uint8_t want) {
  constexpr size_t kPage = 4096;
  for (size_t off = 0; off < view.data_size; off += kPage) {
    if (*static_cast<const volatile uint8_t*>(view.data + off) != want) {
      Fail("byte " + std::to_string(off) + " of the object is wrong");
    }
  }
}

// The median microseconds of a get of each of `count` objects of `size`
// bytes that another process wrote; with read_pages, each get also reads
// every page of what it returns.
double GetLatencyUs(uint64_t size, int count, bool read_pages = false) {
  // Room to spare: below the spilling watermark, every object stays put.
  PrivateCluster cluster(1, static_cast<int64_t>(size * count * 3 / 2));
  std::string socket = cluster.session_dir() + "/sockets/store";
  std::vector<ObjectId> ids;
  for (int i = 0; i < count; ++i) ids.push_back(NewId());
  WriteFromAnotherProcess(socket, size, ids);
  absl::SleepFor(absl::Milliseconds(200));  // the writer's exit settles
  auto client = ObjectStoreClient::Connect(socket);
  if (!client.ok()) Fail(std::string(client.status().message()));
  std::vector<double> us;
  for (size_t i = 0; i < ids.size(); ++i) {
    int64_t start = NowNs();
    auto views = (*client)->Get({ids[i]}, 1000);
    if (!views.ok() || !(*views)[0] || (*views)[0]->data_size != size) {
      Fail("object missing");
    }
    if (read_pages) ReadEveryPage(*(*views)[0], WriterByte(i));
    us.push_back(SecondsSince(start) * 1e6);
    (*client)->Release(ids[i]).IgnoreError();
  }
  return Median(us);
}

std::vector<Result> RunGetLatency() {
  return {{"get_latency_1MiB", GetLatencyUs(1 << 20, 101), "us"},
          {"get_latency_100MiB", GetLatencyUs(100 << 20, 31), "us"},
          {"get_latency_1GiB", GetLatencyUs(uint64_t{1} << 30, 9), "us"},
          {"get_latency_1GiB_read_every_page",
           GetLatencyUs(uint64_t{1} << 30, 9, /*read_pages=*/true), "us"}};
}

NodeId NodeOf(rpc::Raylet::Stub* raylet) {
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 5000);
  rpc::GetNodeStatsReply reply;
  if (!raylet->GetNodeStats(&ctx, rpc::GetNodeStatsRequest(), &reply).ok()) {
    Fail("GetNodeStats");
  }
  auto id = NodeId::FromBinary(reply.node().node_id());
  if (!id.ok()) Fail("bad node id");
  return *id;
}

// Pulls `id` from `source` into the raylet at `raylet_address`; returns the
// seconds the pull took.
double PullOnce(const std::string& raylet_address, const ObjectId& id,
                const NodeId& source) {
  auto raylet = rpc::Raylet::NewStub(rpc::MakeChannel(raylet_address));
  rpc::PullObjectRequest pull;
  pull.set_object_id(id.Binary());
  pull.set_source_node_id(source.Binary());
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 120000);
  rpc::PullObjectReply pulled;
  int64_t start = NowNs();
  grpc::Status s = raylet->PullObject(&ctx, pull, &pulled);
  double seconds = SecondsSince(start);
  if (!s.ok()) Fail("pull: " + s.error_message());
  return seconds;
}

// Every byte of the copy of `id` in the store of `session_dir` is `want`.
void CheckCopy(const std::string& session_dir, const ObjectId& id,
               uint64_t size, uint8_t want) {
  auto client = ObjectStoreClient::Connect(session_dir + "/sockets/store");
  if (!client.ok()) Fail(std::string(client.status().message()));
  auto views = (*client)->Get({id}, 5000);
  if (!views.ok() || !(*views)[0] || (*views)[0]->data_size != size) {
    Fail("the pulled copy is missing or has the wrong size");
  }
  const uint8_t* data = (*views)[0]->data;
  std::vector<uint8_t> pattern(1 << 20, want);
  for (uint64_t off = 0; off < size; off += pattern.size()) {
    size_t n = std::min<uint64_t>(pattern.size(), size - off);
    if (std::memcmp(data + off, pattern.data(), n) != 0) {
      Fail("the pulled copy differs from the source near byte " +
           std::to_string(off));
    }
  }
  (*client)->Release(id).IgnoreError();
}

void FreeLocalCopy(const std::string& raylet_address, const ObjectId& id) {
  auto raylet = rpc::Raylet::NewStub(rpc::MakeChannel(raylet_address));
  rpc::FreeObjectsRequest drop;
  drop.add_object_ids(id.Binary());
  drop.set_local_only(true);
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 5000);
  rpc::FreeObjectsReply dropped;
  if (!raylet->FreeObjects(&ctx, drop, &dropped).ok()) Fail("FreeObjects");
}

// A raylet joining `head` under a fresh session root, stopped on scope exit.
class JoinedNode {
 public:
  JoinedNode(ClusterOptions options, const std::string& head) {
    options.session_root = root_.path();
    options.head_address = head;
    auto started = StartCluster(options);
    if (!started.ok()) Fail(std::string(started.status().message()));
    handle_ = *started;
  }
  ~JoinedNode() { StopCluster(handle_); }
  const ClusterHandle& handle() const { return handle_; }

 private:
  TempDir root_;
  ClusterHandle handle_;
};

std::vector<Result> RunTransfer() {
  const uint64_t size = uint64_t{1} << 30;
  TempDir head_root;
  ClusterOptions options;
  options.session_root = head_root.path();
  options.num_cpus = 1;
  options.object_store_memory = 2 * size;
  auto h = StartCluster(options);
  if (!h.ok()) Fail(std::string(h.status().message()));
  std::vector<double> cold, warm;
  try {
    // The object, written into the head node's store by another process.
    ObjectId id = NewId();
    WriteFromAnotherProcess(h->session_dir + "/sockets/store", size, {id});
    auto head_raylet =
        rpc::Raylet::NewStub(rpc::MakeChannel(h->raylet_address));
    NodeId source = NodeOf(head_raylet.get());
    // Cold: each pull lands in a raylet that has never written its arena.
    for (int i = 0; i < kRuns; ++i) {
      JoinedNode far(options, h->gcs_address);
      cold.push_back(size / PullOnce(far.handle().raylet_address, id, source) /
                     1e9);
      CheckCopy(far.handle().session_dir, id, size, WriterByte(0));
    }
    // Warm: one raylet, its copy freed between pulls; the first warms up.
    JoinedNode far(options, h->gcs_address);
    for (int i = 0; i <= kRuns; ++i) {
      double seconds = PullOnce(far.handle().raylet_address, id, source);
      if (i > 0) warm.push_back(size / seconds / 1e9);
      CheckCopy(far.handle().session_dir, id, size, WriterByte(0));
      FreeLocalCopy(far.handle().raylet_address, id);
    }
  } catch (...) {
    StopCluster(*h);
    throw;
  }
  StopCluster(*h);
  return {{"transfer_gigabytes", Median(cold), "GB/s"},
          {"transfer_gigabytes_warm_pages", Median(warm), "GB/s"}};
}

}  // namespace

int RunStoreWriter(int argc, char** argv) {
  // argv: socket size id...
  uint64_t size = 0;
  if (argc < 3 || !absl::SimpleAtoi(argv[1], &size)) return 2;
  auto client = ObjectStoreClient::Connect(argv[0]);
  if (!client.ok()) return 1;
  for (int i = 2; i < argc; ++i) {
    auto id = ObjectId::FromBinary(absl::HexStringToBytes(argv[i]));
    if (!id.ok()) return 2;
    auto dst = (*client)->Create(*id, size, 0);
    if (!dst.ok()) return 1;
    std::memset(*dst, WriterByte(i - 2), size);
    if (!(*client)->Seal(*id).ok()) return 1;
  }
  return 0;
}

void AddStoreFloorBenchmarks(std::vector<Benchmark>* out) {
  out->push_back({{"memcpy_gigabytes"}, RunMemcpy});
  out->push_back({{"unix_socket_roundtrip_floor"}, RunSocketFloor});
  out->push_back({{"get_latency_1MiB", "get_latency_100MiB", "get_latency_1GiB",
                   "get_latency_1GiB_read_every_page"},
                  RunGetLatency});
  out->push_back(
      {{"transfer_gigabytes", "transfer_gigabytes_warm_pages"}, RunTransfer});
}

}  // namespace loom::bench
