#include "runtime/serve/router.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/serve/serve_metrics.h"

namespace loom::serve {

struct Router::Pending {
  ServeRequest request;
  Done done;
  absl::Time arrival;
  uint64_t seq = 0;
};

namespace {
// Queue order: higher priority, then earlier deadline, then first come.
struct QueueOrder {
  template <typename P>
  bool operator()(const P& a, const P& b) const {
    return std::make_tuple(-a->request.priority, a->request.deadline, a->seq) <
           std::make_tuple(-b->request.priority, b->request.deadline, b->seq);
  }
};
constexpr double kEwma = 0.2;  // weight of the newest run time
}  // namespace

struct Router::ReplicaState {
  std::string id;
  int ongoing = 0;
  bool listed = true;  // in the latest table
};

struct Router::Deployment {
  DeploymentConfig config;
  std::vector<ReplicaState> replicas;
  std::set<std::shared_ptr<Pending>, QueueOrder> queue;
  // (method, batch size) -> measured seconds per call.
  std::map<std::pair<std::string, int>, double> run_time;
  absl::Time timer_due = absl::InfiniteFuture();
  int ongoing = 0;
  std::map<int, int64_t> codes;
  std::map<int, int64_t> batch_sizes;
  LatencyWindow latency;
};

Router::Router(Options options)
    : options_(options),
      loop_("serve-router", options.clock),
      rng_(options.seed ? options.seed : std::random_device{}()) {
  loop_.Start();
}

Router::~Router() { Shutdown(); }

void Router::Shutdown() {
  Replies replies;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    ServeReply stopped{ServeReply::kFailed, "",
                       "serving stopped in this process (shutdown)"};
    for (auto& [name, d] : deployments_) {
      for (const auto& p : d->queue) replies.emplace_back(p->done, stopped);
      d->queue.clear();
    }
    for (const auto& p : running_) {
      // A stream was answered when it started: nothing more to say.
      if (p->done) replies.emplace_back(p->done, stopped);
    }
    running_.clear();
  }
  loop_.Stop();
  for (auto& [done, reply] : replies) done(std::move(reply));
}

void Router::Update(DeploymentConfig config) {
  std::vector<Send> sends;
  Replies replies;
  {
    absl::MutexLock lock(&mu_);
    auto& slot = deployments_[config.name];
    if (!slot) slot = std::make_unique<Deployment>();
    Deployment& d = *slot;
    std::vector<ReplicaState> next;
    for (const std::string& id : config.replicas) {
      if (dead_.contains(id)) continue;
      ReplicaState r{id};
      for (const ReplicaState& old : d.replicas) {
        if (old.id == id) r.ongoing = old.ongoing;
      }
      next.push_back(r);
    }
    for (const ReplicaState& old : d.replicas) {  // keep the busy ones
      bool kept = std::any_of(next.begin(), next.end(),
                              [&](const auto& r) { return r.id == old.id; });
      if (!kept && old.ongoing > 0) {
        next.push_back(old);
        next.back().listed = false;
      }
    }
    d.replicas = std::move(next);
    d.config = std::move(config);
    Pump(d, &sends, &replies);
  }
  Run(std::move(sends), std::move(replies));
}

void Router::Remove(const std::string& name) {
  Replies replies;
  {
    absl::MutexLock lock(&mu_);
    auto it = deployments_.find(name);
    if (it == deployments_.end()) return;
    for (const auto& p : it->second->queue) {
      replies.emplace_back(p->done, ServeReply{ServeReply::kNoDeployment, "",
                                               absl::StrCat("deployment ", name,
                                                            " was deleted")});
    }
    deployments_.erase(it);
  }
  Run({}, std::move(replies));
}

void Router::Submit(const std::string& deployment, ServeRequest request,
                    Done done) {
  std::vector<Send> sends;
  Replies replies;
  {
    absl::MutexLock lock(&mu_);
    auto it = deployments_.find(deployment);
    if (stopped_) {
      replies.emplace_back(std::move(done),
                           ServeReply{ServeReply::kFailed, "",
                                      "serving stopped in this process"});
    } else if (it == deployments_.end()) {
      replies.emplace_back(
          std::move(done),
          ServeReply{ServeReply::kNoDeployment, "",
                     absl::StrCat("no deployment ", deployment)});
    } else {
      auto p = std::make_shared<Pending>();
      p->request = std::move(request);
      p->done = std::move(done);
      p->arrival = options_.clock->Now();
      p->seq = ++seq_;
      Admit(*it->second, std::move(p), &sends, &replies);
    }
  }
  Run(std::move(sends), std::move(replies));
}

void Router::Admit(Deployment& d, std::shared_ptr<Pending> p,
                   std::vector<Send>* sends, Replies* replies) {
  if (p->request.deadline != absl::InfiniteFuture() &&
      p->arrival + Estimate(d, p->request.batch_key, 1) > p->request.deadline) {
    return Reply(d, p,
                 {ServeReply::kDeadline, "",
                  "the request's deadline cannot be met (it has passed, or "
                  "is sooner than a call takes)"},
                 replies);
  }
  d.queue.insert(p);
  Pump(d, sends, replies);
  int limit = d.config.max_queued_requests;
  if (limit >= 0 && static_cast<int>(d.queue.size()) > limit &&
      d.queue.erase(p) > 0) {
    Reply(d, p,
          {ServeReply::kBackPressure, "",
           absl::StrCat("deployment ", d.config.name, " is at capacity: ",
                        limit, " requests queued (max_queued_requests)")},
          replies);
  }
}

Router::ReplicaState* Router::Pick(Deployment& d) {
  std::vector<ReplicaState*> free;
  for (ReplicaState& r : d.replicas) {
    if (r.listed && r.ongoing < d.config.max_ongoing_requests) {
      free.push_back(&r);
    }
  }
  if (free.empty()) return nullptr;
  if (free.size() == 1) return free[0];
  std::uniform_int_distribution<size_t> pick(0, free.size() - 1);
  ReplicaState* a = free[pick(rng_)];
  ReplicaState* b = free[pick(rng_)];
  return b->ongoing < a->ongoing ? b : a;
}

absl::Duration Router::Estimate(const Deployment& d, const std::string& method,
                                int size) const {
  // The measured size, else the nearest smaller one measured.
  auto it = d.run_time.upper_bound({method, size});
  if (it == d.run_time.begin()) return absl::ZeroDuration();
  --it;
  if (it->first.first != method) return absl::ZeroDuration();
  return absl::Seconds(it->second);
}

void Router::Pump(Deployment& d, std::vector<Send>* sends, Replies* replies) {
  ExpireDeadlines(d, replies);
  while (!d.queue.empty() && PumpOnce(d, sends)) {
  }
  // Wake for the first queued request whose deadline would be missed.
  absl::Time due = absl::InfiniteFuture();
  for (const auto& p : d.queue) {
    if (p->request.deadline == absl::InfiniteFuture()) continue;
    due = std::min(due,
                   p->request.deadline - Estimate(d, p->request.batch_key, 1));
  }
  if (due != absl::InfiniteFuture()) ArmTimer(d, due);
  ServeMetrics::Get().Load(d.config.name, static_cast<int>(d.queue.size()),
                           d.ongoing);
}

void Router::ExpireDeadlines(Deployment& d, Replies* replies) {
  absl::Time now = options_.clock->Now();
  for (auto it = d.queue.begin(); it != d.queue.end();) {
    const auto& p = *it;
    if (p->request.deadline != absl::InfiniteFuture() &&
        now + Estimate(d, p->request.batch_key, 1) > p->request.deadline) {
      Reply(d, p,
            {ServeReply::kDeadline, "",
             absl::StrCat("the request waited ",
                          absl::FormatDuration(now - p->arrival),
                          " in the queue and can no longer meet its "
                          "deadline")},
            replies);
      it = d.queue.erase(it);
    } else {
      ++it;
    }
  }
}

bool Router::PumpOnce(Deployment& d, std::vector<Send>* sends) {
  ReplicaState* replica = Pick(d);
  if (replica == nullptr) return false;
  const auto& head = *d.queue.begin();
  Send send{d.config.name, replica->id, head->request.method};
  auto batched = d.config.batched.find(head->request.batch_key);
  if (head->request.batch_key.empty() || batched == d.config.batched.end()) {
    send.stream = head->request.accepts_stream &&
                  d.config.streaming.count(head->request.batch_key) > 0;
    send.requests.push_back(head);
    d.queue.erase(d.queue.begin());
  } else if (!FormBatch(d, batched->second, *replica, &send)) {
    return false;  // it waits (a timer is armed)
  }
  int size = static_cast<int>(send.requests.size());
  for (const auto& p : send.requests) running_.insert(p);
  replica->ongoing += size;
  d.ongoing += size;
  if (send.batch) {
    ++d.batch_sizes[size];
    ServeMetrics::Get().Batch(d.config.name, size);
  }
  sends->push_back(std::move(send));
  return true;
}

bool Router::FormBatch(Deployment& d, const BatchConfig& b,
                       const ReplicaState& replica, Send* send) {
  const ServeRequest& head = (*d.queue.begin())->request;
  // A batch is at most the replica's free slots.
  int room = d.config.max_ongoing_requests - replica.ongoing;
  int cap = std::max(1, std::min(b.max_batch_size, room));
  std::vector<std::shared_ptr<Pending>> members;
  absl::Time oldest = absl::InfiniteFuture();
  absl::Time earliest = absl::InfiniteFuture();
  int same = 0;  // every queued request this batch could take
  for (const auto& p : d.queue) {
    if (p->request.method != head.method ||
        p->request.batch_key != head.batch_key) {
      continue;
    }
    ++same;
    oldest = std::min(oldest, p->arrival);
    earliest = std::min(earliest, p->request.deadline);
    if (static_cast<int>(members.size()) < cap) members.push_back(p);
  }
  int n = static_cast<int>(members.size());
  int largest_preferred = 0;  // that fits
  for (int s : b.preferred) {
    if (s <= cap) largest_preferred = std::max(largest_preferred, s);
  }
  absl::Time now = options_.clock->Now();
  absl::Time wait_until = oldest + b.wait;
  // Waiting past this would miss the earliest deadline, by the measured
  // run time of the batch that waiting would make.
  absl::Time deadline_until =
      earliest == absl::InfiniteFuture()
          ? absl::InfiniteFuture()
          : earliest - Estimate(d, head.batch_key, std::min(cap, same + 1));
  bool full = n >= cap || (largest_preferred > 0 && n >= largest_preferred);
  if (!full && now < wait_until && now < deadline_until) {
    ArmTimer(d, std::min(wait_until, deadline_until));
    return false;
  }
  int best = 0;  // the largest preferred size there is, else all
  for (int s : b.preferred) {
    if (s <= n) best = std::max(best, s);
  }
  members.resize(best > 0 ? best : n);
  for (const auto& p : members) d.queue.erase(p);
  send->requests = std::move(members);
  send->batch = true;
  return true;
}

void Router::ArmTimer(Deployment& d, absl::Time due) {
  if (due >= d.timer_due) return;
  d.timer_due = due;
  std::string name = d.config.name;
  absl::Duration delay =
      std::max(absl::ZeroDuration(), due - options_.clock->Now());
  loop_.PostAfter(delay, [this, name] { OnTimer(name); });
}

void Router::OnTimer(const std::string& name) {
  std::vector<Send> sends;
  Replies replies;
  {
    absl::MutexLock lock(&mu_);
    auto it = deployments_.find(name);
    if (it == deployments_.end()) return;
    Deployment& d = *it->second;
    if (options_.clock->Now() < d.timer_due) return;  // a later one is armed
    d.timer_due = absl::InfiniteFuture();
    Pump(d, &sends, &replies);
  }
  Run(std::move(sends), std::move(replies));
}

void Router::Reply(Deployment& d, std::shared_ptr<Pending> p, ServeReply reply,
                   Replies* replies) {
  int code = HttpCodeOf(reply.code);
  double ms = absl::ToDoubleMilliseconds(options_.clock->Now() - p->arrival);
  ++d.codes[code];
  d.latency.Add(ms);
  ServeMetrics::Get().Reply(d.config.name, code, ms);
  replies->emplace_back(std::move(p->done), std::move(reply));
}

void Router::Run(std::vector<Send> sends, Replies replies) {
  for (auto& [done, reply] : replies) done(std::move(reply));
  for (Send& send : sends) {
    std::vector<std::string> payloads;
    payloads.reserve(send.requests.size());
    for (const auto& p : send.requests) payloads.push_back(p->request.payload);
    absl::Time started = options_.clock->Now();
    auto shared = std::make_shared<Send>(std::move(send));
    std::function<void(std::shared_ptr<ReplyStream>)> on_stream;
    if (shared->stream) {
      on_stream = [this, shared](std::shared_ptr<ReplyStream> stream) {
        Started(*shared, std::move(stream));
      };
    }
    options_.caller->Call(
        shared->replica, shared->method, std::move(payloads), shared->batch,
        [this, shared, started](CallOutcome outcome) {
          Complete(*shared, started, std::move(outcome));
        },
        std::move(on_stream));
  }
}

void Router::Started(const Send& send, std::shared_ptr<ReplyStream> stream) {
  Replies replies;
  {
    absl::MutexLock lock(&mu_);
    const auto& p = send.requests[0];
    auto it = deployments_.find(send.deployment);
    // Answered now; it stays running (its slot taken) until the end.
    if (it != deployments_.end() && running_.contains(p) && p->done) {
      ServeReply reply;
      reply.stream = std::move(stream);
      Reply(*it->second, p, std::move(reply), &replies);
    }
  }
  Run({}, std::move(replies));
}

void Router::Complete(const Send& send, absl::Time started,
                      CallOutcome outcome) {
  std::vector<Send> sends;
  Replies replies;
  {
    absl::MutexLock lock(&mu_);
    auto it = deployments_.find(send.deployment);
    Deployment* d = it == deployments_.end() ? nullptr : it->second.get();
    int size = static_cast<int>(send.requests.size());
    if (d != nullptr) {
      d->ongoing -= size;
      for (auto r = d->replicas.begin(); r != d->replicas.end(); ++r) {
        if (r->id != send.replica) continue;
        r->ongoing -= size;
        if (!r->listed && r->ongoing <= 0) d->replicas.erase(r);
        break;
      }
    }
    if (outcome.kind == CallOutcome::kReplicaDied) {
      dead_.insert(send.replica);
      if (d != nullptr) {
        d->replicas.erase(
            std::remove_if(d->replicas.begin(), d->replicas.end(),
                           [&](const auto& r) { return r.id == send.replica; }),
            d->replicas.end());
      }
    } else if (outcome.kind == CallOutcome::kOk && d != nullptr) {
      double took = absl::ToDoubleSeconds(options_.clock->Now() - started);
      double& est = d->run_time[{send.requests[0]->request.batch_key, size}];
      est = est == 0 ? took : (1 - kEwma) * est + kEwma * took;
    }
    for (int i = 0; i < size; ++i) {
      const auto& p = send.requests[i];
      if (running_.erase(p) == 0) continue;  // answered at shutdown
      if (!p->done) continue;  // a stream, answered when it started
      ServeReply reply;
      if (outcome.kind == CallOutcome::kOk) {
        if (i < static_cast<int>(outcome.values.size())) {
          reply.value = std::move(outcome.values[i]);
        } else {
          reply = {ServeReply::kFailed, "",
                   "the replica answered a batch with fewer results than "
                   "requests"};
        }
      } else if (outcome.kind == CallOutcome::kReplicaDied &&
                 p->request.retryable && d != nullptr) {
        d->queue.insert(p);  // its seq keeps its place
        continue;
      } else {
        reply = {outcome.kind == CallOutcome::kReplicaDied
                     ? ServeReply::kReplicaDied
                     : ServeReply::kFailed,
                 "", outcome.message};
      }
      if (d != nullptr) {
        Reply(*d, p, std::move(reply), &replies);
      } else {
        replies.emplace_back(p->done, std::move(reply));
      }
    }
    if (d != nullptr) Pump(*d, &sends, &replies);
  }
  Run(std::move(sends), std::move(replies));
}

std::vector<DeploymentStats> Router::TakeStats() {
  absl::MutexLock lock(&mu_);
  std::vector<DeploymentStats> out;
  for (auto& [name, d] : deployments_) {
    DeploymentStats s;
    s.name = name;
    for (const auto& r : d->replicas) s.replicas += r.listed ? 1 : 0;
    s.queued = static_cast<int>(d->queue.size());
    s.ongoing = d->ongoing;
    s.codes = std::move(d->codes);
    s.batch_sizes = std::move(d->batch_sizes);
    s.requests = d->latency.count();
    s.p50_ms = d->latency.Percentile(0.50);
    s.p95_ms = d->latency.Percentile(0.95);
    s.p99_ms = d->latency.Percentile(0.99);
    d->codes.clear();
    d->batch_sizes.clear();
    d->latency.Clear();
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::string> Router::Deployments() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, d] : deployments_) out.push_back(name);
  return out;
}

}  // namespace loom::serve
