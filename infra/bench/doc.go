// Package bench measures the function side by side with the broker's publish ceiling: a bare
// pulsar-client-go producer, the handler in this process, and the real bootstrap under the local
// Runtime API, on the same batches in the same run; then cold start, memory, binary size and cost.
// `make bench` runs it (infra/bench/cmd/bench) and writes docs/benchmarks.md.
package bench
