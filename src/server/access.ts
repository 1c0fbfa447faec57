// Connection-level access decision: may this identity open a stream to this connection at all?
// Pure; statement-level decisions belong to the policy engine.
import type { ConnectionPolicy } from '../policy/file.js';

export type AccessDecision = { allowed: true } | { allowed: false; reason: string };

export function decideConnectionAccess(groups: readonly string[], connection: ConnectionPolicy): AccessDecision {
  if (connection.allowGroups.length === 0) {
    return { allowed: false, reason: `connection "${connection.name}" allows no groups (allow_groups is empty)` };
  }
  if (connection.allowGroups.some((g) => groups.includes(g))) return { allowed: true };
  return {
    allowed: false,
    reason: `not a member of any group allowed on "${connection.name}" (allowed: ${connection.allowGroups.join(', ')})`,
  };
}
