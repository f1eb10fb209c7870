// A blocking HTTP/1.1 client for the CLI's API commands (`neocloud admin`, `neocloud jobs`): one request
// per connection, JSON bodies, an optional Bearer key. Used from the main thread only.
#pragma once

#include <string>
#include <utility>

#include <boost/beast/http/verb.hpp>

#include "core/status.h"

namespace nc::app {

// Sends method target to base_url (http://host[:port]); returns (HTTP status, body). Unavailable when
// the server cannot be reached; InvalidArgument for a URL that is not http://.
Result<std::pair<int, std::string>> http_call(const std::string& base_url, const std::string& key,
                                              boost::beast::http::verb method, const std::string& target,
                                              const std::string& body);

// $name, or fallback when unset or empty.
std::string env_or(const char* name, const char* fallback);

}  // namespace nc::app
