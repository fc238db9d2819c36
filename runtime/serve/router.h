// runtime/serve/router.h
//
// Router: loom.serve's request path inside one process (an HTTP ingress, or
// a process calling a DeploymentHandle). Per deployment it holds the
// replicas (actors) with the requests each is running, and a queue of
// requests waiting for one. The rules:
//   - a replica runs at most max_ongoing_requests; the next request goes to
//     the less busy of two replicas drawn at random (power of two choices);
//   - at most max_queued_requests wait (-1: no limit); one more is refused
//     at once with kBackPressure (HTTP 503);
//   - a request's deadline: one that can no longer be met (its wait plus the
//     measured run time of a call) is refused at once with kDeadline (504),
//     whether it has just arrived or has waited in the queue;
//   - the queue is served highest priority first, then earliest deadline,
//     then first come;
//   - a batched method's requests go in batches: sent when max_batch_size
//     (or the largest preferred size) is queued, when the oldest has waited
//     batch_wait_timeout, or when waiting longer would miss the earliest
//     deadline (by the measured run time of a batch of that size);
//   - a replica that dies: its retryable requests go back to the front of
//     the queue, the others fail with kReplicaDied (502);
//   - a streaming method's call (to a caller that accepts a stream) is
//     answered as soon as it is sent, with its items to read; the replica's
//     slot is taken until the stream ends.
//
//   Router router({.caller = &caller});
//   router.Update({.name = "app#Model", .replicas = {a, b}});
//   router.Submit("app#Model", std::move(request),
//                 [](ServeReply r) { ... });   // once, from any thread
//
// Thread-safe: a mutex guards the tables (cheaper than a loop hop for the
// ingress's threads); callbacks and calls run outside it. Timers (batch
// waits, deadlines) run on the router's own event loop.
#ifndef LOOM_RUNTIME_SERVE_ROUTER_H_
#define LOOM_RUNTIME_SERVE_ROUTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/serve/serve_stats.h"
#include "src/common/clock.h"
#include "src/common/event_loop.h"

namespace loom::serve {

struct BatchConfig {
  int max_batch_size = 10;
  absl::Duration wait = absl::Milliseconds(10);
  std::vector<int> preferred;  // preferred batch sizes, any order
};

// One deployment as the controller publishes it.
struct DeploymentConfig {
  std::string name;  // "app#deployment"
  int max_ongoing_requests = 5;
  int max_queued_requests = -1;  // -1: no limit
  // Methods whose calls are batched (the key a request names).
  std::map<std::string, BatchConfig> batched;
  // Methods whose answers stream (generators): a request that accepts a
  // stream gets its answer item by item.
  std::set<std::string> streaming;
  std::vector<std::string> replicas;  // actor ids (binary)
};

struct ServeRequest {
  std::string method;     // the replica's method the payload goes to
  std::string batch_key;  // the user's method, when it may be batched
  std::string payload;    // msgpack bytes: the call's one argument
  absl::Time deadline = absl::InfiniteFuture();
  int priority = 0;             // higher first
  bool retryable = false;       // safe to run again if its replica dies
  bool accepts_stream = false;  // the caller reads a ReplyStream
};

// A streamed answer's items, in order (msgpack bytes each). Thread-safe.
class ReplyStream {
 public:
  virtual ~ReplyStream() = default;  // stops the stream if unread
  // The next item; nullopt at the end; an error when the stream failed
  // (the replica raised or died), or DeadlineExceeded after `timeout`.
  virtual absl::StatusOr<std::optional<std::string>> Next(
      absl::Duration timeout) = 0;
};

struct ServeReply {
  enum Code {
    kOk,            // value: the replica's answer (msgpack)
    kNoDeployment,  // 404
    kBackPressure,  // 503 + Retry-After
    kDeadline,      // 504
    kReplicaDied,   // 502
    kFailed,        // 500: the call failed (message says why)
  };
  Code code = kOk;
  std::string value;
  std::string message;
  // kOk for a streamed answer: its items (value is empty).
  std::shared_ptr<ReplyStream> stream;
};

// How the router reaches replicas (a CoreWorker's actor calls; a fake in
// tests). `batch`: the payloads go as one call whose argument is their
// list, and the answer is the list of their answers.
struct CallOutcome {
  enum Kind { kOk, kReplicaDied, kFailed };
  Kind kind = kOk;
  std::vector<std::string> values;  // kOk: one per payload
  std::string message;
};
class ReplicaCaller {
 public:
  virtual ~ReplicaCaller() = default;
  // Runs done exactly once, from any thread, never inside Call. With
  // on_stream (one payload, no batch) the call streams: on_stream gets the
  // items as soon as the call is sent, and done runs when it has ended.
  virtual void Call(
      const std::string& replica, const std::string& method,
      std::vector<std::string> payloads, bool batch,
      std::function<void(CallOutcome)> done,
      std::function<void(std::shared_ptr<ReplyStream>)> on_stream) = 0;
};

class Router {
 public:
  using Done = std::function<void(ServeReply)>;
  struct Options {
    ReplicaCaller* caller = nullptr;
    Clock* clock = Clock::Real();
    uint64_t seed = 0;  // 0: random
  };
  explicit Router(Options options);
  ~Router();  // Shutdown()

  // Answers every queued and running request (kFailed) and every later
  // Submit; a call that ends afterwards is dropped. The router must still
  // outlive calls in flight (their callbacks point at it).
  void Shutdown();

  // Adds or replaces a deployment. Replicas no longer listed get no new
  // requests and are forgotten once their calls end.
  void Update(DeploymentConfig config);
  // Removes a deployment: what is queued fails with kNoDeployment.
  void Remove(const std::string& name);
  // Runs done once with the outcome.
  void Submit(const std::string& deployment, ServeRequest request, Done done);

  // Each deployment's load and what it answered since the last call.
  std::vector<DeploymentStats> TakeStats();
  std::vector<std::string> Deployments() const;

 private:
  struct Pending;
  struct Deployment;
  struct Send {
    std::string deployment;
    std::string replica;
    std::string method;
    bool batch = false;
    bool stream = false;
    std::vector<std::shared_ptr<Pending>> requests;
  };
  using Replies = std::vector<std::pair<Done, ServeReply>>;

  void Admit(Deployment& d, std::shared_ptr<Pending> p,
             std::vector<Send>* sends, Replies* replies)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Pump(Deployment& d, std::vector<Send>* sends, Replies* replies)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool PumpOnce(Deployment& d, std::vector<Send>* sends)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  struct ReplicaState;
  // Fills `send` with the batch to send now; false (a timer armed) when
  // the batch should wait.
  bool FormBatch(Deployment& d, const BatchConfig& b,
                 const ReplicaState& replica, Send* send)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireDeadlines(Deployment& d, Replies* replies)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A replica with a free slot (power of two choices); null when none.
  ReplicaState* Pick(Deployment& d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration Estimate(const Deployment& d, const std::string& method,
                          int size) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ArmTimer(Deployment& d, absl::Time due)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnTimer(const std::string& name);
  void Complete(const Send& send, absl::Time started, CallOutcome outcome);
  void Started(const Send& send, std::shared_ptr<ReplyStream> stream);
  void Reply(Deployment& d, std::shared_ptr<Pending> p, ServeReply reply,
             Replies* replies) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(std::vector<Send> sends, Replies replies);

  Options options_;
  EventLoop loop_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Deployment>> deployments_
      ABSL_GUARDED_BY(mu_);
  // Replicas seen to die: never sent to again, whatever a table says.
  absl::flat_hash_set<std::string> dead_ ABSL_GUARDED_BY(mu_);
  // Sent and not answered yet (a request is answered once).
  absl::flat_hash_set<std::shared_ptr<Pending>> running_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace loom::serve

#endif  // LOOM_RUNTIME_SERVE_ROUTER_H_
