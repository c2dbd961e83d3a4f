package sam

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/streambridge/kinesis-pulsar/internal/config"
)

// The README's configuration table: one row per variable, and every stated default is the one the code
// applies (setting a variable to its documented default changes nothing).
func TestReadmeConfigurationTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "make test") || !strings.Contains(string(readme), "make demo") {
		t.Error("README lacks the two commands for a fresh machine")
	}
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\| ([^|]+) \\|").FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = strings.TrimSpace(m[2])
	}
	// LOG_LEVEL belongs to internal/logging, GOMEMLIMIT to the Go runtime (main sets its default).
	known := map[string]bool{"LOG_LEVEL": true, "GOMEMLIMIT": true}
	for _, name := range config.Names() {
		known[name] = true
		if _, ok := rows[name]; !ok {
			t.Errorf("README has no row for %s", name)
		}
	}
	for _, name := range config.SinkNames() {
		known[name] = true // TestReadmeSinkConfigurationTable
	}
	for name := range rows {
		if !known[name] {
			t.Errorf("README documents %s, which the code does not read", name)
		}
	}

	base := map[string]string{config.VarServiceURL: "pulsar://127.0.0.1:6650", config.VarTopic: "persistent://public/default/t"}
	load := func(extra map[string]string) config.Config {
		t.Helper()
		c, err := config.Load(func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	defaults := load(nil)
	for name, def := range rows {
		if name == "LOG_LEVEL" || name == "GOMEMLIMIT" || def == "required" || def == "unset" || def == "all" {
			continue
		}
		value := strings.Trim(def, "`")
		if got := load(map[string]string{name: value}); !reflect.DeepEqual(got, defaults) {
			t.Errorf("README says %s defaults to %s, but setting it to that changes the configuration", name, def)
		}
	}
}
