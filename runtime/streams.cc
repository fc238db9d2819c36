#include "runtime/streams.h"

#include "absl/status/status.h"
#include "runtime/core_worker.h"
#include "runtime/owner_client.h"
#include "runtime/task_args.h"
#include "src/common/wire.h"

namespace loom {

void StreamTable::Open(const TaskId& task, int64_t window) {
  absl::MutexLock lock(&mu_);
  streams_[task].window = window;
}

std::vector<std::function<void(bool)>> StreamTable::Release(Stream& s,
                                                            bool all) {
  std::vector<std::function<void(bool)>> go;
  std::vector<std::pair<int64_t, std::function<void(bool)>>> kept;
  for (auto& [index, answer] : s.held) {
    if (all || s.window < 0 || index < s.taken + s.window) {
      go.push_back(std::move(answer));
    } else {
      kept.emplace_back(index, std::move(answer));
    }
  }
  s.held.swap(kept);
  return go;
}

void StreamTable::Ended(const TaskId& task) {
  std::vector<std::function<void(bool)>> go;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(task);
    if (it == streams_.end()) return;
    it->second.ended = true;
    go = Release(it->second, true);
    if (it->second.closed) streams_.erase(it);
  }
  for (auto& answer : go) answer(false);
}

void StreamTable::Enter(const ObjectId& id,
                        const rpc::ReportStreamItemRequest& req,
                        const std::string& self) {
  objects_->AddPending(id);
  objects_->AddRef(id);
  HoldContained(objects_, self, id, req.contained());  // as for a return
  auto node = NodeId::FromBinary(req.node_id());
  if (req.in_store() && node.ok()) {
    objects_->SetInStore(id, *node);
  } else {
    objects_->SetValue(id, req.value());
  }
}

void StreamTable::Report(const TaskId& task,
                         const rpc::ReportStreamItemRequest& req,
                         const std::string& self,
                         std::function<void(bool stop)> answer) {
  const int64_t index = req.index();
  const ObjectId id = StreamItemId(task, index);
  // kKeep: a new item. kDrop: nobody will read it (the stream is closed),
  // but it was sealed for us: entered and dropped at once, so that its
  // store copy is freed. kIgnore: a retry's copy of an item here or read.
  enum { kKeep, kDrop, kIgnore } what = kIgnore;
  bool closed;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(task);
    closed = it == streams_.end() || it->second.closed;
    if (closed) {
      bool unread = it == streams_.end() || index >= it->second.taken;
      if (req.in_store() && unread) what = kDrop;
    } else {
      Stream& s = it->second;
      if (index >= s.taken && !s.have.contains(index) &&
          !s.arriving.contains(index)) {
        what = kKeep;
        s.arriving.insert(index);
      }
    }
  }
  if (what == kDrop) {
    Enter(id, req, self);
    objects_->RemoveRef(id);
  }
  if (what != kKeep) return answer(/*stop=*/closed);
  Enter(id, req, self);
  bool stop = false, hold = false, drop = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(task);
    if (it == streams_.end() || it->second.closed) {
      stop = drop = true;  // closed meanwhile
      if (it != streams_.end()) it->second.arriving.erase(index);
    } else {
      Stream& s = it->second;
      s.arriving.erase(index);
      s.have.insert(index);
      hold = !s.ended && s.window >= 0 && index >= s.taken + s.window;
      if (hold) s.held.emplace_back(index, std::move(answer));
    }
  }
  if (drop) objects_->RemoveRef(id);
  if (!hold) answer(stop);
}

StreamTable::Next StreamTable::Wait(const TaskId& task, int64_t index,
                                    absl::Time until) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = streams_.find(task);
    return it == streams_.end() || it->second.closed ||
           it->second.have.contains(index) || it->second.ended;
  };
  mu_.AwaitWithDeadline(absl::Condition(&done), until);
  auto it = streams_.find(task);
  if (it == streams_.end() || it->second.closed) return Next::kEnd;
  if (it->second.have.contains(index)) return Next::kItem;
  // Every item is entered before the task's return (its executor waits
  // for their answers first): none is still coming.
  return it->second.ended ? Next::kEnd : Next::kTimeout;
}

ObjectId StreamTable::Take(const TaskId& task, int64_t index) {
  std::vector<std::function<void(bool)>> go;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(task);
    if (it != streams_.end()) {
      Stream& s = it->second;
      s.have.erase(index);
      s.taken = std::max(s.taken, index + 1);
      go = Release(s, false);
    }
  }
  for (auto& answer : go) answer(false);
  return StreamItemId(task, index);
}

void StreamTable::Close(const TaskId& task) {
  std::vector<std::function<void(bool)>> go;
  std::vector<ObjectId> unread;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(task);
    if (it == streams_.end() || it->second.closed) return;
    Stream& s = it->second;
    for (int64_t index : s.have) unread.push_back(StreamItemId(task, index));
    s.have.clear();
    s.closed = true;
    go = Release(s, true);
    if (s.ended) streams_.erase(it);
  }
  for (auto& answer : go) answer(true);
  for (const ObjectId& id : unread) objects_->RemoveRef(id);
}

StreamWriter::StreamWriter(CoreWorker* cw, const rpc::TaskSpec& spec)
    : cw_(cw), spec_(spec), owner_(HostPort(spec.caller())) {}

StreamWriter::~StreamWriter() = default;  // answers still due hold state_

bool StreamWriter::WaitRoom(absl::Duration timeout) {
  const int64_t window = spec_.stream_window();
  State& st = *state_;
  absl::MutexLock lock(&st.mu);
  auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
    return st.stop || window < 0 || st.unanswered < window;
  };
  return st.mu.AwaitWithTimeout(absl::Condition(&room), timeout);
}

bool StreamWriter::Write(int64_t index, std::string value, bool in_store,
                         const std::vector<ObjectId>& contained) {
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->stop) return false;
    ++state_->unanswered;
  }
  rpc::ReportStreamItemRequest req;
  req.set_task_id(spec_.task_id());
  req.set_index(index);
  req.set_value(std::move(value));
  req.set_in_store(in_store);
  if (in_store) req.set_node_id(cw_->node_id().Binary());
  if (!contained.empty()) {
    rpc::PushTaskReply lent;
    cw_->LendToCaller(contained, spec_.caller(), &lent);
    req.mutable_contained()->Swap(lent.mutable_contained());
  }
  cw_->SendStreamItem(owner_, std::move(req),
                      [state = state_](absl::Status s, bool stop) {
                        absl::MutexLock lock(&state->mu);
                        --state->unanswered;
                        if (!s.ok() || stop) state->stop = true;
                      });
  return true;
}

bool StreamWriter::Flush() {
  State& st = *state_;
  absl::MutexLock lock(&st.mu);
  auto idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
    return st.unanswered == 0;
  };
  st.mu.Await(absl::Condition(&idle));
  return !st.stop;
}

// Core worker side: the owner's table, and the executor's calls.

void CoreWorker::HandleReportStreamItem(
    const rpc::ReportStreamItemRequest& req, rpc::ReportStreamItemReply* reply,
    std::function<void(absl::Status)> done) {
  auto task = TaskId::FromBinary(req.task_id());
  if (!task.ok()) return done(task.status());
  if (req.index() < 0 || req.index() > (int64_t{1} << 31)) {
    return done(absl::InvalidArgumentError("stream item index out of range"));
  }
  streams_.Report(*task, req, address_,
                  [reply, done = std::move(done)](bool stop) {
                    reply->set_stop(stop);
                    done(absl::OkStatus());
                  });
}

void CoreWorker::OpenStream(const TaskId& task, int64_t window,
                            const ObjectId& ret) {
  streams_.Open(task, window);
  streams_open_.fetch_add(1, std::memory_order_relaxed);
  objects_.OnReady(ret, [this, task] { streams_.Ended(task); });
}

absl::StatusOr<std::optional<ObjectId>> CoreWorker::StreamNext(
    const ObjectId& ret, int64_t index, int64_t timeout_ms) {
  absl::Time deadline = Deadline(timeout_ms);
  StreamTable::Next next = StreamTable::Next::kTimeout;
  BlockedWait(ret, deadline, [&](absl::Time until) {
    next = streams_.Wait(ret.Task(), index, until);
    return next != StreamTable::Next::kTimeout;
  });
  switch (next) {
    case StreamTable::Next::kItem:
      return std::optional<ObjectId>(streams_.Take(ret.Task(), index));
    case StreamTable::Next::kEnd:
      return std::optional<ObjectId>();
    case StreamTable::Next::kTimeout:
      break;
  }
  return absl::DeadlineExceededError("no next item within the timeout");
}

void CoreWorker::CloseStream(const ObjectId& ret) {
  streams_.Close(ret.Task());
}

void CoreWorker::SendStreamItem(const std::string& owner,
                                rpc::ReportStreamItemRequest req,
                                std::function<void(absl::Status, bool)> done) {
  owners_->ReportStreamItem(owner, std::move(req), std::move(done));
}

}  // namespace loom
