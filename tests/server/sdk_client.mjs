// Drives bitnet-server with the official OpenAI SDK for Node. Run by
// test_sdk.py with BASE (server URL), KEY (its API key) and NODE_PATH-free
// module resolution from the directory the SDK was installed in.
import OpenAI from 'openai';

const base = process.env.BASE + '/v1';
const client = new OpenAI({ baseURL: base, apiKey: process.env.KEY, maxRetries: 0, timeout: 60000 });
let failures = 0;
function check(cond, what) {
  console.log((cond ? 'ok   ' : 'FAIL ') + what);
  if (!cond) failures++;
}

const models = await client.models.list();
check(models.data.length === 1 && typeof models.data[0].id === 'string', 'models.list');
const model = models.data[0].id;
check((await client.models.retrieve(model)).id === model, 'models.retrieve');

const chatReq = {
  model,
  messages: [{ role: 'system', content: 'you tell stories' }, { role: 'user', content: 'a story about a dog' }],
  max_tokens: 20, seed: 11, temperature: 0.8,
};
const chat = await client.chat.completions.create(chatReq);
const ctext = chat.choices[0].message.content;
check(chat.object === 'chat.completion' && typeof ctext === 'string' && ctext.length > 0, 'chat.completions.create');
check(chat.usage.completion_tokens > 0 && chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens,
  'chat usage');
check(['stop', 'length'].includes(chat.choices[0].finish_reason), 'chat finish_reason');

const stream = await client.chat.completions.create({ ...chatReq, stream: true, stream_options: { include_usage: true } });
let stext = '', finish = null, usage = null, chunks = 0;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    stext += c.delta?.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
}
check(stext === ctext && finish === chat.choices[0].finish_reason, 'chat stream: same text as without streaming');
check(chunks >= 2 && usage && usage.completion_tokens === chat.usage.completion_tokens, 'chat stream: chunks and usage');

const compReq = { model, prompt: 'once upon a time', max_tokens: 24, seed: 5 };
const comp = await client.completions.create(compReq);
check(comp.object === 'text_completion' && comp.choices[0].text.length > 0 && comp.choices[0].finish_reason === 'length',
  'completions.create');
let ctext2 = '';
for await (const chunk of await client.completions.create({ ...compReq, stream: true }))
  ctext2 += chunk.choices[0]?.text ?? '';
check(ctext2 === comp.choices[0].text, 'completions stream: same text');

const stopped = await client.completions.create({ ...compReq, stop: [comp.choices[0].text.slice(4, 7)] });
check(stopped.choices[0].finish_reason === 'stop' &&
      comp.choices[0].text.startsWith(stopped.choices[0].text), 'completions stop');

try {
  await client.chat.completions.create({ ...chatReq, temperature: 7 });
  check(false, 'bad temperature rejected');
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400 && typeof e.message === 'string' &&
        e.error?.type === 'invalid_request_error', 'bad temperature: BadRequestError 400');
}
try {
  await client.chat.completions.create({ model, messages: [] });
  check(false, 'empty messages rejected');
} catch (e) {
  check(e.status === 400, 'empty messages: 400');
}
try {
  await client.completions.create({ ...compReq, prompt: 'once upon a time '.repeat(300) });
  check(false, 'long prompt rejected');
} catch (e) {
  check(e.status === 400 && e.code === 'context_length_exceeded', 'prompt longer than the context: 400 context_length_exceeded');
}
const wrong = new OpenAI({ baseURL: base, apiKey: 'not-the-key', maxRetries: 0 });
try {
  await wrong.models.list();
  check(false, 'wrong key rejected');
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError && e.status === 401, 'wrong key: AuthenticationError 401');
}

// a client that aborts a stream: the server frees the slot
const ac = new AbortController();
const long = await client.completions.create({ model, prompt: 'the dog', max_tokens: 200, temperature: 0, stream: true },
  { signal: ac.signal });
try {
  for await (const chunk of long) { ac.abort(); }
} catch (e) { /* the abort ends the iteration */ }
let busy = -1;
for (let i = 0; i < 100 && busy !== 0; i++) {
  const m = await (await fetch(process.env.BASE + '/metrics',
    { headers: { Authorization: 'Bearer ' + process.env.KEY } })).text();
  busy = Number(/^bitnet_slots_busy (\d+)/m.exec(m)[1]);
  if (busy !== 0) await new Promise(r => setTimeout(r, 100));
}
check(busy === 0, 'aborted stream: slot free');
const after = await client.completions.create(compReq);
check(after.choices[0].text === comp.choices[0].text, 'served normally after the abort');

console.log(failures ? `${failures} failure(s)` : 'all passed');
process.exit(failures ? 1 : 0);
