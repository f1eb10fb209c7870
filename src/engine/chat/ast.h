// Syntax tree of a parsed template: expressions (Expr) and statements (Node), as jinja2.nodes has
// them. Built once by the parser, then only read: a tree is immutable and may be rendered by many
// threads at once. Each node owns its children (unique_ptr).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/chat/py_ops.h"
#include "engine/chat/value.h"

namespace nc::chat::detail {

enum class ExprKind {
  kConst,     // value
  kName,      // name
  kList,      // items
  kTuple,     // items
  kDict,      // items: key, value, key, value, ...
  kGetattr,   // items[0].name
  kGetitem,   // items[0][items[1]]
  kSlice,     // items[0][items[1]:items[2]:items[3]] (null for absent bounds)
  kCall,      // items[0](call)
  kFilter,    // items[0] | name(call); items[0] null in a filter block
  kTest,      // items[0] is name(call)
  kNot,       // not items[0]
  kNeg,       // -items[0]
  kPos,       // +items[0]
  kBinary,    // items[0] op items[1]
  kConcat,    // items[0] ~ items[1] ~ ...
  kCompare,   // items[0] cmp[0] items[1] cmp[1] items[2] ...
  kAnd,       // items[0] and items[1]
  kOr,        // items[0] or items[1]
  kCondExpr,  // items[1] if items[0] else items[2] (items[2] may be null)
};

enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct CallSpec {
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  ExprPtr dyn_args;    // *args
  ExprPtr dyn_kwargs;  // **kwargs
};

struct Expr {
  ExprKind kind = ExprKind::kConst;
  size_t offset = 0;  // in the normalized source, for error positions
  Value value;
  std::string name;
  BinaryOp op = BinaryOp::kAdd;
  std::vector<CompareOp> compare_ops;
  std::vector<ExprPtr> items;
  CallSpec call;
  int depth = 1;  // height of this subtree (bounded by the parser: evaluation recurses on it)
  // Filters and tests with a name unknown at parse time inside an if/inline-if: jinja2 only fails
  // when they run (its "soft frame" rule), elsewhere at parse time.
  bool soft = false;
};

// An assignment target: a name, a tuple of targets, or namespace.attr.
struct Target {
  enum class Kind { kName, kTuple, kNamespaceAttr };
  Kind kind = Kind::kName;
  std::string name;
  std::string attr;
  std::vector<Target> items;
};

enum class NodeKind {
  kText,         // text
  kPrint,        // {{ expr }}
  kIf,           // branches (test, body)..., else_body
  kFor,          // for target in expr [if filter] body else else_body
  kSet,          // set target = expr
  kSetBlock,     // set target [| filter] body endset
  kMacro,        // macro name(params) body
  kCallBlock,    // call(params) expr body endcall
  kFilterBlock,  // filter expr(filter chain) body endfilter
  kWith,         // with targets = values body endwith
  kScopedBody,   // generation ... endgeneration (a call block rendering its body)
  kBreak,
  kContinue,
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct MacroSpec {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  Body body;
  bool catch_varargs = false;  // body uses `varargs`
  bool catch_kwargs = false;   // body uses `kwargs`
  bool uses_caller = false;    // body uses `caller`
};

struct Node {
  NodeKind kind = NodeKind::kText;
  size_t offset = 0;
  std::string text;
  ExprPtr expr;    // print / set value / for iterable / call-block call / filter chain
  ExprPtr filter;  // for-loop `if` condition; set-block filter chain
  Target target;
  std::vector<std::pair<ExprPtr, Body>> branches;  // if / elif
  Body body;
  Body else_body;
  std::shared_ptr<const MacroSpec> macro;  // macro and call-block (shared with the Macro values)
  std::vector<Target> with_targets;
  std::vector<ExprPtr> with_values;
};

struct TemplateAst {
  std::string source;  // normalized source (error positions refer to it)
  Body body;
};

}  // namespace nc::chat::detail
