#include "tests/cluster/probe.h"

#include <grpcpp/generic/generic_stub.h>

#include <future>

#include "absl/strings/str_cat.h"
#include "proto/gcs.grpc.pb.h"
#include "proto/raylet.grpc.pb.h"
#include "proto/worker.grpc.pb.h"
#include "src/common/rpc.h"

namespace loom::test {

std::vector<std::string> ServiceMethods(const std::string& service) {
  // Touch one message of each file so that its descriptors are linked in
  // and registered (a static library's unused objects are left out).
  (void)rpc::RegisterNodeRequest::descriptor();
  (void)rpc::LeaseRequest::descriptor();
  (void)rpc::PushTaskRequest::descriptor();
  const auto* desc =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          service);
  std::vector<std::string> methods;
  if (desc == nullptr) return methods;
  for (int i = 0; i < desc->method_count(); ++i) {
    methods.push_back(absl::StrCat("/", service, "/", desc->method(i)->name()));
  }
  return methods;
}

grpc::Status ProbeCall(const std::string& address, const std::string& method,
                       const std::string& token) {
  auto channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  rpc::SetTimeout(&ctx, 5000);
  if (!token.empty()) ctx.AddMetadata(rpc::kTokenMetadata, token);
  grpc::Slice empty("", 0);
  grpc::ByteBuffer request(&empty, 1), reply;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, {}, &request, &reply,
                 [&done](grpc::Status s) { done.set_value(s); });
  return done.get_future().get();
}

}  // namespace loom::test
