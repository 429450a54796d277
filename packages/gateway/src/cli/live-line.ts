import type { ActionRequest } from '@countersign/sdk'

export interface StatusOptions {
  now?: number
  /** Characters available; parts are dropped to fit (see {@link describeStatus}). Default: no limit. */
  width?: number
  /** The gateway's URL, for the approve hint and the link; both are left out without it. */
  url?: string
  /** False while the gateway does not answer: the line says so instead of counting down. */
  reachable?: boolean
}

/** The parts a narrow terminal loses first, in the order they are dropped. */
const DROPPED_IN_ORDER = ['link', 'hint', 'approvers', 'approved-by'] as const
type Droppable = (typeof DROPPED_IN_ORDER)[number]

/**
 * One line saying where a request stands: id and state, approvals so far against the quorum (who
 * approved, from which approvers), time left, how to approve and a link. To fit `width` it drops
 * the link, then the approve hint, then the approver list, then the names of who approved; the
 * state, votes/quorum and time left always stay (cut with … only if even they do not fit).
 */
export function describeStatus(request: ActionRequest, options: StatusOptions = {}): string {
  const width = options.width ?? Number.POSITIVE_INFINITY
  for (let level = 0; level <= DROPPED_IN_ORDER.length; level += 1) {
    const line = compose(request, options, new Set(DROPPED_IN_ORDER.slice(0, level)))
    if (line.length <= width) return line
  }
  const line = compose(request, options, new Set(DROPPED_IN_ORDER))
  return width >= 2 ? `${line.slice(0, width - 1)}…` : line.slice(0, Math.max(0, width))
}

function compose(request: ActionRequest, options: StatusOptions, dropped: ReadonlySet<Droppable>): string {
  const parts = [`${request.id} ${request.status}`]
  const review = request.review
  const pending = request.status === 'pending'
  if (review) {
    for (const requirement of review.requirements) {
      let votes = `${requirement.approvals.length}/${requirement.quorum} approvals`
      if (!dropped.has('approvers')) votes += ` (${requirement.approvers.join(', ')})`
      if (!dropped.has('approved-by') && requirement.approvals.length > 0) votes += ` by ${requirement.approvals.join(', ')}`
      parts.push(votes)
    }
    if (pending && options.reachable === false) parts.push('gateway unreachable, retrying…')
    else if (pending && review.deadlineAt) parts.push(`${formatRemaining(Date.parse(review.deadlineAt) - (options.now ?? Date.now()))} left`)
  } else if (pending && options.reachable === false) {
    parts.push('gateway unreachable, retrying…')
  }
  if (pending && options.url !== undefined) {
    if (!dropped.has('hint')) parts.push(`approve: countersign approve ${request.id}${review?.requireReason ? ' --reason "…"' : ''}`)
    if (!dropped.has('link')) parts.push(`${options.url}/v1/requests/${request.id}`)
  }
  return parts.join(' · ')
}

function formatRemaining(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000))
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total % 60
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s).padStart(2, '0')}s`
}

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

  /** The characters one line may take: the terminal's width less one, unlimited off a terminal. */
  get width(): number {
    return this.#out.isTTY ? Math.max(20, (this.#out.columns || 120) - 1) : Number.POSITIVE_INFINITY
  }

  update(text: string): void {
    if (this.#out.isTTY) {
      this.#out.write(`\r\x1b[2K${text}`)
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
