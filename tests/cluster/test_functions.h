// tests/cluster/test_functions.h: remote functions the cluster tests run.
#ifndef LOOM_TESTS_CLUSTER_TEST_FUNCTIONS_H_
#define LOOM_TESTS_CLUSTER_TEST_FUNCTIONS_H_

#include <string>
#include <utility>
#include <vector>

#include "loom/buffer.h"
#include "loom/object_ref.h"

int Echo(int x);
int Add(int a, int b);
// Nested: each level submits the next and waits for it.
int Nest(int depth);
int SleepMs(int ms);
// The worker's parent: the raylet that started it.
int ParentPid();
int SelfPid();
// Writes this worker's pid to `path` (appending a line), sleeps, returns x.
int RecordPidAndSleep(std::string path, int ms, int x);
int Throw(std::string message);
std::string Repeat(std::string s, int n);
std::vector<int> Range(int n);
// n bytes of a fixed pattern: byte i is (i * 31 + 7) % 251.
std::string Pattern(int64_t n);
// Whether s is Pattern(s.size()).
bool IsPattern(std::string s);

// Borrowing. Puts Pattern(n) in this worker (its owner) and returns a ref
// to it inside a vector, with the worker's pid.
using PatternRefs = std::vector<loom::ObjectRef<std::string>>;
std::pair<int, PatternRefs> PutInside(int64_t n);
// Reads every ref (borrowed) and returns whether each is a pattern.
bool AllPatterns(PatternRefs refs);
// Returns the refs it was given (borrowed) to its caller.
PatternRefs PassThrough(PatternRefs refs);
// The parameter is a ref itself: it arrives unresolved.
int64_t SizeOfRef(loom::ObjectRef<std::string> ref);
// Reads the buffer in place (pinning it), writes this worker's pid to
// `path`, sleeps, returns the buffer's size.
int64_t HoldBuffer(std::string path, loom::ObjectRef<loom::Buffer> ref, int ms);

#endif  // LOOM_TESTS_CLUSTER_TEST_FUNCTIONS_H_
