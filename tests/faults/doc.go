// Package faults is the fault matrix of kinesis-pulsar: it runs the real handler (relay and producer
// pool) and the real bootstrap against a broker of its own, reached only through an in-process
// toxiproxy, injects faults (broker killed or restarted, connections reset or blackholed, latency,
// bandwidth limits, a frozen environment, Secrets Manager and DynamoDB outages, rejected records) and
// checks after every scenario that no Kinesis record was lost: each one is in Pulsar or reported failed,
// and replaying the retries the way the event source mapping does delivers all of them.
//
// The tests carry the build tag integration; see fault_integration_test.go for the harness.
package faults
