// The fleet (health, version against the desired one, last seen, last
// sync error, XDP drops, backend pool members) and the analytics charts.
import { useEffect, useState } from "preact/hooks";
import { ago, api } from "../api";
import { Message, Table, useLoad } from "../common";
import { LineChart, Series } from "../chart";

function drops(xdp: Record<string, number> | null | undefined): number | null {
  if (!xdp) return null;
  return Object.entries(xdp)
    .filter(([reason]) => reason !== "passed")
    .reduce((sum, [, n]) => sum + n, 0);
}

/** Each pool's available members, and those that are not with their state. */
function pools(list: any[] | null | undefined): string {
  if (!list || list.length === 0) return "—";
  return list
    .map((p) => {
      const members: any[] = p.members ?? [];
      const up = members.filter((m) => m.state === "available").length;
      const down = members
        .filter((m) => m.state !== "available")
        .map((m) => `${m.member} ${m.state}${m.recent_failures ? ` (${m.recent_failures} failures)` : ""}`);
      return `${p.backend}: ${up}/${members.length} available${down.length ? "; " + down.join(", ") : ""}`;
    })
    .join(" · ");
}

export function FleetPage() {
  const gws = useLoad(() => api<any[]>("GET", "/v1/gateways"));
  // After the rows are painted: `cargo xtask bench console` reads this
  // mark for the page's time to first render.
  useEffect(() => {
    if (gws.data) performance.mark("fleet-rendered");
  }, [gws.data]);
  return (
    <>
      <h2>Fleet</h2>
      <button class="small" onClick={gws.reload}>Refresh</button>
      <Message error={gws.error} />
      <Table
        id="fleet"
        head={["Gateway", "Health", "Version / desired", "Last seen", "Last sync error", "XDP drops", "Backend pools", "APIs"]}
        rows={(gws.data ?? []).map((g) => {
          const hb = g.heartbeat;
          const health = !hb ? "never seen" : hb.healthy ? "healthy" : "unhealthy";
          const current = hb && hb.version === g.desired_version;
          const d = drops(hb?.xdp);
          return [
            g.name,
            <span class={`badge ${!hb ? "grey" : hb.healthy ? "green" : "red"}`} data-testid={`health-${g.name}`}>{health}</span>,
            <span class={current ? "" : "warn"}>
              {hb?.version ?? "—"} / {g.desired_version}
              {hb && !current ? " (behind)" : ""}
            </span>,
            ago(hb?.last_seen_secs_ago),
            hb?.last_sync_error ? <span class="warn">{hb.last_sync_error}</span> : "—",
            d === null ? "no XDP" : String(d),
            <span data-testid={`pools-${g.name}`}>{pools(hb?.pools)}</span>,
            (g.apis ?? []).join(", "),
          ];
        })}
      />
    </>
  );
}

const RANGES: [string, string, number][] = [
  ["-1h", "last hour", 60],
  ["-24h", "last day", 3600],
  ["-7d", "last 7 days", 6 * 3600],
  ["-90d", "last 90 days", 86400],
];

/** Rows of /v1/analytics as one series per group and a shared x axis. */
export function toSeries(rows: any[], key: string, value: (r: any) => number, from: number, to: number, step: number) {
  const xs: number[] = [];
  for (let t = from; t < to; t += step) xs.push(t);
  const by = new Map<string, Series>();
  for (const r of rows) {
    const name = r[key] ?? "(none)";
    if (!by.has(name)) by.set(name, { name, points: new Map() });
    by.get(name)!.points.set(r.start, value(r));
  }
  return { xs, series: [...by.values()] };
}

export function AnalyticsPage() {
  const [range, setRange] = useState(0);
  const [from, label, step] = RANGES[range];
  const req = useLoad(() => api("GET", `/v1/analytics?group_by=api&from=${from}&step=${step}`), [range]);
  const dr = useLoad(() => api("GET", `/v1/analytics/drops?from=${from}`), [range]);
  const chart = (value: (r: any) => number) =>
    req.data ? toSeries(req.data.rows, "api", value, req.data.from, req.data.to, req.data.step) : null;
  const requests = chart((r) => r.requests);
  const errors = chart((r) => r.errors);
  const latency = chart((r) => r.p95_ms ?? 0);
  const perReason = new Map<string, number>();
  for (const d of dr.data?.drops ?? []) perReason.set(d.reason, (perReason.get(d.reason) ?? 0) + d.packets);
  const most = Math.max(1, ...perReason.values());
  return (
    <>
      <h2>Analytics</h2>
      <div class="ranges">
        {RANGES.map(([, l], i) => (
          <button class={i === range ? "small active" : "small"} onClick={() => setRange(i)}>{l}</button>
        ))}
      </div>
      <Message error={req.error ?? dr.error} />
      <p class="muted" data-testid="total-requests">
        {req.data ? `${req.data.rows.reduce((s: number, r: any) => s + r.requests, 0)} requests in the ${label}` : ""}
      </p>
      {requests ? <LineChart id="chart-requests" title="Requests per API" unit="requests" xs={requests.xs} series={requests.series} /> : null}
      {errors ? <LineChart title="Errors per API" unit="errors" xs={errors.xs} series={errors.series} /> : null}
      {latency ? <LineChart title="Latency per API (p95)" unit="ms" xs={latency.xs} series={latency.series} /> : null}
      <h3>XDP drops per reason ({label})</h3>
      <Table
        id="drops"
        head={["Reason", "Packets", ""]}
        rows={[...perReason.entries()].map(([reason, n]) => [
          reason,
          String(n),
          <div class="bar" ref={(el) => {
            if (el) el.style.width = `${Math.round((n / most) * 200)}px`;
          }} />,
        ])}
      />
    </>
  );
}
