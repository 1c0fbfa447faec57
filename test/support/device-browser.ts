// Does over plain HTTP what a person in a text browser (w3m, lynx) does on the dev issuer's device
// verification pages: open the link, type or keep the code, press the buttons, pick an identity,
// following redirects and keeping cookies. It reads forms the way a text browser does: only the
// controls inside a <form> element count (no `form=` attribute, no JavaScript), and a pressed
// button adds its own name=value.

interface Control {
  tag: 'input' | 'button';
  type: string;
  name?: string;
  value: string;
  /** A button's visible text. */
  label: string;
}

export interface Form {
  action: string;
  method: string;
  controls: Control[];
}

export interface Page {
  url: string;
  status: number;
  html: string;
}

const attr = (attrs: string, name: string): string | undefined =>
  new RegExp(`\\b${name}="([^"]*)"`, 'i').exec(attrs)?.[1]?.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

/** The text a page shows, roughly as a text browser renders it (for error messages). */
export function pageText(html: string): string {
  return html.replace(/<style[\s\S]*?<\/style>/gi, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
}

export function parseForms(html: string, base: string): Form[] {
  const forms: Form[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = m[1] ?? '';
    const controls: Control[] = [];
    for (const c of (m[2] ?? '').matchAll(/<input\b([^>]*?)\/?>|<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      if (c[1] !== undefined) {
        controls.push({ tag: 'input', type: (attr(c[1], 'type') ?? 'text').toLowerCase(), name: attr(c[1], 'name'), value: attr(c[1], 'value') ?? '', label: '' });
      } else {
        const a = c[2] ?? '';
        controls.push({ tag: 'button', type: (attr(a, 'type') ?? 'submit').toLowerCase(), name: attr(a, 'name'), value: attr(a, 'value') ?? '', label: pageText(c[3] ?? '') });
      }
    }
    forms.push({ action: new URL(attr(attrs, 'action') ?? base, base).toString(), method: (attr(attrs, 'method') ?? 'get').toLowerCase(), controls });
  }
  return forms;
}

export class TextBrowser {
  private readonly cookies = new Map<string, string>();

  async get(url: string): Promise<Page> {
    return this.request(url, 'GET');
  }

  /**
   * Presses the submit button `press` picks in the first form that has one, after typing `typed`
   * into its text inputs. Throws with the page's text when there is no such button.
   */
  async submit(page: Page, press: (b: Control) => boolean, typed: Record<string, string> = {}): Promise<Page> {
    for (const form of parseForms(page.html, page.url)) {
      const button = form.controls.find((c) => c.type === 'submit' && press(c));
      if (!button) continue;
      const fields = new URLSearchParams();
      for (const c of form.controls) {
        if (c.tag !== 'input' || !c.name || c.type === 'submit') continue;
        fields.append(c.name, c.type === 'text' && c.name in typed ? typed[c.name]! : c.value);
      }
      if (button.name) fields.append(button.name, button.value);
      return form.method === 'post'
        ? this.request(form.action, 'POST', fields)
        : this.request(`${form.action}${form.action.includes('?') ? '&' : '?'}${fields}`, 'GET');
    }
    const buttons = parseForms(page.html, page.url).flatMap((f) => f.controls.filter((c) => c.tag === 'button').map((c) => `[${c.label}]`));
    throw new Error(`no such button inside a form at ${page.url} (${page.status}; buttons in forms: ${buttons.join(' ') || 'none'}): ${pageText(page.html).slice(0, 300)}`);
  }

  private async request(url: string, method: string, body?: URLSearchParams): Promise<Page> {
    let current = url;
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

const labelled = (re: RegExp) => (b: Control): boolean => re.test(b.label);

/**
 * Completes the verification for `identity` (one of the dev identities), or presses "No, abort"
 * when identity is 'abort'. With `userCode`, starts from the plain verification URI and types the
 * code, as someone reading it off the terminal would. Throws with the page text when a step fails.
 */
export async function driveDeviceVerification(verificationUri: string, identity: string, userCode?: string): Promise<void> {
  const b = new TextBrowser();
  let page = await b.get(verificationUri);
  page = await b.submit(page, labelled(/^Continue$/), userCode === undefined ? {} : { user_code: userCode });
  page = await b.submit(page, labelled(identity === 'abort' ? /^No, abort$/ : /^Yes, continue$/));
  if (identity === 'abort') {
    if (!/abort/i.test(pageText(page.html))) throw new Error(`aborting did not say so at ${page.url}: ${pageText(page.html).slice(0, 300)}`);
    return;
  }
  page = await b.submit(page, (c) => c.name === 'identity' && c.value === identity);
  if (!/signed in/i.test(pageText(page.html))) throw new Error(`sign-in did not finish at ${page.url} (${page.status}): ${pageText(page.html).slice(0, 400)}`);
}
