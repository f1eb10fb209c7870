// Vocab::tokenize: special-token partition, then SPM / BPE / WordPiece per raw-text fragment.
#include <array>
#include <queue>

#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/vocab.h"

namespace nc::engine {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

void escape_spaces(std::string& s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    if (c == ' ') out += "\xe2\x96\x81";
    else out.push_back(c);
  }
  s.swap(out);
}

struct Symbol {
  int prev, next;
  uint32_t off, len;  // bytes in the fragment/word
  TokenId id;         // BPE: the token this symbol spells, or kNoToken
};

}  // namespace

void Vocab::partition(std::string_view text, bool parse_special, std::vector<Fragment>& out) const {
  out.clear();
  if (text.empty()) return;
  out.push_back({kNoToken, 0, text.size()});
  std::vector<Fragment> next;
  for (TokenId sid : special_tokens_) {
    const TokenData& st = tokens_[sid];
    if (!parse_special && (st.attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string& stext = st.text;
    // Cheap test first: does the token occur in the text at all?
    if (text.find(stext) == std::string_view::npos) continue;
    next.clear();
    for (const Fragment& f : out) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t off = f.offset, len = f.length;
      while (true) {
        const size_t match = text.substr(0, off + len).find(stext, off);
        if (match == std::string_view::npos) {
          if (len > 0) next.push_back({kNoToken, off, len});
          break;
        }
        if (match > off) {
          size_t left_len = match - off;
          if (st.attr & kAttrLstrip) {
            while (left_len > 0 && is_space(text[off + left_len - 1])) --left_len;
          }
          if (left_len > 0) next.push_back({kNoToken, off, left_len});
        }
        next.push_back({sid, 0, 0});
        size_t r_off = match + stext.size();
        size_t r_len = off + len - r_off;
        if (st.attr & kAttrRstrip) {
          while (r_len > 0 && is_space(text[r_off])) ++r_off, --r_len;
        }
        if (r_len == 0) break;
        off = r_off;
        len = r_len;
      }
    }
    out.swap(next);
  }
}

std::vector<TokenId> Vocab::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<TokenId> out;
  std::vector<Fragment> frags;
  partition(text, parse_special, frags);
  switch (type_) {
    case VocabType::kSpm: {
      if (add_special && add_bos_) out.push_back(bos_);
      bool prev_special = true;
      std::string buf;
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
          prev_special = true;
          continue;
        }
        buf.clear();
        if (add_space_prefix_ && prev_special) buf.push_back(' ');
        buf.append(text.substr(f.offset, f.length));
        escape_spaces(buf);
        tokenize_spm(buf, out);
        prev_special = false;
      }
      if (add_special && add_eos_) out.push_back(eos_);
      break;
    }
    case VocabType::kBpe: {
      if (add_special && add_bos_) out.push_back(bos_);
      std::string buf;
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
          continue;
        }
        buf.assign(text.substr(f.offset, f.length));
        if (escape_whitespaces_) escape_spaces(buf);
        tokenize_bpe(buf, out);
      }
      if (add_special && add_eos_) out.push_back(eos_);
      break;
    }
    case VocabType::kWpm: {
      if (add_special) out.push_back(bos_);
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) out.push_back(f.token);
        else tokenize_wpm(text.substr(f.offset, f.length), out);
      }
      if (add_special) out.push_back(sep_);
      break;
    }
  }
  return out;
}

// ---- SPM: merge the highest-scoring adjacent pair that forms a token, repeatedly ----
void Vocab::tokenize_spm(std::string_view text, std::vector<TokenId>& out) const {
  std::vector<Symbol> syms;
  syms.reserve(text.size());
  for (size_t off = 0; off < text.size();) {
    const size_t len = std::min(unicode::utf8_len(static_cast<uint8_t>(text[off])), text.size() - off);
    const int idx = static_cast<int>(syms.size());
    syms.push_back({idx - 1, off + len == text.size() ? -1 : idx + 1, static_cast<uint32_t>(off), static_cast<uint32_t>(len), kNoToken});
    off += len;
  }
  struct Bigram {
    float score;
    int left, right;
    uint32_t size;
  };
  auto cmp = [](const Bigram& l, const Bigram& r) { return l.score < r.score || (l.score == r.score && l.left > r.left); };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
  // text -> (left, right) of the last pair pushed for it (llama.cpp's rev_merge).
  std::unordered_map<std::string_view, std::pair<int, int>> rev_merge;
  auto try_add = [&](int l, int r) {
    if (l == -1 || r == -1) return;
    const std::string_view s = text.substr(syms[l].off, syms[l].len + syms[r].len);
    const TokenId id = find(s);
    if (id == kNoToken) return;
    queue.push({tokens_[id].score, l, r, static_cast<uint32_t>(s.size())});
    rev_merge[s] = {l, r};
  };
  for (int i = 1; i < static_cast<int>(syms.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = syms[b.left];
    Symbol& r = syms[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  // Emit: a token, else the pair that formed it (recursively), else its bytes.
  auto resegment = [&](auto& self, const Symbol& s) -> void {
    const std::string_view t = text.substr(s.off, s.len);
    const TokenId id = find(t);
    if (id != kNoToken) {
      out.push_back(id);
      return;
    }
    auto it = rev_merge.find(t);
    if (it == rev_merge.end()) {
      for (char c : t) {
        // A vocab without this byte's token (malformed: SentencePiece byte fallback has all 256) gives
        // <unk>, as SentencePiece without byte fallback does; llama.cpp throws here.
        const TokenId b = byte_to_token(static_cast<uint8_t>(c));
        if (b != kNoToken) out.push_back(b);
        else if (unk_ != kNoToken) out.push_back(unk_);
      }
      return;
    }
    self(self, syms[it->second.first]);
    self(self, syms[it->second.second]);
  };
  if (syms.empty()) return;
  for (int i = 0; i != -1; i = syms[i].next) resegment(resegment, syms[i]);
}

// ---- BPE ----
void Vocab::tokenize_bpe(std::string_view text, std::vector<TokenId>& out) const {
  // Pre-tokenize: regexes in sequence, each splitting every chunk into matches and the gaps between.
  std::vector<uint32_t> cps;
  unicode::decode_utf8(text, cps);
  std::vector<size_t> offsets{cps.size()}, next;
  for (const Regex& re : pre_regexes_) {
    next.clear();
    size_t start = 0;
    for (size_t len : offsets) {
      const size_t end = start + len;
      size_t pos = start;
      size_t mb, me;
      while (pos < end && re.search(cps.data(), start, end, pos, &mb, &me)) {
        if (me == mb) {  // empty match: no split here
          pos = mb + 1;
          continue;
        }
        if (mb > pos) next.push_back(mb - pos);
        next.push_back(me - mb);
        pos = me;
      }
      if (pos < end) next.push_back(end - pos);
      start = end;
    }
    offsets.swap(next);
  }
  // The GPT-2 byte map as UTF-8 strings, one per byte value.
  static const std::array<std::string, 256> kByteUtf8 = [] {
    std::array<std::string, 256> t;
    for (int b = 0; b < 256; ++b) unicode::append_utf8(t[b], unicode::byte_to_cp(static_cast<uint8_t>(b)));
    return t;
  }();
  std::string word, utf8;
  size_t start = 0;
  for (size_t len : offsets) {
    word.clear();
    for (size_t i = start; i < start + len; ++i) {
      if (byte_encode_) {
        utf8.clear();
        unicode::append_utf8(utf8, cps[i]);
        for (char c : utf8) word += kByteUtf8[static_cast<uint8_t>(c)];
      } else {
        unicode::append_utf8(word, cps[i]);
      }
    }
    start += len;
    bpe_word(word, out);
  }
}

void Vocab::bpe_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (ignore_merges_ || (gemma4_newlines_ && word.find_first_not_of('\n') == std::string_view::npos)) {
    const TokenId id = find(word);
    if (id != kNoToken) {
      out.push_back(id);
      return;
    }
  }
  thread_local std::vector<Symbol> syms;
  syms.clear();
  for (size_t off = 0; off < word.size();) {
    const size_t len = std::min(unicode::utf8_len(static_cast<uint8_t>(word[off])), word.size() - off);
    const int idx = static_cast<int>(syms.size());
    syms.push_back({idx - 1, off + len == word.size() ? -1 : idx + 1, static_cast<uint32_t>(off), static_cast<uint32_t>(len),
                    find(word.substr(off, len))});
    off += len;
  }
  struct Bigram {
    int32_t rank;
    int left, right;
    TokenId lid, rid, merged;
  };
  auto cmp = [](const Bigram& l, const Bigram& r) { return l.rank > r.rank || (l.rank == r.rank && l.left > r.left); };
  thread_local std::vector<Bigram> heap;
  heap.clear();
  auto try_add = [&](int l, int r) {
    if (l == -1 || r == -1) return;
    const TokenId a = syms[l].id, b = syms[r].id;
    if (a == kNoToken || b == kNoToken) return;
    auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b));
    if (it == merges_.end()) return;
    heap.push_back({it->second.first, l, r, a, b, it->second.second});
    std::push_heap(heap.begin(), heap.end(), cmp);
  };
  for (int i = 1; i < static_cast<int>(syms.size()); ++i) try_add(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), cmp);
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = syms[b.left];
    Symbol& r = syms[b.right];
    if (l.len == 0 || r.len == 0 || l.id != b.lid || r.id != b.rid) continue;  // stale
    l.len += r.len;
    l.id = b.merged;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int i = 0; i != -1; i = syms[i].next) {
    const Symbol& s = syms[i];
    if (s.len == 0) continue;
    if (s.id != kNoToken) {
      out.push_back(s.id);
      continue;
    }
    // Not a token: each byte as its own token if there is one; bytes without a token are dropped,
    // as llama.cpp does.
    for (size_t k = s.off; k < s.off + s.len; ++k) {
      const uint8_t c = static_cast<uint8_t>(word[k]);
      TokenId id;
      if (byte_encode_) {
        const char ch = static_cast<char>(c);
        id = find(std::string_view(&ch, 1));
      } else {
        id = find_byte_token(c);
      }
      if (id != kNoToken) out.push_back(id);
    }
  }
}

// ---- WordPiece ----
void Vocab::tokenize_wpm(std::string_view text, std::vector<TokenId>& out) const {
  std::vector<uint32_t> cps;
  unicode::decode_utf8(text, cps);
  std::vector<std::string> words(1);
  auto is_chinese = [](uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
  };
  for (uint32_t cp : cps) {
    if (wpm_strip_accents_) cp = unicode::nfd_first(cp);
    const uint16_t fl = unicode::flags(cp);
    if (fl & unicode::kWhitespace) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cp == 0 || cp == 0xFFFD || (fl & unicode::kControl)) continue;
    if (wpm_strip_accents_ && (fl & unicode::kMark)) continue;
    std::string s;
    unicode::append_utf8(s, wpm_lowercase_ ? unicode::to_lower(cp) : cp);
    if ((fl & unicode::kPunctuation) || (cp < 0x7F && (fl & unicode::kSymbol)) || is_chinese(cp)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = s;
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  for (const std::string& w : words) {
    if (w.empty()) continue;
    const std::string w1 = "\xe2\x96\x81" + w;
    const int n = static_cast<int>(w1.size());
    const size_t before = out.size();
    for (int i = 0; i < n; ++i) {
      bool match = false;
      for (int j = std::min(n, i + static_cast<int>(max_token_len_) + 1); j > i; --j) {
        const TokenId id = find(std::string_view(w1).substr(i, j - i));
        if (id != kNoToken) {
          out.push_back(id);
          match = true;
          i = j - 1;
          break;
        }
      }
      if (!match) {
        out.resize(before);
        break;
      }
    }
    if (out.size() == before) out.push_back(unk_);
  }
}

}  // namespace nc::engine
