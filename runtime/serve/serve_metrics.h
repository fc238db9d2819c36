// runtime/serve/serve_metrics.h
//
// loom.serve's Prometheus metrics from this process (a proxy's ingress
// and router, a handle's router), exported by the node's raylet with the
// user metrics (MetricRecorder): per route, HTTP requests by method and
// code and their latency from request to answer at the ingress; per
// deployment, the router's answers by outcome, latency from submit to
// answer, batch sizes, and the requests queued and running now.
//
//   ServeMetrics::Get().Http("/model", "POST", 200, 1.7);
#ifndef LOOM_RUNTIME_SERVE_SERVE_METRICS_H_
#define LOOM_RUNTIME_SERVE_SERVE_METRICS_H_

#include <string>

namespace loom::serve {

// Thread-safe.
class ServeMetrics {
 public:
  static ServeMetrics& Get();
  void Http(const std::string& route, const std::string& method, int code,
            double ms);
  void Reply(const std::string& deployment, int code, double ms);
  void Batch(const std::string& deployment, int size);
  void Load(const std::string& deployment, int queued, int ongoing);

 private:
  ServeMetrics();
  int http_requests_, http_latency_, requests_, latency_, batch_size_, queued_,
      ongoing_;
};

}  // namespace loom::serve

#endif  // LOOM_RUNTIME_SERVE_SERVE_METRICS_H_
