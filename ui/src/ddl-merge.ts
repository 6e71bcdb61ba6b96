// The DDL diff view: CodeMirror 6's merge view, read-only, template on the
// left and tenant on the right, SQL highlighting, line numbers, changes
// paired line by line with the changed characters marked, unchanged runs
// collapsed. Colours come from the console's CSS variables, so it follows
// the light and dark themes.
//
// The view lives in a shadow root: CodeMirror injects its styles at run
// time, which the console's CSP (`style-src 'self'`) blocks as <style>
// elements in the document but allows as a shadow root's constructed
// stylesheets. So every rule for the view is here, in its theme, not in
// styles.css (the page's rules do not reach into the shadow root; CSS
// variables do).
import { MergeView } from "@codemirror/merge";
import { MySQL, PostgreSQL, sql, SQLite, type SQLDialect } from "@codemirror/lang-sql";
import { HighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { EditorState, type Extension } from "@codemirror/state";
import { EditorView, lineNumbers } from "@codemirror/view";
import { tags } from "@lezer/highlight";

const highlight = HighlightStyle.define([
  { tag: tags.keyword, color: "var(--accent)", fontWeight: "600" },
  { tag: [tags.typeName, tags.standard(tags.name)], color: "var(--changed)" },
  { tag: [tags.string, tags.special(tags.string)], color: "var(--synced)" },
  { tag: [tags.number, tags.bool, tags.null], color: "var(--outdated)" },
  { tag: [tags.comment, tags.lineComment, tags.blockComment], color: "var(--muted)", fontStyle: "italic" },
  { tag: [tags.operator, tags.punctuation], color: "var(--muted)" },
]);

const theme = EditorView.theme({
  "&": { backgroundColor: "var(--panel)", color: "var(--text)", fontSize: "12px" },
  ".cm-content": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace", caretColor: "transparent" },
  ".cm-gutters": { backgroundColor: "var(--bg)", color: "var(--muted)", borderRight: "1px solid var(--border)" },
  ".cm-scroller": { overflow: "auto" },
  ".cm-collapsedLines": { backgroundColor: "var(--bg)", color: "var(--muted)", background: "var(--bg)" },
});

/** Change colours for both sides (the merge view's own are for light pages only). */
const mergeTheme = EditorView.theme({
  "&.cm-merge-a .cm-changedLine, .cm-deletedChunk": { backgroundColor: "color-mix(in srgb, var(--missing) 14%, transparent)" },
  "&.cm-merge-b .cm-changedLine, .cm-insertedLine": { backgroundColor: "color-mix(in srgb, var(--added) 14%, transparent)" },
  "&.cm-merge-a .cm-changedText": { background: "color-mix(in srgb, var(--missing) 40%, transparent)" },
  "&.cm-merge-b .cm-changedText": { background: "color-mix(in srgb, var(--added) 40%, transparent)" },
  ".cm-changeGutter": { width: "3px" },
  "&.cm-merge-a .cm-changedLineGutter": { background: "var(--missing)" },
  "&.cm-merge-b .cm-changedLineGutter": { background: "var(--added)" },
});

/** The engine's SQL dialect, from a location's scheme. */
export type Dialect = "postgres" | "mysql" | "sqlite";
const DIALECTS: Record<Dialect, SQLDialect> = { postgres: PostgreSQL, mysql: MySQL, sqlite: SQLite };

function side(doc: string, label: string, dialect: Dialect): { doc: string; extensions: Extension[] } {
  return {
    doc,
    extensions: [
      lineNumbers(),
      sql({ dialect: DIALECTS[dialect] }),
      syntaxHighlighting(highlight),
      theme,
      mergeTheme,
      EditorState.readOnly.of(true),
      EditorView.editable.of(false),
      EditorView.contentAttributes.of({ "aria-label": label }),
    ],
  };
}

/**
 * Renders `template` and `tenant` (canonical DDL; empty when the object is
 * on one side only) into a shadow root on `host`; returns a function that
 * frees the view.
 */
export function ddlMerge(host: HTMLElement, template: string, tenant: string, name: string, dialect: Dialect): () => void {
  const root = host.shadowRoot ?? host.attachShadow({ mode: "open" });
  root.replaceChildren();
  const view = new MergeView({
    a: side(template, `Template DDL of ${name}`, dialect),
    b: side(tenant, `Tenant DDL of ${name}`, dialect),
    parent: root,
    root,
    // Within-line marks only where both sides exist: on a one-sided
    // object every character would be marked.
    highlightChanges: template !== "" && tenant !== "",
    gutter: true,
    collapseUnchanged: { margin: 3, minSize: 6 },
  });
  return () => view.destroy();
}
