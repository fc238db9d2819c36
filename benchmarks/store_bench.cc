// Object store benchmarks (Ray's ray_perf names where they exist):
//   single_client_put_calls_Plasma_Store  create+seal+delete of 1 KiB objects
//                                          through the store's socket, per s
//   single_client_get_calls_Plasma_Store  get+release of a sealed object, per s
//   single_client_put_gigabytes           steady state: loom::Put(Buffer) of
//                                          100 MiB values, each freed after
//   get_latency_1MiB, get_latency_100MiB  loom::Get of a Buffer (a view, no
//                                          copy), median over distinct objects
// All against the store of a private cluster's raylet, from this process.
#include <cstring>
#include <stdexcept>
#include <vector>

#include "benchmarks/bench_cluster.h"
#include "benchmarks/bench_util.h"
#include "loom/loom.h"
#include "object_store/store_client.h"

namespace loom::bench {
namespace {

std::unique_ptr<ObjectStoreClient> Connect(const PrivateCluster& cluster) {
  auto client =
      ObjectStoreClient::Connect(cluster.session_dir() + "/sockets/store");
  if (!client.ok())
    throw std::runtime_error(std::string(client.status().message()));
  return std::move(*client);
}

ObjectId NewId() { return ObjectId::ForPut(TaskId::FromRandom(), 1); }

std::vector<Result> RunStoreCalls() {
  PrivateCluster cluster(1);
  auto client = Connect(cluster);
  std::vector<uint8_t> payload(1024, 7);
  double puts = MedianOfRuns([&](double seconds) {
    return RateFor(seconds, [&] {
      for (int i = 0; i < 100; ++i) {
        ObjectId id = NewId();
        auto dst = client->Create(id, payload.size(), 0);
        if (!dst.ok())
          throw std::runtime_error(std::string(dst.status().message()));
        std::memcpy(*dst, payload.data(), payload.size());
        if (!client->Seal(id).ok() || !client->Delete(id).ok()) {
          throw std::runtime_error("seal/delete failed");
        }
      }
      return int64_t{100};
    });
  });
  ObjectId id = NewId();
  auto dst = client->Create(id, payload.size(), 0);
  if (!dst.ok() || !client->Seal(id).ok())
    throw std::runtime_error("create failed");
  double gets = MedianOfRuns([&](double seconds) {
    return RateFor(seconds, [&] {
      for (int i = 0; i < 100; ++i) {
        auto v = client->Get({id}, 1000);
        if (!v.ok() || !(*v)[0] || !client->Release(id).ok()) {
          throw std::runtime_error("get failed");
        }
      }
      return int64_t{100};
    });
  });
  return {{"single_client_put_calls_Plasma_Store", puts, "calls/s"},
          {"single_client_get_calls_Plasma_Store", gets, "calls/s"}};
}

std::vector<Result> RunPutGigabytes() {
  PrivateCluster cluster(1);
  const size_t size = 100 << 20;
  std::vector<uint8_t> bytes(size, 1);
  Buffer buffer(bytes.data(), size, nullptr);  // a view of our own memory
  double rate = MedianOfRuns([&](double seconds) {
    return RateFor(seconds, [&] {
      ObjectRef<Buffer> ref = Put(buffer);  // freed when ref goes
      return int64_t{1};
    });
  });
  return {{"single_client_put_gigabytes", rate * size / 1e9, "GB/s"}};
}

double GetLatencyUs(size_t size) {
  PrivateCluster cluster(1);
  std::vector<uint8_t> bytes(size, 3);
  std::vector<ObjectRef<Buffer>> refs;
  int count = size >= (50u << 20) ? 20 : 200;
  for (int i = 0; i < count; ++i)
    refs.push_back(Put(Buffer(bytes.data(), size, nullptr)));
  std::vector<double> us;
  for (const auto& ref : refs) {
    int64_t start = NowNs();
    std::shared_ptr<Buffer> view = Get(ref);
    us.push_back(SecondsSince(start) * 1e6);
    if (view->size() != size) throw std::runtime_error("short object");
  }
  return Median(us);
}

std::vector<Result> RunGetLatency() {
  return {{"get_latency_1MiB", GetLatencyUs(1 << 20), "us"},
          {"get_latency_100MiB", GetLatencyUs(100 << 20), "us"}};
}

}  // namespace

void AddStoreBenchmarks(std::vector<Benchmark>* out) {
  out->push_back({{"single_client_put_calls_Plasma_Store",
                   "single_client_get_calls_Plasma_Store"},
                  RunStoreCalls});
  out->push_back({{"single_client_put_gigabytes"}, RunPutGigabytes});
  out->push_back({{"get_latency_1MiB", "get_latency_100MiB"}, RunGetLatency});
}

}  // namespace loom::bench
