import { type ReactNode, useCallback, useLayoutEffect, useRef, useState } from "react"

const ESTIMATE = 80
const OVERSCAN_PX = 600

/**
 * A vertical list that renders only the rows near the viewport (a 5,000-entry transcript mounts a few dozen rows).
 * Row heights are measured as rows render and cached; unmeasured rows count as an estimate. While the reader is at
 * the bottom, new rows keep the list scrolled to the bottom; `onNearTop` fires when the reader scrolls to the top.
 */
export const VirtualList = (props: {
  readonly count: number
  readonly keyOf: (index: number) => string
  readonly render: (index: number) => ReactNode
  readonly label: string
  readonly onNearTop?: () => void
}) => {
  const scroller = useRef<HTMLDivElement>(null)
  const heights = useRef(new Map<string, number>())
  const [, setVersion] = useState(0)
  const [scrollTop, setScrollTop] = useState(0)
  const [viewport, setViewport] = useState(600)
  const atBottom = useRef(true)
  const observer = useRef<ResizeObserver | null>(null)

  if (observer.current === null && typeof ResizeObserver !== "undefined") {
    observer.current = new ResizeObserver((records) => {
      let changed = false
      for (const record of records) {
        const key = (record.target as HTMLElement).dataset.key
        if (key === undefined) continue
        const height = Math.ceil((record.target as HTMLElement).getBoundingClientRect().height)
        if (height > 0 && heights.current.get(key) !== height) {
          heights.current.set(key, height)
          changed = true
        }
      }
      if (changed) setVersion((v) => v + 1)
    })
  }

  const offsets = new Array<number>(props.count + 1)
  offsets[0] = 0
  for (let i = 0; i < props.count; i++) offsets[i + 1] = offsets[i]! + (heights.current.get(props.keyOf(i)) ?? ESTIMATE)
  const total = offsets[props.count]!

  const find = (y: number) => {
    let lo = 0
    let hi = props.count
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (offsets[mid + 1]! <= y) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const start = Math.max(0, find(scrollTop - OVERSCAN_PX))
  const end = Math.min(props.count, find(scrollTop + viewport + OVERSCAN_PX) + 1)

  useLayoutEffect(() => {
    const el = scroller.current
    if (el === null) return
    setViewport(el.clientHeight)
    if (atBottom.current) {
      el.scrollTop = el.scrollHeight
      setScrollTop(el.scrollTop)
    }
  })

  const onScroll = useCallback(() => {
    const el = scroller.current
    if (el === null) return
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48
    setScrollTop(el.scrollTop)
    if (el.scrollTop < 200) props.onNearTop?.()
  }, [props.onNearTop])

  const measure = useCallback((el: HTMLDivElement | null) => {
    if (el === null) return
    observer.current?.observe(el)
    return () => observer.current?.unobserve(el)
  }, [])

  const rows: Array<ReactNode> = []
  for (let i = start; i < end; i++) {
    const key = props.keyOf(i)
    rows.push(<div key={key} data-key={key} ref={measure} className="vrow">{props.render(i)}</div>)
  }

  return (
    <div ref={scroller} className="vlist" onScroll={onScroll} role="log" aria-label={props.label} tabIndex={0}
      data-rendered={end - start} data-count={props.count}>
      <div className="vlist-inner" style={{ height: total }}>
        <div className="vlist-window" style={{ transform: `translateY(${offsets[start]}px)` }}>{rows}</div>
      </div>
    </div>
  )
}
