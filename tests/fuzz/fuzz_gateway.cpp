// libFuzzer target: any bytes through the gateway's request parsers against a real SQLite database —
// usage events (POST /v1/usage/events bodies), the usage and costs query strings, and admin API calls
// (method, path and JSON body) from the operator's admin key. Must never crash, throw or hang; every
// answer is a JSON object (an error or a result).
// Input: byte 0 picks the parser; for admin calls byte 1 picks the method and the rest is
// "PATH\nBODY".
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "gateway/admin_api.h"
#include "gateway/gateway.h"
#include "gateway/usage_api.h"
#include "storage/database.h"

namespace {
using namespace nc;

struct State {
  std::unique_ptr<storage::Database> db;
  std::unique_ptr<gateway::Gateway> gw;
  std::shared_ptr<const gateway::Caller> op;
};

State& state() {
  static State s = [] {
    State st;
    char dir[] = "/tmp/nc-fuzz-gateway.XXXXXX";
    if (!mkdtemp(dir)) std::abort();
    st.db = std::move(storage::Database::open(std::string("sqlite:") + dir + "/fuzz.db")).value();
    st.gw = std::make_unique<gateway::Gateway>(*st.db);
    auto key = st.gw->start();
    if (!key.is_ok() || !*key) std::abort();
    if (st.gw->authenticate("Bearer " + **key, &st.op)) std::abort();
    return st;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  State& st = state();
  const std::string in(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[0] % 4) {
    case 0: (void)st.gw->parse_usage_events(*st.op, in); break;
    case 1: (void)gateway::usage_completions(*st.db, st.op->principal.org_id, in, 1795840000); break;
    case 2: (void)gateway::organization_costs(*st.db, st.op->principal.org_id, in, 1795840000); break;
    default: {
      static const char* methods[] = {"GET", "POST", "PUT", "DELETE"};
      const size_t nl = in.find('\n');
      std::string path = "/v1/" + in.substr(0, nl);
      const std::string body = nl == std::string::npos ? "" : in.substr(nl + 1);
      if (!gateway::is_admin_path(path)) path = "/v1/organization/" + in.substr(0, nl);
      const auto r = gateway::handle_admin(*st.gw, *st.op, methods[data[1] % 4], path, "", body);
      if (!r.body.is_object()) std::abort();
    }
  }
  return 0;
}
