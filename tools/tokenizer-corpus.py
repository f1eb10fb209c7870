#!/usr/bin/env python3
"""Writes the differential tokenizer corpus (tests/data/tokenizer/corpus.txt): random text mixing
ASCII words, code, numbers, whitespace runs, many scripts (CJK, Hangul, kana, Cyrillic, Greek, Arabic,
Devanagari, Thai), emoji with ZWJ/skin tones/flags, combining marks, Unicode punctuation, contractions,
special-token text and a few invalid UTF-8 bytes. Cases are separated by "\\n__ggml_vocab_test__\\n"
(llama.cpp's .inp format). Deterministic for a seed. Only code points assigned before Unicode 14 are
used, so the result does not depend on which Unicode version a library ships."""
import random
import sys

SEP = b"\n__ggml_vocab_test__\n"

WORDS = ["the", "The", "hello", "world", "tokenizer", "GPU", "rental", "Llama", "neocloud", "x", "I",
         "don't", "it's", "WE'LL", "they're", "I've", "you'd", "He'S", "can't", "naïve", "café", "Ünïcödé",
         "straße", "ÆØÅ", "İstanbul", "ﬁne", "Ⅻ", "½", "x²", "３４５", "١٢٣", "४२"]
CODE = ["def f(x):\n    return x**2\n", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
        "if __name__ == '__main__':\n\tmain()", "#include <stdio.h>\r\n", "SELECT * FROM t WHERE id=42;",
        "x = [1,2,3]  # comment", "<div class=\"a\">&amp;</div>", "$ ls -la ~/.cache | grep -v '^d'",
        "fn main() -> Result<(), Box<dyn Error>> {}", "a&&b||!c", "λx.x", "0x1F, 0b1010, 1e-9, 3.14159"]
SCRIPTS = [(0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0x3041, 0x3096), (0x30A1, 0x30FA), (0x0410, 0x044F),
           (0x0391, 0x03C9), (0x0621, 0x064A), (0x0905, 0x0939), (0x0E01, 0x0E2E), (0x00C0, 0x00FF),
           (0x0100, 0x017F), (0x1E00, 0x1EFF), (0x05D0, 0x05EA), (0x0531, 0x0556)]
MARKS = [(0x0300, 0x036F), (0x0483, 0x0487), (0x093E, 0x094C), (0x0E31, 0x0E31), (0x0E34, 0x0E3A)]
EMOJI = ["😀", "🦙", "🚀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "🇯🇵", "❤️", "✅", "☕", "🤖", "1️⃣", "🧑🏿‍💻"]
PUNCT = ["“", "”", "‘", "’", "…", "—", "–", "«", "»", "¿", "¡", "。", "，", "、", "！", "？", "【", "】",
         "·", "•", "€", "£", "¥", "©", "®", "™", "°", "±", "×", "÷", "→", "≤", "≥", "∞", "√", "§", "¶"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2009", "\u200b",
          "\u2028", " \t\t ", "\n\n\n   ", "\u0085", "\u202f", "\u2003", "\f", "\v"]
SPECIAL = ["<s>", "</s>", "<unk>", "<|endoftext|>", "<|eot_id|>", "<|begin_of_text|>", "<|start_header_id|>",
           "<|end_header_id|>", "<|im_start|>", "<|im_end|>", "[CLS]", "[SEP]", "[MASK]", "<pad>", "<mask>",
           "<|user|>", "<|assistant|>", "<|end|>", "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>",
           "<|fim_prefix|>", "<｜begin▁of▁sentence｜>", "<|system|>", "<|START_OF_TURN_TOKEN|>"]
INVALID = [b"\xff", b"\xc3", b"\x80\x80", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf0\x9f\x98"]


def piece(r):
    k = r.random()
    if k < 0.22:
        return r.choice(WORDS)
    if k < 0.30:
        return r.choice(CODE)
    if k < 0.38:
        return str(r.randint(0, 10 ** r.randint(1, 14)))
    if k < 0.50:
        lo, hi = r.choice(SCRIPTS)
        return "".join(chr(r.randint(lo, hi)) for _ in range(r.randint(1, 8)))
    if k < 0.56:
        base = r.choice("aeiouAEIOUnyc" + "абв")
        lo, hi = r.choice(MARKS)
        return base + "".join(chr(r.randint(lo, hi)) for _ in range(r.randint(1, 3)))
    if k < 0.64:
        return r.choice(EMOJI)
    if k < 0.72:
        return r.choice(PUNCT)
    if k < 0.88:
        return r.choice(SPACES)
    if k < 0.95:
        return r.choice(SPECIAL)
    return "".join(chr(r.randint(0x21, 0x7E)) for _ in range(r.randint(1, 6)))


def case(r):
    n = r.choice([1, 1, 2, 3, 5, 8, 13, 21, 40])
    out = bytearray()
    for _ in range(n):
        if r.random() < 0.02:
            out += r.choice(INVALID)
        else:
            out += piece(r).encode("utf-8")
    return bytes(out)


def main():
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 600
    r = random.Random(seed)
    cases = [case(r) for _ in range(count)]
    cases = [c for c in cases if SEP not in c and SEP.strip() not in c]
    with open(sys.argv[1], "wb") as f:
        f.write(SEP.join(cases))


if __name__ == "__main__":
    main()
