// tests/common/free_port.h
//
// A free loopback port below the kernel's ephemeral range (32768 up), for a
// server that a test restarts on the same port (a head, Redis): no other
// process's outgoing connection can take it meanwhile, as one can take an
// ephemeral port. 0 when none was found.
#ifndef LOOM_TESTS_COMMON_FREE_PORT_H_
#define LOOM_TESTS_COMMON_FREE_PORT_H_

namespace loom::test {

int FreePortBelowEphemeralRange();

}  // namespace loom::test

#endif  // LOOM_TESTS_COMMON_FREE_PORT_H_
