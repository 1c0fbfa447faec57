// Opens a URL in the user's browser when there is one; never fails the login when it cannot.
import { spawn } from 'node:child_process';

/** Whether a browser could plausibly be shown: a desktop OS, or a Linux/BSD display. */
export function canOpenBrowser(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): boolean {
  if (env['BROWSER']) return true;
  if (platform === 'darwin' || platform === 'win32') return true;
  return Boolean(env['DISPLAY'] || env['WAYLAND_DISPLAY']);
}

/** Fire and forget: a missing opener or a crashing browser only means the user copies the URL. */
export function openBrowser(url: string, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): void {
  const browser = env['BROWSER'];
  const [cmd, args] = browser
    ? [browser, [url]]
    : platform === 'darwin'
      ? ['open', [url]]
      : platform === 'win32'
        ? ['rundll32', ['url.dll,FileProtocolHandler', url]]
        : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // the URL is on screen already
  }
}
