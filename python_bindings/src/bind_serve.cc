// loom.serve's C++ request path in this process (runtime/serve/): one
// Router over the core worker's actor calls, and at most one HTTP Ingress
// on it. loom/serve/_router.py keeps the router's tables from the
// controller; a handle's call completes through the futures thread's
// token queue (bind_futures.cc), or is waited on with the GIL released.
//
//   _core.serve_update("app#Model", 5, -1, {"__call__": (8, 0.01, [])},
//                      [replica_actor_id_bytes])
//   call = _core.serve_submit("app#Model", "_loom_serve_call", "predict",
//                             payload, deadline_ms=0, priority=0,
//                             retryable=False, token=7)
//   code, value, message = call.wait(-1)
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "bindings.h"
#include "runtime/serve/actor_caller.h"
#include "runtime/serve/ingress.h"
#include "runtime/serve/person_tokens.h"
#include "runtime/serve/router.h"
#include "runtime/serve/shared_idempotency.h"
#include "src/common/rpc.h"

namespace loom::py {
namespace {

namespace serve = loom::serve;

// The process's router, made for the core worker now running; rebuilt
// after a shutdown and init.
struct ServeState {
  CoreWorker* core = nullptr;
  std::unique_ptr<serve::ActorCaller> caller;
  std::unique_ptr<serve::Router> router;
  std::unique_ptr<serve::Ingress> ingress;
  int ingress_port = 0;
};

absl::Mutex state_mu;
ServeState& State() {
  static ServeState* state = new ServeState;  // never destroyed (exit)
  return *state;
}

// The router and caller are stopped, not destroyed: a call the core worker
// still holds may complete into them later.
void ResetLocked(ServeState& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu) {
  if (s.router) s.router->Shutdown();  // every waiting request answered
  s.ingress.reset();                   // so its threads end: port freed
  if (s.caller) s.caller->Stop();
  (void)s.router.release();
  (void)s.caller.release();
  s.core = nullptr;
  s.ingress_port = 0;
}

serve::Router& RouterNow() {
  CoreWorker* core = &Core();  // raises when not initialized
  absl::MutexLock lock(&state_mu);
  ServeState& s = State();
  if (s.core != core) {
    ResetLocked(s);
    s.core = core;
    s.caller = std::make_unique<serve::ActorCaller>(core);
    s.router = std::make_unique<serve::Router>(
        serve::Router::Options{.caller = s.caller.get()});
  }
  return *s.router;
}

// A handle's call in flight.
class ServeCall {
 public:
  void Finish(serve::ServeReply reply, int64_t token) {
    {
      absl::MutexLock lock(&mu_);
      reply_ = std::move(reply);
      done_ = true;
    }
    if (token > 0) PushReadyToken(token);
  }
  // (code, value, message), or None at the timeout (ms; < 0: none).
  pyb::object Wait(int64_t timeout_ms) {
    auto r = WaitInterruptibly<serve::ServeReply>(
        timeout_ms, [this](int64_t slice) -> std::optional<serve::ServeReply> {
          absl::MutexLock lock(&mu_);
          auto done = [this]()
                          ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_; };
          if (slice < 0) {
            mu_.Await(absl::Condition(&done));
          } else if (!mu_.AwaitWithTimeout(absl::Condition(&done),
                                           absl::Milliseconds(slice))) {
            return std::nullopt;
          }
          return reply_;
        });
    if (!r) return pyb::none();
    return pyb::make_tuple(static_cast<int>(r->code), pyb::bytes(r->value),
                           r->message);
  }
  bool Done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }

 private:
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  serve::ServeReply reply_ ABSL_GUARDED_BY(mu_);
};

serve::DeploymentConfig ToConfig(const std::string& name, int max_ongoing,
                                 int max_queued, const pyb::dict& batched,
                                 const std::vector<pyb::bytes>& replicas) {
  serve::DeploymentConfig c;
  c.name = name;
  c.max_ongoing_requests = max_ongoing;
  c.max_queued_requests = max_queued;
  for (auto [key, value] : batched) {
    auto t = value.cast<std::tuple<int, double, std::vector<int>>>();
    serve::BatchConfig b;
    b.max_batch_size = std::get<0>(t);
    b.wait = absl::Seconds(std::get<1>(t));
    b.preferred = std::get<2>(t);
    c.batched[key.cast<std::string>()] = b;
  }
  for (const pyb::bytes& r : replicas) c.replicas.push_back(r);
  return c;
}

pyb::list StatsToPython(const std::vector<serve::DeploymentStats>& stats) {
  pyb::list out;
  for (const auto& s : stats) {
    pyb::dict d;
    d["name"] = s.name;
    d["replicas"] = s.replicas;
    d["queued"] = s.queued;
    d["ongoing"] = s.ongoing;
    d["codes"] = s.codes;
    d["batch_sizes"] = s.batch_sizes;
    d["requests"] = s.requests;
    d["p50_ms"] = s.p50_ms;
    d["p95_ms"] = s.p95_ms;
    d["p99_ms"] = s.p99_ms;
    out.append(d);
  }
  return out;
}

}  // namespace

void BindServe(pyb::module_& m) {
  pyb::class_<ServeCall, std::shared_ptr<ServeCall>>(m, "ServeCall")
      .def("wait", &ServeCall::Wait, pyb::arg("timeout_ms"))
      .def("done", &ServeCall::Done);
  m.def(
      "serve_update",
      [](const std::string& name, int max_ongoing, int max_queued,
         const pyb::dict& batched, const std::vector<pyb::bytes>& replicas,
         const std::vector<std::string>& streaming) {
        if (max_ongoing < 1) {
          throw pyb::value_error("max_ongoing_requests must be at least 1");
        }
        auto config =
            ToConfig(name, max_ongoing, max_queued, batched, replicas);
        config.streaming.insert(streaming.begin(), streaming.end());
        serve::Router& router = RouterNow();
        pyb::gil_scoped_release release;
        router.Update(std::move(config));
      },
      pyb::arg("name"), pyb::arg("max_ongoing"), pyb::arg("max_queued"),
      pyb::arg("batched"), pyb::arg("replicas"),
      pyb::arg("streaming") = std::vector<std::string>{});
  m.def(
      "serve_remove",
      [](const std::string& name) {
        serve::Router& router = RouterNow();
        pyb::gil_scoped_release release;
        router.Remove(name);
      },
      pyb::arg("name"));
  m.def("serve_deployments", [] { return RouterNow().Deployments(); });
  m.def("serve_take_stats", [] {
    serve::Router& router = RouterNow();
    std::vector<serve::DeploymentStats> stats;
    {
      pyb::gil_scoped_release release;
      stats = router.TakeStats();
    }
    return StatsToPython(stats);
  });
  m.def(
      "serve_submit",
      [](const std::string& deployment, const std::string& method,
         const std::string& batch_key, const pyb::bytes& payload,
         double deadline_ms, int priority, bool retryable, int64_t token) {
        serve::ServeRequest r;
        r.method = method;
        r.batch_key = batch_key;
        r.payload = payload;
        if (deadline_ms > 0) {
          r.deadline = absl::Now() + absl::Milliseconds(deadline_ms);
        }
        r.priority = priority;
        r.retryable = retryable;
        auto call = std::make_shared<ServeCall>();
        serve::Router& router = RouterNow();
        pyb::gil_scoped_release release;
        router.Submit(deployment, std::move(r),
                      [call, token](serve::ServeReply reply) {
                        call->Finish(std::move(reply), token);
                      });
        return call;
      },
      pyb::arg("deployment"), pyb::arg("method"), pyb::arg("batch_key"),
      pyb::arg("payload"), pyb::arg("deadline_ms") = 0.0,
      pyb::arg("priority") = 0, pyb::arg("retryable") = false,
      pyb::arg("token") = 0);
  m.def(
      "serve_ingress_start",
      [](const std::string& host, int port, const std::string& api_key,
         int threads) {
        serve::Router& router = RouterNow();
        absl::MutexLock lock(&state_mu);
        ServeState& s = State();
        if (s.ingress) return s.ingress_port;
        serve::Ingress::Options o;
        o.router = &router;
        o.token = rpc::ClusterToken();
        o.api_key = api_key;
        if (threads > 0) o.threads = threads;
        // People's tokens with their roles, traded at the head.
        auto people =
            std::make_shared<serve::PersonTokens>(Core().gcs_address());
        o.identify = [people](std::string_view token) {
          return people->Identify(token);
        };
        auto ingress = std::make_unique<serve::Ingress>(o);
        absl::StatusOr<int> bound;
        {
          pyb::gil_scoped_release release;
          bound = ingress->Start(host, port);
        }
        if (!bound.ok()) {
          throw std::runtime_error(std::string(bound.status().message()));
        }
        s.ingress = std::move(ingress);
        s.ingress_port = *bound;
        return *bound;
      },
      pyb::arg("host"), pyb::arg("port"), pyb::arg("api_key") = "",
      pyb::arg("threads") = 0);
  m.def(
      "serve_ingress_routes",
      [](const std::vector<std::pair<std::string, std::string>>& routes) {
        absl::MutexLock lock(&state_mu);
        ServeState& s = State();
        if (!s.ingress) throw std::runtime_error("no serve ingress here");
        std::vector<serve::Ingress::RouteTarget> targets;
        for (const auto& [prefix, deployment] : routes) {
          targets.push_back({prefix, deployment});
        }
        s.ingress->SetRoutes(std::move(targets));
      },
      pyb::arg("routes"));
  m.def("serve_sweep_idempotency", [] {
    pyb::gil_scoped_release release;
    return serve::SharedIdempotency::Sweep();
  });
  m.def("serve_reset", [] {
    pyb::gil_scoped_release release;
    absl::MutexLock lock(&state_mu);
    ResetLocked(State());
  });
}

}  // namespace loom::py
