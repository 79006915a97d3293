// An ordinary gRPC client written with @grpc/grpc-js that knows nothing of
// agw: it calls the sample Echo service at its sidecar's interception
// listener, naming the target agent by the channel's authority. One JSON
// line per step on stdout, then it exits:
//   {"step":"say","text":...,"from":...,"x_echo":...,"x_echo_trailer":...,"responder":...}
//   {"step":"count","items":[...],"from":[...]}
//   {"step":"fail","code":...,"details":...}
//   {"step":"done"}            (or {"step":"error",...} and exit code 1)
// Usage: node rpc_client.mjs <intercept-addr> <authority> <count-n>
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const def = protoLoader.loadSync('sample/v1/echo.proto', {
  includeDirs: [path.join(here, '..', '..', 'api')], keepCase: true, longs: Number, defaults: true,
});
const sample = grpc.loadPackageDefinition(def).sample.v1;

const [addr, authority, countN] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const client = new sample.Echo(addr, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });
const deadline = () => new Date(Date.now() + 10000);

function say(req, md) {
  return new Promise((resolve, reject) => {
    let headers = null;
    let trailers = null, result = null;
    // grpc-js calls back before it emits 'status' (the trailers): settle
    // on whichever comes last.
    const settle = () => { if (result && trailers) result(); };
    const call = client.Say(req, md, { deadline: deadline() }, (err, resp) => {
      if (err) { reject(err); return; }
      result = () => resolve({ resp, headers, trailers });
      settle();
    });
    call.on('metadata', (m) => { headers = m; });
    call.on('status', (s) => { trailers = s.metadata; settle(); });
  });
}

function count(n) {
  return new Promise((resolve, reject) => {
    const items = [], from = [];
    const call = client.Count({ n }, new grpc.Metadata(), { deadline: deadline() });
    call.on('data', (r) => { items.push(r.i); from.push(r.from); });
    call.on('error', reject);
    call.on('end', () => resolve({ items, from }));
  });
}

try {
  const md = new grpc.Metadata();
  md.set('x-echo', 'from-node');
  const r = await say({ text: 'hello from Node' }, md);
  out({ step: 'say', text: r.resp.text, from: r.resp.from,
    x_echo: r.headers?.get('x-echo')[0] ?? null,
    responder: r.headers?.get('agw-responder')[0] ?? null,
    x_echo_trailer: r.trailers?.get('x-echo-trailer')[0] ?? null });

  const c = await count(Number(countN));
  out({ step: 'count', items: c.items, from: c.from });

  try {
    await say({ text: 'please fail', fail_code: 9 }, new grpc.Metadata());
    out({ step: 'fail', code: 0 });
  } catch (err) {
    out({ step: 'fail', code: err.code, details: err.details,
      status_details: err.metadata?.get('grpc-status-details-bin').length ?? 0 });
  }
  out({ step: 'done' });
  client.close();
} catch (err) {
  out({ step: 'error', code: err.code, details: err.details ?? String(err) });
  client.close();
  process.exit(1);
}
