// Pieces every page uses: messages, tables, the one-time key box, the
// hash router. Everything is rendered through Preact, which sets text as
// text: nothing a user or a document supplies becomes markup.
import { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError } from "./api";

export function useHash(): string[] {
  const read = () => location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [parts, setParts] = useState(read());
  useEffect(() => {
    const on = () => setParts(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return parts;
}

export function Message({ error, ok }: { error?: string | null; ok?: string | null }) {
  if (error) return <p class="msg error" role="alert" data-testid="error">{error}</p>;
  if (ok) return <p class="msg ok" role="status" data-testid="ok">{ok}</p>;
  return null;
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  return String(e);
}

/** Loads `load()` on mount and whenever `deps` change. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (d) => live && (setData(d), setError(null)),
      (e) => live && setError(errorText(e)),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}

export function Table({ head, rows, id }: { head: string[]; rows: ComponentChildren[][]; id?: string }) {
  return (
    <table data-testid={id}>
      <thead>
        <tr>{head.map((h) => <th>{h}</th>)}</tr>
      </thead>
      <tbody>
        {rows.length === 0 ? (
          <tr>
            <td colSpan={head.length} class="empty">none yet</td>
          </tr>
        ) : (
          rows.map((r) => <tr>{r.map((c) => <td>{c}</td>)}</tr>)
        )}
      </tbody>
    </table>
  );
}

/** A key shown once: the control plane keeps only its hash. */
export function OnceKey({ label, value }: { label: string; value: string }) {
  return (
    <div class="once">
      <strong>{label}</strong> (shown once; copy it now):
      <code data-testid="key">{value}</code>
    </div>
  );
}

export function Json({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}

/** Runs a write; shows its error or success line. */
export function useAction() {
  const [error, setError] = useState<string | null>(null);
  const [ok, setOk] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function run<T>(f: () => Promise<T>, done?: string): Promise<T | undefined> {
    setBusy(true);
    setError(null);
    setOk(null);
    try {
      const out = await f();
      if (done) setOk(done);
      return out;
    } catch (e) {
      setError(errorText(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  }
  return { error, ok, busy, run, setError };
}

export function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <label class="field">
      <span>{label}</span>
      {children}
    </label>
  );
}
