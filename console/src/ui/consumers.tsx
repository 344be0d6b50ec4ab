// Consumer accounts of the developer portal, their subscriptions, and the
// approvals that products requiring one wait for.
import { api, enc } from "../api";
import { Message, Table, useAction, useLoad } from "../common";

export function ConsumersPage() {
  const consumers = useLoad(() => api<any[]>("GET", "/v1/consumers"));
  const act = useAction();
  async function approve(id: string) {
    await act.run(() => api("POST", `/v1/consumer-subscriptions/${enc(id)}/approve`), `approved ${id}`);
    consumers.reload();
  }
  async function remove(email: string) {
    await act.run(() => api("DELETE", `/v1/consumers/${enc(email)}`), `deleted ${email} and their subscriptions`);
    consumers.reload();
  }
  return (
    <>
      <h2>Consumers</h2>
      <Message error={consumers.error ?? act.error} ok={act.ok} />
      <Table
        id="consumers"
        head={["Account", "Since", "Subscriptions", ""]}
        rows={(consumers.data ?? []).map((c) => [
          c.email,
          new Date(c.created_at * 1000).toISOString().slice(0, 10),
          <ul class="plain">
            {c.subscriptions.map((s: any) => (
              <li>
                <code>{s.id}</code> {s.product} — {s.state}
                {s.pending ? <button class="small" onClick={() => approve(s.id)}>Approve</button> : null}
              </li>
            ))}
          </ul>,
          <button class="small" onClick={() => remove(c.email)}>Delete</button>,
        ])}
      />
    </>
  );
}
