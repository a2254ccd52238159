/**
 * Download progress as one log line every few seconds and a final summary, in key=value form
 * that CloudWatch Logs Insights can `parse`:
 *
 *   model-fetcher: progress bytes=536870912 total=1073741824 percent=50.0 mib_per_s=412.3 eta_s=1.2
 */
export class Progress {
  private total = 0;
  private done = 0;
  private readonly started = process.hrtime.bigint();
  private timer?: NodeJS.Timeout;

  constructor(private readonly log: (line: string) => void, private readonly intervalMs = 5000) {}

  start(): void {
    this.timer = setInterval(() => this.log(`model-fetcher: progress ${this.fields()}`), this.intervalMs);
    this.timer.unref();
  }

  expect(bytes: number): void {
    this.total += bytes;
  }

  add(bytes: number): void {
    this.done += bytes;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get seconds(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e9;
  }

  get bytes(): number {
    return this.done;
  }

  fields(): string {
    const seconds = Math.max(this.seconds, 1e-3);
    const rate = this.done / seconds;
    const eta = rate > 0 && this.total > this.done ? (this.total - this.done) / rate : 0;
    const percent = this.total ? (100 * this.done) / this.total : 0;
    return `bytes=${this.done} total=${this.total} percent=${percent.toFixed(1)} mib_per_s=${(rate / 2 ** 20).toFixed(1)} eta_s=${eta.toFixed(1)}`;
  }
}
