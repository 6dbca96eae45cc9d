import type { Language } from "./editor";

export const SAMPLES: Record<Language, string> = {
  js: `// JavaScript or TypeScript, run in the server's sandbox (QuickJS, a fresh process per run).
// Ctrl+Enter (Cmd+Enter on a Mac) runs it.
const squares = [1, 2, 3, 4].map((n) => n * n);
console.log("Hello from 1mcp:", squares);
console.error("stderr is shown apart from stdout");
squares.reduce((a, b) => a + b, 0); // the last expression comes back as the value
`,
  py: `# Python 3.11 (CPython) in the server's sandbox; numpy, pandas and matplotlib when installed.
# Ctrl+Enter (Cmd+Enter on a Mac) runs it.
import sys

squares = [n * n for n in range(1, 5)]
print("Hello from 1mcp:", squares)
print("stderr is shown apart from stdout", file=sys.stderr)
sum(squares)  # the last expression comes back as the value
`,
};
