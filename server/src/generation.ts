// Generation: on save (in modules that want generated code) and by command, with progress the
// user can cancel; plus the check and modules requests of our protocol. A generation's
// problems (its four phases find more than a compile) join the module's diagnostics.
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Connection, WorkDoneProgressServerReporter } from "vscode-languageserver";
import * as adapter from "./generator-adapter.js";
import { errorText, type ModuleAnalysis } from "./module-analysis.js";
import { sameVersions, type ModuleState, type ModuleStates } from "./module-states.js";
import { checkRequest, generatedNotification, generateRequest, modulesRequest, type CheckResult, type GenerateSummary } from "./protocol.js";
import type { Session } from "./session.js";
import { hasGrpcrouterConfig } from "./settings.js";
import { declaresService, listProtoFiles } from "./workspace/modules.js";

export class Generation {
  constructor(
    private readonly connection: Connection,
    private readonly session: Session,
    private readonly states: ModuleStates,
    private readonly analysis: ModuleAnalysis,
    private readonly log: (message: string) => void,
  ) {}

  /** Answers the generate, check and modules requests. */
  register(): void {
    this.connection.onRequest(generateRequest, async (params) => {
      const out: GenerateSummary[] = [];
      for (const m of await this.states.named(params?.uri)) out.push(await this.generate(m, "command"));
      return out;
    });
    this.connection.onRequest(checkRequest, async (params) => {
      const results: CheckResult[] = [];
      for (const m of await this.states.named(params?.uri)) {
        const r = await adapter.checkOutputs({ root: m.module.root, out: m.out, overlay: this.states.overlayFor(m).overlay });
        results.push({
          root: m.module.root,
          out: m.out,
          stale: r.outdated,
          errors: r.diagnostics.filter((d) => d.severity === "error").map(adapter.formatDiagnostic),
        });
      }
      return results;
    });
    this.connection.onRequest(modulesRequest, async (params) =>
      (await this.states.named(params?.uri)).map((m) => ({
        root: m.module.root,
        folder: m.module.folder,
        out: m.out,
        services: m.snapshot ? [...m.snapshot.index.byFqn.values()].filter((d) => d.kind === "service").map((d) => d.fqn) : [],
      })),
    );
  }

  async saved(m: ModuleState): Promise<void> {
    if (await this.wantsGenerateOnSave(m)) void this.generate(m, "save");
  }

  /** generateOnSave is on, and the module has a grpcrouter config or declares a service. */
  private async wantsGenerateOnSave(m: ModuleState): Promise<boolean> {
    const settings = await this.session.settingsFor(m.module.folder);
    if (!settings.generateOnSave) return false;
    if (hasGrpcrouterConfig(m.module.root, m.module.folder)) return true;
    const snap = m.snapshot;
    if (snap && [...snap.index.byFqn.values()].some((d) => d.kind === "service" && snap.compiled.importToFile.has(d.file))) return true;
    const files = listProtoFiles(m.module.root, [m.out]);
    return declaresService(files, (f) => this.states.openText(f) ?? readFile(f, "utf8"));
  }

  async generate(m: ModuleState, trigger: GenerateSummary["trigger"]): Promise<GenerateSummary> {
    // A save while generating makes the running generation stale: cancel it and start over.
    m.generateAbort?.abort();
    const ac = new AbortController();
    m.generateAbort = ac;
    const started = performance.now();
    const rel = path.relative(m.module.folder, m.module.root) || path.basename(m.module.root);
    const progress = await this.startProgress(rel, ac);
    const summary: GenerateSummary = {
      root: m.module.root,
      out: m.out,
      ok: false,
      written: 0,
      unchanged: 0,
      removed: 0,
      errors: 0,
      ms: 0,
      message: "",
      trigger,
    };
    const { overlay, versions } = this.states.overlayFor(m);
    const diskChanges = m.diskChanges;
    try {
      const r = await adapter.generateAndWrite({
        root: m.module.root,
        out: m.out,
        overlay,
        signal: ac.signal,
        onProgress: (message, percent) => progress?.report(percent ?? 0, message),
      });
      summary.errors = r.diagnostics.filter((d) => d.severity === "error").length;
      if (r.written) {
        summary.ok = true;
        summary.written = r.written.written.length;
        summary.unchanged = r.written.unchanged.length;
        summary.removed = r.written.removed.length;
      }
      // Generation finds problems the plain compile does not (it runs the four phases). When
      // the user typed on (or a file changed on disk) meanwhile, the compile of the newer
      // text publishes instead.
      if (!ac.signal.aborted && !this.states.overtaken(m, versions) && m.diskChanges === diskChanges) {
        m.generated = { diagnostics: r.diagnostics, versions };
        // The compile of these buffers may still run; it publishes both when it lands.
        if (m.compiled && sameVersions(m.compiled.versions, versions)) await this.analysis.publish(m);
      }
    } catch (e) {
      if (ac.signal.aborted) {
        summary.cancelled = true;
      } else {
        summary.errors = 1;
        summary.message = `generation failed: ${errorText(e)}`;
      }
    } finally {
      progress?.done();
    }
    summary.ms = Math.round(performance.now() - started);
    summary.message ||= summaryText(summary, rel, path.relative(m.module.folder, m.out) || ".");
    this.log(`[generate] ${summary.message}`);
    void this.connection.sendNotification(generatedNotification, summary);
    return summary;
  }

  /** Work-done progress the user can cancel (which aborts the generation), if the client shows it. */
  private async startProgress(rel: string, ac: AbortController): Promise<WorkDoneProgressServerReporter | undefined> {
    if (!this.session.can.workDoneProgress) return undefined;
    try {
      const progress = await this.connection.window.createWorkDoneProgress();
      progress.begin("gRPC Router: generating", 0, rel, true);
      progress.token.onCancellationRequested(() => ac.abort());
      return progress;
    } catch {
      return undefined;
    }
  }
}

function summaryText(s: GenerateSummary, rel: string, outRel: string): string {
  if (s.cancelled) return `${rel}: generation cancelled (a newer one started)`;
  if (s.ok) return `${outRel}: ${s.written} written, ${s.unchanged} unchanged, ${s.removed} removed (${s.ms} ms)`;
  return `${rel}: not generated, ${s.errors} error${s.errors === 1 ? "" : "s"}; ${outRel} left as it was`;
}
