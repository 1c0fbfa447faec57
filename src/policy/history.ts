// Which policy versions were in force when: an append-only JSONL file under the data directory, plus
// the text of every version, so an auditor can see exactly what any version allowed.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PolicyActivation {
  version: string;
  activated_at: string;
  /** 'startup', 'sighup' or 'api'. */
  source: string;
  /** Who activated it (an admin's name for 'api'). */
  by?: string;
  file?: string;
}

export class PolicyHistory {
  private readonly file: string;
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'policies');
    this.file = join(dataDir, 'policy-history.jsonl');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  record(entry: PolicyActivation, text: string): void {
    const textFile = join(this.dir, `${entry.version.replace(/^sha256:/, '')}.yaml`);
    if (!existsSync(textFile)) writeFileSync(textFile, text, { mode: 0o600 });
    appendFileSync(this.file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
  }

  /** Newest first. A torn last line (crash while appending) is skipped. */
  list(): PolicyActivation[] {
    if (!existsSync(this.file)) return [];
    const out: PolicyActivation[] = [];
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as PolicyActivation);
      } catch {
        // torn write: ignore
      }
    }
    return out.reverse();
  }

  text(version: string): string | undefined {
    const f = join(this.dir, `${version.replace(/^sha256:/, '')}.yaml`);
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  }
}
