#include "runtime/lineage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/task_args.h"

namespace loom {

int64_t MaxLineageBytes(int64_t configured) {
  if (configured >= 0) return configured;
  const char* env = std::getenv("LOOM_MAX_LINEAGE_BYTES");
  int64_t bytes = 0;
  if (env && absl::SimpleAtoi(env, &bytes) && bytes >= 0) return bytes;
  if (env) spdlog::warn("ignoring LOOM_MAX_LINEAGE_BYTES={}: not bytes", env);
  return kDefaultMaxLineageBytes;
}

Lineage::Lineage(int64_t max_bytes, ObjectTable* objects)
    : max_bytes_(max_bytes), objects_(objects) {}

Lineage::~Lineage() = default;

void Lineage::HeldArgs(const rpc::TaskSpec& spec, std::vector<ObjectId>* out) {
  for (const auto& arg : spec.args()) {
    if (arg.has_ref() && !arg.ref().store_node_id().empty()) {
      if (auto id = ObjectId::FromBinary(arg.ref().object_id()); id.ok()) {
        out->push_back(*id);
      }
    }
  }
}

void Lineage::Drop(const std::vector<ObjectId>& ids) {
  for (const ObjectId& id : ids) objects_->RemoveRef(id);
}

bool Lineage::Record(const rpc::TaskSpec& spec, const std::string& key) {
  TaskId task = *TaskId::FromBinary(spec.task_id());
  std::vector<ObjectId> args, drop;
  HeldArgs(spec, &args);
  {
    absl::MutexLock lock(&mu_);
    auto [it, added] = tasks_.try_emplace(task);
    if (!added) return false;
    Entry& e = it->second;
    e.spec = spec;
    e.key = key;
    e.bytes = static_cast<int64_t>(spec.ByteSizeLong() + key.size());
    e.live = std::max(1, spec.num_returns());
    // The arguments stay while the entry may re-run the task; taken under
    // the lock so that an eviction cannot drop them first.
    for (const ObjectId& a : args) objects_->AddRef(a);
    bytes_ += e.bytes;
    order_.push_back(task);
    entries_.fetch_add(1, std::memory_order_relaxed);
    EvictLocked(&drop);
  }
  Drop(drop);
  return true;
}

void Lineage::Unrecoverable(const TaskId& task, int num_returns,
                            std::string why) {
  absl::MutexLock lock(&mu_);
  auto [it, added] = tasks_.try_emplace(task);
  if (!added) return;
  it->second.live = std::max(1, num_returns);
  it->second.unrecoverable = std::move(why);
  entries_.fetch_add(1, std::memory_order_relaxed);
}

void Lineage::EvictLocked(std::vector<ObjectId>* drop) {
  while (bytes_ > max_bytes_ && !order_.empty()) {
    TaskId oldest = order_.front();
    order_.pop_front();
    auto it = tasks_.find(oldest);
    if (it == tasks_.end() || it->second.evicted) continue;
    Entry& e = it->second;
    HeldArgs(e.spec, drop);
    bytes_ -= e.bytes;
    e.bytes = 0;
    e.spec = rpc::TaskSpec();
    e.key.clear();
    e.evicted = true;
  }
  // Ids of entries gone since: keep the queue in proportion to the map.
  if (order_.size() > 2 * tasks_.size() + 64) {
    std::deque<TaskId> kept;
    for (const TaskId& t : order_) {
      auto it = tasks_.find(t);
      if (it != tasks_.end() && !it->second.evicted) kept.push_back(t);
    }
    order_.swap(kept);
  }
}

void Lineage::OnFreed(const ObjectId& id) {
  if (entries_.load(std::memory_order_relaxed) == 0 || id.IsPut()) return;
  std::vector<ObjectId> drop;
  {
    absl::MutexLock lock(&mu_);
    auto it = tasks_.find(id.Task());
    if (it == tasks_.end() || --it->second.live > 0) return;
    if (!it->second.evicted) HeldArgs(it->second.spec, &drop);
    bytes_ -= it->second.bytes;
    tasks_.erase(it);
    entries_.fetch_sub(1, std::memory_order_relaxed);
  }
  // Freeing the arguments may release their own lineage in turn.
  Drop(drop);
}

absl::StatusOr<Lineage::Retry> Lineage::TakeRetry(const TaskId& task) {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) {
    return absl::FailedPreconditionError(
        "no lineage is kept for the task that made it");
  }
  Entry& e = it->second;
  if (!e.unrecoverable.empty()) {
    return absl::FailedPreconditionError(e.unrecoverable);
  }
  if (e.evicted) {
    return absl::FailedPreconditionError(absl::StrCat(
        "its lineage was evicted to keep this owner's lineage under "
        "max_lineage_bytes (",
        max_bytes_, " bytes)"));
  }
  if (e.spec.attempt() >= e.spec.max_retries()) {
    return absl::FailedPreconditionError(
        absl::StrCat("its task ", e.spec.function_name(), " has used its ",
                     e.spec.max_retries(), " retries (max_retries)"));
  }
  e.spec.set_attempt(e.spec.attempt() + 1);
  return Retry{e.spec, e.key};
}

int64_t Lineage::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

size_t Lineage::size() const {
  absl::MutexLock lock(&mu_);
  return tasks_.size();
}

}  // namespace loom
