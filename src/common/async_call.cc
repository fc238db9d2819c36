#include "src/common/async_call.h"

#include <pthread.h>

#include <algorithm>
#include <thread>

#include "src/common/grpc_cores.h"

namespace loom::rpc {

void DrainQueue(grpc::CompletionQueue* cq, const char* thread_name) {
  pthread_setname_np(pthread_self(), thread_name);
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->Complete(ok);
}

grpc::CompletionQueue* CallQueue() {
  static grpc::CompletionQueue* const queue = [] {
    auto* cq = new grpc::CompletionQueue;  // outlives every call
    int cores = static_cast<int>(LoomCores());
    int threads = cores <= 1 ? 1 : std::clamp(cores / 2, 2, 16);
    for (int i = 0; i < threads; ++i) {
      std::thread([cq] { DrainQueue(cq, "loom-rpc-calls"); }).detach();
    }
    return cq;
  }();
  return queue;
}

}  // namespace loom::rpc
