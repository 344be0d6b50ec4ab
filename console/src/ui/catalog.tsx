// Products, subscriptions, named values, backends and DoS profiles.
import { useState } from "preact/hooks";
import { api, enc } from "../api";
import { Field, Json, Message, OnceKey, Table, useAction, useLoad } from "../common";

export function ProductsPage() {
  const products = useLoad(() => api<any[]>("GET", "/v1/products"));
  const published = useLoad(() => api<any[]>("GET", "/v1/published-products"));
  const [name, setName] = useState("");
  const [apis, setApis] = useState("");
  const [required, setRequired] = useState(true);
  const [publish, setPublish] = useState(true);
  const [approval, setApproval] = useState(false);
  const act = useAction();
  const pub = new Map((published.data ?? []).map((p) => [p.product, p]));
  async function submit(e: Event) {
    e.preventDefault();
    const list = apis.split(",").map((s) => s.trim()).filter(Boolean);
    await act.run(async () => {
      await api("POST", "/v1/products", { name, apis: list, subscription_required: required });
      if (publish) await api("PUT", `/v1/published-products/${enc(name)}`, { approval_required: approval });
    }, `created product ${name}`);
    products.reload();
    published.reload();
  }
  async function toggle(p: any) {
    await act.run(() =>
      pub.has(p.name)
        ? api("DELETE", `/v1/published-products/${enc(p.name)}`)
        : api("PUT", `/v1/published-products/${enc(p.name)}`, { approval_required: false }),
    );
    published.reload();
  }
  return (
    <>
      <h2>Products</h2>
      <Message error={products.error ?? published.error} />
      <Table
        id="products"
        head={["Name", "APIs", "Key required", "In the portal", ""]}
        rows={(products.data ?? []).map((p) => [
          p.name,
          (p.apis ?? []).join(", "),
          p.subscription_required === false ? "no" : "yes",
          pub.has(p.name) ? (pub.get(p.name).approval_required ? "published, approval required" : "published") : "no",
          <button class="small" onClick={() => toggle(p)}>{pub.has(p.name) ? "Unpublish" : "Publish"}</button>,
        ])}
      />
      <section class="card">
        <h3>New product</h3>
        <form onSubmit={submit} data-testid="new-product">
          <Field label="Name">
            <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </Field>
          <Field label="APIs (comma-separated names)">
            <input name="apis" value={apis} onInput={(e) => setApis(e.currentTarget.value)} />
          </Field>
          <label class="check">
            <input type="checkbox" name="required" checked={required} onChange={(e) => setRequired(e.currentTarget.checked)} /> Subscription key required
          </label>
          <label class="check">
            <input type="checkbox" name="publish" checked={publish} onChange={(e) => setPublish(e.currentTarget.checked)} /> Publish in the developer portal
          </label>
          <label class="check">
            <input type="checkbox" name="approval" checked={approval} onChange={(e) => setApproval(e.currentTarget.checked)} /> Subscriptions need an operator's approval
          </label>
          <button type="submit" disabled={act.busy}>Create</button>
        </form>
        <Message error={act.error} ok={act.ok} />
      </section>
    </>
  );
}

export function SubscriptionsPage() {
  const subs = useLoad(() => api<any[]>("GET", "/v1/subscriptions"));
  const [id, setId] = useState("");
  const [scope, setScope] = useState("");
  const [keys, setKeys] = useState<[string, string][]>([]);
  const act = useAction();
  async function create(e: Event) {
    e.preventDefault();
    setKeys([]);
    const out = await act.run(() => api("POST", "/v1/subscriptions", { id, scope }), `created subscription ${id}`);
    if (out) setKeys([["Primary key", out.primary_key], ["Secondary key", out.secondary_key]]);
    subs.reload();
  }
  async function setState(s: any, state: string) {
    setKeys([]);
    await act.run(() => api("PUT", `/v1/subscriptions/${enc(s.id)}`, { scope: s.scope, state }), `subscription ${s.id} is ${state}`);
    subs.reload();
  }
  async function regenerate(s: any) {
    setKeys([]);
    const out = await act.run(() => api("POST", `/v1/subscriptions/${enc(s.id)}/regenerate?key=primary`), `new primary key for ${s.id}`);
    if (out) setKeys([[`New primary key of ${s.id}`, out.primary_key]]);
  }
  return (
    <>
      <h2>Subscriptions</h2>
      <Message error={subs.error} />
      {keys.map(([l, k]) => <OnceKey label={l} value={k} />)}
      <Table
        id="subscriptions"
        head={["Id", "Scope", "State", ""]}
        rows={(subs.data ?? []).map((s) => [
          s.id,
          <code>{s.scope}</code>,
          s.state ?? "active",
          <span class="actions">
            {(s.state ?? "active") === "active" ? (
              <button class="small" onClick={() => setState(s, "suspended")}>Suspend</button>
            ) : (
              <button class="small" onClick={() => setState(s, "active")}>Activate</button>
            )}
            <button class="small" onClick={() => regenerate(s)}>Regenerate primary key</button>
          </span>,
        ])}
      />
      <section class="card">
        <h3>New subscription</h3>
        <form onSubmit={create} data-testid="new-subscription">
          <Field label="Id">
            <input name="id" value={id} onInput={(e) => setId(e.currentTarget.value)} />
          </Field>
          <Field label='Scope ("product:NAME", "api:NAME" or "all")'>
            <input name="scope" value={scope} onInput={(e) => setScope(e.currentTarget.value)} />
          </Field>
          <button type="submit" disabled={act.busy}>Create</button>
        </form>
        <Message error={act.error} ok={act.ok} />
      </section>
    </>
  );
}

export function NamedValuesPage() {
  const values = useLoad(() => api<any[]>("GET", "/v1/named-values"));
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [secret, setSecret] = useState(false);
  const act = useAction();
  async function create(e: Event) {
    e.preventDefault();
    await act.run(() => api("POST", "/v1/named-values", { name, value, secret }), `created ${name}`);
    setValue("");
    values.reload();
  }
  return (
    <>
      <h2>Named values</h2>
      <Message error={values.error} />
      <Table
        id="named-values"
        head={["Name", "Value"]}
        rows={(values.data ?? []).map((v) => [v.name, v.secret ? <em class="muted">secret (never shown)</em> : <code>{v.value}</code>])}
      />
      <section class="card">
        <h3>New named value</h3>
        <form onSubmit={create} data-testid="new-named-value">
          <Field label="Name">
            <input name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </Field>
          <Field label="Value">
            {secret ? (
              <input name="value" type="password" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
            ) : (
              <input name="value" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
            )}
          </Field>
          <label class="check">
            <input type="checkbox" name="secret" checked={secret} onChange={(e) => setSecret(e.currentTarget.checked)} /> Secret
          </label>
          <button type="submit" disabled={act.busy}>Create</button>
        </form>
        <Message error={act.error} ok={act.ok} />
      </section>
    </>
  );
}

/** A resource edited as its JSON document (the same body /v1 takes). */
function JsonResources({ title, segment, example, id }: { title: string; segment: string; example: string; id: string }) {
  const items = useLoad(() => api<any[]>("GET", `/v1/${segment}`), [segment]);
  const [text, setText] = useState(example);
  const act = useAction();
  async function create(e: Event) {
    e.preventDefault();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      return act.setError(`the document is not JSON: ${String(err)}`);
    }
    await act.run(() => api("POST", `/v1/${segment}`, body), "created");
    items.reload();
  }
  async function remove(name: string) {
    await act.run(() => api("DELETE", `/v1/${segment}/${enc(name)}`), `deleted ${name}`);
    items.reload();
  }
  return (
    <>
      <h2>{title}</h2>
      <Message error={items.error} />
      <Table
        id={id}
        head={["Name", "Document", ""]}
        rows={(items.data ?? []).map((b) => [b.name, <Json value={b} />, <button class="small" onClick={() => remove(b.name)}>Delete</button>])}
      />
      <section class="card">
        <h3>New</h3>
        <form onSubmit={create}>
          <textarea name="document" rows={8} value={text} onInput={(e) => setText(e.currentTarget.value)} />
          <button type="submit" disabled={act.busy}>Create</button>
        </form>
        <Message error={act.error} ok={act.ok} />
      </section>
    </>
  );
}

export function BackendsPage() {
  return <JsonResources title="Backends" segment="backends" id="backends" example={'{\n  "name": "orders",\n  "url": "http://127.0.0.1:9000"\n}'} />;
}

export function DosPage() {
  return (
    <JsonResources
      title="DoS profiles"
      segment="dos-profiles"
      id="dos-profiles"
      example={'{\n  "name": "edge",\n  "global": {"packets_per_sec": 10000, "burst": 20000}\n}'}
    />
  );
}

export { Json };
