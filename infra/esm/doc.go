// Package esm is a local stand-in for Lambda's Kinesis event source mapping (ESM): it reads a stream's
// shards through the Kinesis API (moto locally), builds the events Lambda builds, invokes the function
// through an Invoker (runtimeapi.RIE or runtimeapi.Env running the real bootstrap) and checkpoints from
// the function's answers. make demo runs it; see docs/local.md.
//
// # What it reproduces
//
//   - Shards: listed once at the start, polled concurrently, one batch in flight per shard; a child
//     shard starts once its parents (when listed) are done. Starting position TRIM_HORIZON, LATEST or
//     AT_TIMESTAMP; GetRecords at most every 200 ms per shard while records flow, every PollInterval
//     (Lambda's one second) while the shard is empty.
//   - Batches: records of one shard in sequence order, at most BatchSize of them, and cut so the event
//     stays within the 6 MB synchronous payload limit. With MaxBatchingWindow, records are gathered
//     until the batch is full, the window ends or the payload limit is reached; without, a batch goes
//     out as soon as records exist.
//   - The event: {"Records":[...]} with eventID "shardId-…:<sequence number>", eventSourceARN (the
//     stream), awsRegion, eventName aws:kinesis:record, eventSource aws:kinesis, eventVersion 1.0,
//     invokeIdentityArn (the function's role), and kinesis.{data (base64), partitionKey,
//     sequenceNumber, approximateArrivalTimestamp (float seconds, millisecond precision),
//     encryptionType (NONE when the stream reports none), kinesisSchemaVersion 1.0}. KPL aggregates are
//     passed as one record, not split: Lambda does not de-aggregate.
//   - The answer, with ReportBatchItemFailures: an empty or null body, {}, a null or empty
//     batchItemFailures list mean complete success; otherwise the checkpoint moves to just before the
//     lowest reported record and the rest of the batch, from that record on, is retried. An entry
//     without itemIdentifier, with an empty or null one, or (not documented by AWS; chosen here) an
//     identifier that is not in the batch, and a body that is not a JSON object, fail the whole batch.
//     Without ReportBatchItemFailures the body is ignored.
//   - Function errors (an error document, a timeout, a crash, a failed init) retry the same batch.
//   - Retries: MaxRetryAttempts bounds the invocations that follow a failed or partially failed one
//     (-1: unbounded); the count starts again after a complete success. A batch that runs out of
//     retries is reported through OnFailure and skipped: the checkpoint moves past it. With a
//     Destination, its invocation record goes where Lambda sends it, in Lambda's format (package
//     onfailure): an SQS queue gets the metadata (requestContext, responseContext, KinesisBatchInfo),
//     an S3 bucket an object under aws/lambda/<mapping>/<shard>/… that also holds the event. Retries
//     wait RetryBackoff, doubled per retry up to MaxRetryBackoff.
//   - Record age: with MaxRecordAge, records that arrived longer ago are given up on before an
//     invocation or a retry, reported like an exhausted batch with the condition RecordAgeExceeded.
//
// # What it does not
//
// No enhanced fan-out (moto has no SubscribeToShard), no ParallelizationFactor (one batch per shard
// at a time), no BisectBatchOnFunctionError, no tumbling windows, no
// event filtering, no resharding while running (shards are listed once), no concurrency limit across
// shards other than the Invoker's (both runtimeapi drivers run one invocation at a time, so shards take
// turns, like a function with reserved concurrency 1). Checkpoints live in memory for one Run.
package esm
