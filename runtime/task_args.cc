#include "runtime/task_args.h"

#include <algorithm>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "src/common/wire.h"

namespace loom {

void WhenArgsReady(ObjectTable* objects, EventLoop* loop,
                   const rpc::TaskSpec& spec, std::function<void()> ready) {
  std::vector<ObjectId> deps;
  for (const auto& arg : spec.args()) {
    if (arg.has_ref() && arg.ref().store_node_id().empty()) {
      deps.push_back(*ObjectId::FromBinary(arg.ref().object_id()));
    }
  }
  if (deps.empty()) return ready();
  auto remaining = std::make_shared<size_t>(deps.size());
  auto shared = std::make_shared<std::function<void()>>(std::move(ready));
  for (const ObjectId& dep : deps) {
    objects->OnReady(dep, [loop, remaining, shared] {
      loop->Post([remaining, shared] {
        if (--*remaining == 0) (*shared)();
      });
    });
  }
}

std::optional<rpc::ErrorInfo> InlineArgs(ObjectTable* objects,
                                         rpc::TaskSpec* spec) {
  std::optional<rpc::ErrorInfo> error;
  for (auto& arg : *spec->mutable_args()) {
    if (!arg.has_ref() || !arg.ref().store_node_id().empty()) continue;
    ObjectId id = *ObjectId::FromBinary(arg.ref().object_id());
    auto result = objects->TryGet(id);
    if (result && result->store_node) {
      // Stays a reference the worker reads from the store; held until the
      // task is done (ReleaseArgs).
      arg.mutable_ref()->set_store_node_id(result->store_node->Binary());
      continue;
    }
    objects->RemoveRef(id);
    if (!result) {
      error = MakeError(rpc::ErrorInfo::OWNER_DIED,
                        "argument object " + id.Hex() + " was lost");
    } else if (result->error) {
      error = *result->error;
    } else {
      arg.set_value(*result->value);
    }
  }
  return error;
}

void ReleaseArgs(ObjectTable* objects, const rpc::TaskSpec& spec) {
  for (const auto& arg : spec.args()) {
    if (arg.has_ref() && !arg.ref().store_node_id().empty()) {
      objects->RemoveRef(*ObjectId::FromBinary(arg.ref().object_id()));
    }
  }
  for (const auto& inner : spec.contained()) {
    if (auto id = ObjectId::FromBinary(inner); id.ok()) objects->RemoveRef(*id);
  }
}

absl::StatusOr<rpc::SchedulingStrategy> StrategyToProto(
    const internal::Strategy& strategy) {
  rpc::SchedulingStrategy out;
  out.set_kind(static_cast<rpc::SchedulingStrategy::Kind>(strategy.kind));
  if (strategy.kind == internal::Strategy::kNodeAffinity) {
    auto node = NodeId::FromBinary(absl::HexStringToBytes(strategy.node_id));
    if (!node.ok() || strategy.node_id.size() != 2 * NodeId::kSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("node affinity needs a node id (", 2 * NodeId::kSize,
                       " hex digits), got '", strategy.node_id, "'"));
    }
    out.set_node_id(node->Binary());
    out.set_soft(strategy.soft);
  }
  for (const auto& [k, v] : strategy.label_selector) {
    (*out.mutable_label_selector())[k] = v;
  }
  return out;
}

std::vector<ObjectId> ReturnIds(const rpc::TaskSpec& spec) {
  TaskId task = *TaskId::FromBinary(spec.task_id());
  int n = std::max(1, spec.num_returns());
  std::vector<ObjectId> ids;
  ids.reserve(n);
  for (int i = 1; i <= n; ++i) ids.push_back(ObjectId::ForReturn(task, i));
  return ids;
}

bool ReturnsInStore(const rpc::PushTaskReply& reply) {
  if (!reply.ok()) return false;
  if (reply.in_store()) return true;
  for (const auto& r : reply.returns()) {
    if (r.in_store()) return true;
  }
  return false;
}

void SetReturnsError(ObjectTable* objects, const rpc::TaskSpec& spec,
                     const rpc::ErrorInfo& error) {
  for (const ObjectId& id : ReturnIds(spec)) objects->SetError(id, error);
}

void HoldContained(
    ObjectTable* objects, const std::string& self_address, const ObjectId& id,
    const google::protobuf::RepeatedPtrField<rpc::ObjectRef>& refs) {
  std::vector<ObjectId> inner;
  for (const auto& ref : refs) {
    auto inner_id = ObjectId::FromBinary(ref.object_id());
    if (!inner_id.ok()) continue;
    std::string owner = HostPort(ref.owner());
    if (owner != self_address) objects->AddBorrowedUnit(*inner_id, owner);
    inner.push_back(*inner_id);
  }
  if (!inner.empty()) objects->SetContained(id, std::move(inner));
}

void ApplyReply(ObjectTable* objects, const std::string& self_address,
                const rpc::TaskSpec& spec, rpc::PushTaskReply& reply) {
  std::vector<ObjectId> rets = ReturnIds(spec);
  ObjectId ret = rets[0];
  // The return object holds the refs inside the value while it lives (the
  // first, with several).
  HoldContained(objects, self_address, ret, reply.contained());
  auto node = NodeId::FromBinary(reply.node_id());
  if (!reply.ok()) return SetReturnsError(objects, spec, reply.error());
  if (rets.size() > 1) {
    if (reply.returns_size() != static_cast<int>(rets.size())) {
      return SetReturnsError(
          objects, spec,
          MakeError(
              rpc::ErrorInfo::INVALID,
              absl::StrCat("the task returned ", reply.returns_size(),
                           " values where ", rets.size(), " were expected"),
              spec.function_name()));
    }
    for (size_t i = 0; i < rets.size(); ++i) {
      auto* r = reply.mutable_returns(i);
      if (r->in_store() && node.ok()) {
        objects->SetInStore(rets[i], *node);
      } else {
        objects->SetValue(rets[i], std::move(*r->mutable_value()));
      }
    }
    return;
  }
  if (reply.in_store() && node.ok()) {
    objects->SetInStore(ret, *node);
  } else {
    objects->SetValue(ret, std::move(*reply.mutable_value()));
  }
}

rpc::ErrorInfo ArgumentError(const ObjectId& id, const absl::Status& why,
                             const std::string& function_name) {
  std::string text = absl::StrCat("cannot read an argument: ", why.message());
  // DataLoss: no live copy is left (CoreWorker::PinLocal).
  if (!absl::IsDataLoss(why) && !absl::IsNotFound(why) &&
      !absl::IsUnavailable(why)) {
    return MakeError(rpc::ErrorInfo::INVALID, text, function_name);
  }
  rpc::ErrorInfo e = MakeError(rpc::ErrorInfo::OBJECT_LOST, text, function_name,
                               kArgumentLost);
  e.set_data(id.Binary());
  return e;
}

std::optional<ObjectId> ArgumentLost(const rpc::PushTaskReply& reply) {
  if (reply.ok() || reply.error().kind() != rpc::ErrorInfo::OBJECT_LOST ||
      reply.error().type() != kArgumentLost) {
    return std::nullopt;
  }
  auto id = ObjectId::FromBinary(reply.error().data());
  if (!id.ok()) return std::nullopt;
  return *id;
}

}  // namespace loom
