// `npm run bench:editor`: what a user waits for after saving a .proto, measured through the
// real bundled language server over stdio on a generated 50-file module (every file with a
// 4-method service, importing the one before it):
//
//   edit → diagnostics     didChange (unsaved) until the diagnostics of that version, any wait included
//   save → diagnostics     didSave until the server next publishes the file's diagnostics (the
//                          buffer was compiled as typed, so lint's or the generation's)
//   save → files written   didSave until generation has written the output (its summary)
//   hover, definition, completion, rename (over all 50 files): request → answer, beside the
//   round trip of a request the server does not know (the floor of any answer over stdio)
//   format document        textDocument/formatting of a messy file (buf format), vs bare `buf format`
//   semantic tokens        textDocument/semanticTokens/full of the edited file
//   edit → lint finding    an edit that breaks a buf.yaml lint rule until buf lint's finding shows
//
// Each run first edits a comment of the last file (unsaved, then on disk, as an editor does)
// and waits for that edit's diagnostics, so a run measures the save alone. Next to it, a bare
// `buf build` of the same module, measured in the same run, so the ratio holds on any machine.
// Nothing here asserts a time (aim: ≤ 300 ms for both on the 50-file module).
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { findBuf } from "@grpcrouter/generator";
import { pathToFileURL, TestClient } from "../test/lsp-client.js";

const FILES = Number(process.env.BENCH_FILES ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);

function fileText(i: number, comment: string): string {
  const id = String(i).padStart(2, "0");
  const prev = i > 0 ? String(i - 1).padStart(2, "0") : undefined;
  return [
    'syntax = "proto3";',
    `package editorbench.m${id}.v1;`,
    'import "google/protobuf/timestamp.proto";',
    ...(prev ? [`import "editorbench/m${prev}/v1/items.proto";`] : []),
    `// ${comment}`,
    `message Item${id} {`,
    "  string id = 1;",
    "  google.protobuf.Timestamp created = 2;",
    "  map<string, string> labels = 3;",
    ...(prev ? [`  editorbench.m${prev}.v1.Item${prev} previous = 4;`] : []),
    "}",
    `message Find${id}Request { string id = 1; }`,
    `service Items${id} {`,
    `  rpc Get(Find${id}Request) returns (Item${id});`,
    `  rpc Watch(Find${id}Request) returns (stream Item${id});`,
    `  rpc Upload(stream Item${id}) returns (Item${id});`,
    `  rpc Chat(stream Item${id}) returns (stream Item${id});`,
    "}",
    "",
  ].join("\n");
}

function fileOf(root: string, i: number): string {
  return path.join(root, "editorbench", `m${String(i).padStart(2, "0")}`, "v1", "items.proto");
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
};
const fmt = (xs: number[]) => {
  const { median, min, max } = stats(xs);
  return `median ${median.toFixed(0).padStart(4)} ms   (min ${min.toFixed(0)}, max ${max.toFixed(0)})`;
};

const REQUEST_RUNS = Number(process.env.BENCH_REQUEST_RUNS ?? 50);
const fmtFine = (xs: number[]) => {
  const { median, min, max } = stats(xs);
  return `median ${median.toFixed(1).padStart(6)} ms   (min ${min.toFixed(1)}, max ${max.toFixed(1)})`;
};

/**
 * Times the requests a user makes while reading and editing the last file: hover and go to
 * definition on its reference to the previous file's message, completion on a blank line of
 * a message (every type of the module is offered), and a rename of that message (every file
 * of the module is read and searched).
 */
async function requestTimings(file: string, text: string) {
  const uri = pathToFileURL(file).href;
  const lines = text.split("\n");
  const refLine = lines.findIndex((l) => l.includes(" previous = 4;"));
  const refAt = { line: refLine, character: lines[refLine]!.indexOf(" previous") - 2 };
  const withBlank = text.replace("  string id = 1;\n", "  string id = 1;\n  \n");
  const blankAt = { line: withBlank.split("\n").indexOf("  "), character: 2 };
  const time = async (ask: () => Promise<unknown>) => {
    const xs: number[] = [];
    for (let i = 0; i < REQUEST_RUNS; i++) {
      const t = performance.now();
      await ask();
      xs.push(performance.now() - t);
    }
    return xs;
  };
  const roundTrip = await time(() => client.request("grpcrouter/no-such-request", {}).catch(() => undefined));
  const hover = await time(() => client.request("textDocument/hover", { textDocument: { uri }, position: refAt }));
  const definition = await time(() => client.request("textDocument/definition", { textDocument: { uri }, position: refAt }));
  const rename = await time(async () => {
    const edit = await client.request<{ changes?: Record<string, unknown[]> } | null>("textDocument/rename", {
      textDocument: { uri },
      position: refAt,
      newName: "Renamed",
    });
    if (!edit?.changes || Object.keys(edit.changes).length !== 2) throw new Error(`rename did not edit the two files: ${JSON.stringify(edit)}`);
  });
  client.change(file, withBlank);
  await client.waitForCurrentDiagnostics(file, 120_000);
  const completion = await time(async () => {
    const items = await client.request<unknown[]>("textDocument/completion", { textDocument: { uri }, position: blankAt });
    if (items.length < FILES) throw new Error(`completion offered ${items.length} items`);
  });
  client.change(file, text);
  return { roundTrip, hover, definition, completion, rename };
}

const ws = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-editor-bench-"));
const root = path.join(ws, "proto");
for (let i = 0; i < FILES; i++) {
  mkdirSync(path.dirname(fileOf(root, i)), { recursive: true });
  writeFileSync(fileOf(root, i), fileText(i, `Item ${i}.`));
}
writeFileSync(path.join(root, "buf.yaml"), "version: v2\n");

/** A bare `buf build` of the module, as the baseline: its time in ms. */
function bufBuild(): number {
  const t = performance.now();
  const r = spawnSync(findBuf(), ["build", "--exclude-path", "gen", "-o", "-#format=binpb"], { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) throw new Error(`buf build failed: ${r.stderr}`);
  return performance.now() - t;
}

const client = await TestClient.start({ folders: [ws] });
try {
  const edited = fileOf(root, FILES - 1);
  client.open(edited);
  await client.waitForCurrentDiagnostics(edited, 120_000);

  const summaries = () => client.generatedSince().length;

  async function saveRun(n: number): Promise<{ typed: number; typedVsBuf: number; diagnostics: number; written: number; files: number }> {
    const text = fileText(FILES - 1, `Item ${FILES - 1}, edit ${n}.`);
    // A bare buf build right before the edit: on a busy machine the load drifts, and the
    // ratio of the pair holds better than two medians taken apart.
    const bufNow = bufBuild();
    const typedAt = performance.now();
    client.change(edited, text);
    await client.waitForCurrentDiagnostics(edited, 120_000);
    const typed = performance.now() - typedAt;
    const typedVsBuf = typed / bufNow;
    writeFileSync(edited, text);
    const publishedBefore = client.publishCount(edited);
    const summariesBefore = summaries();
    const started = performance.now();
    client.save(edited);
    let diagnostics = 0;
    const gotDiagnostics = client
      .waitFor("diagnostics after the save", () => (client.publishCount(edited) > publishedBefore ? true : undefined), 120_000)
      .then(() => (diagnostics = performance.now() - started));
    const summary = await client.waitFor("the generate summary", () => client.generatedSince()[summariesBefore], 120_000);
    const written = performance.now() - started;
    await gotDiagnostics;
    if (!summary.ok) throw new Error(`generation failed: ${summary.message}`);
    return { typed, typedVsBuf, diagnostics, written, files: summary.written };
  }

  // Warm-up: the first save generates everything (cold caches, every file new).
  const cold = await saveRun(0);
  const typed: number[] = [];
  const typedVsBuf: number[] = [];
  const diag: number[] = [];
  const write: number[] = [];
  let files = 0;
  for (let i = 1; i <= RUNS; i++) {
    const r = await saveRun(i);
    typed.push(r.typed);
    typedVsBuf.push(r.typedVsBuf);
    diag.push(r.diagnostics);
    write.push(r.written);
    files = r.files;
  }

  const buf: number[] = [];
  for (let i = 0; i < RUNS; i++) buf.push(bufBuild());

  const requests = await requestTimings(edited, fileText(FILES - 1, `Item ${FILES - 1}, edit ${RUNS}.`));
  // Format Document of a messy buffer (every line's spacing off): one buf format run and the
  // line diff, against a bare `buf format` of the same file.
  const messy = fileText(FILES - 1, "messy")
    .replace(/ = /g, "=")
    .replace(/^  /gm, "      ");
  client.change(edited, messy);
  const formatting: number[] = [];
  const tokens: number[] = [];
  const uri = { textDocument: { uri: pathToFileURL(edited).href } };
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const edits = await client.request<unknown[]>("textDocument/formatting", { ...uri, options: { tabSize: 2, insertSpaces: true } });
    formatting.push(performance.now() - t);
    if (edits.length === 0) throw new Error(`formatting returned no edits: ${client.logs.filter((l) => l.includes("[format]")).pop() ?? ""}`);
  }
  client.change(edited, fileText(FILES - 1, "tokens"));
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await client.request("textDocument/semanticTokens/full", uri);
    tokens.push(performance.now() - t);
  }
  const bufFormat: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const r = spawnSync(findBuf(), ["format", path.relative(root, edited)], { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
    if (r.status !== 0) throw new Error(`buf format failed: ${r.stderr}`);
    bufFormat.push(performance.now() - t);
  }

  // buf lint as you type: with a lint rule in buf.yaml (noticed through the file watch), an
  // edit that breaks the rule until its finding is published, debounce and compile included.
  writeFileSync(path.join(root, "buf.yaml"), "version: v2\nlint:\n  use:\n    - FIELD_LOWER_SNAKE_CASE\n");
  void client.connection.sendNotification("workspace/didChangeWatchedFiles", { changes: [{ uri: pathToFileURL(path.join(root, "buf.yaml")).href, type: 2 }] });
  const clean = fileText(FILES - 1, "lint");
  client.change(edited, clean);
  await client.waitForCurrentDiagnostics(edited, 120_000);
  const lintRuns: number[] = [];
  const lintFinding = (want: boolean) => () => {
    const d = client.diagnostics.get(uri.textDocument.uri) ?? [];
    return d.some((x) => x.source === "buf lint") === want ? true : undefined;
  };
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    client.change(edited, clean.replace("string id = 1;", `string Id${i} = 1;`));
    await client.waitFor("a buf lint finding", lintFinding(true), 120_000);
    lintRuns.push(performance.now() - t);
    client.change(edited, clean);
    await client.waitFor("no buf lint finding", lintFinding(false), 120_000);
  }

  console.log(`editor bench: ${FILES}-file module, ${RUNS} saves of one edited file (comment changed)`);
  console.log(`  first save (cold)      diagnostics ${cold.diagnostics.toFixed(0)} ms, files written ${cold.written.toFixed(0)} ms (${cold.files} files)`);
  console.log(
    `  edit → diagnostics     ${fmt(typed)}   ${stats(typedVsBuf).median.toFixed(2)}× a buf build run just before   (unsaved buffer; a lone edit compiles at once, aim ≤ 150 ms)`,
  );
  console.log(`  save → diagnostics     ${fmt(diag)}   ${(stats(diag).median / stats(buf).median).toFixed(1)}× buf build`);
  console.log(
    `  save → files written   ${fmt(write)}   ${(stats(write).median / stats(buf).median).toFixed(1)}× buf build   (${files} files rewritten per save)`,
  );
  console.log(`  format document        ${fmt(formatting)}   ${(stats(formatting).median / stats(bufFormat).median).toFixed(1)}× buf format`);
  console.log(`  semantic tokens        ${fmt(tokens)}`);
  console.log(
    `  edit → lint finding    ${fmt(lintRuns)}   ${(stats(lintRuns).median / stats(buf).median).toFixed(1)}× buf build   (debounce, compile, buf lint)`,
  );
  console.log(`  baseline: buf build    ${fmt(buf)}`);
  console.log(`  baseline: buf format   ${fmt(bufFormat)}`);
  console.log(`  aim: ≤ 300 ms for both`);
  const floor = stats(requests.roundTrip).median;
  console.log(`  requests (${REQUEST_RUNS} each; baseline: round trip of an unknown request ${fmtFine(requests.roundTrip)})`);
  for (const [name, xs, aim] of [
    ["hover", requests.hover, "≤ 10 ms"],
    ["definition", requests.definition, "≤ 10 ms"],
    ["completion", requests.completion, "≤ 30 ms"],
    [`rename (${FILES} files read)`, requests.rename, "≤ 300 ms"],
  ] as const) {
    console.log(`  ${name.padEnd(22)} ${fmtFine(xs)}   ${(stats(xs).median / floor).toFixed(1)}× round trip   (aim ${aim})`);
  }
} finally {
  await client.stop();
  rmSync(ws, { recursive: true, force: true });
}
