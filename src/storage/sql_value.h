// SqlValue and Row: the values that cross the storage API, the same on SQLite and PostgreSQL.
// A SqlValue is NULL (std::monostate), a 64-bit integer, a double, UTF-8 text or a byte string (Blob).
// How database types come back:
//   SQLite: by storage class (INTEGER -> int64, REAL -> double, TEXT -> text, BLOB -> Blob).
//   PostgreSQL: int2/int4/int8/bool/oid -> int64 (bool as 0/1); float4/float8 -> double;
//     numeric -> int64 when integral and in range (SUM(BIGINT) is numeric there), else double;
//     bytea -> Blob; every other type (text, varchar, json, timestamps, ...) -> its text form.
// So portable schemas use BIGINT, DOUBLE PRECISION, TEXT and BLOB/BYTEA only (see migrate.h).
// Rows own their values; they are plain values, safe to move between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"

namespace nc::storage {

using Blob = std::vector<uint8_t>;

// Index order is part of the contract: kSqlNull, kSqlInt, kSqlDouble, kSqlText, kSqlBlob.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string, Blob>;
using Params = std::vector<SqlValue>;

inline const SqlValue kNull{};  // for readability at call sites: {kNull, 1, "x"}

// "NULL", "integer", "double", "text" or "blob".
std::string_view sql_type_name(const SqlValue& v);
Blob to_blob(std::string_view bytes);

// One result row. Getters return InvalidArgument, naming the column, when the column is missing,
// NULL (non-optional getters) or of another type; get_double also accepts an integer.
class Row {
 public:
  Row() = default;
  Row(std::shared_ptr<const std::vector<std::string>> columns, std::vector<SqlValue> values)
      : columns_(std::move(columns)), values_(std::move(values)) {}

  size_t size() const { return values_.size(); }
  // The value at i; i must be < size() (a programmer error otherwise).
  const SqlValue& at(size_t i) const;
  const std::vector<SqlValue>& values() const { return values_; }
  std::string_view column_name(size_t i) const;
  // The index of the first column with this name, or nullopt.
  std::optional<size_t> find(std::string_view name) const;

  bool is_null(size_t i) const { return i < values_.size() && values_[i].index() == 0; }
  Result<int64_t> get_int(size_t i) const;
  Result<double> get_double(size_t i) const;
  Result<std::string> get_text(size_t i) const;
  Result<Blob> get_blob(size_t i) const;
  // NULL -> nullopt; a value of another type is still an error.
  Result<std::optional<int64_t>> get_optional_int(size_t i) const;
  Result<std::optional<std::string>> get_optional_text(size_t i) const;
  Result<std::optional<Blob>> get_optional_blob(size_t i) const;

  // The same by column name.
  Result<int64_t> get_int(std::string_view name) const;
  Result<double> get_double(std::string_view name) const;
  Result<std::string> get_text(std::string_view name) const;
  Result<Blob> get_blob(std::string_view name) const;
  Result<std::optional<int64_t>> get_optional_int(std::string_view name) const;
  Result<std::optional<std::string>> get_optional_text(std::string_view name) const;
  Result<std::optional<Blob>> get_optional_blob(std::string_view name) const;

 private:
  Result<size_t> index_of(std::string_view name) const;
  Status check(size_t i, size_t want_index, bool allow_null) const;

  std::shared_ptr<const std::vector<std::string>> columns_;  // shared by all rows of one result
  std::vector<SqlValue> values_;
};

using Rows = std::vector<Row>;

}  // namespace nc::storage
