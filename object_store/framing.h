// object_store/framing.h
//
// Length-prefixed messages on a unix socket, with an optional descriptor
// passed alongside (SCM_RIGHTS). Shared by the store server and client.
//
//   std::string frame = Frame(reply);          // 4-byte length + bytes
//   SendWithFd(sock, frame, arena_fd);
//   int fd = -1; auto n = RecvWithFd(sock, buf, sizeof(buf), &fd);
#ifndef LOOM_OBJECT_STORE_FRAMING_H_
#define LOOM_OBJECT_STORE_FRAMING_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "google/protobuf/message_lite.h"

namespace loom {

inline constexpr uint32_t kMaxFrameBytes = 1 << 20;

std::string Frame(const google::protobuf::MessageLite& message);
// Reads a frame's length from 4 bytes.
uint32_t FrameLength(const char* header);
// sendmsg of all of `data`, attaching `fd` when >= 0. False on error.
bool SendWithFd(int sock, const std::string& data, int fd);
// recvmsg; a descriptor that arrives is stored in *fd. Returns recvmsg's
// result.
ssize_t RecvWithFd(int sock, char* buf, size_t len, int* fd);

}  // namespace loom

#endif  // LOOM_OBJECT_STORE_FRAMING_H_
