// The approvals HTTP/WebSocket contract shared by the gateway and the CLI: paths, the JSON shape of a
// request as a viewer sees it, stream messages and error bodies.
import type { ApprovalScope } from './types.js';
import type { ApprovalStatus } from './store.js';

export const APPROVALS_PATH = '/v1/approvals';
export const APPROVALS_STREAM_PATH = '/v1/approvals/stream';

export interface ApprovalView {
  id: string;
  status: ApprovalStatus;
  kind: 'statement' | 'access';
  requester: { name: string; kind: 'human' | 'service' | 'agent'; label?: string; subject: string; issuer: string };
  session_id: string;
  connection: string;
  /** Literals redacted by the gateway before the request was made. */
  statement: string;
  /** What scope `shape` would release: the statement with each literal shown as "any" (format.ts shapeOf). */
  shape: string;
  rule: string;
  /** Why the rule holds it (the rule's words). */
  reason: string;
  tables: string[];
  approvers: string[];
  created_at: string;
  expires_at: string;
  decision: null | {
    approved: boolean;
    cause?: 'denied' | 'timeout' | 'cancelled' | 'withdrawn';
    approver?: string;
    reason?: string;
    scope?: ApprovalScope;
    decided_at: string;
  };
  /** Whether the viewer may approve or deny it now. */
  can_decide: boolean;
  /** Whether the viewer is the requester. */
  own: boolean;
}

export interface ApprovalListResponse {
  approvals: ApprovalView[];
  /** The server's clock, so clients show time left without trusting their own. */
  server_time: string;
  /** Who asked, as the gateway sees them (so an empty list can say why). */
  viewer?: { name: string; groups: string[] };
  /** The groups whose members may decide requests under the policy in force. */
  approver_groups?: string[];
}

export interface DecisionBody {
  reason?: string;
  scope?: ApprovalScope;
}

export type StreamMessage =
  | { type: 'snapshot'; approvals: ApprovalView[]; server_time: string }
  | { type: 'requested' | 'decided' | 'expired' | 'withdrawn'; approval: ApprovalView; server_time: string };

export type ApiErrorCode =
  | 'not_found' | 'already_decided' | 'not_an_approver' | 'self_approval' | 'unowned_service' | 'reason_required'
  | 'bad_request' | 'method_not_allowed' | 'unauthenticated' | 'unavailable';

export interface ApiError {
  error: ApiErrorCode;
  message: string;
}

export function approvalPath(id: string, action?: 'approve' | 'deny'): string {
  return `${APPROVALS_PATH}/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;
}
