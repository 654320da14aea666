// How `grpcrouter serve` notices edits: a folder watched with fs.watch, and one debounced
// reload helper shared by the proto module and the --config file. Editors write a file in
// several steps (and Kubernetes swaps a ConfigMap's `..data` symlink), so a reload waits for
// a quiet moment; reloads never overlap, and edits made during one run it again afterwards.
import { watch, type FSWatcher } from "node:fs";
import path from "node:path";

export interface Reloader {
  /** Asks for a reload after `delayMs` of quiet (each call restarts the wait). */
  schedule(): void;
  /** No more reloads; resolves once a running one has finished. */
  close(): Promise<void>;
}

/**
 * `reload` runs `delayMs` after the last `schedule()`; never two at once: a schedule while
 * one runs makes it run once more when it ends (the last edit always gets its reload).
 */
export function debouncedReloader(reload: () => Promise<void>, onError: (e: unknown) => void, delayMs = 200): Reloader {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;
  const run = () => {
    timer = undefined;
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = reload()
      .catch(onError)
      .finally(() => {
        running = undefined;
        if (again && !closed) {
          again = false;
          schedule();
        }
      });
  };
  const schedule = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(run, delayMs);
  };
  return {
    schedule,
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/**
 * Watches `dir` (recursively or not) and calls `changed` for each event whose file name
 * `relevant` accepts (an event without a name always counts). A watcher that fails is
 * reported through `log` and stops.
 */
export function watchFolder(
  dir: string,
  recursive: boolean,
  relevant: (name: string) => boolean,
  changed: () => void,
  log: (line: string) => void,
  what: string,
): FSWatcher {
  const watcher = watch(dir, { recursive }, (_event, file) => {
    const name = file ? String(file) : "";
    if (name && !relevant(name)) return;
    changed();
  });
  watcher.on("error", (e) => log(`watching ${what} stopped: ${e.message}`));
  return watcher;
}

/**
 * A Kubernetes ConfigMap/Secret volume changes by swapping the `..data` symlink to a new
 * `..<timestamp>` folder; the files themselves are symlinks that never change, so a watcher
 * that looks only for `*.proto` or the config's name would miss every update.
 */
export function isMountSwap(name: string): boolean {
  const first = name.split(path.sep)[0]!;
  return first.startsWith("..data") || /^\.\.\d{4}_/.test(first);
}
