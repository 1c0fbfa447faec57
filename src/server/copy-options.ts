// What a COPY ... TO STDOUT statement asked for (format, delimiter, NULL marker, quoting, header),
// read from its parse tree, so the masking layer splits each CopyData row exactly as the server
// wrote it.
import { parseTree } from '../policy/classify/parser.js';
import type { CopyOptions } from '../masking/index.js';

export interface CopyRequest {
  format: 'text' | 'csv' | 'binary';
  header: boolean;
  options: CopyOptions;
}

/** The COPY options of statement `index` of `sql`; undefined when it is not a COPY or cannot be parsed. */
export function copyRequest(sql: string, index: number): CopyRequest | undefined {
  const parsed = parseTree(sql);
  if (!parsed.ok) return undefined;
  const stmts = (parsed.value as { stmts?: { stmt?: { CopyStmt?: { options?: unknown[] } } }[] }).stmts ?? [];
  const copy = stmts[index]?.stmt?.CopyStmt;
  if (!copy) return undefined;
  const req: CopyRequest = { format: 'text', header: false, options: {} };
  for (const o of copy.options ?? []) {
    const d = (o as { DefElem?: { defname?: string; arg?: { String?: { sval?: string }; Boolean?: { boolval?: boolean }; Integer?: { ival?: number } } } }).DefElem;
    if (!d?.defname) continue;
    const s = d.arg?.String?.sval;
    const b = d.arg?.Boolean?.boolval ?? (d.arg?.Integer?.ival !== undefined ? d.arg.Integer.ival !== 0 : undefined);
    switch (d.defname) {
      case 'format':
        if (s === 'csv' || s === 'binary' || s === 'text') req.format = s;
        break;
      case 'header':
        // HEADER true|false|on|off|match (MATCH only applies to COPY FROM)
        req.header = b ?? (s !== undefined && !/^(false|off|0)$/i.test(s));
        break;
      case 'delimiter':
        if (s !== undefined) req.options.delimiter = s;
        break;
      case 'null':
        if (s !== undefined) req.options.null = s;
        break;
      case 'quote':
        if (s !== undefined) req.options.quote = s;
        break;
      case 'escape':
        if (s !== undefined) req.options.escape = s;
        break;
    }
  }
  return req;
}
