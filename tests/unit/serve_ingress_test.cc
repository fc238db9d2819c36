// The serve ingress's pieces without a cluster: the idempotency cache
// (replay, waiting, expiry, failures not kept) and the checks on a
// replica's HTTP answer (no header injection, a real status).
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "loom/serialization.h"
#include "runtime/serve/idempotency.h"
#include "runtime/serve/ingress.h"

namespace loom::serve {
namespace {

TEST(IdempotencyCache, ReplaysKeptAnswersAndRunsAgainAfterAFailure) {
  ManualClock clock;
  IdempotencyCache cache({.ttl = absl::Minutes(1), .clock = &clock});
  EXPECT_FALSE(cache.Begin("k").kept);
  cache.Finish("k", {201, "first"});
  auto again = cache.Begin("k");
  ASSERT_TRUE(again.kept);
  EXPECT_EQ(again.kept->body, "first");
  EXPECT_EQ(again.kept->headers.back().first, "Idempotent-Replayed");
  clock.Advance(absl::Minutes(2));  // expired: runs again
  EXPECT_FALSE(cache.Begin("k").kept);
  cache.Finish("k", {502, "replica died"});
  EXPECT_FALSE(cache.Begin("k").kept);  // a failure is not kept
  cache.Finish("k", {200, "ok"});
}

TEST(IdempotencyCache, ARetryWhileTheFirstRunsWaitsForItsAnswer) {
  IdempotencyCache cache({});
  ASSERT_FALSE(cache.Begin("k").kept);
  absl::Notification started;
  std::optional<HttpResponse> got;
  std::thread retry([&] {
    started.Notify();
    got = cache.Begin("k").kept;
  });
  started.WaitForNotification();
  absl::SleepFor(absl::Milliseconds(50));
  cache.Finish("k", {200, "the answer"});
  retry.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->body, "the answer");
}

TEST(IdempotencyCache, KeepsAtMostMaxEntries) {
  IdempotencyCache cache({.max_entries = 2});
  for (std::string k : {"a", "b", "c"}) {
    cache.Begin(k);
    cache.Finish(k, {200, k});
  }
  EXPECT_FALSE(cache.Begin("a").kept);  // the oldest went
  EXPECT_TRUE(cache.Begin("c").kept);
}

std::string Answer(int status,
                   std::vector<std::pair<std::string, std::string>> headers) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> p(b);
  p.pack_array(4);
  p.pack(status);
  p.pack(std::string("text/plain"));
  p.pack(headers);
  p.pack(std::string("body"));
  return std::string(b.data(), b.size());
}

TEST(IngressAnswers, AReplicasAnswerIsCheckedBeforeItIsWritten) {
  auto ok =
      UnpackHttpAnswer(Answer(201, {{"X-A", "1"}, {"Content-Length", "999"}}));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->status, 201);
  EXPECT_EQ(ok->body, "body");
  ASSERT_EQ(ok->headers.size(), 1u);  // the server writes the length
  EXPECT_FALSE(UnpackHttpAnswer(Answer(200, {{"X-A", "1\r\nX-Evil: 1"}})).ok());
  EXPECT_FALSE(UnpackHttpAnswer(Answer(99, {})).ok());
  EXPECT_FALSE(UnpackHttpAnswer("not msgpack at all").ok());
}

}  // namespace
}  // namespace loom::serve
