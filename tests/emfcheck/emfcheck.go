// Package emfcheck checks documents against the CloudWatch Embedded Metric Format specification, for
// the tests of the function's metrics (the function itself only writes them).
package emfcheck

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Limits of the CloudWatch Embedded Metric Format specification.
const (
	maxDocumentBytes = 1 << 20 // a log event, as CloudWatch Logs accepts it
	maxMetrics       = 100     // per directive
	maxDimensionKeys = 30      // per dimension set
	maxValues        = 100     // per metric value array
	maxNameLength    = 255
)

var validUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true, "Megabits": true,
	"Gigabits": true, "Terabits": true, "Percent": true, "Count": true, "Bytes/Second": true,
	"Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true, "Terabytes/Second": true,
	"Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true, "Gigabits/Second": true,
	"Terabits/Second": true, "Count/Second": true, "None": true,
}

// Validate checks one log line against the EMF specification: the _aws metadata, its directives,
// and that every dimension and metric a directive names is a root member of the right type.
func Validate(line []byte) error {
	if len(line) > maxDocumentBytes {
		return fmt.Errorf("document of %d bytes exceeds %d", len(line), maxDocumentBytes)
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	var meta struct {
		Timestamp         *float64 `json:"Timestamp"`
		CloudWatchMetrics *[]struct {
			Namespace  *string     `json:"Namespace"`
			Dimensions *[][]string `json:"Dimensions"`
			Metrics    *[]struct {
				Name              *string `json:"Name"`
				Unit              *string `json:"Unit"`
				StorageResolution *int    `json:"StorageResolution"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	raw, ok := root["_aws"]
	if !ok {
		return errors.New("no _aws member")
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return fmt.Errorf("_aws: %w", err)
	}
	if meta.Timestamp == nil {
		return errors.New("_aws.Timestamp missing")
	}
	if ts := *meta.Timestamp; ts <= 0 || ts != float64(int64(ts)) {
		return fmt.Errorf("_aws.Timestamp %v is not epoch milliseconds", ts)
	}
	if meta.CloudWatchMetrics == nil {
		return errors.New("_aws.CloudWatchMetrics missing")
	}
	for i, d := range *meta.CloudWatchMetrics {
		if d.Namespace == nil || len(*d.Namespace) == 0 || len(*d.Namespace) > maxNameLength {
			return fmt.Errorf("directive %d: Namespace missing or not 1-%d characters", i, maxNameLength)
		}
		if d.Dimensions == nil {
			return fmt.Errorf("directive %d: Dimensions missing", i)
		}
		for _, set := range *d.Dimensions {
			if len(set) > maxDimensionKeys {
				return fmt.Errorf("directive %d: a dimension set has %d keys, more than %d", i, len(set), maxDimensionKeys)
			}
			for _, key := range set {
				var v string
				if err := json.Unmarshal(root[key], &v); err != nil || v == "" {
					return fmt.Errorf("directive %d: dimension %q is not a non-empty string member of the root", i, key)
				}
			}
		}
		if d.Metrics == nil || len(*d.Metrics) > maxMetrics {
			return fmt.Errorf("directive %d: Metrics missing or more than %d", i, maxMetrics)
		}
		for _, m := range *d.Metrics {
			if m.Name == nil || len(*m.Name) == 0 || len(*m.Name) > maxNameLength {
				return fmt.Errorf("directive %d: a metric Name is missing or not 1-%d characters", i, maxNameLength)
			}
			if m.Unit != nil && !validUnits[*m.Unit] {
				return fmt.Errorf("metric %s: unit %q is not a CloudWatch unit", *m.Name, *m.Unit)
			}
			if m.StorageResolution != nil && *m.StorageResolution != 1 && *m.StorageResolution != 60 {
				return fmt.Errorf("metric %s: StorageResolution must be 1 or 60", *m.Name)
			}
			if err := checkValue(root[*m.Name]); err != nil {
				return fmt.Errorf("metric %s: %w", *m.Name, err)
			}
		}
	}
	return nil
}

func checkValue(raw json.RawMessage) error {
	if raw == nil {
		return errors.New("no value at the root")
	}
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		return nil
	}
	var values []float64
	if err := json.Unmarshal(raw, &values); err != nil {
		return errors.New("value is neither a number nor an array of numbers")
	}
	if len(values) == 0 || len(values) > maxValues {
		return fmt.Errorf("array of %d values, want 1-%d", len(values), maxValues)
	}
	return nil
}
