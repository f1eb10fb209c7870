#include "storage/sql_value.h"

#include <fmt/format.h>

namespace nc::storage {

namespace {
constexpr size_t kIntIndex = 1;
constexpr size_t kDoubleIndex = 2;
constexpr size_t kTextIndex = 3;
constexpr size_t kBlobIndex = 4;

std::string_view index_type_name(size_t index) {
  switch (index) {
    case 0: return "NULL";
    case kIntIndex: return "integer";
    case kDoubleIndex: return "double";
    case kTextIndex: return "text";
    case kBlobIndex: return "blob";
  }
  return "?";
}
}  // namespace

std::string_view sql_type_name(const SqlValue& v) { return index_type_name(v.index()); }

Blob to_blob(std::string_view bytes) { return Blob(bytes.begin(), bytes.end()); }

const SqlValue& Row::at(size_t i) const {
  NC_CHECK(i < values_.size());
  return values_[i];
}

std::string_view Row::column_name(size_t i) const {
  if (!columns_ || i >= columns_->size()) return {};
  return (*columns_)[i];
}

std::optional<size_t> Row::find(std::string_view name) const {
  if (!columns_) return std::nullopt;
  for (size_t i = 0; i < columns_->size(); ++i) {
    if ((*columns_)[i] == name) return i;
  }
  return std::nullopt;
}

Result<size_t> Row::index_of(std::string_view name) const {
  std::optional<size_t> i = find(name);
  if (!i) return invalid_argument(fmt::format("no column named '{}' in the result", name));
  return *i;
}

Status Row::check(size_t i, size_t want_index, bool allow_null) const {
  if (i >= values_.size()) {
    return invalid_argument(fmt::format("column {} out of range (the row has {})", i, values_.size()));
  }
  size_t got = values_[i].index();
  if (got == want_index || (allow_null && got == 0)) return Status::ok();
  if (want_index == kDoubleIndex && got == kIntIndex) return Status::ok();
  std::string_view name = column_name(i);
  return invalid_argument(fmt::format("column {}{}{}{}: expected {}, got {}", i, name.empty() ? "" : " (",
                                      name, name.empty() ? "" : ")", index_type_name(want_index),
                                      index_type_name(got)));
}

Result<int64_t> Row::get_int(size_t i) const {
  NC_RETURN_IF_ERROR(check(i, kIntIndex, false));
  return std::get<int64_t>(values_[i]);
}

Result<double> Row::get_double(size_t i) const {
  NC_RETURN_IF_ERROR(check(i, kDoubleIndex, false));
  if (values_[i].index() == kIntIndex) return static_cast<double>(std::get<int64_t>(values_[i]));
  return std::get<double>(values_[i]);
}

Result<std::string> Row::get_text(size_t i) const {
  NC_RETURN_IF_ERROR(check(i, kTextIndex, false));
  return std::get<std::string>(values_[i]);
}

Result<Blob> Row::get_blob(size_t i) const {
  NC_RETURN_IF_ERROR(check(i, kBlobIndex, false));
  return std::get<Blob>(values_[i]);
}

Result<std::optional<int64_t>> Row::get_optional_int(size_t i) const {
  NC_RETURN_IF_ERROR(check(i, kIntIndex, true));
  if (is_null(i)) return std::optional<int64_t>();
  return std::optional<int64_t>(std::get<int64_t>(values_[i]));
}

Result<std::optional<std::string>> Row::get_optional_text(size_t i) const {
  NC_RETURN_IF_ERROR(check(i, kTextIndex, true));
  if (is_null(i)) return std::optional<std::string>();
  return std::optional<std::string>(std::get<std::string>(values_[i]));
}

Result<std::optional<Blob>> Row::get_optional_blob(size_t i) const {
  NC_RETURN_IF_ERROR(check(i, kBlobIndex, true));
  if (is_null(i)) return std::optional<Blob>();
  return std::optional<Blob>(std::get<Blob>(values_[i]));
}

#define NC_ROW_BY_NAME(type, getter)                     \
  Result<type> Row::getter(std::string_view name) const { \
    NC_ASSIGN_OR_RETURN(size_t i, index_of(name));       \
    return getter(i);                                    \
  }
NC_ROW_BY_NAME(int64_t, get_int)
NC_ROW_BY_NAME(double, get_double)
NC_ROW_BY_NAME(std::string, get_text)
NC_ROW_BY_NAME(Blob, get_blob)
NC_ROW_BY_NAME(std::optional<int64_t>, get_optional_int)
NC_ROW_BY_NAME(std::optional<std::string>, get_optional_text)
NC_ROW_BY_NAME(std::optional<Blob>, get_optional_blob)
#undef NC_ROW_BY_NAME

}  // namespace nc::storage
