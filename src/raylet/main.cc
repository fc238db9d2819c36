// loom-raylet: the node daemon. Registers with the head, grants worker
// leases, runs the worker pool.
#include <dirent.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "src/common/auth.h"
#include "src/common/daemon.h"
#include "src/common/logging.h"
#include "src/common/process.h"
#include "src/common/session.h"
#include "src/common/version.h"
#include "src/common/wire.h"
#include "src/raylet/gpus.h"
#include "src/raylet/raylet_service.h"

namespace {

// Deletes the object files the store spilled to `dir` (named by object id).
void RemoveSpilledCopies(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    auto id = loom::ObjectId::FromBinary(absl::HexStringToBytes(name));
    if (id.ok() && id->Hex() == name) unlink((dir + "/" + name).c_str());
  }
  closedir(d);
}

}  // namespace

int main(int argc, char** argv) {
  loom::raylet::TuneMallocForTransfers();
  loom::BlockStopSignals();
  // Sockets, lifelines and pidfds per worker; the workers inherit it.
  loom::RaiseDescriptorLimit();
  loom::WatchLifelineFromEnv();
  CLI::App app{"loom-raylet: the Loom node daemon"};
  std::string host = "127.0.0.1", gcs_address, session_dir, resources_json;
  int port = 0, metrics_port = 0, num_gpus = -1;
  double gpu_memory = 0;
  int num_cpus = static_cast<int>(std::thread::hardware_concurrency());
  int prestart = -1;
  int64_t object_store_memory = 0;
  int64_t memory = -1, heartbeat_ms = 500, idle_timeout_ms = 10000,
          infeasible_grace_ms = 3000;
  std::vector<std::string> labels;
  std::string bind_address, token_file;
  bool no_auth = false;
  app.add_option("--host", host, "The address this node advertises");
  app.add_option("--bind-address", bind_address,
                 "Address to listen on (default: --host; 0.0.0.0: all)");
  app.add_option("--auth-token-file", token_file,
                 "The cluster token (default: $LOOM_AUTH_TOKEN, else "
                 "<session-dir>/auth_token)");
  app.add_flag("--no-auth", no_auth, "Take calls without a token (loopback)");
  app.add_option("--port", port, "gRPC port (0: pick one)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--metrics-port", metrics_port)->check(CLI::Range(0, 65535));
  app.add_option("--gcs-address", gcs_address, "The head, HOST:PORT")
      ->required();
  app.add_option("--session-dir", session_dir);
  app.add_option("--num-cpus", num_cpus)->check(CLI::Range(0, 100000));
  app.add_option("--num-gpus", num_gpus, "-1: as many as NVML finds")
      ->check(CLI::Range(-1, 1024));
  app.add_option("--gpu-memory", gpu_memory,
                 "Bytes of memory per GPU (default: what NVML reports)")
      ->check(CLI::Range(0.0, 1e13));
  app.add_option("--memory", memory,
                 "Bytes of memory to offer as the \"memory\" resource "
                 "(default: available memory less the object store's)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50));
  app.add_option("--resources", resources_json, "Custom resources, JSON");
  app.add_option(
         "--object-store-memory", object_store_memory,
         "Bytes of shared memory for objects (default: 30% of available)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50));
  std::string spill_dir;
  app.add_option("--object-spilling-directory", spill_dir,
                 "Where primary copies spill (default: <session>/spill)");
  app.add_option("--labels", labels, "Node labels, k=v");
  app.add_option("--prestart-workers", prestart, "-1: one per CPU (max 16)");
  int worker_niceness = 15;
  app.add_option("--worker-niceness", worker_niceness,
                 "Added to this raylet's niceness for the workers it starts "
                 "(default 15; 0: as the raylet; also $LOOM_WORKER_NICENESS)")
      ->envname("LOOM_WORKER_NICENESS")
      ->check(CLI::Range(0, 19));
  app.add_option("--heartbeat-ms", heartbeat_ms)->check(CLI::Range(10, 60000));
  app.add_option("--idle-worker-timeout-ms", idle_timeout_ms);
  app.add_option("--infeasible-grace-ms", infeasible_grace_ms)
      ->check(CLI::Range(0, 3600000));
  double memory_usage_threshold = 0.95;
  int64_t memory_monitor_limit = 0;
  app.add_option("--memory-usage-threshold", memory_usage_threshold,
                 "Fraction of the memory limit above which the memory "
                 "monitor kills a worker; 0 or 1 turns it off")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--memory-monitor-limit-bytes", memory_monitor_limit,
                 "The memory monitor's limit: measured against this "
                 "raylet's workers' memory (default 0: the node's, or its "
                 "container's, limit and usage)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50));
  bool restart_on_fence = false;
  app.add_flag("--restart-on-fence", restart_on_fence,
               "When the head fences this node (it declared it dead and it "
               "came back), kill its workers and rejoin as a new node "
               "instead of exiting");
  app.set_version_flag("--version", loom::ToString(loom::ThisVersion()));
  CLI11_PARSE(app, argc, argv);

  loom::InitLogging("raylet", session_dir.empty() ? "" : session_dir + "/logs");
  if (bind_address.empty()) bind_address = host;
  auto token =
      loom::DaemonAuth(token_file, session_dir, no_auth, host, bind_address);
  if (!token.ok()) {
    std::fprintf(stderr, "loom-raylet: %s\n",
                 std::string(token.status().message()).c_str());
    return 2;
  }
  loom::rpc::SetClusterToken(*token);
  auto custom = loom::ParseResourcesJson(resources_json);
  if (!custom.ok()) {
    std::fprintf(stderr, "loom-raylet: %s\n",
                 std::string(custom.status().message()).c_str());
    return 2;
  }
  std::map<std::string, double> quantities = *custom;
  quantities[loom::kCpu] = num_cpus;
  // GPUs: NVML's unless --num-gpus says; their memory is a resource too.
  std::string why;
  std::vector<loom::raylet::GpuInfo> found = loom::raylet::DiscoverGpus(&why);
  if (num_gpus < 0) {
    num_gpus = static_cast<int>(found.size());
    if (found.empty()) spdlog::info("no GPUs: {}", why);
  }
  if (gpu_memory <= 0 && !found.empty()) {
    gpu_memory = static_cast<double>(found[0].memory_bytes);
    for (const auto& g : found) {
      gpu_memory = std::min(gpu_memory, static_cast<double>(g.memory_bytes));
    }
  }
  std::map<std::string, std::string> gpu_labels;
  if (num_gpus > 0) {
    quantities[loom::kGpu] = num_gpus;
    gpu_labels = loom::raylet::GpuLabels(found);
    if (gpu_memory > 0) {
      quantities[loom::kGpuMemory] = gpu_memory * num_gpus;
      gpu_labels["gpu_memory"] =
          std::to_string(static_cast<int64_t>(gpu_memory));
    }
    spdlog::info("{} GPUs ({}), {} bytes each", num_gpus,
                 found.empty() ? "declared" : found[0].name, gpu_memory);
  }
  if (memory < 0) {
    // As Ray: what the object store leaves of the available memory, for
    // tasks and actors that ask for memory=.
    uint64_t available = loom::AvailableMemoryBytes();
    uint64_t store = object_store_memory > 0
                         ? static_cast<uint64_t>(object_store_memory)
                         : loom::DefaultObjectStoreBytes();
    memory = available > store ? static_cast<int64_t>(available - store) : 0;
  }
  if (memory > 0) quantities[loom::kMemory] = static_cast<double>(memory);
  auto total = loom::ResourceSet::FromMap(quantities);
  if (!total.ok()) {
    std::fprintf(stderr, "loom-raylet: %s\n",
                 std::string(total.status().message()).c_str());
    return 2;
  }
  loom::raylet::NodeManager::Options options;
  options.labels = gpu_labels;  // user labels below override
  for (const auto& l : labels) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(l, absl::MaxSplits('=', 1));
    options.labels[kv.first] = kv.second;
  }
  loom::Metrics metrics;
  auto& refused =
      metrics.Counter("loom_rpc_unauthenticated_total",
                      "Calls refused for want of the cluster token");
  loom::rpc::OnUnauthenticated([&refused] { refused.Increment(); });
  loom::rpc::OnDenied([](const loom::rpc::Caller& c,
                         const loom::rpc::Need& need) {
    spdlog::warn("refused {} from {} ({}): {}", need.method, c.peer, c.who.name,
                 loom::DeniedMessage(c.who, need.method, need.role));
  });
  auto mport = metrics.Serve(bind_address, metrics_port);
  if (!mport.ok()) {
    std::fprintf(stderr, "loom-raylet: %s\n",
                 std::string(mport.status().message()).c_str());
    return 1;
  }
  options.host = host;
  options.metrics_port = *mport;
  options.gcs_address = gcs_address;
  options.session_dir = session_dir;
  options.total = *total;
  options.worker_binary = loom::FindLoomBinary("loom-worker");
  options.prestart_workers = prestart >= 0 ? prestart : std::min(num_cpus, 16);
  options.idle_worker_timeout = absl::Milliseconds(idle_timeout_ms);
  options.heartbeat_period = absl::Milliseconds(heartbeat_ms);
  options.infeasible_grace = absl::Milliseconds(infeasible_grace_ms);
  options.memory_usage_threshold = memory_usage_threshold;
  options.memory_limit_bytes = memory_monitor_limit;
  options.worker_niceness = worker_niceness;
  std::unique_ptr<loom::ObjectStoreServer> store;
  // Set once the object manager exists; the store tells it of evictions.
  std::atomic<loom::raylet::ObjectManager*> evictions{nullptr};
  if (!session_dir.empty()) {
    if (spill_dir.empty()) spill_dir = session_dir + "/spill";
    if (auto s = loom::MakeDirs(spill_dir); !s.ok()) {
      std::fprintf(stderr, "loom-raylet: %s\n",
                   std::string(s.message()).c_str());
      return 1;
    }
    auto started = loom::ObjectStoreServer::Start(
        {session_dir + "/sockets/store",
         object_store_memory > 0 ? static_cast<uint64_t>(object_store_memory)
                                 : loom::DefaultObjectStoreBytes(),
         spill_dir, [&evictions](const loom::ObjectId& id) {
           if (auto* om = evictions.load()) om->Evicted(id);
         }});
    if (!started.ok()) {
      std::fprintf(stderr, "loom-raylet: %s\n",
                   std::string(started.status().message()).c_str());
      return 1;
    }
    store = std::move(*started);
    options.object_store = store.get();
  }
  if (restart_on_fence) {
    // The workers are dead by now; the exec frees the object store's
    // memory, and the spilled copies go too: the node's objects are lost to
    // the cluster. The new run writes raylet.ready again once registered.
    options.restart_when_fenced =
        [argv = std::vector<std::string>(argv, argv + argc), session_dir,
         spill_dir] {
          if (!session_dir.empty())
            unlink((session_dir + "/raylet.ready").c_str());
          if (!spill_dir.empty()) RemoveSpilledCopies(spill_dir);
          absl::Status s = loom::ExecSelf(argv);
          spdlog::error("cannot restart: {}", std::string(s.message()));
        };
  }
  loom::raylet::NodeManager node(options, &metrics);
  std::unique_ptr<loom::ObjectStoreClient> store_client;
  std::unique_ptr<loom::raylet::ObjectManager> object_manager;
  if (store) {
    auto client =
        loom::ObjectStoreClient::Connect(session_dir + "/sockets/store");
    if (!client.ok()) {
      std::fprintf(stderr, "loom-raylet: %s\n",
                   std::string(client.status().message()).c_str());
      return 1;
    }
    store_client = std::move(*client);
    store_client->set_owner("copy pulled by this raylet");
    object_manager = std::make_unique<loom::raylet::ObjectManager>(
        loom::raylet::ObjectManager::Options{
            store_client.get(),
            [&node](const loom::NodeId& id) { return node.AddressOf(id); },
            8 << 20, 4, node.node_id(), gcs_address, node.clients(), &metrics});
    node.set_object_manager(object_manager.get());
    evictions = object_manager.get();
  }
  loom::raylet::RayletService service(&node);
  int bound = 0;
  if (auto started = service.Start(bind_address, port, &bound); !started.ok()) {
    std::fprintf(stderr, "loom-raylet: %s\n",
                 std::string(started.message()).c_str());
    return 1;
  }
  node.set_port(bound);
  absl::Status s = node.Start(absl::Seconds(30));
  if (!s.ok()) {
    spdlog::critical("cannot join the head at {}: {}", gcs_address,
                     std::string(s.message()));
    spdlog::default_logger()->flush();
    std::fprintf(stderr, "loom-raylet: %s\n", std::string(s.message()).c_str());
    // Without destructors, as below: the metrics endpoint's take seconds.
    spdlog::shutdown();
    _exit(loom::IsVersionMismatch(s) ? loom::kVersionMismatchExitCode : 1);
  }
  spdlog::info("loom-raylet on {}:{} (metrics {}), resources {}", host, bound,
               *mport, total->ToString());
  if (!session_dir.empty()) {
    loom::WriteFileAtomic(session_dir + "/raylet.ready",
                          absl::StrCat(host, ":", bound, " ", *mport))
        .IgnoreError();
  }
  int sig = loom::WaitForStopSignal();
  spdlog::info("loom-raylet stopping on signal {}", sig);
  node.Stop();
  service.Shutdown(absl::Milliseconds(300));
  // Skip destructors: the metrics endpoint's threads take a second to wind
  // down, and nothing else needs unwinding.
  spdlog::shutdown();
  _exit(0);
}
