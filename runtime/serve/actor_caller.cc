#include "runtime/serve/actor_caller.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "loom/serialization.h"
#include "runtime/core_worker.h"

namespace loom::serve {
namespace {

// How long reading a ready result may take (a fetch from the replica's
// node when the answer was too large to travel inline).
constexpr int64_t kReadTimeoutMs = 60'000;

CallOutcome Failed(CallOutcome::Kind kind, std::string message) {
  CallOutcome out;
  out.kind = kind;
  out.message = std::move(message);
  return out;
}

// Each element of a msgpack array, as its own msgpack bytes.
absl::StatusOr<std::vector<std::string>> SplitArray(const uint8_t* data,
                                                    size_t size) {
  msgpack::object_handle h;
  try {
    h = msgpack::unpack(reinterpret_cast<const char*>(data), size);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("the replica's batch answer is not msgpack: ", e.what()));
  }
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::ARRAY) {
    return absl::InvalidArgumentError(
        "a batched method must return a list, one answer per request");
  }
  std::vector<std::string> out;
  out.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    msgpack::sbuffer b;
    msgpack::pack(b, o.via.array.ptr[i]);
    out.emplace_back(b.data(), b.size());
  }
  return out;
}

// Items a replica's generator sent, read from the core worker's stream.
class ActorReplyStream : public ReplyStream {
 public:
  ActorReplyStream(CoreWorker* cw, ObjectId ret) : cw_(cw), ret_(ret) {
    cw_->AddRef(ret_);  // its own: the caller's goes when the call ends
  }
  ~ActorReplyStream() override {
    if (!ended_) cw_->CloseStream(ret_);
    cw_->RemoveRef(ret_);
  }
  absl::StatusOr<std::optional<std::string>> Next(
      absl::Duration timeout) override {
    absl::StatusOr<std::optional<ObjectId>> item =
        cw_->StreamNext(ret_, index_, absl::ToInt64Milliseconds(timeout));
    if (!item.ok()) return item.status();
    if (!item->has_value()) {  // ended: by an error?
      ended_ = true;
      std::optional<CoreWorker::RawResult> end = cw_->GetRaw(ret_, 1000);
      if (end && end->error) {
        return absl::AbortedError(
            absl::StrCat(end->error->type(), ": ", end->error->message()));
      }
      return std::optional<std::string>();
    }
    ++index_;
    std::optional<CoreWorker::RawResult> raw =
        cw_->GetRaw(**item, kReadTimeoutMs);
    std::string bytes;
    absl::Status status = absl::OkStatus();
    if (!raw) {
      status = absl::DeadlineExceededError("a stream item could not be read");
    } else if (raw->error) {
      status = absl::AbortedError(raw->error->message());
    } else {
      bytes.assign(reinterpret_cast<const char*>(raw->object.data),
                   raw->object.size);
    }
    raw.reset();
    cw_->RemoveRef(**item);
    if (!status.ok()) return status;
    return std::optional<std::string>(std::move(bytes));
  }

 private:
  CoreWorker* const cw_;
  const ObjectId ret_;
  int64_t index_ = 0;
  bool ended_ = false;
};

// Items a stream may run ahead of its reader.
constexpr int64_t kStreamWindow = 16;

}  // namespace

ActorCaller::ActorCaller(CoreWorker* core_worker)
    : cw_(core_worker), loop_("serve-calls") {
  loop_.Start();
}

ActorCaller::~ActorCaller() { Stop(); }

void ActorCaller::Stop() { loop_.Stop(); }

void ActorCaller::Call(
    const std::string& replica, const std::string& method,
    std::vector<std::string> payloads, bool batch,
    std::function<void(CallOutcome)> done,
    std::function<void(std::shared_ptr<ReplyStream>)> on_stream) {
  auto actor = ActorId::FromBinary(replica);
  internal::Arg arg;
  size_t expected = payloads.size();
  if (batch) {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer>(b).pack_array(payloads.size());
    arg.data.assign(b.data(), b.size());
    for (const std::string& p : payloads) arg.data += p;
  } else {
    arg.data = std::move(payloads[0]);
  }
  std::string name = batch       ? method + "_batch"
                     : on_stream ? method + "_stream"
                                 : method;
  absl::StatusOr<std::vector<ObjectId>> ids =
      actor.ok() ? cw_->SubmitActorTask(*actor, name, {std::move(arg)}, {},
                                        /*num_returns=*/1,
                                        on_stream ? kStreamWindow : 0,
                                        /*msgpack_values=*/true)
                 : absl::StatusOr<std::vector<ObjectId>>(actor.status());
  if (!ids.ok()) {
    CallOutcome out = Failed(
        ids.status().code() == absl::StatusCode::kNotFound
            ? CallOutcome::kReplicaDied
            : CallOutcome::kFailed,
        absl::StrCat("calling the replica failed: ", ids.status().ToString()));
    loop_.Post([done, out] { done(out); });
    return;
  }
  ObjectId id = (*ids)[0];
  cw_->AddRef(id);  // this call's, dropped once its answer is read
  if (on_stream) {
    auto stream = std::make_shared<ActorReplyStream>(cw_, id);
    loop_.Post([on_stream, stream] { on_stream(stream); });
  }
  cw_->OnReady(id, [this, id, batch, expected, done] {
    loop_.Post(
        [this, id, batch, expected, done] { Read(id, batch, expected, done); });
  });
}

void ActorCaller::Read(const ObjectId& id, bool batch, size_t expected,
                       const std::function<void(CallOutcome)>& done) {
  std::optional<CoreWorker::RawResult> raw = cw_->GetRaw(id, kReadTimeoutMs);
  CallOutcome out;
  if (!raw) {
    out = Failed(CallOutcome::kFailed,
                 "the replica's answer could not be read in time");
  } else if (raw->error) {
    const rpc::ErrorInfo& e = *raw->error;
    bool died = e.kind() == rpc::ErrorInfo::ACTOR_DIED ||
                e.kind() == rpc::ErrorInfo::WORKER_CRASHED ||
                e.kind() == rpc::ErrorInfo::OUT_OF_MEMORY;
    std::string what = e.type().empty()
                           ? e.message()
                           : absl::StrCat(e.type(), ": ", e.message());
    out = Failed(died ? CallOutcome::kReplicaDied : CallOutcome::kFailed, what);
  } else if (batch) {
    auto values = SplitArray(raw->object.data, raw->object.size);
    if (!values.ok()) {
      out =
          Failed(CallOutcome::kFailed, std::string(values.status().message()));
    } else if (values->size() != expected) {
      out = Failed(CallOutcome::kFailed,
                   absl::StrCat("a batched method returned ", values->size(),
                                " answers for ", expected, " requests"));
    } else {
      out.values = std::move(*values);
    }
  } else {
    out.values.emplace_back(reinterpret_cast<const char*>(raw->object.data),
                            raw->object.size);
  }
  raw.reset();  // unpins before the ref goes
  cw_->RemoveRef(id);
  done(std::move(out));
}

}  // namespace loom::serve
