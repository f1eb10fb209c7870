#include "tenancy/api_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <zlib.h>

#include <fmt/format.h>

namespace nc::tenancy {
namespace {

constexpr char kBase62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr size_t kSecretChars = 43;  // ceil(256 / log2(62))
constexpr size_t kCheckChars = 6;    // 62^6 > 2^32

// Fixed-width base62 of a big-endian byte string (repeated division), most significant digit first.
std::string base62(const uint8_t* bytes, size_t n, size_t width) {
  std::string digits;
  std::basic_string<uint8_t> num(bytes, n);
  while (digits.size() < width) {
    uint32_t rem = 0;
    for (auto& b : num) {
      const uint32_t cur = (rem << 8) | b;
      b = static_cast<uint8_t>(cur / 62);
      rem = cur % 62;
    }
    digits += kBase62[rem];
  }
  return std::string(digits.rbegin(), digits.rend());
}

std::string checksum(std::string_view prefix_and_secret) {
  const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(prefix_and_secret.data()),
                          static_cast<uInt>(prefix_and_secret.size()));
  const uint8_t be[4] = {static_cast<uint8_t>(crc >> 24), static_cast<uint8_t>(crc >> 16), static_cast<uint8_t>(crc >> 8),
                         static_cast<uint8_t>(crc)};
  return base62(be, 4, kCheckChars);
}

bool is_base62(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
  return true;
}

}  // namespace

const char* key_kind_name(KeyKind kind) {
  switch (kind) {
    case KeyKind::kInference: return "inf";
    case KeyKind::kAdmin: return "admin";
  }
  return "?";
}

Result<NewKey> generate_key(KeyKind kind) {
  uint8_t secret[32];
  if (RAND_bytes(secret, sizeof(secret)) != 1) return unavailable("the system's random number generator failed");
  NewKey k;
  k.plaintext = fmt::format("nc-{}-{}", key_kind_name(kind), base62(secret, sizeof(secret), kSecretChars));
  OPENSSL_cleanse(secret, sizeof(secret));
  k.plaintext += checksum(k.plaintext);
  k.digest = digest_key(k.plaintext);
  k.redacted = redact_key(k.plaintext);
  return k;
}

Result<KeyKind> parse_key(std::string_view key) {
  KeyKind kind;
  std::string_view rest;
  if (key.substr(0, 7) == "nc-inf-") {
    kind = KeyKind::kInference;
    rest = key.substr(7);
  } else if (key.substr(0, 9) == "nc-admin-") {
    kind = KeyKind::kAdmin;
    rest = key.substr(9);
  } else {
    return Status(StatusCode::kUnauthenticated, "malformed key: it must start with nc-inf- or nc-admin-");
  }
  if (rest.size() != kSecretChars + kCheckChars || !is_base62(rest))
    return Status(StatusCode::kUnauthenticated, "malformed key: wrong length or characters");
  const std::string_view body = key.substr(0, key.size() - kCheckChars);
  if (checksum(body) != key.substr(key.size() - kCheckChars))
    return Status(StatusCode::kUnauthenticated, "key checksum mismatch: the key was mistyped or truncated");
  return kind;
}

KeyDigest digest_key(std::string_view key) {
  KeyDigest d{};
  unsigned int n = 0;
  EVP_Digest(key.data(), key.size(), d.data(), &n, EVP_sha256(), nullptr);
  return d;
}

bool digest_equal(const KeyDigest& a, const KeyDigest& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

std::string redact_key(std::string_view key) {
  const size_t dash = key.rfind('-');
  if (dash == std::string_view::npos || key.size() - dash - 1 < 12) return "nc-…";
  const std::string_view secret = key.substr(dash + 1);
  return fmt::format("{}{}…{}", key.substr(0, dash + 1), secret.substr(0, 4), secret.substr(secret.size() - 4));
}

}  // namespace nc::tenancy
