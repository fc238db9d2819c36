#include "runtime/serve/serve_metrics.h"

#include <vector>

#include "runtime/metric_recorder.h"

namespace loom::serve {
namespace {

// Milliseconds: 0.1 ms .. 60 s.
const std::vector<double> kLatencyMs = {0.1,  0.25, 0.5,  1,     2.5,  5,
                                        10,   25,   50,   100,   250,  500,
                                        1000, 2500, 5000, 10000, 60000};
const std::vector<double> kBatchSizes = {1, 2, 4, 8, 16, 32, 64, 128, 256};

int Define(const std::string& name, const std::string& help,
           MetricRecorder::Kind kind, std::vector<double> bounds,
           std::vector<std::string> labels) {
  auto id = MetricRecorder::Global().DefineOwn(
      {name, help, kind, std::move(bounds), std::move(labels)});
  return id.ok() ? *id : -1;  // fixed definitions: cannot fail
}

void Record(int id, const std::map<std::string, std::string>& labels,
            double value) {
  if (id >= 0) (void)MetricRecorder::Global().Record(id, labels, value);
}

}  // namespace

ServeMetrics& ServeMetrics::Get() {
  static ServeMetrics* metrics = new ServeMetrics();
  return *metrics;
}

ServeMetrics::ServeMetrics() {
  using K = rpc::MetricPoint;
  http_requests_ = Define("loom_serve_http_requests_total",
                          "HTTP requests answered by loom.serve's ingress",
                          K::COUNTER, {}, {"route", "method", "code"});
  http_latency_ =
      Define("loom_serve_http_request_latency_ms",
             "From request parsed to answer written, at the ingress",
             K::HISTOGRAM, kLatencyMs, {"route"});
  requests_ = Define("loom_serve_deployment_requests_total",
                     "Requests a router answered, by outcome (HTTP code)",
                     K::COUNTER, {}, {"deployment", "code"});
  latency_ = Define("loom_serve_deployment_latency_ms",
                    "From submit to answer, in the router (queue + replica)",
                    K::HISTOGRAM, kLatencyMs, {"deployment"});
  batch_size_ = Define("loom_serve_batch_size", "Requests per batch sent",
                       K::HISTOGRAM, kBatchSizes, {"deployment"});
  queued_ = Define("loom_serve_deployment_queued_requests",
                   "Requests waiting in this process's router", K::GAUGE, {},
                   {"deployment"});
  ongoing_ = Define("loom_serve_deployment_ongoing_requests",
                    "Requests this process's router has at replicas", K::GAUGE,
                    {}, {"deployment"});
}

void ServeMetrics::Http(const std::string& route, const std::string& method,
                        int code, double ms) {
  Record(http_requests_,
         {{"route", route}, {"method", method}, {"code", std::to_string(code)}},
         1);
  Record(http_latency_, {{"route", route}}, ms);
}

void ServeMetrics::Reply(const std::string& deployment, int code, double ms) {
  Record(requests_,
         {{"deployment", deployment}, {"code", std::to_string(code)}}, 1);
  Record(latency_, {{"deployment", deployment}}, ms);
}

void ServeMetrics::Batch(const std::string& deployment, int size) {
  Record(batch_size_, {{"deployment", deployment}}, size);
}

void ServeMetrics::Load(const std::string& deployment, int queued,
                        int ongoing) {
  Record(queued_, {{"deployment", deployment}}, queued);
  Record(ongoing_, {{"deployment", deployment}}, ongoing);
}

}  // namespace loom::serve
