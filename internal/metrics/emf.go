// Package metrics writes CloudWatch Embedded Metric Format documents, one log line each: CloudWatch
// extracts the metrics from the line, with no PutMetricData call and no added latency. What a function
// measures (its Schema and the values of an invocation) belongs to the function's own package; this
// one only writes the format.
package metrics

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Units used by the metrics.
const (
	Count        = "Count"
	Bytes        = "Bytes"
	Milliseconds = "Milliseconds"
)

// Metric is one metric a function emits.
type Metric struct {
	Name string
	Unit string
	Doc  string
}

// DimFunction is the dimension every document carries: dashboards and alarms use it alone.
const DimFunction = "FunctionName"

// Schema is what a function's documents declare: its metrics, in document order, and its dimension
// sets.
type Schema struct {
	Metrics       []Metric
	DimensionSets [][]string
}

// EMF writes documents to w. It is safe for concurrent use.
type EMF struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	function  string
	schema    Schema
}

// New returns an EMF writer for a namespace, function name and schema.
func New(w io.Writer, namespace, function string, schema Schema) *EMF {
	return &EMF{w: w, namespace: namespace, function: function, schema: schema}
}

type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []metricDecl `json:"Metrics"`
}

type metricDecl struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// Document builds one document from values (by metric name) and fields (dimension values, and context
// for Logs Insights, which adds no metric cardinality). A metric without a value is left out,
// declaration and value alike; an empty dimension reads "unknown".
func (e *EMF) Document(values, fields map[string]any, now time.Time) map[string]any {
	doc := make(map[string]any, len(fields)+len(values)+2)
	for k, v := range fields {
		doc[k] = v
	}
	doc[DimFunction] = e.function
	for _, set := range e.schema.DimensionSets {
		for _, dim := range set {
			if s, _ := doc[dim].(string); s == "" {
				doc[dim] = "unknown"
			}
		}
	}
	decls := make([]metricDecl, 0, len(e.schema.Metrics))
	for _, m := range e.schema.Metrics {
		if v, ok := values[m.Name]; ok {
			decls = append(decls, metricDecl{m.Name, m.Unit})
			doc[m.Name] = v
		}
	}
	doc["_aws"] = map[string]any{
		"Timestamp":         now.UnixMilli(),
		"CloudWatchMetrics": []directive{{Namespace: e.namespace, Dimensions: e.schema.DimensionSets, Metrics: decls}},
	}
	return doc
}

// Write writes doc as a single line.
func (e *EMF) Write(doc map[string]any) {
	line, err := json.Marshal(doc)
	if err != nil {
		return // cannot happen: a document holds strings and numbers only
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(append(line, '\n'))
}

// Flag is the value of a 0-or-1 count: 1 when b.
func Flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Millis is d in milliseconds, with microsecond precision.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
