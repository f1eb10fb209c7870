// The Files API (OpenAI's shape) over files::FileStore: POST /v1/files (multipart/form-data, streamed
// to disk as it arrives: `file` and `purpose` = "fine-tune" | "model"), GET /v1/files (purpose, limit,
// order, after), GET /v1/files/{id}, GET /v1/files/{id}/content (sent from disk), DELETE /v1/files/{id}.
// Files belong to the caller's organization; another organization's file is a 404. A fine-tune file is
// checked line by line before it is stored (training_data.h: every error names its line, 400); a model
// file must be a GGUF whose header and tensor table parse. The per-file limit is a 413 request_too_large, the
// organization's storage quota a 429 storage_quota_exceeded (not retried by the SDKs).
// Thread-safety: the I/O thread; disk and database work runs on the worker pool.
#pragma once

#include "server/api_context.h"

namespace nc::server {

// The body limit of the upload route: the file limit plus room for the multipart framing.
uint64_t upload_body_limit(const files::FileStore& store);

awaitable<bool> handle_file_upload(ApiContext& ctx, Call& call);
awaitable<bool> handle_list_files(ApiContext& ctx, Call& call);
awaitable<bool> handle_get_file(ApiContext& ctx, Call& call);
awaitable<bool> handle_file_content(ApiContext& ctx, Call& call);
awaitable<bool> handle_delete_file(ApiContext& ctx, Call& call);

}  // namespace nc::server
