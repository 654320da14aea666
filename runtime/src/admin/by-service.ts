// Values kept by service, then by an id (an instance's): looking one up on a call's path
// builds no "service\0id" key string. The admin hub's in-flight counts, its call statistics
// and the Prometheus metrics each keep one.

export class ByService<V> {
  private readonly services = new Map<string, Map<string, V>>();

  get(service: string, id: string): V | undefined {
    return this.services.get(service)?.get(id);
  }

  set(service: string, id: string, value: V): void {
    let byId = this.services.get(service);
    if (!byId) this.services.set(service, (byId = new Map()));
    byId.set(id, value);
  }

  /** Removes the value; a service left with none is forgotten. Safe while iterating `values()`. */
  delete(service: string, id: string): void {
    const byId = this.services.get(service);
    if (!byId) return;
    byId.delete(id);
    if (byId.size === 0) this.services.delete(service);
  }

  *values(): IterableIterator<V> {
    for (const byId of this.services.values()) yield* byId.values();
  }
}
