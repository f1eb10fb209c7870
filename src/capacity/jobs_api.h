// The jobs API (JSON over HTTP), without HTTP: the server hands it the method, path, query and body of
// a request to /v1/jobs... from an authenticated caller, with the caller's organization and project
// (always from the API key, never from the request), and sends back what it returns.
//
//   POST /v1/jobs                 submit {command, args, env, working_dir, gpus, gpu_fraction, nodes,
//                                  gpu_type ("H100" or ["H100","A100"]), min_gpu_memory_mib, cpu, memory_mib,
//                                  tasks_per_node, priority (on-demand|reserved|spot), max_duration_seconds,
//                                  requeue, name}
//   GET  /v1/jobs?state=S         list (newest first)
//   GET  /v1/jobs/{id}            one job with its events and segments
//   POST /v1/jobs/{id}/cancel     cancel (queued: at once; running: SIGTERM, grace, SIGKILL)
//   POST /v1/jobs/{id}/release    queue again a job held because the server stopped while it ran
//   GET  /v1/jobs/{id}/logs?offset=N   {data, next_offset, done}: poll with next_offset to follow
//   GET  /v1/jobs/quotas          this organization's GPU quotas and what it holds now
//   POST /v1/reservations         {gpu_type, gpus, start_time (unix s; default now), end_time | duration_seconds, name}
//   GET  /v1/reservations         list;  GET /v1/reservations/{id};  POST /v1/reservations/{id}/cancel
//   (a job runs inside a reservation with "reservation": "res_..." in its submit body)
// Operator only (the server checks the caller is the operator organization's admin):
//   GET|PUT /v1/admin/organizations/{org}/gpu_quota   {gpu_type ("" = all types), gpus (null = no limit)}
//   GET     /v1/admin/nodes                            the GPU nodes: type, GPUs, free, down, last heartbeat
//   POST    /v1/admin/nodes/{node}/heartbeat           a node agent says the node is alive
// Errors are OpenAI-style error bodies; another organization's job is 404 like a missing one.
//
// Thread-safety: JobController is thread-safe; call from any thread (it does not block on I/O except
// reading a log file).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "capacity/job_controller.h"
#include "core/api_error.h"

namespace nc::capacity {

// The jobs API answers with the one API response/error type (core/api_error.h).
using JobsResponse = ApiResponse;

bool is_jobs_path(std::string_view path);  // /v1/jobs... and /v1/reservations...
// The operator's capacity routes: /v1/admin/organizations/{org}/gpu_quota and /v1/admin/nodes...
bool is_capacity_admin_path(std::string_view path);
JobsResponse handle_capacity_admin(JobController& jobs, std::string_view method, std::string_view path,
                                   const std::string& body);
// `project`: the caller key's project ("" for an organization-wide key): a project's key sees and acts on
// its own project's jobs only (another's are "not found", like another organization's).
// `api_key_id`: the caller's key, recorded on the jobs it submits (their usage is billed to it).
JobsResponse handle_jobs(JobController& jobs, const std::string& org, const std::string& project,
                         std::string_view method, std::string_view path, std::string_view query,
                         const std::string& body, const std::string& api_key_id = "");

// The JSON of a job (the API's job object).
nlohmann::ordered_json job_json(const Job& j);
nlohmann::ordered_json reservation_json(const ReservationRecord& r);

}  // namespace nc::capacity
