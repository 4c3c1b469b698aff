// Malformed push-stream messages over real sockets, both directions: the
// receiving side closes that one connection with an error naming the field
// and the value, logs it, and goes on serving (or reconnecting).
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { StreamClient } from '../../src/stream/client.js';
import { encode, MessageReader } from '../../src/stream/protocol.js';
import { until } from '../../src/sys/until.js';
import { type StreamFixture, startStreamFixture } from '../support/stream.js';

const TOKEN = 'malformed-test-admin-token-0123456789';

describe('push stream server: malformed agent messages', () => {
  let fx: StreamFixture;
  let port: number;
  const logged: { message: string; peer: string }[] = [];
  before(async () => {
    fx = await startStreamFixture({ token: TOKEN, hosts: ['h1'], stream: { onError: (e, peer) => logged.push({ message: e.message, peer }) } });
    port = fx.port;
  });
  after(async () => {
    await fx?.close();
  });

  /** Sends `frames` (a hello first unless told otherwise) and collects what the server says until it closes. */
  async function exchange(frames: Buffer[]): Promise<{ t: string; code?: string; message?: string }[]> {
    const sock = connect(port, '127.0.0.1');
    const reader = new MessageReader();
    const got: { t: string; code?: string; message?: string }[] = [];
    sock.on('data', (d) => {
      for (const m of reader.push(d) as { t: string; version?: number }[]) {
        got.push(m);
        // Once the snapshot is in, the malformed part goes.
        if (m.t === 'snapshot.end') for (const f of frames.slice(1)) sock.write(f);
      }
    });
    sock.on('error', () => undefined);
    sock.on('connect', () => sock.write(frames[0] as Buffer));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`not closed; got ${JSON.stringify(got.map((m) => m.t))}`)), 5000);
      sock.on('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
    return got;
  }

  const hello = encode({ t: 'hello', v: 1, host: 'h1', token: TOKEN, version: 0, vnis: [] });
  const raw = (json: string) => {
    const body = Buffer.from(json);
    const b = Buffer.alloc(4 + body.length);
    b.writeUInt32BE(body.length, 0);
    body.copy(b, 4);
    return b;
  };

  for (const [what, frames, field, value] of [
    ['an ack whose version is not a number', [hello, raw('{"t":"ack","version":"seven"}')], 'ack.version', '"seven"'],
    ['a routing report that is not an object', [hello, raw('{"t":"routing","routing":[1]}')], 'routing.routing', '[1]'],
    ['a message that is not an object', [hello, raw('42')], 'message', '42'],
    ['a hello without its token', [raw('{"t":"hello","v":1,"host":"h1","version":0,"vnis":[]}')], 'hello.token', '(missing)'],
  ] as const) {
    test(`${what}: an error naming ${field} and ${value}, logged, and that connection closed`, async () => {
      const before = logged.length;
      const got = await exchange([...frames]);
      const err = got.at(-1);
      assert.equal(err?.t, 'error');
      assert.equal(err?.code, 'E_INVALID_ARG');
      assert.ok(err?.message?.startsWith(`invalid ${field} ${value}: `), err?.message);
      assert.equal(logged.length, before + 1);
      assert.equal(logged.at(-1)?.message, err?.message);
      assert.match(logged.at(-1)?.peer ?? '', /^127\.0\.0\.1:\d+$/);
    });
  }

  test('a frame that is not JSON is logged and closes that connection; the server serves the next agent', async () => {
    const before = logged.length;
    await exchange([hello, raw('{"t":')]);
    assert.match(logged.at(-1)?.message ?? '', /^frame of 5 bytes is not JSON/);
    assert.equal(logged.length, before + 1);
    const got = await exchange([hello, raw('{"t":"ack","version":-1}')]);
    assert.ok(
      got.some((m) => m.t === 'snapshot.end'),
      'a new agent still gets its snapshot',
    );
  });
});

describe('push stream client: malformed server messages', () => {
  const socks: Socket[] = [];
  const server = createServer((sock) => {
    socks.push(sock);
    sock.on('error', () => undefined);
    const n = socks.length;
    const welcome = encode({ t: 'welcome', v: 1, hostId: 'h1', mode: 'deltas', head: 2 });
    const delta = (version: number, mac: unknown) =>
      Buffer.from(
        encode({
          t: 'delta',
          version,
          changes: [
            {
              kind: 'port.created',
              version,
              at: 'x',
              port: {
                portId: 'p1',
                instanceId: 'i1',
                tenantId: 't',
                networkId: 'n',
                networkKind: 'overlay',
                vni: 7,
                mac: mac as string,
                ipv4: null,
                ipv6: null,
                hostId: 'h2',
                underlayIp: '192.0.2.2',
              },
            },
          ],
          vnis: [7],
        }),
      );
    // The first connection: a good delta, a type from the future (ignored), then a port whose mac is a number.
    if (n === 1) sock.write(Buffer.concat([welcome, delta(1, '02:00:00:00:00:01'), encode({ t: 'ping' }), raw('{"t":"future"}'), delta(2, 5)]));
    else sock.write(Buffer.concat([welcome, delta(2, '02:00:00:00:00:02')]));
  });
  const raw = (json: string) => {
    const body = Buffer.from(json);
    const b = Buffer.alloc(4 + body.length);
    b.writeUInt32BE(body.length, 0);
    body.copy(b, 4);
    return b;
  };
  let client: StreamClient | null = null;
  after(async () => {
    client?.stop();
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('a bad field closes that connection with an error naming it; what came before is applied and acked; the next connection resumes', async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const errors: Error[] = [];
    const applied: number[] = [];
    client = new StreamClient({
      host: '127.0.0.1',
      port,
      hostRef: 'h1',
      token: 't',
      vnis: [7],
      handler: { snapshot: () => undefined, delta: (v) => void applied.push(v) },
      onError: (e) => errors.push(e),
    });
    client.start();
    const c = client;
    await until('resumed on a second connection', () => c.version === 2);
    assert.deepEqual(applied, [1, 2], 'the malformed delta 2 was never handed over; the good one of the next connection was');
    assert.equal(socks.length, 2);
    const e = errors.find((x) => x.message.includes('mac')) as Error & { code?: string; field?: string };
    assert.ok(e, `an error names the field: ${errors.map((x) => x.message)}`);
    assert.equal(e.code, 'E_INVALID_ARG');
    assert.equal(e.field, 'delta.changes[0].port.mac');
    assert.equal(e.message, 'invalid delta.changes[0].port.mac 5: must be a string');
  });
});
