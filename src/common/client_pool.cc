#include "src/common/client_pool.h"

#include <grpcpp/channel.h>

#include <vector>

#include "src/common/rpc.h"

namespace loom {

ClientPool::ClientPool() : ClientPool(Options()) {}
ClientPool::ClientPool(Options options) : options_(options) {}

ClientPool::~ClientPool() {
  // Channels and stubs are released outside the lock.
  absl::flat_hash_map<std::string, Peer> peers;
  {
    absl::MutexLock lock(&mu_);
    peers.swap(peers_);
  }
}

ClientPool::Peer& ClientPool::PeerOf(const std::string& address) {
  Peer& peer = peers_[address];
  if (!peer.channel) peer.channel = NewChannel(address);
  peer.last_used = options_.clock->Now();
  return peer;
}

std::shared_ptr<grpc::Channel> ClientPool::NewChannel(
    const std::string& address) {
  return rpc::MakeChannel(address);
}

std::shared_ptr<grpc::Channel> ClientPool::NewBulkChannel(
    const std::string& address) {
  return rpc::MakeBulkChannel(address);
}

std::shared_ptr<grpc::Channel> ClientPool::Channel(const std::string& address) {
  absl::MutexLock lock(&mu_);
  return PeerOf(address).channel;
}

std::vector<std::shared_ptr<grpc::Channel>> ClientPool::BulkChannels(
    const std::string& address, int n) {
  absl::MutexLock lock(&mu_);
  Peer& peer = PeerOf(address);
  while (static_cast<int>(peer.bulk.size()) < n) {
    peer.bulk.push_back(NewBulkChannel(address));
  }
  return {peer.bulk.begin(), peer.bulk.begin() + n};
}

std::shared_ptr<void> ClientPool::StubOf(std::type_index service,
                                         const std::string& address,
                                         const MakeStub& make) {
  absl::MutexLock lock(&mu_);
  Peer& peer = PeerOf(address);
  std::shared_ptr<void>& stub = peer.stubs[service];
  if (!stub) stub = make(peer.channel);
  return stub;
}

void ClientPool::Drop(const std::string& address) {
  Peer gone;  // released outside the lock
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(address);
  if (it == peers_.end()) return;
  gone = std::move(it->second);
  peers_.erase(it);
}

int ClientPool::DropIdle() {
  std::vector<Peer> gone;  // released outside the lock
  absl::MutexLock lock(&mu_);
  absl::Time cutoff = options_.clock->Now() - options_.idle_timeout;
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (it->second.last_used < cutoff) {
      gone.push_back(std::move(it->second));
      peers_.erase(it++);
    } else {
      ++it;
    }
  }
  return static_cast<int>(gone.size());
}

int ClientPool::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(peers_.size());
}

}  // namespace loom
