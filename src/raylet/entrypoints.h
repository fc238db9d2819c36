// src/raylet/entrypoints.h
//
// Entrypoints: the submitted jobs' entrypoints this raylet runs for the head
// (docs/jobs.md). Each is `/bin/sh -c ENTRYPOINT` in a session of its own,
// in <session>/jobs/<id>/ (the working directory's package unpacked there),
// with its output in logs/<log_file>, its resources held until it ends, and
// the environment of a driver of this cluster attached to this raylet
// (LOOM_ADDRESS, the cluster token, LOOM_RAYLET_SESSION_DIR). When it ends
// the head hears (ReportEntrypointExit), again until it answers.
//
//   Entrypoints entrypoints({.loop = &loop, ...});
//   entrypoints.Start(req, &reply, done);   // StartEntrypoint
//   entrypoints.Reap();                     // each tick
#ifndef LOOM_RAYLET_ENTRYPOINTS_H_
#define LOOM_RAYLET_ENTRYPOINTS_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/gcs.pb.h"
#include "proto/raylet.pb.h"
#include "scheduler/node_resources.h"
#include "src/common/client_pool.h"
#include "src/common/event_loop.h"

namespace loom::raylet {

// Not thread-safe: on the raylet's loop (a package is fetched and unpacked
// on a thread of its own, which posts back).
class Entrypoints {
 public:
  using Done = std::function<void(absl::Status)>;
  struct Options {
    EventLoop* loop = nullptr;
    ClientPool* clients = nullptr;
    NodeResources* resources = nullptr;
    std::string gcs_address;
    std::string session_dir;
    std::string node_id;  // binary
  };
  explicit Entrypoints(Options options) : options_(std::move(options)) {}

  // started=false when the resources do not fit now; InvalidArgument for
  // a malformed request. Starting one already running answers its pid.
  void Start(const rpc::StartEntrypointRequest& req,
             rpc::StartEntrypointReply* reply, Done done);
  // SIGTERM to its process group, SIGKILL a few seconds later.
  void Stop(const rpc::StopEntrypointRequest& req,
            rpc::StopEntrypointReply* reply, Done done);
  // Ended processes: resources released, the head told. Also resends
  // reports the head has not answered.
  void Reap();
  // The raylet stops: every entrypoint's process group is killed.
  void KillAll();
  // One is starting or running, or its end is not yet reported: Reap has
  // work (the raylet ticks at its full rate).
  bool Busy() const {
    return !running_.empty() || !starting_.empty() || !unreported_.empty();
  }

 private:
  struct Running {
    pid_t pid = 0;
    Allocation allocation;
    absl::Time stop_sent = absl::InfiniteFuture();
  };
  // Spawns it (on the loop); reports a failure to start as its end.
  void Spawn(const rpc::StartEntrypointRequest& req, Allocation allocation,
             const std::string& dir, rpc::StartEntrypointReply* reply,
             Done done);
  void Report(rpc::ReportEntrypointExitRequest report);

  Options options_;
  std::map<std::string, Running> running_;
  std::map<std::string, bool> starting_;  // fetching its package
  std::map<std::string, rpc::ReportEntrypointExitRequest> unreported_;
  std::map<std::string, bool> reporting_;  // a report in flight
  absl::Time last_resend_ = absl::InfinitePast();
};

// Unpacks a zip (a working directory's package) into `dir`, refusing
// entries that would land outside it.
absl::Status Unzip(const std::string& zip, const std::string& dir);

}  // namespace loom::raylet

#endif  // LOOM_RAYLET_ENTRYPOINTS_H_
