// Unit tests for runtime/: serialization round trips, the object table,
// running a task spec through the function table, and thread caps.
#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <map>
#include <thread>

#include "gtest/gtest.h"
#include "loom/loom.h"
#include "runtime/core_worker.h"
#include "runtime/tensor_codec.h"
#include "runtime/thread_caps.h"

namespace {

struct Point {
  double x, y;
  std::string label;
  MSGPACK_DEFINE(x, y, label);
};

int Twice(int x) { return 2 * x; }
int Explode(int) { throw std::domain_error("boom"); }
std::string Big(int n) { return std::string(n, 'x'); }
LOOM_REMOTE(Twice, Explode, Big);

}  // namespace

namespace loom {
namespace {

TEST(Serialization, RoundTrips) {
  EXPECT_EQ(Deserialize<int>(Serialize(42)), 42);
  EXPECT_EQ(Deserialize<std::string>(Serialize(std::string("hé\0llo", 6))),
            std::string("hé\0llo", 6));
  std::vector<double> v = {1.5, -2, 1e300};
  EXPECT_EQ(Deserialize<std::vector<double>>(Serialize(v)), v);
  std::map<std::string, std::vector<int>> m = {{"a", {1, 2}}, {"b", {}}};
  EXPECT_EQ(
      (Deserialize<std::map<std::string, std::vector<int>>>(Serialize(m))), m);
  Point p = Deserialize<Point>(Serialize(Point{1, 2, "p"}));
  EXPECT_EQ(p.x, 1);
  EXPECT_EQ(p.label, "p");
}

TEST(Serialization, WrongTypeIsAClearError) {
  EXPECT_THROW(Deserialize<int>(Serialize(std::string("no"))), Error);
  EXPECT_THROW(Deserialize<int>(std::string("\xc1")), Error);
}

TEST(Serialization, TensorsRoundTripAlignedAndCopiedOutsidePins) {
  std::vector<float> values = {1, 2, 3, 4, 5, 6};
  Tensor t("float32", {2, 3}, Buffer::Copy(values.data(), 24));
  std::string bytes = Serialize(t);
  Tensor back = Deserialize<Tensor>(bytes);
  EXPECT_EQ(back.dtype(), "float32");
  EXPECT_EQ(back.shape(), (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(back.nbytes(), 24u);
  EXPECT_EQ(std::memcmp(back.data(), values.data(), 24), 0);
  // The elements sit 64-byte aligned in a value that is the tensor alone;
  // outside any argument pin, the Tensor is a copy of them.
  const char* in_value = nullptr;
  for (size_t at = 0; at + 24 <= bytes.size(); ++at) {
    if (std::memcmp(bytes.data() + at, values.data(), 24) == 0) {
      in_value = bytes.data() + at;
    }
  }
  ASSERT_NE(in_value, nullptr);
  EXPECT_EQ((in_value - bytes.data()) % 64, 0);
  EXPECT_NE(reinterpret_cast<const char*>(back.data()), in_value);
  // Inside a pinned argument, a view of it.
  {
    ArgumentPins pins;
    pins.Add(bytes.data(), bytes.size(), std::make_shared<int>(0));
    Tensor view = Deserialize<Tensor>(bytes);
    EXPECT_EQ(reinterpret_cast<const char*>(view.data()), in_value);
  }
  // Nested in other values, and large (an ext32 header).
  std::vector<double> big(100000, 0.25);
  Tensor large("float64", {100000}, Buffer::Copy(big.data(), 800000));
  auto pair = Deserialize<std::tuple<std::string, Tensor>>(
      Serialize(std::make_tuple(std::string("x"), large)));
  EXPECT_EQ(std::get<1>(pair).nbytes(), 800000u);
  EXPECT_EQ(reinterpret_cast<const double*>(std::get<1>(pair).data())[99999],
            0.25);
  // Not a tensor, or a broken one: loom::Error.
  EXPECT_THROW(Deserialize<Tensor>(Serialize(7)), Error);
  std::string broken = bytes.substr(0, 8);
  EXPECT_THROW(Deserialize<Tensor>(broken), Error);
}

rpc::TaskSpec Spec(const std::string& fn, std::vector<std::string> args) {
  rpc::TaskSpec spec;
  spec.set_function_name(fn);
  for (auto& a : args) spec.add_args()->set_value(a);
  return spec;
}

TEST(ExecuteTask, RunsRegisteredFunctions) {
  rpc::PushTaskReply reply;
  ExecuteTask(Spec("Twice", {Serialize(21)}), &reply);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(Deserialize<int>(reply.value()), 42);
}

TEST(ExecuteTask, ExceptionsCarryTypeMessageAndTask) {
  rpc::PushTaskReply reply;
  ExecuteTask(Spec("Explode", {Serialize(1)}), &reply);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().kind(), rpc::ErrorInfo::TASK_ERROR);
  EXPECT_EQ(reply.error().type(), "std::domain_error");
  EXPECT_EQ(reply.error().message(), "boom");
  EXPECT_EQ(reply.error().task_name(), "Explode");
}

TEST(ExecuteTask, RefusesUnknownFunctionsBadArgsAndLargeValues) {
  rpc::PushTaskReply r1, r2, r3, r4;
  ExecuteTask(Spec("Nope", {}), &r1);
  EXPECT_EQ(r1.error().kind(), rpc::ErrorInfo::INVALID);
  ExecuteTask(Spec("Twice", {}), &r2);  // too few arguments
  EXPECT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().kind(), rpc::ErrorInfo::INVALID) << r2.error().message();
  ExecuteTask(Spec("Twice", {Serialize(std::string("x"))}), &r3);  // a string
  EXPECT_FALSE(r3.ok());
  EXPECT_EQ(r3.error().kind(), rpc::ErrorInfo::INVALID) << r3.error().message();
  ExecuteTask(Spec("Big", {Serialize(200 * 1024)}), &r4);
  EXPECT_FALSE(r4.ok());
  EXPECT_NE(r4.error().message().find("object store"), std::string::npos);
}

TEST(ObjectTable, GetWaitsForValuesAndTimesOut) {
  ObjectTable table;
  ObjectId a = ObjectId::ForReturn(TaskId::FromRandom(), 1);
  ObjectId b = ObjectId::ForReturn(TaskId::FromRandom(), 1);
  table.AddPending(a);
  table.AddPending(b);
  table.AddRef(a);
  table.AddRef(b);
  EXPECT_FALSE(
      table.Get({a}, absl::Now() + absl::Milliseconds(20)).has_value());
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(20));
    table.SetValue(b, "B");
    table.SetError(a, MakeError(rpc::ErrorInfo::TASK_ERROR, "bad"));
  });
  auto results = table.Get({a, b}, absl::InfiniteFuture());
  setter.join();
  ASSERT_TRUE(results.has_value());
  EXPECT_TRUE((*results)[0].error.has_value());
  EXPECT_EQ(*(*results)[1].value, "B");
}

// `n` new pending objects the caller holds refs to.
std::vector<ObjectId> PendingIds(ObjectTable& table, int n) {
  std::vector<ObjectId> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(ObjectId::ForReturn(TaskId::FromRandom(), 1));
    table.AddPending(ids.back());
    table.AddRef(ids.back());
  }
  return ids;
}

TEST(ObjectTable, GetStopsAtTheFirstErrorWhenAsked) {
  ObjectTable table;
  std::vector<ObjectId> ids = PendingIds(table, 3);
  table.SetValue(ids[0], "0");
  // Without stop_at_error an error changes nothing while others pend.
  table.SetError(ids[2], MakeError(rpc::ErrorInfo::TASK_ERROR, "bad"));
  EXPECT_FALSE(
      table.Get(ids, absl::Now() + absl::Milliseconds(20)).has_value());
  // With it, an error already there ends the wait; the pending one holds
  // the same error.
  auto results = table.Get(ids, absl::InfiniteFuture(), true);
  ASSERT_TRUE(results.has_value());
  EXPECT_EQ(*(*results)[0].value, "0");
  ASSERT_TRUE((*results)[1].error.has_value());
  EXPECT_EQ((*results)[1].error->message(), "bad");
  EXPECT_EQ((*results)[2].error->message(), "bad");
  // An error landing while it waits ends the wait too, past a pending one.
  ObjectId late = ObjectId::ForReturn(TaskId::FromRandom(), 1);
  table.AddPending(late);
  table.AddRef(late);
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(20));
    table.SetError(late, MakeError(rpc::ErrorInfo::TASK_ERROR, "late"));
  });
  results = table.Get({ids[1], late}, absl::InfiniteFuture(), true);
  setter.join();
  ASSERT_TRUE(results.has_value());
  EXPECT_EQ((*results)[0].error->message(), "late");
  EXPECT_EQ((*results)[1].error->message(), "late");
}

// A wait in slices resumes where the last stopped: what it passed is not
// looked at again, and an error it passed (or one that lands later) ends it.
TEST(ObjectTable, WaitReadyResumesWhereTheLastSliceStopped) {
  ObjectTable table;
  std::vector<ObjectId> ids = PendingIds(table, 4);
  auto soon = [] { return absl::Now() + absl::Milliseconds(10); };
  ObjectTable::Progress progress;
  EXPECT_FALSE(table.WaitReady(ids, &progress, soon(), true));
  EXPECT_EQ(progress.cursor, 0u);
  table.SetValue(ids[0], "0");
  table.SetValue(ids[1], "1");
  EXPECT_FALSE(table.WaitReady(ids, &progress, soon(), true));
  EXPECT_EQ(progress.cursor, 2u);
  table.SetError(ids[2], MakeError(rpc::ErrorInfo::TASK_ERROR, "bad"));
  EXPECT_TRUE(table.WaitReady(ids, &progress, soon(), true));
  EXPECT_TRUE(progress.failed);
  // Without stopping at errors, it waits for the last one.
  ObjectTable::Progress all;
  EXPECT_FALSE(table.WaitReady(ids, &all, soon(), false));
  EXPECT_EQ(all.cursor, 3u);
  table.SetValue(ids[3], "3");
  EXPECT_TRUE(table.WaitReady(ids, &all, soon(), false));
  EXPECT_FALSE(all.failed);
  // An error behind a pending one is found when it lands.
  ObjectTable::Progress late;
  std::vector<ObjectId> two = PendingIds(table, 2);
  EXPECT_FALSE(table.WaitReady(two, &late, soon(), true));
  table.SetError(two[1], MakeError(rpc::ErrorInfo::TASK_ERROR, "bad"));
  EXPECT_TRUE(table.WaitReady(two, &late, soon(), true));
  EXPECT_TRUE(late.failed);
  EXPECT_EQ(late.cursor, 0u);
}

TEST(ObjectTable, WaitKeepsInputOrderAndCountsReady) {
  ObjectTable table;
  std::vector<ObjectId> ids = PendingIds(table, 4);
  table.SetValue(ids[3], "3");
  table.SetValue(ids[1], "1");
  auto ready = table.Wait(ids, 1, absl::InfiniteFuture());
  EXPECT_EQ(ready, (std::vector<bool>{false, true, false, false}));
  ready = table.Wait(ids, 3, absl::Now() + absl::Milliseconds(10));
  EXPECT_EQ(ready, (std::vector<bool>{false, true, false, true}));
}

TEST(ObjectTable, DroppingTheLastReferenceFreesTheValue) {
  ObjectTable table;
  ObjectId a = ObjectId::ForReturn(TaskId::FromRandom(), 1);
  table.AddPending(a);
  table.AddRef(a);
  table.SetValue(a, "v");
  EXPECT_EQ(table.size(), 1u);
  table.RemoveRef(a);
  EXPECT_EQ(table.size(), 0u);
  // Released while pending: freed when the value lands.
  ObjectId b = ObjectId::ForReturn(TaskId::FromRandom(), 1);
  table.AddPending(b);
  table.AddRef(b);
  table.RemoveRef(b);
  EXPECT_EQ(table.size(), 1u);
  table.SetValue(b, "late");
  EXPECT_EQ(table.size(), 0u);
}

TEST(ThreadCaps, TheCapIsTheLeasesWholeCpusAtLeastOne) {
  if (UserSetThreadCounts()) {  // this process started with one set
    EXPECT_EQ(ThreadCapFor(4), 0);
    return;
  }
  EXPECT_EQ(ThreadCapFor(0), 1);
  EXPECT_EQ(ThreadCapFor(0.5), 1);
  EXPECT_EQ(ThreadCapFor(1), 1);
  EXPECT_EQ(ThreadCapFor(2.99), 2);
  EXPECT_EQ(ThreadCapFor(3), 3);
  EXPECT_EQ(ThreadCapFor(std::nan("")), 1);
}

// OpenMP loaded privately (RTLD_LOCAL, as a Python extension's copy is):
// found among the loaded objects all the same, and capped per thread.
TEST(ThreadCaps, ApplyCapsAnOpenMpLoadedLocallyOnTheCallingThread) {
  void* gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(gomp, nullptr) << dlerror();
  auto max_threads =
      reinterpret_cast<int (*)()>(dlsym(gomp, "omp_get_max_threads"));
  ASSERT_NE(max_threads, nullptr);
  ApplyThreadCap(7);
  EXPECT_EQ(max_threads(), 7);
  std::thread other([&] {
    ApplyThreadCap(3);
    EXPECT_EQ(max_threads(), 3);
  });
  other.join();
  EXPECT_EQ(max_threads(), 7);  // its own setting
  ApplyThreadCap(3);
  EXPECT_EQ(max_threads(), 3);
  dlclose(gomp);
}

}  // namespace
}  // namespace loom
