// src/common/quota_text.h
//
// A job's quota in words, as `loom job submit` spells its flags: for the
// head's logs and errors and for `loom list jobs`.
//
//   DescribeQuota(q)  // "max-cpus 2, max-actors 4"; "" without limits
#ifndef LOOM_COMMON_QUOTA_TEXT_H_
#define LOOM_COMMON_QUOTA_TEXT_H_

#include <string>

#include "proto/gcs.pb.h"

namespace loom {

std::string DescribeQuota(const rpc::JobQuota& quota);

}  // namespace loom

#endif  // LOOM_COMMON_QUOTA_TEXT_H_
