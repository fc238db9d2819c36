// src/gcs/pubsub.h
//
// Publisher: the GCS's log of state changes (node added/dead, job finished),
// numbered so that a subscriber asks for "everything after seq N" and can
// resynchronise after a restart. Long polls wait until something new arrives
// or their timeout passes.
//
//   publisher.Publish(rpc::Event::NODE_DEAD, node.Binary(), "missed
//   heartbeats"); publisher.Poll(after_seq, absl::Seconds(10),
//   [](std::vector<rpc::Event> e) {...});
#ifndef LOOM_GCS_PUBSUB_H_
#define LOOM_GCS_PUBSUB_H_

#include <deque>
#include <functional>
#include <list>
#include <vector>

#include "proto/gcs.pb.h"
#include "src/common/event_loop.h"

namespace loom::gcs {

// Not thread-safe: every method runs on the GCS event loop.
class Publisher {
 public:
  using PollCallback =
      std::function<void(std::vector<rpc::Event>, int64_t last_seq)>;

  Publisher(EventLoop* loop, size_t capacity = 10000)
      : loop_(loop), capacity_(capacity) {}

  void Publish(rpc::Event::Kind kind, const std::string& id,
               const std::string& detail, const std::string& address = "");
  // `event` as it is, numbered next.
  void Publish(rpc::Event event);
  // Answers at once when events after `after_seq` exist, else on the next
  // publish or after `timeout` with none.
  void Poll(int64_t after_seq, absl::Duration timeout, PollCallback done);
  int64_t last_seq() const { return last_seq_; }

 private:
  struct Waiter {
    uint64_t id;
    int64_t after_seq;
    PollCallback done;
  };
  std::vector<rpc::Event> After(int64_t seq) const;

  EventLoop* loop_;
  size_t capacity_;
  std::deque<rpc::Event> log_;
  int64_t last_seq_ = 0;
  uint64_t next_waiter_ = 0;
  std::list<Waiter> waiters_;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_PUBSUB_H_
