// Starting, joining and leaving clusters from Python; a Python worker's
// core worker; what the cluster looks like (nodes, resources, the KV).
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "absl/strings/escaping.h"
#include "bindings.h"
#include "loom/placement_group.h"
#include "object_store/layout.h"
#include "proto/gcs.grpc.pb.h"
#include "runtime/driver_logs.h"
#include "runtime/local_cluster.h"
#include "runtime/raylet_client.h"
#include "runtime/thread_caps.h"
#include "src/common/logging.h"
#include "src/common/process.h"
#include "src/common/rpc.h"

namespace loom::py {

void RunPythonTask(const pyb::object& executor, const rpc::TaskSpec& spec,
                   std::vector<CoreWorker::TaskArgView> args,
                   rpc::PushTaskReply* reply, std::function<void()> finish);

namespace {

std::unique_ptr<CoreWorker> g_worker;  // a Python worker's core worker

// `preimport`: modules the fork server imports once for every worker it
// forks (those the driver had imported: nothing the user did not ask for).
void Init(const std::string& address, int num_cpus, int num_gpus,
          std::map<std::string, double> resources, int64_t object_store_memory,
          const std::string& session_root, const std::string& executable,
          const std::vector<std::string>& path, const std::string& cwd,
          bool log_to_driver, int64_t max_lineage_bytes,
          const std::string& preimport,
          std::vector<std::string> code_search_path) {
  InitOptions options;
  options.code_search_path = std::move(code_search_path);
  options.log_to_driver = log_to_driver;
  options.max_lineage_bytes = max_lineage_bytes;
  options.address = address;
  options.num_cpus = num_cpus;
  options.num_gpus = num_gpus;
  options.resources = std::move(resources);
  options.object_store_memory = object_store_memory;
  options.session_root = session_root;
  pyb::gil_scoped_release release;
  InitWithRuntime(options, PythonRuntime(executable, path, cwd, preimport));
}

// The core worker of a forked worker, built on a thread of its own: the
// main thread's malloc arena and thread cache are the fork server's, full
// of free chunks on pages shared with every worker, and each allocation
// from them copies a page. A new thread gets a new arena (dense, private
// pages): ~200 fewer copied pages, ~0.7 MiB less PSS per worker.
absl::StatusOr<std::unique_ptr<CoreWorker>> CreateWorker(
    const std::string& worker_id_hex, const std::string& raylet,
    const std::string& host, const std::string& session_dir,
    const std::string& gcs, const std::string& executable,
    const std::vector<std::string>& path, const std::string& cwd,
    pyb::object* exec, pyb::object* cancel) {
  WatchLifelineFromEnv();
  InitLogging("worker-" + std::to_string(getpid()),
              session_dir.empty() ? "" : session_dir + "/logs",
              /*create_on_first_message=*/true);
  auto id = WorkerId::FromBinary(absl::HexStringToBytes(worker_id_hex));
  if (!id.ok()) return absl::InvalidArgumentError("bad worker id");
  CoreWorker::Options options;
  options.is_driver = false;
  options.host = host;
  options.raylet_address = raylet;
  options.gcs_address = gcs;
  options.worker_id = *id;
  // The job's fork server's: its workers' children share it.
  const char* preimport = std::getenv("LOOM_PREIMPORT");
  options.runtime =
      PythonRuntime(executable, path, cwd, preimport ? preimport : "");
  if (!session_dir.empty())
    options.store_socket = session_dir + "/sockets/store";
  options.task_handler = [exec](const rpc::TaskSpec& spec,
                                std::vector<CoreWorker::TaskArgView> args,
                                rpc::PushTaskReply* reply,
                                std::function<void()> finish) {
    RunPythonTask(*exec, spec, std::move(args), reply, std::move(finish));
  };
  options.cancel_handler = [cancel](const TaskId& task, bool keep_children) {
    pyb::gil_scoped_acquire gil;
    try {
      (*cancel)(pyb::bytes(task.Binary()), keep_children);
    } catch (const std::exception& e) {
      spdlog::warn("cancelling a task: {}", e.what());
    } catch (...) {
      spdlog::warn("cancelling a task: unknown exception");
    }
  };
  return CoreWorker::Create(options);
}

void StartWorker(const std::string& worker_id_hex, const std::string& raylet,
                 const std::string& host, const std::string& session_dir,
                 const std::string& gcs, const std::string& executable,
                 const std::vector<std::string>& path, const std::string& cwd,
                 pyb::object executor, pyb::object on_cancel) {
  // Held for the process's life (it exits with os._exit).
  auto* exec = new pyb::object(std::move(executor));
  auto* cancel = new pyb::object(std::move(on_cancel));
  absl::StatusOr<std::unique_ptr<CoreWorker>> cw;
  {
    pyb::gil_scoped_release release;
    std::thread([&] {
      try {
        cw = CreateWorker(worker_id_hex, raylet, host, session_dir, gcs,
                          executable, path, cwd, exec, cancel);
      } catch (const std::exception& e) {  // thrown on, not terminated
        cw = absl::InternalError(e.what());
      }
    }).join();
  }
  if (!cw.ok()) ThrowStatus(cw.status());
  g_worker = std::move(*cw);
}

pyb::list Nodes() {
  absl::StatusOr<rpc::GetClusterStatusReply> status;
  {
    pyb::gil_scoped_release release;
    status = Core().raylet_client()->GetClusterStatus();
  }
  if (!status.ok()) ThrowStatus(status.status());
  pyb::list out;
  for (const auto& n : status->nodes()) {
    pyb::dict d;
    d["NodeID"] = absl::BytesToHexString(n.node_id());
    d["Alive"] = n.alive();
    d["NodeManagerAddress"] = n.host();
    d["NodeManagerPort"] = n.raylet_port();
    pyb::dict total, available, labels;
    for (const auto& [k, v] : n.total().quantities()) total[pyb::str(k)] = v;
    for (const auto& [k, v] : n.available().quantities()) {
      available[pyb::str(k)] = v;
    }
    for (const auto& [k, v] : n.labels()) labels[pyb::str(k)] = v;
    d["Resources"] = total;
    d["Available"] = available;
    d["Labels"] = labels;
    d["SessionDir"] = n.session_dir();
    d["Pid"] = n.pid();  // the raylet's
    out.append(d);
  }
  return out;
}

pyb::dict GroupDict(const rpc::PlacementGroupInfo& g) {
  pyb::dict d;
  d["placement_group_id"] = absl::BytesToHexString(g.pg_id());
  d["name"] = g.name();
  d["strategy"] = rpc::PlacementGroupInfo::Strategy_Name(g.strategy());
  d["state"] = rpc::PlacementGroupInfo::State_Name(g.state());
  pyb::list bundles, nodes;
  for (const auto& b : g.bundles()) {
    pyb::dict r;
    for (const auto& [k, v] : b.quantities()) r[pyb::str(k)] = v;
    bundles.append(r);
  }
  for (const auto& n : g.bundle_nodes()) {
    nodes.append(absl::BytesToHexString(n));
  }
  d["bundles"] = bundles;
  d["bundle_nodes"] = nodes;
  d["message"] = g.message();
  return d;
}

pyb::bytes CreatePlacementGroup(const std::vector<Bundle>& bundles,
                                int strategy, const std::string& name) {
  PlacementGroup pg = [&] {
    pyb::gil_scoped_release release;
    return loom::CreatePlacementGroup(
        bundles, static_cast<PlacementStrategy>(strategy), name);
  }();
  return pyb::bytes(absl::HexStringToBytes(pg.id()));
}

pyb::object GetPlacementGroup(pyb::bytes pg_id, bool wait_ready,
                              int64_t timeout_ms) {
  std::string id = pg_id;
  auto info = WaitInterruptibly<rpc::PlacementGroupInfo>(
      wait_ready ? timeout_ms : 0,
      [&](int64_t slice) -> std::optional<rpc::PlacementGroupInfo> {
        auto r = Core().raylet_client()->GetPlacementGroup(
            id, wait_ready, slice < 0 ? 1000 : std::max<int64_t>(slice, 1));
        if (r.ok()) return *r;
        if (r.status().code() != absl::StatusCode::kDeadlineExceeded) {
          throw std::runtime_error(std::string(r.status().message()));
        }
        return std::nullopt;
      });
  if (!info) return pyb::none();  // still pending at the timeout
  return GroupDict(*info);
}

// Daemons of one node of a test cluster (loom.cluster_utils): a head (GCS and
// raylet) or a raylet that joins one, tied to this process by a lifeline.
std::shared_ptr<ClusterHandle> StartNode(
    const std::string& session_root, const std::string& head_address,
    int num_cpus, int num_gpus, std::map<std::string, double> resources,
    std::map<std::string, std::string> labels, int64_t object_store_memory,
    int64_t memory, int64_t node_timeout_ms, int64_t heartbeat_ms,
    double memory_usage_threshold, int64_t memory_monitor_limit_bytes) {
  ClusterOptions options;
  options.session_root = session_root;
  options.head_address = head_address;
  options.num_cpus = num_cpus;
  options.num_gpus = num_gpus;
  options.resources = std::move(resources);
  options.labels = std::move(labels);
  options.object_store_memory = object_store_memory;
  options.memory = memory;
  options.node_timeout_ms = node_timeout_ms;
  options.heartbeat_ms = heartbeat_ms;
  options.memory_usage_threshold = memory_usage_threshold;
  options.memory_monitor_limit_bytes = memory_monitor_limit_bytes;
  // Test clusters' heads serve the job API on a free port (the session's
  // dashboard_address says which).
  options.dashboard_port = 0;
  absl::StatusOr<ClusterHandle> started;
  {
    pyb::gil_scoped_release release;
    started = StartCluster(options);
  }
  if (!started.ok()) ThrowStatus(started.status());
  return std::make_shared<ClusterHandle>(std::move(*started));
}

// The head's node table, asked of the GCS itself (no driver needed).
pyb::list HeadNodes(const std::string& gcs_address, int64_t timeout_ms) {
  rpc::GetClusterStatusReply reply;
  absl::Status s;
  {
    pyb::gil_scoped_release release;
    auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(gcs_address));
    rpc::Context ctx;
    rpc::SetTimeout(&ctx, timeout_ms);
    s = rpc::ToAbsl(
        stub->GetClusterStatus(&ctx, rpc::GetClusterStatusRequest(), &reply));
  }
  if (!s.ok()) ThrowStatus(s);
  pyb::list out;
  for (const auto& n : reply.nodes()) {
    pyb::dict d;
    d["NodeID"] = absl::BytesToHexString(n.node_id());
    d["Alive"] = n.alive();
    d["SessionDir"] = n.session_dir();
    d["Pid"] = n.pid();
    out.append(d);
  }
  return out;
}

}  // namespace

void BindCluster(pyb::module_& m) {
  m.def("create_placement_group", &CreatePlacementGroup);
  m.def("get_placement_group", &GetPlacementGroup);
  m.def("remove_placement_group", [](pyb::bytes pg_id) {
    std::string id = pg_id;
    absl::Status s;
    {
      pyb::gil_scoped_release release;
      s = Core().raylet_client()->RemovePlacementGroup(id);
    }
    if (!s.ok()) ThrowStatus(s);
  });
  m.def("list_placement_groups", [] {
    absl::StatusOr<rpc::ListPlacementGroupsReply> r;
    {
      pyb::gil_scoped_release release;
      r = Core().raylet_client()->ListPlacementGroups();
    }
    if (!r.ok()) ThrowStatus(r.status());
    pyb::list out;
    for (const auto& g : r->groups()) out.append(GroupDict(g));
    return out;
  });
  m.def("placement_group_ready", [](pyb::bytes pg_id, pyb::bytes pickled) {
    // Resolves to the pickled value once the group is created.
    std::string value =
        EncodeLayout(Format::kPickle5, std::string(pickled), {});
    ObjectId id = Core().PlacementGroupReady(std::string(pg_id), value);
    return std::make_shared<PyObjectRef>(id, "");
  });
  m.def("init", &Init);
  // What the job's workers print (a Python driver's log thread prints it):
  // [(is_err, "(pid=N, ip=IP) text")], waiting up to timeout_ms for some.
  m.def("take_worker_logs", [](int64_t timeout_ms) {
    std::vector<DriverLogs::Line> lines;
    {
      pyb::gil_scoped_release release;
      CoreWorker* cw = GlobalCoreWorker();
      if (cw == nullptr || cw->driver_logs() == nullptr) return pyb::list();
      lines = cw->driver_logs()->Take(absl::Milliseconds(timeout_ms));
    }
    pyb::list out;
    for (const auto& l : lines) {
      std::string text = DriverLogs::Format(l);
      out.append(pyb::make_tuple(
          l.is_err, pyb::reinterpret_steal<pyb::str>(PyUnicode_DecodeUTF8(
                        text.data(), text.size(), "replace"))));
    }
    return out;
  });
  // Before the job ends: the lines its workers printed so far, queued for
  // take_worker_logs (waits up to timeout_ms); then no more are fetched.
  m.def("close_worker_logs", [](int64_t timeout_ms) {
    pyb::gil_scoped_release release;
    CoreWorker* cw = GlobalCoreWorker();
    if (cw == nullptr || cw->driver_logs() == nullptr) return;
    absl::Status s = cw->driver_logs()->Flush(absl::Milliseconds(timeout_ms));
    if (!s.ok()) spdlog::info("last worker output: {}", s.ToString());
    cw->driver_logs()->Shutdown();
  });
  m.def("shutdown", [] {
    pyb::gil_scoped_release release;
    Shutdown();
  });
  m.def("is_initialized", [] { return GlobalCoreWorker() != nullptr; });
  m.def("start_worker", &StartWorker);
  m.def("wait_for_exit", [] {
    pyb::gil_scoped_release release;
    Core().WaitForExit();
  });
  m.def("is_driver", [] { return Core().is_driver(); });
  m.def("job_id", [] { return Core().job().Hex(); });
  m.def("node_id", [] { return Core().node_id().Hex(); });
  m.def("worker_id", [] { return Core().worker_id().Hex(); });
  m.def("address", [] { return Core().address(); });
  m.def("gpu_ids", [] { return Core().gpu_ids(); });
  m.def("thread_cap", [] { return Core().thread_cap(); });
  pyb::tuple cap_vars(kThreadCapVariables.size());
  for (size_t i = 0; i < kThreadCapVariables.size(); ++i) {
    cap_vars[i] = pyb::str(kThreadCapVariables[i]);
  }
  m.attr("THREAD_CAP_VARIABLES") = cap_vars;
  m.def("session_dir", [] { return g_worker ? std::string() : SessionDir(); });
  m.def("nodes", &Nodes);
  // The head's KV store; namespace "fn" (the function table) unless named.
  m.def(
      "kv_put",
      [](const std::string& key, pyb::bytes value, const std::string& ns) {
        std::string v = value;
        absl::Status s;
        {
          pyb::gil_scoped_release release;
          s = Core().raylet_client()->KvPut(ns, key, v);
        }
        if (!s.ok()) ThrowStatus(s);
      },
      pyb::arg("key"), pyb::arg("value"), pyb::arg("ns") = "fn");
  m.def(
      "kv_del",
      [](const std::string& key, const std::string& ns) {
        absl::StatusOr<bool> deleted;
        {
          pyb::gil_scoped_release release;
          deleted = Core().raylet_client()->KvDel(ns, key);
        }
        if (!deleted.ok()) ThrowStatus(deleted.status());
        return *deleted;
      },
      pyb::arg("key"), pyb::arg("ns"));
  m.def(
      "kv_keys",
      [](const std::string& prefix, const std::string& ns) {
        absl::StatusOr<std::vector<std::string>> keys;
        {
          pyb::gil_scoped_release release;
          keys = Core().raylet_client()->KvKeys(ns, prefix);
        }
        if (!keys.ok()) ThrowStatus(keys.status());
        return *keys;
      },
      pyb::arg("prefix"), pyb::arg("ns"));
  m.def("kv_get", [](const std::string& key) -> pyb::object {
    absl::StatusOr<std::optional<std::string>> v;
    {
      pyb::gil_scoped_release release;
      v = Core().raylet_client()->KvGet("fn", key);
    }
    if (!v.ok()) ThrowStatus(v.status());
    if (!*v) return pyb::none();
    return pyb::bytes(**v);
  });
  m.def("watch_lifeline", &WatchLifelineFromEnv);
  pyb::class_<ClusterHandle, std::shared_ptr<ClusterHandle>>(m, "NodeDaemons")
      .def_readonly("session_dir", &ClusterHandle::session_dir)
      .def_readonly("gcs_address", &ClusterHandle::gcs_address)
      .def_readonly("raylet_address", &ClusterHandle::raylet_address)
      .def_readonly("pids", &ClusterHandle::pids);
  m.def("start_node", &StartNode);
  m.def("stop_node", [](ClusterHandle& node) {
    pyb::gil_scoped_release release;
    StopCluster(node);
  });
  m.def("head_nodes", &HeadNodes);
}

}  // namespace loom::py
