// The _core extension: Loom's C++ core worker for the pure-Python `loom`
// package. One Bind* per subsystem; every blocking call releases the GIL.
#include "bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "Loom's core worker (internal: use the loom package)";
  loom::py::BindObjects(m);
  loom::py::BindTasks(m);
  loom::py::BindCluster(m);
  loom::py::BindGpu(m);
  loom::py::BindFutures(m);
  loom::py::BindMsgpack(m);
  loom::py::BindLogs(m);
  loom::py::BindState(m);
  loom::py::BindMetrics(m);
  loom::py::BindServe(m);
}
