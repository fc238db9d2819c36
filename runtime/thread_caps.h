// runtime/thread_caps.h
//
// Thread caps: the math libraries in a worker (OpenMP, OpenBLAS, MKL, BLIS,
// numexpr, Apple Accelerate) run as many threads as the worker's lease has
// CPUs, at least 1, so that the processes sharing a node do not each start
// a thread per core. A user who sets any of the variables below in the
// environment the worker starts with (inherited from the raylet) turns caps
// off: Loom then sets none of them and leaves the libraries alone.
//
//   int cap = ThreadCapFor(lease_cpus);  // 0: the user's choice stands
//   SetThreadCapEnv(cap);                // read by libraries loaded later
//   ApplyThreadCap(cap);                 // on the thread about to run a task
#ifndef LOOM_RUNTIME_THREAD_CAPS_H_
#define LOOM_RUNTIME_THREAD_CAPS_H_

#include <array>

namespace loom {

// The variables Loom sets; a user who sets any of them keeps them all.
inline constexpr std::array<const char*, 6> kThreadCapVariables = {
    "OMP_NUM_THREADS",        "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",  "BLIS_NUM_THREADS"};

// Whether the process started with any of kThreadCapVariables set. Read
// once, at the first call (before Loom sets any). Thread-safe.
bool UserSetThreadCounts();

// The cap for a lease of `cpus` CPUs: whole CPUs, at least 1; 0 when the
// user set the variables.
int ThreadCapFor(double cpus);

// Sets every variable of kThreadCapVariables to `cap` (cap > 0; else does
// nothing). Like any setenv, not safe against a concurrent getenv.
void SetThreadCapEnv(int cap);

// Caps the thread pools of the libraries already loaded into the process
// (found by name among its loaded objects): OpenBLAS, MKL and BLIS for the
// whole process, OpenMP for the calling thread (its setting is per
// thread). Call on the thread that runs tasks, before each one: it does
// nothing when that thread and the process already have `cap`.
void ApplyThreadCap(int cap);

}  // namespace loom

#endif  // LOOM_RUNTIME_THREAD_CAPS_H_
