// The approvals webhook against a real local HTTP receiver: JSON and Slack bodies, retries after a
// server error, and a receiver that never answers must not slow the statement path down.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApprovalService } from '../../src/approvals/service.js';
import { ApprovalWebhook, type WebhookPayload } from '../../src/approvals/webhook.js';
import { heldDelete, memoryLogger, who } from './support.js';

const bob = who('bob', ['privacy-officers']);

interface Receiver {
  url: string;
  hits: { path: string; body: WebhookPayload; contentType: string | undefined }[];
  /** Resolves when `n` requests have arrived. */
  received(n: number): Promise<void>;
}

const receivers: Server[] = [];
afterEach(async () => {
  for (const s of receivers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function receiver(answer: (n: number, req: IncomingMessage, res: ServerResponse) => void): Promise<Receiver> {
  const hits: Receiver['hits'] = [];
  const waiting: { n: number; resolve: () => void }[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      hits.push({ path: req.url ?? '', body: JSON.parse(text) as WebhookPayload, contentType: req.headers['content-type'] });
      for (const w of waiting.filter((x) => hits.length >= x.n)) w.resolve();
      answer(hits.length, req, res);
    });
  });
  receivers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T000/B000/s3cr3t-path`;
  return {
    url,
    hits,
    received: (n) => new Promise((resolve) => (hits.length >= n ? resolve() : waiting.push({ n, resolve }))),
  };
}

const ok = (_n: number, _req: IncomingMessage, res: ServerResponse): void => void res.writeHead(200).end('ok');

describe('approval webhook', () => {
  it('POSTs JSON on request and on decision, without a text field', async () => {
    const r = await receiver(ok);
    const log = memoryLogger();
    const service = new ApprovalService({ log, webhook: { url: r.url, format: 'json' } });
    const h = service.request(heldDelete());
    await r.received(1);
    await service.decide(h.id, bob, { approve: false, reason: 'not during business hours' });
    await r.received(2);
    const [req, dec] = r.hits;
    expect(req?.contentType).toBe('application/json');
    expect(req?.path).toBe('/hooks/T000/B000/s3cr3t-path');
    expect(req?.body).toEqual({
      event: 'requested', id: h.id,
      requester: { name: 'alice', kind: 'agent', label: 'claude' },
      connection: 'ehr', statement: 'DELETE FROM patients WHERE id = $1', rule: 'phi-writes',
      tables: ['patients'], approvers: ['privacy-officers'], expires_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(dec?.body).toMatchObject({ event: 'decided', id: h.id, decision: 'denied', approver: 'bob', reason: 'not during business hours' });
    expect(dec?.body.text).toBeUndefined();
    service.close();
  });

  it('adds Slack-compatible text in slack format', async () => {
    const r = await receiver(ok);
    const service = new ApprovalService({ log: memoryLogger(), webhook: { url: r.url, format: 'slack' } });
    const h = service.request(heldDelete());
    await r.received(1);
    await service.decide(h.id, bob, { approve: true, scope: 'shape', reason: 'ticket 9' });
    await r.received(2);
    expect(r.hits[0]?.body.text).toBe(
      `:hourglass: alice (agent "claude") wants to run \`DELETE FROM patients WHERE id = $1\` on ehr (rule phi-writes). Approve: phigate approve ${h.id}`,
    );
    expect(r.hits[1]?.body.text).toMatch(new RegExp(`^:white_check_mark: bob approved ${h.id} for statements of this shape \\(any literals\\) for the rest of the session: alice \\(agent "claude"\\)`));
    expect(r.hits[1]?.body).toMatchObject({ decision: 'approved', scope: 'shape' });
    service.close();
  });

  it('keeps Slack markup out of the text: backticks and angle brackets in a statement cannot break it', async () => {
    const r = await receiver(ok);
    const service = new ApprovalService({ log: memoryLogger(), webhook: { url: r.url, format: 'slack' } });
    service.request(heldDelete({ statement: 'UPDATE "a`b" SET x = $1 WHERE y <> $2\n  AND z = $3' }));
    await r.received(1);
    expect(r.hits[0]?.body.text).toContain("`UPDATE \"a'b\" SET x = $1 WHERE y &lt;&gt; $2 AND z = $3`");
    service.close();
  });

  it('retries after a 500 and reports the delivery', async () => {
    const r = await receiver((n, _req, res) => void res.writeHead(n === 1 ? 500 : 200).end());
    const log = memoryLogger();
    // Production backoff is 1 s; a faster one keeps the test short.
    const hook = new ApprovalWebhook({ url: r.url, format: 'json', log, backoffMs: 20, retries: 3 });
    const service = new ApprovalService({ log, webhookNotifier: hook });
    const h = service.request(heldDelete());
    await r.received(2);
    expect(r.hits.map((x) => x.body.id)).toEqual([h.id, h.id]);
    await expect.poll(() => log.lines.find((l) => l.msg === 'approval webhook delivered after retry')?.fields).toMatchObject({ attempts: 2 });
    service.close();
  });

  it('does not retry a 4xx and logs the failure without the secret path', async () => {
    const r = await receiver((_n, _req, res) => void res.writeHead(404).end());
    const log = memoryLogger();
    const hook = new ApprovalWebhook({ url: r.url, format: 'json', log, backoffMs: 5 });
    const service = new ApprovalService({ log, webhookNotifier: hook });
    service.request(heldDelete());
    await expect.poll(() => log.lines.some((l) => l.msg === 'approval webhook failed')).toBe(true);
    await new Promise((res) => setTimeout(res, 50));
    expect(r.hits).toHaveLength(1);
    expect(log.text()).toContain('HTTP 404');
    expect(log.text()).not.toContain('s3cr3t');
    expect(log.text()).not.toContain('DELETE');
    service.close();
  });

  it('never delays the statement path when the receiver hangs, and gives up on its own', async () => {
    const r = await receiver(() => {
      /* never answers */
    });
    const log = memoryLogger();
    const hook = new ApprovalWebhook({ url: r.url, format: 'slack', log, timeoutMs: 150, retries: 1, backoffMs: 10 });
    const service = new ApprovalService({ log, webhookNotifier: hook });
    const failures = (): number => log.lines.filter((l) => l.msg === 'approval webhook failed').length;
    const h = service.request(heldDelete());
    await r.received(1);
    await service.decide(h.id, bob, { approve: true, reason: 'ok' });
    const outcome = await h.outcome;
    expect(outcome).toMatchObject({ approved: true, approver: 'bob' });
    // Requested and decided while the receiver still hangs: neither waited for the webhook's
    // 150 ms timeout (no attempt has given up yet). Timings, not thresholds, belong to the bench.
    expect(failures()).toBe(0);
    await expect.poll(() => log.lines.filter((l) => l.msg === 'approval webhook failed').length, { timeout: 3_000 }).toBe(2);
    expect(log.lines.find((l) => l.msg === 'approval webhook failed')?.fields).toMatchObject({ error: 'no answer within 150 ms', attempts: 2 });
    service.close();
  });
});

describe('webhook on policy reload', () => {
  it('switches receivers, keeps an unchanged one, and stops when removed', async () => {
    const a = await receiver(ok);
    const b = await receiver(ok);
    const service = new ApprovalService({ log: memoryLogger(), webhook: { url: a.url, format: 'json' } });
    service.request(heldDelete());
    await a.received(1);
    service.setWebhook({ url: a.url, format: 'json' });
    service.request(heldDelete());
    await a.received(2);
    service.setWebhook({ url: b.url, format: 'slack' });
    service.request(heldDelete());
    await b.received(1);
    expect(b.hits[0]?.body.text).toMatch(/^:hourglass: /);
    service.setWebhook(undefined);
    service.request(heldDelete());
    await new Promise((r) => setTimeout(r, 50));
    expect([a.hits.length, b.hits.length]).toEqual([2, 1]);
    service.close();
  });
});
