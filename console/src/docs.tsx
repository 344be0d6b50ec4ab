// An imported OpenAPI document as readable docs. The control plane keeps a
// digest of the document (title, version, description, and per operation
// its method, path, summary and description); every piece of it is
// document text and is rendered as text, never as markup.
import { ComponentChildren } from "preact";

export interface DocsOperation {
  method: string;
  path: string;
  operation: string;
  summary?: string | null;
  description?: string | null;
}

export interface Docs {
  api: string;
  path: string;
  title?: string | null;
  version?: string | null;
  description?: string | null;
  operations: DocsOperation[];
}

/** Paragraphs of plain text (blank lines split them). */
function Prose({ text }: { text?: string | null }) {
  if (!text) return null;
  return (
    <div class="prose">
      {text.split(/\n\s*\n/).map((p) => <p>{p}</p>)}
    </div>
  );
}

export function ApiDocs({ docs, action }: { docs: Docs; action?: (op: DocsOperation) => ComponentChildren }) {
  return (
    <article class="docs" data-testid="docs">
      <h3>
        {docs.title || docs.api} {docs.version ? <small>version {docs.version}</small> : null}
      </h3>
      <p class="muted">
        Base path <code>{docs.path}</code>
      </p>
      <Prose text={docs.description} />
      {docs.operations.map((op) => (
        <section class="op">
          <h4>
            <span class={`verb ${op.method.toLowerCase()}`}>{op.method}</span> <code>{docs.path.replace(/\/$/, "") + op.path}</code>{" "}
            <small>{op.operation}</small>
          </h4>
          {op.summary ? <p><strong>{op.summary}</strong></p> : null}
          <Prose text={op.description} />
          {action ? action(op) : null}
        </section>
      ))}
    </article>
  );
}
