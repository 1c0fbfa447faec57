// How much a session lets queue before it stops reading one side: its memory stays bounded whatever
// a slow client, a fast one, or a statement waiting for approval does.

/** Pause reading a client whose statement waits for approval once it has queued this much behind it. */
export const BACKLOG_HIGH_WATER = 16 * 1024 * 1024;

/** Pause reading the upstream when this much is queued towards a slow client. */
export const CLIENT_HIGH_WATER = 4 * 1024 * 1024;

/** How long one run of a client's messages may hold the event loop before the rest waits a turn. */
export const SLICE_MS = 10;
