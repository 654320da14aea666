// The last good compile, seen through the edits made since: while a file does not compile the
// module keeps the index of its last good text, and the spans of that index are mapped onto
// the buffers as they are now, so definition, hover, outline and lenses land on the right
// lines ("insert 3 lines above Customer" moves Customer's definition 3 lines down).
import type { Decl } from "./proto-index.js";
import { PositionMap } from "./position-map.js";
import { Snapshot } from "./snapshot.js";

/**
 * `snap` with the spans of every file whose current text (`current(importPath)`, undefined
 * when it is not open) differs from the compiled one mapped onto the current text. The same
 * snapshot when nothing differs.
 */
export function liveSnapshot(snap: Snapshot, current: (importPath: string) => string | undefined): Snapshot {
  const maps = new Map<string, PositionMap>();
  for (const imp of snap.compiled.importToFile.keys()) {
    const now = current(imp);
    const then = snap.compiled.sources.get(imp);
    if (now !== undefined && then !== undefined && now !== then) maps.set(imp, PositionMap.between(then, now));
  }
  if (maps.size === 0) return snap;
  // A fresh index of the same descriptors, whose spans we may rewrite.
  const live = new Snapshot(snap.compiled);
  const remap = (d: Decl, map: PositionMap) => {
    const name = d.nameRange && map.mapName(d.nameRange, d.name);
    const range = d.range && map.mapRange(d.range);
    if (name) d.nameRange = name;
    else delete d.nameRange;
    if (range) d.range = range;
    else delete d.range;
  };
  for (const d of live.index.byFqn.values()) {
    const map = maps.get(d.file);
    if (map) remap(d, map);
  }
  for (const [imp, map] of maps) {
    for (const i of live.index.files.get(imp)?.imports ?? []) {
      const r = i.range && map.mapRange(i.range);
      if (r) i.range = r;
      else delete i.range;
    }
  }
  return live;
}
