// The remote functions of a program built against an installed Loom.
#ifndef USER_TASKS_H_
#define USER_TASKS_H_

#include <string>

int Multiply(int a, int b);
std::string Greet(std::string name);

class Tally {
 public:
  int Add(int x) { return total_ += x; }

 private:
  int total_ = 0;
};
Tally* MakeTally();

#endif  // USER_TASKS_H_
