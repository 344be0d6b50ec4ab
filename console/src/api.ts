// The one way pages talk to edgegw-cp: the public /v1 REST API, with the
// session cookie (HttpOnly, set by POST /v1/session or the portal's sign
// in) and, on every write, the session's CSRF token in X-CSRF-Token.

let csrf = "";

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Session {
  kind: "admin" | "consumer";
  subject: string;
  csrf: string;
  expires_at: number;
}

export function setSession(s: Session | null) {
  csrf = s ? s.csrf : "";
}

/** A request to the API; the answer's JSON, or an ApiError carrying the
 * control plane's one-line message. */
export async function api<T = any>(
  method: string,
  path: string,
  body?: unknown,
  raw?: string,
): Promise<T> {
  const headers: Record<string, string> = {};
  let payload: string | undefined;
  if (raw !== undefined) {
    payload = raw;
    headers["Content-Type"] = "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, `the control plane did not answer (${String(e)}); check that it runs`);
  }
  const text = await res.text();
  let value: any = null;
  if (text) {
    try {
      value = JSON.parse(text);
    } catch {
      value = { message: text };
    }
  }
  if (!res.ok) {
    const message = value && typeof value.message === "string" ? value.message : `HTTP ${res.status}`;
    // A session that expired or was signed out: the page shows sign-in
    // with the reason.
    if (res.status === 401 && !path.startsWith("/v1/session") && !path.startsWith("/v1/portal/sign")) {
      dispatchEvent(new CustomEvent("session-ended", { detail: message }));
    }
    throw new ApiError(res.status, message);
  }
  return value as T;
}

export function enc(s: string): string {
  return encodeURIComponent(s);
}

/** Seconds as "42 s", "3 min", "5 h", "2 d". */
export function ago(secs: number | null | undefined): string {
  if (secs === null || secs === undefined) return "never";
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return `${Math.floor(secs / 86400)} d ago`;
}
