// src/common/async_server.h
//
// AsyncServer: a gRPC server of unary methods served from a completion
// queue that one Loom thread drains with no deadline, so that an idle
// process does not wake (async_call.h: why not the callback API). Each
// method is registered before Start with its Need (rpc.h: Admit refuses a
// call without the token, or from a role below the method's, before the
// handler runs) and a handler(request, reply, done); done(status) sends the
// reply, from any thread, at most once. After Shutdown, done does nothing.
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

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/async_call.h"
#include "src/common/rpc.h"

namespace loom::rpc {

using Done = std::function<void(absl::Status)>;

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
  // handler(const Req&, Reply*, Done). Before Start. `waiting` calls are
  // asked for at a time: a hot method takes more than one, so that calls
  // arriving together need not wait for the queue's thread to ask again.
  template <typename Service, typename Base, typename Req, typename Reply,
            typename Handler>
  void Unary(Service* service, RequestUnary<Base, Req, Reply> request,
             Need need, Handler handler, int waiting = 1) {
    Base* base = service;
    methods_.push_back(std::make_unique<Method<Req, Reply>>(
        queue_, need, waiting,
        [base, request](grpc::ServerContext* ctx, Req* req,
                        grpc::ServerAsyncResponseWriter<Reply>* writer,
                        grpc::ServerCompletionQueue* cq, void* tag) {
          (base->*request)(ctx, req, writer, cq, cq, tag);
        },
        std::move(handler)));
  }

  // Listens on host:port (0: a free one, written to *bound_port) and
  // serves every method registered.
  absl::Status Start(const std::string& host, int port, grpc::Service* service,
                     int* bound_port);
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

    void Complete(bool ok) override {
      std::shared_ptr<Call> self = std::move(queued);
      if (arrived || !ok) return;  // answered, or the server stopped
      arrived = true;
      method->Arrived(std::move(self));
    }
  };

  template <typename Req, typename Reply>
  struct Method final : MethodBase {
    using Request = std::function<void(grpc::ServerContext*, Req*,
                                       grpc::ServerAsyncResponseWriter<Reply>*,
                                       grpc::ServerCompletionQueue*, void*)>;
    using Handler = std::function<void(const Req&, Reply*, Done)>;
    std::shared_ptr<Queue> queue;
    Need need;
    int waiting;
    Request request;
    Handler handler;

    Method(std::shared_ptr<Queue> q, Need n, int w, Request r, Handler h)
        : queue(std::move(q)),
          need(n),
          waiting(w),
          request(std::move(r)),
          handler(std::move(h)) {}

    int Waiting() const override { return waiting; }

    void Listen() override {
      auto call = std::make_shared<Call<Req, Reply>>();
      call->method = this;
      absl::MutexLock lock(&queue->mu);
      if (queue->cq == nullptr) return;
      call->queued = call;
      request(&call->ctx, &call->req, &call->writer, queue->cq, call.get());
    }

    void Arrived(std::shared_ptr<Call<Req, Reply>> call) {
      Listen();
      grpc::Status refusal;
      if (!Admit(call->ctx, need, &refusal).has_value()) {
        return Send(queue.get(), std::move(call), refusal);
      }
      Call<Req, Reply>* raw = call.get();
      handler(raw->req, &raw->reply,
              [queue = queue, call = std::move(call)](absl::Status s) mutable {
                Send(queue.get(), std::move(call), ToGrpc(s));
              });
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
  std::thread thread_;
};

}  // namespace loom::rpc

#endif  // LOOM_COMMON_ASYNC_SERVER_H_
