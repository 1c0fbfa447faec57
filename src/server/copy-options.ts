// What a COPY ... TO STDOUT statement asked for (format, delimiter, NULL marker, quoting, header),
// read from its parse tree, so the masking layer splits each CopyData row exactly as the server
// wrote it.
import type { Node } from '@pgsql/types';
import { parseTree } from '../sql/parser.js';
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
  const stmt = parsed.value.stmts?.[index]?.stmt;
  const copy = stmt !== undefined && 'CopyStmt' in stmt ? stmt.CopyStmt : undefined;
  if (!copy) return undefined;
  const req: CopyRequest = { format: 'text', header: false, options: {} };
  for (const o of copy.options ?? []) {
    const d = 'DefElem' in o ? o.DefElem : undefined;
    if (!d?.defname) continue;
    const arg: Node | undefined = d.arg;
    const s = arg !== undefined && 'String' in arg ? arg.String.sval : undefined;
    const ival = arg !== undefined && 'Integer' in arg ? arg.Integer.ival : undefined;
    const b = (arg !== undefined && 'Boolean' in arg ? arg.Boolean.boolval : undefined) ?? (ival !== undefined ? ival !== 0 : undefined);
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
