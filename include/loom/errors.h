// include/loom/errors.h
//
// The exceptions Loom's C++ API throws. Inside the runtime errors are
// values; they become these at the API edge.
//
//   try {
//     loom::Get(ref);
//   } catch (const loom::TaskError& e) {
//     std::cerr << e.task_name() << " threw " << e.remote_type() << ": " <<
//     e.what();
//   } catch (const loom::GetTimeoutError&) { ... }
#ifndef LOOM_ERRORS_H_
#define LOOM_ERRORS_H_

#include <stdexcept>
#include <string>

namespace loom {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The task's own code threw. Carries the remote type, message and task name.
class TaskError : public Error {
 public:
  TaskError(std::string remote_type, std::string remote_message,
            std::string task_name)
      : Error(task_name + " failed: " + remote_type + ": " + remote_message),
        remote_type_(std::move(remote_type)),
        remote_message_(std::move(remote_message)),
        task_name_(std::move(task_name)) {}
  const std::string& remote_type() const { return remote_type_; }
  const std::string& remote_message() const { return remote_message_; }
  const std::string& task_name() const { return task_name_; }

 private:
  std::string remote_type_, remote_message_, task_name_;
};

// The worker running the task died, and retries ran out.
class WorkerCrashedError : public Error {
 public:
  using Error::Error;
};

// Get ran past its timeout (Wait returns instead, with fewer ready).
class GetTimeoutError : public Error {
 public:
  using Error::Error;
};

// No node in the cluster can ever satisfy the task's resource demand.
class InfeasibleError : public Error {
 public:
  using Error::Error;
};

// The node's object store cannot hold the value; the message names the
// sizes (requested, free, capacity).
class ObjectStoreFullError : public Error {
 public:
  using Error::Error;
};

// The process that owned the object is gone.
class OwnerDiedError : public Error {
 public:
  using Error::Error;
};

// Every copy of the object is gone and it cannot be rebuilt; the message
// says why (which node died, that it was a put, that retries ran out).
class ObjectLostError : public Error {
 public:
  using Error::Error;
};

// The node ran short of memory and its memory monitor killed the worker
// running the task; the message names the task, node and memory figures.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

// Backpressure: the caller already has max_pending_calls calls to this
// actor not yet answered.
class PendingCallsLimitExceededError : public Error {
 public:
  using Error::Error;
};

// The actor is dead (killed, or its restarts are used up) and the call did
// not run; the message carries the cause.
class ActorDiedError : public Error {
 public:
  using Error::Error;
};

}  // namespace loom

#endif  // LOOM_ERRORS_H_
