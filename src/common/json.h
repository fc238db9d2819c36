// src/common/json.h
//
// Writing JSON by hand, for the few places that answer in it (the CLI's
// --format json, the timeline, the head's HTTP API): strings quoted and
// escaped, any bytes accepted.
//
//   std::string out = "{\"name\": " + JsonString(name) + "}";
#ifndef LOOM_COMMON_JSON_H_
#define LOOM_COMMON_JSON_H_

#include <string>
#include <string_view>

namespace loom {

// A string as a JSON string literal: quoted and escaped; bytes that are
// not UTF-8 become U+FFFD, so that any output is valid JSON.
std::string JsonString(std::string_view s);

}  // namespace loom

#endif  // LOOM_COMMON_JSON_H_
