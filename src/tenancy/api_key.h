// API keys: the credential a tenant presents as `Authorization: Bearer <key>`.
//
// Format: "nc-<kind>-<secret><check>" — kind "inf" (inference: model endpoints) or "admin" (the admin
// API; it cannot call models, as OpenAI splits them); <secret> is 43 base62 characters from 32 bytes of
// OpenSSL's CSPRNG (256 bits); <check> is 6 base62 characters of CRC-32 over everything before it, so
// a typo or a truncated paste is refused without a database lookup and secret scanners can verify a
// candidate offline (GitHub's token format does the same). The dashes make the kind visible; a
// double-click selects the whole key because base62 has no punctuation.
//
// Storage: only SHA-256(key) is stored (a fast hash is right for 256-bit random secrets; slow password
// KDFs are for low-entropy passwords), looked up by digest and compared in constant time. The
// plaintext is returned once by generate_key and never kept; listings show `redact(key)`.
//
// Thread-safety: pure functions; generate_key uses OpenSSL's thread-safe RAND_bytes.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace nc::tenancy {

enum class KeyKind { kInference, kAdmin };
const char* key_kind_name(KeyKind kind);  // "inf", "admin"

using KeyDigest = std::array<uint8_t, 32>;  // SHA-256

struct NewKey {
  std::string plaintext;  // show once, then forget
  KeyDigest digest;       // what is stored
  std::string redacted;   // what listings show
};

// A new random key. Unavailable if the system's random source fails.
Result<NewKey> generate_key(KeyKind kind);

// Checks the shape and checksum (no secret involved). Unauthenticated with a reason that is safe to
// show the caller: "malformed key" or "key checksum mismatch".
Result<KeyKind> parse_key(std::string_view key);

KeyDigest digest_key(std::string_view key);
// Constant-time comparison (CRYPTO_memcmp): the time does not depend on where the digests differ.
bool digest_equal(const KeyDigest& a, const KeyDigest& b);
// "nc-inf-Ab3d…x9Yz": the kind, the first 4 and last 4 characters of the secret.
std::string redact_key(std::string_view key);

}  // namespace nc::tenancy
