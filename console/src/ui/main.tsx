// The operator console: sign in with an admin token (exchanged for a
// session cookie), then one page per kind of resource, all over /v1.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, Session, setSession } from "../api";
import { Field, Message, errorText, useHash } from "../common";
import "../style.css";
import { ApiPage, ApisPage } from "./apis";
import { BackendsPage, DosPage, NamedValuesPage, ProductsPage, SubscriptionsPage } from "./catalog";
import { AnalyticsPage, FleetPage } from "./fleet";
import { ConsumersPage } from "./consumers";

const PAGES: [string, string][] = [
  ["apis", "APIs"],
  ["products", "Products"],
  ["subscriptions", "Subscriptions"],
  ["named-values", "Named values"],
  ["backends", "Backends"],
  ["dos-profiles", "DoS profiles"],
  ["fleet", "Fleet"],
  ["analytics", "Analytics"],
  ["consumers", "Consumers"],
];

function SignIn({ onDone, notice }: { onDone: (s: Session) => void; notice: string | null }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      onDone(await api<Session>("POST", "/v1/session", { token }));
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <main class="signin">
      <h1>edgegw console</h1>
      <form onSubmit={submit} data-testid="signin">
        <Field label="Admin token">
          <input name="token" type="password" autocomplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        </Field>
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">
        Create a token on the control plane host with <code>edgegw-cp admin-token create</code>.
      </p>
      <Message error={error ?? notice} />
    </main>
  );
}

function Page({ parts }: { parts: string[] }) {
  const [page, name] = parts;
  switch (page) {
    case "apis":
      return name ? <ApiPage name={name} /> : <ApisPage />;
    case "products":
      return <ProductsPage />;
    case "subscriptions":
      return <SubscriptionsPage />;
    case "named-values":
      return <NamedValuesPage />;
    case "backends":
      return <BackendsPage />;
    case "dos-profiles":
      return <DosPage />;
    case "fleet":
      return <FleetPage />;
    case "analytics":
      return <AnalyticsPage />;
    case "consumers":
      return <ConsumersPage />;
    default:
      return <ApisPage />;
  }
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
      (s) => use(s.kind === "admin" ? s : null),
      (e) => {
        use(null);
        if (e.status !== 401 || !/no session/.test(e.message)) setNotice(errorText(e));
      },
    );
    // A session that ends while a page is open (expiry, sign out
    // elsewhere) shows the sign-in form with the reason.
    const onExpired = (e: Event) => {
      use(null);
      setNotice((e as CustomEvent).detail);
    };
    addEventListener("session-ended", onExpired);
    return () => removeEventListener("session-ended", onExpired);
  }, []);
  if (session === undefined) return <p class="muted">Loading…</p>;
  if (session === null) return <SignIn onDone={(s) => (setNotice(null), use(s))} notice={notice} />;
  const current = parts[0] || "apis";
  return (
    <div class="shell">
      <nav>
        <h1>edgegw</h1>
        {PAGES.map(([id, label]) => (
          <a href={`#/${id}`} class={current === id ? "active" : ""}>
            {label}
          </a>
        ))}
        <p class="muted small">signed in as {session.subject}</p>
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
        <Page parts={parts} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
