// Unit tests for runtime/lineage.h: what is kept, for how long, within
// which bound, and why an object cannot be rebuilt.
#include "runtime/lineage.h"

#include "gtest/gtest.h"
#include "runtime/object_table.h"
#include "runtime/task_args.h"

namespace loom {
namespace {

TaskId Task(uint32_t i) {
  return TaskId::ForChild(TaskId::ForDriver(JobId::FromInt(1)), i);
}

// A task of `i` that read `args` from a store (one return).
rpc::TaskSpec Spec(uint32_t i, const std::vector<ObjectId>& args = {},
                   int max_retries = 3) {
  rpc::TaskSpec spec;
  spec.set_task_id(Task(i).Binary());
  spec.set_function_name("f");
  spec.set_max_retries(max_retries);
  for (const ObjectId& a : args) {
    auto* ref = spec.add_args()->mutable_ref();
    ref->set_object_id(a.Binary());
    ref->set_store_node_id(NodeId::FromRandom().Binary());
  }
  return spec;
}

// Keeps a table entry alive with `refs` references, in a store.
ObjectId InStore(ObjectTable& table, const ObjectId& id) {
  table.AddPending(id);
  table.AddRef(id);
  table.SetInStore(id, NodeId::FromRandom());
  return id;
}

struct LineageTest : ::testing::Test {
  LineageTest() {
    table.set_on_owned_free([this](const ObjectId& id) {
      freed.push_back(id);
      if (lineage) lineage->OnFreed(id);
    });
  }
  ObjectTable table;
  std::unique_ptr<Lineage> lineage;
  std::vector<ObjectId> freed;
};

TEST_F(LineageTest, KeepsTheSpecWhileAReturnIsReferenced) {
  lineage = std::make_unique<Lineage>(1 << 20, &table);
  ObjectId ret = InStore(table, ObjectId::ForReturn(Task(1), 1));
  ASSERT_TRUE(lineage->Record(Spec(1), "key"));
  EXPECT_FALSE(lineage->Record(Spec(1), "key"));  // a re-run keeps the first
  auto retry = lineage->TakeRetry(Task(1));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->spec.attempt(), 1);
  EXPECT_EQ(retry->key, "key");
  EXPECT_GT(lineage->bytes(), 0);
  table.RemoveRef(ret);
  EXPECT_EQ(lineage->size(), 0u);
  EXPECT_EQ(lineage->bytes(), 0);
  EXPECT_FALSE(lineage->TakeRetry(Task(1)).ok());
}

TEST_F(LineageTest, HoldsInStoreArgumentsUntilReleased) {
  lineage = std::make_unique<Lineage>(1 << 20, &table);
  ObjectId arg = InStore(table, ObjectId::ForReturn(Task(1), 1));
  ObjectId ret = InStore(table, ObjectId::ForReturn(Task(2), 1));
  ASSERT_TRUE(lineage->Record(Spec(1), ""));
  ASSERT_TRUE(lineage->Record(Spec(2, {arg}), ""));
  table.RemoveRef(arg);  // the user drops it: task 2's lineage holds it
  EXPECT_TRUE(table.TryGet(arg).has_value());
  EXPECT_TRUE(lineage->TakeRetry(Task(1)).ok());
  table.RemoveRef(ret);  // then both go, in turn
  EXPECT_FALSE(table.TryGet(arg).has_value());
  EXPECT_EQ(lineage->size(), 0u);
  EXPECT_EQ(freed.size(), 2u);
}

TEST_F(LineageTest, EvictsTheOldestBeyondTheBoundAndSaysSo) {
  size_t one = Spec(1).ByteSizeLong();
  lineage = std::make_unique<Lineage>(static_cast<int64_t>(2 * one), &table);
  ObjectId arg = InStore(table, ObjectId::ForReturn(Task(9), 1));
  for (uint32_t i = 1; i <= 3; ++i) {
    InStore(table, ObjectId::ForReturn(Task(i), 1));
    ASSERT_TRUE(lineage->Record(
        Spec(i, i == 1 ? std::vector<ObjectId>{arg} : std::vector<ObjectId>{}),
        ""));
  }
  EXPECT_LE(lineage->bytes(), static_cast<int64_t>(2 * one));
  auto evicted = lineage->TakeRetry(Task(1));
  ASSERT_FALSE(evicted.ok());
  EXPECT_NE(evicted.status().message().find("evicted"), std::string::npos)
      << evicted.status();
  EXPECT_TRUE(lineage->TakeRetry(Task(3)).ok());
  // The evicted entry no longer holds its argument.
  table.RemoveRef(arg);
  EXPECT_FALSE(table.TryGet(arg).has_value());
}

TEST_F(LineageTest, ZeroBytesKeepsNothing) {
  lineage = std::make_unique<Lineage>(0, &table);
  InStore(table, ObjectId::ForReturn(Task(1), 1));
  ASSERT_TRUE(lineage->Record(Spec(1), ""));
  EXPECT_EQ(lineage->bytes(), 0);
  EXPECT_FALSE(lineage->TakeRetry(Task(1)).ok());
}

TEST_F(LineageTest, RetriesRunOutAndUnrecoverableSaysWhy) {
  lineage = std::make_unique<Lineage>(1 << 20, &table);
  InStore(table, ObjectId::ForReturn(Task(1), 1));
  ASSERT_TRUE(lineage->Record(Spec(1, {}, /*max_retries=*/1), ""));
  EXPECT_TRUE(lineage->TakeRetry(Task(1)).ok());
  auto out = lineage->TakeRetry(Task(1));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("retries"), std::string::npos);

  ObjectId actor_ret = InStore(table, ObjectId::ForReturn(Task(2), 1));
  lineage->Unrecoverable(Task(2), 1, "it is an actor task's result");
  auto actor = lineage->TakeRetry(Task(2));
  ASSERT_FALSE(actor.ok());
  EXPECT_NE(actor.status().message().find("actor"), std::string::npos);
  table.RemoveRef(actor_ret);
  EXPECT_EQ(lineage->size(), 1u);
}

TEST_F(LineageTest, UnreadyMakesAnObjectPendingAgainOnce) {
  NodeId node = NodeId::FromRandom();
  ObjectId id = ObjectId::ForReturn(Task(1), 1);
  table.AddPending(id);
  table.AddRef(id);
  table.SetInStore(id, node);
  EXPECT_FALSE(table.Unready(id, NodeId::FromRandom()));  // another node
  EXPECT_TRUE(table.Unready(id, node));
  EXPECT_FALSE(table.Unready(id, node));  // claimed already
  EXPECT_FALSE(table.AllReady({id}));
  table.SetValue(id, "again");
  EXPECT_EQ(*table.TryGet(id)->value, "again");
}

}  // namespace
}  // namespace loom
