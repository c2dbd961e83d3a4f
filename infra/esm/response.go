//go:build unix

package esm

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// verdict is how an answer with ReportBatchItemFailures reads: failedAt is the batch index of the
// lowest reported record (-1: complete success), reason is set when the answer fails the whole batch.
type verdict struct {
	failedAt int
	reason   string
}

// judge reads the function's answer as Lambda does with ReportBatchItemFailures (see the package
// documentation for the rules).
func judge(payload []byte, batch []types.Record) verdict {
	body := bytes.TrimSpace(payload)
	success := verdict{failedAt: -1}
	if len(body) == 0 || string(body) == "null" {
		return success
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return verdict{reason: "the answer is not a JSON object"}
	}
	raw, ok := top["batchItemFailures"]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return success
	}
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return verdict{reason: "batchItemFailures is not a list of objects"}
	}
	index := make(map[string]int, len(batch))
	for i, r := range batch {
		index[aws.ToString(r.SequenceNumber)] = i
	}
	lowest := -1
	for _, e := range entries {
		var id *string
		if v, ok := e["itemIdentifier"]; ok {
			if err := json.Unmarshal(v, &id); err != nil {
				return verdict{reason: fmt.Sprintf("itemIdentifier %s is not a string", v)}
			}
		}
		if id == nil || *id == "" {
			return verdict{reason: "a batchItemFailures entry has no itemIdentifier, or an empty or null one"}
		}
		i, ok := index[*id]
		if !ok {
			return verdict{reason: fmt.Sprintf("itemIdentifier %q is not a sequence number of the batch", *id)}
		}
		if lowest < 0 || i < lowest {
			lowest = i
		}
	}
	return verdict{failedAt: lowest}
}
