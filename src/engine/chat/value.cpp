#include "engine/chat/value.h"

#include <algorithm>

#include "engine/chat/error.h"
#include "engine/chat/py_ops.h"

namespace nc::chat::detail {

namespace {

uint16_t container_depth(int child_max) {
  if (child_max + 1 > Value::kMaxValueDepth) fail(StatusCode::kResourceExhausted, "value nested too deeply");
  return static_cast<uint16_t>(child_max + 1);
}

}  // namespace

Value Value::undefined(std::string message) {
  Value v;
  v.obj_ = std::make_shared<std::string>(std::move(message));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}

Value Value::number(double d) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = d;
  return v;
}

Value Value::string(std::string s, bool safe) {
  Value v;
  v.kind_ = Kind::kString;
  v.flag_ = safe ? 1 : 0;
  v.obj_ = std::make_shared<std::string>(std::move(s));
  return v;
}

Value Value::list(List items, bool tuple) { return list(std::make_shared<List>(std::move(items)), tuple); }

Value Value::list(std::shared_ptr<const List> items, bool tuple) {
  Value v;
  v.kind_ = Kind::kList;
  v.flag_ = static_cast<uint8_t>(tuple ? Seq::kTuple : Seq::kList);
  int d = 0;
  for (const Value& x : *items) d = std::max(d, x.depth());
  v.depth_ = container_depth(d);
  v.obj_ = std::const_pointer_cast<List>(std::move(items));
  return v;
}

Value Value::sequence(List items, Seq seq) {
  Value v = list(std::make_shared<List>(std::move(items)), false);
  v.flag_ = static_cast<uint8_t>(seq);
  return v;
}

Value Value::dict(Dict d) { return dict(std::make_shared<Dict>(std::move(d))); }

Value Value::dict(std::shared_ptr<const Dict> d) {
  Value v;
  v.kind_ = Kind::kDict;
  int depth = 0;
  for (const auto& [k, x] : d->items()) depth = std::max({depth, k.depth(), x.depth()});
  v.depth_ = container_depth(depth);
  v.obj_ = std::const_pointer_cast<Dict>(std::move(d));
  return v;
}

Value Value::namespace_object(std::shared_ptr<Namespace> ns) {
  Value v;
  v.kind_ = Kind::kNamespace;
  v.obj_ = std::move(ns);
  return v;
}

Value Value::callable(std::shared_ptr<const Callable> fn) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.obj_ = std::const_pointer_cast<Callable>(std::move(fn));
  return v;
}

Value Value::loop(std::shared_ptr<LoopState> loop) {
  Value v;
  v.kind_ = Kind::kLoop;
  v.obj_ = std::move(loop);
  return v;
}

double Value::as_double() const {
  switch (kind_) {
    case Kind::kBool: return b_ ? 1.0 : 0.0;
    case Kind::kInt: return static_cast<double>(i_);
    case Kind::kFloat: return f_;
    default: return 0.0;
  }
}

std::string Value::undefined_message() const {
  if (kind_ == Kind::kUndefined && obj_) return *static_cast<const std::string*>(obj_.get());
  return "value is undefined";
}

bool Value::same_object(const Value& o) const {
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kBool:
      return b_ == o.b_;
    case Kind::kInt:
      return i_ == o.i_;
    case Kind::kFloat:
      return f_ == o.f_;
    default:
      return obj_ == o.obj_;
  }
}

namespace {
constexpr size_t kDictIndexThreshold = 16;
}  // namespace

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& kv : items_) {
    if (!kv.first.is_string() && py_equal(kv.first, key)) return &kv.second;
  }
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  if (!index_.empty()) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &items_[it->second].second;
  }
  for (const auto& kv : items_) {
    if (kv.first.is_string() && kv.first.as_string() == key) return &kv.second;
  }
  return nullptr;
}

void Dict::index_key(size_t i) {
  if (items_[i].first.is_string()) index_.emplace(std::string_view(items_[i].first.as_string()), i);
}

void Dict::set(Value key, Value value) {
  if (const Value* existing = find(key)) {
    *const_cast<Value*>(existing) = std::move(value);
    return;
  }
  items_.emplace_back(std::move(key), std::move(value));
  if (!index_.empty()) {
    index_key(items_.size() - 1);
  } else if (items_.size() >= kDictIndexThreshold) {
    for (size_t i = 0; i < items_.size(); ++i) index_key(i);
  }
}

const Value* Namespace::find(std::string_view name) const {
  for (const auto& kv : attrs_) {
    if (kv.first == name) return &kv.second;
  }
  return nullptr;
}

void Namespace::set(const std::string& name, Value value) {
  for (auto& kv : attrs_) {
    if (kv.first == name) {
      kv.second = std::move(value);
      return;
    }
  }
  attrs_.emplace_back(name, std::move(value));
}

}  // namespace nc::chat::detail
