#include "src/common/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace loom {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no PEM"));
  }
  return text.str();
}

struct Freer {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  void operator()(X509* c) const { X509_free(c); }
  void operator()(BIO* b) const { BIO_free(b); }
};
using Key = std::unique_ptr<EVP_PKEY, Freer>;
using Cert = std::unique_ptr<X509, Freer>;

absl::Status OpenSslError(const std::string& what) {
  return absl::InternalError(absl::StrCat("OpenSSL: ", what));
}

// A certificate of `key` named `cn`, signed by `issuer_key` (itself when
// `issuer` is null), with the extensions given as OpenSSL config values.
absl::StatusOr<Cert> MakeCert(
    EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
    int days, long serial,
    const std::vector<std::pair<int, std::string>>& extensions) {
  Cert cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400L * days);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Loom"), -1,
                             -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, signer, cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (ext == nullptr) return OpenSslError("extension " + value);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
    return OpenSslError("X509_sign");
  }
  return cert;
}

absl::Status WritePem(const std::string& path, bool secret,
                      const std::function<int(BIO*)>& write) {
  std::unique_ptr<BIO, Freer> bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) == 0) return OpenSslError("PEM for " + path);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return absl::PermissionDeniedError("cannot write " + tmp);
    if (secret) chmod(tmp.c_str(), 0600);
    out.write(data, size);
    if (!out) return absl::InternalError("cannot write " + tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError("cannot rename " + tmp);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TlsFiles> ReadTlsDir(const std::string& dir) {
  TlsFiles files;
  files.dir = dir;
  for (auto [name, out] :
       {std::pair{"ca.pem", &files.ca}, std::pair{"node.pem", &files.cert},
        std::pair{"node.key", &files.key}}) {
    auto pem = ReadPem(absl::StrCat(dir, "/", name));
    if (!pem.ok()) {
      return absl::Status(
          pem.status().code(),
          absl::StrCat("TLS directory ", dir, ": ", pem.status().message(),
                       " (make one with `loom tls init DIR`)"));
    }
    *out = *std::move(pem);
  }
  return files;
}

const absl::StatusOr<std::optional<TlsFiles>>& ProcessTls() {
  static const auto* tls = [] {
    const char* dir = std::getenv(kTlsDirEnv);
    if (dir == nullptr || *dir == '\0') {
      return new absl::StatusOr<std::optional<TlsFiles>>(std::nullopt);
    }
    auto files = ReadTlsDir(dir);
    if (!files.ok()) {
      return new absl::StatusOr<std::optional<TlsFiles>>(files.status());
    }
    return new absl::StatusOr<std::optional<TlsFiles>>(*std::move(files));
  }();
  return *tls;
}

namespace {

// A memfd holding `text`, by path; "" when it cannot be made.
std::string MemoryFile(const char* name, const std::string& text) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return "";
  if (write(fd, text.data(), text.size()) !=
      static_cast<ssize_t>(text.size())) {
    close(fd);
    return "";
  }
  return absl::StrCat("/proc/self/fd/", fd);
}

}  // namespace

const TlsPaths& ProcessTlsPaths() {
  static const auto* paths = [] {
    auto* p = new TlsPaths;
    const auto& tls = ProcessTls();
    if (tls.ok() && tls->has_value()) {
      p->cert_and_key =
          MemoryFile("loom-tls-node", (*tls)->cert + "\n" + (*tls)->key);
      p->ca = MemoryFile("loom-tls-ca", (*tls)->ca);
    }
    return p;
  }();
  return *paths;
}

std::string TlsHint(const std::string& message) {
  const auto& tls = ProcessTls();
  bool ours = tls.ok() && tls->has_value();
  if (absl::StrContains(message, "Ssl handshake failed") ||
      absl::StrContains(message, "SSL_ERROR")) {
    return ours ? absl::StrCat(
                      " (TLS: the peer does not trust this process's "
                      "certificate from $",
                      kTlsDirEnv, "=", (*tls)->dir,
                      ", or this process not the peer's: are both "
                      "from the same `loom tls init`?)")
                : absl::StrCat(" (TLS: the peer speaks TLS; set $", kTlsDirEnv,
                               " to the directory of the cluster's "
                               "certificates)");
  }
  if (!ours && absl::StrContains(message, "Socket closed")) {
    return absl::StrCat(" (if the cluster uses TLS, set $", kTlsDirEnv,
                        " to the directory of its certificates)");
  }
  if (ours && absl::StrContains(message, "Socket closed")) {
    return " (TLS: is the peer without TLS, or from another cluster?)";
  }
  return "";
}

absl::Status HeadUnreachableError(const std::string& address,
                                  const std::string& message) {
  return absl::UnavailableError(absl::StrCat(
      "cannot reach the head at ", address, ": ", message, TlsHint(message)));
}

absl::Status CheckCertNamesIp(const TlsFiles& files, const std::string& ip) {
  std::unique_ptr<BIO, Freer> bio(
      BIO_new_mem_buf(files.cert.data(), static_cast<int>(files.cert.size())));
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return absl::InvalidArgumentError(
        absl::StrCat(files.dir, "/node.pem: not a PEM certificate"));
  }
  if (X509_check_ip_asc(cert.get(), ip.c_str(), 0) == 1) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      files.dir, "/node.pem does not name this node's address ", ip,
      ", so other nodes would refuse it: make certificates that do with "
      "`loom tls init DIR --ip ",
      ip, "` (one --ip per node; DIR/nodes/", ip, " is that node's own)"));
}

absl::Status CreateClusterCerts(const std::string& dir,
                                const std::vector<std::string>& ips, int days) {
  mkdir(dir.c_str(), 0700);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(dir + " is not a directory");
  }
  if (stat((dir + "/ca.key").c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(dir, " already holds a CA (ca.key): not overwritten"));
  }
  Key ca_key(EVP_EC_gen("P-256"));
  if (!ca_key) return OpenSslError("EC key generation");
  auto ca =
      MakeCert(ca_key.get(), "Loom cluster CA", nullptr, ca_key.get(), days, 1,
               {{NID_basic_constraints, "critical,CA:TRUE"},
                {NID_key_usage, "critical,keyCertSign,cRLSign"},
                {NID_subject_key_identifier, "hash"}});
  if (!ca.ok()) return ca.status();
  auto key_writer = [](EVP_PKEY* k) {
    return [k](BIO* b) {
      return PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr,
                                      nullptr);
    };
  };
  auto cert_writer = [](X509* c) {
    return [c](BIO* b) { return PEM_write_bio_X509(b, c); };
  };
  // A node certificate and its key in `to`, naming localhost, 127.0.0.1
  // and `node_ips`, with the CA's certificate beside them.
  long serial = 2;
  auto node_files = [&](const std::string& to,
                        const std::vector<std::string>& node_ips) {
    Key node_key(EVP_EC_gen("P-256"));
    if (!node_key) return OpenSslError("EC key generation");
    std::vector<std::string> names = {"DNS:localhost", "IP:127.0.0.1"};
    for (const std::string& ip : node_ips) {
      if (ip != "127.0.0.1") names.push_back("IP:" + ip);
    }
    auto node = MakeCert(
        node_key.get(), "Loom node", ca->get(), ca_key.get(), days, serial++,
        {{NID_basic_constraints, "critical,CA:FALSE"},
         {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
         {NID_ext_key_usage, "serverAuth,clientAuth"},
         {NID_subject_alt_name, absl::StrJoin(names, ",")}});
    if (!node.ok()) return node.status();
    for (auto s :
         {WritePem(to + "/ca.pem", false, cert_writer(ca->get())),
          WritePem(to + "/node.key", true, key_writer(node_key.get())),
          WritePem(to + "/node.pem", false, cert_writer(node->get()))}) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  };
  if (auto s = WritePem(dir + "/ca.key", true, key_writer(ca_key.get()));
      !s.ok()) {
    return s;
  }
  // One certificate every node may use, and each node's own.
  if (auto s = node_files(dir, ips); !s.ok()) return s;
  mkdir((dir + "/nodes").c_str(), 0700);
  for (const std::string& ip : ips) {
    if (absl::StrContains(ip, "/")) {
      return absl::InvalidArgumentError(ip + " is not an IP address");
    }
    std::string to = absl::StrCat(dir, "/nodes/", ip);
    if (mkdir(to.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::InternalError(
          absl::StrCat("cannot make ", to, ": ", strerror(errno)));
    }
    if (auto s = node_files(to, {ip}); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace loom
