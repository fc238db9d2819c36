// tests/unit/fake_client_pool.h
//
// FakeClientPool: a ClientPool whose peers are services in this process.
// A test registers a service (a generated CallbackService subclass that
// overrides the methods it needs; the rest answer UNIMPLEMENTED) under an
// address; calls to that address reach it through an in-process channel,
// and calls to an address with no service fail UNAVAILABLE.
//
//   FakeClientPool pool;
//   FakeRaylet raylet;  // : rpc::Raylet::CallbackService
//   pool.Serve("10.0.0.1:7001", &raylet);
//   ActorManager actors(&loop, &nodes, &publisher, &scheduler, &pool);
//
// Thread-safe.
#ifndef LOOM_TESTS_UNIT_FAKE_CLIENT_POOL_H_
#define LOOM_TESTS_UNIT_FAKE_CLIENT_POOL_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "src/common/client_pool.h"
#include "src/common/rpc.h"

namespace loom {

class FakeClientPool : public ClientPool {
 public:
  ~FakeClientPool() override {
    for (auto& [address, server] : servers_) server->Shutdown();
  }

  // Serves `service` (not owned; outlives the pool) at `address`.
  void Serve(const std::string& address, grpc::Service* service) {
    grpc::ServerBuilder builder;
    builder.RegisterService(service);
    absl::MutexLock lock(&mu_);
    servers_[address] = builder.BuildAndStart();
  }
  // How many channels were made to `address` (a drop makes the next call
  // open another).
  int channels_made(const std::string& address) {
    absl::MutexLock lock(&mu_);
    return made_[address];
  }

 protected:
  std::shared_ptr<grpc::Channel> NewChannel(
      const std::string& address) override {
    absl::MutexLock lock(&mu_);
    ++made_[address];
    auto it = servers_.find(address);
    if (it == servers_.end()) {
      // Nothing listens there: calls fail UNAVAILABLE at once.
      return rpc::MakeChannel("unix:/nonexistent/loom-fake-peer");
    }
    return it->second->InProcessChannel(grpc::ChannelArguments());
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<grpc::Server>> servers_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> made_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loom

#endif  // LOOM_TESTS_UNIT_FAKE_CLIENT_POOL_H_
