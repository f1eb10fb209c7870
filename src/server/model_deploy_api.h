// Models loaded and unloaded at run time, without a restart (ModelRegistry::add_model/remove_model):
//   Operator (admin key of the operator organization):
//     GET    /v1/admin/models                 every model: id, path, owner, state
//     POST   /v1/admin/models {id, path, organization_id?}   load a GGUF on this host (public, or one
//                                             organization's); 201 once it serves
//     DELETE /v1/admin/models/{id}            unload (requests in flight finish)
//   Tenants (inference keys):
//     POST   /v1/models {file_id, name}       deploy an uploaded GGUF (purpose "model") as the
//                                             organization's own model "<org>/<name>" (at most
//                                             --tenant-models per organization); another organization
//                                             never sees it (404)
//     DELETE /v1/models/{id}                  delete the organization's own model or fine-tuned model
//                                             (OpenAI's shape: {id, object: "model", deleted: true})
// Deployed models are kept in the DeploymentStore and served again after a restart
// (restore_deployments); a tenant's file is linked into the deploy directory, so deleting the upload
// does not touch the model. Inference on a tenant's model is priced by its own id, else by the item
// "tenant-models".
// Thread-safety: handlers on the I/O thread (loading runs on the worker pool); restore_deployments
// blocks (the loader thread).
#pragma once

#include "server/api_context.h"

namespace nc::server {

awaitable<bool> handle_admin_models(ApiContext& ctx, Call& call);
awaitable<bool> handle_deploy_model(ApiContext& ctx, Call& call);
awaitable<bool> handle_delete_model(ApiContext& ctx, Call& call);

// Loads every stored deployment (a failure is logged, the rest still load).
void restore_deployments(ModelRegistry& models, training::DeploymentStore& store);

}  // namespace nc::server
