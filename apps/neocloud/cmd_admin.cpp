// `neocloud admin ...`: the admin API (src/gateway/admin_api.h) from the command line, over HTTP with an
// admin key — the server stays the one writer of the database, its caches and its audit log.
//   --url (or $NEOCLOUD_URL, default http://127.0.0.1:8080) and --key (or $NEOCLOUD_ADMIN_KEY).
// Prints the server's JSON answer; exits 1 on an HTTP error (the error body is printed on stderr).
// Money on the command line is in USD (decimal), sent as integer micro-units.
#include <fmt/format.h>

#include <utility>

#include <boost/beast/http/verb.hpp>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "apps/neocloud/commands.h"
#include "apps/neocloud/http_client.h"

namespace nc::app {
namespace {

namespace http = boost::beast::http;
using nlohmann::ordered_json;

struct AdminOptions {
  std::string url, key;
};

// One HTTP/1.1 request with the admin key; returns the status and body.
Result<std::pair<int, std::string>> call(const AdminOptions& o, http::verb method, const std::string& target,
                                         const std::string& body) {
  if (o.key.empty()) return invalid_argument("no admin key: pass --key or set NEOCLOUD_ADMIN_KEY");
  return http_call(o.url, o.key, method, target, body);
}

void run(const AdminOptions& o, http::verb method, const std::string& target, const ordered_json& body = nullptr) {
  auto r = call(o, method, target, body.is_null() ? "" : body.dump());
  if (!r.is_ok()) return report(r.status());
  const auto& [status, text] = *r;
  const auto j = ordered_json::parse(text, nullptr, false);
  const std::string pretty = j.is_discarded() ? text : j.dump(2);
  if (status >= 400) {
    fmt::print(stderr, "HTTP {}: {}\n", status, pretty);
    exit_code() = 1;
    return;
  }
  fmt::print("{}\n", pretty);
}

int64_t usd_to_micros(double usd) { return static_cast<int64_t>(std::llround(usd * 1e6)); }

std::vector<std::string> split_csv(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size() && !s.empty()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Limits flags shared by `limits set` and `orgs limits`; -1 = not given (null: no limit).
struct LimitFlags {
  int64_t rpm = -1, tpm = -1, concurrent = -1, max_tokens = -1;
  void add(CLI::App* c) {
    c->add_option("--rpm", rpm, "requests per minute");
    c->add_option("--tpm", tpm, "tokens per minute (prompt + max_tokens reserved at admission)");
    c->add_option("--max-concurrent", concurrent, "requests at once");
    c->add_option("--max-tokens", max_tokens, "max_tokens cap (and default)");
  }
  void put(ordered_json& j) const {
    auto v = [](int64_t x) { return x < 0 ? ordered_json() : ordered_json(x); };
    j["rpm"] = v(rpm);
    j["tpm"] = v(tpm);
    j["max_concurrent"] = v(concurrent);
    j["max_tokens"] = v(max_tokens);
  }
};

}  // namespace

void add_admin_command(CLI::App& app) {
  auto o = std::make_shared<AdminOptions>();
  auto* admin = app.add_subcommand("admin", "Manage organizations, projects, keys, limits, budgets and prices (admin API)");
  admin->require_subcommand(1);
  o->url = env_or("NEOCLOUD_URL", "http://127.0.0.1:8080");
  o->key = env_or("NEOCLOUD_ADMIN_KEY", "");
  admin->add_option("--url", o->url, "server URL ($NEOCLOUD_URL)")->capture_default_str();
  admin->add_option("--key", o->key, "admin key ($NEOCLOUD_ADMIN_KEY)");
  using V = http::verb;

  auto* projects = admin->add_subcommand("projects", "Projects of your organization")->require_subcommand(1);
  projects->add_subcommand("list")->callback([o] { run(*o, V::get, "/v1/organization/projects"); });
  auto name = std::make_shared<std::string>();
  auto* pc = projects->add_subcommand("create");
  pc->add_option("name", *name)->required();
  pc->callback([o, name] { run(*o, V::post, "/v1/organization/projects", ordered_json{{"name", *name}}); });

  auto* keys = admin->add_subcommand("keys", "API keys of your organization")->require_subcommand(1);
  keys->add_subcommand("list")->callback([o] { run(*o, V::get, "/v1/organization/api_keys"); });
  struct KeyArgs {
    std::string project, kind = "inference", name, models, endpoints, id;
    int64_t expires_in = 0, overlap = 3600;
  };
  auto k = std::make_shared<KeyArgs>();
  auto* kc = keys->add_subcommand("create", "Create a key (its value is printed once)");
  kc->add_option("--project", k->project, "project id (inference keys)");
  kc->add_option("--kind", k->kind, "inference or admin")->capture_default_str();
  kc->add_option("--name", k->name);
  kc->add_option("--models", k->models, "comma-separated model ids the key may use (default: all)");
  kc->add_option("--endpoints", k->endpoints, "comma-separated endpoints (completions, chat.completions, embeddings, ...)");
  kc->add_option("--expires-in", k->expires_in, "seconds until the key expires");
  kc->callback([o, k] {
    ordered_json b = {{"kind", k->kind}, {"name", k->name}};
    if (!k->project.empty()) b["project_id"] = k->project;
    ordered_json scopes = ordered_json::object();
    if (!k->models.empty()) scopes["models"] = split_csv(k->models);
    if (!k->endpoints.empty()) scopes["endpoints"] = split_csv(k->endpoints);
    b["scopes"] = scopes;
    if (k->expires_in > 0) b["expires_in_seconds"] = k->expires_in;
    run(*o, V::post, "/v1/organization/api_keys", b);
  });
  auto* kr = keys->add_subcommand("revoke");
  kr->add_option("id", k->id)->required();
  kr->callback([o, k] { run(*o, V::delete_, "/v1/organization/api_keys/" + k->id); });
  auto* kro = keys->add_subcommand("rotate", "A new key; the old one keeps working for --overlap seconds");
  kro->add_option("id", k->id)->required();
  kro->add_option("--overlap", k->overlap)->capture_default_str();
  kro->callback([o, k] {
    run(*o, V::post, "/v1/organization/api_keys/" + k->id + "/rotate", ordered_json{{"overlap_seconds", k->overlap}});
  });

  struct ScopeArgs {
    std::string scope, id;
    double usd = -1;
    LimitFlags limits;
  };
  auto s = std::make_shared<ScopeArgs>();
  auto* limits = admin->add_subcommand("limits", "Rate limits of projects and keys")->require_subcommand(1);
  limits->add_subcommand("list")->callback([o] { run(*o, V::get, "/v1/organization/limits"); });
  auto* ls = limits->add_subcommand("set", "Set (replace) the limits of a project or key; no flags removes them");
  ls->add_option("--scope", s->scope, "project or key")->required();
  ls->add_option("--id", s->id, "the project or key id")->required();
  s->limits.add(ls);
  ls->callback([o, s] {
    ordered_json b = {{"scope", s->scope}, {"scope_id", s->id}};
    s->limits.put(b);
    run(*o, V::put, "/v1/organization/limits", b);
  });

  auto* budgets = admin->add_subcommand("budgets", "Monthly budgets of projects and keys")->require_subcommand(1);
  budgets->add_subcommand("list")->callback([o] { run(*o, V::get, "/v1/organization/budgets"); });
  auto* bs = budgets->add_subcommand("set", "Set a monthly budget in USD (negative or absent: remove it)");
  bs->add_option("--scope", s->scope, "project or key")->required();
  bs->add_option("--id", s->id)->required();
  bs->add_option("--monthly-usd", s->usd);
  bs->callback([o, s] {
    run(*o, V::put, "/v1/organization/budgets",
        ordered_json{{"scope", s->scope}, {"scope_id", s->id},
                     {"monthly_limit_micros", s->usd < 0 ? ordered_json() : ordered_json(usd_to_micros(s->usd))}});
  });

  auto* orgs = admin->add_subcommand("orgs", "Organizations (operator key)")->require_subcommand(1);
  orgs->add_subcommand("list")->callback([o] { run(*o, V::get, "/v1/admin/organizations"); });
  auto* oc = orgs->add_subcommand("create", "Create an organization and its first admin key");
  oc->add_option("name", *name)->required();
  oc->callback([o, name] { run(*o, V::post, "/v1/admin/organizations", ordered_json{{"name", *name}}); });
  auto* ol = orgs->add_subcommand("limits", "Set an organization's limits");
  ol->add_option("id", s->id)->required();
  s->limits.add(ol);
  ol->callback([o, s] {
    ordered_json b = ordered_json::object();
    s->limits.put(b);
    run(*o, V::put, "/v1/admin/organizations/" + s->id + "/limits", b);
  });
  auto* ob = orgs->add_subcommand("budget", "Set an organization's monthly budget in USD");
  ob->add_option("id", s->id)->required();
  ob->add_option("--monthly-usd", s->usd);
  ob->callback([o, s] {
    run(*o, V::put, "/v1/admin/organizations/" + s->id + "/budget",
        ordered_json{{"monthly_limit_micros", s->usd < 0 ? ordered_json() : ordered_json(usd_to_micros(s->usd))}});
  });

  struct LoraArgs {
    std::string id, base, path, org;
  };
  auto la = std::make_shared<LoraArgs>();
  auto* lora = admin->add_subcommand("lora", "LoRA adapters served as models (operator key)")->require_subcommand(1);
  lora->add_subcommand("list")->callback([o] { run(*o, V::get, "/v1/admin/lora_adapters"); });
  auto* lad = lora->add_subcommand("add", "Serve an adapter GGUF (a path on the server) on a base model as model ID");
  lad->add_option("id", la->id)->required();
  lad->add_option("--base", la->base, "the base model's id")->required();
  lad->add_option("--path", la->path, "the adapter file, as the server sees it")->required();
  lad->add_option("--org", la->org, "only this organization sees and uses it (default: every organization)");
  lad->callback([o, la] {
    ordered_json b{{"id", la->id}, {"base", la->base}, {"path", la->path}};
    if (!la->org.empty()) b["organization_id"] = la->org;
    run(*o, V::post, "/v1/admin/lora_adapters", b);
  });
  auto* lrm = lora->add_subcommand("remove", "Stop serving an adapter (requests using it finish with it)");
  lrm->add_option("id", la->id)->required();
  lrm->callback([o, la] { run(*o, V::delete_, "/v1/admin/lora_adapters/" + la->id); });

  struct ModelArgs {
    std::string id, path, org;
  };
  auto ma = std::make_shared<ModelArgs>();
  auto* models = admin->add_subcommand("models", "Load and unload models at run time, without a restart (operator key)")
                     ->require_subcommand(1);
  models->add_subcommand("list", "Every model: id, path, owner, state")->callback([o] { run(*o, V::get, "/v1/admin/models"); });
  auto* mad = models->add_subcommand("add", "Load a GGUF (a path on the server) and serve it as model ID");
  mad->add_option("id", ma->id)->required();
  mad->add_option("--path", ma->path, "the GGUF file, as the server sees it")->required();
  mad->add_option("--org", ma->org, "only this organization sees and uses it (default: every organization)");
  mad->callback([o, ma] {
    ordered_json b{{"id", ma->id}, {"path", ma->path}};
    if (!ma->org.empty()) b["organization_id"] = ma->org;
    run(*o, V::post, "/v1/admin/models", b);
  });
  auto* mrm = models->add_subcommand("remove", "Stop serving a model (requests in flight finish)");
  mrm->add_option("id", ma->id)->required();
  mrm->callback([o, ma] { run(*o, V::delete_, "/v1/admin/models/" + ma->id); });

  struct PriceArgs {
    std::string item;
    double input = 0, output = 0, cached = 0, unit = 0;
    int64_t from = 0;
  };
  auto p = std::make_shared<PriceArgs>();
  auto* prices = admin->add_subcommand("prices", "The price list (adding needs the operator key)")->require_subcommand(1);
  prices->add_subcommand("list")->callback([o] { run(*o, V::get, "/v1/organization/prices"); });
  auto* pa = prices->add_subcommand("add", "A new price, effective from now (or --from); history is kept");
  pa->add_option("item", p->item, "model id or meter name (e.g. gpu_seconds:H100)")->required();
  pa->add_option("--input", p->input, "USD per 1M input tokens");
  pa->add_option("--output", p->output, "USD per 1M output tokens");
  pa->add_option("--cached", p->cached, "USD per 1M cached input tokens");
  pa->add_option("--per-unit", p->unit, "USD per unit of a metered quantity");
  pa->add_option("--from", p->from, "effective from (unix seconds)");
  pa->callback([o, p] {
    ordered_json b = {{"item", p->item}, {"input_per_mtok", usd_to_micros(p->input)}, {"output_per_mtok", usd_to_micros(p->output)},
                      {"cached_per_mtok", usd_to_micros(p->cached)}, {"per_unit", usd_to_micros(p->unit)}};
    if (p->from > 0) b["effective_from"] = p->from;
    run(*o, V::post, "/v1/admin/prices", b);
  });

  admin->add_subcommand("audit", "The audit log of your organization")->callback([o] {
    run(*o, V::get, "/v1/organization/audit_logs");
  });
  auto query = std::make_shared<std::string>();
  auto* usage = admin->add_subcommand("usage", "Usage (OpenAI's /v1/organization/usage/completions)");
  usage->add_option("query", *query, "query string, e.g. 'start_time=1730419200&bucket_width=1d&group_by=model'")->required();
  usage->callback([o, query] { run(*o, V::get, "/v1/organization/usage/completions?" + *query); });
  auto* costs = admin->add_subcommand("costs", "Costs (OpenAI's /v1/organization/costs)");
  costs->add_option("query", *query, "query string, e.g. 'start_time=1730419200'")->required();
  costs->callback([o, query] { run(*o, V::get, "/v1/organization/costs?" + *query); });
}

}  // namespace nc::app
