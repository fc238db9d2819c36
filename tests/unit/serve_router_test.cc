// The serve router's rules with a fake replica caller and a manual clock:
// replica limits, power of two choices, backpressure, deadlines, priority,
// batching (full, wait, preferred sizes, deadline-driven) and dead replicas.
#include <deque>
#include <set>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "runtime/metric_recorder.h"
#include "runtime/serve/router.h"

namespace loom::serve {
namespace {

class FakeCaller : public ReplicaCaller {
 public:
  struct Sent {
    std::string replica, method;
    std::vector<std::string> payloads;
    bool batch;
    std::function<void(CallOutcome)> done;
  };
  void Call(
      const std::string& replica, const std::string& method,
      std::vector<std::string> payloads, bool batch,
      std::function<void(CallOutcome)> done,
      std::function<void(std::shared_ptr<ReplyStream>)> on_stream) override {
    if (on_stream) on_stream(nullptr);  // "sent": the test ends it later
    absl::MutexLock lock(&mu_);
    calls_.push_back(
        {replica, method, std::move(payloads), batch, std::move(done)});
  }
  size_t Count() {
    absl::MutexLock lock(&mu_);
    return calls_.size();
  }
  // Waits (real time: timers run on the router's loop) for n calls.
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return calls_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(5));
  }
  Sent Take() {
    absl::MutexLock lock(&mu_);
    Sent c = std::move(calls_.front());
    calls_.pop_front();
    return c;
  }
  // Answers a call: each payload echoed back.
  static void Echo(Sent& c) {
    CallOutcome out;
    out.values = c.payloads;
    c.done(out);
  }

 private:
  absl::Mutex mu_;
  std::deque<Sent> calls_ ABSL_GUARDED_BY(mu_);
};

struct Replies {
  absl::Mutex mu;
  std::vector<ServeReply> got ABSL_GUARDED_BY(mu);
  Router::Done Add() {
    return [this](ServeReply r) {
      absl::MutexLock lock(&mu);
      got.push_back(std::move(r));
    };
  }
  std::vector<ServeReply> Snapshot() {
    absl::MutexLock lock(&mu);
    return got;
  }
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
      return got.size() >= n;
    };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(5));
  }
};

ServeRequest Req(std::string payload, std::string key = "") {
  ServeRequest r;
  r.method = "m";
  r.batch_key = std::move(key);
  r.payload = std::move(payload);
  return r;
}

class RouterTest : public ::testing::Test {
 protected:
  FakeCaller caller_;
  ManualClock clock_;
  Replies replies_;  // outlives the router, which fails what is queued
  Router router_{{.caller = &caller_, .clock = &clock_, .seed = 7}};
};

TEST_F(RouterTest, ReplicasRunAtMostMaxOngoingAndTheRestWait) {
  router_.Update(
      {.name = "d", .max_ongoing_requests = 2, .replicas = {"a", "b"}});
  for (int i = 0; i < 5; ++i) router_.Submit("d", Req("x"), replies_.Add());
  ASSERT_EQ(caller_.Count(), 4u);
  std::map<std::string, int> per_replica;
  std::vector<FakeCaller::Sent> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(caller_.Take());
  for (auto& c : calls) ++per_replica[c.replica];
  EXPECT_EQ(per_replica["a"], 2);
  EXPECT_EQ(per_replica["b"], 2);
  EXPECT_EQ(router_.TakeStats()[0].queued, 1);
  FakeCaller::Echo(calls[0]);  // a slot frees: the fifth goes
  ASSERT_EQ(caller_.Count(), 1u);
  EXPECT_EQ(caller_.Take().replica, calls[0].replica);
  EXPECT_EQ(replies_.Snapshot().size(), 1u);
  EXPECT_EQ(replies_.Snapshot()[0].value, "x");
}

TEST_F(RouterTest, AFullQueueRefusesAtOnce) {
  router_.Update({.name = "d",
                  .max_ongoing_requests = 1,
                  .max_queued_requests = 1,
                  .replicas = {"a"}});
  for (int i = 0; i < 3; ++i) router_.Submit("d", Req("x"), replies_.Add());
  auto got = replies_.Snapshot();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].code, ServeReply::kBackPressure);
  EXPECT_NE(got[0].message.find("max_queued_requests"), std::string::npos);
  router_.Submit("nope", Req("x"), replies_.Add());
  EXPECT_EQ(replies_.Snapshot().back().code, ServeReply::kNoDeployment);
}

TEST_F(RouterTest, ADeadlineThatCannotBeMetIsRefusedEarly) {
  router_.Update({.name = "d", .max_ongoing_requests = 1, .replicas = {"a"}});
  router_.Submit("d", Req("first"), replies_.Add());
  auto first = caller_.Take();
  clock_.Advance(absl::Milliseconds(100));  // a call takes 100 ms
  FakeCaller::Echo(first);
  // Sooner than a call takes: refused without being sent.
  ServeRequest soon = Req("soon");
  soon.deadline = clock_.Now() + absl::Milliseconds(50);
  router_.Submit("d", soon, replies_.Add());
  EXPECT_EQ(replies_.Snapshot().back().code, ServeReply::kDeadline);
  EXPECT_EQ(caller_.Count(), 0u);
  // Queued behind a running call: refused once waiting would miss it.
  router_.Submit("d", Req("busy"), replies_.Add());
  ServeRequest later = Req("later");
  later.deadline = clock_.Now() + absl::Milliseconds(150);
  router_.Submit("d", later, replies_.Add());
  EXPECT_EQ(replies_.Snapshot().size(), 2u);
  clock_.Advance(absl::Milliseconds(60));
  ASSERT_TRUE(replies_.WaitFor(3));
  EXPECT_EQ(replies_.Snapshot().back().code, ServeReply::kDeadline);
  EXPECT_NE(replies_.Snapshot().back().message.find("queue"),
            std::string::npos);
}

TEST_F(RouterTest, HigherPriorityThenEarlierDeadlineGoesFirst) {
  router_.Update({.name = "d", .max_ongoing_requests = 1, .replicas = {"a"}});
  router_.Submit("d", Req("running"), replies_.Add());
  ServeRequest low = Req("low"), high = Req("high"), urgent = Req("urgent");
  high.priority = 1;
  urgent.priority = 1;
  urgent.deadline = clock_.Now() + absl::Seconds(10);
  router_.Submit("d", low, replies_.Add());
  router_.Submit("d", high, replies_.Add());
  router_.Submit("d", urgent, replies_.Add());
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    auto c = caller_.Take();
    order.push_back(c.payloads[0]);
    FakeCaller::Echo(c);
  }
  EXPECT_EQ(order,
            (std::vector<std::string>{"running", "urgent", "high", "low"}));
}

TEST_F(RouterTest, BatchesFormWhenFullOrWhenTheOldestHasWaited) {
  DeploymentConfig d{.name = "d", .max_ongoing_requests = 8, .replicas = {"a"}};
  d.batched["f"] = {.max_batch_size = 4, .wait = absl::Milliseconds(10)};
  router_.Update(d);
  for (int i = 0; i < 3; ++i) {
    router_.Submit("d", Req(std::to_string(i), "f"), replies_.Add());
  }
  EXPECT_EQ(caller_.Count(), 0u);  // waiting for a fourth or the timeout
  clock_.Advance(absl::Milliseconds(10));
  ASSERT_TRUE(caller_.WaitFor(1));
  auto batch = caller_.Take();
  EXPECT_TRUE(batch.batch);
  EXPECT_EQ(batch.payloads, (std::vector<std::string>{"0", "1", "2"}));
  for (int i = 0; i < 4; ++i) {
    router_.Submit("d", Req("x", "f"), replies_.Add());
  }
  ASSERT_EQ(caller_.Count(), 1u);  // full: sent at once
  EXPECT_EQ(caller_.Take().payloads.size(), 4u);
  FakeCaller::Echo(batch);
  ASSERT_EQ(replies_.Snapshot().size(), 3u);
  EXPECT_EQ(replies_.Snapshot()[2].value, "2");
  EXPECT_EQ(router_.TakeStats()[0].batch_sizes,
            (std::map<int, int64_t>{{3, 1}, {4, 1}}));
}

TEST_F(RouterTest, APreferredSizeGoesAtOnce) {
  DeploymentConfig d{.name = "d", .max_ongoing_requests = 8, .replicas = {"a"}};
  d.batched["f"] = {
      .max_batch_size = 8, .wait = absl::Seconds(10), .preferred = {2}};
  router_.Update(d);
  for (int i = 0; i < 3; ++i)
    router_.Submit("d", Req("x", "f"), replies_.Add());
  ASSERT_EQ(caller_.Count(), 1u);
  EXPECT_EQ(caller_.Take().payloads.size(), 2u);
}

TEST_F(RouterTest, ABatchGoesEarlyWhenWaitingWouldMissADeadline) {
  DeploymentConfig d{.name = "d", .max_ongoing_requests = 8, .replicas = {"a"}};
  d.batched["f"] = {.max_batch_size = 8, .wait = absl::Seconds(10)};
  router_.Update(d);
  // Learn that a batch of 2 takes 100 ms.
  router_.Submit("d", Req("x", "f"), replies_.Add());
  router_.Submit("d", Req("x", "f"), replies_.Add());
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(caller_.WaitFor(1));
  auto warm = caller_.Take();
  clock_.Advance(absl::Milliseconds(100));
  FakeCaller::Echo(warm);
  ServeRequest r = Req("deadline", "f");
  r.deadline = clock_.Now() + absl::Milliseconds(300);
  router_.Submit("d", r, replies_.Add());
  EXPECT_EQ(caller_.Count(), 0u);
  clock_.Advance(absl::Milliseconds(150));  // 150 ms left > 100 ms a batch
  absl::SleepFor(absl::Milliseconds(150));  // the loop sees the clock
  EXPECT_EQ(caller_.Count(), 0u);
  clock_.Advance(absl::Milliseconds(60));  // 90 ms left: must go now
  ASSERT_TRUE(caller_.WaitFor(1));
  EXPECT_EQ(caller_.Take().payloads[0], "deadline");
}

TEST_F(RouterTest, ADeadReplicasRetryableRequestsRunElsewhere) {
  router_.Update(
      {.name = "d", .max_ongoing_requests = 1, .replicas = {"a", "b"}});
  ServeRequest safe = Req("safe");
  safe.retryable = true;
  router_.Submit("d", safe, replies_.Add());
  router_.Submit("d", Req("unsafe"), replies_.Add());
  auto c1 = caller_.Take(), c2 = caller_.Take();
  auto& on_a = c1.replica == "a" ? c1 : c2;
  auto& on_b = c1.replica == "a" ? c2 : c1;
  CallOutcome died{CallOutcome::kReplicaDied, {}, "actor died"};
  FakeCaller::Echo(on_b);  // b finishes
  on_a.done(died);         // a dies
  auto got = replies_.Snapshot();
  std::string on_a_payload = on_a.payloads[0];
  if (on_a_payload == "unsafe") {
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].code, ServeReply::kReplicaDied);
  } else {
    ASSERT_EQ(caller_.Count(), 1u);  // resent, to b
    auto again = caller_.Take();
    EXPECT_EQ(again.replica, "b");
    EXPECT_EQ(again.payloads[0], "safe");
  }
  // The dead replica gets nothing more, even if a table still lists it.
  router_.Update(
      {.name = "d", .max_ongoing_requests = 1, .replicas = {"a", "b"}});
  EXPECT_EQ(router_.TakeStats()[0].replicas, 1);
}

TEST_F(RouterTest, AnUnlistedReplicaFinishesItsCallsAndGetsNoMore) {
  router_.Update({.name = "d", .max_ongoing_requests = 1, .replicas = {"a"}});
  router_.Submit("d", Req("x"), replies_.Add());
  auto running = caller_.Take();
  router_.Update({.name = "d", .max_ongoing_requests = 1, .replicas = {"b"}});
  router_.Submit("d", Req("y"), replies_.Add());
  EXPECT_EQ(caller_.Take().replica, "b");
  FakeCaller::Echo(running);
  EXPECT_EQ(replies_.Snapshot()[0].value, "x");
  router_.Remove("d");
  router_.Submit("d", Req("z"), replies_.Add());
  EXPECT_EQ(replies_.Snapshot().back().code, ServeReply::kNoDeployment);
}

}  // namespace
}  // namespace loom::serve

namespace loom::serve {
namespace {

TEST_F(RouterTest, AnswersAndBatchesAreExportedAsMetrics) {
  google::protobuf::RepeatedPtrField<rpc::MetricPoint> drained;
  MetricRecorder::Global().Drain(&drained);  // what earlier tests left
  router_.Update(
      {.name = "metrics#d", .max_ongoing_requests = 1, .replicas = {"a"}});
  router_.Submit("metrics#d", Req("x"), replies_.Add());
  auto c = caller_.Take();
  FakeCaller::Echo(c);
  drained.Clear();
  MetricRecorder::Global().Drain(&drained);
  std::set<std::string> names;
  for (const auto& p : drained) {
    for (const auto& [k, v] : p.labels()) {
      if (k == "deployment" && v == "metrics#d") names.insert(p.name());
    }
  }
  EXPECT_TRUE(names.count("loom_serve_deployment_requests_total"));
  EXPECT_TRUE(names.count("loom_serve_deployment_latency_ms"));
  EXPECT_TRUE(names.count("loom_serve_deployment_queued_requests"));
}

}  // namespace
}  // namespace loom::serve

namespace loom::serve {
namespace {

TEST_F(RouterTest, AStreamIsAnsweredWhenSentAndHoldsItsSlotUntilItEnds) {
  DeploymentConfig d{.name = "d", .max_ongoing_requests = 1, .replicas = {"a"}};
  d.streaming.insert("gen");
  router_.Update(d);
  ServeRequest r = Req("x", "gen");
  r.accepts_stream = true;
  router_.Submit("d", r, replies_.Add());
  ASSERT_EQ(replies_.Snapshot().size(), 1u);  // answered at once
  EXPECT_EQ(replies_.Snapshot()[0].code, ServeReply::kOk);
  auto running = caller_.Take();
  router_.Submit("d", Req("next"), replies_.Add());
  EXPECT_EQ(caller_.Count(), 0u);             // the stream holds the only slot
  FakeCaller::Echo(running);                  // the stream ends
  EXPECT_EQ(replies_.Snapshot().size(), 1u);  // not answered twice
  ASSERT_EQ(caller_.Count(), 1u);
  EXPECT_EQ(caller_.Take().payloads[0], "next");
}

}  // namespace
}  // namespace loom::serve

namespace loom::serve {
namespace {

TEST_F(RouterTest, ShutdownAnswersWhatWaitsButNotAStreamAlreadyAnswered) {
  DeploymentConfig d{.name = "d", .max_ongoing_requests = 1, .replicas = {"a"}};
  d.streaming.insert("gen");
  router_.Update(d);
  ServeRequest r = Req("x", "gen");
  r.accepts_stream = true;
  router_.Submit("d", r, replies_.Add());         // streaming, answered at once
  router_.Submit("d", Req("y"), replies_.Add());  // waits for the slot
  router_.Shutdown();
  auto got = replies_.Snapshot();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].code, ServeReply::kOk);
  EXPECT_EQ(got[1].code, ServeReply::kFailed);
}

}  // namespace
}  // namespace loom::serve
