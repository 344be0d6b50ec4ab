// The developer portal: consumers sign up or in (email and password),
// browse the published products and their APIs' docs, subscribe, see and
// regenerate their own keys, see their own usage, and try an operation
// through a gateway. Every call is /v1/portal/..., which answers only what
// is the signed-in consumer's own.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, enc, Session, setSession } from "../api";
import { Field, Message, OnceKey, Table, errorText, useAction, useHash, useLoad } from "../common";
import { ApiDocs, Docs, DocsOperation } from "../docs";
import { LineChart } from "../chart";
import { toSeries } from "../ui/fleet";
import "../style.css";

function SignIn({ onDone, notice }: { onDone: (s: Session) => void; notice: string | null }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  async function go(kind: "signin" | "signup") {
    setError(null);
    try {
      onDone(await api<Session>("POST", `/v1/portal/${kind}`, { email, password }));
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <main class="signin">
      <h1>edgegw developer portal</h1>
      <form
        data-testid="signin"
        onSubmit={(e) => {
          e.preventDefault();
          go("signin");
        }}
      >
        <Field label="Email">
          <input name="email" type="email" autocomplete="username" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </Field>
        <Field label="Password (at least 10 characters)">
          <input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </Field>
        <button type="submit">Sign in</button>{" "}
        <button type="button" name="signup" onClick={() => go("signup")}>Create account</button>
      </form>
      <Message error={error ?? notice} />
    </main>
  );
}

function Products() {
  const products = useLoad(() => api<any[]>("GET", "/v1/portal/products"));
  const [key, setKey] = useState<string | null>(null);
  const act = useAction();
  async function subscribe(product: string) {
    setKey(null);
    const out = await act.run(() => api("POST", "/v1/portal/subscriptions", { product }));
    if (out) {
      setKey(out.primary_key);
      act.setError(null);
    }
  }
  return (
    <>
      <h2>Products</h2>
      <Message error={products.error ?? act.error} />
      {key ? <OnceKey label="Your primary key" value={key} /> : null}
      {(products.data ?? []).map((p) => (
        <section class="card" data-testid={`product-${p.name}`}>
          <h3>{p.name}</h3>
          <p class="muted">{p.approval_required ? "Subscriptions are approved by an operator." : "Subscriptions start at once."}</p>
          <ul class="plain">
            {p.apis.map((a: any) => (
              <li>
                <a href={`#/apis/${enc(a.name)}`}>{a.title || a.name}</a> <code>{a.path}</code>
              </li>
            ))}
          </ul>
          <button onClick={() => subscribe(p.name)} disabled={act.busy}>Subscribe</button>
        </section>
      ))}
      {products.data && products.data.length === 0 ? <p class="muted">No products are published yet.</p> : null}
    </>
  );
}

function TryIt({ docs, op, gateways }: { docs: Docs; op: DocsOperation; gateways: string[] }) {
  const [open, setOpen] = useState(false);
  const [chosen, setGateway] = useState("");
  // The list may arrive after the form opened: the first one until chosen.
  const gateway = chosen || gateways[0] || "";
  const [path, setPath] = useState(docs.path.replace(/\/$/, "") + op.path);
  const [key, setKey] = useState("");
  const [answer, setAnswer] = useState<any>(null);
  const act = useAction();
  if (!open) return <button class="small" onClick={() => setOpen(true)}>Try it</button>;
  async function send(e: Event) {
    e.preventDefault();
    setAnswer(null);
    const out = await act.run(() => api("POST", "/v1/portal/try", { gateway, method: op.method, path, key }));
    if (out) setAnswer(out);
  }
  return (
    <form class="tryit" onSubmit={send}>
      {gateways.length === 0 ? <p class="muted">No gateway is offered for trying; ask an operator (edgegw-cp serve --portal-gateway URL).</p> : null}
      <Field label="Gateway">
        <select name="gateway" value={gateway} onChange={(e) => setGateway(e.currentTarget.value)}>
          {gateways.map((g) => <option value={g}>{g}</option>)}
        </select>
      </Field>
      <Field label={`${op.method} path (fill in the parameters)`}>
        <input name="path" value={path} onInput={(e) => setPath(e.currentTarget.value)} />
      </Field>
      <Field label="Your subscription key">
        <input name="key" type="password" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
      </Field>
      <button type="submit" disabled={act.busy}>Send</button>
      <Message error={act.error} />
      {answer ? (
        <div data-testid="try-answer">
          <p>
            <strong>{answer.status}</strong>
          </p>
          <pre class="json">{answer.body}</pre>
        </div>
      ) : null}
    </form>
  );
}

function ApiPage({ name }: { name: string }) {
  const docs = useLoad(() => api<Docs>("GET", `/v1/portal/apis/${enc(name)}`), [name]);
  const gateways = useLoad(() => api<string[]>("GET", "/v1/portal/gateways"));
  return (
    <>
      <p>
        <a href="#/products">← Products</a>
      </p>
      <Message error={docs.error} />
      {docs.data ? <ApiDocs docs={docs.data} action={(op) => <TryIt docs={docs.data!} op={op} gateways={gateways.data ?? []} />} /> : null}
    </>
  );
}

function Subscriptions() {
  const subs = useLoad(() => api<any[]>("GET", "/v1/portal/subscriptions"));
  const [key, setKey] = useState<[string, string] | null>(null);
  const act = useAction();
  async function regenerate(id: string, which: string) {
    setKey(null);
    const out = await act.run(() => api("POST", `/v1/portal/subscriptions/${enc(id)}/regenerate?key=${which}`));
    if (out) setKey([`New ${which} key of ${id}`, out[`${which}_key`]]);
  }
  return (
    <>
      <h2>My subscriptions</h2>
      <Message error={subs.error ?? act.error} />
      {key ? <OnceKey label={key[0]} value={key[1]} /> : null}
      <Table
        id="my-subscriptions"
        head={["Subscription", "Product", "State", ""]}
        rows={(subs.data ?? []).map((s) => [
          <code>{s.id}</code>,
          s.product,
          s.pending ? "waiting for approval" : s.state,
          <span class="actions">
            <button class="small" onClick={() => regenerate(s.id, "primary")}>Regenerate primary key</button>
            <button class="small" onClick={() => regenerate(s.id, "secondary")}>Regenerate secondary key</button>
          </span>,
        ])}
      />
      <p class="muted">Keys are shown once, when made; the portal keeps only their hashes.</p>
    </>
  );
}

function Usage() {
  const usage = useLoad(() => api("GET", "/v1/portal/usage"));
  const u = usage.data;
  const chart = u ? toSeries(u.rows, "subscription", (r) => r.requests, u.from, u.to, u.step) : null;
  const total = u ? u.rows.reduce((s: number, r: any) => s + r.requests, 0) : 0;
  return (
    <>
      <h2>My usage (last 90 days)</h2>
      <Message error={usage.error} />
      <p data-testid="usage-total">{u ? `${total} requests` : ""}</p>
      {chart ? <LineChart id="chart-usage" title="Requests per day" unit="requests" xs={chart.xs} series={chart.series} /> : null}
    </>
  );
}

function App() {
  const [session, setS] = useState<Session | null | undefined>(undefined);
  const [notice, setNotice] = useState<string | null>(null);
  const parts = useHash();
  const use = (s: Session | null) => {
    setSession(s);
    setS(s);
  };
  useEffect(() => {
    api<Session>("GET", "/v1/session").then(
      (s) => use(s.kind === "consumer" ? s : null),
      () => use(null),
    );
    const onEnded = (e: Event) => {
      use(null);
      setNotice((e as CustomEvent).detail);
    };
    addEventListener("session-ended", onEnded);
    return () => removeEventListener("session-ended", onEnded);
  }, []);
  if (session === undefined) return <p class="muted">Loading…</p>;
  if (session === null) return <SignIn onDone={(s) => (setNotice(null), use(s))} notice={notice} />;
  const [page, name] = parts;
  const current = page || "products";
  const nav: [string, string][] = [
    ["products", "Products"],
    ["subscriptions", "My subscriptions"],
    ["usage", "My usage"],
  ];
  return (
    <div class="shell portal">
      <nav>
        <h1>Developer portal</h1>
        {nav.map(([id, label]) => (
          <a href={`#/${id}`} class={current === id ? "active" : ""}>{label}</a>
        ))}
        <p class="muted small" data-testid="who">signed in as {session.subject}</p>
        <button
          class="link"
          onClick={async () => {
            await api("DELETE", "/v1/session").catch(() => undefined);
            use(null);
          }}
        >
          Sign out
        </button>
      </nav>
      <main>
        {current === "apis" && name ? <ApiPage name={name} /> : current === "subscriptions" ? <Subscriptions /> : current === "usage" ? <Usage /> : <Products />}
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
