// Cluster tests: what a worker accepts. A leased worker, C++ and Python,
// refuses every malformed request with INVALID_ARGUMENT and every request
// it is not entitled to run (no lease, another lease, another job, another
// actor, a control call not from its raylet) with PERMISSION_DENIED or
// FAILED_PRECONDITION, and after each still runs a normal task pushed
// under its lease; an actor keeps its state. The raylet grants no worker to
// a lease request its caller gave up on.
#include <unistd.h>

#include <functional>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "loom/loom.h"
#include "object_store/layout.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "runtime/local_cluster.h"
#include "src/common/ids.h"
#include "src/common/rpc.h"
#include "tests/cluster/bad_call.h"
#include "tests/cluster/cluster_util.h"
#include "tests/cluster/test_functions.h"

namespace loom::test {
namespace {

// The function table entry a Python worker runs: pickle.dumps((abs, {}),
// protocol=0), a builtin, so that no code travels.
const char kAbsPickle[] = "(c__builtin__\nabs\np0\n(dp1\ntp2\n.";
const char kAbsKey[] = "test:abs";
// pickle.dumps(-5, protocol=5) and pickle.dumps(5, protocol=5).
const std::string kMinusFive(
    "\x80\x05\x95\x06\x00\x00\x00\x00\x00\x00\x00J\xfb"
    "\xff\xff\xff.",
    17);
const std::string kFive("\x80\x05K\x05.", 5);

// A worker leased straight from the raylet, as a submitter leases one.
struct Leased {
  bool python = false;
  std::string lease_id;
  std::string address;
  std::unique_ptr<rpc::CoreWorker::Stub> stub;
};

class WorkerInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.session_root = root_.path();
    options.num_cpus = 4;
    auto c = StartCluster(options);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = *c;
    gcs_ = rpc::Gcs::NewStub(rpc::MakeChannel(cluster_.gcs_address));
    raylet_ = rpc::Raylet::NewStub(rpc::MakeChannel(cluster_.raylet_address));
    rpc::AddJobRequest add;
    add.set_driver_pid(getpid());
    rpc::AddJobReply job;
    ASSERT_TRUE(Invoke<10000>([&](auto* c) {
                  return gcs_->AddJob(c, add, &job);
                }).ok());
    job_ = job.job_id();
  }
  void TearDown() override {
    loom::Shutdown();  // the actor test's driver, if it is still up
    StopCluster(cluster_);
  }

  rpc::LeaseRequest LeaseRequest(bool python) {
    rpc::LeaseRequest req;
    req.set_job_id(job_);
    (*req.mutable_resources()->mutable_quantities())["CPU"] = 1;
    req.add_code_search_path(TestLib());
    if (python) {
      // The interpreter's own sys.path, where it finds the loom package.
      auto path = RunCommand(std::string(LOOM_TEST_PYTHON) +
                             " -c 'import sys, loom._core; "
                             "print(\":\".join(sys.path))'");
      EXPECT_EQ(path.exit_code, 0)
          << LOOM_TEST_PYTHON
          << " cannot import loom (run make install-python): " << path.output;
      python_path_ = std::string(absl::StripAsciiWhitespace(path.output));
      rpc::WorkerRuntime* r = req.mutable_runtime();
      r->set_language(rpc::WorkerRuntime::PYTHON);
      r->set_python_executable(LOOM_TEST_PYTHON);
      for (const auto& dir : absl::StrSplit(python_path_, ':')) {
        r->add_python_path(std::string(dir));
      }
      r->set_cwd("/");
    }
    return req;
  }

  Leased Lease(bool python) {
    Leased w;
    w.python = python;
    rpc::LeaseReply lease;
    grpc::Status s = Invoke<10000>([&](auto* c) {
      return raylet_->RequestWorkerLease(c, LeaseRequest(python), &lease);
    });
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(lease.outcome(), rpc::LeaseReply::GRANTED) << lease.message();
    w.lease_id = lease.lease_id();
    w.address = absl::StrCat(lease.worker().host(), ":", lease.worker().port());
    w.stub = rpc::CoreWorker::NewStub(rpc::MakeChannel(w.address));
    return w;
  }

  // A normal task for `w`, under its lease: Echo(41) in C++, abs(-5) in
  // Python.
  rpc::PushTaskRequest NormalTask(const Leased& w) {
    rpc::PushTaskRequest req;
    rpc::TaskSpec* spec = req.mutable_spec();
    spec->set_task_id(TaskId::FromRandom().Binary());
    spec->set_job_id(job_);
    spec->mutable_caller()->set_host("127.0.0.1");
    spec->mutable_caller()->set_port(1);
    if (w.python) {
      spec->set_function_name("abs");
      spec->set_function_key(kAbsKey);
      spec->add_args()->set_value(
          EncodeLayout(Format::kPickle5, kMinusFive, {}));
    } else {
      spec->set_function_name("Echo");
      spec->add_args()->set_value(Serialize(41));
    }
    req.set_lease_id(w.lease_id);
    return req;
  }

  // Whether `w` runs a normal task and returns the right value.
  bool RunsNormalTask(const Leased& w, const std::string& after) {
    rpc::PushTaskReply reply;
    grpc::Status s = Invoke<10000>(
        [&](auto* c) { return w.stub->PushTask(c, NormalTask(w), &reply); });
    bool right = false;
    if (s.ok() && reply.ok() && w.python) {
      auto layout =
          ParseLayout(reinterpret_cast<const uint8_t*>(reply.value().data()),
                      reply.value().size());
      right = layout.ok() && layout->metadata == kFive;
    } else if (s.ok() && reply.ok()) {
      right = Deserialize<int>(reply.value()) == 41;
    }
    EXPECT_TRUE(right) << (w.python ? "python" : "c++") << " worker, after "
                       << after << ": " << s.error_message() << " "
                       << reply.error().message();
    return right;
  }

  void PutAbs() {
    rpc::KvPutRequest put;
    put.set_ns("fn");
    put.set_key(kAbsKey);
    put.set_value(kAbsPickle);
    rpc::KvPutReply reply;
    ASSERT_TRUE(Invoke<10000>([&](auto* c) {
                  return gcs_->KvPut(c, put, &reply);
                }).ok());
  }

  TempRoot root_;
  ClusterHandle cluster_;
  std::unique_ptr<rpc::Gcs::Stub> gcs_;
  std::unique_ptr<rpc::Raylet::Stub> raylet_;
  std::string job_;
  std::string python_path_;
};

class WorkerInputBothTest : public WorkerInputTest,
                            public ::testing::WithParamInterface<bool> {};

// Every method with malformed fields, and well-formed requests the worker
// may not run; after each, the worker still runs a task under its lease.
// Then the lease is returned, and pushes under it are refused.
TEST_P(WorkerInputBothTest, RefusesBadRequestsAndKeepsServing) {
  const bool python = GetParam();
  PutAbs();
  Leased w = Lease(python);
  ASSERT_TRUE(RunsNormalTask(w, "the lease"));
  using W = rpc::CoreWorker::Stub;
  W* stub = w.stub.get();
  const Code kInvalid = Code::INVALID_ARGUMENT;
  const Code kDenied = Code::PERMISSION_DENIED;
  // A normal task changed by `edit`.
  auto push = [&](const std::function<void(rpc::PushTaskRequest&)>& edit) {
    rpc::PushTaskRequest req = NormalTask(w);
    edit(req);
    return req;
  };
  auto ref_arg = [](const std::string& object, const std::string& node) {
    return [=](rpc::PushTaskRequest& r) {
      rpc::ObjectRef* ref = r.mutable_spec()->add_args()->mutable_ref();
      ref->set_object_id(object);
      ref->set_store_node_id(node);
    };
  };
  const std::string object = ObjectId::ForPut(TaskId::FromRandom(), 1).Binary();
  const std::string node = NodeId::FromRandom().Binary();
  auto assign = [&](const std::string& job, const std::string& lease) {
    rpc::AssignJobRequest req;
    req.set_job_id(job);
    req.set_lease_id(lease);
    req.add_code_search_path(TestLib());
    req.set_control_key(std::string(kControlKeySize, 'k'));
    return req;
  };
  rpc::EndLeaseRequest end_lease;
  end_lease.set_lease_id(w.lease_id);
  end_lease.set_control_key(std::string(kControlKeySize, 'k'));
  rpc::EndLeaseRequest end_short = end_lease;
  end_short.set_lease_id("short");
  rpc::GetObjectRequest get_short;
  get_short.set_object_id("short");
  auto borrows = [&](const std::string& id, const std::string& borrower) {
    rpc::UpdateBorrowsRequest req;
    req.add_add(id);
    req.set_borrower(borrower);
    return req;
  };
  auto cancel = [](const std::string& task, const std::string& lease) {
    rpc::CancelTaskRequest req;
    req.set_task_id(task);
    req.set_lease_id(lease);
    req.set_force(true);
    return req;
  };

  std::vector<BadCall> calls = {
      Call("push: empty task id", stub, &W::PushTask,
           push([](auto& r) { r.mutable_spec()->set_task_id(""); }), kInvalid),
      Call("push: 1 MiB task id", stub, &W::PushTask,
           push([](auto& r) { r.mutable_spec()->set_task_id(kHuge); }),
           kInvalid),
      Call("push: 5-byte job id", stub, &W::PushTask,
           push([](auto& r) { r.mutable_spec()->set_job_id("short"); }),
           kInvalid),
      Call("push: 1 MiB function name", stub, &W::PushTask,
           push([](auto& r) { r.mutable_spec()->set_function_name(kHuge); }),
           kInvalid),
      Call("push: a ref argument with a 5-byte object id", stub, &W::PushTask,
           push(ref_arg("short", node)), kInvalid),
      Call("push: a ref argument without its store's node", stub, &W::PushTask,
           push(ref_arg(object, "")), kInvalid),
      Call("push: an argument that is neither value nor ref", stub,
           &W::PushTask, push([](auto& r) { r.mutable_spec()->add_args(); }),
           kInvalid),
      Call("push: num_returns 1001", stub, &W::PushTask,
           push([](auto& r) { r.mutable_spec()->set_num_returns(1001); }),
           kInvalid),
      Call("push: max_concurrency 100000", stub, &W::PushTask,
           push([](auto& r) { r.mutable_spec()->set_max_concurrency(100000); }),
           kInvalid),
      Call("push: caller port 70000", stub, &W::PushTask, push([](auto& r) {
             r.mutable_spec()->mutable_caller()->set_port(70000);
           }),
           kInvalid),
      Call("push: a 5-byte contained ref", stub, &W::PushTask,
           push([](auto& r) { r.mutable_spec()->add_contained("short"); }),
           kInvalid),
      Call("push: an actor call with a 5-byte actor id", stub, &W::PushTask,
           push([](auto& r) {
             r.mutable_spec()->set_actor_id("short");
             r.mutable_spec()->set_caller_id(WorkerId::FromRandom().Binary());
           }),
           kInvalid),
      Call("push: a 5-byte lease id", stub, &W::PushTask,
           push([](auto& r) { r.set_lease_id("short"); }), kInvalid),
      Call("push: no lease", stub, &W::PushTask,
           push([](auto& r) { r.clear_lease_id(); }), kDenied),
      Call("push: a lease never granted", stub, &W::PushTask, push([](auto& r) {
             r.set_lease_id(LeaseId::FromRandom().Binary());
           }),
           kDenied),
      Call("push: another job's task under the lease", stub, &W::PushTask,
           push([](auto& r) {
             r.mutable_spec()->set_job_id(JobId::FromInt(12345).Binary());
           }),
           kDenied),
      Call("push: an actor call to a worker that serves no actor", stub,
           &W::PushTask, push([](auto& r) {
             r.mutable_spec()->set_actor_id(ActorId::FromRandom().Binary());
             r.mutable_spec()->set_caller_id(WorkerId::FromRandom().Binary());
           }),
           Code::FAILED_PRECONDITION),
      Call("assign: 1 MiB job id", stub, &W::AssignJob,
           assign(kHuge, w.lease_id), kInvalid),
      Call("assign: no lease id", stub, &W::AssignJob, assign(job_, ""),
           kInvalid),
      Call("assign: not from the raylet (a lease of one's own)", stub,
           &W::AssignJob, assign(job_, LeaseId::FromRandom().Binary()),
           kDenied),
      Call("end lease: 5-byte lease id", stub, &W::EndLease, end_short,
           kInvalid),
      Call("end lease: not from the raylet", stub, &W::EndLease, end_lease,
           kDenied),
      Call("exit: not from the raylet", stub, &W::Exit, rpc::ExitRequest(),
           kDenied),
      Call("get object: 5-byte id", stub, &W::GetObject, get_short, kInvalid),
      Call("borrows: 1 MiB object id", stub, &W::UpdateBorrows,
           borrows(kHuge, "127.0.0.1:1"), kInvalid),
      Call("borrows: a borrower that is not host:port", stub, &W::UpdateBorrows,
           borrows(object, "nonsense"), kInvalid),
      Call("borrows: no borrower", stub, &W::UpdateBorrows, borrows(object, ""),
           kInvalid),
      Call("cancel: 1 MiB task id", stub, &W::CancelTask,
           cancel(kHuge, w.lease_id), kInvalid),
      Call("cancel: 5-byte lease id", stub, &W::CancelTask,
           cancel(TaskId::FromRandom().Binary(), "short"), kInvalid),
  };
  // The inline argument shorter than its header (issue 12's 34-byte push):
  // a Python worker reads arguments as objects, so it is malformed there; a
  // C++ worker's argument is msgpack, and a task whose argument is not fails
  // saying so (below).
  rpc::PushTaskRequest short_arg = push(
      [](auto& r) { r.mutable_spec()->mutable_args(0)->set_value("abc"); });
  if (python) {
    calls.push_back(Call("push: an inline argument shorter than its header",
                         stub, &W::PushTask, short_arg, kInvalid));
  }
  for (const BadCall& call : calls) {
    grpc::Status s = Invoke<10000>(call.send);
    EXPECT_EQ(CodeName(s.error_code()), CodeName(call.want))
        << call.name << ": " << s.error_message();
    EXPECT_FALSE(s.error_message().empty() && !s.ok()) << call.name;
    if (!RunsNormalTask(w, call.name)) return;
  }

  // Well-formed tasks the worker runs and that fail: the error says why.
  auto push_reply = [&](const rpc::PushTaskRequest& request) {
    rpc::PushTaskReply reply;
    grpc::Status s = Invoke<10000>(
        [&](auto* c) { return stub->PushTask(c, request, &reply); });
    EXPECT_TRUE(s.ok()) << s.error_message();
    return reply;
  };
  if (!python) {
    // 0xc1 is the one byte msgpack never uses.
    rpc::PushTaskReply reply = push_reply(push(
        [](auto& r) { r.mutable_spec()->mutable_args(0)->set_value("\xc1"); }));
    EXPECT_FALSE(reply.ok());
    EXPECT_EQ(reply.error().kind(), rpc::ErrorInfo::INVALID)
        << reply.error().message();
    EXPECT_TRUE(RunsNormalTask(w, "an argument that is not msgpack"));
  }
  rpc::PushTaskReply unknown = push_reply(push([](auto& r) {
    r.mutable_spec()->set_function_name("NoSuchFunction");
    r.mutable_spec()->set_function_key("py:NoSuchFunction");
  }));
  EXPECT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("NoSuchFunction"), std::string::npos)
      << unknown.error().message();
  EXPECT_TRUE(RunsNormalTask(w, "an unknown function"));

  // Returned, the lease runs nothing more.
  rpc::ReturnWorkerRequest ret;
  ret.set_lease_id(w.lease_id);
  rpc::ReturnWorkerReply ret_reply;
  ASSERT_TRUE(Invoke<10000>([&](auto* c) {
                return raylet_->ReturnWorker(c, ret, &ret_reply);
              }).ok());
  grpc::Status after;
  EXPECT_TRUE(WaitUntil(
      [&] {
        rpc::PushTaskReply reply;
        after = Invoke<10000>(
            [&](auto* c) { return stub->PushTask(c, NormalTask(w), &reply); });
        return after.error_code() == kDenied;
      },
      absl::Seconds(10)))
      << "a push under the returned lease: " << after.error_message();
  // The worker itself is fine: leased again, it runs tasks.
  Leased again = Lease(python);
  EXPECT_TRUE(RunsNormalTask(again, "the lease was returned"));
}

INSTANTIATE_TEST_SUITE_P(Workers, WorkerInputBothTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "Python" : "Cpp";
                         });

// A queued task is cancelled only by its lease holder.
TEST_F(WorkerInputTest, ACancelMustNameTheTasksLease) {
  Leased w = Lease(/*python=*/false);
  rpc::PushTaskRequest sleep = NormalTask(w);
  sleep.mutable_spec()->set_function_name("SleepMs");
  sleep.mutable_spec()->mutable_args(0)->set_value(Serialize(2000));
  rpc::PushTaskRequest queued = NormalTask(w);
  rpc::PushTaskReply sleep_reply, queued_reply;
  grpc::Status queued_status;
  std::thread first([&] {
    Invoke<10000>(
        [&](auto* c) { return w.stub->PushTask(c, sleep, &sleep_reply); });
  });
  std::thread second([&] {
    absl::SleepFor(absl::Milliseconds(200));  // behind the sleeping task
    queued_status = Invoke<10000>(
        [&](auto* c) { return w.stub->PushTask(c, queued, &queued_reply); });
  });
  rpc::CancelTaskRequest cancel;
  cancel.set_task_id(queued.spec().task_id());
  cancel.set_force(true);
  cancel.set_lease_id(LeaseId::FromRandom().Binary());
  rpc::CancelTaskReply reply;
  grpc::Status denied;
  // Polled: the queued push must have arrived to be found.
  EXPECT_TRUE(WaitUntil(
      [&] {
        denied = Invoke<10000>(
            [&](auto* c) { return w.stub->CancelTask(c, cancel, &reply); });
        return denied.error_code() == Code::PERMISSION_DENIED;
      },
      absl::Seconds(2)))
      << denied.error_message();
  cancel.set_lease_id(w.lease_id);
  cancel.set_force(false);
  grpc::Status s = Invoke<10000>(
      [&](auto* c) { return w.stub->CancelTask(c, cancel, &reply); });
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(reply.found());
  first.join();
  second.join();
  EXPECT_TRUE(sleep_reply.ok()) << sleep_reply.error().message();
  EXPECT_TRUE(queued_status.ok());
  EXPECT_EQ(queued_reply.error().kind(), rpc::ErrorInfo::TASK_CANCELLED);
  EXPECT_TRUE(RunsNormalTask(w, "the cancels"));
}

// A lease request whose caller gave up (its deadline passed while it
// waited for a CPU) is never granted: the freed CPU goes to the next
// request, not to a worker nobody would use or return (the head's actor
// leases time out so under load, and each one left a worker held).
TEST_F(WorkerInputTest, ALeaseRequestItsCallerGaveUpOnIsNeverGranted) {
  std::vector<Leased> all;
  for (int i = 0; i < 4; ++i) all.push_back(Lease(/*python=*/false));
  rpc::LeaseReply late;
  grpc::Status gave_up = Invoke<1000>([&](auto* c) {
    return raylet_->RequestWorkerLease(c, LeaseRequest(false), &late);
  });
  ASSERT_EQ(gave_up.error_code(), Code::DEADLINE_EXCEEDED);
  rpc::ReturnWorkerRequest ret;
  ret.set_lease_id(all[0].lease_id);
  rpc::ReturnWorkerReply ret_reply;
  ASSERT_TRUE(Invoke<10000>([&](auto* c) {
                return raylet_->ReturnWorker(c, ret, &ret_reply);
              }).ok());
  rpc::LeaseReply next;
  grpc::Status s = Invoke<10000>([&](auto* c) {
    return raylet_->RequestWorkerLease(c, LeaseRequest(false), &next);
  });
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(next.outcome(), rpc::LeaseReply::GRANTED) << next.message();
}

// An actor's worker takes only that actor's calls, and no task, creation or
// control call from anyone else; its state survives them.
TEST_F(WorkerInputTest, AnActorTakesOnlyItsOwnCalls) {
  InitOptions options;
  options.address = cluster_.gcs_address;
  options.session_root = root_.path();
  options.code_search_path = {TestLib()};
  loom::Init(options);
  auto counter = Actor(MakeCounter).SetName("kept").Remote(5);
  ASSERT_EQ(*Get(counter.Task(&Counter::Add).Remote(1), 30000), 6);
  rpc::GetActorRequest get;
  get.set_name("kept");
  rpc::GetActorReply info;
  ASSERT_TRUE(Invoke<10000>([&](auto* c) {
                return gcs_->GetActor(c, get, &info);
              }).ok());
  const rpc::ActorInfo& actor = info.actor();
  Leased w;
  w.address = absl::StrCat(actor.address().host(), ":", actor.address().port());
  w.stub = rpc::CoreWorker::NewStub(rpc::MakeChannel(w.address));
  using W = rpc::CoreWorker::Stub;
  auto call = [&](const std::string& actor_id) {
    rpc::PushTaskRequest req = NormalTask(w);
    req.mutable_spec()->set_function_name("Counter::Add");
    req.mutable_spec()->set_actor_id(actor_id);
    req.mutable_spec()->set_caller_id(WorkerId::FromRandom().Binary());
    return req;
  };
  rpc::PushTaskRequest creation = NormalTask(w);
  creation.mutable_spec()->set_function_name("MakeCounter");
  creation.mutable_spec()->set_actor_id(actor.actor_id());
  creation.mutable_spec()->set_actor_creation(true);
  rpc::PushTaskRequest leased_creation = creation;
  leased_creation.set_lease_id(LeaseId::FromRandom().Binary());
  rpc::PushTaskRequest task = NormalTask(w);
  task.set_lease_id(LeaseId::FromRandom().Binary());
  std::vector<BadCall> calls = {
      Call("a call for another actor", w.stub.get(), &W::PushTask,
           call(ActorId::FromRandom().Binary()), Code::PERMISSION_DENIED),
      Call("a task without a lease", w.stub.get(), &W::PushTask, NormalTask(w),
           Code::PERMISSION_DENIED),
      Call("a task under a lease of its own", w.stub.get(), &W::PushTask, task,
           Code::PERMISSION_DENIED),
      Call("a second creation", w.stub.get(), &W::PushTask, creation,
           Code::PERMISSION_DENIED),
      Call("a second creation under a lease of its own", w.stub.get(),
           &W::PushTask, leased_creation, Code::PERMISSION_DENIED),
      Call("exit: not from the raylet", w.stub.get(), &W::Exit,
           rpc::ExitRequest(), Code::PERMISSION_DENIED),
  };
  int expected = 6;
  for (const BadCall& bad : calls) {
    grpc::Status s = Invoke<10000>(bad.send);
    EXPECT_EQ(CodeName(s.error_code()), CodeName(bad.want))
        << bad.name << ": " << s.error_message();
    EXPECT_EQ(*Get(counter.Task(&Counter::Add).Remote(1), 30000), ++expected)
        << "after " << bad.name;
  }
}

}  // namespace
}  // namespace loom::test
