// One watcher of the hub (a gRPC Watch call, a dashboard tab): a bounded queue between the
// router, which must never wait, and a reader, which may be slow or gone. When the queue is
// full, events are dropped and counted; the reader then gets a `dropped` event at the place
// of the gap, so it knows to resync (take a new snapshot) instead of trusting a partial view.
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { EventSchema, type Event } from "../gen/grpcrouter/v1/admin_pb.js";

/** An event as queued: built (and its body decoded) only when a reader takes it. */
export interface PendingEvent {
  /** The service it concerns ("" when unknown); used by service filters. */
  readonly service: string;
  /** Message events are the bulk of the traffic; only watchers that asked get them. */
  readonly isMessage: boolean;
  /** The admin Event, with the decoded body when `withBody`. Memoised, shared: do not mutate. */
  build(withBody: boolean): Event;
}

export interface WatchOptions {
  /** Deliver call message events (default false, like the Admin API). */
  includeMessages?: boolean;
  /** Decode message bodies to JSON (implies includeMessages). */
  includeBodies?: boolean;
  /** Only events of these fully-qualified services; empty or absent means all. */
  services?: readonly string[];
  /** Events queued before this watcher starts losing them (default: the hub's). */
  queueLimit?: number;
}

type Entry = PendingEvent | { readonly droppedCount: number };

export class Watcher implements AsyncIterable<Event> {
  readonly includeMessages: boolean;
  readonly includeBodies: boolean;
  private readonly services: ReadonlySet<string> | undefined;
  private readonly queueLimit: number;
  private queue: Entry[] = [];
  private head = 0;
  /** The snapshot: delivered first, outside the bound (a watcher without it is useless). */
  private first: Event | undefined;
  private pendingDropped = 0;
  private totalDropped = 0;
  private wake: (() => void) | undefined;
  private isClosed = false;
  private readonly closeListeners: Array<() => void> = [];

  /** @internal Created by `AdminHub.watch`, which queues the snapshot first. */
  constructor(options: WatchOptions, defaultQueueLimit: number, first: Event, onClose: () => void) {
    this.includeBodies = options.includeBodies ?? false;
    this.includeMessages = this.includeBodies || (options.includeMessages ?? false);
    this.services = options.services && options.services.length > 0 ? new Set(options.services) : undefined;
    this.queueLimit = Math.max(1, options.queueLimit ?? defaultQueueLimit);
    this.first = first;
    this.closeListeners.push(onClose);
  }

  /** Events lost so far because this watcher read too slowly. */
  get dropped(): number {
    return this.totalDropped;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Events waiting to be read. */
  get queued(): number {
    return this.queue.length - this.head + (this.first ? 1 : 0);
  }

  /** @internal Called by the hub on publish; never blocks, never throws. */
  offer(ev: PendingEvent): void {
    if (this.isClosed) return;
    if (ev.isMessage && !this.includeMessages) return;
    if (this.services && !this.services.has(ev.service)) return;
    if (this.queue.length - this.head >= this.queueLimit) {
      this.pendingDropped++;
      this.totalDropped++;
      return;
    }
    if (this.pendingDropped > 0) {
      // The marker sits where the gap is; it may exceed the limit by one entry.
      this.queue.push({ droppedCount: this.pendingDropped });
      this.pendingDropped = 0;
    }
    this.queue.push(ev);
    this.notify();
  }

  /** The next event if one is queued, without waiting. */
  take(): Event | undefined {
    if (this.first) {
      const first = this.first;
      this.first = undefined;
      return first;
    }
    if (this.head < this.queue.length) {
      const entry = this.queue[this.head]!;
      this.queue[this.head] = undefined as unknown as Entry;
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      if ("droppedCount" in entry) return droppedEvent(entry.droppedCount);
      return entry.build(this.includeBodies);
    }
    if (this.pendingDropped > 0) {
      const n = this.pendingDropped;
      this.pendingDropped = 0;
      return droppedEvent(n);
    }
    return undefined;
  }

  /** The next event, waiting for one; undefined once the watcher is closed. */
  async next(): Promise<Event | undefined> {
    for (;;) {
      if (this.isClosed) return undefined;
      const ev = this.take();
      if (ev) return ev;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Event> {
    for (;;) {
      const ev = await this.next();
      if (!ev) return;
      yield ev;
    }
  }

  /** Resolves when an event is queued or the watcher closes. */
  waitForEvents(): Promise<void> {
    if (this.isClosed || this.queued > 0 || this.pendingDropped > 0) return Promise.resolve();
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  onClose(listener: () => void): void {
    if (this.isClosed) listener();
    else this.closeListeners.push(listener);
  }

  /** Stops delivery and unregisters from the hub. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.queue = [];
    this.head = 0;
    this.first = undefined;
    this.notify();
    for (const l of this.closeListeners.splice(0)) l();
  }

  private notify(): void {
    const w = this.wake;
    if (w) {
      this.wake = undefined;
      w();
    }
  }
}

function droppedEvent(count: number): Event {
  return create(EventSchema, { time: timestampNow(), event: { case: "dropped", value: BigInt(count) } });
}
