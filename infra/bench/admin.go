package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

var adminHTTP = &http.Client{Timeout: 30 * time.Second}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	return httpDo(ctx, http.MethodGet, url)
}

func httpDo(ctx context.Context, method, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	resp, err := adminHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	if resp.StatusCode/100 != 2 {
		return body, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// DeleteTopic deletes a non-partitioned persistent topic and its data, even with producers connected.
func DeleteTopic(ctx context.Context, adminURL, topic string) error {
	name, ok := strings.CutPrefix(topic, "persistent://")
	if !ok {
		return fmt.Errorf("delete topic %s: only persistent:// topics", topic)
	}
	_, err := httpDo(ctx, http.MethodDelete, strings.TrimRight(adminURL, "/")+"/admin/v2/persistent/"+name+"?force=true")
	if err != nil && strings.Contains(err.Error(), "404") {
		return nil // never created
	}
	return err
}
