// Object store benchmarks. Ray's ray_perf names, through the API as Ray's
// are (values of kStoreValueBytes, so that Loom too puts them into the
// shared-memory store; Ray's workloads put the value 0, which Ray stores
// there and Loom would keep in the owner's memory):
//   single_client_put_calls_Plasma_Store  loom::Put of a value, freed after
//   single_client_get_calls_Plasma_Store  loom::Get of a put value
//   multi_client_put_calls_Plasma_Store   10 tasks each doing 100 of those
//                                          puts, counted per put
//   single_client_put_gigabytes           loom::Put(Buffer) of 100 MiB
//                                          values of written memory, each
//                                          freed after (Ray's: 800 MB of
//                                          np.zeros)
// and loom_ names for Loom's own layers and shapes:
//   loom_store_socket_put_calls           create+seal+delete of 1 KiB objects
//                                          straight on the store's socket
//   loom_store_socket_get_calls           get+release of a sealed object there
//   loom_multi_store_socket_put_calls     4 socket clients, each as the first
//   loom_multi_thread_put_gigabytes       4 driver threads putting 100 MiB
//   put_gigabytes_first_touch             loom::Put(Buffer) of 100 MiB values
//                                          into fresh (never touched) memory
//   allocator_fragmentation               1 - largest free run / free space
//                                          after a mixed-size alloc/free churn
// All against the store of a private cluster's raylet.
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "benchmarks/bench_cluster.h"
#include "benchmarks/bench_functions.h"
#include "benchmarks/bench_util.h"
#include "loom/loom.h"
#include "object_store/allocator.h"
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

// 100 create + write + seal + delete rounds of 1 KiB objects.
int64_t PutRounds(ObjectStoreClient* client) {
  static const std::vector<uint8_t> payload(1024, 7);
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
  return 100;
}

std::vector<Result> RunSocketCalls() {
  PrivateCluster cluster(1);
  auto client = Connect(cluster);
  std::vector<uint8_t> payload(1024, 7);
  double puts = MedianOfRuns([&](double seconds) {
    return RateFor(seconds, [&] { return PutRounds(client.get()); });
  });
  std::vector<std::unique_ptr<ObjectStoreClient>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(Connect(cluster));
  double multi = MedianOfRuns([&](double seconds) {
    std::vector<double> rates(clients.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < clients.size(); ++i) {
      threads.emplace_back([&, i] {
        rates[i] =
            RateFor(seconds, [&] { return PutRounds(clients[i].get()); });
      });
    }
    for (auto& t : threads) t.join();
    double total = 0;
    for (double r : rates) total += r;
    return total;
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
  return {{"loom_store_socket_put_calls", puts, "calls/s"},
          {"loom_store_socket_get_calls", gets, "calls/s"},
          {"loom_multi_store_socket_put_calls", multi, "calls/s"}};
}

// Ray's three store-call workloads through loom::Put and loom::Get.
std::vector<Result> RunApiCalls() {
  PrivateCluster cluster(2);
  const std::vector<uint8_t> value(kStoreValueBytes, 7);
  double puts = MedianOfRuns([&](double seconds) {
    return RateFor(seconds, [&] {
      for (int i = 0; i < 100; ++i) {
        ObjectRef<Buffer> ref =
            Put(Buffer(value.data(), value.size(), nullptr));
      }
      return int64_t{100};
    });
  });
  ObjectRef<Buffer> stored = Put(Buffer(value.data(), value.size(), nullptr));
  double gets = MedianOfRuns([&](double seconds) {
    return RateFor(seconds, [&] {
      for (int i = 0; i < 100; ++i) {
        if (Get(stored)->size() != value.size()) {
          throw std::runtime_error("get returned the wrong size");
        }
      }
      return int64_t{100};
    });
  });
  double multi = MedianOfRuns([&](double seconds) {
    return RateFor(seconds, [&] {
      std::vector<ObjectRef<int>> refs;
      for (int i = 0; i < 10; ++i) refs.push_back(Task(PutMany).Remote(100));
      for (auto& v : Get(refs)) {
        if (*v != 100) throw std::runtime_error("PutMany failed");
      }
      return int64_t{1000};
    });
  });
  return {{"single_client_put_calls_Plasma_Store", puts, "calls/s"},
          {"single_client_get_calls_Plasma_Store", gets, "calls/s"},
          {"multi_client_put_calls_Plasma_Store", multi, "calls/s"}};
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
  // Four threads of one driver, each putting and freeing.
  double multi = MedianOfRuns([&](double seconds) {
    std::vector<double> rates(4);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < rates.size(); ++i) {
      threads.emplace_back([&, i] {
        rates[i] = RateFor(seconds, [&] {
          ObjectRef<Buffer> ref = Put(buffer);
          return int64_t{1};
        });
      });
    }
    for (auto& t : threads) t.join();
    double total = 0;
    for (double r : rates) total += r;
    return total;
  });
  return {{"single_client_put_gigabytes", rate * size / 1e9, "GB/s"},
          {"loom_multi_thread_put_gigabytes", multi * size / 1e9, "GB/s"}};
}

// Puts into a fresh 2 GiB store, keeping every object: each lands on pages
// never touched before. One value per cluster.
double FirstTouchOnce() {
  TempDir root;
  InitOptions options;
  options.num_cpus = 1;
  options.session_root = root.path();
  options.object_store_memory = int64_t{2} << 30;
  loom::Init(options);
  const size_t size = 100 << 20;
  std::vector<uint8_t> bytes(size, 5);
  std::vector<ObjectRef<Buffer>> keep;
  int64_t start = NowNs();
  for (int i = 0; i < 15; ++i)
    keep.push_back(Put(Buffer(bytes.data(), size, nullptr)));
  double gbps = 15.0 * size / 1e9 / SecondsSince(start);
  keep.clear();
  loom::Shutdown();
  return gbps;
}

std::vector<Result> RunFirstTouch() {
  std::vector<double> values;
  for (int i = 0; i < 3; ++i) values.push_back(FirstTouchOnce());
  return {{"put_gigabytes_first_touch", Median(values), "GB/s"}};
}

std::vector<Result> RunFragmentation() {
  Allocator alloc(uint64_t{1} << 30);
  std::mt19937_64 rng(42);
  std::vector<uint64_t> live;
  for (int i = 0; i < 200000; ++i) {
    bool free_one =
        !live.empty() && (rng() % 2 == 0 || alloc.stats().free < (64u << 20));
    if (free_one) {
      size_t k = rng() % live.size();
      alloc.Free(live[k]);
      live[k] = live.back();
      live.pop_back();
    } else {
      // Mixed sizes: mostly small, some large (1 KiB .. 8 MiB, log-uniform).
      uint64_t size = uint64_t{1024} << (rng() % 14);
      if (auto off = alloc.Allocate(size + rng() % size)) live.push_back(*off);
    }
  }
  return {{"allocator_fragmentation", alloc.stats().fragmentation(), "ratio"}};
}

}  // namespace

void AddStoreBenchmarks(std::vector<Benchmark>* out) {
  out->push_back({{"single_client_put_calls_Plasma_Store",
                   "single_client_get_calls_Plasma_Store",
                   "multi_client_put_calls_Plasma_Store"},
                  RunApiCalls});
  out->push_back({{"loom_store_socket_put_calls", "loom_store_socket_get_calls",
                   "loom_multi_store_socket_put_calls"},
                  RunSocketCalls});
  out->push_back(
      {{"single_client_put_gigabytes", "loom_multi_thread_put_gigabytes"},
       RunPutGigabytes});
  out->push_back({{"put_gigabytes_first_touch"}, RunFirstTouch});
  out->push_back({{"allocator_fragmentation"}, RunFragmentation});
}

}  // namespace loom::bench
