// AsyncServer and AsyncCall (src/common/async_server.h, async_call.h), the
// core workers' rpc without gRPC's callback API: replies sent from any
// thread, calls without the cluster token refused before the handler runs,
// a reply sent after the server stopped dropped without harm, and what a
// handler learns of its call (caller, deadline, a caller that left).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "proto/worker.grpc.pb.h"
#include "src/common/async_call.h"
#include "src/common/async_server.h"
#include "src/common/rpc.h"

namespace loom {
namespace {

using S = rpc::CoreWorker::AsyncService;

// Exit called with `ctx` through AsyncCall: its status.
grpc::Status CallExit(const std::string& address, grpc::ClientContext* ctx) {
  auto stub = rpc::CoreWorker::NewStub(rpc::MakeChannel(address));
  rpc::ExitRequest req;
  rpc::ExitReply reply;
  std::promise<grpc::Status> done;
  rpc::AsyncCall(*stub, &rpc::CoreWorker::Stub::PrepareAsyncExit, ctx, req,
                 &reply, [&](grpc::Status s) { done.set_value(s); });
  return done.get_future().get();
}

TEST(AsyncServer, RepliesFromAnyThreadAndRefusesCallsWithoutTheToken) {
  rpc::SetClusterToken("async-test-token");
  S service;
  rpc::AsyncServer server;
  std::atomic<int> handled{0};
  std::thread replier;
  server.Unary(&service, &S::RequestExit, {"Exit", Role::kAdmin},
               [&](const rpc::ExitRequest&, rpc::ExitReply*, rpc::Done done) {
                 ++handled;
                 replier = std::thread([done = std::move(done)] {
                   std::this_thread::sleep_for(std::chrono::milliseconds(50));
                   done(absl::NotFoundError("from another thread"));
                 });
               });
  int port = 0;
  ASSERT_TRUE(server.Start("127.0.0.1", 0, &service, &port).ok());
  std::string address = "127.0.0.1:" + std::to_string(port);

  rpc::Context with_token;
  grpc::Status s = CallExit(address, &with_token);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "from another thread");
  replier.join();

  rpc::Context wrong("not-the-token");
  s = CallExit(address, &wrong);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(handled.load(), 1);  // the refused call never reached it
  server.Shutdown(absl::ZeroDuration());
  rpc::SetClusterToken("");
}

TEST(AsyncServer, AReplyAfterShutdownIsDropped) {
  S service;
  auto server = std::make_unique<rpc::AsyncServer>();
  std::promise<rpc::Done> held;
  server->Unary(&service, &S::RequestExit, {"Exit", Role::kAdmin},
                [&](const rpc::ExitRequest&, rpc::ExitReply*, rpc::Done done) {
                  held.set_value(std::move(done));
                });
  int port = 0;
  ASSERT_TRUE(server->Start("127.0.0.1", 0, &service, &port).ok());
  auto stub = rpc::CoreWorker::NewStub(
      rpc::MakeChannel("127.0.0.1:" + std::to_string(port)));
  rpc::Context ctx;
  rpc::ExitRequest req;
  rpc::ExitReply reply;
  std::promise<grpc::Status> finished;
  rpc::AsyncCall(*stub, &rpc::CoreWorker::Stub::PrepareAsyncExit, &ctx, req,
                 &reply, [&](grpc::Status s) { finished.set_value(s); });
  rpc::Done done = held.get_future().get();  // the call is being handled

  server->Shutdown(absl::Milliseconds(50));  // cancels it after the grace
  EXPECT_FALSE(finished.get_future().get().ok());
  done(absl::OkStatus());  // after Shutdown: nothing is sent
  done(absl::OkStatus());  // twice: still nothing
  server.reset();
  done(absl::OkStatus());  // the server is gone: the call's state is not
}

TEST(AsyncServer, AHandlerSeesItsCallerAndDeadlineAndAWatchedCallerLeaving) {
  rpc::SetClusterToken("async-test-token");
  S service;
  rpc::AsyncServer server;
  std::promise<rpc::Incoming> seen;
  std::promise<rpc::Done> held;
  server.Unary(&service, &S::RequestExit, {"Exit", Role::kAdmin},
               [&](const rpc::ExitRequest&, rpc::ExitReply*, rpc::Done done,
                   const rpc::Incoming& in) {
                 seen.set_value(in);
                 held.set_value(std::move(done));
               },
               {.watch = true});
  int port = 0;
  // Two threads drain the queue: a reply may come from either.
  ASSERT_TRUE(server
                  .Start("127.0.0.1", 0, &service, &port,
                         /*also_loopback=*/false, /*threads=*/2)
                  .ok());
  auto stub = rpc::CoreWorker::NewStub(
      rpc::MakeChannel("127.0.0.1:" + std::to_string(port)));
  rpc::Context ctx;
  rpc::SetTimeout(&ctx, 300);
  absl::Time sent = absl::Now();
  rpc::ExitRequest req;
  rpc::ExitReply reply;
  std::promise<grpc::Status> finished;
  rpc::AsyncCall(*stub, &rpc::CoreWorker::Stub::PrepareAsyncExit, &ctx, req,
                 &reply, [&](grpc::Status s) { finished.set_value(s); });
  rpc::Incoming in = seen.get_future().get();
  EXPECT_TRUE(in.caller.who.cluster());  // the cluster token's
  EXPECT_NE(in.caller.peer.find("127.0.0.1"), std::string::npos);
  EXPECT_GT(in.deadline, sent);
  EXPECT_LT(in.deadline, sent + absl::Seconds(1));
  EXPECT_FALSE(in.gone());  // the caller still waits
  // Its deadline passes: the caller gives up, and the handler can tell.
  EXPECT_EQ(finished.get_future().get().error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (!in.gone() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(in.gone());
  held.get_future().get()(absl::OkStatus());  // too late: nobody hears it
  server.Shutdown(absl::ZeroDuration());
  rpc::SetClusterToken("");
}

}  // namespace
}  // namespace loom
