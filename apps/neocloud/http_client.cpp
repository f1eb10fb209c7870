#include "apps/neocloud/http_client.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <cstdlib>

namespace nc::app {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

Result<std::pair<int, std::string>> http_call(const std::string& base_url, const std::string& key, http::verb method,
                                              const std::string& target, const std::string& body) {
  std::string rest = base_url;
  if (rest.rfind("http://", 0) != 0) return invalid_argument(fmt::format("--url must start with http:// ('{}')", base_url));
  rest = rest.substr(7);
  const std::string hostport = rest.substr(0, rest.find('/'));
  const size_t colon = hostport.rfind(':');
  const std::string host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
  const std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  try {
    boost::asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.connect(resolver.resolve(host, port));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, host);
    if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(stream, buf, parser);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return std::make_pair(static_cast<int>(parser.get().result_int()), parser.get().body());
  } catch (const std::exception& e) {
    return unavailable(fmt::format("cannot reach {}: {}", base_url, e.what()));
  }
}

}  // namespace nc::app
