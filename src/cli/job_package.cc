#include "src/cli/job_package.h"

#include <openssl/evp.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "src/common/session.h"

namespace loom::cli {
namespace {

namespace fs = std::filesystem;

bool Skipped(const fs::path& p) {
  std::string name = p.filename().string();
  return name == ".git" || name == "__pycache__" || name == ".venv";
}

}  // namespace

absl::StatusOr<Package> PackageDirectory(const std::string& dir,
                                         int64_t max_bytes) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--working-dir ", dir, " is not a directory"));
  }
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (Skipped(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  char tmp[] = "/tmp/loom-package-XXXXXX";
  int fd = mkstemp(tmp);
  if (fd < 0) return absl::InternalError("cannot make a temporary file");
  close(fd);
  int error = 0;
  zip_t* z = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &error);
  if (z == nullptr) {
    unlink(tmp);
    return absl::InternalError("cannot make a zip");
  }
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> sha(EVP_MD_CTX_new(),
                                                         EVP_MD_CTX_free);
  EVP_DigestInit_ex(sha.get(), EVP_sha1(), nullptr);
  int64_t total = 0;
  for (const fs::path& file : files) {
    std::string rel = fs::relative(file, dir, ec).string();
    std::ifstream in(file, std::ios::binary);
    std::stringstream data;
    data << in.rdbuf();
    std::string bytes = data.str();
    total += static_cast<int64_t>(bytes.size());
    if (total > max_bytes * 4) break;  // far over: stop reading
    EVP_DigestUpdate(sha.get(), rel.data(), rel.size() + 1);  // and its NUL
    EVP_DigestUpdate(sha.get(), bytes.data(), bytes.size());
    zip_source_t* src = zip_source_file(z, file.c_str(), 0, -1);
    if (src == nullptr ||
        zip_file_add(z, rel.c_str(), src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) <
            0) {
      if (src) zip_source_free(src);
      zip_discard(z);
      unlink(tmp);
      return absl::InternalError(
          absl::StrCat("cannot add ", rel, " to the zip"));
    }
  }
  if (zip_close(z) != 0) {
    zip_discard(z);
    unlink(tmp);
    return absl::InternalError("cannot write the zip");
  }
  auto zip = ReadFileToString(tmp);
  unlink(tmp);
  if (!zip.ok()) return zip.status();
  if (static_cast<int64_t>(zip->size()) > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--working-dir ", dir, " zips to ", zip->size() >> 20,
        " MiB, over the head's limit of ", max_bytes >> 20,
        " MiB for a package: leave large data out of it and read it from "
        "shared storage"));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(sha.get(), digest, &len);
  std::string hex = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<char*>(digest), len));
  return Package{absl::StrCat("_loom_pkg_", hex.substr(0, 16), ".zip"),
                 *std::move(zip)};
}

}  // namespace loom::cli
