// The official `openai` npm SDK against `neocloud serve --db` (the gateway): what a customer's code
// sees. Usage: node sdk_gateway_test.mjs BASE_URL SDK_DIR KEY_LIMITED KEY_BROKE KEY_OPEN
//   KEY_LIMITED: an inference key with rpm 6; KEY_BROKE: a key whose project budget is 0 (priced model);
//   KEY_OPEN: an inference key without limits.
// Checks: AuthenticationError (401, invalid_api_key) for a bad key; the SDK reads x-ratelimit headers
// and, on 429 rate_limit_exceeded, its error carries them and retry-after; with retries on, the SDK
// honours retry-after-ms and succeeds once the bucket refills; insufficient_quota carries
// x-should-retry: false, so even a retrying client fails at once (no wasted attempts); streaming with
// include_usage works through the gateway.
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const [baseURL, sdkDir, keyLimited, keyBroke, keyOpen] = process.argv.slice(2);
const require = createRequire(sdkDir + "/");
const OpenAI = require("openai").default ?? require("openai");

// The SDK's error headers: a fetch Headers object (v5) or a plain object (v4).
const header = (e, name) => (typeof e.headers?.get === "function" ? e.headers.get(name) : e.headers?.[name]);

const bad = new OpenAI({ baseURL, apiKey: keyOpen.slice(0, -1) + (keyOpen.endsWith("A") ? "B" : "A"), maxRetries: 0 });
await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.code === "invalid_api_key");

const open = new OpenAI({ baseURL, apiKey: keyOpen, maxRetries: 0 });
assert.deepEqual((await open.models.list()).data.map((m) => m.id), ["tiny"]);
let streamed = "";
let usage = null;
for await (const chunk of await open.chat.completions.create({
  model: "tiny", messages: [{ role: "user", content: "Hi" }], max_tokens: 5, stream: true, stream_options: { include_usage: true },
})) {
  if (chunk.usage) usage = chunk.usage;
  streamed += chunk.choices[0]?.delta?.content ?? "";
}
assert.ok(usage && usage.completion_tokens > 0 && usage.completion_tokens <= 5, JSON.stringify(usage));

// rpm 6: six pass, the seventh is a RateLimitError with OpenAI's headers.
const limited = new OpenAI({ baseURL, apiKey: keyLimited, maxRetries: 0 });
for (let i = 0; i < 6; ++i) {
  const { response } = await limited.completions.create({ model: "tiny", prompt: "x", max_tokens: 1 }).withResponse();
  assert.equal(response.headers.get("x-ratelimit-limit-requests"), "6");
  assert.equal(response.headers.get("x-ratelimit-remaining-requests"), String(5 - i));
}
await assert.rejects(limited.completions.create({ model: "tiny", prompt: "x", max_tokens: 1 }), (e) => {
  assert.ok(e instanceof OpenAI.RateLimitError, String(e));
  assert.equal(e.code, "rate_limit_exceeded");
  assert.equal(e.type, "requests");
  assert.ok(Number(header(e, "retry-after")) >= 1, String(header(e, "retry-after")));
  assert.ok(Number(header(e, "retry-after-ms")) > 0);
  assert.equal(header(e, "x-ratelimit-remaining-requests"), "0");
  return true;
});
// A retrying client waits retry-after-ms (about 10 s for rpm 6) and then gets through.
const patient = new OpenAI({ baseURL, apiKey: keyLimited, maxRetries: 2 });
const t0 = Date.now();
const ok = await patient.completions.create({ model: "tiny", prompt: "x", max_tokens: 1 });
assert.equal(ok.object, "text_completion");
assert.ok(Date.now() - t0 > 3000, "the SDK waited for the bucket");

// Over budget: insufficient_quota, and no retries even with maxRetries 2.
const broke = new OpenAI({ baseURL, apiKey: keyBroke, maxRetries: 2 });
const t1 = Date.now();
await assert.rejects(broke.completions.create({ model: "tiny", prompt: "x", max_tokens: 4 }), (e) => {
  assert.ok(e instanceof OpenAI.RateLimitError, String(e));
  assert.equal(e.code, "insufficient_quota");
  assert.equal(header(e, "x-should-retry"), "false");
  return true;
});
assert.ok(Date.now() - t1 < 400, "x-should-retry: false stops the SDK's retries");
console.log("sdk gateway ok");
