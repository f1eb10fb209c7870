// Sub-command registration for the neocloud CLI. Each cmd_*.cpp adds its sub-commands to the app;
// main() only wires them. Commands run on the main thread.
#pragma once

#include <CLI/CLI.hpp>

#include "core/status.h"

namespace nc::app {

void add_model_commands(CLI::App& app);
void add_logits_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_admin_command(CLI::App& app);
void add_capacity_command(CLI::App& app);
void add_jobs_command(CLI::App& app);
void add_reservations_command(CLI::App& app);
void add_dataset_command(CLI::App& app);

// Exit code to return from main once a command has run (commands set it; 0 = success).
int& exit_code();

// Prints a failed command's Status as "error: ..." on stderr and sets the exit code to 1.
void report(const Status& s);

}  // namespace nc::app
