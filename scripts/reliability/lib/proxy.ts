/**
 * A TCP proxy that injects faults between a client (the Backend) and a server (a remote runtime): it can pass
 * bytes through, add latency to every chunk, stall (hold every byte in both directions while keeping connections
 * open), refuse new connections, cut every open connection, and follow the server to a new port after a restart.
 */
import * as Net from "node:net"

export type Mode = "pass" | "stall" | "refuse"

/** One direction of a connection: chunks leave strictly in the order they came, each no earlier than its due time. */
interface Lane {
  readonly to: Net.Socket
  readonly queue: Array<{ readonly due: number; readonly chunk: Buffer }>
  timer: ReturnType<typeof setTimeout> | undefined
}

interface Pair {
  readonly client: Net.Socket
  readonly upstream: Net.Socket
  readonly toUpstream: Lane
  readonly toClient: Lane
}

export class FaultProxy {
  private mode: Mode = "pass"
  private delayMs = 0
  private readonly pairs = new Set<Pair>()
  private readonly server: Net.Server
  /** Connections accepted and connections cut, for the report. */
  accepted = 0
  cut = 0
  refused = 0

  private constructor(private upstreamPort: number, readonly port: number, server: Net.Server) {
    this.server = server
  }

  static async start(upstreamPort: number): Promise<FaultProxy> {
    const holder: { proxy?: FaultProxy } = {}
    const server = Net.createServer((socket) => holder.proxy?.accept(socket))
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    holder.proxy = new FaultProxy(upstreamPort, (server.address() as Net.AddressInfo).port, server)
    return holder.proxy
  }

  get url() {
    return `http://127.0.0.1:${this.port}`
  }

  private accept(client: Net.Socket) {
    if (this.mode === "refuse") {
      this.refused += 1
      client.resetAndDestroy()
      return
    }
    this.accepted += 1
    const upstream = Net.connect(this.upstreamPort, "127.0.0.1")
    const lane = (to: Net.Socket): Lane => ({ to, queue: [], timer: undefined })
    const pair: Pair = { client, upstream, toUpstream: lane(upstream), toClient: lane(client) }
    this.pairs.add(pair)
    const close = () => {
      this.pairs.delete(pair)
      for (const l of [pair.toUpstream, pair.toClient]) clearTimeout(l.timer)
      client.destroy()
      upstream.destroy()
    }
    client.on("data", (chunk: Buffer) => this.forward(pair.toUpstream, chunk))
    upstream.on("data", (chunk: Buffer) => this.forward(pair.toClient, chunk))
    for (const socket of [client, upstream]) {
      socket.on("error", close)
      socket.on("close", close)
      socket.on("end", close)
    }
  }

  private forward(lane: Lane, chunk: Buffer) {
    lane.queue.push({ due: performance.now() + this.delayMs, chunk })
    this.pump(lane)
  }

  /** Writes what is due, in order; a chunk that is not due yet holds back every chunk after it. */
  private pump(lane: Lane) {
    if (this.mode === "stall") return
    clearTimeout(lane.timer)
    lane.timer = undefined
    while (lane.queue.length > 0) {
      const wait = lane.queue[0]!.due - performance.now()
      if (wait > 0) {
        lane.timer = setTimeout(() => this.pump(lane), wait)
        return
      }
      const { chunk } = lane.queue.shift()!
      if (!lane.to.destroyed) lane.to.write(chunk)
    }
  }

  /** Passes bytes again; whatever was held while stalled (or delayed) goes out first, in order. */
  pass() {
    this.mode = "pass"
    this.delayMs = 0
    for (const pair of this.pairs) {
      this.pump(pair.toUpstream)
      this.pump(pair.toClient)
    }
  }

  /** Every chunk, both ways, arrives `ms` late. */
  slow(ms: number) {
    this.pass()
    this.delayMs = ms
  }

  /** Holds every byte in both directions; connections (new ones too) stay open. */
  stall() {
    this.mode = "stall"
  }

  /** New connections are reset at once; open ones are cut. */
  refuse() {
    this.mode = "refuse"
    this.cutAll()
  }

  /** Resets every open connection (as a crashed host or a dropped NAT entry would). */
  cutAll() {
    for (const pair of this.pairs) {
      this.cut += 1
      pair.client.resetAndDestroy()
      pair.upstream.destroy()
    }
    this.pairs.clear()
  }

  /** The server moved (it restarted on another port). */
  retarget(port: number) {
    this.upstreamPort = port
  }

  open() {
    return this.pairs.size
  }

  async close() {
    this.cutAll()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
