// Fine-tuning with the official `openai` npm SDK (5.x) against `neocloud serve`: files.create (a
// stream, multipart) -> fineTuning.jobs.create -> retrieve / listEvents / checkpoints.list until it
// succeeds -> chat.completions.create with fine_tuned_model; another organization's key gets
// NotFoundError on the file, the job and the model; an invalid JSONL is a BadRequestError naming its
// line; a running job is cancelled.
// Usage: node fine_tuning_sdk.mjs BASE_URL SDK_DIR KEY_A KEY_B BASE_MODEL DATA.jsonl QUESTION ANSWER BAD.jsonl
import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";

const [baseURL, sdkDir, keyA, keyB, base, dataPath, question, answer, badPath] = process.argv.slice(2);
const require = createRequire(sdkDir + "/");
const OpenAI = require("openai").default ?? require("openai");
const a = new OpenAI({ baseURL, apiKey: keyA, maxRetries: 0, timeout: 120000 });
const b = new OpenAI({ baseURL, apiKey: keyB, maxRetries: 0 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const file = await a.files.create({ file: fs.createReadStream(dataPath), purpose: "fine-tune" });
assert.equal(file.object, "file");
assert.equal(file.purpose, "fine-tune");
assert.equal(file.bytes, fs.statSync(dataPath).size);
assert.equal((await a.files.retrieve(file.id)).id, file.id);
const content = await (await a.files.content(file.id)).text();
assert.equal(content, fs.readFileSync(dataPath, "utf8"));
await assert.rejects(b.files.retrieve(file.id), OpenAI.NotFoundError);

await assert.rejects(a.files.create({ file: fs.createReadStream(badPath), purpose: "fine-tune" }), (e) => {
  assert.ok(e instanceof OpenAI.BadRequestError, String(e));
  assert.match(e.message, /line 2/);
  return true;
});

let job = await a.fineTuning.jobs.create({
  model: base, training_file: file.id, suffix: "sdk", seed: 5,
  method: { type: "supervised", supervised: { hyperparameters: { n_epochs: "auto", batch_size: "auto" } } },
});
assert.equal(job.object, "fine_tuning.job");
const deadline = Date.now() + 300000;
while (!["succeeded", "failed", "cancelled"].includes(job.status)) {
  assert.ok(Date.now() < deadline, "the job did not end in 300 s");
  await sleep(300);
  job = await a.fineTuning.jobs.retrieve(job.id);
}
assert.equal(job.status, "succeeded", JSON.stringify(job.error));
assert.ok(job.fine_tuned_model.startsWith(`ft:${base}:`) && job.fine_tuned_model.includes(":sdk:"), job.fine_tuned_model);
assert.ok(job.trained_tokens > 0);
const events = await a.fineTuning.jobs.listEvents(job.id, { limit: 50 });
assert.ok(events.data.some((e) => e.type === "metrics" && typeof e.data.train_loss === "number"));
const checkpoints = await a.fineTuning.jobs.checkpoints.list(job.id);
assert.ok(checkpoints.data.length >= 1);
assert.ok(checkpoints.data.every((c) => typeof c.step_number === "number" && typeof c.metrics.train_loss === "number"));
await assert.rejects(b.fineTuning.jobs.retrieve(job.id), OpenAI.NotFoundError);

const chat = await a.chat.completions.create({
  model: job.fine_tuned_model, messages: [{ role: "user", content: question }], max_tokens: 12, temperature: 0,
});
assert.equal(chat.model, job.fine_tuned_model);
assert.equal(chat.choices[0].message.content.trim(), answer);
await assert.rejects(
  b.chat.completions.create({ model: job.fine_tuned_model, messages: [{ role: "user", content: question }] }),
  OpenAI.NotFoundError);

// Cancel while running.
let second = await a.fineTuning.jobs.create({
  model: base, training_file: file.id, method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 50 } } },
});
while (second.status !== "running") {
  assert.ok(Date.now() < deadline, "the second job did not start");
  await sleep(200);
  second = await a.fineTuning.jobs.retrieve(second.id);
}
const cancelled = await a.fineTuning.jobs.cancel(second.id);
assert.equal(cancelled.status, "cancelled");
const list = await a.fineTuning.jobs.list({ limit: 10 });
assert.deepEqual(list.data.slice(0, 2).map((j) => j.id), [second.id, job.id]);
console.log(`sdk: ${job.id} -> ${job.fine_tuned_model} (${job.trained_tokens} tokens); ${second.id} cancelled`);
