// Does over HTTP what a person's browser does on the dev issuer's device verification pages:
// open the link, confirm the code, pick an identity (or abort), following redirects with cookies.

interface Form {
  action: string;
  fields: Record<string, string>;
}

class Browser {
  private readonly cookies = new Map<string, string>();

  async request(url: string, init: { method?: string; body?: URLSearchParams } = {}): Promise<{ url: string; status: number; html: string }> {
    let current = url;
    let method = init.method ?? 'GET';
    let body: URLSearchParams | undefined = init.body;
    for (let hop = 0; hop < 20; hop++) {
      const headers: Record<string, string> = {};
      if (this.cookies.size > 0) headers['cookie'] = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
      const res = await fetch(current, { method, headers, body, redirect: 'manual' });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair!.indexOf('=');
        const name = pair!.slice(0, eq).trim();
        const value = pair!.slice(eq + 1).trim();
        if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') this.cookies.delete(name);
        else this.cookies.set(name, value);
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current).toString();
        method = 'GET';
        body = undefined;
        await res.arrayBuffer();
        continue;
      }
      return { url: current, status: res.status, html: await res.text() };
    }
    throw new Error(`too many redirects from ${url}`);
  }
}

function parseForms(html: string, base: string): Form[] {
  const forms: Form[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = m[1] ?? '';
    const action = /action="([^"]*)"/i.exec(attrs)?.[1] ?? base;
    const fields: Record<string, string> = {};
    for (const input of (m[2] ?? '').matchAll(/<input\b([^>]*?)\/?>/gi)) {
      const name = /name="([^"]*)"/i.exec(input[1] ?? '')?.[1];
      const value = /value="([^"]*)"/i.exec(input[1] ?? '')?.[1] ?? '';
      if (name) fields[name] = value.replace(/&amp;/g, '&');
    }
    forms.push({ action: new URL(action.replace(/&amp;/g, '&'), base).toString(), fields });
  }
  return forms;
}

/**
 * Completes the verification for `identity` (one of the dev identities), or presses "abort"
 * when identity is 'abort'. Throws with the page text when a step does not look as expected.
 */
export async function driveDeviceVerification(verificationUriComplete: string, identity: string): Promise<void> {
  const b = new Browser();
  // 1. the code page (code prefilled by the complete URI), then the confirmation page
  let page = await b.request(verificationUriComplete);
  for (let step = 0; step < 3; step++) {
    const form = parseForms(page.html, page.url)[0];
    if (!form || !('user_code' in form.fields || /name="user_code"/.test(page.html))) break;
    const fields = new URLSearchParams(form.fields);
    if (!('user_code' in form.fields)) {
      fields.set('user_code', new URL(verificationUriComplete).searchParams.get('user_code') ?? '');
    }
    const confirming = 'confirm' in form.fields;
    if (confirming && identity === 'abort') fields.set('abort', 'yes');
    page = await b.request(form.action, { method: 'POST', body: fields });
    if (confirming) break;
  }
  if (identity === 'abort') return;
  // 2. the identity picker: one button per identity
  const picker = parseForms(page.html, page.url).find((f) => f.action.includes('/login'));
  if (!picker) throw new Error(`no identity picker at ${page.url} (${page.status}): ${page.html.slice(0, 300)}`);
  page = await b.request(picker.action, { method: 'POST', body: new URLSearchParams({ ...picker.fields, identity }) });
  if (!/signed in/i.test(page.html)) throw new Error(`sign-in did not finish at ${page.url} (${page.status}): ${page.html.slice(0, 400)}`);
}
