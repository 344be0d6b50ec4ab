// APIs: the list, an OpenAPI import from a file, and one API with its
// operations, policies and rendered docs.
import { useState } from "preact/hooks";
import { api, enc } from "../api";
import { ApiDocs, Docs } from "../docs";
import { Field, Json, Message, Table, useAction, useLoad } from "../common";

/** Largest document the import accepts (the server's limit too). */
const MAX_IMPORT = 16 << 20;

export function ApisPage() {
  const apis = useLoad(() => api<any[]>("GET", "/v1/apis"));
  return (
    <>
      <h2>APIs</h2>
      <Message error={apis.error} />
      <Table
        id="apis"
        head={["Name", "Path", "Backend", "Operations", "Key required"]}
        rows={(apis.data ?? []).map((a) => [
          <a href={`#/apis/${enc(a.name)}`}>{a.name}</a>,
          <code>{a.path}</code>,
          <code>{a.backend}</code>,
          String(a.operations?.length ?? 0),
          a.subscription_required === false ? "no" : "yes",
        ])}
      />
      <Import onDone={apis.reload} />
    </>
  );
}

function Import({ onDone }: { onDone: () => void }) {
  const [name, setName] = useState("");
  const [path, setPath] = useState("");
  const [backend, setBackend] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [report, setReport] = useState<any>(null);
  const act = useAction();
  async function submit(e: Event) {
    e.preventDefault();
    setReport(null);
    if (!file) return act.setError("choose an OpenAPI file (JSON or YAML) first");
    if (file.size > MAX_IMPORT) {
      return act.setError(`${file.name} is ${file.size} bytes; the import takes documents of at most ${MAX_IMPORT} bytes`);
    }
    const text = await file.text();
    const q = `name=${enc(name)}&path=${enc(path)}` + (backend ? `&backend=${enc(backend)}` : "");
    const out = await act.run(() => api("POST", `/v1/apis/import?${q}`, undefined, text), `imported ${name}`);
    if (out) {
      setReport(out.report);
      onDone();
    }
  }
  return (
    <section class="card">
      <h3>Import an OpenAPI document</h3>
      <form onSubmit={submit} data-testid="import">
        <Field label="API name">
          <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Path prefix">
          <input name="path" placeholder="/petstore" value={path} onInput={(e) => setPath(e.currentTarget.value)} />
        </Field>
        <Field label="Backend URL (optional: else the document's first server)">
          <input name="backend" value={backend} onInput={(e) => setBackend(e.currentTarget.value)} />
        </Field>
        <Field label="OpenAPI 3.0/3.1 file (JSON or YAML)">
          <input name="file" type="file" accept=".json,.yaml,.yml" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
        </Field>
        <button type="submit" disabled={act.busy}>Import</button>
      </form>
      <Message error={act.error} ok={act.ok} />
      {report ? (
        <p class="muted">
          {report.operations.imported} operations imported, {report.operations.merged} merged, {report.operations.skipped} skipped;
          backend {report.backend.url} (from {report.backend.from}); {report.notes.length} notes.
        </p>
      ) : null}
    </section>
  );
}

export function ApiPage({ name }: { name: string }) {
  const one = useLoad(() => api("GET", `/v1/apis/${enc(name)}`), [name]);
  const docs = useLoad(
    () => api<Docs>("GET", `/v1/apis/${enc(name)}/docs`).catch((e) => (e.status === 404 ? null : Promise.reject(e))),
    [name],
  );
  const a = one.data;
  return (
    <>
      <p>
        <a href="#/apis">← APIs</a>
      </p>
      <h2>API {name}</h2>
      <Message error={one.error ?? docs.error} />
      {a ? (
        <>
          <p>
            Path <code>{a.path}</code>, backend <code>{a.backend}</code>
            {a.host ? <> , host <code>{a.host}</code></> : null}
          </p>
          <h3>Operations</h3>
          <Table
            id="operations"
            head={["Name", "Method", "URL template", "Policies"]}
            rows={a.operations.map((o: any) => [o.name, o.method, <code>{o.url}</code>, o.policies ? <Json value={o.policies} /> : "—"])}
          />
          <h3>API policies</h3>
          {a.policies ? <Json value={a.policies} /> : <p class="muted">none (the product's and the global ones apply)</p>}
        </>
      ) : null}
      <h3>Documentation</h3>
      {docs.data ? <ApiDocs docs={docs.data} /> : <p class="muted">No imported document for this API.</p>}
    </>
  );
}
