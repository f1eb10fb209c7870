// What the fine-tuning controller (training/fine_tune_controller.h) asks of the serving side, built on
// the ModelRegistry and the Gateway: base models' files, tokenizing datasets with a model's own chat
// template and tokenizer (training_data.h), deploying a trained adapter as an organization's private
// model (adapter_registry.h), and the budget, price and bill of trained tokens (item
// "fine-tune:<base>" — for an organization's own model without its own price, "fine-tune:tenant-models" —
// priced per 1M tokens as input tokens; one ledger event per job).
// Ownership: the hooks borrow the registry and the gateway (both outlive the controller).
// Thread-safety: the hooks may be called from any thread.
#pragma once

#include "gateway/gateway.h"
#include "server/model_registry.h"
#include "training/fine_tune_controller.h"

namespace nc::server {

training::FineTuneHooks make_fine_tune_hooks(ModelRegistry& models, gateway::Gateway* gw);

}  // namespace nc::server
