// The code editor: CodeMirror 6 with JavaScript/TypeScript or Python, colours from the page's
// CSS variables (so light and dark follow prefers-color-scheme), Mod-Enter bound to run.
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import { bracketMatching, HighlightStyle, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { Compartment, EditorState, Prec } from "@codemirror/state";
import { drawSelection, EditorView, highlightActiveLine, keymap, lineNumbers } from "@codemirror/view";
import { tags as t } from "@lezer/highlight";

export type Language = "js" | "py";

const highlight = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.moduleKeyword, t.operatorKeyword], color: "var(--tok-keyword)" },
  { tag: [t.string, t.special(t.string), t.regexp], color: "var(--tok-string)" },
  { tag: [t.number, t.bool, t.null, t.atom], color: "var(--tok-number)" },
  { tag: [t.comment, t.lineComment, t.blockComment], color: "var(--tok-comment)", fontStyle: "italic" },
  { tag: [t.function(t.variableName), t.function(t.propertyName), t.definition(t.function(t.variableName))], color: "var(--tok-function)" },
  { tag: [t.typeName, t.className, t.definition(t.typeName)], color: "var(--tok-type)" },
]);

const theme = EditorView.theme({
  "&": { backgroundColor: "var(--code-bg)", color: "var(--fg)", fontSize: "13px" },
  ".cm-content": { caretColor: "var(--fg)", fontFamily: "var(--mono)" },
  ".cm-gutters": { backgroundColor: "var(--code-bg)", color: "var(--muted)", border: "none" },
  ".cm-activeLine, .cm-activeLineGutter": { backgroundColor: "var(--active-line)" },
  "&.cm-focused": { outline: "2px solid var(--accent)" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground": { backgroundColor: "var(--selection)" },
  ".cm-scroller": { minHeight: "12rem", maxHeight: "60vh", overflow: "auto" },
});

function languageSupport(lang: Language) {
  return lang === "py" ? python() : javascript({ typescript: true });
}

export class Editor {
  private readonly language = new Compartment();
  readonly view: EditorView;

  constructor(parent: HTMLElement, doc: string, lang: Language, onRun: () => void) {
    // In a shadow root CodeMirror's styles are constructed style sheets (adoptedStyleSheets),
    // which the page's Content-Security-Policy (style-src 'self', no inline style) allows; in
    // the document itself they would be a <style> element, which it refuses.
    const root = parent.attachShadow({ mode: "open" });
    this.view = new EditorView({
      parent: root,
      root,
      state: EditorState.create({
        doc,
        extensions: [
          lineNumbers(),
          history(),
          drawSelection(),
          indentOnInput(),
          bracketMatching(),
          highlightActiveLine(),
          syntaxHighlighting(highlight),
          theme,
          this.language.of(languageSupport(lang)),
          Prec.highest(keymap.of([{ key: "Mod-Enter", run: () => (onRun(), true) }])),
          keymap.of([...defaultKeymap, ...historyKeymap]),
          EditorView.contentAttributes.of({ "aria-label": "Code", "aria-describedby": "editor-help" }),
        ],
      }),
    });
  }

  get text(): string {
    return this.view.state.doc.toString();
  }

  set text(doc: string) {
    this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: doc } });
  }

  setLanguage(lang: Language): void {
    this.view.dispatch({ effects: this.language.reconfigure(languageSupport(lang)) });
  }

  focus(): void {
    this.view.focus();
  }
}
