// A minimal AGP agent written with @grpc/grpc-js and nothing of agw's but
// the .proto file: it proves an agent in another language needs only the
// standard gRPC stubs. Driven by the Go test over stdin/stdout, JSON lines:
//   stdin:  {"op":"subscribe","name":"..."} | {"op":"publish","to":"...","payload":"...","fanout":0} | {"op":"quit"}
//   stdout: {"event":"ready"} | {"event":"ack",...} | {"event":"error",...} | {"event":"delivery",...} | {"event":"end",...}
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const protoDir = path.join(here, '..', '..', 'api');
const def = protoLoader.loadSync('agp/v1/agp.proto', {
  includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
});
const agp = grpc.loadPackageDefinition(def).agp.v1;

const addr = process.argv[2];
const source = process.argv[3] || 'example/node/agent/1';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const client = new agp.Gateway(addr, grpc.credentials.createInsecure());
const stream = client.Connect();
let nextId = 1;

stream.on('data', (resp) => {
  switch (resp.kind) {
    case 'ack':
      out({ event: 'ack', request_id: Number(resp.ack.request_id), message_id: resp.ack.message_id,
        local: resp.ack.local_deliveries, remote: resp.ack.remote_deliveries });
      break;
    case 'error':
      out({ event: 'error', request_id: Number(resp.error.request_id), code: resp.error.code, message: resp.error.message });
      break;
    case 'delivery': {
      const m = resp.delivery.message;
      out({ event: 'delivery', source: m.header.source, destination: m.header.destination,
        payload: Buffer.from(m.payload).toString('utf8'), content_type: m.header.content_type });
      break;
    }
  }
});
stream.on('error', (err) => out({ event: 'end', code: err.code, message: err.details }));
stream.on('end', () => { out({ event: 'end', code: 0 }); process.exit(0); });

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const cmd = JSON.parse(line);
  const id = nextId++;
  switch (cmd.op) {
    case 'subscribe':
      stream.write({ request_id: id, subscribe: { name: cmd.name } });
      break;
    case 'unsubscribe':
      stream.write({ request_id: id, unsubscribe: { name: cmd.name } });
      break;
    case 'publish':
      stream.write({ request_id: id, publish: { message: {
        header: { source, destination: cmd.to, fanout: cmd.fanout || 0, content_type: 'text/plain', metadata: {} },
        payload: Buffer.from(cmd.payload, 'utf8'),
      } } });
      break;
    case 'quit':
      stream.end();
      client.close();
      process.exit(0);
  }
});
rl.on('close', () => { stream.end(); client.close(); process.exit(0); });
out({ event: 'ready' });
