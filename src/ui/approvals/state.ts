// The approvals TUI's model, kept out of the components so it can be reasoned about (and tested)
// alone: which requests are waiting, the server's clock, and the last thing worth telling the user.
import type { ApprovalView, StreamMessage } from '../../approvals/api.js';
import { statusText } from '../../approvals/format.js';

export interface Flash {
  text: string;
  tone: 'ok' | 'error' | 'info';
}

export interface ListState {
  /** Pending requests by id. */
  items: ReadonlyMap<string, ApprovalView>;
  /** server clock - local clock, so time left is the server's. */
  skewMs: number;
  flash?: Flash;
}

export type ListAction =
  | { type: 'stream'; msg: StreamMessage; localNow: number }
  | { type: 'decided'; approval: ApprovalView }
  | { type: 'flash'; flash: Flash | undefined };

export const initialListState: ListState = { items: new Map(), skewMs: 0 };

export function listReducer(state: ListState, action: ListAction): ListState {
  switch (action.type) {
    case 'flash':
      return { ...state, flash: action.flash };
    case 'decided': {
      const items = new Map(state.items);
      items.delete(action.approval.id);
      return { ...state, items };
    }
    case 'stream': {
      const m = action.msg;
      const skewMs = Number.isFinite(Date.parse(m.server_time)) ? Date.parse(m.server_time) - action.localNow : state.skewMs;
      if (m.type === 'snapshot') {
        return { ...state, skewMs, items: new Map(m.approvals.filter((a) => a.status === 'pending').map((a) => [a.id, a])) };
      }
      const items = new Map(state.items);
      const a = m.approval;
      if (a.status === 'pending') {
        items.set(a.id, a);
        return { ...state, skewMs, items };
      }
      // Someone (maybe us, maybe another approver, maybe the clock) settled it.
      const had = items.delete(a.id);
      const flash: Flash | undefined = had ? { text: `${a.id} ${statusText(a)}`, tone: a.status === 'approved' ? 'ok' : 'info' } : state.flash;
      return { ...state, skewMs, items, ...(flash ? { flash } : {}) };
    }
  }
}

/** Most urgent first: the one that times out soonest. */
export function ordered(items: ReadonlyMap<string, ApprovalView>): ApprovalView[] {
  return [...items.values()].sort((x, y) => Date.parse(x.expires_at) - Date.parse(y.expires_at) || x.id.localeCompare(y.id));
}
