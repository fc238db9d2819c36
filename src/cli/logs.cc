// `loom logs`: the log files of every node, and one file's or one worker
// process's output (whole, its last lines, and new lines as they come),
// read through the head (runtime/log_reader.h).
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "runtime/log_reader.h"
#include "src/cli/commands.h"
#include "src/common/ids.h"

namespace loom::cli {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "loom: %s\n", message.c_str());
  return 1;
}

int PrintList(const rpc::ListLogsReply& logs) {
  for (const auto& n : logs.nodes()) {
    std::printf("node %s (%s)%s\n", HexEncode(n.node_id()).c_str(),
                n.host().c_str(),
                n.error().empty() ? ":" : (": " + n.error()).c_str());
    for (const auto& f : n.files()) {
      std::printf("  %12lld  %s\n", static_cast<long long>(f.size()),
                  f.name().c_str());
    }
  }
  return 0;
}

}  // namespace

int Logs(const LogsArgs& args) {
  auto head = HeadAddress(args.session_root, args.address);
  if (!head.ok()) return Fail(std::string(head.status().message()));
  const LogQuery& q = args.query;
  if (q.file.empty() && q.pid <= 0 && q.actor_id.empty() && q.task_id.empty() &&
      q.worker_id.empty()) {
    auto logs = ListLogs(*head, "");
    if (!logs.ok()) {
      return Fail(absl::StrCat("cannot list logs through the head at ", *head,
                               ": ", logs.status().message()));
    }
    return PrintList(*logs);
  }
  auto stream = LogStream::Open(*head, q);
  if (!stream.ok()) return Fail(std::string(stream.status().message()));
  while (!(*stream)->done()) {
    auto text = (*stream)->Next();
    if (!text.ok()) return Fail(std::string(text.status().message()));
    std::fwrite(text->data(), 1, text->size(), stdout);
    if ((*stream)->caught_up()) {
      std::fflush(stdout);
      if (!(*stream)->done()) usleep(500 * 1000);
    }
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace loom::cli
