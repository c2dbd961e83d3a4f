package localenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Admin is a minimal client of the Pulsar admin REST API (/admin/v2), for test set-up and checks.
type Admin struct {
	URL   string       // e.g. http://127.0.0.1:8080
	Token string       // sent as a bearer token when not empty (brokers with authentication)
	HTTP  *http.Client // http.Client with a 30 s timeout when nil
}

// NewAdmin returns an Admin for the broker whose web service listens at adminURL.
func NewAdmin(adminURL string) *Admin {
	return &Admin{URL: strings.TrimRight(adminURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// TopicStats is the part of the broker's topic statistics the tests look at.
type TopicStats struct {
	MsgInCounter   int64                        `json:"msgInCounter"`
	BytesInCounter int64                        `json:"bytesInCounter"`
	MsgOutCounter  int64                        `json:"msgOutCounter"`
	StorageSize    int64                        `json:"storageSize"`
	Publishers     []PublisherStats             `json:"publishers"`
	Subscriptions  map[string]SubscriptionStats `json:"subscriptions"`
	// Partitions is filled by PartitionedTopicStats only, keyed by partition topic name.
	Partitions map[string]TopicStats `json:"partitions"`
}

// PublisherStats describes one producer connected to a topic.
type PublisherStats struct {
	ProducerName string  `json:"producerName"`
	MsgRateIn    float64 `json:"msgRateIn"`
}

// SubscriptionStats describes one subscription of a topic.
type SubscriptionStats struct {
	Type            string `json:"type"`
	MsgBacklog      int64  `json:"msgBacklog"`
	UnackedMessages int64  `json:"unackedMessages"`
}

// CreatePartitionedTopic creates a partitioned topic with the given number of partitions.
func (a *Admin) CreatePartitionedTopic(ctx context.Context, topic string, partitions int) error {
	p, err := topicPath(topic)
	if err != nil {
		return err
	}
	if partitions < 1 {
		return fmt.Errorf("create partitioned topic %s: partitions must be at least 1, got %d", topic, partitions)
	}
	if err := a.do(ctx, http.MethodPut, p+"/partitions", []byte(strconv.Itoa(partitions)), nil); err != nil {
		return fmt.Errorf("create partitioned topic %s: %w", topic, err)
	}
	return nil
}

// EnsureNamespace creates namespace (tenant/name) unless it exists, sets broker deduplication on it on
// or off (POST namespaces/{tenant}/{ns}/deduplication), and keeps its messages for an hour whether read
// or not. Without retention, deduplication's cursor is a reader: once its snapshot passes a ledger that
// no subscription holds, the broker deletes the ledger, and a test reading the topic afterwards (as the
// fault matrix does after a broker restart) finds confirmed messages gone.
func (a *Admin) EnsureNamespace(ctx context.Context, namespace string, deduplication bool) error {
	if strings.Count(namespace, "/") != 1 {
		return fmt.Errorf("namespace %q: want tenant/namespace", namespace)
	}
	var aerr *AdminError
	if err := a.do(ctx, http.MethodPut, "namespaces/"+namespace, nil, nil); err != nil && !(errors.As(err, &aerr) && aerr.Status == http.StatusConflict) {
		return fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	if err := a.do(ctx, http.MethodPost, "namespaces/"+namespace+"/deduplication", []byte(strconv.FormatBool(deduplication)), nil); err != nil {
		return fmt.Errorf("deduplication on namespace %s: %w", namespace, err)
	}
	if err := a.do(ctx, http.MethodPost, "namespaces/"+namespace+"/retention",
		[]byte(`{"retentionTimeInMinutes":60,"retentionSizeInMB":-1}`), nil); err != nil {
		return fmt.Errorf("retention on namespace %s: %w", namespace, err)
	}
	return nil
}

// CreateTopic creates a non-partitioned topic (auto-creation also does, on first use).
func (a *Admin) CreateTopic(ctx context.Context, topic string) error {
	p, err := topicPath(topic)
	if err != nil {
		return err
	}
	if err := a.do(ctx, http.MethodPut, p, nil, nil); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// TerminateTopic terminates a non-partitioned topic: later publishes fail with TopicTerminated, consumers
// can still read what is there. It returns the id of the last message (ledger:entry:partition).
func (a *Admin) TerminateTopic(ctx context.Context, topic string) (string, error) {
	p, err := topicPath(topic)
	if err != nil {
		return "", err
	}
	var last struct {
		LedgerID  int64 `json:"ledgerId"`
		EntryID   int64 `json:"entryId"`
		Partition int64 `json:"partitionIndex"`
	}
	if err := a.do(ctx, http.MethodPost, p+"/terminate", nil, &last); err != nil {
		return "", fmt.Errorf("terminate topic %s: %w", topic, err)
	}
	return fmt.Sprintf("%d:%d:%d", last.LedgerID, last.EntryID, last.Partition), nil
}

// TopicStats returns the statistics of a non-partitioned topic (or of one partition, "...-partition-N").
func (a *Admin) TopicStats(ctx context.Context, topic string) (TopicStats, error) {
	p, err := topicPath(topic)
	if err != nil {
		return TopicStats{}, err
	}
	var stats TopicStats
	if err := a.do(ctx, http.MethodGet, p+"/stats", nil, &stats); err != nil {
		return TopicStats{}, fmt.Errorf("stats of topic %s: %w", topic, err)
	}
	return stats, nil
}

// PartitionedTopicStats returns the statistics of a partitioned topic, summed over its partitions, with
// each partition's own in Partitions.
func (a *Admin) PartitionedTopicStats(ctx context.Context, topic string) (TopicStats, error) {
	p, err := topicPath(topic)
	if err != nil {
		return TopicStats{}, err
	}
	var stats TopicStats
	if err := a.do(ctx, http.MethodGet, p+"/partitioned-stats?perPartition=true", nil, &stats); err != nil {
		return TopicStats{}, fmt.Errorf("partitioned stats of topic %s: %w", topic, err)
	}
	return stats, nil
}

// do sends one admin request; a non-2xx answer is an error carrying the status and the broker's reason.
func (a *Admin) do(ctx context.Context, method, path string, body []byte, out any) error {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL+"/admin/v2/"+path, reader)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	client := a.HTTP
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &AdminError{Method: method, Path: req.URL.Path, Status: resp.StatusCode, Reason: reason(data)}
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, req.URL.Path, err)
	}
	return nil
}

// AdminError is a non-2xx answer of the admin API; Status tells, e.g., 404 (no such topic) from 409
// (already exists).
type AdminError struct {
	Method, Path string
	Status       int
	Reason       string
}

func (e *AdminError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Reason)
}

// reason extracts the broker's {"reason": "..."} or returns a short excerpt of the body.
func reason(body []byte) string {
	var r struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &r) == nil && r.Reason != "" {
		return r.Reason
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// topicPath turns "persistent://tenant/ns/name" (or a bare "name", taken as persistent://public/default/name)
// into the admin API path "persistent/tenant/ns/name".
func topicPath(topic string) (string, error) {
	domain, rest, ok := strings.Cut(topic, "://")
	if !ok {
		domain, rest = "persistent", "public/default/"+topic
	}
	if domain != "persistent" && domain != "non-persistent" {
		return "", fmt.Errorf("topic %q: unknown domain %q", topic, domain)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return "", fmt.Errorf("topic %q: want persistent://tenant/namespace/name or a bare name", topic)
	}
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("topic %q: empty tenant, namespace or name", topic)
		}
		parts[i] = url.PathEscape(p)
	}
	return domain + "/" + strings.Join(parts, "/"), nil
}
