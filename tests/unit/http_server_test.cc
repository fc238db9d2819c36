// The HTTP server and client behind the head's job API: routes by prefix,
// the cluster token, body limits, and JSON strings for any bytes.
#include "src/common/http_server.h"

#include "gtest/gtest.h"
#include "src/common/http_client.h"
#include "src/common/json.h"

namespace loom {
namespace {

TEST(HttpServer, RoutesChecksTheTokenAndLimitsBodies) {
  std::string token = "s3cret-token";
  HttpServer http({.token = &token});
  http.Route("/api", 100, [](const HttpRequest& r) {
    return HttpResponse{200,
                        r.method + " " + r.path + "?" + r.query + " " + r.body};
  });
  http.Route("/api/special", 100, [](const HttpRequest&) {
    return HttpResponse{201, "longest prefix"};
  });
  auto port = http.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  HttpCallOptions call{
      .host = "127.0.0.1", .port = *port, .path = "/api/x?a=1"};
  auto r = HttpCall(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->body.find("Bearer"), std::string::npos);
  call.token = "wrong-token!";
  EXPECT_EQ(HttpCall(call)->status, 401);
  call.token = token;
  call.method = "POST";
  call.body = "hello";
  r = HttpCall(call);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /api/x?a=1 hello");
  call.path = "/api/special/y";
  EXPECT_EQ(HttpCall(call)->status, 201);
  call.path = "/elsewhere";
  EXPECT_EQ(HttpCall(call)->status, 404);
  call.path = "/api/x";
  call.body = std::string(101, 'x');
  r = HttpCall(call);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("limit of 100 bytes"), std::string::npos);
}

TEST(HttpServer, OpenRoutesServeStrangersAndTheCookieCarriesATokenForReads) {
  std::string token = "s3cret-token";
  HttpServer http({.token = &token});
  RouteAccess open;
  open.open = true;
  http.Route(
      "/", 100,
      [](const HttpRequest& r) {
        return HttpResponse{200, r.anonymous ? "stranger" : r.caller.name};
      },
      open);
  http.Route("/api", 100, [](const HttpRequest& r) {
    return HttpResponse{200, r.method + " by " + r.caller.name};
  });
  auto port = http.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  HttpCallOptions call{.host = "127.0.0.1", .port = *port, .path = "/"};
  EXPECT_EQ(HttpCall(call)->body, "stranger");
  call.method = "POST";  // an open route takes any method from anyone
  EXPECT_EQ(HttpCall(call)->status, 200);
  call.method = "GET";
  call.path = "/api/x";
  EXPECT_EQ(HttpCall(call)->status, 401);
  call.headers = {{"Cookie", "other=1; loom_token=s3cret-token"}};
  auto r = HttpCall(call);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET by cluster");
  // A change on the cookie alone needs the dashboard's header.
  call.method = "POST";
  r = HttpCall(call);
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("X-Loom-Dashboard"), std::string::npos);
  call.headers.emplace_back("X-Loom-Dashboard", "1");
  EXPECT_EQ(HttpCall(call)->status, 200);
  call.headers = {{"Cookie", "loom_token=wrong"}};
  EXPECT_EQ(HttpCall(call)->status, 401);
  EXPECT_EQ(http.IdentifyToken("s3cret-token")->role, Role::kAdmin);
  EXPECT_FALSE(http.IdentifyToken("wrong").has_value());
  EXPECT_EQ(UrlParam("a=1&token=x%20y+z&b=", "token"), "x y z");
  EXPECT_EQ(UrlParam("a=1", "token"), "");
}

TEST(HttpServer, APortInUseIsAnErrorNotACrash) {
  HttpServer first({}), second({});
  auto port = first.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok());
  auto taken = second.Start("127.0.0.1", *port);
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kUnavailable);
}

TEST(HttpClient, ParsesAddressesAndSaysWhenNothingListens) {
  std::string host;
  int port = 0;
  ASSERT_TRUE(ParseHttpAddress("http://10.0.0.1:8265/", &host, &port).ok());
  EXPECT_EQ(host, "10.0.0.1");
  EXPECT_EQ(port, 8265);
  ASSERT_TRUE(ParseHttpAddress("127.0.0.1:80", &host, &port).ok());
  ASSERT_TRUE(ParseHttpAddress("https://x:1", &host, &port).ok());  // TLS
  EXPECT_EQ(host, "x");
  EXPECT_EQ(port, 1);
  EXPECT_FALSE(ParseHttpAddress("nohost", &host, &port).ok());
  int free_port = 0;
  {
    HttpServer http({});
    free_port = *http.Start("127.0.0.1", 0);
  }  // stopped: nothing listens there now
  auto r = HttpCall({.host = "127.0.0.1", .port = free_port});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

TEST(Json, StringsAreEscapedAndAlwaysValidUtf8) {
  EXPECT_EQ(JsonString("a\"b\\c\n\t\x01"), R"("a\"b\\c\n\t\u0001")");
  EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // UTF-8 kept
  EXPECT_EQ(JsonString("bad\xff\xc3"), R"("bad\ufffd\ufffd")");
}

}  // namespace
}  // namespace loom
