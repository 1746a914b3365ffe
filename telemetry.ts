/**
 * What Rounds reports to OpenTelemetry beside the spans Deno makes itself (every request in and out): the
 * figures a clinician feels, per generation and per search. Without OTEL_DENO=true the API records nothing and
 * costs a function call. Never message text or identifiers: attributes are model ids, embedder ids, outcomes.
 */
import { metrics, trace } from "@opentelemetry/api";

const meter = metrics.getMeter("rounds");

/** The tracer for Rounds' own spans (retrieval), nested in the request's span. */
export const tracer = trace.getTracer("rounds");

/** Rounds' metrics (docs/deployment.md lists them). */
export const measures = {
  /** From taking in the message to sending the model the request: history, retrieval, prompt. */
  preparation: meter.createHistogram("rounds.generation.preparation", {
    unit: "ms",
    description: "Time from taking in a message to sending the model server the generation request",
  }),
  /** From sending the request to the first text or reasoning coming back. */
  timeToFirstToken: meter.createHistogram("rounds.generation.time_to_first_token", {
    unit: "ms",
    description: "Time from sending the generation request to the first token received",
  }),
  /** Output tokens over the time from the first token to the last. */
  tokensPerSecond: meter.createHistogram("rounds.generation.tokens_per_second", {
    unit: "{token}/s",
    description: "Output tokens per second of a generation, after its first token",
  }),
  /** One knowledge-base search (embedding the question, vector and full-text search, fusion, reranking). */
  retrieval: meter.createHistogram("rounds.retrieval.duration", {
    unit: "ms",
    description: "Time of one knowledge-base search",
  }),
};
