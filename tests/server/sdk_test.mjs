// The official `openai` npm SDK (5.23.2) against `neocloud serve`: models list, completions (plain,
// streamed with usage, n=2, stop, seed determinism, logprobs) and the error classes the SDK derives
// from our status codes. Usage: node sdk_test.mjs BASE_URL SDK_DIR
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const [baseURL, sdkDir] = process.argv.slice(2);
const require = createRequire(sdkDir + "/");
const OpenAI = require("openai").default ?? require("openai");
const client = new OpenAI({ baseURL, apiKey: "sk-test", maxRetries: 0 });

const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), ["tiny", "second"]);
assert.equal((await client.models.retrieve("tiny")).object, "model");

const c = await client.completions.create({ model: "tiny", prompt: "Once upon a time", max_tokens: 6, seed: 3 });
assert.equal(c.object, "text_completion");
assert.equal(c.choices.length, 1);
assert.equal(c.choices[0].finish_reason, "length");
assert.equal(c.usage.completion_tokens, 6);
assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + 6);

const again = await client.completions.create({ model: "tiny", prompt: "Once upon a time", max_tokens: 6, seed: 3 });
assert.equal(again.choices[0].text, c.choices[0].text, "same seed, same text");

const two = await client.completions.create({ model: "tiny", prompt: "Hi", max_tokens: 4, n: 2, seed: 9 });
assert.deepEqual(two.choices.map((x) => x.index).sort(), [0, 1]);
assert.equal(two.usage.completion_tokens, 8);

const lp = await client.completions.create({ model: "tiny", prompt: "Hi", max_tokens: 3, temperature: 0, logprobs: 2 });
assert.equal(lp.choices[0].logprobs.tokens.length, 3);

// Streaming with usage: text deltas joined equal the non-streamed text (same seed).
let text = "";
let usage = null;
let finish = null;
const stream = await client.completions.create({
  model: "tiny", prompt: "Once upon a time", max_tokens: 6, seed: 3, stream: true, stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const ch of chunk.choices) {
    text += ch.text;
    if (ch.finish_reason) finish = ch.finish_reason;
  }
}
assert.equal(text, c.choices[0].text);
assert.equal(finish, "length");
assert.equal(usage.completion_tokens, 6);

// Breaking out of a stream closes the connection; the server keeps serving.
const long = await client.completions.create({ model: "tiny", prompt: "Go", max_tokens: 400, stream: true });
let n = 0;
for await (const _ of long) if (++n === 3) break;
assert.equal((await client.models.list()).data.length, 2);

// Chat: a message back, usage; streamed: the role first, content deltas, the finish chunk, usage.
const chat = await client.chat.completions.create({
  model: "tiny",
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: [{ type: "text", text: "Hello" }] }],
  max_tokens: 5, seed: 4, logprobs: true, top_logprobs: 2,
});
assert.equal(chat.object, "chat.completion");
assert.ok(chat.id.startsWith("chatcmpl-"));
assert.equal(chat.choices[0].message.role, "assistant");
assert.equal(chat.choices[0].finish_reason, "length");
assert.equal(chat.usage.completion_tokens, 5);
assert.equal(chat.choices[0].logprobs.content.length, 5);
assert.equal(chat.choices[0].logprobs.content[0].top_logprobs.length, 2);
let roleFirst = null;
let content = "";
let chatUsage = null;
const cs = await client.chat.completions.create({
  model: "tiny", messages: [{ role: "user", content: "Hello" }], max_tokens: 5, seed: 4, stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of cs) {
  if (chunk.usage) chatUsage = chunk.usage;
  for (const ch of chunk.choices) {
    if (roleFirst === null) roleFirst = ch.delta.role;
    if (ch.delta.content) content += ch.delta.content;
  }
}
assert.equal(roleFirst, "assistant");
assert.equal(chatUsage.completion_tokens, 5);
const plain = await client.chat.completions.create({
  model: "tiny", messages: [{ role: "user", content: "Hello" }], max_tokens: 5, seed: 4,
});
assert.equal(content, plain.choices[0].message.content, "streamed chat text equals the plain one");
await assert.rejects(
  client.chat.completions.create({ model: "tiny", messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f" } }] }),
  (e) => { assert.equal(e.status, 400); assert.equal(e.param, "tools"); return true; });
await assert.rejects(client.chat.completions.create({ model: "tiny", messages: [] }), (e) => e.status === 400);

// Embeddings: the SDK asks for base64 by default and decodes it; float arrays when asked. Both agree,
// vectors are unit length, usage counts the input tokens.
const e64 = await client.embeddings.create({ model: "tiny", input: ["Once upon a time", "Hello"] });
const ef = await client.embeddings.create({ model: "tiny", input: ["Once upon a time", "Hello"], encoding_format: "float" });
assert.equal(e64.object, "list");
assert.equal(e64.data.length, 2);
for (let i = 0; i < 2; ++i) {
  const a = e64.data[i].embedding, b = ef.data[i].embedding;
  assert.equal(a.length, 256);
  assert.equal(b.length, 256);
  assert.ok(a.every((x, k) => Math.abs(x - b[k]) <= 1e-6 * Math.max(1, Math.abs(x))));
  assert.ok(Math.abs(Math.hypot(...a) - 1) < 1e-4);
}
const tok = await (await fetch(baseURL.replace(/\/v1$/, "") + "/tokenize", { method: "POST", body: JSON.stringify({ content: "Hello" }) })).json();
assert.equal(e64.usage.prompt_tokens, tok.count + (await (await fetch(baseURL.replace(/\/v1$/, "") + "/tokenize", {
  method: "POST", body: JSON.stringify({ content: "Once upon a time" }) })).json()).count);
await assert.rejects(client.embeddings.create({ model: "tiny", input: "" }), (e) => e.status === 400 && e.param === "input");

// Errors: the SDK picks its class from our status codes and copies code/param.
await assert.rejects(client.completions.create({ model: "missing", prompt: "x" }), (e) => {
  assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
  assert.equal(e.code, "model_not_found");
  return true;
});
await assert.rejects(client.completions.create({ model: "tiny", prompt: "x", temperature: 9 }), (e) => {
  assert.ok(e instanceof OpenAI.BadRequestError);
  assert.equal(e.param, "temperature");
  return true;
});
await assert.rejects(client.completions.create({ model: "tiny", prompt: "x", max_tokens: 1000000 }), (e) => {
  assert.equal(e.code, "context_length_exceeded");
  return true;
});
console.log("sdk ok");
