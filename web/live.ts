// What the event stream keeps current for every page: the agents' status,
// a history of each host's lag for the chart, and the newest changes.
import { type AgentStatus, type EventChange, followEvents } from './api.js';

/** The lag chart's window: 10 minutes of one sample a second. */
export const HISTORY_SECONDS = 600;
/** Changes kept for the live tail. */
const TAIL = 500;

export interface LagSample {
  /** Unix seconds. */
  t: number;
  /** Lag by host id (absent: the agent was not connected). */
  lag: Record<string, number>;
}

type Listener = () => void;

class Live {
  agents: AgentStatus[] | null = null;
  head = 0;
  history: LagSample[] = [];
  changes: EventChange[] = [];
  connected = false;
  why: string | null = null;
  private listeners = new Set<Listener>();
  private changeListeners = new Set<(c: EventChange) => void>();
  private stopStream: (() => void) | null = null;
  private ticker: number | null = null;

  start(): void {
    if (this.stopStream) return;
    this.stopStream = followEvents(
      (e) => {
        if (e.type === 'hello') this.head = e.data.head;
        else if (e.type === 'agents') {
          this.agents = e.data.items;
          this.head = Math.max(this.head, e.data.head);
          this.sample();
        } else if (e.type === 'change') {
          this.head = Math.max(this.head, e.data.version);
          this.changes = [e.data, ...this.changes].slice(0, TAIL);
          for (const fn of this.changeListeners) fn(e.data);
        }
        this.emit();
      },
      (connected, why) => {
        this.connected = connected;
        this.why = why;
        this.emit();
      },
    );
    // One sample a second from the last snapshot (snapshots come only when something changed).
    this.ticker = window.setInterval(() => {
      if (this.agents) {
        this.sample();
        this.emit();
      }
    }, 1000);
  }

  stop(): void {
    this.stopStream?.();
    this.stopStream = null;
    if (this.ticker !== null) window.clearInterval(this.ticker);
    this.ticker = null;
    this.agents = null;
    this.history = [];
    this.changes = [];
    this.connected = false;
  }

  private sample(): void {
    const t = Math.floor(Date.now() / 1000);
    const lag: Record<string, number> = {};
    for (const a of this.agents ?? []) lag[a.hostId] = a.lag;
    const last = this.history[this.history.length - 1];
    // Within one second the highest lag counts: a lag that came and went between two ticks still shows.
    if (last && last.t === t) for (const [h, v] of Object.entries(lag)) last.lag[h] = Math.max(last.lag[h] ?? 0, v);
    else this.history.push({ t, lag });
    if (this.history.length > HISTORY_SECONDS) this.history.splice(0, this.history.length - HISTORY_SECONDS);
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Called with every new change as it arrives (pages reload what it touched). */
  onChange(fn: (c: EventChange) => void): () => void {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }
}

export const live = new Live();
