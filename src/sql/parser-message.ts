// The parser's error message made safe to show and record: PostgreSQL echoes the offending token, which may be a literal (PHI).

/** An identifier/keyword or a short operator is echoed in errors; anything else may be a literal. */
function safeToEcho(near: string): boolean {
  return /^[A-Za-z_\u0080-\uFFFF][A-Za-z0-9_$\u0080-\uFFFF]{0,62}$/.test(near) || /^[^\w\s'"$\\]{1,3}$/.test(near);
}

/** The parser's message without any literal from the statement (PostgreSQL echoes the offending token). */
export function sanitizeParserMessage(message: string): string {
  const near = /^([\s\S]*?) at or near "([\s\S]*)"$/.exec(message);
  let out: string;
  if (near !== null) {
    const [, head = '', token = ''] = near;
    out = safeToEcho(token) ? `${head} at or near "${token}"` : `${head} at or near a literal (not shown)`;
  } else {
    out = message.replace(/"[^"]*"?|'[^']*'?/g, '(not shown)');
  }
  return out.length > 300 ? `${out.slice(0, 300)}...` : out;
}
