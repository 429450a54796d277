/**
 * One status line that rewrites itself on a terminal and prints only changes
 * elsewhere (CI logs), so waiting shows progress without flooding the log.
 */
export class LiveLine {
  readonly #out: NodeJS.WriteStream
  #last = ''
  #drawn = false

  constructor(out: NodeJS.WriteStream) {
    this.#out = out
  }

  update(text: string): void {
    if (this.#out.isTTY) {
      const width = this.#out.columns || 120
      this.#out.write(`\r\x1b[2K${text.length > width - 1 ? `${text.slice(0, width - 2)}…` : text}`)
      this.#drawn = true
    } else if (stripCountdown(text) !== stripCountdown(this.#last)) {
      this.#out.write(`${text}\n`)
    }
    this.#last = text
  }

  done(): void {
    if (this.#drawn) this.#out.write('\n')
    this.#drawn = false
  }
}

/** The countdown changes every second; off a terminal only real changes are worth a line. */
function stripCountdown(text: string): string {
  return text.replace(/\d+h?\d*m\d+s left|\d+h\d+m left/g, '')
}
