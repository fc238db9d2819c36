// A process's user metrics: kept as changes since the last report, put back
// when a report fails.
#include "runtime/metric_recorder.h"

#include "gtest/gtest.h"

namespace loom {
namespace {

using Points = google::protobuf::RepeatedPtrField<rpc::MetricPoint>;

TEST(MetricRecorder, DrainsChangesOnlyAndRestoresAFailedReport) {
  MetricRecorder r;
  int c = *r.Define({"requests", "", rpc::MetricPoint::COUNTER, {}, {"route"}});
  int g = *r.Define({"depth", "", rpc::MetricPoint::GAUGE, {}, {}});
  int h = *r.Define({"lat", "", rpc::MetricPoint::HISTOGRAM, {0.1, 1}, {}});
  EXPECT_FALSE(r.HasChanges());
  ASSERT_TRUE(r.Record(c, {{"route", "/a"}}, 1).ok());
  ASSERT_TRUE(r.Record(c, {{"route", "/a"}}, 2).ok());
  ASSERT_TRUE(r.Record(g, {}, 5).ok());
  ASSERT_TRUE(r.Record(h, {}, 0.05).ok());
  ASSERT_TRUE(r.Record(h, {}, 0.5).ok());
  ASSERT_TRUE(r.Record(h, {}, 7).ok());
  Points out;
  r.Drain(&out);
  ASSERT_EQ(out.size(), 3);
  EXPECT_EQ(out[0].value(), 3);  // the counter's increase
  EXPECT_EQ(out[0].labels().at("route"), "/a");
  EXPECT_EQ(out[1].value(), 5);
  EXPECT_EQ(out[2].bucket_counts_size(), 3);
  EXPECT_EQ(out[2].bucket_counts(0), 1u);
  EXPECT_EQ(out[2].bucket_counts(2), 1u);
  EXPECT_DOUBLE_EQ(out[2].sum(), 7.55);
  EXPECT_FALSE(r.HasChanges());
  Points none;
  r.Drain(&none);
  EXPECT_TRUE(none.empty());

  // The report failed: the next one carries it again, with what came since.
  ASSERT_TRUE(r.Record(c, {{"route", "/a"}}, 1).ok());
  ASSERT_TRUE(r.Record(g, {}, 9).ok());
  r.Restore(out);
  Points again;
  r.Drain(&again);
  ASSERT_EQ(again.size(), 3);
  EXPECT_EQ(again[0].value(), 4);
  EXPECT_EQ(again[1].value(), 9);  // the newer gauge value stays
  EXPECT_EQ(again[2].bucket_counts(1), 1u);
}

TEST(MetricRecorder, RefusesBadDefinitionsAndValues) {
  MetricRecorder r;
  EXPECT_FALSE(
      r.Define({"bad name", "", rpc::MetricPoint::COUNTER, {}, {}}).ok());
  EXPECT_FALSE(r.Define({"h", "", rpc::MetricPoint::HISTOGRAM, {}, {}}).ok());
  EXPECT_FALSE(r.Define({"g", "", rpc::MetricPoint::GAUGE, {1}, {}}).ok());
  int c = *r.Define({"c", "", rpc::MetricPoint::COUNTER, {}, {"k"}});
  EXPECT_EQ(
      *r.Define({"c", "other help", rpc::MetricPoint::COUNTER, {}, {"k"}}), c);
  EXPECT_FALSE(r.Define({"c", "", rpc::MetricPoint::GAUGE, {}, {"k"}}).ok());
  EXPECT_FALSE(r.Record(c, {}, -1).ok());
  EXPECT_FALSE(r.Record(c, {{"other", "x"}}, 1).ok());
  EXPECT_FALSE(r.Record(c, {}, std::nan("")).ok());
  EXPECT_FALSE(r.Record(99, {}, 1).ok());
}

}  // namespace
}  // namespace loom
