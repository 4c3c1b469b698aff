// Strings kept once each and referred to by number, for packed tables whose
// values are one of few strings (an FDB entry's destination: a few hundred
// VTEPs for 100k entries).

/** Numbers strings from 0 up in the order first seen; a number is kept for the interner's life. */
export class Interner {
  private readonly texts: string[] = [];
  private readonly ids = new Map<string, number>();

  /** The number of `text`, given it now if it has none. */
  id(text: string): number {
    let id = this.ids.get(text);
    if (id === undefined) {
      id = this.texts.length;
      this.texts.push(text);
      this.ids.set(text, id);
    }
    return id;
  }

  /** The string numbered `id` (a number `id()` gave). */
  text(id: number): string {
    return this.texts[id] as string;
  }
}
