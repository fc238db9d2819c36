// src/common/async_server.h
//
// AsyncServer: a gRPC server of unary methods served from a completion
// queue that one Loom thread drains with no deadline, so that an idle
// process does not wake (async_call.h: why not the callback API). Each
// method is registered before Start with its Need (rpc.h: Admit refuses a
// call without the token, or from a role below the method's, before the
// handler runs) and a handler(request, reply, done); done(status) sends the
// reply, from any thread, at most once. After Shutdown, done does nothing.
// A handler that takes a fourth argument gets the call's Incoming: who
// called, its deadline, and (for a method registered with `watch`) whether
// the caller has gone.
//
//   rpc::CoreWorker::AsyncService service;
//   rpc::AsyncServer server;
//   server.Unary(&service, &rpc::CoreWorker::AsyncService::RequestExit,
//                {"Exit", Role::kAdmin},
//                [](const rpc::ExitRequest& req, rpc::ExitReply* reply,
//                   rpc::Done done) { done(absl::OkStatus()); });
//   ...  // every method of the service
//   absl::Status s = server.Start("127.0.0.1", 0, &service, &port);
//   server.Shutdown(absl::Milliseconds(200));
#ifndef LOOM_COMMON_ASYNC_SERVER_H_
#define LOOM_COMMON_ASYNC_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/async_call.h"
#include "src/common/event_loop.h"
#include "src/common/rpc.h"

namespace loom::rpc {

using Done = std::function<void(absl::Status)>;

// A call as its handler may see it besides the request.
struct Incoming {
  Caller caller;
  absl::Time deadline = absl::InfiniteFuture();
  // The caller cancelled the call or its deadline passed (it will never
  // see the reply); always false for a method not registered to watch.
  std::function<bool()> gone = [] { return false; };
};

// How a method is served: `waiting` calls asked for at a time (a hot method
// takes more than one, so that calls arriving together need not wait for
// the queue's thread to ask again); `watch`: Incoming::gone answers (one
// more completion per call).
struct MethodOptions {
  int waiting = 1;
  bool watch = false;
};

// A service's RequestMethod (the generated WithAsyncMethod_ base's).
template <typename Base, typename Req, typename Reply>
using RequestUnary = void (Base::*)(grpc::ServerContext*, Req*,
                                    grpc::ServerAsyncResponseWriter<Reply>*,
                                    grpc::CompletionQueue*,
                                    grpc::ServerCompletionQueue*, void*);

class AsyncServer {
 public:
  AsyncServer() = default;
  AsyncServer(const AsyncServer&) = delete;
  AsyncServer& operator=(const AsyncServer&) = delete;
  ~AsyncServer() { Shutdown(absl::ZeroDuration()); }

  // Serves `request` (&Service::RequestMethod) with
  // handler(const Req&, Reply*, Done) or handler(const Req&, Reply*, Done,
  // const Incoming&). Before Start.
  template <typename Service, typename Base, typename Req, typename Reply,
            typename Handler>
  void Unary(Service* service, RequestUnary<Base, Req, Reply> request,
             Need need, Handler handler, MethodOptions options = {}) {
    Base* base = service;
    typename Method<Req, Reply>::Handler full;
    if constexpr (std::is_invocable_v<Handler, const Req&, Reply*, Done,
                                      const Incoming&>) {
      full = std::move(handler);
    } else {
      full = [handler = std::move(handler)](const Req& req, Reply* reply,
                                            Done done, const Incoming&) {
        handler(req, reply, std::move(done));
      };
    }
    methods_.push_back(std::make_unique<Method<Req, Reply>>(
        queue_, need, options,
        [base, request](grpc::ServerContext* ctx, Req* req,
                        grpc::ServerAsyncResponseWriter<Reply>* writer,
                        grpc::ServerCompletionQueue* cq, void* tag) {
          (base->*request)(ctx, req, writer, cq, cq, tag);
        },
        std::move(full)));
  }

  // As Unary, with the handler run on `loop` (the request and reply live
  // until done has run; the Incoming is copied there for a handler that
  // takes it).
  template <typename Service, typename Base, typename Req, typename Reply,
            typename Handler>
  void UnaryOnLoop(Service* service, RequestUnary<Base, Req, Reply> request,
                   Need need, EventLoop* loop, Handler handler,
                   MethodOptions options = {}) {
    if constexpr (std::is_invocable_v<Handler, const Req&, Reply*, Done,
                                      const Incoming&>) {
      Unary(
          service, request, need,
          [loop, handler](const Req& r, Reply* p, Done d, const Incoming& in) {
            loop->Post([handler, req = &r, p, d = std::move(d), in]() mutable {
              handler(*req, p, std::move(d), in);
            });
          },
          options);
    } else {
      Unary(
          service, request, need,
          [loop, handler](const Req& r, Reply* p, Done d) {
            loop->Post([handler, req = &r, p, d = std::move(d)]() mutable {
              handler(*req, p, std::move(d));
            });
          },
          options);
    }
  }

  // Listens on host:port (0: a free one, written to *bound_port; with
  // `also_loopback`, 127.0.0.1 too: rpc::StartServer) and serves every
  // method registered from `threads` threads (handlers that do their work
  // in place, not on a loop, may want more than one).
  absl::Status Start(const std::string& host, int port, grpc::Service* service,
                     int* bound_port, bool also_loopback = false,
                     int threads = 1);
  // Lets calls in flight finish for up to `grace`, cancels the rest, and
  // stops the queue's thread. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  // What calls share with the server, and keep after it is gone: a reply
  // is queued only while the queue is open.
  struct Queue {
    absl::Mutex mu;
    grpc::ServerCompletionQueue* cq ABSL_GUARDED_BY(mu) = nullptr;  // closed
  };

  struct MethodBase {
    virtual ~MethodBase() = default;
    virtual void Listen() = 0;  // for the next call
    virtual int Waiting() const = 0;
  };

  // A watched call's end (ServerContext::AsyncNotifyWhenDone): delivered
  // once the call was matched and has ended, answered or not; never for a
  // call that was not matched (its request completes not ok), which
  // deletes it instead.
  struct Ended final : CompletionTag {
    std::shared_ptr<std::atomic<bool>> ended =
        std::make_shared<std::atomic<bool>>(false);
    void Complete(bool) override {
      ended->store(true);
      delete this;
    }
  };

  template <typename Req, typename Reply>
  struct Method;

  template <typename Req, typename Reply>
  struct Call final : CompletionTag {
    grpc::ServerContext ctx;
    Req req;
    Reply reply;
    grpc::ServerAsyncResponseWriter<Reply> writer{&ctx};
    Method<Req, Reply>* method = nullptr;
    bool arrived = false;
    bool sent = false;  // its reply (queue's mutex): a second done is ignored
    std::shared_ptr<Call> queued;  // itself, while a tag of its is queued
    Ended* ended = nullptr;  // watched: delivered (and freed) once it ended
    std::shared_ptr<std::atomic<bool>> gone;  // watched: set by `ended`

    void Complete(bool ok) override {
      std::shared_ptr<Call> self = std::move(queued);
      if (arrived) return;  // answered
      if (!ok) {            // the server stopped before a call came
        delete ended;
        return;
      }
      arrived = true;
      method->Arrived(std::move(self));
    }
  };

  template <typename Req, typename Reply>
  struct Method final : MethodBase {
    using Request = std::function<void(grpc::ServerContext*, Req*,
                                       grpc::ServerAsyncResponseWriter<Reply>*,
                                       grpc::ServerCompletionQueue*, void*)>;
    using Handler =
        std::function<void(const Req&, Reply*, Done, const Incoming&)>;
    std::shared_ptr<Queue> queue;
    Need need;
    MethodOptions options;
    Request request;
    Handler handler;

    Method(std::shared_ptr<Queue> q, Need n, MethodOptions o, Request r,
           Handler h)
        : queue(std::move(q)),
          need(n),
          options(o),
          request(std::move(r)),
          handler(std::move(h)) {}

    int Waiting() const override { return options.waiting; }

    void Listen() override {
      auto call = std::make_shared<Call<Req, Reply>>();
      call->method = this;
      absl::MutexLock lock(&queue->mu);
      if (queue->cq == nullptr) return;
      call->queued = call;
      if (options.watch) {
        call->ended = new Ended;
        call->gone = call->ended->ended;
        call->ctx.AsyncNotifyWhenDone(call->ended);
      }
      request(&call->ctx, &call->req, &call->writer, queue->cq, call.get());
    }

    void Arrived(std::shared_ptr<Call<Req, Reply>> call) {
      Listen();
      grpc::Status refusal;
      std::optional<Caller> caller = Admit(call->ctx, need, &refusal);
      if (!caller.has_value()) {
        return Send(queue.get(), std::move(call), refusal);
      }
      Incoming incoming{std::move(*caller),
                        absl::FromChrono(call->ctx.deadline())};
      if (call->gone != nullptr) {
        incoming.gone = [gone = call->gone] { return gone->load(); };
      }
      Call<Req, Reply>* raw = call.get();
      handler(
          raw->req, &raw->reply,
          [queue = queue, call = std::move(call)](absl::Status s) mutable {
            Send(queue.get(), std::move(call), ToGrpc(s));
          },
          incoming);
    }

    static void Send(Queue* queue, std::shared_ptr<Call<Req, Reply>> call,
                     const grpc::Status& status) {
      absl::MutexLock lock(&queue->mu);
      if (queue->cq == nullptr || call->sent) return;
      call->sent = true;
      call->queued = call;
      call->writer.Finish(call->reply, status, call.get());
    }
  };

  std::shared_ptr<Queue> queue_ = std::make_shared<Queue>();
  std::vector<std::unique_ptr<MethodBase>> methods_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::thread> threads_;
};

}  // namespace loom::rpc

#endif  // LOOM_COMMON_ASYNC_SERVER_H_
