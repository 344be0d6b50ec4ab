// A time-series line chart (uPlot). One series per name; x in Unix seconds.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"];

export interface Series {
  name: string;
  points: Map<number, number>;
}

export function LineChart({ title, xs, series, unit, id }: { title: string; xs: number[]; series: Series[]; unit: string; id?: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current) return;
    const data: uPlot.AlignedData = [xs, ...series.map((s) => xs.map((x) => s.points.get(x) ?? 0))];
    const plot = new uPlot(
      {
        title,
        width: Math.max(320, Math.min(900, box.current.clientWidth || 640)),
        height: 220,
        series: [
          {},
          ...series.map((s, i) => ({ label: s.name, stroke: COLOURS[i % COLOURS.length], width: 2 })),
        ],
        axes: [{}, { label: unit }],
      },
      data,
      box.current,
    );
    return () => plot.destroy();
  }, [title, xs, series, unit]);
  return <div class="chart" data-testid={id} ref={box} />;
}
