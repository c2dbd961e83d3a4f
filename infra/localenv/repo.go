package localenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// RepoRoot returns the repository root: the nearest directory at or above the working directory that
// holds go.mod (go test runs in the package's directory, make and the tools in the root).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the repository: no go.mod above the working directory")
		}
		dir = parent
	}
}

// RepoFile returns the path of rel, a file of the repository such as infra/local/pulsar.sh.
func RepoFile(rel string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", rel, err)
	}
	p := filepath.Join(root, rel)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("find %s: %w", rel, err)
	}
	return p, nil
}

// LockedWriter serialises writes to W from several goroutines (output copiers of several bootstraps,
// shards polled in parallel).
type LockedWriter struct {
	mu sync.Mutex
	W  io.Writer
}

func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.W.Write(p)
}
