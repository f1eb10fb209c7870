// The fine-tuning API (OpenAI's shape), without HTTP: the server hands it a request to
// /v1/fine_tuning/jobs... from an authenticated caller with the caller's organization, project and key
// (from the API key, never from the request), and sends back what it returns.
//
//   POST /v1/fine_tuning/jobs                  {model, training_file, validation_file, suffix, seed,
//                                               method: {type: "supervised", supervised: {hyperparameters:
//                                               {n_epochs, batch_size, learning_rate_multiplier, lora_rank,
//                                               lora_alpha}}}} (each "auto" or a number; the legacy
//                                               top-level `hyperparameters` too)
//   GET  /v1/fine_tuning/jobs?after=&limit=    newest first
//   GET  /v1/fine_tuning/jobs/{id}
//   POST /v1/fine_tuning/jobs/{id}/cancel
//   GET  /v1/fine_tuning/jobs/{id}/events?after=&limit=        newest first
//   GET  /v1/fine_tuning/jobs/{id}/checkpoints?after=&limit=   newest first: step_number, metrics
// Another organization's job is a 404 like a missing one.
// Thread-safety: any thread; blocks (create tokenizes the files): not for the I/O thread.
#pragma once

#include <string>

#include "core/api_error.h"
#include "training/fine_tune_controller.h"

namespace nc::training {

ApiResponse handle_fine_tuning(FineTuneController& c, const std::string& org, const std::string& project,
                               const std::string& key_id, const std::string& method, const std::string& path,
                               const std::string& query, const std::string& body);

}  // namespace nc::training
