// tests/unit/fake_peers.h
//
// Fake raylets and workers for unit tests of the components that call them,
// served in-process through a FakeClientPool. They answer at once and record
// what they were asked.
//
//   FakeRaylet raylet;   // grants leases on workers at 10.0.0.1:9001, :9002..
//   FakeWorker worker;   // runs tasks, replying "ran <task id>"
//   pool.Serve("10.0.0.1:7001", &raylet);
//   pool.Serve("10.0.0.1:9001", &worker);
//   worker.Die();        // its tasks and watches fail UNAVAILABLE from now
//   raylet.SpillInTurn({"", "10.0.0.2:7001"});  // grant here, spill, ...
//   other.HoldGrants();  // grants wait for ReleaseGrants()
//
// Thread-safe.
#ifndef LOOM_TESTS_UNIT_FAKE_PEERS_H_
#define LOOM_TESTS_UNIT_FAKE_PEERS_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "proto/raylet.grpc.pb.h"
#include "proto/worker.grpc.pb.h"

namespace loom {

class FakeRaylet : public rpc::Raylet::CallbackService {
 public:
  // Leases on 10.0.0.1:9001, :9002, ... in turn; bundle prepares refused
  // `refuse_prepares` times first.
  explicit FakeRaylet(int refuse_prepares = 0) : refuse_(refuse_prepares) {}

  // Every later lease is REJECTED with `why`.
  void Reject(const std::string& why) {
    absl::MutexLock lock(&mu_);
    reject_ = why;
  }
  // Failed workers' returns say they died of `death` (as a raylet whose
  // memory monitor killed them does).
  void SetDeath(rpc::ErrorInfo death) {
    absl::MutexLock lock(&mu_);
    death_ = std::move(death);
  }
  int leases() {
    absl::MutexLock lock(&mu_);
    return leases_;
  }
  // Leases are on `host`, at ports first_port, first_port + 1, ... and
  // around again after `count`.
  void WorkersAt(const std::string& host, int first_port, int count) {
    absl::MutexLock lock(&mu_);
    worker_host_ = host;
    first_port_ = first_port;
    worker_count_ = count;
  }
  // Requests that may spill are answered in turn: "" grants here, an
  // address spills back to that raylet.
  void SpillInTurn(std::vector<std::string> turns) {
    absl::MutexLock lock(&mu_);
    turns_ = std::move(turns);
  }
  // Grants (and entrypoint starts) wait, as for a worker starting, until
  // ReleaseGrants.
  void HoldGrants() {
    absl::MutexLock lock(&mu_);
    hold_ = true;
  }
  void ReleaseGrants() {
    std::vector<grpc::ServerUnaryReactor*> held;
    {
      absl::MutexLock lock(&mu_);
      hold_ = false;
      held.swap(held_);
    }
    for (auto* reactor : held) reactor->Finish(grpc::Status::OK);
  }
  // "<lease id> failed" or "<lease id> returned", in order.
  std::vector<std::string> returned() {
    absl::MutexLock lock(&mu_);
    return returned_;
  }
  // "<prepare|commit|release> <bundle index>", in order.
  std::vector<std::string> bundle_calls() {
    absl::MutexLock lock(&mu_);
    return bundle_calls_;
  }

  grpc::ServerUnaryReactor* RequestWorkerLease(
      grpc::CallbackServerContext* ctx, const rpc::LeaseRequest* req,
      rpc::LeaseReply* reply) override {
    absl::MutexLock lock(&mu_);
    if (!turns_.empty() && !req->no_spillback()) {
      const std::string& to = turns_[turn_++ % turns_.size()];
      if (!to.empty()) {
        reply->set_outcome(rpc::LeaseReply::SPILLBACK);
        reply->set_spillback_host(to.substr(0, to.find(':')));
        reply->set_spillback_port(std::stoi(to.substr(to.find(':') + 1)));
        return Done(ctx, grpc::Status::OK);
      }
    }
    ++leases_;
    if (!reject_.empty()) {
      reply->set_outcome(rpc::LeaseReply::REJECTED);
      reply->set_message(reject_);
    } else {
      reply->set_outcome(rpc::LeaseReply::GRANTED);
      reply->set_lease_id("lease-" + std::to_string(leases_));
      reply->mutable_worker()->set_host(worker_host_);
      int n = worker_count_ > 0 ? (leases_ - 1) % worker_count_ + 1 : leases_;
      reply->mutable_worker()->set_port(first_port_ - 1 + n);
      // A new process for each lease.
      reply->mutable_worker()->set_worker_id("worker-" +
                                             std::to_string(leases_));
    }
    if (hold_) {
      held_.push_back(ctx->DefaultReactor());
      return held_.back();
    }
    return Done(ctx, grpc::Status::OK);
  }
  // Starts nothing: answers started, pid 4242 (held as grants are).
  grpc::ServerUnaryReactor* StartEntrypoint(
      grpc::CallbackServerContext* ctx, const rpc::StartEntrypointRequest*,
      rpc::StartEntrypointReply* reply) override {
    absl::MutexLock lock(&mu_);
    reply->set_started(true);
    reply->set_pid(4242);
    if (hold_) {
      held_.push_back(ctx->DefaultReactor());
      return held_.back();
    }
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ReturnWorker(
      grpc::CallbackServerContext* ctx, const rpc::ReturnWorkerRequest* req,
      rpc::ReturnWorkerReply* reply) override {
    absl::MutexLock lock(&mu_);
    returned_.push_back(req->lease_id() +
                        (req->worker_failed() ? " failed" : " returned"));
    if (death_ && req->worker_failed()) *reply->mutable_death() = *death_;
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* PrepareBundle(grpc::CallbackServerContext* ctx,
                                          const rpc::BundleRequest* req,
                                          rpc::BundleReply*) override {
    absl::MutexLock lock(&mu_);
    bundle_calls_.push_back("prepare " + std::to_string(req->index()));
    if (refuse_ > 0) {
      --refuse_;
      return Done(ctx, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                    "taken meanwhile"));
    }
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* CommitBundle(grpc::CallbackServerContext* ctx,
                                         const rpc::BundleRequest* req,
                                         rpc::BundleReply*) override {
    absl::MutexLock lock(&mu_);
    bundle_calls_.push_back("commit " + std::to_string(req->index()));
    return Done(ctx, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ReleaseBundle(grpc::CallbackServerContext* ctx,
                                          const rpc::BundleRequest* req,
                                          rpc::BundleReply*) override {
    absl::MutexLock lock(&mu_);
    bundle_calls_.push_back("release " + std::to_string(req->index()));
    return Done(ctx, grpc::Status::OK);
  }

 private:
  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx,
                                        const grpc::Status& status) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }

  absl::Mutex mu_;
  int refuse_ ABSL_GUARDED_BY(mu_);
  std::string reject_ ABSL_GUARDED_BY(mu_);
  std::optional<rpc::ErrorInfo> death_ ABSL_GUARDED_BY(mu_);
  int leases_ ABSL_GUARDED_BY(mu_) = 0;
  std::string worker_host_ ABSL_GUARDED_BY(mu_) = "10.0.0.1";
  int first_port_ ABSL_GUARDED_BY(mu_) = 9001;
  int worker_count_ ABSL_GUARDED_BY(mu_) = 0;  // 0: a new port each lease
  std::vector<std::string> turns_ ABSL_GUARDED_BY(mu_);
  size_t turn_ ABSL_GUARDED_BY(mu_) = 0;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<grpc::ServerUnaryReactor*> held_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> returned_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> bundle_calls_ ABSL_GUARDED_BY(mu_);
};

class FakeWorker : public rpc::CoreWorker::CallbackService {
 public:
  // The process is gone: watches end and tasks fail as a broken connection
  // would.
  void Die() {
    absl::MutexLock lock(&mu_);
    dead_ = true;
    for (auto* w : watches_) w->Finish(Gone());
    watches_.clear();
  }
  // Task ids run, in order (actor creations included).
  std::vector<std::string> ran() {
    absl::MutexLock lock(&mu_);
    return ran_;
  }
  int watches() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(watches_.size());
  }

  grpc::ServerUnaryReactor* PushTask(grpc::CallbackServerContext* ctx,
                                     const rpc::PushTaskRequest* req,
                                     rpc::PushTaskReply* reply) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::MutexLock lock(&mu_);
    if (dead_) {
      reactor->Finish(Gone());
      return reactor;
    }
    ran_.push_back(req->spec().task_id());
    reply->set_ok(true);
    reply->set_value("ran " + req->spec().task_id());
    reply->set_pid(4242);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* WatchBorrower(grpc::CallbackServerContext* ctx,
                                          const rpc::WatchBorrowerRequest*,
                                          rpc::WatchBorrowerReply*) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::MutexLock lock(&mu_);
    if (dead_) {
      reactor->Finish(Gone());
    } else {
      watches_.push_back(reactor);
    }
    return reactor;
  }

 private:
  static grpc::Status Gone() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "socket closed");
  }

  absl::Mutex mu_;
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> ran_ ABSL_GUARDED_BY(mu_);
  std::vector<grpc::ServerUnaryReactor*> watches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loom

#endif  // LOOM_TESTS_UNIT_FAKE_PEERS_H_
