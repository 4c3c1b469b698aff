// Reads a text/event-stream answer (GET /v1/events) as the console does:
// fetch with the bearer header and a body reader; next() waits for an event.
export interface SseEvent {
  type: string;
  data: unknown;
}

export interface SseReader {
  status: number;
  headers: Headers;
  events: SseEvent[];
  /** The first event (from the start) that `match` takes and no earlier next() took; throws after `ms`. */
  next(match: (e: SseEvent) => boolean, ms?: number): Promise<SseEvent>;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  close(): void;
}

export async function openSse(url: string, token: string | undefined): Promise<SseReader> {
  const ctl = new AbortController();
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: ctl.signal });
  const events: SseEvent[] = [];
  const taken = new Set<number>();
  const waiters = new Set<() => void>();
  const ended = (async () => {
    if (!res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let type = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) type = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length > 0) events.push({ type, data: JSON.parse(data.join('\n')) });
          for (const w of waiters) w();
        }
      }
    } catch {
      // aborted by close()
    } finally {
      for (const w of waiters) w();
    }
  })();
  let done = false;
  void ended.then(() => {
    done = true;
  });
  return {
    status: res.status,
    headers: res.headers,
    events,
    ended,
    close: () => ctl.abort(),
    async next(match, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = events.findIndex((e, n) => !taken.has(n) && match(e));
        if (i >= 0) {
          taken.add(i);
          return events[i] as SseEvent;
        }
        if (done) throw new Error(`the stream ended without the event; got ${JSON.stringify(events)}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no such event within ${ms} ms; got ${JSON.stringify(events)}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          const w = () => {
            clearTimeout(t);
            waiters.delete(w);
            resolve();
          };
          waiters.add(w);
        });
      }
    },
  };
}
