// src/gcs/audit_log.h
//
// AuditLog: what crossed a trust boundary at the head (a job started or
// stopped, an actor killed, a node registered or gone, a placement group
// made or removed, a person's KV write, a token made or revoked, and every
// call refused for its role), one JSON line each, appended to
// <session>/audit.log and rotated to audit.log.1..3 past max_bytes:
//
//   {"seq": 7, "time_ms": 1764859200123, "time": "2026-12-04T14:40:00.123Z",
//    "name": "alice", "role": "submitter", "peer": "ipv4:10.0.0.2:50412",
//    "action": "KillActor", "target": "actor 5f3a...", "result": "denied",
//    "reason": "the token \"alice\" has the role viewer, ..."}
//
// result is "ok", "denied" (its role may not) or "failed" (allowed, but the
// action failed: reason says why). Read by `loom audit` (ReadAudit) and the
// HTTP API's /api/audit, admin only.
//
//   AuditLog audit({.path = session_dir + "/audit.log"});
//   audit.Append(caller.who, caller.peer, "KillActor", "actor ...", status);
#ifndef LOOM_GCS_AUDIT_LOG_H_
#define LOOM_GCS_AUDIT_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "src/common/clock.h"
#include "src/common/roles.h"

namespace loom::gcs {

// Thread-safe.
class AuditLog {
 public:
  struct Options {
    std::string path;  // "": entries are counted and logged, not kept
    int64_t max_bytes = 16 << 20;
    int keep = 3;  // rotated files kept
    Clock* clock = Clock::Real();
  };
  // Continues the numbering of the entries already in `path`.
  explicit AuditLog(Options options);
  ~AuditLog();

  // One entry; `result` OK is "ok", PERMISSION_DENIED "denied", any other
  // error "failed", each with its message as the reason. A failed write is
  // logged and counted, never thrown at the caller.
  void Append(const Identity& who, const std::string& peer,
              const std::string& action, const std::string& target,
              const absl::Status& result);
  // A refusal for the role (rpc::OnDenied).
  void Denied(const Identity& who, const std::string& peer,
              const std::string& action, const std::string& reason);

  struct Page {
    std::vector<std::string> lines;
    int64_t last_seq = 0;  // of the last line given, else after_seq
  };
  // Entries numbered after `after_seq` whose time is at least `since_ms`,
  // oldest first, at most `max`.
  Page Read(int64_t after_seq, int64_t since_ms, int max) const;

 private:
  void Write(const std::string& line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Rotate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Options options_;
  mutable absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t size_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace loom::gcs

#endif  // LOOM_GCS_AUDIT_LOG_H_
