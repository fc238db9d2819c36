// tests/cluster/private_cluster.h: a fixture whose tests run against a
// private cluster (head + one raylet) started by loom::Init.
#ifndef LOOM_TESTS_CLUSTER_PRIVATE_CLUSTER_H_
#define LOOM_TESTS_CLUSTER_PRIVATE_CLUSTER_H_

#include <string>

#include "gtest/gtest.h"
#include "loom/loom.h"
#include "src/common/session.h"
#include "tests/cluster/cluster_util.h"

namespace loom::test {

class PrivateClusterTest : public ::testing::Test {
 protected:
  void StartCluster(int num_cpus, int64_t object_store_memory = 0) {
    InitOptions options;
    options.session_root = root_.path();
    options.num_cpus = num_cpus;
    options.object_store_memory = object_store_memory;
    options.code_search_path = {TestLib()};
    loom::Init(options);
  }
  void TearDown() override { loom::Shutdown(); }
  std::string SessionDir() { return LatestSessionDir(root_.path()); }

  TempRoot root_;
};

}  // namespace loom::test

#endif  // LOOM_TESTS_CLUSTER_PRIVATE_CLUSTER_H_
