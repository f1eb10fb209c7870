// Parser for the Jinja2 subset HF chat templates use, following jinja2/parser.py's grammar
// production by production (operator precedence, filters and tests binding at the unary level,
// `is` test arguments without parentheses, tuple-vs-expression rules, assignment targets).
// Unsupported statements ({% include %}, {% extends %}, {% import %}, ...) are rejected with
// Unimplemented "unsupported construct: {% include %}"; syntax errors with InvalidArgument
// "line L, column C: ...". Stateless; thread-safe.
#pragma once

#include <string_view>

#include "engine/chat/ast.h"

namespace nc::chat::detail {

// Throws TemplateError on syntax errors and unsupported constructs.
TemplateAst parse_template(std::string_view source);

// Filter and test names the evaluator implements, and the ones Jinja2 has (an unknown name in a
// template is a Jinja2 error; a Jinja2 builtin we lack is "unsupported").
bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);
bool is_jinja_filter(std::string_view name);
bool is_jinja_test(std::string_view name);

}  // namespace nc::chat::detail
