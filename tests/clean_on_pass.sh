#!/usr/bin/env bash
# Runs one test command; when it passes, removes the test's temporary directory (synthetic models and
# databases are large; a failing test keeps its files for inspection).
# Usage: clean_on_pass.sh DIR COMMAND [ARGS...]
dir=$1
shift
"$@"
rc=$?
if [ "$rc" -eq 0 ]; then rm -rf -- "$dir"; fi
exit "$rc"
