// Fine-tuning hooks (fine_tune_hooks.h).
#include "server/fine_tune_hooks.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "core/timer.h"
#include "gateway/metered_usage.h"
#include "server/training_data.h"

namespace nc::server {

namespace {
// The price item of fine-tuning `base`: "fine-tune:<base>", or for an organization's own model
// without a price of its own, "fine-tune:tenant-models" (the operator's price for all of them).
std::string price_item(ModelRegistry& models, gateway::Gateway& gw, const std::string& base) {
  const std::string own = "fine-tune:" + base;
  if (models.lookup(base).org.empty() || gw.policy().snapshot()->price_at(own, unix_us())) return own;
  return "fine-tune:tenant-models";
}
}  // namespace

training::FineTuneHooks make_fine_tune_hooks(ModelRegistry& models, gateway::Gateway* gw) {
  training::FineTuneHooks h;
  h.base_model = [&models](const std::string& id, const std::string& org) -> Result<std::pair<std::string, int64_t>> {
    for (const auto& e : models.entries()) {
      if (e.spec.id != id || (!e.spec.org.empty() && e.spec.org != org)) continue;
      if (e.state != ModelRegistry::State::kReady || !e.service)
        return unavailable(fmt::format("the model '{}' is not loaded yet", id));
      return std::pair<std::string, int64_t>(e.spec.path, e.service->n_ctx());
    }
    return not_found(fmt::format("The model '{}' does not exist or cannot be fine-tuned", id));
  };
  h.tokenize = [&models](const std::string& id, const std::string& in_path,
                         const std::string& out_path) -> Result<training::TokenizedFile> {
    const auto found = models.lookup(id);
    if (!found.service) return not_found(fmt::format("The model '{}' is not served", id));
    std::ifstream in(in_path, std::ios::binary);
    if (!in) return unavailable("cannot read the file");
    const std::string tmp = out_path + ".part";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return unavailable("cannot write the tokenized file");
    DatasetStats stats;
    Status st = tokenize_dataset(in, out, found.service->chat(), found.service->vocab(), &stats);
    out.close();
    if (st.is_ok() && !out) st = unavailable("writing the tokenized file failed");
    if (st.is_ok() && std::rename(tmp.c_str(), out_path.c_str()) != 0) st = unavailable("storing the tokenized file failed");
    if (!st.is_ok()) {
      std::remove(tmp.c_str());
      return st;
    }
    return training::TokenizedFile{stats.examples, stats.tokens, stats.trained_tokens, stats.longest};
  };
  h.deploy = [&models](const std::string& id, const std::string& base, const std::string& path, const std::string& org) {
    AdapterSpec spec;
    spec.id = id;
    spec.base = base;
    spec.path = path;
    spec.org = org;
    return models.add_adapter(spec);
  };
  h.undeploy = [&models](const std::string& id) { (void)models.adapters().remove(id); };
  if (!gw) return h;
  h.price = [gw, &models](const std::string& base, int64_t tokens) -> int64_t {
    const gateway::Price* p = gw->policy().snapshot()->price_at(price_item(models, *gw, base), unix_us());
    return p ? gateway::token_cost_micros(*p, tokens, 0, 0) : 0;
  };
  h.hold = [gw](const training::FineTuneJob& j, int64_t micros, const std::string& what) {
    return gw->usage_holds().hold_micros(j.org, j.project, j.key_id, micros, what);
  };
  h.release = [gw](int64_t id) { gw->usage_holds().release(id); };
  h.bill = [gw, &models](const training::FineTuneJob& j, int64_t tokens) {
    gateway::UsageEvent e;
    e.source = "neocloud/fine-tuning";
    e.id = j.id;  // once per job: a retry or a restart never bills twice
    e.type = "fine_tuning.trained_tokens";
    e.project_id = j.project;
    e.api_key_id = j.key_id;
    e.time = unix_us();
    e.item = price_item(models, *gw, j.model);
    e.input_tokens = tokens;
    e.data = nlohmann::json({{"fine_tuning_job", j.id}, {"model", j.model}, {"trained_tokens", tokens},
                             {"status", std::string(training::state_name(j.state))}})
                 .dump();
    return gateway::record_metered_usage(*gw, j.org, std::move(e));
  };
  return h;
}

}  // namespace nc::server
