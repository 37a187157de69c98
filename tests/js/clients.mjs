// The official npm clients (`ollama`, `openai`) against sluice, for
// tests/integration/test_js_clients.py.  Usage:
//
//   node tests/js/clients.mjs '{"sluice":"http://127.0.0.1:P","llmsim":"http://127.0.0.1:Q","model":"llama3.2"}'
//
// Runs each call and prints one JSON object with what the clients returned
// (token texts, done / finish fields, usage).  No assertions here: the Python
// test compares; any exception (HTTP error, bad stream) crashes the script
// with a non-zero exit status.
import { Ollama } from 'ollama';
import OpenAI from 'openai';

const args = JSON.parse(process.argv[2] ?? '{}');
for (const k of ['sluice', 'llmsim', 'model']) {
  if (!args[k]) throw new Error(`clients.mjs: missing "${k}" in the JSON argument`);
}
const { model } = args;
const messages = [{ role: 'user', content: 'hello there' }];
const prompt = 'hello there';

// The final object's fields that a translation must keep.
const doneFields = (r) => ({
  done: r.done,
  done_reason: r.done_reason,
  eval_count: r.eval_count,
  prompt_eval_count: r.prompt_eval_count,
});

// Four calls with one ollama client; `part` is what a line carries.
async function ollamaCalls(host) {
  const c = new Ollama({ host });
  const out = {};

  {
    const tokens = [];
    const roles = new Set();
    let last = null;
    let lines = 0;
    for await (const part of await c.chat({ model, messages, stream: true })) {
      lines++;
      roles.add(part.message?.role);
      if (!part.done) tokens.push(part.message.content);
      else last = part;
    }
    out.chat_stream = { tokens, roles: [...roles], lines, model: last?.model,
                        final_content: last?.message?.content, ...doneFields(last ?? {}) };
  }
  {
    const r = await c.chat({ model, messages, stream: false });
    out.chat = { content: r.message.content, role: r.message.role, model: r.model,
                 ...doneFields(r) };
  }
  {
    const tokens = [];
    let last = null;
    let lines = 0;
    for await (const part of await c.generate({ model, prompt, stream: true })) {
      lines++;
      if (!part.done) tokens.push(part.response);
      else last = part;
    }
    out.generate_stream = { tokens, lines, model: last?.model, final_response: last?.response,
                            context: last?.context, ...doneFields(last ?? {}) };
  }
  {
    const r = await c.generate({ model, prompt, stream: false });
    out.generate = { response: r.response, model: r.model, context: r.context,
                     ...doneFields(r) };
  }
  return out;
}

// OpenAI chunks: content deltas in order, roles seen, finish reasons, usage.
async function openaiChatStream(c, extra) {
  const stream = await c.chat.completions.create({ model, messages, stream: true, ...extra });
  const tokens = [];
  const roles = [];
  const finish = [];
  let usage = null;
  let chunks = 0;
  const ids = new Set();
  const objects = new Set();
  for await (const ch of stream) {
    chunks++;
    ids.add(ch.id);
    objects.add(ch.object);
    if (ch.usage) usage = ch.usage;
    for (const choice of ch.choices ?? []) {
      if (choice.delta?.role) roles.push(choice.delta.role);
      if (choice.delta?.content) tokens.push(choice.delta.content);
      if (choice.finish_reason) finish.push(choice.finish_reason);
    }
  }
  return { tokens, roles, finish_reasons: finish, usage, chunks, ids: ids.size,
           objects: [...objects] };
}

async function openaiCalls(sluice) {
  const c = new OpenAI({ baseURL: sluice + '/v1', apiKey: 'sk-test', maxRetries: 0,
                         timeout: 30000 });
  const out = {};
  out.chat_stream = await openaiChatStream(c, { stream_options: { include_usage: true } });
  {
    const r = await c.chat.completions.create({ model, messages, stream: false });
    out.chat = {
      object: r.object,
      model: r.model,
      choices: r.choices.length,
      role: r.choices[0]?.message?.role,
      content: r.choices[0]?.message?.content,
      finish_reason: r.choices[0]?.finish_reason,
      usage: r.usage ?? null,
    };
  }
  {
    const stream = await c.completions.create({ model, prompt, stream: true,
                                                stream_options: { include_usage: true } });
    const tokens = [];
    const finish = [];
    let usage = null;
    const objects = new Set();
    for await (const ch of stream) {
      objects.add(ch.object);
      if (ch.usage) usage = ch.usage;
      for (const choice of ch.choices ?? []) {
        if (choice.text) tokens.push(choice.text);
        if (choice.finish_reason) finish.push(choice.finish_reason);
      }
    }
    out.completions_stream = { tokens, finish_reasons: finish, usage, objects: [...objects] };
  }
  {
    const r = await c.completions.create({ model, prompt, stream: false });
    out.completions = {
      object: r.object,
      model: r.model,
      choices: r.choices.length,
      text: r.choices[0]?.text,
      finish_reason: r.choices[0]?.finish_reason,
      usage: r.usage ?? null,
    };
  }
  out.chat_stream_max3 = await openaiChatStream(c, { max_tokens: 3 });
  return out;
}

const result = {
  ollama_direct: await ollamaCalls(args.llmsim),
  ollama_sluice: await ollamaCalls(args.sluice),
  openai: await openaiCalls(args.sluice),
};
process.stdout.write(JSON.stringify(result) + '\n');
