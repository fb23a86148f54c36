// Renders every ```mermaid block of the Markdown files given with the pinned `mermaid`
// package in headless Chromium (the Debian package), as GitHub does in a browser, and writes
// what it saw as JSON: per block the parse error (if any), the bars and milestones of the
// gantt chart, their labels, and a PNG screenshot. tests/timeline.rs runs it and judges.
//
//   node tests/browser/render.mjs OUT_DIR FILE.md...
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");
const mermaidJs = require.resolve("mermaid/dist/mermaid.min.js");

const [outDir, ...files] = process.argv.slice(2);
fs.mkdirSync(outDir, { recursive: true });

function blocks(markdown) {
  const found = [];
  const re = /^```mermaid\n([\s\S]*?)^```$/gm;
  for (const m of markdown.matchAll(re)) found.push(m[1]);
  return found;
}

// The network is closed here and nothing may phone home: no QUIC, no background fetches,
// a profile of its own.
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "keyroll-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.KEYROLL_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1400, height: 900 },
});
const results = [];
try {
  const page = await context.newPage();
  await page.setContent("<!doctype html><html><body style='background:white'><div id=out></div></body></html>");
  await page.addScriptTag({ path: mermaidJs });
  await page.evaluate(() => window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" }));
  for (const file of files) {
    const name = path.basename(file, ".md");
    const list = blocks(fs.readFileSync(file, "utf8"));
    for (const [i, code] of list.entries()) {
      const seen = await page.evaluate(async ({ code, id }) => {
        const out = document.getElementById("out");
        out.innerHTML = "";
        try {
          await window.mermaid.parse(code);
          const { svg } = await window.mermaid.render(id, code);
          out.innerHTML = svg;
        } catch (e) {
          return { error: String(e && e.message ? e.message : e) };
        }
        const svg = out.querySelector("svg");
        const texts = (sel) => [...out.querySelectorAll(sel)].map((t) => t.textContent);
        return {
          error: null,
          svg: !!svg,
          bars: out.querySelectorAll("rect.task:not(.milestone)").length,
          milestones: out.querySelectorAll("rect.milestone").length,
          labels: texts("text.taskText, text.taskTextOutsideRight, text.taskTextOutsideLeft"),
          title: texts("text.titleText").join(""),
          errorText: texts(".error-text").join(" "),
        };
      }, { code, id: `g${name.replace(/\W/g, "")}${i}` });
      const shot = path.join(outDir, `${name}-${i}.png`);
      if (!seen.error) {
        await page.locator("#out svg").screenshot({ path: shot });
      }
      results.push({ file, block: i, screenshot: seen.error ? null : shot, ...seen });
    }
    if (list.length === 0) results.push({ file, block: null, error: "no mermaid block" });
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
fs.writeFileSync(path.join(outDir, "results.json"), JSON.stringify(results, null, 2));
console.log(JSON.stringify(results));
