// loom-worker: the C++ worker host. Started by a raylet's worker pool; runs
// the tasks pushed to it and exits when its raylet goes away.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "runtime/core_worker.h"
#include "src/common/logging.h"
#include "src/common/process.h"
#include "src/common/wire.h"

int main(int argc, char** argv) {
  loom::WatchLifelineFromEnv();
  CLI::App app{"loom-worker: runs Loom tasks (started by loom-raylet)"};
  std::string raylet, host = "127.0.0.1", session_dir, worker_id_hex, gcs;
  app.add_option("--raylet-address", raylet)->required();
  app.add_option("--host", host);
  app.add_option("--session-dir", session_dir);
  app.add_option("--worker-id", worker_id_hex)->required();
  app.add_option("--gcs-address", gcs);
  CLI11_PARSE(app, argc, argv);

  loom::InitLogging(absl::StrCat("worker-", getpid()),
                    session_dir.empty() ? "" : session_dir + "/logs");
  std::string binary;
  for (size_t i = 0; i + 1 < worker_id_hex.size(); i += 2) {
    binary.push_back(
        static_cast<char>(std::stoi(worker_id_hex.substr(i, 2), nullptr, 16)));
  }
  auto worker_id = loom::WorkerId::FromBinary(binary);
  if (!worker_id.ok()) {
    spdlog::error("bad --worker-id: {}", worker_id.status().ToString());
    return 2;
  }
  loom::CoreWorker::Options options;
  options.is_driver = false;
  options.host = host;
  options.raylet_address = raylet;
  options.gcs_address = gcs;
  options.worker_id = *worker_id;
  if (!session_dir.empty())
    options.store_socket = session_dir + "/sockets/store";
  auto cw = loom::CoreWorker::Create(options);
  if (!cw.ok()) {
    spdlog::error("worker start failed: {}", cw.status().ToString());
    return 1;
  }
  (*cw)->WaitForExit();
  loom::SetGlobalCoreWorker(nullptr);
  // Exit without unwinding: user code may hold threads and statics.
  _exit(0);
}
