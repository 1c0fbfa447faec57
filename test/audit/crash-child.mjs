// Child process of the crash test: appends records in a loop (compiled build) and reports every
// group commit on stdout until it is killed with SIGKILL.
import { AuditLog } from '../../dist/src/audit/log.js';
import { loadOrCreateSigningKey } from '../../dist/src/audit/keys.js';
import { join } from 'node:path';

const dataDir = process.argv[2];
const log = AuditLog.open(join(dataDir, 'audit'), { signingKey: loadOrCreateSigningKey(dataDir), checkpointEvery: 500, syncIntervalMs: 10 });
let i = 0;
for (;;) {
  const batch = [];
  for (let k = 0; k < 50; k++, i++) {
    batch.push({
      type: 'statement', session: `s-${Math.floor(i / 100)}`, user: 'crash', connection: 'ehr',
      sql: `SELECT * FROM patients WHERE id = $1 /* ${i} */`, kinds: ['select'], tables: ['patients'],
      decision: 'allow', policy: 'sha256:00',
    });
  }
  // One record per statement, in the order the session would forward them.
  for (const e of batch) log.append(e);
  await log.synced();
  process.stdout.write(`synced ${log.head.seq}\n`);
}
