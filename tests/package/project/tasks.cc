#include "tasks.h"

#include <loom/loom.h>

int Multiply(int a, int b) { return a * b; }
std::string Greet(std::string name) { return "hello, " + name; }
Tally* MakeTally() { return new Tally(); }

LOOM_REMOTE(Multiply, Greet, MakeTally, &Tally::Add);
