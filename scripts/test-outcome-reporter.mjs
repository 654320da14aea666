// A node:test reporter that writes one JSON line: every test that did not really run
// (skipped or todo), with its file, so scripts/test.mjs can refuse a green run that skipped.
// It runs beside the usual reporter, whose closing lines (# tests, # pass, ...) stay as they are.
export default async function* outcomeReporter(source) {
  const notRun = [];
  let passed = 0;
  let failed = 0;
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const d = event.data;
    if (d.skip !== undefined && d.skip !== false)
      notRun.push({ kind: "skipped", name: d.name, file: d.file, reason: typeof d.skip === "string" ? d.skip : "" });
    else if (d.todo !== undefined && d.todo !== false)
      notRun.push({ kind: "todo", name: d.name, file: d.file, reason: typeof d.todo === "string" ? d.todo : "" });
    else if (event.type === "test:pass") passed++;
    else failed++;
  }
  yield JSON.stringify({ passed, failed, notRun }) + "\n";
}
