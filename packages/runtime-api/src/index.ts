export * as ApiDocs from "./ApiDocs.js"
export * from "./Api.js"
export * from "./Authorization.js"
export * from "./Errors.js"
export * as EventsGroup from "./EventsGroup.js"
export * as HealthGroup from "./HealthGroup.js"
export * as MetricsGroup from "./MetricsGroup.js"
export * from "./RuntimeClient.js"
export {
  type EventFollower,
  type EventStreamError,
  type EventStreamOptions,
  reconnectBackoff,
  RuntimeEvents,
  type RuntimeEventsOptions,
  type RuntimeEventsService
} from "./RuntimeEvents.js"
export * as RuntimeGroup from "./RuntimeGroup.js"
export * as WorkersGroup from "./WorkersGroup.js"
