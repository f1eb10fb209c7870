#include "engine/chat/parser.h"

#include <algorithm>
#include <set>

#include "engine/chat/error.h"
#include "engine/chat/lexer.h"
#include "engine/chat/utf8.h"

namespace nc::chat::detail {

namespace {

// Deeper nesting than this is refused (Python's recursion limit stops Jinja2 well before it).
constexpr int kMaxNesting = 100;
// Height of an expression tree: `a + b + c + ...` nests one level per operator even though it is
// parsed in a loop, and evaluation recurses on it.
constexpr int kMaxExprDepth = 400;

const std::set<std::string, std::less<>> kJinjaFilters = {
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
    "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join",
    "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr", "replace",
    "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title",
    "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr"};
const std::set<std::string, std::less<>> kUnimplementedFilters = {"filesizeformat", "pprint", "random",
                                                                  "urlize", "wordwrap", "xmlattr"};

const std::set<std::string, std::less<>> kJinjaTests = {
    "!=", "<", "<=", "==", ">", ">=", "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped",
    "even", "false", "filter", "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan",
    "lower", "lt", "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true",
    "undefined", "upper"};

class Parser {
 public:
  explicit Parser(LexResult lexed) : lexed_(std::move(lexed)) {}

  TemplateAst run() {
    TemplateAst ast;
    ast.body = subparse(nullptr);
    if (cur().type != TokenType::kEof) fail_at(cur(), "unexpected " + describe(cur()));
    validate_body(ast.body, false);
    ast.source = std::move(lexed_.source);
    return ast;
  }

 private:
  using EndTags = std::vector<std::string_view>;

  const Token& cur() const { return lexed_.tokens[pos_]; }
  const Token& look() const { return lexed_.tokens[std::min(pos_ + 1, lexed_.tokens.size() - 1)]; }
  const Token& next() {
    const Token& t = lexed_.tokens[pos_];
    if (pos_ + 1 < lexed_.tokens.size()) ++pos_;
    return t;
  }

  [[noreturn]] void fail_at(const Token& t, const std::string& msg) const { fail_at(t.offset, msg); }
  [[noreturn]] void fail_at(size_t offset, const std::string& msg) const {
    fail(StatusCode::kInvalidArgument, describe_position(lexed_.source, offset) + ": " + msg);
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::kEof: return "end of template";
      case TokenType::kVariableEnd: return "end of print statement";
      case TokenType::kBlockEnd: return "end of statement block";
      case TokenType::kVariableBegin: return "begin of print statement";
      case TokenType::kBlockBegin: return "begin of statement block";
      case TokenType::kData: return "template data";
      case TokenType::kString: return "string";
      case TokenType::kInteger: return "integer";
      case TokenType::kFloat: return "float";
      case TokenType::kName:
      case TokenType::kOperator: return "'" + t.value + "'";
    }
    return "token";
  }

  bool is_op(const Token& t, std::string_view op) const { return t.type == TokenType::kOperator && t.value == op; }
  bool is_name(const Token& t, std::string_view name) const { return t.type == TokenType::kName && t.value == name; }
  bool skip_op(std::string_view op) {
    if (!is_op(cur(), op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(cur(), name)) return false;
    next();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!is_op(cur(), op)) fail_at(cur(), "expected token '" + std::string(op) + "', got " + describe(cur()));
    next();
  }
  void expect_type(TokenType type, const char* what) {
    if (cur().type != type) fail_at(cur(), std::string("expected token '") + what + "', got " + describe(cur()));
    next();
  }
  const Token& expect_name() {
    if (cur().type != TokenType::kName) fail_at(cur(), "expected token 'name', got " + describe(cur()));
    return next();
  }
  void expect_name(std::string_view name) {
    if (!is_name(cur(), name)) fail_at(cur(), "expected token '" + std::string(name) + "', got " + describe(cur()));
    next();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > kMaxNesting) {
        fail(StatusCode::kResourceExhausted,
             describe_position(p_->lexed_.source, p_->cur().offset) + ": template nested too deeply");
      }
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };

  // Records the height of a finished node (its children are finished first) and bounds it.
  ExprPtr seal(ExprPtr e) {
    int d = 0;
    auto see = [&](const ExprPtr& c) {
      if (c) d = std::max(d, c->depth);
    };
    for (const auto& c : e->items) see(c);
    for (const auto& c : e->call.args) see(c);
    for (const auto& kv : e->call.kwargs) see(kv.second);
    see(e->call.dyn_args);
    see(e->call.dyn_kwargs);
    e->depth = d + 1;
    if (e->depth > kMaxExprDepth) {
      fail(StatusCode::kResourceExhausted, describe_position(lexed_.source, e->offset) + ": expression nested too deeply");
    }
    return e;
  }

  ExprPtr make(ExprKind kind, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }

  // ---- statements ----

  Body subparse(const EndTags* end_tags) {
    DepthGuard guard(this);
    Body body;
    while (cur().type != TokenType::kEof) {
      const Token& t = cur();
      if (t.type == TokenType::kData) {
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::kText;
        n->offset = t.offset;
        n->text = t.value;
        body.push_back(std::move(n));
        next();
      } else if (t.type == TokenType::kVariableBegin) {
        next();
        auto n = std::make_unique<Node>();
        n->kind = NodeKind::kPrint;
        n->offset = cur().offset;
        n->expr = parse_tuple(false, true, nullptr, false);
        expect_type(TokenType::kVariableEnd, "end of print statement");
        body.push_back(std::move(n));
      } else if (t.type == TokenType::kBlockBegin) {
        next();
        if (end_tags && cur().type == TokenType::kName &&
            std::find(end_tags->begin(), end_tags->end(), cur().value) != end_tags->end()) {
          return body;
        }
        body.push_back(parse_statement());
        expect_type(TokenType::kBlockEnd, "end of statement block");
      } else {
        fail_at(t, "unexpected " + describe(t));
      }
    }
    return body;
  }

  Body parse_statements(const EndTags& end_tags, bool drop_needle) {
    skip_op(":");
    expect_type(TokenType::kBlockEnd, "end of statement block");
    Body body = subparse(&end_tags);
    if (cur().type == TokenType::kEof) {
      std::string expected;
      for (auto t : end_tags) expected += (expected.empty() ? "'" : " or '") + std::string(t) + "'";
      fail_at(cur(), "unexpected end of template, expected " + expected + ".");
    }
    if (drop_needle) next();
    return body;
  }

  NodePtr parse_statement() {
    const Token& t = cur();
    if (t.type != TokenType::kName) fail_at(t, "tag name expected");
    const std::string tag = t.value;
    if (tag == "for") return parse_for();
    if (tag == "if") return parse_if();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "call") return parse_call_block();
    if (tag == "filter") return parse_filter_block();
    if (tag == "with") return parse_with();
    if (tag == "print") {
      auto n = std::make_unique<Node>();
      n->kind = NodeKind::kPrint;
      n->offset = next().offset;
      n->expr = parse_tuple(false, true, nullptr, false);
      return n;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail_at(t, "'" + tag + "' outside loop");
      auto n = std::make_unique<Node>();
      n->kind = tag == "break" ? NodeKind::kBreak : NodeKind::kContinue;
      n->offset = next().offset;
      return n;
    }
    if (tag == "generation") {
      // transformers' AssistantTracker: a call block that renders its body.
      auto n = std::make_unique<Node>();
      n->kind = NodeKind::kScopedBody;
      n->offset = next().offset;
      const int saved = loop_depth_;
      loop_depth_ = 0;
      n->body = parse_statements({"endgeneration"}, true);
      loop_depth_ = saved;
      return n;
    }
    if (tag == "include" || tag == "extends" || tag == "import" || tag == "from" || tag == "block" ||
        tag == "autoescape") {
      unsupported("{% " + tag + " %}");
    }
    fail_at(t, "Encountered unknown tag '" + tag + "'.");
  }

  NodePtr parse_for() {
    auto n = std::make_unique<Node>();
    n->kind = NodeKind::kFor;
    n->offset = next().offset;
    n->target = parse_assign_target(true, false, "in", false);
    expect_name("in");
    n->expr = parse_tuple(false, false, "recursive", false);
    if (skip_name("if")) n->filter = parse_expression(true);
    if (is_name(cur(), "recursive")) unsupported("recursive for loop");
    ++loop_depth_;
    n->body = parse_statements({"endfor", "else"}, false);
    --loop_depth_;
    if (next().value == "endfor") return n;
    n->else_body = parse_statements({"endfor"}, true);
    return n;
  }

  NodePtr parse_if() {
    auto n = std::make_unique<Node>();
    n->kind = NodeKind::kIf;
    n->offset = next().offset;
    while (true) {
      ExprPtr test = parse_tuple(false, false, nullptr, false);
      Body body = parse_statements({"elif", "else", "endif"}, false);
      n->branches.emplace_back(std::move(test), std::move(body));
      const Token& t = next();
      if (t.value == "elif") continue;
      if (t.value == "else") n->else_body = parse_statements({"endif"}, true);
      break;
    }
    return n;
  }

  NodePtr parse_set() {
    auto n = std::make_unique<Node>();
    n->offset = next().offset;
    n->target = parse_assign_target(true, false, nullptr, true);
    if (skip_op("=")) {
      n->kind = NodeKind::kSet;
      n->expr = parse_tuple(false, true, nullptr, false);
      return n;
    }
    n->kind = NodeKind::kSetBlock;
    if (is_op(cur(), "|")) n->filter = parse_filter(nullptr, false);
    const int saved = loop_depth_;
    loop_depth_ = 0;
    n->body = parse_statements({"endset"}, true);
    loop_depth_ = saved;
    return n;
  }

  void parse_signature(MacroSpec& m) {
    expect_op("(");
    while (!is_op(cur(), ")")) {
      if (!m.params.empty()) expect_op(",");
      const Token& name = expect_name();
      check_assignable(name);
      m.params.push_back(name.value);
      if (skip_op("=")) {
        m.defaults.push_back(parse_expression(true));
      } else if (!m.defaults.empty()) {
        fail_at(name, "non-default argument follows default argument");
      }
    }
    expect_op(")");
  }

  static void collect_names(const Expr* e, std::set<std::string, std::less<>>& names) {
    if (!e) return;
    if (e->kind == ExprKind::kName) names.insert(e->name);
    for (const auto& c : e->items) collect_names(c.get(), names);
    for (const auto& c : e->call.args) collect_names(c.get(), names);
    for (const auto& kv : e->call.kwargs) collect_names(kv.second.get(), names);
    collect_names(e->call.dyn_args.get(), names);
    collect_names(e->call.dyn_kwargs.get(), names);
  }

  static void collect_names(const Body& body, std::set<std::string, std::less<>>& names) {
    for (const auto& n : body) {
      collect_names(n->expr.get(), names);
      collect_names(n->filter.get(), names);
      for (const auto& [test, b] : n->branches) {
        collect_names(test.get(), names);
        collect_names(b, names);
      }
      collect_names(n->body, names);
      collect_names(n->else_body, names);
      for (const auto& v : n->with_values) collect_names(v.get(), names);
      if (n->macro) {
        for (const auto& d : n->macro->defaults) collect_names(d.get(), names);
        collect_names(n->macro->body, names);
      }
    }
  }

  void set_macro_flags(MacroSpec& m) {
    std::set<std::string, std::less<>> names;
    collect_names(m.body, names);
    for (const auto& d : m.defaults) collect_names(d.get(), names);
    m.catch_varargs = names.count("varargs") > 0;
    m.catch_kwargs = names.count("kwargs") > 0;
    m.uses_caller = names.count("caller") > 0;
  }

  NodePtr parse_macro() {
    auto n = std::make_unique<Node>();
    n->kind = NodeKind::kMacro;
    n->offset = next().offset;
    auto m = std::make_shared<MacroSpec>();
    const Token& name = expect_name();
    check_assignable(name);
    m->name = name.value;
    parse_signature(*m);
    const int saved = loop_depth_;
    loop_depth_ = 0;
    m->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved;
    set_macro_flags(*m);
    n->macro = std::move(m);
    return n;
  }

  NodePtr parse_call_block() {
    auto n = std::make_unique<Node>();
    n->kind = NodeKind::kCallBlock;
    n->offset = next().offset;
    auto m = std::make_shared<MacroSpec>();
    m->name = "caller";
    if (is_op(cur(), "(")) parse_signature(*m);
    const size_t at = cur().offset;
    n->expr = parse_expression(true);
    if (n->expr->kind != ExprKind::kCall) fail_at(at, "expected call");
    const int saved = loop_depth_;
    loop_depth_ = 0;
    m->body = parse_statements({"endcall"}, true);
    loop_depth_ = saved;
    set_macro_flags(*m);
    n->macro = std::move(m);
    return n;
  }

  NodePtr parse_filter_block() {
    auto n = std::make_unique<Node>();
    n->kind = NodeKind::kFilterBlock;
    n->offset = next().offset;
    n->filter = parse_filter(nullptr, true);
    n->body = parse_statements({"endfilter"}, true);
    return n;
  }

  NodePtr parse_with() {
    auto n = std::make_unique<Node>();
    n->kind = NodeKind::kWith;
    n->offset = next().offset;
    while (cur().type != TokenType::kBlockEnd) {
      if (!n->with_targets.empty()) expect_op(",");
      n->with_targets.push_back(parse_assign_target(true, false, nullptr, false));
      expect_op("=");
      n->with_values.push_back(parse_expression(true));
    }
    n->body = parse_statements({"endwith"}, true);
    return n;
  }

  void check_assignable(const Token& t) {
    if (t.value == "true" || t.value == "false" || t.value == "none" || t.value == "True" || t.value == "False" ||
        t.value == "None") {
      fail_at(t, "can't assign to 'const'");
    }
  }

  Target target_from_expr(const Expr& e) {
    Target t;
    if (e.kind == ExprKind::kName) {
      t.kind = Target::Kind::kName;
      t.name = e.name;
      return t;
    }
    if (e.kind == ExprKind::kTuple) {
      t.kind = Target::Kind::kTuple;
      for (const auto& item : e.items) t.items.push_back(target_from_expr(*item));
      return t;
    }
    std::string what = e.kind == ExprKind::kConst ? "const" : e.kind == ExprKind::kList ? "list" : "expression";
    fail_at(e.offset, "can't assign to '" + what + "'");
  }

  Target parse_assign_target(bool with_tuple, bool name_only, const char* extra_end, bool with_namespace) {
    if (with_namespace && cur().type == TokenType::kName && is_op(look(), ".")) {
      Target t;
      t.kind = Target::Kind::kNamespaceAttr;
      t.name = next().value;
      next();
      t.attr = expect_name().value;
      return t;
    }
    if (name_only) {
      const Token& name = expect_name();
      check_assignable(name);
      Target t;
      t.name = name.value;
      return t;
    }
    ExprPtr e = with_tuple ? parse_tuple(true, true, extra_end, false) : parse_primary();
    return target_from_expr(*e);
  }

  // ---- expressions ----

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    DepthGuard guard(this);
    const size_t at = cur().offset;
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      ExprPtr expr2 = parse_or();
      ExprPtr expr3;
      if (skip_name("else")) expr3 = parse_condexpr();
      auto c = make(ExprKind::kCondExpr, at);
      c->items.push_back(std::move(expr2));
      c->items.push_back(std::move(expr1));
      c->items.push_back(std::move(expr3));
      expr1 = seal(std::move(c));
    }
    return expr1;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name(cur(), "or")) {
      const size_t at = next().offset;
      auto n = make(ExprKind::kOr, at);
      n->items.push_back(std::move(left));
      n->items.push_back(parse_and());
      left = seal(std::move(n));
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name(cur(), "and")) {
      const size_t at = next().offset;
      auto n = make(ExprKind::kAnd, at);
      n->items.push_back(std::move(left));
      n->items.push_back(parse_not());
      left = seal(std::move(n));
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name(cur(), "not")) {
      DepthGuard guard(this);
      const size_t at = next().offset;
      auto n = make(ExprKind::kNot, at);
      n->items.push_back(parse_not());
      return seal(std::move(n));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const size_t at = cur().offset;
    ExprPtr expr = parse_math1();
    ExprPtr cmp;
    while (true) {
      CompareOp op;
      const Token& t = cur();
      if (t.type == TokenType::kOperator && t.value == "==") op = CompareOp::kEq;
      else if (t.type == TokenType::kOperator && t.value == "!=") op = CompareOp::kNe;
      else if (t.type == TokenType::kOperator && t.value == "<") op = CompareOp::kLt;
      else if (t.type == TokenType::kOperator && t.value == "<=") op = CompareOp::kLe;
      else if (t.type == TokenType::kOperator && t.value == ">") op = CompareOp::kGt;
      else if (t.type == TokenType::kOperator && t.value == ">=") op = CompareOp::kGe;
      else if (is_name(t, "in")) op = CompareOp::kIn;
      else if (is_name(t, "not") && is_name(look(), "in")) op = CompareOp::kNotIn;
      else break;
      next();
      if (op == CompareOp::kNotIn) next();
      if (!cmp) {
        cmp = make(ExprKind::kCompare, at);
        cmp->items.push_back(std::move(expr));
      }
      cmp->compare_ops.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    return cmp ? seal(std::move(cmp)) : std::move(expr);
  }

  ExprPtr binary(ExprPtr left, BinaryOp op, ExprPtr right, size_t at) {
    auto n = make(ExprKind::kBinary, at);
    n->op = op;
    n->items.push_back(std::move(left));
    n->items.push_back(std::move(right));
    return seal(std::move(n));
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op(cur(), "+") || is_op(cur(), "-")) {
      const Token& t = next();
      const BinaryOp op = t.value == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
      left = binary(std::move(left), op, parse_concat(), t.offset);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const size_t at = cur().offset;
    ExprPtr first = parse_math2();
    if (!is_op(cur(), "~")) return first;
    auto n = make(ExprKind::kConcat, at);
    n->items.push_back(std::move(first));
    while (skip_op("~")) n->items.push_back(parse_math2());
    return seal(std::move(n));
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op(cur(), "*") || is_op(cur(), "/") || is_op(cur(), "//") || is_op(cur(), "%")) {
      const Token& t = next();
      const BinaryOp op = t.value == "*"   ? BinaryOp::kMul
                          : t.value == "/" ? BinaryOp::kDiv
                          : t.value == "//" ? BinaryOp::kFloorDiv
                                            : BinaryOp::kMod;
      left = binary(std::move(left), op, parse_pow(), t.offset);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op(cur(), "**")) {
      const size_t at = next().offset;
      left = binary(std::move(left), BinaryOp::kPow, parse_unary(true), at);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(this);
    ExprPtr node;
    if (is_op(cur(), "-") || is_op(cur(), "+")) {
      const Token& t = next();
      node = make(t.value == "-" ? ExprKind::kNeg : ExprKind::kPos, t.offset);
      node->items.push_back(parse_unary(false));
      node = seal(std::move(node));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    DepthGuard guard(this);
    const Token& t = cur();
    if (t.type == TokenType::kName) {
      auto n = make(ExprKind::kConst, t.offset);
      if (t.value == "true" || t.value == "True") {
        n->value = Value::boolean(true);
      } else if (t.value == "false" || t.value == "False") {
        n->value = Value::boolean(false);
      } else if (t.value == "none" || t.value == "None") {
        n->value = Value::none();
      } else {
        n->kind = ExprKind::kName;
        n->name = t.value;
      }
      next();
      return n;
    }
    if (t.type == TokenType::kString) {
      auto n = make(ExprKind::kConst, t.offset);
      std::string s;
      while (cur().type == TokenType::kString) s += next().value;
      n->value = Value::string(std::move(s));
      return n;
    }
    if (t.type == TokenType::kInteger || t.type == TokenType::kFloat) {
      auto n = make(ExprKind::kConst, t.offset);
      n->value = t.type == TokenType::kInteger ? Value::integer(t.int_value) : Value::number(t.float_value);
      next();
      return n;
    }
    if (is_op(t, "(")) {
      next();
      ExprPtr n = parse_tuple(false, true, nullptr, true);
      expect_op(")");
      return n;
    }
    if (is_op(t, "[")) return parse_list();
    if (is_op(t, "{")) return parse_dict();
    fail_at(t, "unexpected " + describe(t));
  }

  bool is_tuple_end(const char* extra_end) const {
    const Token& t = cur();
    if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd || is_op(t, ")")) return true;
    return extra_end && is_name(t, extra_end);
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const char* extra_end, bool explicit_parens) {
    const size_t at = cur().offset;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      if (simplified) {
        args.push_back(parse_primary());
      } else {
        args.push_back(parse_expression(with_condexpr));
      }
      if (is_op(cur(), ",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) fail_at(cur(), "Expected an expression, got " + describe(cur()));
    }
    auto n = make(ExprKind::kTuple, at);
    n->items = std::move(args);
    return seal(std::move(n));
  }

  ExprPtr parse_list() {
    auto n = make(ExprKind::kList, next().offset);
    while (!is_op(cur(), "]")) {
      if (!n->items.empty()) expect_op(",");
      if (is_op(cur(), "]")) break;
      n->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return seal(std::move(n));
  }

  ExprPtr parse_dict() {
    auto n = make(ExprKind::kDict, next().offset);
    while (!is_op(cur(), "}")) {
      if (!n->items.empty()) expect_op(",");
      if (is_op(cur(), "}")) break;
      n->items.push_back(parse_expression(true));
      expect_op(":");
      n->items.push_back(parse_expression(true));
    }
    expect_op("}");
    return seal(std::move(n));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(cur(), ".") || is_op(cur(), "[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op(cur(), "(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op(cur(), "|")) {
        node = parse_filter(std::move(node), false);
      } else if (is_name(cur(), "is")) {
        node = parse_test(std::move(node));
      } else if (is_op(cur(), "(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    DepthGuard guard(this);
    const Token& t = next();
    if (t.value == ".") {
      const Token& attr = next();
      if (attr.type == TokenType::kName) {
        auto n = make(ExprKind::kGetattr, t.offset);
        n->name = attr.value;
        n->items.push_back(std::move(node));
        return seal(std::move(n));
      }
      if (attr.type != TokenType::kInteger) fail_at(attr, "expected name or number");
      auto key = make(ExprKind::kConst, attr.offset);
      key->value = Value::integer(attr.int_value);
      auto n = make(ExprKind::kGetitem, t.offset);
      n->items.push_back(std::move(node));
      n->items.push_back(std::move(key));
      return seal(std::move(n));
    }
    // '['
    std::vector<ExprPtr> args;
    while (!is_op(cur(), "]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    ExprPtr arg;
    if (args.size() == 1) {
      arg = std::move(args[0]);
    } else {
      // Jinja2 compiles x[a:b, c] to Python's (a:b, c): invalid syntax when the template is loaded.
      for (const ExprPtr& a : args) {
        if (a->kind == ExprKind::kSlice) fail_at(a->offset, "SyntaxError: invalid syntax (a slice inside a subscript tuple)");
      }
      arg = make(ExprKind::kTuple, t.offset);
      arg->items = std::move(args);
      arg = seal(std::move(arg));
    }
    if (arg->kind == ExprKind::kSlice) {
      // Rewrite slice(start, stop, step) into the subscript node itself.
      auto n = make(ExprKind::kSlice, t.offset);
      n->items.push_back(std::move(node));
      for (auto& b : arg->items) n->items.push_back(std::move(b));
      return seal(std::move(n));
    }
    auto n = make(ExprKind::kGetitem, t.offset);
    n->items.push_back(std::move(node));
    n->items.push_back(std::move(arg));
    return seal(std::move(n));
  }

  ExprPtr parse_subscribed() {
    const size_t at = cur().offset;
    std::vector<ExprPtr> args;
    if (is_op(cur(), ":")) {
      next();
      args.push_back(nullptr);
    } else {
      ExprPtr node = parse_expression(true);
      if (!is_op(cur(), ":")) return node;
      next();
      args.push_back(std::move(node));
    }
    if (is_op(cur(), ":")) {
      args.push_back(nullptr);
    } else if (!is_op(cur(), "]") && !is_op(cur(), ",")) {
      args.push_back(parse_expression(true));
    } else {
      args.push_back(nullptr);
    }
    if (is_op(cur(), ":")) {
      next();
      if (!is_op(cur(), "]") && !is_op(cur(), ",")) {
        args.push_back(parse_expression(true));
      } else {
        args.push_back(nullptr);
      }
    } else {
      args.push_back(nullptr);
    }
    auto n = make(ExprKind::kSlice, at);
    n->items = std::move(args);
    return seal(std::move(n));
  }

  void parse_call_args(CallSpec& spec) {
    const Token& open = cur();
    expect_op("(");
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail_at(open, "invalid syntax for function call expression");
    };
    while (!is_op(cur(), ")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(cur(), ")")) break;
      }
      if (is_op(cur(), "*")) {
        ensure(!spec.dyn_args && !spec.dyn_kwargs);
        next();
        spec.dyn_args = parse_expression(true);
      } else if (is_op(cur(), "**")) {
        ensure(!spec.dyn_kwargs);
        next();
        spec.dyn_kwargs = parse_expression(true);
      } else if (cur().type == TokenType::kName && is_op(look(), "=")) {
        ensure(!spec.dyn_kwargs);
        std::string key = next().value;
        next();
        spec.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!spec.dyn_args && !spec.dyn_kwargs && spec.kwargs.empty());
        spec.args.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    DepthGuard guard(this);
    auto n = make(ExprKind::kCall, cur().offset);
    n->items.push_back(std::move(node));
    parse_call_args(n->call);
    return seal(std::move(n));
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op(cur(), "|") || start_inline) {
      DepthGuard guard(this);
      if (!start_inline) next();
      const Token& name = expect_name();
      auto n = make(ExprKind::kFilter, name.offset);
      n->name = name.value;
      while (is_op(cur(), ".")) {
        next();
        n->name += "." + expect_name().value;
      }
      if (is_op(cur(), "(")) parse_call_args(n->call);
      n->items.push_back(std::move(node));
      node = seal(std::move(n));
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    DepthGuard guard(this);
    const size_t at = next().offset;  // 'is'
    const bool negated = skip_name("not");
    const Token& name = expect_name();
    auto n = make(ExprKind::kTest, name.offset);
    n->name = name.value;
    while (is_op(cur(), ".")) {
      next();
      n->name += "." + expect_name().value;
    }
    const Token& t = cur();
    if (is_op(t, "(")) {
      parse_call_args(n->call);
    } else if ((t.type == TokenType::kName || t.type == TokenType::kString || t.type == TokenType::kInteger ||
                t.type == TokenType::kFloat || is_op(t, "(") || is_op(t, "[") || is_op(t, "{")) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
      if (is_name(t, "is")) fail_at(t, "You cannot chain multiple tests with is");
      n->call.args.push_back(parse_postfix(parse_primary()));
    }
    n->items.push_back(std::move(node));
    n = seal(std::move(n));
    if (!negated) return n;
    auto neg = make(ExprKind::kNot, at);
    neg->items.push_back(std::move(n));
    return seal(std::move(neg));
  }

  // ---- unknown filter/test names (jinja2 compiler: compile-time error outside "soft" frames) ----

  void validate_expr(Expr* e, bool soft) {
    if (!e) return;
    if (e->kind == ExprKind::kCondExpr) soft = true;
    if (e->kind == ExprKind::kFilter && !is_known_filter(e->name) && !is_jinja_filter(e->name)) {
      if (!soft) fail_at(e->offset, "No filter named '" + e->name + "'.");
      e->soft = true;
    }
    if (e->kind == ExprKind::kTest && !is_known_test(e->name) && !is_jinja_test(e->name)) {
      if (!soft) fail_at(e->offset, "No test named '" + e->name + "'.");
      e->soft = true;
    }
    for (auto& c : e->items) validate_expr(c.get(), soft);
    for (auto& c : e->call.args) validate_expr(c.get(), soft);
    for (auto& kv : e->call.kwargs) validate_expr(kv.second.get(), soft);
    validate_expr(e->call.dyn_args.get(), soft);
    validate_expr(e->call.dyn_kwargs.get(), soft);
  }

  void validate_body(Body& body, bool soft) {
    for (auto& n : body) {
      switch (n->kind) {
        case NodeKind::kIf:
          for (auto& [test, b] : n->branches) {
            validate_expr(test.get(), true);
            validate_body(b, true);
          }
          validate_body(n->else_body, true);
          break;
        case NodeKind::kFor:
          validate_expr(n->expr.get(), soft);
          validate_expr(n->filter.get(), false);
          validate_body(n->body, false);
          validate_body(n->else_body, false);
          break;
        case NodeKind::kMacro:
        case NodeKind::kCallBlock: {
          auto* m = const_cast<MacroSpec*>(n->macro.get());
          for (auto& d : m->defaults) validate_expr(d.get(), false);
          validate_body(m->body, false);
          validate_expr(n->expr.get(), soft);
          break;
        }
        case NodeKind::kSetBlock:
        case NodeKind::kFilterBlock:
          validate_expr(n->filter.get(), soft);
          validate_body(n->body, false);
          break;
        case NodeKind::kWith:
          for (auto& v : n->with_values) validate_expr(v.get(), soft);
          validate_body(n->body, false);
          break;
        case NodeKind::kScopedBody:
          validate_body(n->body, false);
          break;
        case NodeKind::kText:
        case NodeKind::kPrint:
        case NodeKind::kSet:
        case NodeKind::kBreak:
        case NodeKind::kContinue:
          validate_expr(n->expr.get(), soft);
          break;
      }
    }
  }

  LexResult lexed_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

bool is_jinja_filter(std::string_view name) { return kJinjaFilters.count(name) > 0; }
bool is_jinja_test(std::string_view name) { return kJinjaTests.count(name) > 0; }
bool is_known_filter(std::string_view name) { return is_jinja_filter(name) && !kUnimplementedFilters.count(name); }
bool is_known_test(std::string_view name) { return is_jinja_test(name); }

TemplateAst parse_template(std::string_view source) {
  if (!utf8_valid(source)) fail(StatusCode::kInvalidArgument, "template is not valid UTF-8");
  return Parser(lex(source)).run();
}

}  // namespace nc::chat::detail
