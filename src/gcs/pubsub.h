// src/gcs/pubsub.h
//
// Publisher: the GCS's log of state changes (node added/dead, job finished),
// numbered so that a subscriber asks for "everything after seq N" and can
// resynchronise after a restart. Long polls wait until something new of the
// kinds they asked for arrives, or their timeout passes.
//
//   publisher.Publish(rpc::Event::NODE_DEAD, node.Binary(), "missed
//   heartbeats"); publisher.Poll(after_seq, Publisher::MaskOf({NODE_DEAD}),
//   absl::Seconds(10), [](std::vector<rpc::Event> e, int64_t last) {...});
//
// Every raylet and every process that sent work out holds a long poll, so
// one event answered to all of them costs the head a reply each (and each
// asks again): a subscriber is woken only by the kinds it asked for, and
// with `gather` > 0 the events published within that time go out in one
// reply per subscriber.
#ifndef LOOM_GCS_PUBSUB_H_
#define LOOM_GCS_PUBSUB_H_

#include <cstdint>
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
  // Bit k set: events of kind k.
  using KindMask = uint64_t;
  static constexpr KindMask kAllKinds = ~KindMask{0};
  // The kinds named; kAllKinds when none is.
  template <typename Kinds>
  static KindMask MaskOf(const Kinds& kinds) {
    KindMask mask = 0;
    for (auto k : kinds) mask |= Bit(static_cast<int>(k));
    return mask == 0 ? kAllKinds : mask;
  }

  explicit Publisher(EventLoop* loop, size_t capacity = 10000,
                     absl::Duration gather = absl::ZeroDuration())
      : loop_(loop), capacity_(capacity), gather_(gather) {}

  void Publish(rpc::Event::Kind kind, const std::string& id,
               const std::string& detail, const std::string& address = "");
  // `event` as it is, numbered next.
  void Publish(rpc::Event event);
  // Answers at once when events of `kinds` after `after_seq` exist, else
  // once one is published (after `gather`), or after `timeout` with none.
  // last_seq is the log's last, whatever its kind.
  void Poll(int64_t after_seq, KindMask kinds, absl::Duration timeout,
            PollCallback done);
  void Poll(int64_t after_seq, absl::Duration timeout, PollCallback done) {
    Poll(after_seq, kAllKinds, timeout, std::move(done));
  }
  int64_t last_seq() const { return last_seq_; }

 private:
  struct Waiter {
    uint64_t id;
    int64_t after_seq;
    KindMask kinds;
    PollCallback done;
  };
  static KindMask Bit(int kind) {
    return kind >= 0 && kind < 64 ? KindMask{1} << kind : 0;
  }
  std::vector<rpc::Event> After(int64_t seq, KindMask kinds) const;
  // Answers each waiter that has events of its kinds now.
  void Wake();

  EventLoop* loop_;
  size_t capacity_;
  absl::Duration gather_;
  std::deque<rpc::Event> log_;
  int64_t last_seq_ = 0;
  uint64_t next_waiter_ = 0;
  std::list<Waiter> waiters_;
  KindMask published_ = 0;  // kinds published since the last Wake
  bool wake_posted_ = false;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_PUBSUB_H_
