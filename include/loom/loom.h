// include/loom/loom.h
//
// Loom's C++ API: remote functions, object refs, Init/Get/Put/Wait, GPU
// buffers (loom/gpu.h) and collective groups (loom/collective.h).
//
//   #include <loom/loom.h>
//   int Square(int x) { return x * x; }
//   LOOM_REMOTE(Square);
//
//   int main() {
//     loom::Init({.code_search_path = {"libsquares.so"}});
//     auto ref = loom::Task(Square).Remote(7);
//     std::cout << *loom::Get(ref) << "\n";  // 49
//   }
#ifndef LOOM_LOOM_H_
#define LOOM_LOOM_H_

#include "loom/actor.h"
#include "loom/api.h"
#include "loom/buffer.h"
#include "loom/collective.h"
#include "loom/cross_language.h"
#include "loom/errors.h"
#include "loom/gpu.h"
#include "loom/metrics.h"
#include "loom/object_ref.h"
#include "loom/placement_group.h"
#include "loom/remote.h"
#include "loom/serialization.h"
#include "loom/state.h"
#include "loom/task.h"

#endif  // LOOM_LOOM_H_
