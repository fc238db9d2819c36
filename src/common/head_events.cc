#include "src/common/head_events.h"

#include <spdlog/spdlog.h>

#include "proto/gcs.grpc.pb.h"
#include "src/common/async_call.h"
#include "src/common/rpc.h"

namespace loom {

void HeadEvents::Start() { Poll(0, /*from_now=*/true); }

void HeadEvents::Poll(int64_t after_seq, bool from_now) {
  struct Call {
    rpc::Context ctx;
    rpc::PollEventsRequest req;
    rpc::PollEventsReply reply;
  };
  auto* call = new Call;
  call->req.set_after_seq(after_seq);
  for (rpc::Event::Kind kind : options_.kinds) call->req.add_kinds(kind);
  // The first poll only learns where the head's sequence stands.
  call->req.set_timeout_ms(from_now ? 0 : absl::ToInt64Milliseconds(kPollWait));
  rpc::SetTimeout(&call->ctx,
                  absl::ToInt64Milliseconds(kPollWait + absl::Seconds(5)));
  if (!calls_.Start(&call->ctx)) return delete call;  // shut down
  auto done = [this, call, after_seq, from_now](grpc::Status s) {
    int64_t next = after_seq;
    bool restart_from_now = from_now;
    if (!s.ok()) {
      if (s.error_code() == grpc::StatusCode::CANCELLED) {
        calls_.Finish(&call->ctx);  // shutting down
        delete call;
        return;
      }
    } else if (!from_now && call->reply.last_seq() < after_seq) {
      // A restarted head numbers from 1 again: what it published
      // before we asked is gone, so follow it from now (the next
      // poll takes its position; asked from ours again, it would
      // answer at once, again and again).
      spdlog::info("the head restarted; following its events anew");
      restart_from_now = true;
    } else {
      next = call->reply.last_seq();
      restart_from_now = false;
      if (!from_now) {
        std::vector<rpc::Event> events(call->reply.events().begin(),
                                       call->reply.events().end());
        options_.loop->Post([this, events = std::move(events)] {
          for (const auto& e : events) options_.on_event(e);
        });
      }
    }
    absl::Duration wait = s.ok() ? absl::ZeroDuration() : kRetryWait;
    options_.loop->PostAfter(
        wait, [this, next, restart_from_now] { Poll(next, restart_from_now); });
    calls_.Finish(&call->ctx);
    delete call;
  };
  auto stub = options_.clients->Stub<rpc::Gcs>(options_.gcs_address);
  rpc::AsyncCall(*stub, &rpc::Gcs::Stub::PrepareAsyncPollEvents, &call->ctx,
                 call->req, &call->reply, done);
}

}  // namespace loom
