// The dashboard's pages and login (dashboard.h); its JSON is in
// dashboard_state.cc.
#include "src/gcs/dashboard.h"

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "src/common/tls.h"
#include "src/gcs/gcs_server.h"
#include "src/gcs/http_edge.h"

namespace loom {
// The pages, compiled in by cmake/embed_bytes.cmake (src/gcs/CMakeLists.txt).
extern const unsigned char kDashboardIndex[], kDashboardLogin[],
    kDashboardApp[], kDashboardStyle[];
extern const size_t kDashboardIndexSize, kDashboardLoginSize, kDashboardAppSize,
    kDashboardStyleSize;
}  // namespace loom

namespace loom::gcs {
namespace {

constexpr int64_t kMaxBodyBytes = 64 << 10;

struct Asset {
  const char* path;
  const unsigned char* bytes;
  const size_t* size;
  const char* type;
};

const Asset kAssets[] = {
    {"/dashboard/app.js", kDashboardApp, &kDashboardAppSize,
     "text/javascript; charset=utf-8"},
    {"/dashboard/style.css", kDashboardStyle, &kDashboardStyleSize,
     "text/css; charset=utf-8"},
};

// Names this build's script and style sheet: the pages ask for
// "/dashboard/app.js?v=VERSION", which browsers may keep for good (another
// head build answers to another version).
const std::string& AssetVersion() {
  static const std::string* version = [] {
    size_t h = 0;
    for (const Asset& a : kAssets) {
      h = h * 31 + std::hash<std::string_view>()(std::string_view(
                       reinterpret_cast<const char*>(a.bytes), *a.size));
    }
    return new std::string(absl::StrCat(absl::Hex(h)));
  }();
  return *version;
}

HttpResponse Html(int status, const unsigned char* bytes, size_t size) {
  HttpResponse r{status,
                 std::string(reinterpret_cast<const char*>(bytes), size),
                 "text/html; charset=utf-8"};
  std::string v = absl::StrCat("?v=", AssetVersion(), "\"");
  absl::StrReplaceAll({{"/dashboard/app.js\"", "/dashboard/app.js" + v},
                       {"/dashboard/style.css\"", "/dashboard/style.css" + v}},
                      &r.body);
  // The pages never run in another site's frame, nor are they cached with
  // data in them.
  r.headers = {{"X-Frame-Options", "DENY"},
               {"Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; "
                "frame-ancestors 'none'"},
               {"Cache-Control", "no-store"}};
  return r;
}

HttpResponse LoginForm(int status, const std::string& message) {
  HttpResponse r = Html(status, kDashboardLogin, kDashboardLoginSize);
  // The form's one slot for a message, filled in here.
  absl::StrReplaceAll(
      {{"<!--message-->", message.empty() ? ""
                                          : absl::StrCat("<p class=\"error\" "
                                                         "role=\"alert\">",
                                                         message, "</p>")}},
      &r.body);
  return r;
}

HttpResponse Redirect(const std::string& to, const std::string& cookie) {
  HttpResponse r{303, "", "text/plain"};
  r.headers = {{"Location", to}, {"Cache-Control", "no-store"}};
  if (!cookie.empty()) r.headers.emplace_back("Set-Cookie", cookie);
  return r;
}

// HttpOnly: the page's scripts never see the token; SameSite=Strict: no
// other site's page sends it; Secure over HTTPS.
std::string TokenCookie(const std::string& value, bool clear) {
  const auto& tls = ProcessTls();
  bool https = tls.ok() && tls->has_value();
  return absl::StrCat(HttpServer::kTokenCookie, "=", value,
                      "; Path=/; HttpOnly; SameSite=Strict",
                      https ? "; Secure" : "", clear ? "; Max-Age=0" : "");
}

}  // namespace

Dashboard::Dashboard(GcsServer* server) : Dashboard(server, Options()) {}

std::string Dashboard::CheckLinkUrl(const std::string& url) {
  if (url.empty()) return "";
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
    return absl::StrCat("\"", url, "\" is not an http:// or https:// URL");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '<' ||
        c == '>' || c == 0x7f) {
      return absl::StrCat("\"", url,
                          "\" holds a space, a quote or a control character");
    }
  }
  return "";
}

Dashboard::Dashboard(GcsServer* server, Options options)
    : server_(server), options_(options), history_(options.samples) {}

void Dashboard::AddRoutes(HttpServer* http) {
  http_ = http;
  RouteAccess open;
  open.open = true;
  http->Route(
      "/", kMaxBodyBytes, [this](const HttpRequest& req) { return Page(req); },
      open);
  http->Route(
      "/login", kMaxBodyBytes,
      [this](const HttpRequest& req) { return Login(req); }, open);
  http->Route(
      "/logout", kMaxBodyBytes,
      [](const HttpRequest& req) {
        if (req.method != "POST") return HttpServer::Error(405, "POST");
        return Redirect("/", TokenCookie("", /*clear=*/true));
      },
      open);
  // Reads only: a viewer's token sees every page.
  http->Route("/api/dashboard", kMaxBodyBytes,
              [this](const HttpRequest& req) { return Api(req); });
}

HttpResponse Dashboard::Page(const HttpRequest& req) const {
  if (req.method != "GET" && req.method != "HEAD") {
    return HttpServer::Error(405, "GET");
  }
  for (const Asset& a : kAssets) {
    if (req.path == a.path) {
      HttpResponse r{
          200, std::string(reinterpret_cast<const char*>(a.bytes), *a.size),
          a.type};
      bool versioned = req.query == "v=" + AssetVersion();
      r.headers = {{"Cache-Control", versioned
                                         ? "public, max-age=31536000, immutable"
                                         : "no-cache"}};
      return r;
    }
  }
  if (req.path != "/" && req.path != "/index.html") {
    return HttpServer::Error(404, absl::StrCat("no such page: ", req.path));
  }
  if (req.anonymous) return LoginForm(200, "");
  return Html(200, kDashboardIndex, kDashboardIndexSize);
}

HttpResponse Dashboard::Login(const HttpRequest& req) const {
  if (req.method == "GET") return LoginForm(200, "");
  if (req.method != "POST") return HttpServer::Error(405, "GET or POST");
  std::string token = UrlParam(req.body, "token");
  if (token.empty() || !http_->IdentifyToken(token).has_value()) {
    return LoginForm(401,
                     "That token is not one this cluster knows (the head's "
                     "&lt;session&gt;/auth_token, or one from `loom token "
                     "create`).");
  }
  return Redirect("/", TokenCookie(token, /*clear=*/false));
}

HttpResponse Dashboard::Api(const HttpRequest& req) {
  if (req.method != "GET") return HttpServer::Error(405, "GET");
  last_looked_ms_ = absl::ToUnixMillis(absl::Now());
  // /api/dashboard/{what}[/{id}]
  std::vector<std::string> parts =
      absl::StrSplit(req.path, '/', absl::SkipEmpty());
  std::string what = parts.size() > 2 ? parts[2] : "";
  std::string rest = parts.size() > 3 ? parts[3] : "";
  if (parts.size() <= 4) {
    if (what == "cluster" && rest.empty()) return Cluster(req);
    if (what == "jobs" && rest.empty()) return Jobs(req);
    if (what == "actors" && rest.empty()) return Actors(req);
    if (what == "actors") return Actor(rest);
    if (what == "tasks" && rest.empty()) return Tasks(req);
    if (what == "tasks" && rest == "summary") return TaskSummary(req);
    if (what == "placement_groups" && rest.empty()) return PlacementGroups();
    if (what == "objects" && rest.empty()) return Objects(req);
    if (what == "logs" && rest.empty()) return Logs(req);
    if (what == "log" && rest.empty()) return Log(req);
    if (what == "history" && rest.empty()) return History(req);
    if (what == "serve" && rest.empty()) return Serve();
  }
  return HttpServer::Error(404, absl::StrCat("no such path: ", req.path));
}

}  // namespace loom::gcs
