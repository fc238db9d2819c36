// Unit tests for worker output on its way to the driver: the head's
// per-job log channel (src/gcs/log_channel.h) and the raylet's log monitor
// (src/raylet/log_monitor.h), which publishes to a real GcsServer over
// gRPC, and stays bounded while the head cannot be reached.
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "proto/gcs.grpc.pb.h"
#include "src/common/rpc.h"
#include "src/gcs/gcs_service.h"
#include "src/gcs/log_channel.h"
#include "src/raylet/log_monitor.h"

namespace loom {
namespace {

rpc::LogBatch Batch(std::vector<std::string> texts) {
  rpc::LogBatch b;
  b.set_node_ip("10.0.0.2");
  for (auto& t : texts) {
    rpc::LogLine* l = b.add_lines();
    l->set_pid(42);
    l->set_text(t);
  }
  return b;
}

// Polls `pred` every 10 ms for up to `timeout`.
bool WaitFor(const std::function<bool()>& pred,
             absl::Duration timeout = absl::Seconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

struct PollResult {
  bool answered = false;
  std::vector<rpc::LogBatch> batches;
  int64_t last = -1;
  int64_t dropped = -1;
};

gcs::LogChannel::PollCallback Into(PollResult* r) {
  return [r](std::vector<rpc::LogBatch> b, int64_t last, int64_t dropped) {
    r->answered = true;
    r->batches = std::move(b);
    r->last = last;
    r->dropped = dropped;
  };
}

TEST(LogChannel, NumbersBatchesPerJobAndAnswersPollsAfterASeq) {
  EventLoop loop("logs-test");
  gcs::LogChannel channel({&loop});
  JobId a = JobId::FromInt(1), b = JobId::FromInt(2);
  channel.Open(a);
  channel.Open(b);
  ASSERT_TRUE(channel.Publish(a, Batch({"a1"})).ok());
  ASSERT_TRUE(channel.Publish(a, Batch({"a2", "a3"})).ok());
  ASSERT_TRUE(channel.Publish(b, Batch({"b1"})).ok());
  PollResult r;
  ASSERT_TRUE(channel.Poll(a, 1, absl::Seconds(30), Into(&r)).ok());
  ASSERT_TRUE(r.answered);
  ASSERT_EQ(r.batches.size(), 1u);
  EXPECT_EQ(r.batches[0].seq(), 2);
  EXPECT_EQ(r.batches[0].lines(1).text(), "a3");
  EXPECT_EQ(r.last, 2);
  EXPECT_EQ(channel.last_seq(b), 1);
  // A head that restarted numbers from 1: a driver ahead of it gets all.
  PollResult ahead;
  ASSERT_TRUE(channel.Poll(b, 7, absl::Seconds(30), Into(&ahead)).ok());
  ASSERT_EQ(ahead.batches.size(), 1u);
  EXPECT_EQ(ahead.last, 1);
  // A job that is not open keeps nothing and is not polled.
  EXPECT_EQ(channel.Publish(JobId::FromInt(3), Batch({"x"})).code(),
            absl::StatusCode::kNotFound);
  PollResult none;
  EXPECT_EQ(
      channel.Poll(JobId::FromInt(3), 0, absl::Seconds(1), Into(&none)).code(),
      absl::StatusCode::kNotFound);
}

TEST(LogChannel, ALongPollWakesOnItsJobsBatchOnlyAndForgetAnswersIt) {
  EventLoop loop("logs-test");
  loop.Start();
  gcs::LogChannel channel({&loop});
  JobId a = JobId::FromInt(1), b = JobId::FromInt(2);
  PollResult r, forgotten;
  loop.RunSync([&] {
    channel.Open(a);
    channel.Open(b);
    ASSERT_TRUE(channel.Poll(a, 0, absl::Seconds(30), Into(&r)).ok());
    ASSERT_TRUE(channel.Poll(b, 0, absl::Seconds(30), Into(&forgotten)).ok());
    ASSERT_TRUE(channel.Publish(b, Batch({"other job"})).ok());
  });
  // b's poll was answered by b's batch; a's still waits.
  EXPECT_TRUE(forgotten.answered);
  EXPECT_FALSE(r.answered);
  loop.RunSync([&] { ASSERT_TRUE(channel.Publish(a, Batch({"mine"})).ok()); });
  ASSERT_TRUE(r.answered);
  ASSERT_EQ(r.batches.size(), 1u);
  EXPECT_EQ(r.batches[0].lines(0).text(), "mine");
  // The job ends: a waiting poll is answered at once (a poll left waiting
  // would hold up the head's shutdown), later ones do not wait, and no more
  // lines are kept.
  PollResult waiting, after_end;
  loop.RunSync([&] {
    ASSERT_TRUE(channel.Poll(a, 1, absl::Seconds(30), Into(&waiting)).ok());
    channel.End(a);
    EXPECT_TRUE(waiting.answered);
    ASSERT_TRUE(channel.Poll(a, 1, absl::Seconds(30), Into(&after_end)).ok());
    EXPECT_TRUE(after_end.answered);
    EXPECT_EQ(channel.Publish(a, Batch({"late"})).code(),
              absl::StatusCode::kNotFound);
  });
  EXPECT_TRUE(waiting.batches.empty());
  EXPECT_EQ(after_end.last, 1);
  PollResult forgotten_wait;
  loop.RunSync([&] {
    ASSERT_TRUE(
        channel.Poll(b, 1, absl::Seconds(30), Into(&forgotten_wait)).ok());
    channel.Forget(b);
  });
  EXPECT_TRUE(forgotten_wait.answered);
  EXPECT_FALSE(channel.IsOpen(b));
  loop.Stop();
}

TEST(LogChannel, AFullJobBufferDropsTheOldestAndCountsThem) {
  EventLoop loop("logs-test");
  Metrics metrics;
  auto& dropped = metrics.Counter("test_dropped", "dropped");
  gcs::LogChannel channel({&loop, 64 << 10, &dropped});
  JobId a = JobId::FromInt(1);
  channel.Open(a);
  std::string text(1000, 'x');
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(channel.Publish(a, Batch({text, text})).ok());
  }
  EXPECT_LE(channel.bytes(), 64u << 10);
  PollResult r;
  ASSERT_TRUE(channel.Poll(a, 0, absl::Seconds(1), Into(&r)).ok());
  ASSERT_FALSE(r.batches.empty());
  EXPECT_EQ(r.batches.back().seq(), 1000);  // the newest are kept
  EXPECT_EQ(r.dropped + 2 * static_cast<int64_t>(r.batches.size()), 2000);
  EXPECT_EQ(dropped.Value(), r.dropped);
}

TEST(LogMonitor, ParsesFileNamesAndLinePrefixes) {
  JobId job = JobId::FromInt(10);
  auto out = raylet::ParseOutputFileName("python-" + job.Hex() + ".out");
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->job, job);
  EXPECT_FALSE(out->is_err);
  EXPECT_EQ(out->pid, 0);
  auto err = raylet::ParseOutputFileName("cpp-" + job.Hex() + "-77.err");
  ASSERT_TRUE(err.has_value());
  EXPECT_TRUE(err->is_err);
  EXPECT_EQ(err->pid, 77);
  EXPECT_FALSE(raylet::ParseOutputFileName("cpp-" + job.Hex() + ".err"));
  EXPECT_FALSE(raylet::ParseOutputFileName("cpp-" + job.Hex() + "-x.err"));
  EXPECT_FALSE(raylet::ParseOutputFileName("raylet.log"));
  EXPECT_FALSE(raylet::ParseOutputFileName("workers.out"));
  EXPECT_FALSE(raylet::ParseOutputFileName("python-zz.out"));
  EXPECT_FALSE(raylet::ParseOutputFileName("python-0a.out"));  // short id
  auto [pid, text] = raylet::ParseOutputLine("(pid=123) hello (pid=4) x");
  EXPECT_EQ(pid, 123);
  EXPECT_EQ(text, "hello (pid=4) x");
  EXPECT_EQ(raylet::ParseOutputLine("no prefix").first, 0);
  EXPECT_EQ(raylet::ParseOutputLine("(pid=-3) x").first, 0);
  EXPECT_EQ(raylet::ParseOutputLine("(pid=abc) x").second, "(pid=abc) x");
}

class LogMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/loom-logs-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Append(const std::string& name, const std::string& text) {
    std::ofstream f(dir_ + "/" + name, std::ios::app);
    f << text;
  }
  std::string dir_;
};

TEST_F(LogMonitorTest, PublishesNewLinesToTheHeadWithPidStreamAndNode) {
  Metrics metrics;
  gcs::GcsServer head({}, &metrics);
  ASSERT_TRUE(head.Start().ok());
  gcs::GcsService service(&head);
  int port = 0;
  auto started = service.Start("127.0.0.1", 0, &port);
  ASSERT_TRUE(started.ok()) << started;
  std::string address = "127.0.0.1:" + std::to_string(port);
  auto stub = rpc::Gcs::NewStub(rpc::MakeChannel(address));
  rpc::AddJobRequest add;
  add.set_driver_pid(getpid());
  rpc::AddJobReply job;
  {
    rpc::Context ctx;
    ASSERT_TRUE(stub->AddJob(&ctx, add, &job).ok());
  }
  std::string hex = JobId::FromBinary(job.job_id())->Hex();

  Append("python-" + hex + ".out", "(pid=7) before start\n");
  ClientPool clients;
  raylet::LogMonitor monitor({dir_, "10.0.0.9", address, &clients, &metrics});
  monitor.Start();
  Append("cpp-" + hex + "-8.err", "to stderr\n");
  Append("python-" + hex + ".out", "(pid=7) half a li");
  Append("python-" + hex + ".out", "ne\n(pid=7) third\n");

  std::vector<rpc::LogLine> got;
  std::string node_ip;
  int64_t seq = 0;
  ASSERT_TRUE(WaitFor([&] {
    rpc::Context ctx;
    rpc::PollLogsRequest req;
    req.set_job_id(job.job_id());
    req.set_after_seq(seq);
    req.set_timeout_ms(100);
    rpc::PollLogsReply reply;
    if (!stub->PollLogs(&ctx, req, &reply).ok()) return false;
    for (const auto& b : reply.batches()) {
      node_ip = b.node_ip();
      for (const auto& l : b.lines()) got.push_back(l);
    }
    seq = reply.last_seq();
    return got.size() >= 4;
  }));
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(node_ip, "10.0.0.9");
  std::vector<std::string> out, err;
  for (const auto& l : got) {
    (l.is_err() ? err : out).push_back(l.text());
    EXPECT_EQ(l.pid(), l.is_err() ? 8 : 7);
  }
  EXPECT_EQ(out,
            (std::vector<std::string>{"before start", "half a line", "third"}));
  EXPECT_EQ(err, (std::vector<std::string>{"to stderr"}));

  // FlushLogs at the head: the monitor publishes before the head answers,
  // and the answer names the sequence number that covers it.
  Append("python-" + hex + ".out", "(pid=7) last words\n");
  rpc::FlushLogsRequest flush;
  flush.set_job_id(job.job_id());
  rpc::FlushLogsReply flushed;
  {
    // The monitor is not the head's raylet here: flush it directly, as the
    // head's fan-out would.
    absl::Notification done;
    absl::Status status;
    monitor.Flush(*JobId::FromBinary(job.job_id()), [&](absl::Status s) {
      status = s;
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    ASSERT_TRUE(status.ok()) << status;
    rpc::Context ctx;
    ASSERT_TRUE(stub->FlushLogs(&ctx, flush, &flushed).ok());  // no raylets
  }
  rpc::Context ctx;
  rpc::PollLogsRequest req;
  req.set_job_id(job.job_id());
  req.set_after_seq(seq);
  rpc::PollLogsReply reply;
  ASSERT_TRUE(stub->PollLogs(&ctx, req, &reply).ok());
  ASSERT_EQ(reply.batches_size(), 1);
  EXPECT_EQ(reply.batches(0).lines(0).text(), "last words");
  EXPECT_EQ(flushed.last_seq(), reply.last_seq());
  monitor.Stop();
  service.Shutdown(absl::Seconds(5));
  head.Stop();
}

TEST_F(LogMonitorTest, WithoutAHeadItKeepsABoundedBufferAndCountsDrops) {
  Metrics metrics;
  ClientPool clients;
  constexpr size_t kCap = 256 << 10;
  // Port 1 on loopback: refused at once, as a head that is down.
  raylet::LogMonitor monitor(
      {dir_, "10.0.0.9", "127.0.0.1:1", &clients, &metrics, kCap});
  monitor.Start();
  JobId job = JobId::FromInt(5);
  std::string line = "(pid=9) " + std::string(200, 'y') + "\n";
  std::string chunk;
  for (int i = 0; i < 1000; ++i) chunk += line;
  constexpr int kLines = 20 * 1000;  // about 4 MiB
  for (int i = 0; i < kLines / 1000; ++i) {
    Append("python-" + job.Hex() + ".out", chunk);
  }
  ASSERT_TRUE(WaitFor([&] {
    return monitor.dropped_lines() + monitor.pending_lines() == kLines;
  })) << monitor.dropped_lines()
      << " dropped, " << monitor.pending_lines() << " pending";
  EXPECT_LE(monitor.pending_bytes(), kCap);
  EXPECT_GT(monitor.dropped_lines(), kLines / 2);
  monitor.Stop();
}

}  // namespace
}  // namespace loom
