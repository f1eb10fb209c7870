// neocloud: one binary for the whole cloud. This file only wires sub-commands (see commands.h).
#include <cstdio>

#include "apps/neocloud/commands.h"
#include "core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"neocloud: run an AI cloud on your own GPU fleet"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")->capture_default_str();
  app.parse_complete_callback([&] { nc::log_set_level(log_level); });
  nc::app::add_model_commands(app);
  nc::app::add_logits_command(app);
  nc::app::add_bench_command(app);
  nc::app::add_tokenize_command(app);
  nc::app::add_generate_command(app);
  nc::app::add_serve_command(app);
  nc::app::add_admin_command(app);
  nc::app::add_capacity_command(app);
  nc::app::add_jobs_command(app);
  nc::app::add_reservations_command(app);
  nc::app::add_dataset_command(app);
  CLI11_PARSE(app, argc, argv);
  return nc::app::exit_code();
}
