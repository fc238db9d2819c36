// runtime/task_args.h
//
// What both submitters (tasks, actor calls) do with a task's arguments and
// its reply: wait for ObjectRef arguments, inline the ready ones, release
// the references held for the task, and record the reply in the table.
//
//   WhenArgsReady(objects, loop, spec, [&] {
//     if (auto error = InlineArgs(objects, &spec)) return Fail(*error);
//     Push(spec);
//   });
//   ...
//   ApplyReply(objects, self_address, spec, reply);
//   ReleaseArgs(objects, spec);
#ifndef LOOM_RUNTIME_TASK_ARGS_H_
#define LOOM_RUNTIME_TASK_ARGS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "loom/internal/runtime.h"
#include "proto/worker.pb.h"
#include "runtime/object_table.h"
#include "src/common/event_loop.h"

namespace loom {

// Runs `ready` on `loop` once every ObjectRef argument of `spec` is ready;
// at once when there are none (call it on the loop).
void WhenArgsReady(ObjectTable* objects, EventLoop* loop,
                   const rpc::TaskSpec& spec, std::function<void()> ready);
// Replaces ready ref arguments by their values; those in a store stay refs
// (with their node) that the worker reads in place, still held. Returns the
// error of a failed or lost argument.
std::optional<rpc::ErrorInfo> InlineArgs(ObjectTable* objects,
                                         rpc::TaskSpec* spec);
// Drops the references held for a task that is done: its in-store
// arguments and the refs serialized inside its arguments.
void ReleaseArgs(ObjectTable* objects, const rpc::TaskSpec& spec);
// The wire form of a strategy; InvalidArgument for a bad node id.
absl::StatusOr<rpc::SchedulingStrategy> StrategyToProto(
    const internal::Strategy& strategy);

// The objects a task returns: ForReturn(task, 1..num_returns).
std::vector<ObjectId> ReturnIds(const rpc::TaskSpec& spec);
// Whether a successful reply left a return value in an object store (only
// those can be lost with a node, and need lineage).
bool ReturnsInStore(const rpc::PushTaskReply& reply);

// The error of a task whose argument `id` its worker could not read. When
// no live copy could be pulled (the node holding it died) it is
// OBJECT_LOST of type kArgumentLost with the id in `data`: the owner
// rebuilds the argument and runs the task again (ArgumentLost). Otherwise
// INVALID.
inline constexpr char kArgumentLost[] = "ArgumentLost";
rpc::ErrorInfo ArgumentError(const ObjectId& id, const absl::Status& why,
                             const std::string& function_name);
// The argument a reply says was lost, if it says so.
std::optional<ObjectId> ArgumentLost(const rpc::PushTaskReply& reply);
// Fails every object the task returns with `error`.
void SetReturnsError(ObjectTable* objects, const rpc::TaskSpec& spec,
                     const rpc::ErrorInfo& error);
// Refs inside a value that arrived here (its executor registered us as
// their borrower): object `id` holds them while it lives.
void HoldContained(
    ObjectTable* objects, const std::string& self_address, const ObjectId& id,
    const google::protobuf::RepeatedPtrField<rpc::ObjectRef>& refs);
// Records a reply in the task's return objects: the value (inline or in a
// store) or the error, and the refs the value carries.
void ApplyReply(ObjectTable* objects, const std::string& self_address,
                const rpc::TaskSpec& spec, rpc::PushTaskReply& reply);

}  // namespace loom

#endif  // LOOM_RUNTIME_TASK_ARGS_H_
