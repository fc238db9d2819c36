// tests/cluster/test_functions.h: remote functions the cluster tests run.
#ifndef LOOM_TESTS_CLUSTER_TEST_FUNCTIONS_H_
#define LOOM_TESTS_CLUSTER_TEST_FUNCTIONS_H_

#include <string>
#include <vector>

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

#endif  // LOOM_TESTS_CLUSTER_TEST_FUNCTIONS_H_
