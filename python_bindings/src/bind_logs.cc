// Log files of any node, read through the head (runtime/log_reader.h), for
// loom.util.state.list_logs and get_log.
#include "absl/strings/escaping.h"
#include "bindings.h"
#include "runtime/log_reader.h"

namespace loom::py {
namespace {

std::string Head() { return Core().gcs_address(); }

// {node id hex: [(file name, size)]}, of one node or all.
pyb::dict ListLogFiles(const std::string& node_id) {
  absl::StatusOr<rpc::ListLogsReply> logs;
  {
    pyb::gil_scoped_release release;
    logs = ListLogs(Head(), node_id);
  }
  if (!logs.ok()) ThrowStatus(logs.status());
  pyb::dict out;
  for (const auto& n : logs->nodes()) {
    pyb::list files;
    for (const auto& f : n.files()) {
      files.append(pyb::make_tuple(f.name(), f.size()));
    }
    out[pyb::str(absl::BytesToHexString(n.node_id()))] = files;
  }
  return out;
}

std::unique_ptr<LogStream> OpenLog(const std::string& file,
                                   const std::string& node_id,
                                   const std::string& node_ip,
                                   const std::string& actor_id,
                                   const std::string& task_id,
                                   const std::string& worker_id, int64_t pid,
                                   int64_t tail, bool follow) {
  LogQuery q{file,      node_id, node_ip, actor_id, task_id,
             worker_id, pid,     tail,    follow};
  absl::StatusOr<std::unique_ptr<LogStream>> stream;
  {
    pyb::gil_scoped_release release;
    stream = LogStream::Open(Head(), q);
  }
  if (!stream.ok()) ThrowStatus(stream.status());
  return std::move(*stream);
}

}  // namespace

void BindLogs(pyb::module_& m) {
  pyb::class_<LogStream>(m, "LogStream")
      .def("next",
           [](LogStream& s) {
             absl::StatusOr<std::string> text;
             {
               pyb::gil_scoped_release release;
               text = s.Next();
             }
             if (!text.ok()) ThrowStatus(text.status());
             return pyb::bytes(*text);
           })
      .def("done", &LogStream::done)
      .def("caught_up", &LogStream::caught_up);
  m.def("list_logs", &ListLogFiles, pyb::arg("node_id"));
  m.def("open_log", &OpenLog);
}

}  // namespace loom::py
