// A small backtracking regex engine for pre-tokenizer patterns, over decoded code points.
//
// Supports what the tokenizer patterns use: literals and escapes (\r \n \t \f \v \\ and escaped
// punctuation), `.`, classes with ranges and negation, \s \S \d \D \w \W and \p{L,N,P,S,M,Z,C} (also
// \p{Lu,Ll,Lt,Lm,Lo}, which like llama.cpp mean "letter"), groups `( )` and `(?: )`, alternation,
// greedy quantifiers ? * + {n} {n,} {n,m}, lookahead (?= ) (?! ), `$` (end of subject only, as
// ECMAScript) and \b \B. Matching is leftmost-first with backtracking (Perl/ECMAScript semantics).
// Categories come from unicode::flags; \s is the White_Space property.
//
// Thread-safety: a compiled Regex is immutable; `search` may be called from any number of threads.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace nc::engine {

class Regex {
 public:
  static Result<Regex> compile(std::string_view pattern);

  // Searches cps[begin, end) (the subject; lookaheads, `$` and \b see only it) for the leftmost match
  // starting at or after `from`. On success sets [*mbegin, *mend) and returns true.
  bool search(const uint32_t* cps, size_t begin, size_t end, size_t from, size_t* mbegin, size_t* mend) const;

  struct Class {
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    uint16_t flag_mask = 0;
    bool negate = false;
  };
  enum class Op : uint8_t { kChar, kClass, kAny, kSplit, kJmp, kMatch, kLook, kEnd, kWordB, kNotWordB };
  struct Inst {
    Op op;
    bool neg = false;   // kLook: negative lookahead
    uint32_t a = 0;     // kChar: code point; kClass: class index; kSplit/kJmp: first target; kLook: sub-program start
    uint32_t b = 0;     // kSplit: second target
  };

 private:
  bool run(const uint32_t* cps, size_t begin, size_t end, uint32_t pc, size_t pos, size_t* out_end) const;
  bool class_match(const Class& c, uint32_t cp) const;

  std::vector<Inst> prog_;
  std::vector<Class> classes_;
  friend class RegexCompiler;
};

}  // namespace nc::engine
