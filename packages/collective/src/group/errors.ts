/** A collective failed on this rank; `silentRank` is the peer that did not answer or misbehaved, if known. */
export class CollectiveError extends Error {
  constructor(
    message: string,
    readonly silentRank: number | null,
  ) {
    super(message);
    this.name = 'CollectiveError';
  }
}
