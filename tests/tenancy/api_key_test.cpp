// API keys: format, checksum, digests, redaction. The FIPS 180-2 SHA-256 vector checks the digest.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

#include "tenancy/api_key.h"

namespace nc::tenancy {
namespace {

std::string hex(const KeyDigest& d) {
  std::string s;
  for (uint8_t b : d) s += fmt::format("{:02x}", b);
  return s;
}

TEST(ApiKey, GeneratedKeysParseAndAreUnique) {
  std::set<std::string> seen;
  for (KeyKind kind : {KeyKind::kInference, KeyKind::kAdmin}) {
    for (int i = 0; i < 200; ++i) {
      auto k = generate_key(kind);
      ASSERT_TRUE(k.is_ok());
      EXPECT_TRUE(seen.insert(k->plaintext).second);
      auto parsed = parse_key(k->plaintext);
      ASSERT_TRUE(parsed.is_ok()) << k->plaintext << ": " << parsed.status().to_string();
      EXPECT_EQ(*parsed, kind);
      EXPECT_TRUE(digest_equal(k->digest, digest_key(k->plaintext)));
      EXPECT_EQ(k->plaintext.rfind(std::string("nc-") + key_kind_name(kind) + "-", 0), 0u);
      EXPECT_EQ(k->plaintext.size(), std::string("nc-").size() + std::string(key_kind_name(kind)).size() + 1 + 49);
      // The redacted form reveals 8 of the 49 secret characters and never the whole key.
      EXPECT_EQ(k->redacted.find(k->plaintext.substr(k->plaintext.rfind('-') + 1)), std::string::npos);
    }
  }
}

TEST(ApiKey, EveryOneCharacterTypoIsCaughtByTheChecksum) {
  auto k = generate_key(KeyKind::kInference);
  ASSERT_TRUE(k.is_ok());
  const std::string key = k->plaintext;
  const std::string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  int caught = 0, tried = 0;
  for (size_t i = 7; i < key.size(); ++i) {
    for (char c : alphabet) {
      if (c == key[i]) continue;
      std::string bad = key;
      bad[i] = c;
      ++tried;
      auto r = parse_key(bad);
      if (!r.is_ok()) {
        ++caught;
        EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
      }
    }
  }
  EXPECT_EQ(caught, tried);  // CRC-32 detects every single-symbol change
}

TEST(ApiKey, MalformedKeysAreRefused) {
  auto k = generate_key(KeyKind::kAdmin);
  ASSERT_TRUE(k.is_ok());
  for (const std::string& bad : {std::string(""), std::string("sk-proj-abc"), std::string("nc-inf-"),
                                 k->plaintext.substr(0, k->plaintext.size() - 1), k->plaintext + "x",
                                 std::string("nc-root-") + k->plaintext.substr(9),
                                 "nc-inf-" + k->plaintext.substr(9),  // an admin secret presented as inference
                                 k->plaintext.substr(0, 20) + "-" + k->plaintext.substr(21)}) {
    auto r = parse_key(bad);
    EXPECT_FALSE(r.is_ok()) << bad;
    if (!r.is_ok()) EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  }
}

TEST(ApiKey, DigestIsSha256) {
  EXPECT_EQ(hex(digest_key("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  KeyDigest a = digest_key("x"), b = a;
  EXPECT_TRUE(digest_equal(a, b));
  b[31] ^= 1;
  EXPECT_FALSE(digest_equal(a, b));
  b = a;
  b[0] ^= 0x80;
  EXPECT_FALSE(digest_equal(a, b));
}

}  // namespace
}  // namespace nc::tenancy
