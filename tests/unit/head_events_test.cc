// HeadEvents against a head of the test's own, served in-process: it
// follows the head's position, and after a restart (the head numbering
// from 1 again) takes the new head's position at once instead of asking
// from its old one again and again.
#include "src/common/head_events.h"

#include <gtest/gtest.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "proto/gcs.grpc.pb.h"
#include "tests/unit/fake_client_pool.h"

namespace loom {
namespace {

constexpr char kHead[] = "10.0.0.1:6379";

// Answers a poll at once when it asks for no wait or from past the head's
// position (as Publisher does), else holds it until Restart.
class FakeHead : public rpc::Gcs::CallbackService {
 public:
  explicit FakeHead(int64_t last_seq) : last_seq_(last_seq) {}

  grpc::ServerUnaryReactor* PollEvents(grpc::CallbackServerContext* ctx,
                                       const rpc::PollEventsRequest* req,
                                       rpc::PollEventsReply* reply) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::MutexLock lock(&mu_);
    asked_.push_back(req->after_seq());
    if (req->timeout_ms() == 0 || req->after_seq() > last_seq_) {
      reply->set_last_seq(last_seq_);
      reactor->Finish(grpc::Status::OK);
    } else {
      held_.push_back({reactor, reply});
    }
    return reactor;
  }

  // The head restarts numbered from `last_seq`: held polls are answered
  // with it.
  void Restart(int64_t last_seq) {
    absl::MutexLock lock(&mu_);
    last_seq_ = last_seq;
    ReleaseLocked();
  }
  void ReleaseAll() {
    absl::MutexLock lock(&mu_);
    ReleaseLocked();
  }
  // The after_seq of every poll so far, and how many are held.
  std::vector<int64_t> asked() {
    absl::MutexLock lock(&mu_);
    return asked_;
  }
  size_t held() {
    absl::MutexLock lock(&mu_);
    return held_.size();
  }

 private:
  void ReleaseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto& [reactor, reply] : held_) {
      reply->set_last_seq(last_seq_);
      reactor->Finish(grpc::Status::OK);
    }
    held_.clear();
  }

  absl::Mutex mu_;
  int64_t last_seq_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> asked_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<grpc::ServerUnaryReactor*, rpc::PollEventsReply*>> held_
      ABSL_GUARDED_BY(mu_);
};

bool Eventually(const std::function<bool()>& done) {
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

TEST(HeadEvents, FollowsARestartedHeadFromItsNewPositionAtOnce) {
  FakeHead head(50);
  FakeClientPool pool;
  pool.Serve(kHead, &head);
  EventLoop loop("head-events-test");
  loop.Start();
  HeadEvents::Options options{&loop, &pool, kHead};
  options.on_event = [](const rpc::Event&) {};
  HeadEvents events(options);
  events.Start();
  // Where the head stands, then a long poll from there.
  ASSERT_TRUE(Eventually([&] { return head.held() == 1; }));
  EXPECT_EQ(head.asked(), (std::vector<int64_t>{0, 50}));

  head.Restart(3);
  // Told 3 (< 50): it asks where the restarted head stands and polls from
  // there, held again; not asking from 50 over and over.
  ASSERT_TRUE(Eventually([&] { return head.held() == 1; }));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(head.asked(), (std::vector<int64_t>{0, 50, 50, 3}));

  events.Shutdown();
  head.ReleaseAll();
  loop.Stop();
}

}  // namespace
}  // namespace loom
