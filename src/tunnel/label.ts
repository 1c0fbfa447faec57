// Session labels (`phigate exec --name`): free text the requester chooses, so the gateway normalises
// it once at the door and every view shows it quoted after the session's kind, never as a name.

/** Longest label kept, in characters; longer ones are cut. */
export const MAX_LABEL_CHARS = 64;

/**
 * The label as the gateway keeps it: control and format characters (bidi overrides, zero-width
 * joiners) removed, whitespace runs made one space, trimmed, at most MAX_LABEL_CHARS characters.
 * Undefined when nothing is left.
 */
export function normalizeLabel(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const clean = raw.normalize('NFC').replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/gu, ' ').replace(/\s+/g, ' ').trim();
  const cut = [...clean].slice(0, MAX_LABEL_CHARS).join('').trim();
  return cut === '' ? undefined : cut;
}

/** `"claude"`: how a label reads wherever it is shown (after `agent`, next to an identity): quoted, escaped. */
export function showLabel(label: string): string {
  return JSON.stringify(label);
}
