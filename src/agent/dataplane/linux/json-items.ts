// The items of a JSON array as they arrive (iproute2's `-j` dumps are one
// array): each is parsed alone, so a dump of 200k FDB entries is never a
// 30 MB string nor 200k objects at once.
import { WeftError } from '../../../model/errors.js';

/**
 * Feed the text in pieces (`write`), then `end`. Items (objects or arrays)
 * are handed to `onItem` in order; throws WeftError E_DATAPLANE on text that is not
 * such an array. Commas are not checked: the tools' JSON is well formed.
 */
export class JsonItems {
  private buf = '';
  /** Where scanning resumes in `buf`. */
  private at = 0;
  /** Start of the current item in `buf`, or -1 between items. */
  private start = -1;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private opened = false;
  private closed = false;

  constructor(private readonly onItem: (item: unknown) => void) {}

  write(text: string): void {
    if (this.start >= 0) {
      this.buf = this.buf.slice(this.start) + text;
      this.at -= this.start;
      this.start = 0;
    } else {
      this.buf = text;
      this.at = 0;
    }
    this.scan();
  }

  /** No text at all counts as an empty array (a tool that printed nothing). */
  end(): void {
    if (this.opened && !this.closed) throw malformed('the array ends early');
  }

  private scan(): void {
    const b = this.buf;
    for (let i = this.at; i < b.length; i++) {
      const c = b.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 92) this.escaped = true;
        else if (c === 34) this.inString = false;
        continue;
      }
      if (this.depth === 0) {
        if (c === 32 || c === 10 || c === 13 || c === 9) continue;
        if (!this.opened) {
          if (c !== 91) throw malformed('not a JSON array');
          this.opened = true;
          continue;
        }
        if (this.closed) throw malformed('text after the array');
        // Between items: a comma, the closing bracket, or the start of an object or array.
        if (c === 44) continue;
        if (c === 93) {
          this.closed = true;
          continue;
        }
        if (c !== 123 && c !== 91) throw malformed('only objects and arrays are taken as items');
        this.start = i;
      }
      if (c === 34) this.inString = true;
      else if (c === 123 || c === 91) this.depth++;
      else if (c === 125 || c === 93) {
        if (--this.depth === 0) {
          this.onItem(parseItem(b.slice(this.start, i + 1)));
          this.start = -1;
        }
      }
    }
    this.at = b.length;
  }
}

/** A dump iproute2 printed that is not the JSON it promises: the kernel's state cannot be read. */
function malformed(what: string, cause?: unknown): WeftError {
  return new WeftError('E_DATAPLANE', `iproute2 JSON dump: ${what}`, undefined, { cause });
}

function parseItem(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw malformed(`an item is not JSON (${(e as Error).message})`, e);
  }
}
