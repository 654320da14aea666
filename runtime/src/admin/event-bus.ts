// The hub's fan-out: who is listening and how events reach them. Listeners (metrics, tracing)
// see every published event synchronously; watchers (Watch calls, dashboard tabs) each get a
// bounded queue (watcher.ts), so the router never waits for one. The bus keeps the counts that
// let the hub skip work nobody wants: with no watcher, no event is built at all.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventSchema, type Event } from "../gen/grpcrouter/v1/admin_pb.js";
import type { HubEvent, HubListener } from "./hub-events.js";
import { Watcher, type PendingEvent, type WatchOptions } from "./watcher.js";

/** An admin Event stamped with its time. */
export function eventOf(event: Event["event"], timeMs = Date.now()): Event {
  return create(EventSchema, { time: timestampFromMs(timeMs), event });
}

export class EventBus {
  private readonly watchers = new Set<Watcher>();
  private readonly listeners = new Set<HubListener>();
  private messageWatchers = 0;
  private bodyWatchers = 0;

  constructor(private readonly queueLimit: number) {}

  /** Whether any watcher is there: without one, the hub builds no event. */
  get watching(): boolean {
    return this.watchers.size > 0;
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  get hasListeners(): boolean {
    return this.listeners.size > 0;
  }

  /** Whether a watcher asked for call message events. */
  get wantsMessages(): boolean {
    return this.messageWatchers > 0;
  }

  /** Whether a watcher asked for decoded message bodies. */
  get wantsBodies(): boolean {
    return this.bodyWatchers > 0;
  }

  /** See `AdminHub.onEvent`. */
  onEvent(listener: HubListener): () => void {
    // Wrapped so the same function can be added twice and each removal removes one.
    let warned = false;
    const entry: HubListener = (event) => {
      try {
        listener(event);
      } catch (e) {
        if (!warned) {
          warned = true;
          process.emitWarning(`grpcrouter: an AdminHub event listener threw: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    };
    this.listeners.add(entry);
    return () => void this.listeners.delete(entry);
  }

  /** Gives the event to every listener, synchronously. */
  notifyListeners(event: HubEvent): void {
    if (this.listeners.size > 0) for (const l of this.listeners) l(event);
  }

  /** Adds a watcher whose first event is `first` (the snapshot); it leaves the bus when closed. */
  watch(options: WatchOptions, first: Event): Watcher {
    const watcher: Watcher = new Watcher(options, this.queueLimit, first, () => {
      this.watchers.delete(watcher);
      if (watcher.includeMessages) this.messageWatchers--;
      if (watcher.includeBodies) this.bodyWatchers--;
    });
    this.watchers.add(watcher);
    if (watcher.includeMessages) this.messageWatchers++;
    if (watcher.includeBodies) this.bodyWatchers++;
    return watcher;
  }

  /** Builds the event once and queues it for every watcher whose filters let it through. */
  fanOut(service: string, event: Event["event"], timeMs?: number): void {
    const built = eventOf(event, timeMs);
    this.offer({ service, isMessage: false, build: () => built });
  }

  /** Queues an event built lazily by the watchers that take it (message events, with or without body). */
  offer(pending: PendingEvent): void {
    for (const w of this.watchers) w.offer(pending);
  }

  /** Closes every watcher (their readers see the end of the stream). */
  close(): void {
    for (const w of [...this.watchers]) w.close();
  }
}
