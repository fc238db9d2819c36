// runtime/serve/actor_caller.h
//
// ActorCaller: the router's ReplicaCaller on a core worker. A call is an
// actor call with msgpack values (the cross-language path: a Python or a
// C++ replica reads the same bytes); a batch goes as one call whose one
// argument is the list of payloads, to the method's "_batch" twin. When the
// call's result is ready, it is read (and fetched, when the replica's node
// stored it) on the caller's own thread, never on the core worker's loops.
//
//   ActorCaller caller(&core_worker);
//   Router router({.caller = &caller});
#ifndef LOOM_RUNTIME_SERVE_ACTOR_CALLER_H_
#define LOOM_RUNTIME_SERVE_ACTOR_CALLER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/serve/router.h"
#include "src/common/event_loop.h"
#include "src/common/ids.h"

namespace loom {
class CoreWorker;
}

namespace loom::serve {

// Thread-safe.
class ActorCaller : public ReplicaCaller {
 public:
  explicit ActorCaller(CoreWorker* core_worker);
  ~ActorCaller() override;  // Stop()
  // Reads nothing more: answers that arrive later are dropped. The caller
  // must still outlive the core worker's callbacks (they point at it).
  void Stop();

  void Call(
      const std::string& replica, const std::string& method,
      std::vector<std::string> payloads, bool batch,
      std::function<void(CallOutcome)> done,
      std::function<void(std::shared_ptr<ReplyStream>)> on_stream) override;

 private:
  void Read(const ObjectId& id, bool batch, size_t expected,
            const std::function<void(CallOutcome)>& done);

  CoreWorker* const cw_;
  EventLoop loop_;
};

}  // namespace loom::serve

#endif  // LOOM_RUNTIME_SERVE_ACTOR_CALLER_H_
