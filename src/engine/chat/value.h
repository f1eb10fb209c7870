// Value: the dynamically typed value of the template engine, modelled on the Python objects a
// Jinja2 template sees — Undefined, None, bool, int, float, str (with Jinja2's Markup flag), list,
// tuple, dict (insertion-ordered), namespace, callables (macros, builtins, bound methods) and the
// for-loop object.
//
// Ownership: a Value is a small handle. Strings, lists and dicts are immutable once built and are
// shared between copies (the sandbox HF uses forbids mutating them in place, so sharing is exact).
// Namespaces and loop objects are the only mutable objects and are shared by reference, as in Python.
// Thread-safety: immutable payloads may be read from any thread; a render creates its own mutable
// objects, so a Value graph is only touched by the thread running that render.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace nc::chat::detail {

class Value;
class Interpreter;
using List = std::vector<Value>;

class Dict;
class Namespace;
class Callable;
struct LoopState;

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,  // list, tuple, generator or dict view (see Seq)
    kDict,
    kNamespace,
    kCallable,
    kLoop,
  };

  // Python sequence types a kList value stands for. Generators (what map/select/... return) and
  // dict views iterate like lists but differ elsewhere: a generator is always true, has no len(),
  // is not JSON serializable; views print as dict_items([...]).
  enum class Seq : uint8_t { kList, kTuple, kGenerator, kDictItems, kDictKeys, kDictValues };

  // Undefined with Jinja2's default message for an unknown name.
  Value() = default;
  static Value undefined(std::string message);
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double d);
  static Value string(std::string s, bool safe = false);
  static Value list(List items, bool tuple = false);
  static Value list(std::shared_ptr<const List> items, bool tuple = false);
  static Value sequence(List items, Seq seq);
  static Value dict(Dict d);
  static Value dict(std::shared_ptr<const Dict> d);
  static Value namespace_object(std::shared_ptr<Namespace> ns);
  static Value callable(std::shared_ptr<const Callable> fn);
  static Value loop(std::shared_ptr<LoopState> loop);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  // int, float or bool (bool is an int in Python).
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  Seq seq() const { return static_cast<Seq>(flag_); }
  bool is_tuple() const { return kind_ == Kind::kList && seq() == Seq::kTuple; }
  // list or tuple: indexable, sliceable, concatenable.
  bool is_indexable_list() const { return kind_ == Kind::kList && (seq() == Seq::kList || seq() == Seq::kTuple); }
  bool is_generator() const { return kind_ == Kind::kList && seq() == Seq::kGenerator; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }
  bool is_loop() const { return kind_ == Kind::kLoop; }
  // A Markup string (the result of |safe, |escape): `+` with it escapes the other operand.
  bool is_safe() const { return kind_ == Kind::kString && flag_ != 0; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }
  // int, bool or float as a double.
  double as_double() const;
  const std::string& as_string() const { return *static_cast<const std::string*>(obj_.get()); }
  const List& as_list() const { return *static_cast<const List*>(obj_.get()); }
  std::shared_ptr<const List> list_ptr() const { return std::static_pointer_cast<const List>(obj_); }
  const Dict& as_dict() const { return *static_cast<const Dict*>(obj_.get()); }
  Namespace& as_namespace() const { return *static_cast<Namespace*>(obj_.get()); }
  const Callable& as_callable() const { return *static_cast<const Callable*>(obj_.get()); }
  LoopState& as_loop() const { return *static_cast<LoopState*>(obj_.get()); }
  // The error raised when an undefined value is used in a way Jinja2 does not allow.
  std::string undefined_message() const;
  // Same object (Python `is`) for reference types; same value for scalars.
  bool same_object(const Value& o) const;
  // Nesting depth of lists/tuples/dicts (0 for everything else). Building one deeper than
  // kMaxValueDepth fails, so the recursive ==, repr, json.dumps and destructors stay shallow.
  int depth() const { return depth_; }
  static constexpr int kMaxValueDepth = 400;

 private:
  Kind kind_ = Kind::kUndefined;
  uint8_t flag_ = 0;  // kString: Markup; kList: Seq
  uint16_t depth_ = 0;
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
  };
  std::shared_ptr<void> obj_;
};

// An insertion-ordered dict (Python 3.7+ semantics). Built once, then shared read-only.
class Dict {
 public:
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  // Inserts or replaces (keeping the first position), as Python's d[k] = v.
  void set(Value key, Value value);
  const std::vector<std::pair<Value, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  void index_key(size_t i);

  std::vector<std::pair<Value, Value>> items_;
  // String keys -> position, once the dict is big enough for a linear scan to matter. The views
  // point into the keys' shared strings, which never move.
  std::unordered_map<std::string_view, size_t> index_;
};

// jinja2.utils.Namespace: attributes assignable with {% set ns.attr = ... %}.
class Namespace {
 public:
  const Value* find(std::string_view name) const;
  void set(const std::string& name, Value value);
  const std::vector<std::pair<std::string, Value>>& attrs() const { return attrs_; }

 private:
  std::vector<std::pair<std::string, Value>> attrs_;
};

struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

// Anything a template can call: macros, builtin functions, bound methods.
class Callable {
 public:
  virtual ~Callable() = default;
  virtual Value call(Interpreter& in, CallArgs& args) const = 0;
  // Python repr(), e.g. "<Macro 'render'>".
  virtual std::string repr() const = 0;
};

// jinja2.runtime.LoopContext state for one for-loop.
struct LoopState {
  std::shared_ptr<const List> items;
  size_t index0 = 0;
  bool has_changed_value = false;
  Value changed_value;
};

}  // namespace nc::chat::detail
