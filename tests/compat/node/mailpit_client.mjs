// Drives the npm `mailpit-api` client for tests/compat/test_mailpit_node.py.
//   node mailpit_client.mjs <baseURL> [<username> <password>]   (Basic auth when given)
// Reads one JSON command per line on stdin, {"method": "listMessages", "args": [...]},
// calls that client method and writes one JSON line: {"ok": true, "result": ...}
// (a Blob becomes {"type", "base64"}) or {"ok": false, "error": "<message>"}.
import { createInterface } from "node:readline";
import { MailpitClient } from "mailpit-api";

const [baseURL, username, password] = process.argv.slice(2);
const client = new MailpitClient(
  baseURL,
  username === undefined ? undefined : { auth: { username, password } },
);

async function run(line) {
  const { method, args = [] } = JSON.parse(line);
  try {
    let result = await client[method](...args);
    if (result instanceof Blob) {
      const bytes = Buffer.from(await result.arrayBuffer());
      result = { type: result.type, base64: bytes.toString("base64") };
    }
    return { ok: true, result: result === undefined ? null : result };
  } catch (error) {
    return { ok: false, error: String(error && error.message ? error.message : error) };
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim()) process.stdout.write(JSON.stringify(await run(line)) + "\n");
}
