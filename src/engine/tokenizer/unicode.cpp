#include "engine/tokenizer/unicode.h"

#include <utf8proc.h>

#include <array>
#include <memory>

namespace nc::engine::unicode {
namespace {

uint16_t category_flag(utf8proc_category_t c) {
  switch (c) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      return kLetter;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
      return kMark;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return kNumber;
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return kPunctuation;
    case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC: case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
      return kSymbol;
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
      return kSeparator;
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
      return kControl;
    case UTF8PROC_CATEGORY_CN:
    default:
      return kUndefined;
  }
}

bool is_white_space(uint32_t cp) {
  // PropList.txt, White_Space.
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

const std::vector<uint16_t>& table() {
  static const std::vector<uint16_t> t = [] {
    std::vector<uint16_t> v(kMaxCodePoint + 1);
    for (uint32_t cp = 0; cp <= kMaxCodePoint; ++cp) {
      uint16_t f = category_flag(utf8proc_category(static_cast<utf8proc_int32_t>(cp)));
      if (is_white_space(cp)) f |= kWhitespace;
      v[cp] = f;
    }
    return v;
  }();
  return t;
}

struct ByteMaps {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 512> from_cp{};  // every mapped code point is < 0x144
};

const ByteMaps& byte_maps() {
  static const ByteMaps m = [] {
    ByteMaps b;
    b.from_cp.fill(-1);
    uint32_t n = 0;
    for (int x = 0; x < 256; ++x) {
      bool keep = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
      b.to_cp[x] = keep ? static_cast<uint32_t>(x) : 0x100u + n++;
      b.from_cp[b.to_cp[x]] = static_cast<int16_t>(x);
    }
    return b;
  }();
  return m;
}

}  // namespace

uint16_t flags(uint32_t cp) { return cp <= kMaxCodePoint ? table()[cp] : static_cast<uint16_t>(kUndefined); }
const uint16_t* flag_table() { return table().data(); }

void decode_utf8(std::string_view s, std::vector<uint32_t>& out) {
  out.clear();
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  auto cont = [&](size_t k) { return (p[k] & 0xC0) == 0x80; };
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      out.push_back(c);
      i += 1;
    } else if ((c & 0x40) == 0) {
      out.push_back(kReplacement);
      i += 1;
    } else if ((c & 0x20) == 0) {
      if (i + 1 < n && cont(i + 1)) {
        out.push_back(((c & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu));
        i += 2;
      } else {
        out.push_back(kReplacement);
        i += 1;
      }
    } else if ((c & 0x10) == 0) {
      if (i + 2 < n && cont(i + 1) && cont(i + 2)) {
        out.push_back(((c & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) | (p[i + 2] & 0x3Fu));
        i += 3;
      } else {
        out.push_back(kReplacement);
        i += 1;
      }
    } else if ((c & 0x08) == 0) {
      if (i + 3 < n && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
        uint32_t cp = ((c & 0x07u) << 18) | ((p[i + 1] & 0x3Fu) << 12) | ((p[i + 2] & 0x3Fu) << 6) |
                      (p[i + 3] & 0x3Fu);
        out.push_back(cp <= kMaxCodePoint ? cp : kReplacement);
        i += 4;
      } else {
        out.push_back(kReplacement);
        i += 1;
      }
    } else {
      out.push_back(kReplacement);
      i += 1;
    }
  }
}

std::vector<uint32_t> decode_utf8(std::string_view s) {
  std::vector<uint32_t> v;
  decode_utf8(s, v);
  return v;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp <= 0x7F) {
    out.push_back(static_cast<char>(cp));
  } else if (cp <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= kMaxCodePoint) {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    append_utf8(out, kReplacement);
  }
}

uint32_t to_lower(uint32_t cp) {
  if (cp > kMaxCodePoint) return cp;
  return static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
}

uint32_t nfd_first(uint32_t cp) {
  if (cp > kMaxCodePoint) return cp;
  utf8proc_int32_t buf[8];
  int last_boundclass = 0;
  utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf, 8,
                                               UTF8PROC_DECOMPOSE, &last_boundclass);
  return n >= 1 ? static_cast<uint32_t>(buf[0]) : cp;
}

uint32_t byte_to_cp(uint8_t b) { return byte_maps().to_cp[b]; }
int cp_to_byte(uint32_t cp) { return cp < 512 ? byte_maps().from_cp[cp] : -1; }

}  // namespace nc::engine::unicode
