/**
 * What a user's browser does on the built-in authorization server, as an HTTP client with a
 * cookie jar: follow the authorization request, fill in the sign-in form (username, password
 * and the csrf hidden field), answer the consent form, and stop at the redirect that leaves
 * the authorization server (RFC 6749 §4.1.2 — the authorization response to the client).
 */
import { CookieJar } from "../fixtures/oidc-idp.js";

export interface Credentials {
  username: string;
  password: string;
}

export interface SignInOptions {
  user: Credentials;
  decision?: "allow" | "deny";
  jar?: CookieJar;
  /** Where the browser stops; by default at the first redirect away from the start URL's origin. */
  stopAt?: (url: URL) => boolean;
  maxHops?: number;
}

/** One browser request with the jar; no redirect following. */
export async function browse(jar: CookieJar, url: URL, form?: Record<string, string>): Promise<Response> {
  const headers = new Headers();
  const cookie = jar.header(url);
  if (cookie !== "") headers.set("cookie", cookie);
  if (form !== undefined) headers.set("content-type", "application/x-www-form-urlencoded");
  const res = await fetch(url, {
    method: form === undefined ? "GET" : "POST",
    headers,
    redirect: "manual",
    ...(form === undefined ? {} : { body: new URLSearchParams(form).toString() }),
  });
  jar.store(url, res);
  return res;
}

function formOf(html: string): { action: string; csrf: string } | null {
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  return action === undefined || csrf === undefined ? null : { action, csrf };
}

/**
 * Signs in and consents, and returns the authorization response URL (code, state, iss — or
 * error) without fetching it.
 */
export async function signInAndConsent(start: URL, opts: SignInOptions): Promise<URL> {
  const jar = opts.jar ?? new CookieJar();
  const stop = opts.stopAt ?? ((url: URL) => url.origin !== start.origin);
  let url = start;
  let form: Record<string, string> | undefined;
  for (let hop = 0; hop < (opts.maxHops ?? 20); hop++) {
    const res = await browse(jar, url, form);
    const posted = form;
    form = undefined;
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location !== null) {
      await res.arrayBuffer();
      url = new URL(location, url);
      if (stop(url)) return url;
      continue;
    }
    const html = await res.text();
    const found = formOf(html);
    if (res.status !== 200 || found === null) {
      const after = posted === undefined ? "" : ` after posting ${Object.keys(posted).join(",")}`;
      throw new Error(`unexpected ${res.status} at ${url.href}${after}: ${html.slice(0, 400)}`);
    }
    url = new URL(found.action, url);
    form = found.action.endsWith("/login")
      ? { csrf: found.csrf, username: opts.user.username, password: opts.user.password }
      : { csrf: found.csrf, decision: opts.decision ?? "allow" };
  }
  throw new Error(`too many hops from ${start.href}`);
}
