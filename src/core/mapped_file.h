// MappedFile: a read-only memory map of a whole file. Owns the mapping; the bytes stay valid until
// the MappedFile is destroyed. Immutable after open, so any thread may read the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/status.h"

namespace nc {

class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  // Hints the kernel to read the range ahead (used before a model's first forward pass).
  void prefetch(size_t offset, size_t n_bytes) const;
  // Drops the whole pages inside [offset, offset + n_bytes) from this process's memory (they are
  // re-read from the file if touched again). Used once weights have been repacked elsewhere.
  void discard(size_t offset, size_t n_bytes) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace nc
